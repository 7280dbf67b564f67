//! What other threads send an io_uring loop, and the bell that wakes it.
//!
//! Chapter 16, "Completion instead of readiness", explains this file. The
//! notes are the reactor's (chapter 4) under another roof: a wake, a
//! handed-off connection, a [`Writer`](crate::Writer)'s bytes, a stop, on
//! the loop's [`NoteQueue`]. What differs is how the queue's signal reaches
//! a loop blocked in `io_uring_enter`: the loop keeps an 8-byte *read* of an
//! eventfd in its ring, and another thread's write to the eventfd completes
//! that read, which ends the wait. evio's `Trigger` writes to an eventfd
//! that epoll watches; here the ring itself does the watching.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, PoisonError, RwLock, TryLockError};

use io_uring::{opcode, types};

use crate::poll::Signal;

pub(crate) use crate::shared::Note;

// ANCHOR: bell
/// An eventfd shared by a loop (which keeps a read of it in its ring) and
/// its note queue (which writes to it). *Blocking*, unlike the reactor's:
/// io_uring completes an operation on a non-blocking file with `EAGAIN`
/// instead of waiting for it, so the read would never wait.
#[derive(Clone)]
pub(crate) struct Bell(Arc<OwnedFd>);

impl Bell {
    pub(crate) fn new() -> io::Result<Bell> {
        // SAFETY: eventfd takes no pointers; a new fd nothing else owns.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just made, owned by nobody else.
        Ok(Bell(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl Signal for Bell {
    fn signal(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: 8 bytes from a live u64 to an eventfd.
        let n = unsafe { libc::write(self.fd(), (&one as *const u64).cast(), 8) };
        match n {
            8 => Ok(()),
            // EAGAIN: the counter is full, so the loop has a wake pending.
            _ if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}
// ANCHOR_END: bell

/// How a loop's note queue wakes it: the chapter's two ways,
/// [`RingWake`](crate::RingWake)'s two variants.
#[derive(Clone)]
pub(crate) enum Ringer {
    Eventfd(Bell),
    MsgRing(Mailbox),
}

impl Signal for Ringer {
    fn signal(&self) -> io::Result<()> {
        match self {
            Ringer::Eventfd(bell) => bell.signal(),
            Ringer::MsgRing(mailbox) => mailbox.signal(),
        }
    }
}

// ANCHOR: mailbox
/// Where a waking thread posts a completion into a loop's ring: the ring's
/// fd and the `user_data` the loop will recognise, known only while the
/// loop runs. The note queue is made at `bind`, the ring later, on the
/// loop's thread; and [`Waker`](crate::Waker)s outlive the server. So the
/// fd is filled in by [`Mailbox::open`] and taken out again when the loop
/// ends, and a signal with no ring to post to does nothing: before the
/// loop opens its ring it has not waited yet (its first wait returns at
/// once, and it reads its notes), and after it ends nobody reads notes.
/// The lock makes a signal and the ring's closing exclusive: the fd a
/// signal uses cannot be closed, or its number reused, during the call.
#[derive(Clone, Default)]
pub(crate) struct Mailbox(Arc<RwLock<Option<(RawFd, u64)>>>);

/// The loop's hold on its [`Mailbox`]: dropped before the ring is closed
/// (a field before the ring in `Loop`), it takes the fd out again.
pub(crate) struct Open(Mailbox);

impl Mailbox {
    /// From now until the [`Open`] is dropped, a signal posts a completion
    /// with `user_data` into the ring `ring`.
    pub(crate) fn open(&self, ring: RawFd, user_data: u64) -> Open {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some((ring, user_data));
        Open(self.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        *(self.0).0.write().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl Signal for Mailbox {
    fn signal(&self) -> io::Result<()> {
        // `try_read`: the lock is held for writing only while the loop opens
        // or closes its ring, when no loop waits in it (see above), and a
        // signal handler that stops the server (`NoteQueue::stop`) may run
        // on the loop's own thread just then: waiting would never end.
        let ring = match self.0.try_read() {
            Ok(ring) => ring,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(()),
        };
        match *ring {
            Some((fd, user_data)) => send_msg_ring(fd, user_data),
            None => Ok(()), // no loop waits in this ring (see above)
        }
    }
}

/// `IORING_REGISTER_SEND_MSG_RING` (Linux 6.13): not wrapped by the
/// `io-uring` crate (0.7), whose `sys` module has it but is private.
const IORING_REGISTER_SEND_MSG_RING: libc::c_uint = 31;

/// Posts a completion with `user_data` (and result 0) into the ring `ring`.
/// A MSG_RING is an operation like any other, normally submitted through a
/// ring of one's own; a thread with no ring hands the same 64-byte entry
/// to `io_uring_register` on no ring (fd -1), and the kernel runs it at
/// once: one system call, no ring to set up. Kernels before 6.13 answer
/// `EINVAL`.
pub(crate) fn send_msg_ring(ring: RawFd, user_data: u64) -> io::Result<()> {
    let entry = opcode::MsgRingData::new(types::Fd(ring), 0, user_data, None).build();
    // SAFETY: `squeue::Entry` is `repr(C)` around the kernel's 64-byte
    // `io_uring_sqe` (the crate copies it into the ring as it is); the
    // kernel copies the one entry during the call and keeps no pointer.
    let res = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            -1,
            IORING_REGISTER_SEND_MSG_RING,
            &entry as *const _,
            1,
        )
    };
    if res < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
// ANCHOR_END: mailbox
