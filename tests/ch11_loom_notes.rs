//! Loom models of the note queue and its wake-up signal (chapter 11,
//! "Testing what is hard to test"); `src/notes.rs` is the code under test,
//! evio's `internal/notequeue.go` plus `Trigger` its Go counterpart.
//!
//! Each `ch11_loom_*` test runs a small multi-threaded program under
//! `loom::model`, which runs it again and again, once per interleaving of its
//! threads' operations on loom's mutexes, atomics and condition variables,
//! until it has tried every one (or every one with at most
//! `LOOM_MAX_PREEMPTIONS` forced switches; 3 if it is not set). The whole
//! file exists only under `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target-loom \
//!     cargo test --release --test ch11_loom_notes -- --nocapture
//! ```
#![cfg(loom)]

mod ch11_loom_common;

use std::io;

use ch11_loom_common::{expect_failure, explore, trace, NoSignal};
use evio::internals::{Bug, NoteQueue, Wakeups};
use evio::poll::Signal;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// A note in the models: (producer, its sequence number).
type Note = (usize, usize);

// ANCHOR: queue_trait
/// What the models need from a note queue. The real [`NoteQueue`]
/// implements it, and so does each deliberately broken variant below; a
/// queue of your own (exercise 1) only has to implement it too.
trait Queue: Send + Sync + 'static {
    fn add(&self, note: Note);
    fn swap(&self, batch: &mut Vec<Note>);
}

impl Queue for NoteQueue<Note> {
    fn add(&self, note: Note) {
        NoteQueue::add(self, note).unwrap();
    }
    fn swap(&self, batch: &mut Vec<Note>) {
        NoteQueue::swap(self, batch);
    }
}

/// The real queue, with its `add` replaced by one of the broken ones.
struct WithBug(NoteQueue<Note>, Bug);

impl Queue for WithBug {
    fn add(&self, note: Note) {
        self.0.add_with_bug(note, self.1).unwrap();
    }
    fn swap(&self, batch: &mut Vec<Note>) {
        self.0.swap(batch);
    }
}
// ANCHOR_END: queue_trait

// ANCHOR: model_signal
/// The loop's eventfd as the models see it: a flag behind a mutex.
/// `signal` sets it (the eventfd write); `wait` blocks until it is set, then
/// clears it (`epoll_wait` returning, then the read that resets the eventfd's
/// counter). A wait that no signal will ever end blocks for ever; loom then
/// finds every thread blocked or finished and fails with "deadlock". That is
/// what a lost wake-up looks like in a model.
#[derive(Clone)]
struct ModelEventFd(Arc<(Mutex<bool>, Condvar)>);

impl ModelEventFd {
    fn new() -> Self {
        ModelEventFd(Arc::new((Mutex::new(false), Condvar::new())))
    }

    fn wait(&self) {
        let (set, cv) = &*self.0;
        let mut set = set.lock().unwrap();
        if !*set {
            trace("loop:       wait (blocks)");
        }
        while !*set {
            set = cv.wait(set).unwrap();
        }
        *set = false;
        trace("loop:       wait returns");
    }
}

impl Signal for ModelEventFd {
    fn signal(&self) -> io::Result<()> {
        trace("  producer: signal");
        let (set, cv) = &*self.0;
        *set.lock().unwrap() = true;
        cv.notify_one();
        Ok(())
    }
}
// ANCHOR_END: model_signal

// ANCHOR: model_in_order
/// **Model 1: every note exactly once, each producer's in order.**
/// Producers `0..notes.len()` add `notes[p]` notes each while the loop drains
/// twice at any moment; after they finish the loop drains once more.
/// Property: the loop has received every `(p, i)` exactly once, and each
/// producer's notes in the order it added them. Would catch: a push outside
/// the lock (two pushes overwrite each other), a swap that copies and then
/// clears in two steps (a note pushed between them is lost), a lock-free
/// queue that reorders.
fn every_note_once_in_order<Q: Queue>(
    notes: &'static [usize],
    make: impl Fn(Box<dyn Signal>) -> Q + Send + Sync + 'static,
) -> usize {
    explore(move || {
        let q = Arc::new(make(Box::new(NoSignal)));
        let producers: Vec<_> = (0..notes.len())
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || (0..notes[p]).for_each(|i| q.add((p, i))))
            })
            .collect();
        let mut got = Vec::new();
        let mut batch = Vec::new();
        for _ in 0..2 {
            q.swap(&mut batch);
            got.append(&mut batch);
        }
        producers.into_iter().for_each(|t| t.join().unwrap());
        q.swap(&mut batch);
        got.append(&mut batch);

        assert_eq!(
            got.len(),
            notes.iter().sum::<usize>(),
            "lost or doubled: {got:?}"
        );
        for (p, &n) in notes.iter().enumerate() {
            let mine: Vec<usize> = got.iter().filter(|m| m.0 == p).map(|m| m.1).collect();
            assert_eq!(mine, (0..n).collect::<Vec<_>>(), "producer {p}: {got:?}");
        }
    })
}
// ANCHOR_END: model_in_order

// ANCHOR: model_wakeup
/// **Model 2 (and 3): no lost wake-up.** Producers add `notes[p]` notes at
/// any moment; the loop drains, and if it has not yet received every note,
/// waits on the model eventfd, then drains again.
/// Property: the loop never waits for ever. Every note is either taken by
/// the drain in progress or followed by a signal that ends the next wait;
/// otherwise the loop blocks after every producer has finished, and loom
/// reports a deadlock. Would catch: signalling before pushing, a coalescing
/// queue that decides "already signalled" from a stale look at the queue.
fn no_lost_wakeup<Q: Queue>(
    notes: &'static [usize],
    make: impl Fn(Box<dyn Signal>) -> Q + Send + Sync + 'static,
) -> usize {
    explore(move || {
        let eventfd = ModelEventFd::new();
        let q = Arc::new(make(Box::new(eventfd.clone())));
        let producers: Vec<_> = (0..notes.len())
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    for i in 0..notes[p] {
                        trace(format!("  producer: {p} adds ({p}, {i})"));
                        q.add((p, i));
                        trace(format!("  producer: {p} added ({p}, {i})"));
                    }
                })
            })
            .collect();
        // The loop: drain, then wait, until every note has arrived.
        let (mut seen, mut batch) = (0, Vec::new());
        loop {
            q.swap(&mut batch);
            trace(format!("loop:       drain takes {batch:?}"));
            seen += batch.len();
            batch.clear();
            if seen == notes.iter().sum::<usize>() {
                break;
            }
            eventfd.wait();
        }
        producers.into_iter().for_each(|t| t.join().unwrap());
    })
}
// ANCHOR_END: model_wakeup

fn real(wakeups: Wakeups) -> impl Fn(Box<dyn Signal>) -> NoteQueue<Note> + Send + Sync {
    move |signal| NoteQueue::with_wakeups(signal, wakeups)
}

fn with_bug(bug: Bug) -> impl Fn(Box<dyn Signal>) -> WithBug + Send + Sync {
    move |signal| WithBug(NoteQueue::with_wakeups(signal, Wakeups::Coalesced), bug)
}

#[test]
fn ch11_loom_every_note_once_in_order() {
    assert!(every_note_once_in_order(&[2, 1], real(Wakeups::EveryNote)) > 1);
    assert!(every_note_once_in_order(&[1, 1, 1], real(Wakeups::EveryNote)) > 1);
}

#[test]
fn ch11_loom_every_note_once_in_order_coalesced() {
    assert!(every_note_once_in_order(&[2, 1], real(Wakeups::Coalesced)) > 1);
}

#[test]
fn ch11_loom_no_lost_wakeup() {
    assert!(no_lost_wakeup(&[2, 1], real(Wakeups::EveryNote)) > 1);
    assert!(no_lost_wakeup(&[1, 1, 1], real(Wakeups::EveryNote)) > 1);
}

#[test]
fn ch11_loom_no_lost_wakeup_coalesced() {
    assert!(no_lost_wakeup(&[2, 1], real(Wakeups::Coalesced)) > 1);
    assert!(no_lost_wakeup(&[1, 1, 1], real(Wakeups::Coalesced)) > 1);
}

// ANCHOR: broken_tests
/// The models can fail: loom must find the lost wake-up in each broken `add`.
#[test]
fn ch11_loom_finds_signal_before_push() {
    let msg = expect_failure(|| {
        no_lost_wakeup(&[1], with_bug(Bug::SignalBeforePush));
    });
    assert!(msg.contains("deadlock"), "{msg}");
}

#[test]
fn ch11_loom_finds_coalescing_check_outside_lock() {
    let msg = expect_failure(|| {
        no_lost_wakeup(&[1, 1], with_bug(Bug::CoalesceCheckOutsideLock));
    });
    assert!(msg.contains("deadlock"), "{msg}");
}
// ANCHOR_END: broken_tests
