//! What a poller is: the [`Poll`] and [`Signal`] traits, and the
//! [`Interest`] and [`Event`] they speak in.
//!
//! Chapter 3, "The poller", explains this file; `src/poll/mod.rs` re-exports
//! all of it, so a user writes `evio::poll::Poll`. evio's `internal` package
//! has one `Poll` type per OS with the same methods (`AddRead`,
//! `AddReadWrite`, `ModRead`, `ModReadWrite`, `ModDetach`, `Wait`,
//! `Trigger`); here they become one trait, which each backend (epoll,
//! kqueue, yours) implements, importing it from this file.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

// ANCHOR: interest
/// Which readiness a file descriptor is registered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    /// Report when there is something to read (or a connection to accept).
    pub read: bool,
    /// Report when a write would not block.
    pub write: bool,
}

impl Interest {
    /// Readable only: evio's `AddRead`/`ModRead`.
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
    /// Writable only.
    pub const WRITE: Interest = Interest {
        read: false,
        write: true,
    };
    /// Both: evio's `AddReadWrite`/`ModReadWrite`.
    pub const READ_WRITE: Interest = Interest {
        read: true,
        write: true,
    };
    /// Neither.
    pub const NONE: Interest = Interest {
        read: false,
        write: false,
    };
}
// ANCHOR_END: interest

/// One ready file descriptor, as a wait reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The file descriptor.
    pub fd: RawFd,
    /// Readable, or closed by the peer, or in error (a read will not block).
    pub readable: bool,
    /// Writable, or in error (a write will not block).
    pub writable: bool,
    /// The peer closed its side, or the socket failed: after what is
    /// queued, a read returns 0 or an error. An edge-triggered reader
    /// needs to know (chapter 13): this is reported once, with the last
    /// input, so a short read does not mean nothing is left to read.
    pub closed: bool,
}

// ANCHOR: signal
/// The "wake up!" half of a poller, usable from any thread.
///
/// On Linux this writes to the loop's eventfd; on the BSDs it triggers an
/// `EVFILT_USER` event. The note queue (`src/notes.rs`, chapter 4) holds one
/// to wake its loop; tests give the queue a counting stand-in.
pub trait Signal: Send + Sync {
    /// Makes the loop's current or next wait return.
    fn signal(&self) -> io::Result<()>;
}
// ANCHOR_END: signal

// ANCHOR: poll
/// A readiness poller, level-triggered: a descriptor that stays ready is
/// reported by every wait until it is not ready any more. (Or, through
/// [`Poll::add_edge`], edge-triggered: see there.)
///
/// What the loop relies on, beyond each method's own contract (each is a
/// property of the conformance suite, `src/poll/conformance.rs`):
///
/// - **Closing forgets.** The loop closes a connection's fd without calling
///   [`Poll::delete`] first, as epoll and kqueue allow: closing the last
///   descriptor of a socket ends its watch. A closed fd is never reported
///   again. A backend that cannot see a close says so with
///   [`Poll::FORGETS_ON_CLOSE`] `= false`, and the loop deletes first.
/// - **Numbers come back.** The kernel gives a new socket the lowest free
///   number, so the next accepted connection often has the number of one
///   just closed, and [`Poll::add`] is called with it while a backend that
///   cannot see the close (`poll(2)`, `select(2)`) may still hold it. Such an
///   `add` must succeed and replace what was held: no interest of the closed
///   socket may be reported for the new one.
/// - **One thread.** Every method but [`Signal::signal`] is called from the
///   loop's own thread only; the poller needs `Send` (it is built on one
///   thread and moved to its loop), not `Sync`.
pub trait Poll: Sized + Send {
    /// The handle other threads use to wake this poller.
    type Signal: Signal + 'static;

    /// Whether closing a watched fd ends its watch, as in epoll and kqueue,
    /// whose watches belong to the open socket. A backend that keeps its own
    /// list of numbers (`poll(2)`, `select(2)`) never learns of a close: it
    /// says `false`, and the loop calls [`Poll::delete`] before it closes a
    /// connection, one call more per connection. The conformance suite
    /// holds a backend to its word either way.
    const FORGETS_ON_CLOSE: bool = true;

    /// Creates a poller and its wake-up mechanism.
    fn new() -> io::Result<Self>;

    /// A wake-up handle; [`Signal::signal`] makes the current or next
    /// [`Poll::wait`] return.
    fn signal(&self) -> Self::Signal;

    /// Starts watching `fd`.
    fn add(&mut self, fd: RawFd, interest: Interest) -> io::Result<()>;

    /// Starts watching `fd`, a descriptor that several pollers watch (a
    /// listener), asking that a readiness wake only one of the pollers that
    /// are waiting, not all (epoll's `EPOLLEXCLUSIVE`, Linux 4.5; chapter
    /// 13). A backend without such a flag watches as [`Poll::add`] does,
    /// which this default does: correct, only without the saving.
    fn add_exclusive(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.add(fd, interest)
    }

    /// Changes what `fd` is watched for.
    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()>;

    // ANCHOR: edge
    /// Whether [`Poll::add_edge`] and [`Poll::modify_edge`] really watch
    /// edge-triggered. A backend that leaves them to their defaults (level)
    /// says `false`; the loop is correct either way, and the conformance
    /// suite checks the edge properties only where this says `true`.
    const EDGE_TRIGGERED: bool = false;

    /// Starts watching `fd` edge-triggered (epoll's `EPOLLET`, kqueue's
    /// `EV_CLEAR`; chapter 13): a readiness is reported once, when it
    /// comes (input arrives, room to write frees up), and not again by
    /// later waits while it lasts. The caller must read until the socket
    /// would block, or remember that it did not. What the loop relies on
    /// besides (both properties of the conformance suite):
    ///
    /// - **A new arrival is a new edge.** Input that arrives after a read
    ///   is reported, even if input was left unread before it.
    /// - **Modify reports a readiness it turns on.** A direction that
    ///   [`Poll::modify_edge`] adds to the interest is reported at the next
    ///   wait if it is ready then, although its edge came while it was not
    ///   watched.
    ///
    /// This default watches level-triggered, which reports more, never
    /// less: correct for a caller written for edges, only without the
    /// saving.
    fn add_edge(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.add(fd, interest)
    }

    /// Changes what `fd`, watched edge-triggered, is watched for (see
    /// [`Poll::add_edge`]).
    fn modify_edge(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.modify(fd, interest)
    }
    // ANCHOR_END: edge

    /// Stops watching `fd` (evio's `ModDetach`). Closing an fd also stops
    /// the watch, so this is needed only for an fd that stays open.
    fn delete(&mut self, fd: RawFd) -> io::Result<()>;

    /// Waits until a descriptor is ready, the poller is signalled, or
    /// `timeout` passes (`None`: no limit), and puts the ready descriptors in
    /// `events` (cleared first). A wake-up signal is consumed here and not
    /// reported, so `events` can come back empty. An interrupted wait
    /// (`EINTR`) is not an error: it returns with no events.
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()>;
}
// ANCHOR_END: poll
