//! When to close a connection that owes us nothing but time: idle for too
//! long, stuck over its output limit, or past a deadline its callbacks set.
//!
//! Chapter 15, "What a server owes its clients", explains this file. evio
//! has no timeouts at all. Two pieces, both engine-independent:
//!
//! - [`Clocks`] and [`next_expiry`]: one connection's times, and the
//!   decision *when must it go, and why*: a plain function over
//!   [`Limits`].
//! - [`Deadlines`]: a min-heap of `(instant, key)` with one entry per
//!   connection at most, checked when the loop's wait times out.
//!
//! The heap is *lazy*: activity never touches it. A request only stores
//! the loop's cached "now" in [`Clocks::last_active`] (no clock read, no
//! heap operation: timeouts cost nothing per request). When an entry comes
//! due, the loop asks [`next_expiry`] again: if the connection was active
//! meanwhile, its real expiry is later and the entry is pushed again for
//! then. So each connection costs one pop and one push per timeout period,
//! `O(log n)` each, whatever its traffic. A hashed timer wheel would make
//! those `O(1)`, at the price of a fixed resolution and more code; at a
//! few thousand connections per loop the heap's `log n` is about a dozen
//! comparisons per timeout period, which nothing measures.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::time::{Duration, Instant};

use crate::api::Limits;

// ANCHOR: clocks
/// One connection's times, kept by its loop.
#[derive(Debug)]
pub(crate) struct Clocks {
    /// The last time the loop did anything for the connection.
    pub(crate) last_active: Instant,
    /// Since when its pending output has been over `Limits::output_limit`.
    pub(crate) over_since: Option<Instant>,
    /// The instant of its entry in the [`Deadlines`] heap, if it has one.
    armed: Option<Instant>,
}

impl Clocks {
    pub(crate) fn new(now: Instant) -> Clocks {
        Clocks {
            last_active: now,
            over_since: None,
            armed: None,
        }
    }

    /// The instant of its live entry in the heap, if it has one.
    pub(crate) fn armed(&self) -> Option<Instant> {
        self.armed
    }

    /// The connection was active at `now`, and has `pending` bytes of output
    /// not yet taken by its peer.
    pub(crate) fn touch(&mut self, now: Instant, pending: usize, limits: &Limits) {
        self.last_active = now;
        self.over_since = match pending > limits.output_limit {
            true => self.over_since.or(Some(now)),
            false => None,
        };
    }
}
// ANCHOR_END: clocks

// ANCHOR: expiry
/// Why a connection expired; becomes the `TimedOut` error `closed` gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    Idle(Duration),
    Output(Duration),
    Deadline,
}

impl Expiry {
    pub(crate) fn error(self) -> io::Error {
        let what = match self {
            Expiry::Idle(d) => format!("idle for {d:?} (Limits::idle_timeout)"),
            Expiry::Output(d) => format!(
                "output over Limits::output_limit for {d:?} (Limits::output_timeout): \
                 the peer does not read"
            ),
            Expiry::Deadline => "the deadline set with Conn::set_deadline passed".into(),
        };
        io::Error::new(io::ErrorKind::TimedOut, what)
    }
}

/// Decision: *when must this connection go, and why*: the earliest of its
/// idle timeout, its output timeout (only while over the limit) and the
/// deadline its callbacks set (the first of equals wins). `None`: never,
/// as things stand.
///
/// Three plain `if`s, not an iterator over an array of options: that one
/// cost the echo server about 135 more instructions per round trip, when
/// the loop asked after every step (chapter 14 counts them with callgrind).
pub(crate) fn next_expiry(
    limits: &Limits,
    clocks: &Clocks,
    deadline: Option<Instant>,
) -> Option<(Instant, Expiry)> {
    let mut next = None;
    let mut consider = |at: Instant, why: Expiry| {
        if next.map_or(true, |(earliest, _)| at < earliest) {
            next = Some((at, why));
        }
    };
    if let Some(d) = limits.idle_timeout {
        consider(clocks.last_active + d, Expiry::Idle(d));
    }
    if let (Some(d), Some(since)) = (limits.output_timeout, clocks.over_since) {
        consider(since + d, Expiry::Output(d));
    }
    if let Some(at) = deadline {
        consider(at, Expiry::Deadline);
    }
    next
}
// ANCHOR_END: expiry

// ANCHOR: deadlines
/// The loop's pending expiries: a min-heap, at most one live entry per
/// connection (its [`Clocks`] remember which).
pub(crate) struct Deadlines<K> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord + Copy> Deadlines<K> {
    pub(crate) fn new() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
        }
    }

    /// Makes sure the connection `key` is looked at by `at`: pushes an
    /// entry only if it has none as early. The common case, a busy
    /// connection whose expiry moved later, pushes nothing.
    pub(crate) fn arm(&mut self, clocks: &mut Clocks, at: Instant, key: K) {
        if clocks.armed.map_or(true, |armed| at < armed) {
            clocks.armed = Some(at);
            self.heap.push(Reverse((at, key)));
        }
    }

    /// After the connection `key` was active: moves its expiry, arming an
    /// entry only if the new one is earlier than its entry's.
    pub(crate) fn update(
        &mut self,
        clocks: &mut Clocks,
        key: K,
        limits: &Limits,
        deadline: Option<Instant>,
    ) {
        // The common case, asked after every request, answered without
        // working out the expiry: a connection with an entry, no deadline
        // and not over its output limit can only expire idle, and activity
        // only moves that later than its entry (which was the earliest of
        // its expiries when armed). About 70 instructions per request saved.
        if clocks.armed.is_some() && deadline.is_none() && clocks.over_since.is_none() {
            return;
        }
        if let Some((at, _)) = next_expiry(limits, clocks, deadline) {
            self.arm(clocks, at, key);
        }
    }

    /// Entries of closed connections stay in the heap until they come due:
    /// with many short connections, up to an idle timeout's worth of them.
    /// When the heap holds more than twice the `live` connections, it is
    /// rebuilt from their `entries` (each one's armed instant), so that its
    /// size follows the connections, not the churn. Amortised: a rebuild
    /// halves the heap at least, after as many pushes.
    pub(crate) fn compact(&mut self, live: usize, entries: impl FnOnce() -> Vec<(Instant, K)>) {
        if self.heap.len() > 2 * live + 64 {
            self.heap = entries().into_iter().map(Reverse).collect();
        }
    }

    /// The earliest entry's instant: the wait must end by then.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the next entry due at `now`. The caller looks the key up and
    /// calls [`Deadlines::due`] with its clocks.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// An entry of `key`'s popped at `at`: the reason to close it now, or
    /// `None` after arming it again for its real expiry. An entry that is
    /// not the connection's live one (it was armed earlier since) is stale.
    pub(crate) fn due(
        &mut self,
        at: Instant,
        now: Instant,
        key: K,
        clocks: &mut Clocks,
        limits: &Limits,
        deadline: Option<Instant>,
    ) -> Option<Expiry> {
        if clocks.armed != Some(at) {
            return None;
        }
        clocks.armed = None;
        let (expires, why) = next_expiry(limits, clocks, deadline)?;
        if expires <= now {
            return Some(why);
        }
        self.arm(clocks, expires, key);
        None
    }
}
// ANCHOR_END: deadlines

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(idle: u64, output: u64) -> Limits {
        Limits {
            idle_timeout: Some(Duration::from_secs(idle)),
            output_timeout: Some(Duration::from_secs(output)),
            output_limit: 10,
            ..Limits::default()
        }
    }

    #[test]
    fn ch15_activity_moves_the_expiry_without_touching_the_heap() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let l = limits(10, 3);
        let mut c = Clocks::new(t0);
        let mut d = Deadlines::new();
        let (at, _) = next_expiry(&l, &c, None).unwrap();
        d.arm(&mut c, at, 7);
        // Busy: active at 5 s, then 9 s. The heap keeps its one entry.
        c.touch(t0 + s(5), 0, &l);
        let (later, _) = next_expiry(&l, &c, None).unwrap();
        d.arm(&mut c, later, 7);
        assert_eq!(d.heap.len(), 1);
        // At 10 s the entry comes due, but the connection was active at 5 s:
        // armed again for 15 s, not closed.
        let (at, key) = d.pop_due(t0 + s(10)).unwrap();
        assert_eq!(d.due(at, t0 + s(10), key, &mut c, &l, None), None);
        assert_eq!(d.next(), Some(t0 + s(15)));
        // Nothing happens until then: idle.
        let (at, key) = d.pop_due(t0 + s(15)).unwrap();
        let why = d.due(at, t0 + s(15), key, &mut c, &l, None);
        assert_eq!(why, Some(Expiry::Idle(s(10))));
    }

    #[test]
    fn ch15_update_skips_only_what_cannot_be_earlier() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let l = limits(10, 3);
        let mut c = Clocks::new(t0);
        let mut d = Deadlines::new();
        d.update(&mut c, 7, &l, None);
        assert_eq!(d.next(), Some(t0 + s(10)));
        // Busy, under the output limit, no deadline: the fast path, no push.
        c.touch(t0 + s(1), 0, &l);
        d.update(&mut c, 7, &l, None);
        assert_eq!(d.heap.len(), 1);
        // Over the output limit at 2 s: expires at 5 s, before the entry.
        c.touch(t0 + s(2), 11, &l);
        d.update(&mut c, 7, &l, None);
        assert_eq!((d.heap.len(), d.next()), (2, Some(t0 + s(5))));
        // A deadline earlier still, once under the limit again.
        c.touch(t0 + s(3), 0, &l);
        d.update(&mut c, 7, &l, Some(t0 + s(4)));
        assert_eq!((d.heap.len(), d.next()), (3, Some(t0 + s(4))));
    }

    #[test]
    fn ch15_the_earliest_reason_wins() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let l = limits(10, 3);
        let mut c = Clocks::new(t0);
        // Over the output limit at 1 s: expires at 4 s, before the idle 11 s.
        c.touch(t0 + s(1), 11, &l);
        assert_eq!(
            next_expiry(&l, &c, None),
            Some((t0 + s(4), Expiry::Output(s(3))))
        );
        // Still over at 2 s: the output clock keeps its start.
        c.touch(t0 + s(2), 50, &l);
        assert_eq!(next_expiry(&l, &c, None).unwrap().0, t0 + s(4));
        // Drained: only the idle timeout, or an earlier deadline, is left.
        c.touch(t0 + s(2), 0, &l);
        assert_eq!(next_expiry(&l, &c, None).unwrap().0, t0 + s(12));
        let set = Some(t0 + s(3));
        assert_eq!(
            next_expiry(&l, &c, set),
            Some((t0 + s(3), Expiry::Deadline))
        );
        assert_eq!(next_expiry(&Limits::none(), &c, None), None);
    }

    #[test]
    fn ch15_entries_of_closed_connections_do_not_pile_up() {
        let t0 = Instant::now();
        let l = limits(10, 3);
        let mut d = Deadlines::new();
        let mut live = Clocks::new(t0);
        d.update(&mut live, 0, &l, None);
        // 1,000 connections come and go; one stays.
        for key in 1..1000 {
            let mut gone = Clocks::new(t0);
            d.update(&mut gone, key, &l, None);
            d.compact(1, || vec![(live.armed().unwrap(), 0)]);
        }
        assert!(d.heap.len() <= 2 + 64 + 1, "{} entries", d.heap.len());
        assert_eq!(d.next(), live.armed());
    }

    #[test]
    fn ch15_a_stale_entry_is_ignored() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let l = limits(10, 3);
        let mut c = Clocks::new(t0);
        let mut d = Deadlines::new();
        d.arm(&mut c, t0 + s(10), 1);
        d.arm(&mut c, t0 + s(4), 1); // earlier: a second entry, now the live one
        let (at, key) = d.pop_due(t0 + s(4)).unwrap();
        assert_eq!(at, t0 + s(4));
        c.touch(t0 + s(4), 0, &l);
        assert_eq!(d.due(at, t0 + s(4), key, &mut c, &l, None), None);
        // The 10 s entry is not the live one (14 s is): dropped.
        let (at, key) = d.pop_due(t0 + s(10)).unwrap();
        assert_eq!(d.due(at, t0 + s(10), key, &mut c, &l, None), None);
        assert_eq!(d.next(), Some(t0 + s(14)));
    }
}
