//! Lab 10: two more properties for the poll conformance suite, written by
//! you (chapter 10, "kqueue"). Both are things kqueue does differently from
//! epoll, which our kqueue backend hides from the loop, and which the eight
//! properties of `src/poll/conformance.rs` do not check yet. This file is
//! the starting point; the grader, `tests/lab10_conformance_more.rs`,
//! includes it and runs each property on epoll, where it must pass, and on
//! a backend with the matching bug, where it must fail:
//!
//! ```text
//! cargo test lab10 -- --ignored
//! ```
//!
//! Both functions panic with "not yet implemented" until you write them.
//! Keep their names and signatures: the grader uses them. Like the suite's
//! properties, each one creates its own poller with `P::new()`, uses real
//! sockets on 127.0.0.1 (port 0), and fails by panicking with a message that
//! says what the backend did wrong. Bound every wait with a timeout: a
//! backend that never reports must fail the property, not hang it.

use evio::poll::Poll;

/// A socket registered for read and write, with bytes to read and room to
/// write, is reported by one wait as **one** event that is both readable
/// and writable, never as two events for the same fd. kqueue returns one
/// entry per filter, so two for such a socket; our backend merges them
/// (`merge` in `src/poll/kqueue/fired.rs`).
#[allow(clippy::extra_unused_type_parameters)] // until you write it
pub fn one_event_per_fd<P: Poll>() {
    todo!("lab 10: one_event_per_fd, in labs/conformance_more.rs")
}

/// A socket registered for read whose peer closes its end, without sending
/// a byte, is reported readable: the loop's next `read` returns 0 and it
/// closes the connection. kqueue reports it as an `EVFILT_READ` entry with
/// `EV_EOF` and `data` 0 (no bytes to read): a backend that takes `data` 0
/// for "nothing to read" never closes such a connection.
#[allow(clippy::extra_unused_type_parameters)] // until you write it
pub fn hang_up_is_readable<P: Poll>() {
    todo!("lab 10: hang_up_is_readable, in labs/conformance_more.rs")
}
