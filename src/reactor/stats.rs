//! Watching a loop think: its counters, and the socket wrapper that feeds
//! them.
//!
//! Chapter 13, "Beyond evio", explains this file. evio counts nothing; to
//! see what its weaknesses cost, chapters 3 to 7 count system calls from
//! outside with `strace` and `perf`. These counters say the same from
//! inside, per loop, while the server runs ([`Server::stats`]), and the
//! examples print them with `--stats`.
//!
//! Only the loop's own thread writes its counters, so a count is a plain
//! load and store (no locked read-modify-write instruction); other threads
//! only read them, and see each counter's latest value.
//!
//! [`Server::stats`]: crate::Server::stats

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use super::dispatch::ConnIo;
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
}

/// One loop's counters; see [`LoopStats`] for what each counts.
#[derive(Default)]
pub(crate) struct Counters([AtomicU64; 10]);

impl Counters {
    /// Adds `n` to a counter. Called by the loop's thread only.
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
        }
    }
}

// ANCHOR: counted
/// A connection's socket as the dispatch sees it while the loop counts:
/// every read and write, the bytes, and each `EAGAIN`.
pub(crate) struct Counted<'a, S> {
    pub(crate) sock: &'a mut S,
    pub(crate) counters: &'a Counters,
}

impl<S: ConnIo> Counted<'_, S> {
    fn count(&self, calls: Count, bytes: Count, got: &io::Result<usize>) {
        self.counters.add(calls, 1);
        match got {
            Ok(n) => self.counters.add(bytes, *n as u64),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.counters.add(Count::WouldBlocks, 1)
            }
            Err(_) => {}
        }
    }
}

impl<S: ConnIo> ConnIo for Counted<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.sock.read(buf);
        self.count(Count::Reads, Count::BytesIn, &got);
        got
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let got = self.sock.write(buf);
        self.count(Count::Writes, Count::BytesOut, &got);
        got
    }
}
// ANCHOR_END: counted
