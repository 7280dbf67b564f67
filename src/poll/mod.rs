//! The pollers: what a loop needs from epoll, kqueue, or your own.
//!
//! Chapter 3, "The poller", explains this folder. evio's `internal` package has
//! one `Poll` type per OS with the same methods (`AddRead`, `AddReadWrite`,
//! `ModRead`, `ModReadWrite`, `ModDetach`, `Wait`, `Trigger`); here they become
//! one trait, [`Poll`] (in `interface.rs`, re-exported here), and each OS
//! backend lives in its own file, as mio lays out `sys/unix/selector/epoll.rs`
//! apart from the portable code.
//!
//! The trait is small on purpose: a student's backend (`poll(2)`, say) only
//! has to add, change and remove interest, wait, and be woken; the
//! `conformance` suite (cargo feature `conformance`) checks that it does.
//!
//! [`AnyPoll`] is the backend chosen at run time ([`Choice`]): epoll or
//! kqueue (chapter 10), whichever this build has and the caller asks for.
//!
//! This module is the floor of the house: it uses `std` and `libc`, and
//! nothing from the rest of the crate. The note queue (`src/notes.rs`) and
//! the reactor (`src/reactor/`) are built on it, never the other way round.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

// The suite every backend must pass: `--features conformance`, which every
// test build of this crate has (see Cargo.toml).
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub mod epoll;
pub mod kqueue;
// The traits and types every backend uses, in a file of their own: the
// backends import them from there, never from this file, so no import
// goes in a circle (this file uses the backends).
mod interface;
mod sys;

pub use interface::{Event, Interest, Poll, Signal};

/// The backends, by name: what a student's own backend sits next to.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use epoll::Epoll;
#[cfg(has_kqueue)]
pub use kqueue::Kqueue;

/// The poller the reactor uses on this OS.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub type DefaultPoll = epoll::Epoll;
/// The poller the reactor uses on this OS.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub type DefaultPoll = kqueue::Kqueue;

/// Whether this build has the epoll backend (Linux).
pub const HAS_EPOLL: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Whether this build has the kqueue backend: macOS and the BSDs, or Linux
/// with the `libkqueue` cargo feature (chapter 10).
pub const HAS_KQUEUE: bool = cfg!(has_kqueue);

/// The epoll backend, or [`Absent`] where there is none.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub type EpollBackend = epoll::Epoll;
/// The epoll backend, or [`Absent`] where there is none.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub type EpollBackend = Absent;

/// The kqueue backend, or [`Absent`] where there is none.
#[cfg(has_kqueue)]
pub type KqueueBackend = kqueue::Kqueue;
/// The kqueue backend, or [`Absent`] where there is none.
#[cfg(not(has_kqueue))]
pub type KqueueBackend = Absent;

// ANCHOR: any_poll
/// Which backend [`AnyPoll::open`] opens. The reactor turns the config's
/// `Backend` (the examples' `--backend`) into one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// epoll on Linux, kqueue on macOS and the BSDs.
    Auto,
    Epoll,
    Kqueue,
}

/// A poller chosen at run time: what the reactor holds, so that one build
/// can serve on epoll or on kqueue.
/// Each call is a `match` on two variants next to a system call: free.
pub enum AnyPoll {
    Epoll(EpollBackend),
    Kqueue(KqueueBackend),
}

/// The wake-up handle of an [`AnyPoll`].
pub enum AnySignal {
    Epoll(<EpollBackend as Poll>::Signal),
    Kqueue(<KqueueBackend as Poll>::Signal),
}

impl AnyPoll {
    /// Opens the poller `choice` names. A backend this build lacks is
    /// `Unsupported`, with a message that says how to get it.
    pub fn open(choice: Choice) -> io::Result<AnyPoll> {
        let unsupported = |msg: &str| Err(io::Error::new(io::ErrorKind::Unsupported, msg));
        match choice {
            Choice::Auto if HAS_EPOLL => EpollBackend::new().map(AnyPoll::Epoll),
            Choice::Auto => KqueueBackend::new().map(AnyPoll::Kqueue),
            Choice::Epoll if HAS_EPOLL => EpollBackend::new().map(AnyPoll::Epoll),
            Choice::Kqueue if HAS_KQUEUE => KqueueBackend::new().map(AnyPoll::Kqueue),
            Choice::Epoll => unsupported("backend Epoll: epoll exists only on Linux"),
            Choice::Kqueue => unsupported(
                "backend Kqueue: kqueue needs macOS or a BSD; on Linux, build with \
                 `--features libkqueue` and libkqueue installed (chapter 10)",
            ),
        }
    }
}
// ANCHOR_END: any_poll

impl Signal for AnySignal {
    fn signal(&self) -> io::Result<()> {
        match self {
            AnySignal::Epoll(s) => Signal::signal(s),
            AnySignal::Kqueue(s) => Signal::signal(s),
        }
    }
}

impl Poll for AnyPoll {
    type Signal = AnySignal;

    /// The `Auto` backend.
    fn new() -> io::Result<Self> {
        AnyPoll::open(Choice::Auto)
    }

    // The arm of an `Absent` backend is never reached, and rustc says so.
    #[allow(unreachable_code)]
    fn signal(&self) -> AnySignal {
        match self {
            AnyPoll::Epoll(p) => AnySignal::Epoll(Poll::signal(p)),
            AnyPoll::Kqueue(p) => AnySignal::Kqueue(Poll::signal(p)),
        }
    }

    fn add(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        match self {
            AnyPoll::Epoll(p) => p.add(fd, interest),
            AnyPoll::Kqueue(p) => p.add(fd, interest),
        }
    }

    fn add_exclusive(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        match self {
            AnyPoll::Epoll(p) => p.add_exclusive(fd, interest),
            AnyPoll::Kqueue(p) => p.add_exclusive(fd, interest),
        }
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        match self {
            AnyPoll::Epoll(p) => p.modify(fd, interest),
            AnyPoll::Kqueue(p) => p.modify(fd, interest),
        }
    }

    /// Both backends watch edge-triggered (an absent one counts as yes).
    const EDGE_TRIGGERED: bool = EpollBackend::EDGE_TRIGGERED && KqueueBackend::EDGE_TRIGGERED;

    fn add_edge(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        match self {
            AnyPoll::Epoll(p) => p.add_edge(fd, interest),
            AnyPoll::Kqueue(p) => p.add_edge(fd, interest),
        }
    }

    fn modify_edge(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        match self {
            AnyPoll::Epoll(p) => p.modify_edge(fd, interest),
            AnyPoll::Kqueue(p) => p.modify_edge(fd, interest),
        }
    }

    fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        match self {
            AnyPoll::Epoll(p) => p.delete(fd),
            AnyPoll::Kqueue(p) => p.delete(fd),
        }
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            AnyPoll::Epoll(p) => p.wait(events, timeout),
            AnyPoll::Kqueue(p) => p.wait(events, timeout),
        }
    }
}

// ANCHOR: absent
/// A backend this build does not have. An empty enum has no values, so the
/// [`AnyPoll`] variant that holds one can never be made, and each of its
/// methods is an empty `match`: the compiler knows it never runs.
pub enum Absent {}

impl Signal for Absent {
    fn signal(&self) -> io::Result<()> {
        match *self {}
    }
}
// ANCHOR_END: absent

impl Poll for Absent {
    type Signal = Absent;

    /// Vacuously: it never watches anything, so it never makes
    /// [`AnyPoll`] less than edge-triggered.
    const EDGE_TRIGGERED: bool = true;

    fn new() -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this backend is not in this build",
        ))
    }

    fn signal(&self) -> Absent {
        match *self {}
    }

    fn add(&mut self, _: RawFd, _: Interest) -> io::Result<()> {
        match *self {}
    }

    fn modify(&mut self, _: RawFd, _: Interest) -> io::Result<()> {
        match *self {}
    }

    fn delete(&mut self, _: RawFd) -> io::Result<()> {
        match *self {}
    }

    fn wait(&mut self, _: &mut Vec<Event>, _: Option<Duration>) -> io::Result<()> {
        match *self {}
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn open_error(choice: Choice) -> io::Error {
        match AnyPoll::open(choice) {
            Ok(_) => panic!("{choice:?} should not open in this build"),
            Err(e) => e,
        }
    }

    #[test]
    fn ch10_the_backend_is_chosen_at_run_time() {
        let auto = AnyPoll::open(Choice::Auto).expect("Auto always opens");
        // Auto: epoll on Linux, kqueue elsewhere, even with libkqueue built in.
        assert_eq!(matches!(auto, AnyPoll::Epoll(_)), HAS_EPOLL);
        assert_eq!(AnyPoll::open(Choice::Kqueue).is_ok(), HAS_KQUEUE);
        assert_eq!(AnyPoll::open(Choice::Epoll).is_ok(), HAS_EPOLL);
        if !HAS_EPOLL {
            assert_eq!(open_error(Choice::Epoll).kind(), io::ErrorKind::Unsupported);
        }
    }

    #[test]
    fn ch10_kqueue_on_linux_without_the_feature_says_which_feature() {
        if HAS_KQUEUE {
            return; // nothing to check: this build has kqueue
        }
        let err = open_error(Choice::Kqueue);
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(err.to_string().contains("--features libkqueue"), "{err}");
    }
}
