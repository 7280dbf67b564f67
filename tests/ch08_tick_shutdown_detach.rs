//! evio's `TestTick`, `TestShutdown` and `TestDetach`, ported, plus the
//! ways a server ends that evio lacks or does not test: a [`Stopper`] used
//! from another thread, and `Shutdown` returned by `serving`.
//!
//! Chapter 8, "Tick, UDP, unix sockets, detach and shutdown", explains what
//! these check.
//!
//! [`Stopper`]: evio::Stopper

mod common;

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{backends, config, expect_eof, loop_index, start, wait_until, within, Client, Setup};
use common::{Rng, TempDir};
use evio::{Action, Conn, Events, LoadBalance, Options, ServerInfo, Stream};

/// The two kinds of stream listener every test here runs on.
fn listen_addrs(dir: &TempDir) -> [String; 2] {
    ["tcp://127.0.0.1:0".to_string(), dir.unix_addr("s.sock")]
}

// ---------------------------------------------------------------- tick

#[derive(Default)]
struct Ticks {
    at: Mutex<Vec<Instant>>,
    loops_seen: Mutex<Vec<usize>>,
}

impl Events for Ticks {
    type Context = ();

    fn tick(&self) -> (Option<Duration>, Action) {
        self.loops_seen.lock().unwrap().push(loop_index());
        let mut at = self.at.lock().unwrap();
        at.push(Instant::now());
        // evio's test: 25 delays of 10 ms, then Shutdown on the 26th call.
        if at.len() == 26 {
            (None, Action::Shutdown)
        } else {
            (Some(Duration::from_millis(10)), Action::None)
        }
    }
}

fn tick(backend: Setup, addr: &str, loops: isize) {
    let events = Arc::new(Ticks::default());
    let begin = Instant::now();
    let server = start(
        backend,
        events.clone(),
        config(backend, loops, LoadBalance::Random),
        &[addr],
    );
    server.join(10).unwrap();
    let took = begin.elapsed();
    let at = events.at.lock().unwrap();
    assert_eq!(at.len(), 26, "{backend:?} {addr}");
    // Never early: each tick comes at least the asked-for delay after the
    // previous one. Late is allowed (a loaded machine), within reason.
    for pair in at.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(10),
            "a tick came after {gap:?}"
        );
    }
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{backend:?} {addr}: 25 ticks of 10 ms took {took:?}"
    );
    // Only loop 0 ticks, however many loops there are.
    assert!(events.loops_seen.lock().unwrap().iter().all(|&i| i == 0));
}

#[test]
fn ch08_tick_25_ticks_of_10ms_then_shutdown() {
    within(60, || {
        let dir = TempDir::new();
        for backend in backends() {
            for addr in listen_addrs(&dir) {
                tick(backend, &addr, 1);
            }
            tick(backend, "tcp://127.0.0.1:0", 3);
        }
    });
}

// ------------------------------------------------------------ shutdown

const SHUTDOWN_CLIENTS: usize = 10;

#[derive(Default)]
struct Shutdown {
    open: AtomicUsize,
    closed: AtomicUsize,
}

impl Events for Shutdown {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, _out: &mut Vec<u8>) -> (Options, Action) {
        self.open.fetch_add(1, Ordering::SeqCst);
        (Options::default(), Action::None)
    }

    fn closed(&self, _c: &mut Conn<()>, _err: Option<io::Error>) -> Action {
        self.open.fetch_sub(1, Ordering::SeqCst);
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }

    fn tick(&self) -> (Option<Duration>, Action) {
        // Once every client is in, shut down from the tick.
        if self.open.load(Ordering::SeqCst) == SHUTDOWN_CLIENTS {
            (None, Action::Shutdown)
        } else {
            (Some(Duration::from_millis(20)), Action::None)
        }
    }
}

fn shutdown(backend: Setup, addr: &str, loops: isize) {
    let events = Arc::new(Shutdown::default());
    let server = start(
        backend,
        events.clone(),
        config(backend, loops, LoadBalance::RoundRobin),
        &[addr],
    );
    let mut clients: Vec<_> = (0..SHUTDOWN_CLIENTS)
        .map(|_| Client::connect(&server.info.addrs[0]))
        .collect();
    server.join(10).unwrap();
    assert_eq!(
        events.closed.load(Ordering::SeqCst),
        SHUTDOWN_CLIENTS,
        "{backend:?} {addr}: every connection gets closed"
    );
    assert_eq!(events.open.load(Ordering::SeqCst), 0);
    for c in &mut clients {
        expect_eof(c);
    }
}

#[test]
fn ch08_shutdown_from_tick_closes_every_connection() {
    within(60, || {
        let dir = TempDir::new();
        for backend in backends() {
            for addr in listen_addrs(&dir) {
                shutdown(backend, &addr, 1);
                shutdown(backend, &addr, 3);
            }
        }
    });
}

// -------------------------------------------------------------- detach

/// What the client sends, twice: 10 KiB of noise, a marker, 10 KiB more.
fn detach_message() -> Vec<u8> {
    let mut rng = Rng::from_clock("detach");
    let noise = rng.bytes(10 * 1024);
    [&noise[..], b"--detached--", &noise[..]].concat()
}

struct Detach {
    expected: Vec<u8>,
    detached: Mutex<Vec<JoinHandle<()>>>,
    was_tcp: Mutex<Vec<bool>>,
    closed: AtomicUsize,
}

impl Events for Detach {
    /// The input collected so far.
    type Context = Vec<u8>;

    fn data(&self, c: &mut Conn<Vec<u8>>, input: &[u8], out: &mut Vec<u8>) -> Action {
        let got = c.context_mut();
        got.extend_from_slice(input);
        if got.len() < self.expected.len() {
            return Action::None;
        }
        assert!(*got == self.expected, "client -> server mismatch");
        // Echo it, then detach: the echo is written before the detach.
        out.extend_from_slice(got);
        Action::Detach
    }

    fn detached(&self, _c: &mut Conn<Vec<u8>>, mut stream: Stream) -> Action {
        self.was_tcp
            .lock()
            .unwrap()
            .push(matches!(stream, Stream::Tcp(_)));
        let expected = self.expected.clone();
        // The stream is an ordinary blocking socket now: use it from a thread.
        let t = std::thread::spawn(move || {
            let mut p = vec![0; expected.len()];
            stream.read_exact(&mut p).expect("detached read");
            assert!(p == expected, "detached stream read wrong bytes");
            stream.write_all(&expected).expect("detached write");
            // Dropping the stream closes the connection.
        });
        self.detached.lock().unwrap().push(t);
        Action::None
    }

    fn closed(&self, _c: &mut Conn<Vec<u8>>, _err: Option<io::Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }
}

fn detach(backend: Setup, addr: &str) {
    let expected = detach_message();
    let events = Arc::new(Detach {
        expected: expected.clone(),
        detached: Mutex::default(),
        was_tcp: Mutex::default(),
        closed: AtomicUsize::new(0),
    });
    let server = start(
        backend,
        events.clone(),
        config(backend, 1, LoadBalance::Random),
        &[addr],
    );
    let mut c = Client::connect(&server.info.addrs[0]);
    let mut p = vec![0; expected.len()];
    // Through the loop: sent, collected, echoed.
    c.write_all(&expected).unwrap();
    c.read_exact(&mut p).unwrap();
    assert!(p == expected, "loop echo");
    // Through the detached stream: read by its thread, written back, closed.
    c.write_all(&expected).unwrap();
    c.read_exact(&mut p).unwrap();
    assert!(p == expected, "detached echo");
    expect_eof(&mut c);

    for t in std::mem::take(&mut *events.detached.lock().unwrap()) {
        common::join_within(t, 10);
    }
    server.stop(10).unwrap();
    let is_tcp = addr.starts_with("tcp");
    assert_eq!(
        *events.was_tcp.lock().unwrap(),
        [is_tcp],
        "one {addr} stream"
    );
    assert_eq!(
        events.closed.load(Ordering::SeqCst),
        0,
        "closed after detach"
    );
}

#[test]
fn ch08_detach_hands_over_a_working_blocking_stream() {
    within(60, || {
        let dir = TempDir::new();
        for backend in backends() {
            for addr in listen_addrs(&dir) {
                detach(backend, &addr);
            }
        }
    });
}

// ------------------------------------------------------------- stopper

#[derive(Default)]
struct Counting {
    opened: AtomicUsize,
    closed: AtomicUsize,
    ticks: AtomicUsize,
}

impl Events for Counting {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        self.opened.fetch_add(1, Ordering::SeqCst);
        out.extend_from_slice(b"hi\n");
        (Options::default(), Action::None)
    }

    fn closed(&self, _c: &mut Conn<()>, _err: Option<io::Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }

    fn tick(&self) -> (Option<Duration>, Action) {
        self.ticks.fetch_add(1, Ordering::SeqCst);
        (Some(Duration::from_millis(10)), Action::None)
    }
}

#[test]
fn ch08_stopper_stops_a_running_server_from_another_thread() {
    within(60, || {
        let dir = TempDir::new();
        for backend in backends() {
            for addr in listen_addrs(&dir) {
                let events = Arc::new(Counting::default());
                let server = start(
                    backend,
                    events.clone(),
                    config(backend, 3, LoadBalance::RoundRobin),
                    &[&addr],
                );
                let mut clients: Vec<_> = (0..3)
                    .map(|_| Client::connect(&server.info.addrs[0]))
                    .collect();
                for c in &mut clients {
                    assert_eq!(common::read_line(c), "hi\n");
                }
                // The server ticks, so it is really running, and keeps going.
                wait_until(10, "a few ticks", || {
                    events.ticks.load(Ordering::SeqCst) >= 3
                });
                std::thread::sleep(Duration::from_millis(50));
                assert!(!server.handle.is_finished(), "ended by itself");

                let stopper = server.stopper.clone();
                common::join_within(std::thread::spawn(move || stopper.stop()), 10);
                let again = server.stopper.clone();
                server.join(10).unwrap();
                assert_eq!(events.closed.load(Ordering::SeqCst), 3, "{addr}");
                for c in &mut clients {
                    expect_eof(c);
                }
                again.stop(); // a stopped server: nothing happens
            }
        }
    });
}

// ------------------------------------------------- shutdown from serving

#[derive(Default)]
struct NotServing(Counting);

impl Events for NotServing {
    type Context = ();

    fn serving(&self, _info: &ServerInfo) -> Action {
        Action::Shutdown
    }

    fn opened(&self, c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        self.0.opened(c, out)
    }

    fn tick(&self) -> (Option<Duration>, Action) {
        self.0.tick()
    }
}

#[test]
fn ch08_shutdown_from_serving_ends_at_once() {
    within(60, || {
        for backend in backends() {
            let events = Arc::new(NotServing::default());
            let begin = Instant::now();
            let server = start(
                backend,
                events.clone(),
                config(backend, 2, LoadBalance::Random),
                &["tcp://127.0.0.1:0"],
            );
            let addr = server.addr(0);
            server.join(5).unwrap();
            let took = begin.elapsed();
            assert!(took < Duration::from_secs(2), "took {took:?}");
            assert_eq!(events.0.ticks.load(Ordering::SeqCst), 0, "a loop ran");
            // The listener is closed when `run` returns.
            let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5));
            assert!(refused.is_err(), "{addr} still accepts");
            assert_eq!(events.0.opened.load(Ordering::SeqCst), 0);
        }
    });
}
