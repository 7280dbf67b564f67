//! Chapter 16, "Completion instead of readiness": what the io_uring engine
//! must do that the rest of the suite (which runs on it too, through
//! `common::backends()`) does not check by itself.
//!
//! Where the kernel or a seccomp profile forbids io_uring, the tests that
//! need a ring print why and pass; where it is present they must pass.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use common::{config, connect_tcp, io_uring_setups, read_line, start, wait_until, within};
use evio::{Action, Backend, Config, Conn, Events, Limits, LoadBalance, Receive, Server, Writer};

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

#[test]
fn ch16_udp_fails_at_bind_with_a_clear_error() {
    if !have_ring("ch16_udp_fails_at_bind_with_a_clear_error") {
        return;
    }
    let config = Config {
        backend: Backend::IoUring,
        ..Config::default()
    };
    let Err(err) = Server::bind(config, &["udp://127.0.0.1:0"]) else {
        panic!("UDP on io_uring should fail at bind in this step");
    };
    assert!(err.to_string().contains("UDP"), "{err}");
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
                // A send per round trip, a receive per connection, the
                // accept and each loop's bell (400 + 4 + 1 + 2), and the
                // bell's read again after each wake-up by a note (the
                // connections handed to loop 1).
                Receive::Multishot => {
                    let most = 407 + total.notes;
                    let got = total.submitted;
                    assert!((407..=most).contains(&got), "{setup:?}: {total}");
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

/// A connection closed from another thread while its receive is in flight:
/// the receive is cancelled, the fd closed only after it came back, and the
/// connections after it (which may get the same fd number) are served.
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
