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

use crate::conn::{Deliver, Wake};
use crate::notes::NoteQueue;
use crate::poll::Signal;
use crate::shared::Sock;

// ANCHOR: note
/// What other threads send an io_uring loop through its note queue.
#[derive(Debug)]
pub(crate) enum Note {
    /// Call `data` with no input for the connection with this fd and id.
    Wake { fd: RawFd, id: u64 },
    /// Take in this connection, accepted by loop 0 from listener `li` and
    /// counted on this loop already.
    Adopt { sock: Sock, li: usize },
    /// A [`Writer`](crate::Writer)'s bytes, or its close.
    Deliver { fd: RawFd, id: u64, what: Deliver },
    /// End the loop.
    Stop,
}

impl Wake for NoteQueue<Note> {
    fn deliver(&self, fd: RawFd, id: u64, what: Deliver) -> io::Result<()> {
        match what {
            Deliver::Wake => self.add(Note::Wake { fd, id }),
            what => self.add(Note::Deliver { fd, id, what }),
        }
    }
}
// ANCHOR_END: note

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
