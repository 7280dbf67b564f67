//! What other threads send a reactor loop: the [`Note`]s, how a [`Waker`]
//! turns into one, and the rule that finds a wake's target.
//!
//! Chapter 4, "Wake-ups", explains this file. It mirrors evio's `loopNote`
//! and `Conn.Wake` (`evio_unix.go`): a wake is a note on the loop's note
//! queue (`src/notes.rs`), whose signal interrupts the loop's wait. A wake
//! names the connection by fd *and* a per-loop id, so a wake for a
//! connection that has closed cannot reach a new one that got the same fd.
//!
//! [`Waker`]: crate::Waker

use std::io;
use std::os::fd::RawFd;

use crate::conn::{Deliver, Wake};
use crate::notes::NoteQueue;
use crate::shared::Sock;

// ANCHOR: note
/// What other threads send a loop through its note queue (evio's notes are
/// an `interface{}`: a duration, an error, or a conn).
#[derive(Debug)]
pub(crate) enum Note {
    /// Call `data` with no input for the connection with this fd and id.
    Wake { fd: RawFd, id: u64 },
    /// Take in this connection, accepted by loop 0 from listener `li` and
    /// counted on this loop already (`Accept::HandOff`, chapter 13).
    Adopt { sock: Sock, li: usize },
    /// From a [`Writer`](crate::Writer): bytes to append to the output of
    /// the connection with this fd and id, or a close (chapter 13).
    Deliver { fd: RawFd, id: u64, what: Deliver },
    /// End the loop (from a [`Stopper`](crate::Stopper) or another loop's shutdown).
    Stop,
}

/// A [`Waker`](crate::Waker) or a [`Writer`](crate::Writer) of the reactor
/// holds its loop's note queue.
impl Wake for NoteQueue<Note> {
    fn deliver(&self, fd: RawFd, id: u64, what: Deliver) -> io::Result<()> {
        match what {
            Deliver::Wake => self.add(Note::Wake { fd, id }),
            what => self.add(Note::Deliver { fd, id, what }),
        }
    }
}
// ANCHOR_END: note

// ANCHOR: wake_target
/// The connection a `Note::Wake { fd, id }` is for: the one the loop holds at
/// `fd`, but only if it is still the connection the waker was made for.
/// Since the loop never hands out an id twice, a waker that outlives its
/// connection reaches nobody, even after the kernel reuses the fd. A plain
/// function over the loop's table, so chapter 11's loom model
/// (`tests/ch11_loom_waker.rs`) checks the very rule the loop's `wake`
/// (`event_loop.rs`) uses.
pub fn wake_target<T>(
    slots: &mut [Option<T>],
    fd: RawFd,
    id: u64,
    id_of: impl Fn(&T) -> u64,
) -> Option<&mut T> {
    let slot = slots.get_mut(usize::try_from(fd).ok()?)?.as_mut()?;
    (id_of(slot) == id).then_some(slot)
}
// ANCHOR_END: wake_target
