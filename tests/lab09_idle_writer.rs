//! The grader of lab 09 (chapter 9, "The thread-based variant"): a
//! connection's writer thread that leaves once it has written everything,
//! and comes back when a reply again does not fit the socket. `#[ignore]`d:
//! it fails until you do the lab. Grade it with
//! `cargo test lab09 -- --ignored`.
//!
//! One test in this file, on purpose: it counts the threads of this test
//! process whose name starts with `evio-write-`, and a second server in
//! another test running at the same time would add its own.

#![cfg(target_os = "linux")] // it reads /proc/self/task

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config, connect_tcp, read_line, start, wait_until, within};
use evio::{Action, Backend, Conn, Events, LoadBalance};

/// The reply to `big`: far more than the loopback's socket buffers hold,
/// so the loop's own write stops short and the writer thread starts.
const BIG: usize = 16 << 20;

/// How long the writer thread may take to leave after its last write.
const LEAVE: Duration = Duration::from_secs(3);

/// Byte `i` of the big reply: not all the same, so that a reply with bytes
/// out of order or missing is noticed.
fn byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// Answers `big` with `BIG` bytes, and echoes anything else.
struct BigReplies;

impl Events for BigReplies {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        if input == b"big\n" {
            out.extend((0..BIG).map(byte));
        } else {
            out.extend_from_slice(input);
        }
        Action::None
    }
}

/// The threads of this process named `evio-write-...`.
fn writer_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|name| name.starts_with("evio-write-"))
        })
        .count()
}

/// Exercise 3 of chapter 9, as a lab: the writer thread of a connection
/// leaves once its queue is empty, and `send` starts a new one when a reply
/// again does not fit. Two big replies on one connection: each starts a
/// writer, arrives whole and in order, and its writer is gone within
/// `LEAVE` of the last byte; a small reply after each still arrives.
#[test]
#[ignore = "lab 09: make the writer thread leave when idle, then `cargo test lab09 -- --ignored`"]
fn lab09_idle_writer_leaves_and_comes_back() {
    within(120, || {
        let cfg = config(Backend::Threads, 1, LoadBalance::default());
        let server = start(
            Backend::Threads,
            Arc::new(BigReplies),
            cfg,
            &["tcp://127.0.0.1:0"],
        );
        let mut c = connect_tcp(server.addr(0));
        let mut got = vec![0u8; BIG];
        for round in 1..=2 {
            c.write_all(b"big\n").unwrap();
            wait_until(
                10,
                &format!("round {round}: a writer thread for a {BIG}-byte reply"),
                || writer_threads() == 1,
            );
            c.read_exact(&mut got).unwrap_or_else(|e| {
                panic!("lab09: round {round}: the big reply did not arrive whole: {e}")
            });
            if let Some(i) = (0..BIG).find(|&i| got[i] != byte(i)) {
                panic!(
                    "lab09: round {round}: byte {i} of the big reply is {}, not {}: the \
                     reply came out of order or with a gap (the new writer thread must \
                     write what was queued, in order, after what the loop wrote itself)",
                    got[i],
                    byte(i)
                );
            }
            let start = Instant::now();
            while writer_threads() > 0 {
                assert!(
                    start.elapsed() < LEAVE,
                    "lab09: round {round}: the connection's writer thread is still there \
                     {LEAVE:?} after it wrote the last byte: make `write_run` \
                     (src/threads/writer.rs) return once its queue is empty, and `send` \
                     (src/threads/event_loop.rs) start a new one when a reply does not fit"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            c.write_all(b"ping\n").unwrap();
            assert_eq!(
                read_line(&mut c),
                "ping\n",
                "lab09: round {round}: a small reply after the writer left"
            );
        }
        drop(c);
        server.stop(10).unwrap();
    });
}
