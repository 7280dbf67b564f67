//! Opening a ring, as every loop's and every probe's is opened, and the
//! probe that says in plain words why this machine has none.
//! Chapter 16, "Completion instead of readiness", explains it.
//!
//! A file of its own so that the loop's tests can open a ring as the loops
//! do without importing the engine's `mod.rs`, which imports the loop.

use std::io;

use io_uring::IoUring;

use super::buffers::BufRing;

/// Submission queue entries per ring; the completion queue gets twice as
/// many (the kernel's default). A full submission queue is submitted early
/// (`Loop::push`), so this bounds a batch, not the connections.
const ENTRIES: u32 = 256;

// ANCHOR: probe
/// Opens a ring, or says in plain words why this machine will not have one.
/// `io_uring_setup` fails with `ENOSYS` on a kernel without io_uring (before
/// 5.1, or built without it), and with `EPERM` where a seccomp profile
/// (Docker's default) or `kernel.io_uring_disabled` forbids it.
pub(crate) fn open_ring() -> io::Result<IoUring> {
    // The kernel runs the last step of many operations (a receive retried
    // once its socket is readable, an accept) as "task work" on the thread
    // that submitted them. By default it interrupts that thread to do so,
    // and a loop asleep in `io_uring_enter` sometimes slept on with the work
    // undone: chapter 14's accept benchmark, two loops, stalled every few
    // seconds here until a timeout woke the loop (Linux 6.18). With
    // DEFER_TASKRUN (Linux 6.1, with SINGLE_ISSUER: one thread submits, the
    // loop's own) the work waits for the loop's next `io_uring_enter`, which
    // runs it and counts its completions in the wait. Older kernels refuse
    // the flags (`EINVAL`) and get the default.
    let deferred = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(ENTRIES);
    let ring = deferred.or_else(|_| IoUring::new(ENTRIES)).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ENOSYS) => "this kernel has no io_uring (ENOSYS: Linux 5.1 or later, built with CONFIG_IO_URING)",
            Some(libc::EPERM) | Some(libc::EACCES) => "io_uring is forbidden here (EPERM: a seccomp profile, as containers' default ones, or sysctl kernel.io_uring_disabled)",
            _ => "io_uring_setup failed",
        };
        io::Error::new(e.kind(), format!("backend IoUring: {why}: {e}"))
    })?;
    // The loop's wait has a timeout (ticks, deadlines): passed to
    // `io_uring_enter` itself, which needs IORING_FEAT_EXT_ARG (Linux 5.11).
    if !ring.params().is_feature_ext_arg() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "backend IoUring: this kernel's io_uring has no timed wait (IORING_FEAT_EXT_ARG, Linux 5.11)",
        ));
    }
    // One slot in the ring's own table of files, into which the accept that
    // sheds a connection takes it, with no fd (event_loop.rs, `shed`).
    ring.submitter().register_files_sparse(1)?;
    Ok(ring)
}

/// Whether a ring can be had here: one opened and closed *on a thread of
/// its own*. The kernel tears a ring down asynchronously, and then sends
/// the thread that opened it a notification that interrupts whatever
/// blocking call it is in: a `recv` with a timeout returns `EINTR`. Found
/// by this repository's tests, whose client threads probed, then read.
/// The probe registers a buffer ring too (Linux 5.19), as each loop will.
pub(crate) fn probe() -> io::Result<()> {
    let probe = std::thread::spawn(|| {
        let ring = open_ring()?;
        let buffers = BufRing::new(&ring)?;
        drop(ring); // first: the kernel lets go of the buffers with it
        drop(buffers);
        Ok(())
    });
    probe
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("probing io_uring panicked")))
}
// ANCHOR_END: probe
