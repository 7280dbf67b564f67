//! Which loop gets a new connection, when one thread decides for all: the
//! [`Balancer`], and the connection count of every loop.
//!
//! Chapter 9, "The thread-based variant", explains this file, and chapter 13
//! uses it for the reactor's hand-off. evio's `stdlistenerRun`
//! (`evio_std.go`) ignores `LoadBalance` and always takes turns with an
//! atomic counter (its weakness 9). Here the thread that accepts *chooses*
//! the loop: the thread variant's accept thread, or the reactor's loop 0
//! under `Accept::HandOff`. That is simpler than evio's reactor rule
//! (chapter 6), where every loop is woken and each decides whether it may
//! take the connection: one thread decides, so every rule is exact. Under
//! evio's `Accept::EveryLoop` the reactor's loops read the same counts and
//! turn (`count`, `turn`), and each counts what it takes (`add`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::api::LoadBalance;

// ANCHOR: balancer
/// The loops' connection counts and the state each rule needs.
pub(crate) struct Balancer {
    rule: LoadBalance,
    /// Connections held by each loop: incremented by the accept thread when
    /// it chooses, decremented by the loop when it closes or detaches.
    counts: Vec<AtomicUsize>,
    /// RoundRobin: connections handed out so far.
    turn: AtomicUsize,
    /// Random: the state of a xorshift generator.
    seed: AtomicU64,
    /// LeastConnections: one choice at a time, so that two accept threads
    /// (two listeners) cannot both pick the same emptiest loop.
    least: Mutex<()>,
}

impl Balancer {
    pub(crate) fn new(rule: LoadBalance, loops: usize) -> Balancer {
        // Any odd, changing number seeds the generator; the standard
        // library's hash seed is random per process.
        use std::hash::{BuildHasher, Hasher};
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Balancer {
            rule,
            counts: (0..loops).map(|_| AtomicUsize::new(0)).collect(),
            turn: AtomicUsize::new(0),
            seed: AtomicU64::new(seed | 1),
            least: Mutex::new(()),
        }
    }

    /// Picks a loop; `conn` counts a connection on it (not for a datagram).
    pub(crate) fn choose(&self, conn: bool) -> usize {
        let n = self.counts.len();
        let idx = match self.rule {
            _ if n == 1 => 0,
            // One atomic step: two threads can never get the same turn
            // (evio's reactor loads, then adds: its weakness 11).
            LoadBalance::RoundRobin => self.turn.fetch_add(1, Ordering::Relaxed) % n,
            LoadBalance::Random => (self.next_random() % n as u64) as usize,
            LoadBalance::LeastConnections => {
                let _one_at_a_time = self.least.lock().unwrap();
                let count = |i: usize| self.counts[i].load(Ordering::SeqCst);
                // The first of the emptiest loops.
                let idx = (1..n).fold(0, |best, i| if count(i) < count(best) { i } else { best });
                if conn {
                    self.counts[idx].fetch_add(1, Ordering::SeqCst);
                }
                return idx;
            }
        };
        if conn {
            self.counts[idx].fetch_add(1, Ordering::SeqCst);
        }
        idx
    }

    /// Loop `idx` has let go of a connection.
    pub(crate) fn release(&self, idx: usize) {
        self.counts[idx].fetch_sub(1, Ordering::SeqCst);
    }

    /// Loop `idx` has taken a connection it chose itself (evio's way, where
    /// every loop accepts).
    #[allow(dead_code)] // the reactor's, so not on Windows
    pub(crate) fn add(&self, idx: usize) {
        self.counts[idx].fetch_add(1, Ordering::SeqCst);
    }

    /// The connections loop `idx` holds.
    #[allow(dead_code)] // the reactor's, so not on Windows
    pub(crate) fn count(&self, idx: usize) -> usize {
        self.counts[idx].load(Ordering::SeqCst)
    }

    /// The connections of all loops together (`Limits::max_connections`).
    #[allow(dead_code)] // the reactor's and io_uring's, so not on Windows
    pub(crate) fn total(&self) -> usize {
        self.counts.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }

    /// RoundRobin's turn: connections handed out so far.
    #[allow(dead_code)] // the reactor's, so not on Windows
    pub(crate) fn turn(&self) -> usize {
        self.turn.load(Ordering::SeqCst)
    }

    /// Moves RoundRobin's turn on (a loop that took its turn, evio's way).
    #[allow(dead_code)] // the reactor's, so not on Windows
    pub(crate) fn advance_turn(&self) {
        self.turn.fetch_add(1, Ordering::SeqCst);
    }

    /// The rule, for the loops that decide for themselves.
    #[allow(dead_code)] // the reactor's, so not on Windows
    pub(crate) fn rule(&self) -> LoadBalance {
        self.rule
    }

    /// xorshift64: a real (pseudo-)random choice, where evio's reactor's
    /// `Random` is "whichever loop wins the race".
    fn next_random(&self) -> u64 {
        let step = |mut x: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^ (x << 17)
        };
        let old = self
            .seed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(step(x)))
            .unwrap_or(1);
        step(old)
    }
}
// ANCHOR_END: balancer

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(b: &Balancer) -> Vec<usize> {
        b.counts.iter().map(|c| c.load(Ordering::SeqCst)).collect()
    }

    #[test]
    fn ch09_round_robin_takes_exact_turns() {
        let b = Balancer::new(LoadBalance::RoundRobin, 3);
        let picks: Vec<_> = (0..7).map(|_| b.choose(true)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(counts(&b), [3, 2, 2]);
    }

    #[test]
    fn ch09_least_connections_picks_the_first_emptiest_loop() {
        let b = Balancer::new(LoadBalance::LeastConnections, 3);
        let picks: Vec<_> = (0..5).map(|_| b.choose(true)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1]);
        b.release(0);
        b.release(0);
        // [0, 2, 1]: loop 0 fills up to the others, then loop 2 has fewest.
        let picks: Vec<_> = (0..3).map(|_| b.choose(true)).collect();
        assert_eq!(picks, [0, 0, 2]);
        assert_eq!(counts(&b), [2, 2, 2]);
        // Datagrams are not counted.
        let before = counts(&b);
        b.choose(false);
        assert_eq!(counts(&b), before);
    }

    #[test]
    fn ch09_random_reaches_every_loop_and_counts_exactly() {
        let b = Balancer::new(LoadBalance::Random, 4);
        for _ in 0..400 {
            b.choose(true);
        }
        let c = counts(&b);
        assert_eq!(c.iter().sum::<usize>(), 400, "{c:?}");
        // 400 fair draws over 4 loops: each far from 0 (p < 1e-40).
        assert!(c.iter().all(|&n| n > 40), "{c:?}");
    }
}
