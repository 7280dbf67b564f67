//! A loop's counters ([`Counters`]), and reading a running server's from
//! any thread ([`Stats`]).
//!
//! Chapter 13, "Beyond evio", explains the counters. Each engine counts
//! what its loops do (the reactor at the socket's edge, in
//! `src/reactor/stats.rs`; the thread variant as messages arrive) and hands
//! out a `Stats` that reads them, so these types name no engine.
//!
//! Only the loop's own thread writes its counters, so a count is a plain
//! load and store (no locked read-modify-write instruction); other threads
//! only read them, and see each counter's latest value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::api::LoopStats;

/// One counter of [`Counters`].
#[derive(Clone, Copy)]
pub(crate) enum Count {
    Waits,
    Notes,
    Accepts,
    Refusals,
    Reads,
    Writes,
    WouldBlocks,
    InterestChanges,
    BytesIn,
    BytesOut,
    Rejected,
    TimedOut,
    Panics,
    Submitted,
    Again,
}

/// One loop's counters; see [`LoopStats`] for what each counts.
#[derive(Default)]
pub(crate) struct Counters([AtomicU64; 15]);

impl Counters {
    /// Adds `n` to a counter. Called by the loop's thread only, a few
    /// times per request: `#[inline]`, it is a load, an add and a store.
    #[inline]
    pub(crate) fn add(&self, which: Count, n: u64) {
        let c = &self.0[which as usize];
        c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// The counters now, for any thread.
    pub(crate) fn snapshot(&self) -> LoopStats {
        let get = |which: Count| self.0[which as usize].load(Ordering::Relaxed);
        LoopStats {
            waits: get(Count::Waits),
            notes: get(Count::Notes),
            accepts: get(Count::Accepts),
            refusals: get(Count::Refusals),
            reads: get(Count::Reads),
            writes: get(Count::Writes),
            would_blocks: get(Count::WouldBlocks),
            interest_changes: get(Count::InterestChanges),
            bytes_in: get(Count::BytesIn),
            bytes_out: get(Count::BytesOut),
            rejected: get(Count::Rejected),
            timed_out: get(Count::TimedOut),
            panics: get(Count::Panics),
            submitted: get(Count::Submitted),
            again: get(Count::Again),
        }
    }
}

/// Reads a server's per-loop counters, while it runs or after; cheap to
/// clone and to keep.
#[derive(Clone)]
pub struct Stats(Arc<dyn Fn() -> Vec<LoopStats> + Send + Sync>);

impl Stats {
    pub(crate) fn new(read: impl Fn() -> Vec<LoopStats> + Send + Sync + 'static) -> Stats {
        Stats(Arc::new(read))
    }

    /// Each loop's counters now, loop 0 first.
    pub fn loops(&self) -> Vec<LoopStats> {
        (self.0)()
    }

    /// The counters of every loop, summed.
    pub fn total(&self) -> LoopStats {
        LoopStats::sum(&self.loops())
    }
}
