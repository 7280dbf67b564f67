//! Lab 11: a property of `InputStream` that catches its bugs, written by you
//! (chapter 11, "Testing what is hard to test"). This file is the starting
//! point; the grader, `tests/lab11_stream_property.rs`, includes it and runs
//! your [`check`] on `evio::InputStream`, where it must pass, and on four
//! broken streams of its own, each of which it must catch:
//!
//! ```text
//! cargo test lab11 -- --ignored
//! ```
//!
//! [`check`] panics with "not yet implemented" until you write it. Keep its
//! name and signature, and the [`Stream`] trait: the grader uses them.

use evio::InputStream;

/// What a stream of packets offers a parser: `InputStream`'s three methods,
/// as a trait, so that the same property can run on a broken copy.
pub trait Stream: Default {
    /// What was left over last time, followed by `packet`.
    fn begin<'a>(&'a mut self, packet: &'a [u8]) -> &'a [u8];
    /// Keeps everything after the first `consumed` bytes of what `begin`
    /// returned; `packet` is the one that went to `begin`.
    fn end(&mut self, packet: &[u8], consumed: usize);
    /// The number of bytes kept for the next packet.
    fn pending(&self) -> usize;
}

impl Stream for InputStream {
    fn begin<'a>(&'a mut self, packet: &'a [u8]) -> &'a [u8] {
        InputStream::begin(self, packet)
    }

    fn end(&mut self, packet: &[u8], consumed: usize) {
        InputStream::end(self, packet, consumed)
    }

    fn pending(&self) -> usize {
        InputStream::pending(self)
    }
}

/// Your property, run on a fresh `S::default()` per case: `Ok(())` when
/// every case you generate behaves as `InputStream`'s documentation says,
/// `Err` with the (shrunk) failing case otherwise. Run it with a
/// deterministic proptest runner, so that a grade does not depend on luck.
#[allow(clippy::extra_unused_type_parameters)] // until you write it
pub fn check<S: Stream>() -> Result<(), String> {
    todo!("lab 11: check, in labs/stream_property.rs: a property that InputStream passes and a broken stream fails")
}
