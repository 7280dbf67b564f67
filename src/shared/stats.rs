//! Reading a running server's counters from any thread: [`Stats`].
//!
//! Chapter 13, "Beyond evio", explains the counters; each engine keeps its
//! own (the reactor's are in `src/reactor/stats.rs`) and hands out a
//! `Stats` that reads them, so this type names no engine.

use std::sync::Arc;

use crate::api::LoopStats;

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
