//! The grader of lab 10 (chapter 10, "kqueue"): two more properties of the
//! poll conformance suite, `one_event_per_fd` and `hang_up_is_readable` in
//! `labs/conformance_more.rs`, which this file includes as a module. Each
//! must pass on epoll and fail on a backend with the bug it is about: two
//! wrappers around epoll, defined below, that behave as a kqueue backend
//! would without its care. `#[ignore]`d: it fails until you do the lab.
//! Grade it with `cargo test lab10 -- --ignored`.

#![cfg(target_os = "linux")]

#[path = "../labs/conformance_more.rs"]
mod conformance_more;

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use evio::poll::conformance::with_watchdog;
use evio::poll::{Epoll, Event, Interest, Poll};

/// Epoll, with each event that is both readable and writable reported as
/// two, as kqueue's two filters return them when nobody merges them.
struct Unmerged(Epoll);

/// Epoll, with readability reported only when there are bytes to read, as
/// a kqueue backend would that trusted `data` (the byte count) and ignored
/// `EV_EOF`.
struct CountsBytes(Epoll);

/// The bytes waiting to be read on `fd` (`FIONREAD`, kqueue's `data`).
fn bytes_to_read(fd: RawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int; a bad fd only makes it fail.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if r < 0 {
        0
    } else {
        n
    }
}

/// The `Poll` methods but `wait`, handed to the inner epoll.
macro_rules! wrap_epoll {
    ($name:ident, $wait:expr) => {
        impl Poll for $name {
            type Signal = <Epoll as Poll>::Signal;

            fn new() -> io::Result<Self> {
                Epoll::new().map($name)
            }
            fn signal(&self) -> Self::Signal {
                self.0.signal()
            }
            fn add(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
                self.0.add(fd, interest)
            }
            fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
                self.0.modify(fd, interest)
            }
            fn delete(&mut self, fd: RawFd) -> io::Result<()> {
                self.0.delete(fd)
            }
            fn wait(
                &mut self,
                events: &mut Vec<Event>,
                timeout: Option<Duration>,
            ) -> io::Result<()> {
                self.0.wait(events, timeout)?;
                let rewrite: fn(Event) -> Vec<Event> = $wait;
                *events = events.drain(..).flat_map(rewrite).collect();
                Ok(())
            }
        }
    };
}

wrap_epoll!(Unmerged, |ev| {
    if ev.readable && ev.writable {
        let read = Event {
            writable: false,
            ..ev
        };
        let write = Event {
            readable: false,
            ..ev
        };
        vec![read, write]
    } else {
        vec![ev]
    }
});

wrap_epoll!(CountsBytes, |ev| {
    let readable = ev.readable && bytes_to_read(ev.fd) > 0;
    if readable || ev.writable {
        vec![Event { readable, ..ev }]
    } else {
        vec![]
    }
});

/// `property` on `P` must fail (panic), within the watchdog.
fn must_fail(name: &str, backend: &str, bug: &str, property: fn()) {
    let got = std::panic::catch_unwind(|| with_watchdog(name, property));
    assert!(
        got.is_err(),
        "lab10: {name} passed on {backend}, which {bug}: the property does not catch that bug"
    );
}

/// `property` must pass on epoll.
fn must_pass(name: &str, property: fn()) {
    if let Err(panic) = std::panic::catch_unwind(|| with_watchdog(name, property)) {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("lab10: {name} fails on epoll, which is right: {text}");
    }
}

#[test]
#[ignore = "lab 10: write the two properties in labs/conformance_more.rs, then `cargo test lab10 -- --ignored`"]
fn lab10_conformance_more_one_event_per_fd() {
    let name = "one_event_per_fd";
    must_pass(name, conformance_more::one_event_per_fd::<Epoll>);
    must_fail(
        name,
        "Unmerged",
        "reports a socket ready for read and write as two events",
        conformance_more::one_event_per_fd::<Unmerged>,
    );
}

#[test]
#[ignore = "lab 10: write the two properties in labs/conformance_more.rs, then `cargo test lab10 -- --ignored`"]
fn lab10_conformance_more_hang_up_is_readable() {
    let name = "hang_up_is_readable";
    must_pass(name, conformance_more::hang_up_is_readable::<Epoll>);
    must_fail(
        name,
        "CountsBytes",
        "reports a socket readable only when it has bytes to read",
        conformance_more::hang_up_is_readable::<CountsBytes>,
    );
}
