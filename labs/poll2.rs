//! Lab 03: a `poll(2)` backend, written by you (chapter 3, "The poller",
//! exercise 3). This file is the starting point; the grader,
//! `tests/lab03_poll2.rs`, includes it and runs the conformance suite
//! (`src/poll/conformance.rs`) on [`Poll2`]:
//!
//! ```text
//! cargo test lab03 -- --ignored
//! ```
//!
//! Every method below panics with "not yet implemented" until you write it.
//! Keep the names `Poll2` and `Poll2Signal`: the grader uses them. The file
//! is written as a user of the library writes a backend, against the public
//! `evio::poll` module, so it could move to a crate of its own unchanged.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use evio::poll::{Event, Interest, Poll, Signal};

/// A poller on `poll(2)`: the fds it watches and what for, and the reading
/// end of whatever wakes it (a pipe, or an eventfd on Linux).
pub struct Poll2 {
    // Your fields: for example `fds: Vec<libc::pollfd>`, and the wake-up fd.
}

/// What another thread holds to wake a [`Poll2`].
pub struct Poll2Signal {
    // Your fields: for example the writing end of the pipe, shared with an
    // `Arc` so that the fd lives as long as any signal or the poller.
}

impl Signal for Poll2Signal {
    fn signal(&self) -> io::Result<()> {
        todo!("lab 03: Poll2Signal::signal, make the poller's current or next wait return")
    }
}

impl Poll for Poll2 {
    type Signal = Poll2Signal;

    fn new() -> io::Result<Self> {
        todo!("lab 03: Poll2::new, the fd list and the wake-up pipe or eventfd")
    }

    fn signal(&self) -> Poll2Signal {
        todo!("lab 03: Poll2::signal, a handle on the wake-up")
    }

    fn add(&mut self, _fd: RawFd, _interest: Interest) -> io::Result<()> {
        todo!("lab 03: Poll2::add")
    }

    fn modify(&mut self, _fd: RawFd, _interest: Interest) -> io::Result<()> {
        todo!("lab 03: Poll2::modify")
    }

    fn delete(&mut self, _fd: RawFd) -> io::Result<()> {
        todo!("lab 03: Poll2::delete")
    }

    fn wait(&mut self, _events: &mut Vec<Event>, _timeout: Option<Duration>) -> io::Result<()> {
        todo!("lab 03: Poll2::wait, one poll(2) call")
    }
}
