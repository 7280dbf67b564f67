//! What a server owes its clients, first written for the thread-based
//! variant and now run on every engine: a peer that
//! never reads costs the others nothing and is closed after the output
//! timeout; an idle connection is closed after the idle timeout; past
//! `max_connections` a connection is closed at once and counted; a panic
//! in a callback closes only its connection (or, with `FailFast`, ends
//! the server); a `Detach` asked for by a wake happens without waiting for
//! the client; a `Detach` with no `detached` closes; and stopping makes no
//! connection to the server's own address.
//!
//! Chapter 15, "What a server owes its clients", explains each (its section
//! on the thread-based variant). Every test loops over `common::backends()`.

mod common;

use std::io::{self, ErrorKind, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{
    backends, config, connect_tcp, expect_eof, read_line, start, wait_until, within, Client, Setup,
    TempDir,
};
use evio::{
    Action, Backend, Config, Conn, Events, Limits, LoadBalance, Options, Panics, Receive, Stream,
    Waker,
};

/// The setups these tests run on: every engine, the reactor's too.
fn setups() -> Vec<Setup> {
    backends()
}

/// A config for `setup`, one loop, with `limits` and `panics`.
fn cfg(setup: Setup, limits: Limits, panics: Panics) -> Config {
    Config {
        limits,
        panics,
        ..config(setup, 1, LoadBalance::Random)
    }
}

/// More than the kernel's buffers on loopback hold, both ways.
const BIG: usize = 32 << 20;

/// Greets with `hi`, echoes lines, answers `big` with `BIG` bytes, panics
/// on `boom` (and in `closed` after `boom-twice`), and records what
/// `closed` got.
#[derive(Default)]
struct Probe {
    opened: AtomicUsize,
    closed: Mutex<Vec<(ErrorKind, String)>>,
}

impl Probe {
    fn closed_with(&self, kind: ErrorKind) -> Vec<String> {
        let closed = self.closed.lock().unwrap();
        closed
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

impl Events for Probe {
    type Context = bool;

    fn opened(&self, _c: &mut Conn<bool>, out: &mut Vec<u8>) -> (Options, Action) {
        self.opened.fetch_add(1, Ordering::SeqCst);
        out.extend_from_slice(b"hi\n");
        (Options::default(), Action::None)
    }

    fn data(&self, c: &mut Conn<bool>, input: &[u8], out: &mut Vec<u8>) -> Action {
        match input {
            b"big\n" => out.resize(BIG, b'x'),
            b"boom\n" => panic!("boom requested"),
            b"boom-twice\n" => {
                *c.context_mut() = true;
                panic!("boom requested twice");
            }
            _ => out.extend_from_slice(input),
        }
        Action::None
    }

    fn closed(&self, c: &mut Conn<bool>, err: Option<io::Error>) -> Action {
        let (kind, msg) = err.map_or((ErrorKind::Other, String::new()), |e| {
            (e.kind(), e.to_string())
        });
        self.closed.lock().unwrap().push((kind, msg));
        if *c.context() {
            panic!("closed panics too");
        }
        Action::None
    }
}

/// Connects and reads the greeting.
fn greeted(server: &common::Running) -> Client {
    let mut c = Client::connect(&server.info.addrs[0]);
    assert_eq!(read_line(&mut c), "hi\n");
    c
}

/// Echoes one line within `bound`, or fails.
fn echoes_within(c: &mut Client, line: &str, bound: Duration) {
    c.set_read_timeout(Some(bound));
    c.write_all(line.as_bytes()).unwrap();
    let started = Instant::now();
    assert_eq!(read_line(c), line);
    assert!(
        started.elapsed() < bound,
        "echo took {:?}",
        started.elapsed()
    );
}

// ANCHOR: non_reading_peer
#[test]
fn ch15_threads_a_peer_that_never_reads_costs_the_others_nothing() {
    within(60, || {
        for setup in setups() {
            let limits = Limits {
                output_limit: 256 * 1024,
                output_timeout: Some(Duration::from_millis(300)),
                ..Limits::none()
            };
            let events = Arc::new(Probe::default());
            let server = start(
                setup,
                events.clone(),
                cfg(setup, limits, Panics::Isolate),
                &["tcp://127.0.0.1:0"],
            );
            // The hog asks for 32 MiB and never reads: evio's loop would
            // sit in its write until the hog reads, which it never does.
            let mut hog = greeted(&server);
            hog.write_all(b"big\n").unwrap();
            let asked = Instant::now();
            // Five others, one after another, are each served at once.
            for i in 0..5 {
                let mut c = greeted(&server);
                echoes_within(&mut c, &format!("other {i}\n"), Duration::from_secs(2));
            }
            // The hog stays over the output limit: after 300 ms it is closed.
            wait_until(10, "the hog closed", || {
                !events.closed_with(ErrorKind::TimedOut).is_empty()
            });
            let waited = asked.elapsed();
            let why = &events.closed_with(ErrorKind::TimedOut)[0];
            assert!(why.contains("output over"), "{setup:?}: {why}");
            // Not at once: after the timeout (measured from the client's
            // side, which may see its write return a moment late).
            assert!(
                waited >= Duration::from_millis(250),
                "{setup:?}: {waited:?}"
            );
            // What it got is a part of the reply, then the end.
            let got = common::read_to_eof(&mut hog);
            assert!(got.len() < BIG, "{setup:?}: {} bytes", got.len());
            server.stop(10).unwrap();
        }
    });
}
// ANCHOR_END: non_reading_peer

/// The limit's other half: a peer that sends without reading is no longer
/// read once its pending output is over the limit, so what the server
/// holds for it stays bounded by the limit, one read, and the kernel's
/// buffers.
#[test]
fn ch15_threads_a_peer_that_sends_but_never_reads_is_no_longer_read() {
    within(60, || {
        for setup in setups() {
            let limit = 256 * 1024;
            let limits = Limits {
                output_limit: limit,
                ..Limits::none()
            };
            let events = Arc::new(Probe::default());
            let server = start(
                setup,
                events.clone(),
                cfg(setup, limits, Panics::Isolate),
                &["tcp://127.0.0.1:0"],
            );
            let mut hog = connect_tcp(server.addr(0));
            hog.set_write_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let chunk = vec![b'y'; 64 * 1024];
            let deadline = Instant::now() + Duration::from_secs(20);
            let blocked = loop {
                match hog.write(&chunk) {
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break true
                    }
                    Err(e) => panic!("{setup:?}: the hog's write failed: {e}"),
                }
                if Instant::now() > deadline {
                    break false;
                }
            };
            assert!(blocked, "{setup:?}: the server read the hog forever");
            // The server stopped reading the hog: what it read stays put.
            let read = server.stats.total().bytes_in;
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(server.stats.total().bytes_in, read, "{setup:?}");
            // And it is bounded: the limit, one read of 64 KiB, and what
            // the kernel holds (our receive buffer, the server's send
            // buffer, at most `tcp_wmem`'s maximum on Linux). A multishot
            // receive on io_uring goes on receiving until its cancel takes
            // effect, at the loop's next `io_uring_enter`: one turn's
            // worth, at most the loop's buffer ring (128 buffers of 16 KiB,
            // `src/uring/buffers.rs`; chapter 16).
            let sock = socket2::SockRef::from(&hog);
            let kernel = sock.recv_buffer_size().unwrap() + wmem_max();
            let one_read = match setup.io_uring.recv {
                Receive::Multishot if setup == Backend::IoUring => 128 * 16 * 1024,
                _ => 64 * 1024,
            };
            let bound = (limit + one_read + kernel) as u64;
            assert!(read <= bound, "{setup:?}: read {read} > {bound}");
            // Another client is served meanwhile.
            let mut other = greeted(&server);
            echoes_within(&mut other, "still here\n", Duration::from_secs(2));
            drop(hog);
            server.stop(10).unwrap();
        }
    });
}

/// The largest send buffer Linux grows a TCP socket to (4 MiB if unknown).
fn wmem_max() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20)
}

#[test]
fn ch15_idle_timeout_closes_a_silent_connection_with_timed_out() {
    within(60, || {
        for setup in setups() {
            let limits = Limits {
                idle_timeout: Some(Duration::from_millis(200)),
                ..Limits::none()
            };
            let events = Arc::new(Probe::default());
            let server = start(
                setup,
                events.clone(),
                cfg(setup, limits, Panics::Isolate),
                &["tcp://127.0.0.1:0"],
            );
            let started = Instant::now();
            let mut silent = greeted(&server);
            // A chatty client, one line every 50 ms for 600 ms, stays.
            let mut chatty = greeted(&server);
            while started.elapsed() < Duration::from_millis(600) {
                echoes_within(&mut chatty, "tick\n", Duration::from_secs(2));
                std::thread::sleep(Duration::from_millis(50));
            }
            expect_eof(&mut silent);
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_millis(200),
                "{setup:?}: {waited:?}"
            );
            let why = events.closed_with(ErrorKind::TimedOut);
            assert_eq!(why.len(), 1, "{setup:?}: {why:?}");
            assert!(why[0].contains("idle"), "{setup:?}: {}", why[0]);
            echoes_within(&mut chatty, "still here\n", Duration::from_secs(2));
            server.stop(10).unwrap();
        }
    });
}

#[test]
fn ch15_max_connections_closes_one_too_many_at_once_and_counts_it() {
    within(60, || {
        for setup in setups() {
            let limits = Limits {
                max_connections: 2,
                ..Limits::none()
            };
            let events = Arc::new(Probe::default());
            let server = start(
                setup,
                events.clone(),
                cfg(setup, limits, Panics::Isolate),
                &["tcp://127.0.0.1:0"],
            );
            let a = greeted(&server);
            let mut b = greeted(&server);
            // The third: accepted by the kernel, closed by the server
            // before any `opened`.
            let mut third = Client::connect(&server.info.addrs[0]);
            expect_eof(&mut third);
            assert_eq!(server.stats.total().rejected, 1, "{setup:?}");
            assert_eq!(events.opened.load(Ordering::SeqCst), 2, "{setup:?}");
            // One leaves: there is room again.
            drop(a);
            wait_until(10, "a closed", || events.closed.lock().unwrap().len() == 1);
            let mut d = greeted(&server);
            echoes_within(&mut d, "in\n", Duration::from_secs(2));
            echoes_within(&mut b, "still in\n", Duration::from_secs(2));
            server.stop(10).unwrap();
        }
    });
}

#[test]
fn ch15_a_panic_in_data_closes_only_its_connection() {
    within(60, || {
        for setup in setups() {
            let events = Arc::new(Probe::default());
            let server = start(
                setup,
                events.clone(),
                cfg(setup, Limits::default(), Panics::Isolate),
                &["tcp://127.0.0.1:0"],
            );
            let mut other = greeted(&server);
            let mut doomed = greeted(&server);
            doomed.write_all(b"boom\n").unwrap();
            expect_eof(&mut doomed);
            wait_until(10, "closed", || events.closed.lock().unwrap().len() == 1);
            let (kind, why) = events.closed.lock().unwrap()[0].clone();
            assert_eq!(kind, ErrorKind::Other, "{setup:?}");
            assert!(why.contains("panicked"), "{setup:?}: {why}");
            assert!(why.contains("boom requested"), "{setup:?}: {why}");
            echoes_within(&mut other, "still here\n", Duration::from_secs(2));
            // A `closed` that panics too is dropped: the loop goes on.
            let mut twice = greeted(&server);
            twice.write_all(b"boom-twice\n").unwrap();
            expect_eof(&mut twice);
            echoes_within(&mut other, "and here\n", Duration::from_secs(2));
            server.stop(10).unwrap();
        }
    });
}

#[test]
fn ch15_fail_fast_ends_the_server_with_an_error_naming_the_loop() {
    within(60, || {
        for setup in setups() {
            let events = Arc::new(Probe::default());
            let server = start(
                setup,
                events.clone(),
                cfg(setup, Limits::default(), Panics::FailFast),
                &["tcp://127.0.0.1:0"],
            );
            let mut doomed = greeted(&server);
            doomed.write_all(b"boom\n").unwrap();
            let err = server.join(10).unwrap_err();
            assert!(err.to_string().contains("loop 0"), "{setup:?}: {err}");
        }
    });
}

/// Keeps the waker of the connection; a wake detaches it. Records the input
/// `data` got, and echoes it; the detached stream answers one line.
#[derive(Default)]
struct WakeDetach {
    waker: Mutex<Option<Waker>>,
    inputs: Mutex<Vec<Vec<u8>>>,
    detached: Mutex<Option<JoinHandle<Vec<u8>>>>,
    closed: AtomicUsize,
}

impl Events for WakeDetach {
    type Context = ();

    fn opened(&self, c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        *self.waker.lock().unwrap() = Some(c.waker());
        out.extend_from_slice(b"hello\n");
        (Options::default(), Action::None)
    }

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        if input.is_empty() {
            return Action::Detach;
        }
        self.inputs.lock().unwrap().push(input.to_vec());
        out.extend_from_slice(input);
        Action::None
    }

    fn detached(&self, c: &mut Conn<()>, mut stream: Stream) -> Action {
        // The addresses are still there after the hand-over.
        assert!(c.local_addr().is_ok() && c.remote_addr().is_ok());
        let t = std::thread::spawn(move || {
            let mut all = Vec::new();
            stream.read_to_end(&mut all).expect("detached read");
            stream.write_all(b"bye\n").unwrap();
            all
        });
        *self.detached.lock().unwrap() = Some(t);
        Action::None
    }

    fn closed(&self, _c: &mut Conn<()>, _err: Option<io::Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }
}

// ANCHOR: detach_from_wake
#[test]
fn ch15_detach_from_a_wake_needs_no_client_input_and_loses_nothing() {
    within(60, || {
        let dir = TempDir::new();
        for setup in backends() {
            for addr in ["tcp://127.0.0.1:0".to_string(), dir.unix_addr("d.sock")] {
                let events = Arc::new(WakeDetach::default());
                let cfg = config(setup, 1, LoadBalance::Random);
                let server = start(setup, events.clone(), cfg, &[&addr]);
                let mut c = Client::connect(&server.info.addrs[0]);
                assert_eq!(read_line(&mut c), "hello\n");
                c.write_all(b"one\n").unwrap();
                assert_eq!(read_line(&mut c), "one\n");
                // The thread variant's reader is now waiting for the socket
                // with a permit out. The wake's detach calls it back.
                let waker = events.waker.lock().unwrap().clone().unwrap();
                waker.wake().unwrap();
                wait_until(10, "the detach, with no input", || {
                    events.detached.lock().unwrap().is_some()
                });
                // What comes next, and the half-close, are the stream's.
                c.write_all(b"two\n").unwrap();
                c.shutdown_write();
                assert_eq!(read_line(&mut c), "bye\n", "{setup:?} {addr}");
                let t = events.detached.lock().unwrap().take().unwrap();
                assert_eq!(common::join_within(t, 10), b"two\n", "{setup:?}");
                assert_eq!(*events.inputs.lock().unwrap(), [b"one\n".to_vec()]);
                expect_eof(&mut c);
                server.stop(10).unwrap();
                assert_eq!(events.closed.load(Ordering::SeqCst), 0, "{setup:?}");
            }
        }
    });
}
// ANCHOR_END: detach_from_wake

/// Detaches on `detach`, and does not implement `detached`.
#[derive(Default)]
struct DetachNoHandler {
    closed: AtomicUsize,
}

impl Events for DetachNoHandler {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, _input: &[u8], _out: &mut Vec<u8>) -> Action {
        Action::Detach
    }

    fn closed(&self, _c: &mut Conn<()>, _err: Option<io::Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }
}

#[test]
fn ch15_detach_without_detached_calls_closed_as_evio_does() {
    within(60, || {
        // Every engine: the fix is `Events::detached`'s default.
        for setup in backends() {
            let events = Arc::new(DetachNoHandler::default());
            let cfg = config(setup, 1, LoadBalance::Random);
            let server = start(setup, events.clone(), cfg, &["tcp://127.0.0.1:0"]);
            let mut c = Client::connect(&server.info.addrs[0]);
            c.write_all(b"detach\n").unwrap();
            expect_eof(&mut c);
            wait_until(10, "closed", || events.closed.load(Ordering::SeqCst) == 1);
            server.stop(10).unwrap();
        }
    });
}

/// Counts `opened`.
#[derive(Default)]
struct Opens(AtomicUsize);

impl Events for Opens {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, _out: &mut Vec<u8>) -> (Options, Action) {
        self.0.fetch_add(1, Ordering::SeqCst);
        (Options::default(), Action::None)
    }
}

// ANCHOR: stop_no_poke
/// Stopping makes no connection to the server's own address. With
/// `reuseport`, such a connection may reach another server on the port: a
/// spurious `opened` there (evio's variant closes its listener instead).
#[test]
fn ch15_stopping_connects_to_nobody() {
    within(120, || {
        let dir = TempDir::new();
        for setup in backends() {
            let bystander = Arc::new(Opens::default());
            let cfg = config(setup, 1, LoadBalance::Random);
            let b = start(
                setup,
                bystander.clone(),
                cfg,
                &["tcp://127.0.0.1:0?reuseport=1"],
            );
            let shared = format!("tcp://127.0.0.1:{}?reuseport=1", b.port());
            // Ten servers on the same port, each started and stopped: a poke
            // goes to the bystander about half of the time.
            for _ in 0..10 {
                let cfg = config(setup, 1, LoadBalance::Random);
                let a = start(setup, Arc::new(Opens::default()), cfg, &[&shared]);
                a.stop(10).unwrap();
            }
            assert_eq!(bystander.0.load(Ordering::SeqCst), 0, "{setup:?}");
            b.stop(10).unwrap();
            // A unix socket server stops at once.
            let path = dir.unix_addr("stop.sock");
            let cfg = config(setup, 1, LoadBalance::Random);
            let u = start(setup, Arc::new(Opens::default()), cfg, &[&path]);
            let started = Instant::now();
            u.stop(10).unwrap();
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(1),
                "{setup:?}: stop took {took:?}"
            );
        }
    });
}
// ANCHOR_END: stop_no_poke
