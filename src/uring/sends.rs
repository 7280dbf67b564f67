//! The sends in flight, and the buffers the kernel reads for them.
//!
//! Chapter 16, "Completion instead of readiness", explains this file. From
//! its submission to its completion a send's bytes are the kernel's: they
//! must neither move nor be freed, so the callbacks' new output must go
//! somewhere else meanwhile. Those bytes sit here, in one table per loop,
//! rather than in a second buffer in every connection: an idle connection
//! sends nothing, so it holds no such buffer (chapter 15 counts what an
//! idle connection costs), and the buffer a finished send leaves behind
//! serves the next one, as the reactor's one output buffer does.

/// A fully sent buffer with at most this much capacity is kept for the
/// next send; a bigger one is freed (evio's number, as the reactor's).
const KEEP_CAPACITY: usize = 4096;

// ANCHOR: sends
/// The loop's sends in flight, by index.
#[derive(Default)]
pub(crate) struct Sends {
    table: Vec<Sending>,
    /// Indices of finished sends, whose (emptied) buffers wait for reuse.
    free: Vec<u32>,
}

#[derive(Default)]
struct Sending {
    /// The kernel reads `buf[sent..]` until the send completes.
    buf: Vec<u8>,
    sent: usize,
}

impl Sends {
    /// Starts a send of all of `out`: its bytes move here, and `out` gets
    /// the empty buffer a finished send left (no copy, no allocation once
    /// the table is warm). Returns the send's index.
    pub(crate) fn start(&mut self, out: &mut Vec<u8>) -> u32 {
        let idx = self.free.pop().unwrap_or_else(|| {
            self.table.push(Sending::default());
            (self.table.len() - 1) as u32
        });
        let sending = &mut self.table[idx as usize];
        std::mem::swap(&mut sending.buf, out);
        sending.sent = 0;
        idx
    }

    /// The bytes of send `idx` not gone yet.
    pub(crate) fn rest(&self, idx: u32) -> &[u8] {
        let s = &self.table[idx as usize];
        &s.buf[s.sent..]
    }

    /// `n` more bytes of send `idx` have gone. True once all have.
    pub(crate) fn advance(&mut self, idx: u32, n: usize) -> bool {
        let s = &mut self.table[idx as usize];
        s.sent += n;
        s.sent >= s.buf.len()
    }

    /// Send `idx` is over (all sent, failed, or cancelled): its index and
    /// its emptied buffer are free for the next send.
    pub(crate) fn finish(&mut self, idx: u32) {
        let s = &mut self.table[idx as usize];
        s.buf.clear();
        if s.buf.capacity() > KEEP_CAPACITY {
            s.buf = Vec::new();
        }
        self.free.push(idx);
    }

    /// Never frees the buffers: for a loop whose sends did not all come
    /// back, so the kernel may still read them.
    pub(crate) fn leak(&mut self) {
        std::mem::forget(std::mem::take(&mut self.table));
    }
}
// ANCHOR_END: sends

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ch16_a_finished_send_lends_its_buffer_to_the_next() {
        let mut sends = Sends::default();
        let mut out = b"hello".to_vec();
        let a = sends.start(&mut out);
        assert!(out.is_empty());
        assert_eq!(sends.rest(a), b"hello");
        assert!(!sends.advance(a, 2));
        assert_eq!(sends.rest(a), b"llo");
        assert!(sends.advance(a, 3));
        sends.finish(a);
        out.extend_from_slice(b"next");
        let b = sends.start(&mut out);
        assert_eq!(b, a, "the freed index is reused");
        assert!(out.capacity() >= 5, "out has the first send's buffer");
        assert_eq!(sends.rest(b), b"next");
    }
}
