//! Chapter 15, "What a server owes its clients": the timeouts, the limits
//! and panics, each checked on a real server, on every engine.
//!
//! Every test sets its limits small (a few hundred milliseconds, a few
//! KiB) so that it is quick, and watches the one client it misbehaves with
//! and another that behaves, which must be served all along.

mod common;

use std::io::{self, ErrorKind, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{backends, config, connect_tcp, read_line, start, within, Setup};
use evio::{Action, Config, Conn, Events, Limits, LoadBalance, Options, Panics, Writes};

/// Echoes lines; panics on a line that says "boom"; with `deadline` set,
/// gives each client that long to send a whole line (the slowloris guard
/// an HTTP server puts on a request head). Records how connections ended.
#[derive(Default)]
struct Lines {
    deadline: Option<Duration>,
    closed: Mutex<Vec<Option<(ErrorKind, String)>>>,
}

impl Events for Lines {
    type Context = Vec<u8>;

    fn opened(&self, c: &mut Conn<Vec<u8>>, _out: &mut Vec<u8>) -> (Options, Action) {
        c.set_deadline(self.deadline.map(|d| Instant::now() + d));
        (Options::default(), Action::None)
    }

    fn data(&self, c: &mut Conn<Vec<u8>>, input: &[u8], out: &mut Vec<u8>) -> Action {
        c.context_mut().extend_from_slice(input);
        while let Some(end) = c.context().iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = c.context_mut().drain(..=end).collect();
            assert!(line != b"boom\n", "boom, said the client");
            out.extend_from_slice(&line);
            // A whole line: the next one gets a fresh deadline.
            c.set_deadline(self.deadline.map(|d| Instant::now() + d));
        }
        Action::None
    }

    fn closed(&self, _c: &mut Conn<Vec<u8>>, err: Option<io::Error>) -> Action {
        let err = err.map(|e| (e.kind(), e.to_string()));
        self.closed.lock().unwrap().push(err);
        Action::None
    }
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::none();
    f(&mut l);
    l
}

fn run(setup: Setup, events: &Arc<Lines>, limits: Limits) -> common::Running {
    let cfg = Config {
        limits,
        ..config(setup, 1, LoadBalance::Random)
    };
    start(setup, events.clone(), cfg, &["tcp://127.0.0.1:0"])
}

/// The engines the limits are checked on: every one.
fn engines() -> Vec<Setup> {
    backends()
}

/// Reads until the server closes the connection (EOF or reset); fails the
/// test if that takes longer than `secs`.
fn closed_within(s: &mut std::net::TcpStream, secs: u64) -> Duration {
    let t = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return t.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return t.elapsed(),
            Err(e) => panic!("not closed within {secs} s: {e}"),
        }
    }
}

/// The ends `closed` saw, once there are `n` of them.
fn ends(events: &Lines, n: usize) -> Vec<Option<(ErrorKind, String)>> {
    common::wait_until(10, "closed calls", || {
        events.closed.lock().unwrap().len() >= n
    });
    events.closed.lock().unwrap().clone()
}

#[test]
fn ch15_an_idle_connection_is_closed_and_a_busy_one_is_not() {
    within(60, || {
        for setup in engines() {
            let events = Arc::new(Lines::default());
            // Idle five times the busy client's pause: a loaded machine
            // (the whole suite on two cores) once stretched 100 ms past 300.
            let idle = Duration::from_millis(500);
            let server = run(setup, &events, limits(|l| l.idle_timeout = Some(idle)));
            let mut quiet = connect_tcp(server.addr(0));
            let mut busy = connect_tcp(server.addr(0));
            quiet.write_all(b"hello\n").unwrap();
            assert_eq!(read_line(&mut quiet), "hello\n");
            // The busy client talks every 100 ms for 1.2 s: never idle.
            for i in 0..12 {
                busy.write_all(format!("{i}\n").as_bytes()).unwrap();
                assert_eq!(read_line(&mut busy), format!("{i}\n"), "{setup:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
            closed_within(&mut quiet, 5);
            let got = ends(&events, 1);
            assert!(
                matches!(&got[0], Some((ErrorKind::TimedOut, m)) if m.contains("idle")),
                "{setup:?}: {got:?}"
            );
            assert_eq!(server.stats.total().timed_out, 1, "{setup:?}");
            busy.write_all(b"still here\n").unwrap();
            assert_eq!(read_line(&mut busy), "still here\n", "{setup:?}");
            server.stop(10).unwrap();
        }
    });
}

#[test]
fn ch15_a_slowloris_client_meets_its_deadline() {
    within(60, || {
        for setup in engines() {
            let events = Arc::new(Lines {
                deadline: Some(Duration::from_millis(400)),
                ..Lines::default()
            });
            let server = run(setup, &events, Limits::none());
            let mut slow = connect_tcp(server.addr(0));
            let mut fine = connect_tcp(server.addr(0));
            // One byte every 100 ms, never a whole line: never idle, but
            // past the deadline the callback set.
            let t = Instant::now();
            let mut closed = false;
            for _ in 0..30 {
                if slow.write_all(b"x").is_err() {
                    closed = true;
                    break;
                }
                fine.write_all(b"ok\n").unwrap();
                assert_eq!(read_line(&mut fine), "ok\n", "{setup:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
            if !closed {
                closed_within(&mut slow, 5);
            }
            assert!(t.elapsed() < Duration::from_secs(3), "{setup:?}");
            let got = ends(&events, 1);
            assert!(
                matches!(&got[0], Some((ErrorKind::TimedOut, m)) if m.contains("deadline")),
                "{setup:?}: {got:?}"
            );
            // Whole lines move the deadline: the other client is still served.
            fine.write_all(b"ok\n").unwrap();
            assert_eq!(read_line(&mut fine), "ok\n", "{setup:?}");
            server.stop(10).unwrap();
        }
    });
}

#[test]
fn ch15_a_peer_that_never_reads_is_closed_after_the_output_timeout() {
    within(60, || {
        for setup in engines() {
            let events = Arc::new(Lines::default());
            let limit = limits(|l| {
                l.output_limit = 16 * 1024;
                l.output_timeout = Some(Duration::from_millis(300));
            });
            let server = run(setup, &events, limit);
            let mut hog = connect_tcp(server.addr(0));
            hog.set_write_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let lines = b"0123456789abcdef\n".repeat(4096);
            let t = Instant::now();
            // Writes until the server stops reading and closes it.
            while t.elapsed() < Duration::from_secs(10) {
                match hog.write(&lines) {
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break, // reset: closed
                }
                if !ends(&events, 0).is_empty() {
                    break;
                }
            }
            let got = ends(&events, 1);
            assert!(
                matches!(&got[0], Some((ErrorKind::TimedOut, m)) if m.contains("does not read")),
                "{setup:?}: {got:?}"
            );
            let mut other = connect_tcp(server.addr(0));
            other.write_all(b"served\n").unwrap();
            assert_eq!(read_line(&mut other), "served\n", "{setup:?}");
            server.stop(10).unwrap();
        }
    });
}

#[test]
fn ch15_past_max_connections_a_new_one_is_closed_at_once() {
    within(60, || {
        for setup in engines() {
            let events = Arc::new(Lines::default());
            let server = run(setup, &events, limits(|l| l.max_connections = 3));
            let mut held: Vec<_> = (0..3).map(|_| connect_tcp(server.addr(0))).collect();
            for (i, c) in held.iter_mut().enumerate() {
                c.write_all(format!("{i}\n").as_bytes()).unwrap();
                assert_eq!(read_line(c), format!("{i}\n"), "{setup:?}");
            }
            let mut fourth = connect_tcp(server.addr(0));
            let _ = fourth.write_all(b"let me in\n");
            assert!(closed_within(&mut fourth, 5) < Duration::from_secs(5));
            assert_eq!(server.stats.total().rejected, 1, "{setup:?}");
            // One leaves; there is room again.
            drop(held.pop());
            ends(&events, 1);
            let mut fifth = connect_tcp(server.addr(0));
            fifth.write_all(b"in\n").unwrap();
            assert_eq!(read_line(&mut fifth), "in\n", "{setup:?}");
            server.stop(10).unwrap();
        }
    });
}

#[test]
fn ch15_a_panic_closes_only_its_connection() {
    within(60, || {
        for setup in engines() {
            let events = Arc::new(Lines::default());
            let server = run(setup, &events, Limits::none());
            let mut other = connect_tcp(server.addr(0));
            let mut bomber = connect_tcp(server.addr(0));
            other.write_all(b"before\n").unwrap();
            assert_eq!(read_line(&mut other), "before\n", "{setup:?}");
            bomber.write_all(b"boom\n").unwrap();
            closed_within(&mut bomber, 5);
            let got = ends(&events, 1);
            assert!(
                matches!(&got[0], Some((ErrorKind::Other, m)) if m.contains("panicked: boom, said the client")),
                "{setup:?}: {got:?}"
            );
            other.write_all(b"after\n").unwrap();
            assert_eq!(read_line(&mut other), "after\n", "{setup:?}");
            assert_eq!(server.stats.total().panics, 1, "{setup:?}");
            server.stop(10).unwrap();
        }
    });
}

#[test]
fn ch15_fail_fast_ends_the_server_on_a_panic() {
    within(60, || {
        for setup in engines() {
            let events = Arc::new(Lines::default());
            let cfg = Config {
                panics: Panics::FailFast,
                ..config(setup, 1, LoadBalance::Random)
            };
            let server = start(setup, events.clone(), cfg, &["tcp://127.0.0.1:0"]);
            let mut bomber = connect_tcp(server.addr(0));
            bomber.write_all(b"boom\n").unwrap();
            let err = server.join(10).unwrap_err();
            assert!(err.to_string().contains("panicked"), "{setup:?}: {err}");
        }
    });
}

/// A client that writes a long pipeline before it reads a byte, as bulk
/// loaders do: 23 MB of requests of 46 bytes, replies of 22 (a Redis `GET`
/// and its value). The replies, 11 MB, are more than the kernel's socket
/// buffers hold, so a server that stops reading while any output is
/// pending deadlocks with this client; one that reads on while its output
/// is under the limit (here 32 MiB) gets through.
#[test]
fn ch15_a_long_pipeline_gets_through_before_the_client_reads() {
    struct Value;
    impl Events for Value {
        type Context = ();
        fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
            for _ in input.iter().filter(|&&b| b == b'\n') {
                out.extend_from_slice(b"$16\r\nvalue:0000000001\r\n");
            }
            Action::None
        }
    }
    within(120, || {
        // evio's way reads nothing while output is pending: it deadlocks
        // with this client, spinning (the chapter shows it).
        for setup in engines().into_iter().filter(|s| s.writes == Writes::Eager) {
            let cfg = Config {
                limits: Limits {
                    output_limit: 32 << 20,
                    ..Limits::default()
                },
                ..config(setup, 1, LoadBalance::Random)
            };
            let server = start(setup, Arc::new(Value), cfg, &["tcp://127.0.0.1:0"]);
            let mut c = connect_tcp(server.addr(0));
            let request = b"GET key:000000000001 key:000000000001 key:01\r\n";
            let n = 23_000_000 / request.len();
            // Every request first (a deadlock makes this write time out)...
            c.write_all(&request.repeat(n))
                .unwrap_or_else(|e| panic!("{setup:?}: the pipeline stalled: {e}"));
            // ...then every reply.
            let mut replies = vec![0u8; n * 22];
            c.read_exact(&mut replies).unwrap();
            assert!(replies.starts_with(b"$16\r\nvalue:0000000001\r\n"));
            server.stop(10).unwrap();
        }
    });
}
