//! A bell: the one way to call back a thread of the thread-based variant
//! that is blocked waiting for a socket, without touching the socket.
//!
//! Chapter 15, "What a server owes its clients", explains why the variant
//! needs it (its section on the thread-based variant); chapter 9 describes
//! the threads that wait on it. evio's `evio_std.go` needs none: Go can
//! interrupt a blocked `Read` (`SetReadDeadline`) or `Accept` (closing the
//! listener), because Go's runtime is itself a poller. Rust's std cannot:
//! a thread blocked in `read` or `accept` returns only when the socket has
//! something, or has been shut down, which would spoil a stream we want to
//! hand over to `detached` intact. So a thread that must stay callable
//! waits in `poll(2)` on two descriptors, its socket and a bell, and reads
//! or accepts only once `poll` says the socket is ready.
//!
//! Unix only: `poll` and an eventfd (Linux) or a socket pair (the other
//! unixes). On Windows the variant waits in `read` and `accept` as before
//! and keeps the older ways out (`src/threads/mod.rs` says which).

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

/// A descriptor that becomes readable when rung, and stays readable until
/// drained (`poll` is level-triggered): rung once and never drained, it
/// calls back every thread that waits on it, now and later.
pub(crate) struct Bell {
    /// An eventfd: one descriptor, read and written.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fd: File,
    /// The other unixes: the two ends of a socket pair.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    ends: (
        std::os::unix::net::UnixStream,
        std::os::unix::net::UnixStream,
    ),
}

/// What a wait saw first.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// The socket is ready: read or accept won't block (or fails at once).
    Ready,
    /// The bell rang.
    Bell,
}

impl Bell {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn new() -> io::Result<Bell> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscall; we own the new descriptor.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        Ok(Bell {
            fd: unsafe { File::from_raw_fd(fd) },
        })
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn new() -> io::Result<Bell> {
        let ends = std::os::unix::net::UnixStream::pair()?;
        ends.0.set_nonblocking(true)?;
        ends.1.set_nonblocking(true)?;
        Ok(Bell { ends })
    }

    /// What `poll` watches, and what `drain` reads.
    fn rx(&self) -> RawFd {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return self.fd.as_raw_fd();
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        return self.ends.0.as_raw_fd();
    }

    /// Rings: every thread waiting on the bell returns from `wait`. A full
    /// counter or pipe means it is ringing already, so errors do not matter.
    pub(crate) fn ring(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = (&self.fd).write(&1u64.to_ne_bytes());
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = (&self.ends.1).write(&[1]);
    }

    /// Silences the bell, so that the next wait blocks again.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = (&self.fd).read(&mut buf);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        while matches!((&self.ends.0).read(&mut buf), Ok(n) if n > 0) {}
    }

    // ANCHOR: wait
    /// Blocks until `sock` is readable (data, end-of-file, an error, or a
    /// connection to accept) or the bell rings; the bell wins a tie.
    pub(crate) fn wait(&self, sock: RawFd) -> io::Result<Woken> {
        let mut fds = [
            libc::pollfd {
                fd: self.rx(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sock,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        loop {
            // SAFETY: two valid pollfd structs; no timeout.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n >= 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        Ok(if fds[0].revents != 0 {
            Woken::Bell
        } else {
            Woken::Ready
        })
    }
    // ANCHOR_END: wait
}
