//! Chapter 16, "Completion instead of readiness": what the io_uring engine
//! must do that the rest of the suite (which runs on it too, through
//! `common::backends()`) does not check by itself.
//!
//! Where the kernel or a seccomp profile forbids io_uring, the tests that
//! need a ring print why and pass; where it is present they must pass.

mod common;

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{config, connect_tcp, io_uring_setups, read_line, start, wait_until, within, Setup};
use evio::{Action, Backend, Config, Conn, Events, Limits, LoadBalance, Receive, Server, Writer};
use evio::{IoUringOptions, RingAccept, RingSubmit, RingWake, Waker, Wakeups};

/// Echoes, and keeps each connection's writer for the test to use.
#[derive(Default)]
struct Echo {
    writers: Mutex<Vec<Writer>>,
}

impl Events for Echo {
    type Context = ();

    fn opened(&self, c: &mut Conn<()>, _out: &mut Vec<u8>) -> (evio::Options, Action) {
        self.writers.lock().unwrap().push(c.writer());
        Default::default()
    }

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        out.extend_from_slice(input);
        Action::None
    }
}

/// Whether the test can run; prints why not.
fn have_ring(test: &str) -> bool {
    match evio::internals::io_uring_available() {
        Ok(()) => true,
        Err(why) => {
            println!("{test}: skipped: {why}");
            false
        }
    }
}

#[test]
fn ch16_backend_names_parse_and_auto_is_not_io_uring() {
    assert_eq!("io-uring".parse::<Backend>().unwrap(), Backend::IoUring);
    assert_eq!("iouring".parse::<Backend>().unwrap(), Backend::IoUring);
    // `Auto` keeps the reactor: nothing is ever submitted to a ring.
    within(30, || {
        let echo = Arc::new(Echo::default());
        let server = start(
            Backend::Auto,
            echo,
            Config::default(),
            &["tcp://127.0.0.1:0"],
        );
        let mut c = connect_tcp(server.addr(0));
        c.write_all(b"hello\n").unwrap();
        assert_eq!(read_line(&mut c), "hello\n");
        assert_eq!(server.stats.total().submitted, 0);
        server.stop(10).unwrap();
    });
}

/// Answers every datagram with "re: " and the datagram: an empty one would
/// be answered too, if it reached `data`.
struct Re;

impl Events for Re {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        out.extend_from_slice(b"re: ");
        out.extend_from_slice(input);
        Action::None
    }
}

/// UDP on the ring (`src/uring/udp.rs`; chapter 8's echo runs on it too): a
/// burst of datagrams sent before any reply is read is answered whole and
/// in order (one operation at a time per listener: the others wait in the
/// socket's buffer), an empty datagram is dropped, each receive and send is
/// an operation submitted to the ring, and a stop with a receive in flight
/// cancels it rather than wait it out (`drain`).
#[test]
fn ch16_udp_is_received_and_answered_through_the_ring() {
    if !have_ring("ch16_udp_is_received_and_answered_through_the_ring") {
        return;
    }
    within(60, || {
        let cfg = config(Backend::IoUring, 2, LoadBalance::RoundRobin);
        let server = start(Backend::IoUring, Arc::new(Re), cfg, &["udp4://127.0.0.1:0"]);
        let to = server.addr(0);
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        client.send_to(&[], to).unwrap();
        for i in 0..50 {
            client
                .send_to(format!("datagram {i}").as_bytes(), to)
                .unwrap();
        }
        let mut buf = [0u8; 64];
        for i in 0..50 {
            let (n, from) = client.recv_from(&mut buf).expect("a reply");
            assert_eq!(from, to);
            assert_eq!(&buf[..n], format!("re: datagram {i}").as_bytes());
        }
        // The empty datagram, first in, had no reply: nothing else comes.
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert!(client.recv_from(&mut buf).is_err(), "a reply to nothing");
        // 51 receives and 50 sends; the last receive is submitted when the
        // last send's completion is reaped, maybe after the client read it.
        wait_until(10, "the last receive submitted", || {
            server.stats.total().submitted >= 101
        });
        // The loop ends within its drain's bound (2 s) only if the receive
        // in flight was cancelled.
        let stopping = Instant::now();
        server.stop(10).unwrap();
        let took = stopping.elapsed();
        assert!(took < Duration::from_millis(1500), "stop took {took:?}");
    });
}

/// Many round trips on a few connections: every send is an operation
/// submitted to the ring, and so is every receive one at a time
/// (`Receive::Single`), while a multishot receive is one submission per
/// connection (`Receive::Multishot`); every wait is one `io_uring_enter`.
#[test]
fn ch16_round_trips_are_submitted_operations() {
    if !have_ring("ch16_round_trips_are_submitted_operations") {
        return;
    }
    within(60, || {
        for setup in io_uring_setups() {
            let echo = Arc::new(Echo::default());
            let cfg = config(setup, 2, LoadBalance::RoundRobin);
            let server = start(setup, echo, cfg, &["tcp://127.0.0.1:0"]);
            let mut clients: Vec<_> = (0..4).map(|_| connect_tcp(server.addr(0))).collect();
            for i in 0..100 {
                for c in &mut clients {
                    c.write_all(format!("line {i}\n").as_bytes()).unwrap();
                    assert_eq!(read_line(c), format!("line {i}\n"));
                }
            }
            // A send is counted when its completion is reaped, which can be
            // just after the client has read the reply: wait for the count.
            wait_until(10, "the last send counted", || {
                server.stats.total().writes >= 400
            });
            let total = server.stats.total();
            assert_eq!(total.accepts, 4, "{total}");
            assert_eq!(total.reads, 400, "{total}");
            assert_eq!(total.writes, 400, "{total}");
            assert!(total.waits > 0, "{total}");
            match setup.io_uring.recv {
                // A receive and a send per round trip at least, plus the accept.
                Receive::Single => assert!(total.submitted >= 800, "{setup:?}: {total}"),
                // A send per round trip, a receive and its guard per
                // connection (`guard_entry`), the accept and each loop's
                // bell (400 + 8 + 1 + 2), and the bell's read again after
                // each wake-up by a note (the connections handed to loop 1).
                Receive::Multishot => {
                    let most = 411 + total.notes;
                    let got = total.submitted;
                    assert!((411..=most).contains(&got), "{setup:?}: {total}");
                }
            }
            server.stop(10).unwrap();
        }
    });
}

/// Echoes, with a small output limit, to a client that writes 4 MiB before
/// it reads: the server stops receiving each time the echo it holds is
/// over the limit (a multishot receive is cancelled), and receives again
/// once the client has read it (and it is submitted again), until every
/// byte has come back.
#[test]
fn ch16_back_pressure_stops_and_restarts_the_receive() {
    if !have_ring("ch16_back_pressure_stops_and_restarts_the_receive") {
        return;
    }
    const TOTAL: usize = 4 << 20;
    within(60, || {
        for setup in io_uring_setups() {
            let cfg = Config {
                limits: Limits {
                    output_limit: 64 * 1024,
                    ..Limits::none()
                },
                ..config(setup, 1, LoadBalance::Random)
            };
            let server = start(
                setup,
                Arc::new(Echo::default()),
                cfg,
                &["tcp://127.0.0.1:0"],
            );
            let mut c = connect_tcp(server.addr(0));
            let mut w = c.try_clone().unwrap();
            let writer = std::thread::spawn(move || w.write_all(&vec![b'x'; TOTAL]));
            let mut back = vec![0u8; TOTAL];
            c.read_exact(&mut back)
                .unwrap_or_else(|e| panic!("{setup:?}: the echo stalled: {e}"));
            writer.join().unwrap().unwrap();
            assert!(back.iter().all(|&b| b == b'x'), "{setup:?}");
            c.write_all(b"after\n").unwrap();
            assert_eq!(read_line(&mut c), "after\n", "{setup:?}");
            server.stop(10).unwrap();
        }
    });
}

/// Counts connections opened and closed.
#[derive(Default)]
struct Lives {
    opened: AtomicUsize,
    closed: AtomicUsize,
}

impl Events for Lives {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, _out: &mut Vec<u8>) -> (evio::Options, Action) {
        self.opened.fetch_add(1, Ordering::SeqCst);
        Default::default()
    }

    fn closed(&self, _c: &mut Conn<()>, _err: Option<std::io::Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }
}

/// Linux (6.18 here) can lose a reset under a multishot receive: when a
/// byte and the reset arrive together at a connection whose receive is
/// already armed, the receive posts the byte, says "more", and never posts
/// the reset. So each client here waits until the server has opened its
/// connection (and armed its receive), then sends one byte and resets.
/// Every connection must be closed, under both ways of receiving; without
/// the engine's guard (`guard_entry`), some never were.
#[test]
fn ch16_a_byte_then_a_reset_is_never_lost() {
    if !have_ring("ch16_a_byte_then_a_reset_is_never_lost") {
        return;
    }
    const CLIENTS: usize = 3_000;
    within(120, || {
        for setup in io_uring_setups() {
            let lives = Arc::new(Lives::default());
            let cfg = config(setup, 1, LoadBalance::RoundRobin);
            let server = start(setup, lives.clone(), cfg, &["tcp://127.0.0.1:0"]);
            let addr = server.addr(0);
            for i in 1..=CLIENTS {
                let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .unwrap();
                s.connect(&addr.into()).unwrap();
                while lives.opened.load(Ordering::SeqCst) < i {
                    std::hint::spin_loop();
                }
                let _ = (&s).write_all(b"x");
                s.set_linger(Some(Duration::ZERO)).unwrap();
                drop(s); // a byte, then RST
            }
            let all_closed = || lives.closed.load(Ordering::SeqCst) == CLIENTS;
            let end = Instant::now() + Duration::from_secs(10);
            while !all_closed() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            let closed = lives.closed.load(Ordering::SeqCst);
            server.stop(10).unwrap();
            assert_eq!(closed, CLIENTS, "{setup:?}: connections never closed");
        }
    });
}

/// `RingAccept::Multishot` submits one accept for all the connections;
/// `RingAccept::Single` one per connection (and the next one's, armed).
/// Twenty clients, one after another, each with one round trip: the same
/// receives and sends under both, so the difference is the accepts.
#[test]
fn ch16_multishot_accept_submits_once_single_once_per_connection() {
    if !have_ring("ch16_multishot_accept_submits_once_single_once_per_connection") {
        return;
    }
    const CLIENTS: u64 = 20;
    let names = ["single", "multishot"];
    assert_eq!(
        names.map(|n| n.parse::<RingAccept>().unwrap()),
        [RingAccept::Single, RingAccept::Multishot]
    );
    assert_eq!(RingAccept::default(), RingAccept::Multishot);
    within(60, || {
        let mut totals = Vec::new();
        for accept in [RingAccept::Single, RingAccept::Multishot] {
            let setup = Setup {
                io_uring: IoUringOptions {
                    accept,
                    ..IoUringOptions::default()
                },
                ..Backend::IoUring.into()
            };
            let cfg = config(setup, 1, LoadBalance::Random);
            let server = start(
                setup,
                Arc::new(Echo::default()),
                cfg,
                &["tcp://127.0.0.1:0"],
            );
            let mut clients = Vec::new();
            for _ in 0..CLIENTS {
                let mut c = connect_tcp(server.addr(0));
                c.write_all(b"x\n").unwrap();
                assert_eq!(read_line(&mut c), "x\n");
                clients.push(c);
            }
            wait_until(10, "the last send counted", || {
                server.stats.total().writes >= CLIENTS
            });
            let total = server.stats.total();
            println!("{accept:?}: {total}");
            assert_eq!(total.accepts, CLIENTS, "{accept:?}: {total}");
            totals.push(total);
            server.stop(10).unwrap();
        }
        let (single, multi) = (totals[0], totals[1]);
        // A receive, a send and the next receive per client, whichever way.
        assert!(multi.submitted <= 3 * CLIENTS + 3, "multishot: {multi}");
        assert!(
            single.submitted >= multi.submitted + CLIENTS,
            "single: {single}\nmultishot: {multi}"
        );
    });
}

/// A connection closed from another thread while its receive is in flight:
/// the receive is cancelled, the fd closed only after it came back, and the
/// connections after it (which may get the same fd number) are served.
#[test]
fn ch16_each_op_submission_costs_a_system_call_per_operation() {
    if !have_ring("ch16_each_op_submission_costs_a_system_call_per_operation") {
        return;
    }
    const CLIENTS: u64 = 20;
    const ROUNDS: u64 = 10;
    let names = ["batched", "each-op"];
    assert_eq!(
        names.map(|n| n.parse::<RingSubmit>().unwrap()),
        [RingSubmit::Batched, RingSubmit::EachOp]
    );
    assert_eq!(RingSubmit::default(), RingSubmit::Batched);
    within(60, || {
        for submit in [RingSubmit::Batched, RingSubmit::EachOp] {
            let setup = Setup {
                io_uring: IoUringOptions {
                    submit,
                    ..IoUringOptions::default()
                },
                ..Backend::IoUring.into()
            };
            let cfg = config(setup, 1, LoadBalance::Random);
            let server = start(
                setup,
                Arc::new(Echo::default()),
                cfg,
                &["tcp://127.0.0.1:0"],
            );
            // Every client writes, then every client reads: one turn of
            // the loop finds many receives done, and has as many sends and
            // receives to submit.
            let mut clients: Vec<_> = (0..CLIENTS).map(|_| connect_tcp(server.addr(0))).collect();
            for i in 0..ROUNDS {
                for c in &mut clients {
                    c.write_all(format!("{i}\n").as_bytes()).unwrap();
                }
                for c in &mut clients {
                    assert_eq!(read_line(c), format!("{i}\n"), "{submit:?}");
                }
            }
            wait_until(10, "the last send counted", || {
                server.stats.total().writes >= CLIENTS * ROUNDS
            });
            let total = server.stats.total();
            println!("{submit:?}: {total}");
            // Each round trip submits a send and the next receive. Batched,
            // a turn's go with its one `io_uring_enter` (the wait); each-op,
            // every one has an `io_uring_enter` of its own (counted as a
            // wait too), and the turns still wait.
            match submit {
                RingSubmit::Batched => {
                    assert!(2 * total.waits <= total.submitted, "{submit:?}: {total}")
                }
                RingSubmit::EachOp => {
                    assert!(total.waits > total.submitted, "{submit:?}: {total}")
                }
            }
            server.stop(10).unwrap();
        }
    });
}

#[test]
fn ch16_a_close_cancels_the_receive_in_flight() {
    if !have_ring("ch16_a_close_cancels_the_receive_in_flight") {
        return;
    }
    within(60, || {
        for setup in io_uring_setups() {
            let echo = Arc::new(Echo::default());
            let cfg = config(setup, 1, LoadBalance::Random);
            let server = start(setup, echo.clone(), cfg, &["tcp://127.0.0.1:0"]);
            for round in 0..20 {
                let mut c = connect_tcp(server.addr(0));
                c.write_all(b"ping\n").unwrap();
                assert_eq!(read_line(&mut c), "ping\n");
                // The loop now waits in a receive for this connection.
                let writer = echo.writers.lock().unwrap().pop().unwrap();
                writer.write(b"bye\n").unwrap();
                writer.close().unwrap();
                assert_eq!(read_line(&mut c), "bye\n", "{setup:?} round {round}");
                let mut rest = Vec::new();
                c.read_to_end(&mut rest).unwrap();
                assert!(rest.is_empty(), "{setup:?} round {round}: {rest:?}");
            }
            server.stop(10).unwrap();
        }
    });
}

/// Detaches its connection when woken, and answers on the detached stream.
#[derive(Default)]
struct DetachOnWake {
    waker: Mutex<Option<evio::Waker>>,
}

impl Events for DetachOnWake {
    type Context = ();

    fn opened(&self, c: &mut Conn<()>, _out: &mut Vec<u8>) -> (evio::Options, Action) {
        *self.waker.lock().unwrap() = Some(c.waker());
        Default::default()
    }

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        if input.is_empty() {
            out.extend_from_slice(b"leaving\n");
            return Action::Detach;
        }
        out.extend_from_slice(input);
        Action::None
    }

    fn detached(&self, _c: &mut Conn<()>, mut stream: evio::Stream) -> Action {
        stream.write_all(b"detached\n").unwrap();
        Action::None
    }
}

/// A detach asked for by a wake, while the connection's receive is in
/// flight: the output goes first, the receive is cancelled, and only once
/// it has come back does `detached` get the (blocking) stream.
#[test]
fn ch16_a_detach_waits_for_the_cancelled_receive() {
    if !have_ring("ch16_a_detach_waits_for_the_cancelled_receive") {
        return;
    }
    within(60, || {
        for setup in io_uring_setups() {
            let events = Arc::new(DetachOnWake::default());
            let cfg = config(setup, 1, LoadBalance::Random);
            let server = start(setup, events.clone(), cfg, &["tcp://127.0.0.1:0"]);
            let mut c = connect_tcp(server.addr(0));
            c.write_all(b"hi\n").unwrap();
            assert_eq!(read_line(&mut c), "hi\n");
            let waker = events.waker.lock().unwrap().take().unwrap();
            waker.wake().unwrap();
            assert_eq!(read_line(&mut c), "leaving\n");
            assert_eq!(read_line(&mut c), "detached\n");
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty(), "{rest:?}");
            server.stop(10).unwrap();
        }
    });
}

/// Whether another thread can wake a loop by MSG_RING here; prints why not.
fn have_msg_ring(test: &str) -> bool {
    if !have_ring(test) {
        return false;
    }
    match evio::internals::io_uring_msg_ring_available() {
        Ok(()) => true,
        // A probe that fails where the kernel has the call would make
        // these tests pass by skipping: not on a kernel that should work.
        Err(why) if kernel_at_least(6, 13) => {
            panic!("{test}: MSG_RING probe failed on Linux 6.13+: {why}")
        }
        Err(why) => {
            println!("{test}: skipped: {why}");
            false
        }
    }
}

/// Whether the running kernel is `major.minor` or later.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    };
    (next(), next()) >= (major, minor)
}

/// The io_uring engine woken by `wake`.
fn woken_by(wake: RingWake) -> Setup {
    Setup {
        io_uring: IoUringOptions {
            wake,
            ..Default::default()
        },
        ..Backend::IoUring.into()
    }
}

/// Counts each connection's wakes (a `data` with no input), and keeps the
/// wakers; a wake answers `woken` if asked to.
#[derive(Default)]
struct CountWakes {
    answer: bool,
    wakers: Mutex<Vec<Waker>>,
    /// Wakes seen, per connection (its context: the order it opened in).
    seen: Mutex<Vec<usize>>,
    total: AtomicUsize,
}

impl Events for CountWakes {
    type Context = usize;

    fn opened(&self, c: &mut Conn<usize>, out: &mut Vec<u8>) -> (evio::Options, Action) {
        let mut wakers = self.wakers.lock().unwrap();
        *c.context_mut() = wakers.len();
        wakers.push(c.waker());
        self.seen.lock().unwrap().push(0);
        out.extend_from_slice(b"hi\n");
        Default::default()
    }

    fn data(&self, c: &mut Conn<usize>, input: &[u8], out: &mut Vec<u8>) -> Action {
        if input.is_empty() {
            self.seen.lock().unwrap()[*c.context()] += 1;
            self.total.fetch_add(1, Ordering::SeqCst);
            if self.answer {
                out.extend_from_slice(b"woken\n");
            }
        }
        Action::None
    }
}

// ANCHOR: storm_test
/// Many threads wake many connections on two loops, as fast as they can,
/// with every wake reaching the loop by MSG_RING: every wake must reach
/// `data`, under both `Wakeups`. The loops have nothing else to wake them
/// (no tick, no deadline due), so one lost message leaves a loop asleep
/// with notes in its queue, and the count short.
#[test]
fn ch16_a_wake_storm_by_msg_ring_loses_nothing() {
    const CONNS: usize = 8;
    const THREADS: usize = 8;
    const WAKES: usize = 2_000; // per thread and connection
    if !have_msg_ring("ch16_a_wake_storm_by_msg_ring_loses_nothing") {
        return;
    }
    within(120, || {
        for wakeups in [Wakeups::Coalesced, Wakeups::EveryNote] {
            let setup = woken_by(RingWake::MsgRing);
            let events = Arc::new(CountWakes::default());
            let mut cfg = config(setup, 2, LoadBalance::RoundRobin);
            cfg.wakeups = wakeups;
            let server = start(setup, events.clone(), cfg, &["tcp://127.0.0.1:0"]);
            let mut clients: Vec<_> = (0..CONNS).map(|_| connect_tcp(server.addr(0))).collect();
            clients
                .iter_mut()
                .for_each(|c| assert_eq!(read_line(c), "hi\n"));
            let wakers = events.wakers.lock().unwrap().clone();
            std::thread::scope(|s| {
                for _ in 0..THREADS {
                    s.spawn(|| {
                        for _ in 0..WAKES {
                            wakers.iter().for_each(|w| w.wake().unwrap());
                        }
                    });
                }
            });
            let want = CONNS * THREADS * WAKES;
            wait_until(30, "every wake seen", || {
                events.total.load(Ordering::SeqCst) == want
            });
            let seen = events.seen.lock().unwrap().clone();
            assert_eq!(seen, vec![THREADS * WAKES; CONNS], "{wakeups:?}");
            server.stop(10).unwrap();
        }
    });
}
// ANCHOR_END: storm_test

/// What one wake costs in submissions: under `RingWake::Eventfd` the loop
/// submits the eventfd's read again after each wake, and the wake's reply
/// (one send); under `RingWake::MsgRing` only the send.
#[test]
fn ch16_a_msg_ring_wake_submits_nothing_to_re_arm() {
    const WAKES: u64 = 50;
    if !have_msg_ring("ch16_a_msg_ring_wake_submits_nothing_to_re_arm") {
        return;
    }
    within(60, || {
        for (wake, per_wake) in [(RingWake::Eventfd, 2), (RingWake::MsgRing, 1)] {
            let setup = woken_by(wake);
            let events = Arc::new(CountWakes {
                answer: true,
                ..CountWakes::default()
            });
            let cfg = config(setup, 1, LoadBalance::Random);
            let server = start(setup, events.clone(), cfg, &["tcp://127.0.0.1:0"]);
            let mut c = connect_tcp(server.addr(0));
            assert_eq!(read_line(&mut c), "hi\n");
            wait_until(10, "the greeting's send counted", || {
                server.stats.total().writes == 1
            });
            let waker = events.wakers.lock().unwrap()[0].clone();
            let before = server.stats.total();
            for _ in 0..WAKES {
                waker.wake().unwrap();
                assert_eq!(read_line(&mut c), "woken\n");
            }
            wait_until(10, "the last send counted", || {
                server.stats.total().writes == 1 + WAKES
            });
            let after = server.stats.total();
            println!("{wake:?}: {WAKES} wakes: before {before}; after {after}");
            assert_eq!(
                after.submitted - before.submitted,
                per_wake * WAKES,
                "{wake:?}: before {before}; after {after}"
            );
            server.stop(10).unwrap();
        }
    });
}

/// A stop sent between `bind` and `run`, before any loop has opened its
/// ring: under `RingWake::MsgRing` its signal has no ring to post to, so
/// each loop's first wait must return at once for it to read its notes.
/// Loop 1 has no tick to end that wait otherwise.
#[test]
fn ch16_a_note_before_the_rings_open_is_not_lost() {
    if !have_msg_ring("ch16_a_note_before_the_rings_open_is_not_lost") {
        return;
    }
    within(30, || {
        let cfg = Config {
            loops: 2,
            backend: Backend::IoUring,
            io_uring: IoUringOptions {
                wake: RingWake::MsgRing,
                ..Default::default()
            },
            ..Config::default()
        };
        let server = Server::bind(cfg, &["tcp://127.0.0.1:0"]).unwrap();
        server.stopper().stop();
        let run = std::thread::spawn(move || server.run(&Echo::default()));
        common::join_within(run, 10).unwrap();
    });
}
