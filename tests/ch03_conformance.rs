//! The poll-backend conformance suite (`src/poll/conformance.rs`) on the
//! backends of chapter 3: epoll (Linux) and [`AnyPoll`], the run-time choice
//! the reactor holds. Chapter 10's kqueue runs it in
//! `tests/ch10_conformance.rs`.
//!
//! Chapter 3, "The poller", explains the suite. Your own backend joins with
//! one line, here or in a file of its chapter:
//! `evio::poll_conformance!(ch03_poll2, Poll2);` and `cargo test ch03_poll2`
//! checks it. The suite needs the `conformance` feature, which every test
//! build of this crate has (see Cargo.toml).
//!
//! [`AnyPoll`]: evio::poll::AnyPoll

#[cfg(target_os = "linux")]
evio::poll_conformance!(ch03_epoll, evio::poll::Epoll);

evio::poll_conformance!(ch03_any, evio::poll::AnyPoll);

/// A backend that keeps its own list of numbers, as a `poll(2)` one does:
/// epoll underneath, but an `add` of a number it still holds is refused
/// (`File exists`), because it cannot see a close. It says so with
/// `FORGETS_ON_CLOSE = false`; the loop, and the suite, then delete before
/// they close, and the whole suite passes.
#[cfg(target_os = "linux")]
mod listed {
    use std::collections::HashSet;
    use std::io;
    use std::os::fd::RawFd;
    use std::time::Duration;

    use evio::poll::{Epoll, Event, Interest, Poll};

    pub struct Listed<const SAYS: bool> {
        inner: Epoll,
        held: HashSet<RawFd>,
    }

    impl<const SAYS: bool> Poll for Listed<SAYS> {
        type Signal = <Epoll as Poll>::Signal;
        const FORGETS_ON_CLOSE: bool = SAYS;

        fn new() -> io::Result<Self> {
            let held = HashSet::new();
            Ok(Listed {
                inner: Epoll::new()?,
                held,
            })
        }
        fn signal(&self) -> Self::Signal {
            self.inner.signal()
        }
        fn add(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
            if !self.held.insert(fd) {
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
            // A number closed without a delete may still be in epoll's set
            // under the old socket: replace it, as a list would.
            let _ = self.inner.delete(fd);
            self.inner.add(fd, interest)
        }
        fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
            self.inner.modify(fd, interest)
        }
        fn delete(&mut self, fd: RawFd) -> io::Result<()> {
            self.held.remove(&fd);
            self.inner.delete(fd)
        }
        fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
            self.inner.wait(events, timeout)
        }
    }
}

// Says what it is: the suite passes.
#[cfg(target_os = "linux")]
evio::poll_conformance!(ch03_listed, listed::Listed<false>);

/// The same backend claiming that closing forgets: the suite closes
/// without a delete, as the loop would, and the reused number is refused.
#[cfg(target_os = "linux")]
#[test]
#[should_panic(expected = "add refused it")]
fn ch03_a_backend_that_cannot_see_a_close_must_say_so() {
    evio::poll::conformance::closed_fd_number_can_be_added_again::<listed::Listed<true>>();
}
