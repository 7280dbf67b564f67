//! The notes other threads send a loop of the reactor or of io_uring: a
//! wake, a handed-off connection, a [`Writer`](crate::Writer)'s bytes or
//! close (a stop is a flag of the queue's); and how a wake or a writer's delivery becomes one.
//!
//! Chapter 4, "Wake-ups", explains this file (chapter 16 the io_uring
//! loop's side). Both engines read the same notes from a [`NoteQueue`]
//! (`src/notes.rs`); what differs is how its signal ends each one's wait.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;

use super::loops::Stop;
use super::sock::Sock;
use crate::conn::{Deliver, Wake};
use crate::notes::NoteQueue;

// ANCHOR: note
/// What other threads send a reactor or io_uring loop through its note
/// queue (evio's notes are an `interface{}`: a duration, an error, or a conn).
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
}

/// A [`Waker`](crate::Waker) or a [`Writer`](crate::Writer) of the reactor
/// or of io_uring holds its loop's note queue.
impl Wake for NoteQueue<Note> {
    fn deliver(&self, fd: RawFd, id: u64, what: Deliver) -> io::Result<()> {
        match what {
            Deliver::Wake => self.add(Note::Wake { fd, id }),
            what => self.add(Note::Deliver { fd, id, what }),
        }
    }
}
// ANCHOR_END: note

// ANCHOR: stopper
/// Stopping a reactor or io_uring server: every loop's queue is told to
/// stop, with no lock taken, so that a signal handler may do it
/// ([`NoteQueue::stop`]).
pub(crate) struct StopNotes(pub(crate) Vec<Arc<NoteQueue<Note>>>);

impl Stop for StopNotes {
    fn stop(&self) {
        for q in &self.0 {
            let _ = q.stop();
        }
    }

    fn signal_safe(&self) -> bool {
        true
    }
}
// ANCHOR_END: stopper
