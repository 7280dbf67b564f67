//! Deferred actions over real sockets: output returned together with
//! `Close` or `Shutdown` is delivered in full before the action happens,
//! from `data` and from `opened`; `pre_write` runs before the writes.
//!
//! Chapter 7, "Deferred actions and writes", explains why: the dispatch
//! writes pending output before it looks at the pending action
//! (`next_step` in `src/reactor/dispatch.rs`, evio's `loopRun` switch).

mod common;

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{backends, config, read_to_eof, start, wait_until, within, Client, Rng, TempDir};
use evio::{Action, Conn, Events, LoadBalance, Options};

/// Replies to any input with `big` and `action`; greets with `greeting`
/// and `on_open`.
struct Deferred {
    big: Vec<u8>,
    action: Action,
    greeting: &'static [u8],
    on_open: Action,
    closed: AtomicUsize,
    errors: AtomicUsize,
    pre_writes: AtomicUsize,
}

impl Deferred {
    fn new(big: Vec<u8>, action: Action) -> Deferred {
        Deferred {
            big,
            action,
            greeting: b"",
            on_open: Action::None,
            closed: AtomicUsize::new(0),
            errors: AtomicUsize::new(0),
            pre_writes: AtomicUsize::new(0),
        }
    }
}

impl Events for Deferred {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        out.extend_from_slice(self.greeting);
        (Options::default(), self.on_open)
    }

    fn data(&self, _c: &mut Conn<()>, _input: &[u8], out: &mut Vec<u8>) -> Action {
        out.extend_from_slice(&self.big);
        self.action
    }

    fn pre_write(&self) {
        self.pre_writes.fetch_add(1, Ordering::SeqCst);
    }

    fn closed(&self, _c: &mut Conn<()>, err: Option<io::Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        if err.is_some() {
            self.errors.fetch_add(1, Ordering::SeqCst);
        }
        Action::None
    }
}

fn addrs(dir: &TempDir) -> [String; 2] {
    ["tcp://127.0.0.1:0".to_string(), dir.unix_addr("d.sock")]
}

#[test]
fn ch07_close_with_output_delivers_all_of_it_first() {
    within(60, || {
        let dir = TempDir::new();
        let big = Rng::from_clock("close").bytes(4 << 20);
        for backend in backends() {
            for addr in addrs(&dir) {
                let events = Arc::new(Deferred::new(big.clone(), Action::Close));
                let cfg = config(backend, 1, LoadBalance::Random);
                let server = start(backend, events.clone(), cfg, &[&addr]);
                let mut c = Client::connect(&server.info.addrs[0]);
                c.write_all(b"send\n").unwrap();
                // Read late, so the reply is still pending when the loop
                // would be tempted to close.
                std::thread::sleep(Duration::from_millis(50));
                let got = read_to_eof(&mut c);
                assert_eq!(got.len(), big.len(), "{addr}: bytes before EOF");
                assert!(got == big, "{addr}: reply corrupted");
                wait_until(10, "closed", || events.closed.load(Ordering::SeqCst) == 1);
                assert_eq!(events.errors.load(Ordering::SeqCst), 0, "{addr}");
                assert!(events.pre_writes.load(Ordering::SeqCst) > 0, "no pre_write");
                server.stop(10).unwrap();
            }
        }
    });
}

#[test]
fn ch07_shutdown_with_output_delivers_all_of_it_first() {
    within(60, || {
        let dir = TempDir::new();
        let big = Rng::from_clock("shutdown").bytes(4 << 20);
        for backend in backends() {
            for addr in addrs(&dir) {
                let events = Arc::new(Deferred::new(big.clone(), Action::Shutdown));
                let cfg = config(backend, 2, LoadBalance::Random);
                let server = start(backend, events.clone(), cfg, &[&addr]);
                let mut c = Client::connect(&server.info.addrs[0]);
                c.write_all(b"send\n").unwrap();
                std::thread::sleep(Duration::from_millis(50));
                let got = read_to_eof(&mut c);
                assert_eq!(got.len(), big.len(), "{addr}: bytes before EOF");
                assert!(got == big, "{addr}: reply corrupted");
                // The server ends by itself, closing the connection.
                server.join(10).unwrap();
                assert_eq!(events.closed.load(Ordering::SeqCst), 1, "{addr}");
            }
        }
    });
}

#[test]
fn ch07_close_from_opened_sends_the_greeting_first() {
    within(60, || {
        let dir = TempDir::new();
        for backend in backends() {
            for addr in addrs(&dir) {
                let mut events = Deferred::new(Vec::new(), Action::None);
                events.greeting = b"go away\r\n";
                events.on_open = Action::Close;
                let events = Arc::new(events);
                let cfg = config(backend, 1, LoadBalance::Random);
                let server = start(backend, events.clone(), cfg, &[&addr]);
                for _ in 0..3 {
                    let mut c = Client::connect(&server.info.addrs[0]);
                    assert_eq!(read_to_eof(&mut c), b"go away\r\n", "{addr}");
                }
                wait_until(10, "closed", || events.closed.load(Ordering::SeqCst) == 3);
                server.stop(10).unwrap();
            }
        }
    });
}
