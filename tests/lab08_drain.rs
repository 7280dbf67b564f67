//! The grader of lab 08 (chapter 8's exercise 3, "Graceful shutdown"): a
//! graceful stop on the reactor. After
//! `Stopper::stop`, each loop stops accepting, closes its connections that
//! have nothing left to write, and keeps writing to the others until their
//! output is gone or `DRAIN_TIMEOUT` (2 s) has passed; then it closes what
//! is left and ends. `#[ignore]`d: it fails until you do the lab. Grade it
//! with `cargo test lab08 -- --ignored`.
//!
//! Only the reactor is graded (evio's strategies and chapter 13's); the
//! thread-based variant's stop is unchanged by this lab.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{backends, config, connect_tcp, start, within, Running};
use evio::{Action, Backend, Conn, Events, LoadBalance};

/// The reply to every line: big enough to stay pending for a while.
const REPLY: usize = 4 * 1024 * 1024;

/// The drain's deadline the lab asks for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers each line with [`REPLY`] bytes.
struct Big;

impl Events for Big {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        for _ in input.iter().filter(|&&b| b == b'\n') {
            out.resize(out.len() + REPLY, b'x');
        }
        Action::None
    }
}

/// The reactor's setups (epoll, kqueue): the lab changes `src/reactor/`,
/// not the thread-based variant's or io_uring's loop.
fn reactors() -> Vec<common::Setup> {
    backends()
        .into_iter()
        .filter(|s| !matches!(s.backend, Backend::Threads | Backend::IoUring))
        .collect()
}

/// Starts [`Big`] on two loops.
fn serve(setup: common::Setup) -> Running {
    let cfg = config(setup, 2, LoadBalance::RoundRobin);
    start(setup, Arc::new(Big), cfg, &["tcp://127.0.0.1:0"])
}

#[test]
#[ignore = "lab 08: a stop that drains pending output within a deadline, then `cargo test lab08 -- --ignored`"]
fn lab08_drain_a_slow_reader_gets_all_of_its_reply() {
    within(120, || {
        for setup in reactors() {
            let server = serve(setup);
            let mut slow = connect_tcp(server.addr(0));
            slow.write_all(b"give\n").unwrap();
            // The reply has begun: part of it is in the kernel, most of it
            // is pending in the loop.
            let mut first = [0u8; 1024];
            slow.read_exact(&mut first).unwrap();
            let reader = thread::spawn(move || {
                // About 0.5 s for 4 MiB: slow, but well within the deadline.
                let mut got = first.len();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match slow.read(&mut buf) {
                        Ok(0) => return Ok(got),
                        Ok(n) => got += n,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err((got, e)),
                    }
                    thread::sleep(Duration::from_millis(8));
                }
            });
            thread::sleep(Duration::from_millis(50));
            server.stopper.stop();
            // While the loop drains, a new client is not served.
            thread::sleep(Duration::from_millis(100));
            let mut late = connect_tcp_or_refused(server.addr(0));
            if let Some(late) = late.as_mut() {
                late.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let _ = late.write_all(b"give\n");
                let mut buf = [0u8; 16];
                if let Ok(n @ 1..) = late.read(&mut buf) {
                    panic!(
                        "lab08, {setup:?}: a client that connected after stop() was served \
                         ({n} bytes): a draining loop must stop accepting (take the listeners \
                         out of its poller)"
                    );
                }
            }
            let got = reader.join().unwrap();
            match got {
                Ok(n) => assert_eq!(
                    n, REPLY,
                    "lab08, {setup:?}: the slow client read {n} of {REPLY} bytes, then end-of-file: \
                     stop() closed the connection with its output pending instead of draining it"
                ),
                Err((n, e)) => panic!(
                    "lab08, {setup:?}: the slow client read {n} of {REPLY} bytes, then {e}: \
                     stop() closed the connection with its output pending instead of draining it"
                ),
            }
            server.join(10).unwrap();
        }
    });
}

/// A connection to `addr`, or `None` if it is refused (the listener is
/// already closed: also a correct answer).
fn connect_tcp_or_refused(addr: std::net::SocketAddr) -> Option<std::net::TcpStream> {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()
}

#[test]
#[ignore = "lab 08: a stop that drains pending output within a deadline, then `cargo test lab08 -- --ignored`"]
fn lab08_drain_ends_at_its_deadline_and_closes_idle_connections_at_once() {
    within(120, || {
        for setup in reactors() {
            let server = serve(setup);
            // One client that asks and never reads, one idle.
            let mut stuck = connect_tcp(server.addr(0));
            stuck.write_all(b"give\n").unwrap();
            let mut idle = connect_tcp(server.addr(0));
            thread::sleep(Duration::from_millis(200));
            let t = Instant::now();
            server.stopper.stop();
            // The idle connection is closed at once, not at the deadline.
            let mut buf = [0u8; 16];
            let n = idle.read(&mut buf).unwrap_or(0);
            assert_eq!(n, 0, "lab08, {setup:?}: the idle client got bytes");
            let idle_closed = t.elapsed();
            assert!(
                idle_closed < DRAIN_TIMEOUT / 2,
                "lab08, {setup:?}: the idle connection was closed after {idle_closed:?}: a \
                 connection with nothing to write is closed as soon as the drain begins"
            );
            // The stuck one holds the server up to the deadline, no longer.
            let server_ended = {
                let h = server.handle;
                while !h.is_finished() && t.elapsed() < DRAIN_TIMEOUT + Duration::from_secs(5) {
                    thread::sleep(Duration::from_millis(10));
                }
                assert!(
                    h.is_finished(),
                    "lab08, {setup:?}: the server still runs {:?} after stop(), with a client \
                     that never reads: the drain must end at its deadline ({DRAIN_TIMEOUT:?})",
                    t.elapsed()
                );
                h.join().unwrap().unwrap();
                t.elapsed()
            };
            assert!(
                server_ended >= DRAIN_TIMEOUT - Duration::from_millis(100),
                "lab08, {setup:?}: the server ended {server_ended:?} after stop(), with 4 MiB \
                 still pending for a client: a stop must give pending output {DRAIN_TIMEOUT:?}"
            );
            drop(stuck);
        }
    });
}
