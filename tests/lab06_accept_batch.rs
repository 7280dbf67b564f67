//! The grader of lab 06 (chapter 6, "Accepting and balancing"): a loop
//! woken for a listener accepts up to `ACCEPT_BATCH` (16) connections, not
//! one, before it waits again. `#[ignore]`d: it fails until you have done
//! the lab. Grade it with `cargo test lab06 -- --ignored`.
//!
//! Only the reactor is graded (epoll, kqueue; evio's strategies and chapter
//! 13's): the thread-based variant's accept thread blocks in `accept` and
//! never waits, and io_uring has its own accept.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{backends, config, connect_tcp, start, wait_until, within, Setup};
use evio::{Action, Backend, Conn, Events, LoadBalance, Options, Stats};

/// The batch the lab asks for.
const BATCH: usize = 16;
/// Connections queued in the listener while the loop is busy.
const QUEUED: usize = 64;

/// Holds the loop in the first connection's `opened` until the test says
/// go, and records, for every connection, the loop's wait count when it
/// was opened: the connections opened in one turn share it.
struct Gate {
    /// Told when the first `opened` starts to wait; then waits for go.
    hold: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
    stats: OnceLock<Stats>,
    opened: AtomicUsize,
    /// The wait count at each `opened` after the first.
    turns: Mutex<Vec<u64>>,
}

impl Events for Gate {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, _out: &mut Vec<u8>) -> (Options, Action) {
        let held = self.hold.lock().unwrap().take();
        if let Some((holding, go)) = held {
            let _ = holding.send(());
            let _ = go.recv_timeout(Duration::from_secs(30));
        } else if let Some(stats) = self.stats.get() {
            let waits = stats.loops()[0].waits;
            self.turns.lock().unwrap().push(waits);
        }
        self.opened.fetch_add(1, Ordering::SeqCst);
        (Options::default(), Action::None)
    }
}

/// The reactor's setups: the lab changes `Loop::accept` and its helpers.
fn reactors() -> Vec<Setup> {
    backends()
        .into_iter()
        .filter(|s| !matches!(s.backend, Backend::Threads | Backend::IoUring))
        .collect()
}

/// One loop, held busy while 64 clients connect; then released. Every
/// connection must be served, the 64 queued ones in at most 16 waits
/// (untouched, the loop accepts one per wait: 64 waits at least), and no
/// turn may open more than 16 of them (the batch is bounded, so that a
/// flood of new clients cannot starve the connections the loop holds).
#[test]
#[ignore = "lab 06: accept up to 16 connections per wake-up, then `cargo test lab06 -- --ignored`"]
fn lab06_accept_batch_takes_sixteen_connections_per_wake_up() {
    within(120, || {
        for setup in reactors() {
            let (holding_tx, holding) = mpsc::channel();
            let (go, go_rx) = mpsc::channel();
            let gate = Arc::new(Gate {
                hold: Mutex::new(Some((holding_tx, go_rx))),
                stats: OnceLock::new(),
                opened: AtomicUsize::new(0),
                turns: Mutex::new(Vec::new()),
            });
            let cfg = config(setup, 1, LoadBalance::RoundRobin);
            let server = start(setup, gate.clone(), cfg, &["tcp://127.0.0.1:0"]);
            let _ = gate.stats.set(server.stats.clone());
            let first = connect_tcp(server.addr(0));
            holding
                .recv_timeout(Duration::from_secs(30))
                .expect("the first connection's opened runs");
            // The loop is busy: these wait in the listen queue (the kernel
            // completes the handshake without the loop).
            let queued: Vec<_> = (0..QUEUED).map(|_| connect_tcp(server.addr(0))).collect();
            let before = server.stats.loops()[0].waits;
            go.send(()).unwrap();
            wait_until(30, "every queued connection opened", || {
                gate.opened.load(Ordering::SeqCst) == QUEUED + 1
            });
            let stats = server.stats.loops()[0];
            let waits = stats.waits - before;
            assert_eq!(stats.accepts as usize, QUEUED + 1, "{setup:?}: {stats}");
            let turns = gate.turns.lock().unwrap().clone();
            let mut per_turn: Vec<usize> = Vec::new();
            for w in turns.chunk_by(|a, b| a == b) {
                per_turn.push(w.len());
            }
            assert!(
                waits <= BATCH as u64,
                "lab06, {setup:?}: {QUEUED} connections queued in the listener took {waits} \
                 waits to accept (opened per wait: {per_turn:?}): the loop accepts one \
                 connection per wake-up; accept up to ACCEPT_BATCH = {BATCH} before waiting \
                 again (Loop::accept in src/reactor/event_loop.rs)"
            );
            let most = per_turn.iter().copied().max().unwrap_or(0);
            assert!(
                most <= BATCH,
                "lab06, {setup:?}: one turn of the loop opened {most} connections (opened per \
                 wait: {per_turn:?}): the batch must stop at ACCEPT_BATCH = {BATCH}, not at \
                 EAGAIN, so that a flood of new clients cannot keep the loop from the ones \
                 it serves"
            );
            drop((first, queued));
            server.stop(10).unwrap();
        }
    });
}
