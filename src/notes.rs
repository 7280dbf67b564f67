//! The note queue: how another thread hands work to a loop and wakes it.
//!
//! Chapter 4, "Wake-ups", explains this file. It mirrors evio's
//! `internal/notequeue.go` (`noteQueue.Add`, `noteQueue.ForEach`) together with
//! `Poll.Trigger` in `internal/internal_linux.go`: a note is pushed under a
//! mutex, then the loop's wake-up signal (the poller's [`Signal`], an eventfd
//! write on Linux, defined with the pollers in `src/poll/interface.rs`) makes its
//! `epoll_wait` return; the loop drains every note before it looks at any
//! ready file descriptor.
//!
//! Like evio, [`NoteQueue::new`] makes a queue that signals on every note
//! (evio's weakness 12: wake-ups are never coalesced); chapter 4 measures what
//! that costs. [`NoteQueue::with_wakeups`] with [`Wakeups::Coalesced`] signals
//! only when the queue goes from empty to non-empty. Chapter 11 checks both
//! with loom models (`tests/ch11_loom_notes.rs`), and keeps, under
//! `--cfg loom` only, two deliberately broken versions of `add` to show that
//! the models catch the bugs they are meant to.

use std::io;

use crate::api::Wakeups;
use crate::poll::Signal;
use crate::sync::{AtomicBool, Mutex, Ordering};

// ANCHOR: queue
/// A queue of notes for one loop: many producers, one consumer (the loop).
pub struct NoteQueue<T> {
    /// `None` once the loop has ended ([`NoteQueue::close`]).
    notes: Mutex<Option<Vec<T>>>,
    signal: Box<dyn Signal>,
    wakeups: Wakeups,
    /// Set by [`NoteQueue::stop`]; the loop reads it with its notes.
    stopping: AtomicBool,
}

impl<T> NoteQueue<T> {
    /// A queue that wakes its loop through `signal` on every note.
    pub fn new(signal: Box<dyn Signal>) -> Self {
        Self::with_wakeups(signal, Wakeups::EveryNote)
    }

    /// A queue that wakes its loop through `signal` as `wakeups` says.
    pub fn with_wakeups(signal: Box<dyn Signal>, wakeups: Wakeups) -> Self {
        NoteQueue {
            notes: Mutex::new(Some(Vec::new())),
            signal,
            wakeups,
            stopping: AtomicBool::new(false),
        }
    }

    /// Adds a note and wakes the loop: evio's `Trigger`. The push happens
    /// before the signal, so a loop that wakes up is sure to find the note.
    /// Whether the queue was empty is read under the same lock as the push:
    /// read apart from it, two threads could each believe the other signals.
    /// Once the queue is closed the note is dropped at once, with no signal.
    pub fn add(&self, note: T) -> io::Result<()> {
        let was_empty = {
            let mut notes = self.notes.lock().unwrap();
            let Some(notes) = notes.as_mut() else {
                return Ok(()); // the loop has ended: nobody will read it
            };
            notes.push(note);
            notes.len() == 1
        };
        if was_empty || self.wakeups == Wakeups::EveryNote {
            self.signal.signal()
        } else {
            Ok(())
        }
    }

    /// Moves every note into `batch`, which must be empty, and leaves the
    /// (empty, but allocated) `batch` buffer in the queue in exchange: evio's
    /// `ForEach` swap. The loop runs the notes without holding the lock, and
    /// the two buffers take turns, so a steady flow of notes allocates nothing.
    pub fn swap(&self, batch: &mut Vec<T>) {
        debug_assert!(batch.is_empty());
        if let Some(notes) = self.notes.lock().unwrap().as_mut() {
            std::mem::swap(notes, batch);
        }
    }
}
// ANCHOR_END: queue

// ANCHOR: stop
impl<T> NoteQueue<T> {
    /// Asks the loop to end: a flag, then the signal, which is always sent
    /// (a stop is no note to coalesce). No lock and no allocation, so a
    /// signal handler may call it: a server with one loop runs it on the
    /// thread that called `run`, and its process has no other thread to
    /// take SIGINT or SIGTERM (chapter 14 says why that thread is worth
    /// sparing; the examples' handler is in `examples/common/mod.rs`).
    pub fn stop(&self) -> io::Result<()> {
        self.stopping.store(true, Ordering::SeqCst);
        self.signal.signal()
    }

    /// Whether [`NoteQueue::stop`] has been called. The loop asks after
    /// each batch of notes: the flag is set before the signal that ends
    /// the loop's wait, so a loop that wakes for it sees it.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}
// ANCHOR_END: stop

// ANCHOR: close
impl<T> NoteQueue<T> {
    /// The loop has ended: drops the notes nobody will read, and every note
    /// added from now on. [`Waker`](crate::Waker)s and
    /// [`Writer`](crate::Writer)s outlive their server; without this, each
    /// of their calls would grow a queue that no loop drains (evio's
    /// `noteQueue` grows the same way after `Serve` returns).
    pub fn close(&self) {
        let left = self.notes.lock().unwrap().take();
        drop(left); // outside the lock: a handed-off socket closes here
    }
}
// ANCHOR_END: close

// ANCHOR: broken
/// Two wrong ways to write [`NoteQueue::add`], compiled only for the loom
/// models (chapter 11), which must find the lost wake-up in each.
#[cfg(loom)]
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// Signals, then pushes: the loop can wake, find nothing, and wait again
    /// before the note arrives.
    SignalBeforePush,
    /// Coalesces, but looks at the queue in one critical section and pushes
    /// in another: between the two the loop can drain the queue, so the note
    /// lands in an empty queue that nobody signals.
    CoalesceCheckOutsideLock,
}

#[cfg(loom)]
impl<T> NoteQueue<T> {
    #[doc(hidden)]
    pub fn add_with_bug(&self, note: T, bug: Bug) -> io::Result<()> {
        match bug {
            Bug::SignalBeforePush => {
                self.signal.signal()?;
                if let Some(notes) = self.notes.lock().unwrap().as_mut() {
                    notes.push(note);
                }
                Ok(())
            }
            Bug::CoalesceCheckOutsideLock => {
                let was_empty = self
                    .notes
                    .lock()
                    .unwrap()
                    .as_ref()
                    .map_or(true, Vec::is_empty);
                if let Some(notes) = self.notes.lock().unwrap().as_mut() {
                    notes.push(note);
                }
                if was_empty {
                    self.signal.signal()?;
                }
                Ok(())
            }
        }
    }
}
// ANCHOR_END: broken

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Count(Arc<AtomicUsize>);
    impl Signal for Count {
        fn signal(&self) -> io::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn ch04_every_note_signals_and_swap_takes_them_in_order() {
        let signals = Arc::new(AtomicUsize::new(0));
        let q = NoteQueue::new(Box::new(Count(signals.clone())));
        for i in 0..3 {
            q.add(i).unwrap();
        }
        assert_eq!(signals.load(Ordering::SeqCst), 3);
        let mut batch = Vec::new();
        q.swap(&mut batch);
        assert_eq!(batch, [0, 1, 2]);
        batch.clear();
        q.swap(&mut batch);
        assert!(batch.is_empty());
    }

    #[test]
    fn ch11_coalesced_queue_signals_only_when_it_was_empty() {
        let signals = Arc::new(AtomicUsize::new(0));
        let q = NoteQueue::with_wakeups(Box::new(Count(signals.clone())), Wakeups::Coalesced);
        for i in 0..3 {
            q.add(i).unwrap();
        }
        assert_eq!(signals.load(Ordering::SeqCst), 1, "one signal for a burst");
        let mut batch = Vec::new();
        q.swap(&mut batch);
        assert_eq!(batch, [0, 1, 2]);
        q.add(3).unwrap();
        assert_eq!(
            signals.load(Ordering::SeqCst),
            2,
            "drained, so signal again"
        );
    }

    #[test]
    fn ch04_notes_from_many_threads_all_arrive() {
        let q = Arc::new(NoteQueue::new(Box::new(Count(Arc::default()))));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || (0..1000).for_each(|i| q.add((t, i)).unwrap()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let mut batch = Vec::new();
        q.swap(&mut batch);
        assert_eq!(batch.len(), 4000);
        for t in 0..4 {
            let mine: Vec<_> = batch.iter().filter(|n| n.0 == t).map(|n| n.1).collect();
            assert_eq!(mine, (0..1000).collect::<Vec<_>>(), "thread {t} in order");
        }
    }
}
