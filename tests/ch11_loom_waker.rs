//! A loom model of a wake handle outliving its connection (chapter 11,
//! "Testing what is hard to test"). The code under test is the note queue
//! (`src/notes.rs`) and [`wake_target`], the check the loop's `wake`
//! (`src/reactor/event_loop.rs`) makes before it calls `data`. evio's
//! counterpart is in `loopNote`: its note is the `*conn` itself, and it is
//! dropped unless the loop's fd map still holds that same pointer.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target-loom \
//!     cargo test --release --test ch11_loom_waker -- --nocapture
//! ```
#![cfg(all(loom, unix))]

mod ch11_loom_common;

use std::os::fd::RawFd;

use ch11_loom_common::{expect_failure, explore, trace, NoSignal};
use evio::internals::wake_target;
use evio::internals::NoteQueue;
use loom::sync::Arc;
use loom::thread;

/// A connection as the model's loop holds it.
struct Conn {
    id: u64,
}

/// How the loop finds the connection a wake note is for.
type Target = fn(&mut [Option<Conn>], RawFd, u64) -> Option<&mut Conn>;

/// The loop's rule: [`wake_target`], as `Loop::wake` calls it.
fn by_fd_and_id(slots: &mut [Option<Conn>], fd: RawFd, id: u64) -> Option<&mut Conn> {
    wake_target(slots, fd, id, |c| c.id)
}

// ANCHOR: broken_target
/// A broken rule: the connection at `fd`, whatever its id. (evio does not
/// make this mistake: it compares the `*conn` pointer the note carries.)
fn by_fd_only(slots: &mut [Option<Conn>], fd: RawFd, _id: u64) -> Option<&mut Conn> {
    slots.get_mut(fd as usize)?.as_mut()
}
// ANCHOR_END: broken_target

// ANCHOR: model_stale_wake
/// **Model 4: a stale wake reaches nobody.** The loop holds connection 1 at
/// fd 5; a user thread holds its waker and wakes it once, at any moment.
/// Meanwhile the loop drains its notes, closes connection 1, drains,
/// accepts connection 2 (the kernel hands out fd 5 again), gives a second
/// user thread connection 2's waker, and drains until both threads are done.
/// Property: every wake note is handled exactly once; one that reaches a
/// connection reaches the one its waker was made for (connection 1 only
/// while it is open); connection 2 is woken exactly once, by its own waker.
/// Would catch: looking a wake up by fd alone.
fn stale_wake_reaches_nobody(target: Target) -> usize {
    explore(move || {
        const FD: RawFd = 5;
        let q = Arc::new(NoteQueue::new(Box::new(NoSignal)));
        let mut slots: Vec<Option<Conn>> = (0..8).map(|_| None).collect();
        let mut woken: Vec<(u64, u64)> = Vec::new(); // (waker's id, woken conn's id)
        let mut handled = 0;
        let mut drain = |slots: &mut Vec<Option<Conn>>| {
            let mut batch = Vec::new();
            q.swap(&mut batch);
            for note in batch {
                let (fd, id) = note;
                handled += 1;
                match target(slots, fd, id) {
                    Some(conn) => {
                        trace(format!(
                            "loop: wake (fd {fd}, id {id}) -> connection {}",
                            conn.id
                        ));
                        woken.push((id, conn.id));
                    }
                    None => trace(format!("loop: wake (fd {fd}, id {id}) -> dropped")),
                }
            }
        };

        slots[FD as usize] = Some(Conn { id: 1 });
        let waker = |id| {
            let q = q.clone();
            thread::spawn(move || {
                trace(format!("  user: wakes (fd {FD}, id {id})"));
                q.add((FD, id)).unwrap(); // the loop's `Note::Wake { fd, id }`
            })
        };
        let old = waker(1);
        drain(&mut slots);
        slots[FD as usize] = None;
        trace("loop: closes connection 1");
        drain(&mut slots);
        slots[FD as usize] = Some(Conn { id: 2 });
        trace("loop: accepts connection 2, on fd 5 again");
        let new = waker(2);
        drain(&mut slots);
        old.join().unwrap();
        new.join().unwrap();
        drain(&mut slots);

        assert_eq!(handled, 2, "every wake note handled once");
        for &(waker, conn) in &woken {
            assert_eq!(waker, conn, "waker of {waker} reached connection {conn}");
        }
        assert_eq!(woken.iter().filter(|w| w.1 == 2).count(), 1);
    })
}
// ANCHOR_END: model_stale_wake

#[test]
fn ch11_loom_stale_wake_reaches_nobody() {
    assert!(stale_wake_reaches_nobody(by_fd_and_id) > 1);
}

#[test]
fn ch11_loom_finds_wake_by_fd_only() {
    let msg = expect_failure(|| {
        stale_wake_reaches_nobody(by_fd_only);
    });
    assert!(msg.contains("waker of 1 reached connection 2"), "{msg}");
}
