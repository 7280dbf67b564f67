//! Chapter 13's loom model of [`Writer`](evio::Writer): writes from other
//! threads reach the loop whole, once, in each thread's order, and never
//! hold more than the limit.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (CI does, beside chapter 11's models):
//! under that flag the note queue's mutex and the budget's counters are
//! loom's, and loom explores every interleaving of the writers and the
//! loop (up to its preemption bound).

#![cfg(loom)]

#[path = "ch11_loom_common/mod.rs"]
#[allow(dead_code)] // the chapter 11 models use the rest
mod ch11_loom_common;

use std::io;

use ch11_loom_common::{explore, NoSignal};
use evio::internals::{writer, Deliver, NoteQueue, Wake};
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

/// The loop's note queue, as a writer reaches it: each note names the
/// connection and carries what to deliver.
struct Queue(NoteQueue<(u64, Deliver)>);

impl Wake for Queue {
    fn deliver(&self, _fd: std::os::fd::RawFd, id: u64, what: Deliver) -> io::Result<()> {
        self.0.add((id, what))
    }
}

/// The bytes `thread` writes as its `n`th write: 2 bytes, so the limit of
/// 5 admits two writes in flight but not three.
fn message(thread: u8, n: u8) -> Vec<u8> {
    vec![thread, n]
}

// ANCHOR: model_writer
/// **Model 5: writes from two threads.** Two threads share one writer (a
/// clone each) and write two 2-byte messages each; the limit is 5 bytes.
/// The loop drains the queue until it has seen every message that was
/// accepted, taking each into the connection's output and telling the
/// budget, as `Loop::deliver` does, then "sends" the output (unsent 0).
/// Property: every accepted write arrives exactly once and whole; each
/// thread's arrive in the order it wrote them; a write is refused only
/// while the bytes queued and unsent would pass the limit; and the budget
/// comes back to zero.
#[test]
fn ch13_loom_writes_arrive_whole_once_in_order_within_the_limit() {
    let runs = explore(|| {
        let queue = std::sync::Arc::new(Queue(NoteQueue::new(Box::new(NoSignal))));
        let w = writer(queue.clone(), 1, 5);
        let done = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..2u8)
            .map(|t| {
                let (w, done) = (w.clone(), done.clone());
                thread::spawn(move || {
                    let ok = (0..2u8)
                        .filter(|&n| w.write(&message(t, n)).is_ok())
                        .count();
                    done.fetch_add(1, SeqCst);
                    ok
                })
            })
            .collect();
        // The loop: drain, take each write into the output, send it all.
        let mut output: Vec<Vec<u8>> = Vec::new();
        let mut batch = Vec::new();
        loop {
            // Read before draining: if both writers were done, this drain
            // takes everything they ever queued.
            let finished = done.load(SeqCst) == 2;
            queue.0.swap(&mut batch);
            let in_flight: usize = batch
                .iter()
                .map(|(_, what)| match what {
                    Deliver::Write(bytes) => bytes.len(),
                    _ => 0,
                })
                .sum();
            assert!(
                in_flight <= 5,
                "{in_flight} bytes queued, over the limit of 5"
            );
            for (id, what) in batch.drain(..) {
                assert_eq!(id, 1);
                let Deliver::Write(bytes) = what else {
                    panic!("only writes here")
                };
                w.budget().taken(bytes.len());
                output.push(bytes);
            }
            w.budget().unsent(0); // the peer took it all
            if finished {
                break;
            }
            thread::yield_now();
        }
        let accepted: usize = writers.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(
            output.len(),
            accepted,
            "every accepted write, once: {output:?}"
        );
        assert!(
            output.iter().all(|m| m.len() == 2),
            "a write split: {output:?}"
        );
        for t in 0..2u8 {
            let mine: Vec<u8> = output.iter().filter(|m| m[0] == t).map(|m| m[1]).collect();
            assert!(mine.windows(2).all(|p| p[0] < p[1]), "thread {t}: {mine:?}");
        }
        // At most 4 bytes are ever queued before a write checks the limit,
        // so the first two writes always fit: the limit refuses only a
        // third in flight.
        assert!(
            accepted >= 2,
            "the limit refused writes that fit: {accepted}"
        );
        w.budget().reserve(5).expect("the budget came back to zero");
    });
    assert!(runs > 1);
}
// ANCHOR_END: model_writer
