//! The loop's timers for the idle and output timeouts: a heap of deadlines
//! that a request never touches.
//!
//! Chapter 15, "What a server owes its clients", explains this file (its
//! section on the thread-based variant). evio has no timeouts at all. A
//! timer per connection that is reset on every read or write (what a
//! `SetReadDeadline` per request amounts to in Go) costs a heap update per
//! request; a thread per timer would cost a thread. Here a request costs a
//! store of the time into its connection's slot. The heap holds at most one
//! live entry per connection, the earliest moment it *might* time out; when
//! that moment comes, the loop looks at the connection: if it has been
//! active since, the entry is pushed again at the new "might", else the
//! connection is closed. The loop's wait for its channel ends at the heap's
//! top (`recv_timeout`), as it ends at the next tick. Linux's TCP
//! keep-alive and retransmission timers are lazy in the same way.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

// ANCHOR: deadlines
/// Deadlines by connection id, earliest first. An entry whose connection
/// has closed, or has a newer entry, is *stale*: the loop drops it when it
/// comes due (the slot remembers which entry is live).
#[derive(Default)]
pub(crate) struct Deadlines(BinaryHeap<Reverse<(Instant, u64)>>);

impl Deadlines {
    /// Adds an entry. `live` is the number of connections: a heap grown to
    /// twice that (stale entries of closed connections) is rebuilt from
    /// `entries` (each live connection's entry), so it stays O(connections).
    pub(crate) fn push(
        &mut self,
        at: Instant,
        id: u64,
        live: usize,
        entries: impl FnOnce() -> Vec<(Instant, u64)>,
    ) {
        if self.0.len() > 2 * live + 64 {
            self.0 = entries().into_iter().map(Reverse).collect();
        }
        self.0.push(Reverse((at, id)));
    }

    /// The earliest deadline, for the loop's wait.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.0.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, u64)> {
        match self.0.peek() {
            Some(Reverse((at, _))) if *at <= now => self.0.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}
// ANCHOR_END: deadlines

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ch15_deadlines_come_due_in_order_and_stay_bounded() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut d = Deadlines::default();
        for (ms, id) in [(30, 3), (10, 1), (20, 2)] {
            d.push(at(ms), id, 3, Vec::new);
        }
        assert_eq!(d.next(), Some(at(10)));
        assert_eq!(d.pop_due(at(5)), None);
        assert_eq!(d.pop_due(at(25)), Some((at(10), 1)));
        assert_eq!(d.pop_due(at(25)), Some((at(20), 2)));
        assert_eq!(d.pop_due(at(25)), None);
        // 1,000 stale entries and one live connection: rebuilt, not grown.
        for i in 0..1000 {
            d.push(at(100 + i), 10 + i, 1, || vec![(at(40), 4)]);
        }
        assert!(d.0.len() <= 2 + 64 + 1, "{} entries", d.0.len());
    }
}
