//! The grader of lab 04 (chapter 4, "Wake-ups"): a bound on the wakes
//! waiting in a loop's note queue. Past `WAKE_LIMIT` (4,096) notes,
//! `Waker::wake` fails with `WouldBlock` instead of growing the queue, and
//! a stop still gets through. `#[ignore]`d: it fails until
//! you have done the lab. Grade it with `cargo test lab04 -- --ignored`.
//!
//! Graded on the engines that read a `NoteQueue` (the reactor on epoll or
//! kqueue, with evio's strategies and chapter 13's, and io_uring where the
//! kernel allows it); the thread-based variant has a channel of its own.

mod common;

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{backends, config, connect_tcp, start, wait_until, within, Setup};
use evio::{Action, Backend, Conn, Events, LoadBalance, Waker, Wakeups};

/// The bound the lab asks for.
const WAKE_LIMIT: usize = 4096;
/// How many wakes the test tries while the loop is busy.
const TRIES: usize = 5000;

/// On a line from the client: hands the connection's waker to the test
/// and holds the loop until the test says go. On a wake: counts it.
struct Busy {
    wakers: Mutex<mpsc::Sender<Waker>>,
    go: Mutex<mpsc::Receiver<()>>,
    woken: AtomicUsize,
}

impl Events for Busy {
    type Context = ();

    fn data(&self, c: &mut Conn<()>, input: &[u8], _out: &mut Vec<u8>) -> Action {
        if input.is_empty() {
            self.woken.fetch_add(1, Ordering::SeqCst);
            return Action::None;
        }
        let _ = self.wakers.lock().unwrap().send(c.waker());
        let _ = self
            .go
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(30));
        Action::None
    }
}

/// The engines whose loops read a `NoteQueue`.
fn with_note_queues() -> Vec<Setup> {
    backends()
        .into_iter()
        .filter(|s| s.backend != Backend::Threads)
        .collect()
}

/// Tries `TRIES` wakes; returns how many were accepted before the first
/// refusal, and checks that every refusal is a `WouldBlock`.
fn flood(waker: &Waker, what: &str) -> usize {
    let results: Vec<io::Result<()>> = (0..TRIES).map(|_| waker.wake()).collect();
    let accepted = results.iter().take_while(|r| r.is_ok()).count();
    assert!(
        accepted < TRIES,
        "lab04, {what}: {TRIES} wakes while the loop was busy were all accepted: the note \
         queue has no bound yet. Past WAKE_LIMIT = {WAKE_LIMIT} waiting notes, \
         Waker::wake must fail with ErrorKind::WouldBlock (src/notes.rs, src/shared/note.rs)"
    );
    for (i, r) in results.iter().enumerate().skip(accepted) {
        let e = r
            .as_ref()
            .expect_err("no wake is accepted once the queue is full");
        assert_eq!(
            e.kind(),
            io::ErrorKind::WouldBlock,
            "lab04, {what}: wake {i} was refused with {e:?}: say WouldBlock, which tells the \
             caller to try again later"
        );
    }
    accepted
}

/// One loop, busy in `data` while another thread wakes its connection 5,000
/// times: exactly 4,096 wakes are accepted, the rest refused with
/// `WouldBlock`, and every accepted wake reaches `data` once the loop is
/// free; a wake is accepted again once the queue has been drained. Then,
/// with the queue full again, `Stopper::stop` still stops the server: a
/// stop note is never refused.
#[test]
#[ignore = "lab 04: a bound of 4,096 waiting wakes, then `cargo test lab04 -- --ignored`"]
fn lab04_wake_limit_refuses_wakes_past_4096_and_never_a_stop() {
    within(120, || {
        for setup in with_note_queues() {
            for wakeups in [Wakeups::Coalesced, Wakeups::EveryNote] {
                let what = format!("{setup:?}, {wakeups:?}");
                let (wakers_tx, wakers) = mpsc::channel();
                let (go, go_rx) = mpsc::channel();
                let busy = Arc::new(Busy {
                    wakers: Mutex::new(wakers_tx),
                    go: Mutex::new(go_rx),
                    woken: AtomicUsize::new(0),
                });
                let cfg = evio::Config {
                    wakeups,
                    ..config(setup, 1, LoadBalance::RoundRobin)
                };
                let server = start(setup, busy.clone(), cfg, &["tcp://127.0.0.1:0"]);
                let mut client = connect_tcp(server.addr(0));
                let next_waker = || wakers.recv_timeout(Duration::from_secs(30)).unwrap();

                // 1. The loop is busy: the queue fills up.
                client.write_all(b"hold\n").unwrap();
                let waker = next_waker();
                let accepted = flood(&waker, &what);
                assert_eq!(
                    accepted, WAKE_LIMIT,
                    "lab04, {what}: {accepted} wakes were accepted before the first refusal: \
                     the bound is WAKE_LIMIT = {WAKE_LIMIT} notes waiting"
                );
                // 2. Free: every accepted wake arrives, and waking works again.
                go.send(()).unwrap();
                wait_until(30, "every accepted wake seen by data", || {
                    busy.woken.load(Ordering::SeqCst) == WAKE_LIMIT
                });
                waker.wake().unwrap_or_else(|e| {
                    panic!("lab04, {what}: a wake after the queue drained was refused: {e}")
                });
                wait_until(30, "one more wake", || {
                    busy.woken.load(Ordering::SeqCst) == WAKE_LIMIT + 1
                });
                // 3. Full again, and a stop gets through.
                client.write_all(b"hold\n").unwrap();
                let waker = next_waker();
                assert_eq!(flood(&waker, &what), WAKE_LIMIT, "{what}: the second time");
                server.stopper.stop();
                go.send(()).unwrap();
                let ended = server.join(10);
                assert!(
                    ended.is_ok(),
                    "lab04, {what}: the server stopped with {ended:?}"
                );
            }
        }
    });
}
