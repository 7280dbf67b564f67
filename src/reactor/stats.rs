//! Watching a reactor loop think: the socket wrapper that feeds its
//! counters (`Counters`, in `src/shared/stats.rs`).
//!
//! Chapter 13, "Beyond evio", explains this file. evio counts nothing; to
//! see what its weaknesses cost, chapters 3 to 7 count system calls from
//! outside with `strace` and `perf`. These counters say the same from
//! inside, per loop, while the server runs ([`Server::stats`]), and the
//! examples print them with `--stats`.
//!
//! [`Server::stats`]: crate::Server::stats

use std::io;

use super::dispatch::ConnIo;
use crate::shared::{Count, Counters};

// ANCHOR: counted
/// A connection's socket as the dispatch sees it while the loop counts:
/// every read and write, the bytes, and each `EAGAIN`. Its methods are
/// `#[inline]`, so that counting adds a few loads and stores per system
/// call, not a function call (see `dispatch.rs`).
pub(crate) struct Counted<'a, S> {
    pub(crate) sock: &'a mut S,
    pub(crate) counters: &'a Counters,
}

impl<S: ConnIo> Counted<'_, S> {
    #[inline]
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
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.sock.read(buf);
        self.count(Count::Reads, Count::BytesIn, &got);
        got
    }

    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let got = self.sock.write(buf);
        self.count(Count::Writes, Count::BytesOut, &got);
        got
    }
}
// ANCHOR_END: counted
