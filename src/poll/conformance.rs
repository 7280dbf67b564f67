//! The poll-backend conformance suite: what every [`Poll`] must do, written
//! once, generic over the backend.
//!
//! Chapter 3, "The poller", introduces it and chapter 10, "kqueue", runs it
//! on a second backend; chapter 3's lab 03 is to write a `poll(2)` backend
//! (`labs/poll2.rs`) that passes it, including the two properties of closed
//! fds that the loop relies on and that the [`Poll`] trait states. evio has no such suite: its two pollers
//! (`internal/internal_linux.go`, `internal/internal_bsd.go`) are only tested
//! through the whole server.
//!
//! Each property is a public function that panics, with a message that says
//! what went wrong, when the backend breaks it. [`poll_conformance!`] turns
//! them all into `#[test]`s for one type, each under a watchdog so that a
//! backend that ignores its timeout fails instead of hanging. The first
//! argument names the module of the tests; start it with the chapter, so
//! that `cargo test ch10` finds chapter 10's:
//!
//! ```ignore
//! evio::poll_conformance!(ch10_poll2, my_crate::Poll2);
//! ```
//!
//! The suite is compiled with the cargo feature `conformance` only. Every
//! test build of this crate has it (Cargo.toml: the crate is its own
//! dev-dependency, with the feature); another crate asks for it with
//! `evio-rs = { path = "...", features = ["conformance"] }`.
//!
//! The bounds on time are loose on purpose: the suite must pass on a loaded
//! two-core machine, and it checks behaviour, not speed.
//!
//! [`poll_conformance!`]: crate::poll_conformance

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::interface::{Event, Interest, Poll, Signal};

/// Longest a wait is given for something that is already true; far more
/// than it should take, so only a broken backend reaches it.
const PATIENCE: Duration = Duration::from_secs(5);

/// How long a wait is given to report something that must *not* come.
const QUIET: Duration = Duration::from_millis(100);

/// A connected pair of TCP sockets on 127.0.0.1 (port 0: any free port).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let a = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (b, _) = listener.accept().expect("accept");
    a.set_nodelay(true).unwrap();
    (a, b)
}

/// The event for `fd` in `events`, if any.
fn find(events: &[Event], fd: RawFd) -> Option<Event> {
    events.iter().copied().find(|e| e.fd == fd)
}

/// Waits (several times if need be, up to [`PATIENCE`]) until `fd` is
/// reported, and returns its event.
fn wait_for<P: Poll>(poll: &mut P, fd: RawFd, what: &str) -> Event {
    let start = Instant::now();
    let mut events = Vec::new();
    while start.elapsed() < PATIENCE {
        poll.wait(&mut events, Some(PATIENCE)).expect("wait");
        if let Some(ev) = find(&events, fd) {
            return ev;
        }
    }
    panic!("{what}: fd {fd} was not reported within {PATIENCE:?}");
}

/// Waits [`QUIET`] and checks that `fd` is not reported.
fn assert_quiet<P: Poll>(poll: &mut P, fd: RawFd, what: &str) {
    let mut events = Vec::new();
    let start = Instant::now();
    while start.elapsed() < QUIET {
        poll.wait(&mut events, Some(QUIET)).expect("wait");
        if let Some(ev) = find(&events, fd) {
            panic!("{what}: fd {fd} was reported ({ev:?}) but should not be");
        }
    }
}

// ANCHOR: properties
/// A socket registered for reading is reported once data arrives, not
/// before, and again by the next wait while the data stays unread
/// (level-triggered).
pub fn readable_is_reported<P: Poll>() {
    let mut poll = P::new().expect("new");
    let (mut a, b) = pair();
    poll.add(b.as_raw_fd(), Interest::READ).expect("add");
    assert_quiet(&mut poll, b.as_raw_fd(), "nothing sent yet");
    a.write_all(b"ping").unwrap();
    let ev = wait_for(&mut poll, b.as_raw_fd(), "data sent");
    assert!(ev.readable, "reported, but not readable: {ev:?}");
    assert!(!ev.writable, "registered for read only, reported writable");
    // Nobody read the data: the next wait reports it again.
    let again = wait_for(&mut poll, b.as_raw_fd(), "data still unread");
    assert!(
        again.readable,
        "level-triggered: unread data is reported again"
    );
}

/// Write interest is reported when the socket is writable, and stops being
/// reported once it is removed with `modify`.
pub fn write_interest_comes_and_goes<P: Poll>() {
    let mut poll = P::new().expect("new");
    let (_a, b) = pair();
    let fd = b.as_raw_fd();
    poll.add(fd, Interest::READ).expect("add");
    assert_quiet(&mut poll, fd, "read only, nothing to read");
    poll.modify(fd, Interest::READ_WRITE)
        .expect("modify to read+write");
    let ev = wait_for(&mut poll, fd, "an empty send buffer is writable");
    assert!(ev.writable, "reported, but not writable: {ev:?}");
    poll.modify(fd, Interest::READ)
        .expect("modify back to read");
    assert_quiet(&mut poll, fd, "write interest removed");
}

/// A deleted fd is not reported, however ready it is.
pub fn deleted_fd_is_not_reported<P: Poll>() {
    let mut poll = P::new().expect("new");
    let (mut a, b) = pair();
    let fd = b.as_raw_fd();
    poll.add(fd, Interest::READ_WRITE).expect("add");
    wait_for(&mut poll, fd, "writable after add");
    poll.delete(fd).expect("delete");
    a.write_all(b"ping").unwrap();
    assert_quiet(&mut poll, fd, "deleted, then made readable");
}

/// Puts a new socket under `fd`'s number, as the kernel does when it hands
/// a closed fd's number to the next `accept`: `dup2` closes the socket `fd`
/// held and makes the number refer to `new`'s, in one step, so no other
/// thread of the test process can take the number in between. `old` keeps
/// owning the number (now the new socket); `new`'s own number is closed.
fn reuse_number(old: &TcpStream, new: TcpStream) {
    // SAFETY: both fds are open and owned by live `TcpStream`s; afterwards
    // `old` owns the number, which refers to a socket, and `new` is dropped,
    // closing only its own number.
    let r = unsafe { libc::dup2(new.as_raw_fd(), old.as_raw_fd()) };
    assert_eq!(
        r,
        old.as_raw_fd(),
        "dup2: {}",
        std::io::Error::last_os_error()
    );
}

/// What the loop does before it closes a watched fd: nothing, or a
/// `delete` for a backend that says it cannot see a close
/// ([`Poll::FORGETS_ON_CLOSE`]).
fn close_as_the_loop_does<P: Poll>(poll: &mut P, fd: RawFd) {
    if !P::FORGETS_ON_CLOSE {
        poll.delete(fd).expect("delete before close");
    }
}

/// A closed fd's number can be added again. The loop closes a connection
/// without a `delete` first (closing stops an epoll or kqueue watch), and
/// the kernel gives the next accepted socket the lowest free number: the
/// closed one's. A backend that still holds the old number and refuses
/// the add (`File exists`) fails the server on its second connection.
pub fn closed_fd_number_can_be_added_again<P: Poll>() {
    let mut poll = P::new().expect("new");
    let (_a, b) = pair();
    let fd = b.as_raw_fd();
    poll.add(fd, Interest::READ).expect("add");
    let (_c, d) = pair();
    close_as_the_loop_does(&mut poll, fd);
    reuse_number(&b, d);
    poll.add(fd, Interest::READ).unwrap_or_else(|e| {
        panic!(
            "fd {fd} was closed and its number given to a new socket, as accept does, \
             but add refused it ({e}): the loop never deletes before it closes, so a backend \
             must forget, or replace, what it held for a number that is added again"
        )
    });
}

/// A closed fd is never reported: not while its number is free, and not
/// after the number is reused, for the closed socket's interest. The loop
/// would take the old registration's readiness for the new connection's
/// (here: writable, for a socket registered only for read).
pub fn closed_fd_is_never_reported<P: Poll>() {
    let mut poll = P::new().expect("new");
    let (_a, b) = pair();
    let fd = b.as_raw_fd();
    poll.add(fd, Interest::READ_WRITE).expect("add");
    wait_for(&mut poll, fd, "writable after add");
    // The number reused by a socket with nothing to read, registered for
    // read only: nothing may be reported for it.
    let (_c, d) = pair();
    close_as_the_loop_does(&mut poll, fd);
    reuse_number(&b, d);
    poll.add(fd, Interest::READ).expect("add the reused number");
    assert_quiet(
        &mut poll,
        fd,
        "closed while registered for write, its number reused and registered for read only \
         (is the old registration still there?)",
    );
    // Closed, number free (or taken by a socket this poller never saw).
    close_as_the_loop_does(&mut poll, fd);
    drop(b);
    assert_quiet(
        &mut poll,
        fd,
        "closed (a poll(2) backend gets POLLNVAL: not an event)",
    );
}

/// A wait blocked with no timeout returns when another thread signals, and
/// the wake-up itself is not reported as an event.
pub fn wake_from_another_thread<P: Poll>() {
    let mut poll = P::new().expect("new");
    let signal = poll.signal();
    let start = Instant::now();
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        signal.signal().expect("signal");
    });
    let mut events = Vec::new();
    // `None` would be the real test, but would hang a broken backend; the
    // watchdog of `poll_conformance!` catches that, and a long timeout
    // makes the failure message clear.
    poll.wait(&mut events, Some(4 * PATIENCE)).expect("wait");
    let took = start.elapsed();
    waker.join().unwrap();
    assert!(
        took < 2 * PATIENCE,
        "the signal did not wake the wait ({took:?})"
    );
    assert!(events.is_empty(), "a wake-up is not an event: {events:?}");
}

/// Many signals before one wait: that wait returns (a wake-up is never
/// lost), and they are one wake-up or a few, not one wait each forever.
pub fn many_wakes_are_not_lost<P: Poll>() {
    let mut poll = P::new().expect("new");
    let signal = poll.signal();
    for _ in 0..1000 {
        signal.signal().expect("signal");
    }
    let start = Instant::now();
    let mut events = Vec::new();
    poll.wait(&mut events, Some(4 * PATIENCE)).expect("wait");
    assert!(start.elapsed() < 2 * PATIENCE, "1000 signals, no wake-up");
    // Drained: some later wait must block for its whole timeout.
    for _ in 0..1000 {
        let start = Instant::now();
        poll.wait(&mut events, Some(QUIET)).expect("wait");
        if start.elapsed() >= QUIET / 2 {
            return;
        }
    }
    panic!("1000 waits after 1000 signals all returned early: wake-ups are never consumed");
}

/// A wait with a timeout and nothing to report returns after about that
/// time: not before it, and not much later. A zero timeout returns at once.
pub fn timeout_is_honoured<P: Poll>() {
    let mut poll = P::new().expect("new");
    let mut events = Vec::new();
    // A shorter wait, ended early by a signal, must not shorten the next
    // one (epoll's timer, set for the first, fires during the second).
    poll.signal().signal().expect("signal");
    poll.wait(&mut events, Some(Duration::from_millis(20)))
        .expect("wait");
    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    poll.wait(&mut events, Some(timeout)).expect("wait");
    let took = start.elapsed();
    // A little slack below: some clocks round the timeout to a tick.
    assert!(
        took >= timeout - Duration::from_millis(10),
        "returned early: {took:?}"
    );
    assert!(
        took < timeout + 2 * PATIENCE,
        "returned far too late: {took:?}"
    );
    assert!(
        events.is_empty(),
        "nothing registered, yet events: {events:?}"
    );
    let start = Instant::now();
    poll.wait(&mut events, Some(Duration::ZERO)).expect("wait");
    assert!(start.elapsed() < PATIENCE, "a zero timeout blocked");
}
// ANCHOR_END: properties

/// Runs `property` on a thread and fails if it takes more than 30 seconds,
/// so that a backend that blocks forever fails the suite instead of
/// hanging it. A panic in the property is passed on as it is.
pub fn with_watchdog(name: &str, property: fn()) {
    let (done, finished) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        property();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(30)) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = runner.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: still running after 30 s (a wait that ignores its timeout?)")
        }
    }
}

// ANCHOR: edge_properties
/// [`Poll::add_edge`] watches: input is reported, and a new arrival again.
/// On a backend that claims to be edge-triggered (`EDGE_TRIGGERED`),
/// input is reported once, not again while it stays unread; a level
/// backend, watching through the trait's defaults, reports it again.
pub fn edge_reports_each_arrival_once<P: Poll>() {
    let mut poll = P::new().expect("new");
    let (mut a, b) = pair();
    let fd = b.as_raw_fd();
    poll.add_edge(fd, Interest::READ).expect("add_edge");
    assert_quiet(&mut poll, fd, "nothing sent yet");
    a.write_all(b"ping").unwrap();
    let ev = wait_for(&mut poll, fd, "data sent");
    assert!(ev.readable, "reported, but not readable: {ev:?}");
    if P::EDGE_TRIGGERED {
        assert!(!ev.closed, "the peer is still there: {ev:?}");
        assert_quiet(&mut poll, fd, "edge-triggered: unread data, no new arrival");
    }
    a.write_all(b"pong").unwrap();
    let ev = wait_for(&mut poll, fd, "more data sent, the first still unread");
    assert!(ev.readable, "reported, but not readable: {ev:?}");
}

/// A direction that [`Poll::modify_edge`] turns on is reported if it is
/// ready, though its edge came while it was off; on an edge-triggered
/// backend, a peer's end of the stream comes with `closed`, in the same
/// report as the input before it.
pub fn edge_modify_reports_what_it_turns_on<P: Poll>() {
    let mut poll = P::new().expect("new");
    let (mut a, b) = pair();
    let fd = b.as_raw_fd();
    poll.add_edge(fd, Interest::WRITE).expect("add_edge");
    let ev = wait_for(&mut poll, fd, "an empty send buffer is writable");
    assert!(ev.writable, "reported, but not writable: {ev:?}");
    if P::EDGE_TRIGGERED {
        assert_quiet(&mut poll, fd, "edge-triggered: still writable, no new room");
    }
    // Input and the end of it arrive while read is off. A wait may report
    // the socket writable again (the peer's end wakes every watcher of the
    // socket): more than promised, which is allowed.
    a.write_all(b"ping").unwrap();
    a.shutdown(std::net::Shutdown::Write).unwrap();
    let mut events = Vec::new();
    poll.wait(&mut events, Some(QUIET)).expect("wait");
    let ev = find(&events, fd);
    assert!(!ev.is_some_and(|e| e.readable), "read is off: {ev:?}");
    poll.modify_edge(fd, Interest::READ).expect("modify_edge");
    let ev = wait_for(&mut poll, fd, "read turned on, with input waiting");
    assert!(ev.readable, "reported, but not readable: {ev:?}");
    if P::EDGE_TRIGGERED {
        assert!(
            ev.closed,
            "the peer's end came, not reported as closed: {ev:?}"
        );
    }
}
// ANCHOR_END: edge_properties

// ANCHOR: macro
/// Writes the conformance suite as `#[test]`s for one backend type, in a
/// module named `$name`, chapter first:
/// `evio::poll_conformance!(ch03_epoll, evio::poll::Epoll);` makes
/// `ch03_epoll::readable_is_reported` and nine more, and
/// `cargo test ch03_epoll` runs them. Attributes before the name go on
/// every test: `poll_conformance!(#[ignore = "lab 03"] lab03_poll2, Poll2)`
/// makes a lab's grader, run only with `-- --ignored`
/// (`tests/lab03_poll2.rs`).
#[macro_export]
macro_rules! poll_conformance {
    ($(#[$attr:meta])* $name:ident, $poll:ty) => {
        mod $name {
            // So that `$poll` may name a type of the invoking module.
            #[allow(unused_imports)]
            use super::*;
            use $crate::poll::conformance as c;

            $(#[$attr])*
            #[test]
            fn readable_is_reported() {
                c::with_watchdog("readable_is_reported", c::readable_is_reported::<$poll>);
            }

            $(#[$attr])*
            #[test]
            fn write_interest_comes_and_goes() {
                c::with_watchdog(
                    "write_interest_comes_and_goes",
                    c::write_interest_comes_and_goes::<$poll>,
                );
            }

            $(#[$attr])*
            #[test]
            fn deleted_fd_is_not_reported() {
                c::with_watchdog(
                    "deleted_fd_is_not_reported",
                    c::deleted_fd_is_not_reported::<$poll>,
                );
            }

            $(#[$attr])*
            #[test]
            fn wake_from_another_thread() {
                c::with_watchdog(
                    "wake_from_another_thread",
                    c::wake_from_another_thread::<$poll>,
                );
            }

            $(#[$attr])*
            #[test]
            fn many_wakes_are_not_lost() {
                c::with_watchdog(
                    "many_wakes_are_not_lost",
                    c::many_wakes_are_not_lost::<$poll>,
                );
            }

            $(#[$attr])*
            #[test]
            fn timeout_is_honoured() {
                c::with_watchdog("timeout_is_honoured", c::timeout_is_honoured::<$poll>);
            }

            $(#[$attr])*
            #[test]
            fn closed_fd_number_can_be_added_again() {
                c::with_watchdog(
                    "closed_fd_number_can_be_added_again",
                    c::closed_fd_number_can_be_added_again::<$poll>,
                );
            }

            $(#[$attr])*
            #[test]
            fn edge_reports_each_arrival_once() {
                c::with_watchdog(
                    "edge_reports_each_arrival_once",
                    c::edge_reports_each_arrival_once::<$poll>,
                );
            }

            $(#[$attr])*
            #[test]
            fn edge_modify_reports_what_it_turns_on() {
                c::with_watchdog(
                    "edge_modify_reports_what_it_turns_on",
                    c::edge_modify_reports_what_it_turns_on::<$poll>,
                );
            }

            $(#[$attr])*
            #[test]
            fn closed_fd_is_never_reported() {
                c::with_watchdog(
                    "closed_fd_is_never_reported",
                    c::closed_fd_is_never_reported::<$poll>,
                );
            }
        }
    };
}
// ANCHOR_END: macro
