//! Which loop takes a new connection: evio's three load-balancing rules.
//!
//! Chapter 6, "Accepting and balancing", explains this file. It is the switch
//! at the top of evio's `loopAccept` (`evio_unix.go`), as a plain function of
//! the loop's index, the shared turn counter and the connection counts, so the
//! rules are unit-tested without a socket. Every loop watches every listener
//! (evio's design); this function is where a loop that was woken for a pending
//! connection decides whether it is the one to take it.

use crate::api::LoadBalance;

// ANCHOR: may_accept
/// May loop `me` (of `loops`) accept now? `turn` is the round-robin counter,
/// `count(i)` the number of connections loop `i` holds.
pub fn may_accept(
    rule: LoadBalance,
    me: usize,
    loops: usize,
    turn: usize,
    count: impl Fn(usize) -> usize,
) -> bool {
    if loops <= 1 {
        return true;
    }
    match rule {
        // Every loop tries; the kernel gives the connection to one `accept`
        // and the others get EAGAIN. Not random: the fastest loop wins.
        LoadBalance::Random => true,
        // Only the loop whose turn it is. It moves the turn on after a
        // successful accept, and since only that loop can, the spread is exact.
        LoadBalance::RoundRobin => turn % loops == me,
        // Refuse while any other loop holds fewer connections.
        LoadBalance::LeastConnections => {
            let mine = count(me);
            (0..loops).all(|i| i == me || count(i) >= mine)
        }
    }
}
// ANCHOR_END: may_accept

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ch06_one_loop_always_accepts() {
        for rule in [
            LoadBalance::Random,
            LoadBalance::RoundRobin,
            LoadBalance::LeastConnections,
        ] {
            assert!(may_accept(rule, 0, 1, 7, |_| 3));
        }
    }

    #[test]
    fn ch06_random_never_refuses() {
        assert!((0..4).all(|me| may_accept(LoadBalance::Random, me, 4, 0, |i| i)));
    }

    #[test]
    fn ch06_round_robin_names_exactly_one_loop_per_turn() {
        for turn in 0..20 {
            let takers: Vec<_> = (0..3)
                .filter(|&me| may_accept(LoadBalance::RoundRobin, me, 3, turn, |_| 0))
                .collect();
            assert_eq!(takers, [turn % 3]);
        }
    }

    #[test]
    fn ch06_least_connections_refuses_while_another_loop_has_fewer() {
        let counts = [2, 1, 1];
        let takers: Vec<_> = (0..3)
            .filter(|&me| may_accept(LoadBalance::LeastConnections, me, 3, 0, |i| counts[i]))
            .collect();
        assert_eq!(takers, [1, 2]);
    }

    /// Simulates accepting one connection at a time: the loops the rule lets
    /// through race, and the lowest index wins. Every rule but Random must
    /// keep the counts within one of each other.
    #[test]
    fn ch06_round_robin_and_least_connections_spread_evenly() {
        for rule in [LoadBalance::RoundRobin, LoadBalance::LeastConnections] {
            let mut counts = [0usize; 5];
            for turn in 0..103 {
                let me = (0..5)
                    .find(|&me| may_accept(rule, me, 5, turn, |i| counts[i]))
                    .expect("some loop accepts");
                counts[me] += 1;
            }
            let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(max - min <= 1, "{rule:?}: {counts:?}");
        }
    }
}
