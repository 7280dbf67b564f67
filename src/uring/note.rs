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
use std::sync::Arc;

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
