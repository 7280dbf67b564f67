//! Chapter 13, "Beyond evio": what the better strategies change, checked on
//! a real server.
//!
//! evio's writes (`Writes::Deferred`) keep read interest on while a reply is
//! pending, so a peer that sends and never reads keeps its socket readable
//! and its loop spinning (evio's weakness 3, chapter 7). `Writes::Eager`
//! watches such a socket for write only: the loop sleeps, and the peer's
//! input stays in the kernel (back-pressure). Both are checked here on every
//! reactor backend, with the CPU time of the loop thread as the kernel
//! counts it (`/proc/self/task/TID/stat`), and another client served
//! meanwhile.
//!
//! The CPU test tells its loop thread from others by name, so it must be
//! the only test of this file that runs a server while it measures: the
//! counters test waits for it (`ONE_AT_A_TIME`).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    backends, config, connect_tcp, loop_index, read_line, start, wait_until, wake_setups, within,
    Setup,
};
use evio::{Accept, Action, Backend, Conn, Events, LoadBalance, Options, Trigger, Writer, Writes};

/// Held by each test that runs a server, so that the CPU test's loop thread
/// is the only `evio-loop-0` of the process while it measures.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Echo;

impl Events for Echo {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        out.extend_from_slice(input);
        Action::None
    }
}

/// CPU time (user + system) the kernel has counted for this process's
/// threads named `name`, in clock ticks (100 a second on Linux).
fn cpu_ticks(name: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The fields after the command, which is in parentheses.
        let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split(' ').collect();
        // utime and stime are fields 14 and 15 of stat(5), 12 and 13 here.
        total += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    total
}

#[test]
fn ch13_a_peer_that_never_reads_spins_deferred_and_costs_nothing_eager() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    within(120, || {
        for setup in backends() {
            if setup == Backend::Threads {
                continue; // no poller: chapter 9 and the next chapters
            }
            let server = start(
                setup,
                Arc::new(Echo),
                config(setup, 1, LoadBalance::Random),
                &["tcp://127.0.0.1:0"],
            );
            // The peer writes without reading, until the kernel's buffers
            // are full both ways and its own write blocks.
            let mut hog = connect_tcp(server.addr(0));
            hog.set_write_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let chunk = vec![b'x'; 64 * 1024];
            let start_fill = Instant::now();
            let mut sent = 0usize;
            let blocked = loop {
                match hog.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break true
                    }
                    Err(e) => panic!("{setup:?}: the peer's write failed: {e}"),
                }
                if start_fill.elapsed() > Duration::from_secs(5) {
                    break false;
                }
            };
            // Both strategies stop reading this peer in the end (evio's
            // reads nothing while output is pending, either), so the peer
            // blocks; they differ in what the loop does meanwhile.
            assert!(blocked, "{setup:?}: {sent} bytes written, never blocked");
            let before = cpu_ticks("evio-loop-0");
            std::thread::sleep(Duration::from_secs(1));
            let spent = cpu_ticks("evio-loop-0") - before;
            match setup.writes {
                // One second is 100 ticks; a spinning loop takes most.
                Writes::Deferred => assert!(spent >= 30, "{setup:?}: {spent} ticks, no spin?"),
                Writes::Eager => assert!(spent <= 5, "{setup:?}: {spent} ticks in 1 s"),
            }
            // Another client is served all along.
            let mut other = connect_tcp(server.addr(0));
            other.write_all(b"still here\n").unwrap();
            assert_eq!(read_line(&mut other), "still here\n", "{setup:?}");
            drop(other);
            // The hog's echo is all there: nothing was lost, only held back.
            hog.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut back = vec![0u8; 64 * 1024];
            hog.read_exact(&mut back).unwrap();
            assert!(back.iter().all(|&b| b == b'x'), "{setup:?}");
            drop(hog);
            server.stop(10).unwrap();
        }
    });
}

/// The loop's own counters tell the cost of a round trip, as `perf` does
/// from outside (chapter 13's table): eager writes make one read and one
/// write per round trip and register the connection once; evio's add two
/// interest changes per reply, and one when the connection opens. The
/// thread variant reads and writes once per round trip too, with no poller.
#[test]
fn ch13_counters_show_what_a_round_trip_costs() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    within(60, || {
        for setup in backends() {
            let server = start(
                setup,
                Arc::new(Echo),
                config(setup, 1, LoadBalance::Random),
                &["tcp://127.0.0.1:0"],
            );
            let mut c = connect_tcp(server.addr(0));
            for i in 0..100 {
                let line = format!("round trip {i}\n");
                c.write_all(line.as_bytes()).unwrap();
                assert_eq!(read_line(&mut c), line, "{setup:?}");
            }
            let interest = match setup.writes {
                // No poller: nothing is registered (io_uring submits
                // operations instead, counted as `submitted`).
                _ if setup == Backend::Threads || setup == Backend::IoUring => 0,
                Writes::Eager => 1,              // the add, at accept
                Writes::Deferred => 1 + 1 + 200, // add, opened, two per reply
            };
            // The loop counts a call after it returns, which can be just
            // after the client has read the reply: wait for the counts.
            wait_until(10, "the last write and interest change counted", || {
                let s = server.stats.total();
                s.writes >= 100 && s.reads >= 100 && s.interest_changes >= interest
            });
            let s = server.stats.total();
            let calls = (s.reads, s.writes, s.accepts);
            assert_eq!(calls, (100, 100, 1), "{setup:?}: {s}");
            assert_eq!(s.bytes_in, s.bytes_out, "{setup:?}: {s}");
            assert_eq!(s.interest_changes, interest, "{setup:?}: {s}");
            drop(c);
            server.stop(10).unwrap();
        }
    });
}

/// Keeps the writer of the one connection it serves, for the test thread,
/// and notes when that connection closes.
#[derive(Default)]
struct Hold {
    writer: Mutex<Option<Writer>>,
    closed: AtomicBool,
}

impl Events for Hold {
    type Context = ();

    fn opened(&self, c: &mut Conn<()>, _out: &mut Vec<u8>) -> (Options, Action) {
        *self.writer.lock().unwrap() = Some(c.writer());
        (Options::default(), Action::None)
    }

    fn closed(&self, _c: &mut Conn<()>, _err: Option<std::io::Error>) -> Action {
        self.closed.store(true, AtomicOrdering::SeqCst);
        Action::None
    }
}

/// A [`Writer`] whose peer does not read: its writes are refused once the
/// connection holds more than the limit, so the server's memory stays
/// bounded, and after the connection has closed they do nothing.
#[test]
fn ch13_a_writer_past_its_limit_fails_and_after_close_does_nothing() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    within(120, || {
        for setup in wake_setups() {
            let hold = Arc::new(Hold::default());
            let mut cfg = config(setup, 1, LoadBalance::Random);
            cfg.writer_limit = 64 * 1024;
            let server = start(setup, hold.clone(), cfg, &["tcp://127.0.0.1:0"]);
            let peer = connect_tcp(server.addr(0)); // never reads
            wait_until(10, "the writer", || hold.writer.lock().unwrap().is_some());
            let writer = hold.writer.lock().unwrap().clone().unwrap();
            let chunk = [b'x'; 4096];
            let mut accepted = 0usize;
            let refused = loop {
                match writer.write(&chunk) {
                    Ok(()) => accepted += chunk.len(),
                    Err(e) => break e,
                }
                // The kernel's buffers take a few MB; the limit, 64 KiB more.
                assert!(accepted < 64 << 20, "{setup:?}: {accepted} bytes accepted");
                // Give the loop time to write, so the kernel's buffers fill.
                if accepted % (256 * 1024) == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            };
            assert_eq!(
                refused.kind(),
                ErrorKind::WouldBlock,
                "{setup:?}: {refused}"
            );
            assert!(refused.to_string().contains("limit"), "{refused}");
            // The peer goes; the server finds out when a write fails.
            drop(peer);
            wait_until(20, "closed()", || hold.closed.load(AtomicOrdering::SeqCst));
            writer.write(b"after the close").unwrap();
            writer.close().unwrap();
            server.stop(10).unwrap();
        }
    });
}

/// `Accept::Exclusive` (`EPOLLEXCLUSIVE` on epoll; on kqueue, evio's way):
/// every loop watches the listener, the kernel wakes one, and every
/// connection is served.
#[test]
fn ch13_exclusive_accept_serves_every_connection() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    within(60, || {
        for setup in backends() {
            if setup == Backend::Threads {
                continue; // one accept thread per listener: no choice to make
            }
            // `start` takes the strategy from the setup, not the config.
            let setup = Setup {
                accept: Accept::Exclusive,
                ..setup
            };
            let cfg = config(setup, 3, LoadBalance::Random);
            let server = start(setup, Arc::new(Echo), cfg, &["tcp://127.0.0.1:0"]);
            let mut clients: Vec<_> = (0..30).map(|_| connect_tcp(server.addr(0))).collect();
            for (i, c) in clients.iter_mut().enumerate() {
                let line = format!("client {i}\n");
                c.write_all(line.as_bytes()).unwrap();
                assert_eq!(read_line(c), line, "{setup:?}");
            }
            assert_eq!(server.stats.total().accepts, 30, "{setup:?}");
            drop(clients);
            server.stop(10).unwrap();
        }
    });
}

/// Greets each connection with the index of its loop.
struct WhichLoop;

impl Events for WhichLoop {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        out.extend_from_slice(format!("loop {}\n", loop_index()).as_bytes());
        (Options::default(), Action::None)
    }
}

/// The TCP sockets listening on `port` (IPv4), as the kernel lists them
/// in `/proc/net/tcp`: state `0A` is LISTEN.
fn listening_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = format!(":{port:04X}");
    let listening = |line: &&str| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f[1].ends_with(&port) && f[3] == "0A"
    };
    table.lines().skip(1).filter(listening).count()
}

/// `Accept::ReusePort`: each of 4 loops has its own socket on the port
/// (the kernel lists 4), and the kernel hands each connection to one of
/// them by a hash. All 200 connections are served, by more than one loop,
/// each by the loop that accepted it (no note: nothing handed off), with no
/// refusal under rules the hash overrides, and no wake-up of a loop that
/// then found nothing to accept: a loop's waits are its accepts, plus its
/// first wait. On io_uring too (chapter 16), where a wait also brings the
/// completion of the greeting's send, so only the rest is checked.
#[test]
fn ch13_reuseport_accept_spreads_connections_without_a_wasted_wake_up() {
    const LOOPS: usize = 4;
    const CONNS: usize = 200;
    if !evio::poll::HAS_EPOLL {
        return; // Linux spreads by hash; macOS and the BSDs do not promise to
    }
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let backends = [Backend::Epoll].into_iter();
    let backends = backends.chain(common::io_uring().then_some(Backend::IoUring));
    within(60, || {
        for (backend, balance) in backends.flat_map(|b| {
            [
                (b, LoadBalance::RoundRobin),
                (b, LoadBalance::LeastConnections),
            ]
        }) {
            let setup = Setup {
                accept: Accept::ReusePort,
                writes: Writes::Eager,
                ..backend.into()
            };
            let cfg = config(setup, LOOPS as isize, balance);
            let server = start(setup, Arc::new(WhichLoop), cfg, &["tcp://127.0.0.1:0"]);
            assert_eq!(listening_on(server.port()), LOOPS, "sockets on the port");
            let mut served = [0usize; LOOPS];
            let mut clients: Vec<_> = (0..CONNS).map(|_| connect_tcp(server.addr(0))).collect();
            for c in &mut clients {
                let line = read_line(c);
                let idx: usize = line.trim_end()["loop ".len()..].parse().unwrap();
                served[idx] += 1;
            }
            assert!(served.iter().filter(|&&n| n > 0).count() > 1, "{served:?}");
            let loops = server.stats.loops();
            for (i, s) in loops.iter().enumerate() {
                let what = format!("{backend:?} {balance:?}: loop {i}: {s}");
                assert_eq!(s.accepts as usize, served[i], "{what}");
                assert_eq!((s.notes, s.refusals), (0, 0), "{what}");
                if backend == Backend::Epoll {
                    assert!(s.waits <= s.accepts + 1, "{what}");
                }
            }
            drop(clients);
            server.stop(10).unwrap();
        }
    });
}

/// Edge-triggered (`Trigger::Edge`, the default), the poller reports input
/// once, when it arrives; a read that fills the loop's 64 KiB buffer
/// leaves the rest unreported, and the loop must come back to it by
/// itself (`dispatch::again`). A client that sends 1 MiB in one go, then
/// its end of the stream, must get all of it back, and the connection
/// closed after: on every setup, level-triggered ones too.
#[test]
fn ch13_input_larger_than_the_read_buffer_is_all_read() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    within(120, || {
        for setup in backends() {
            let server = start(
                setup,
                Arc::new(Echo),
                config(setup, 1, LoadBalance::Random),
                &["tcp://127.0.0.1:0"],
            );
            let mut client = connect_tcp(server.addr(0));
            let sent: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
            let mut writer = client.try_clone().unwrap();
            let input = sent.clone();
            let writing = std::thread::spawn(move || {
                writer.write_all(&input).unwrap();
                writer.shutdown(std::net::Shutdown::Write).unwrap();
            });
            let mut back = Vec::new();
            let got = client.read_to_end(&mut back);
            writing.join().unwrap();
            assert!(got.is_ok(), "{setup:?}: {got:?} after {} bytes", back.len());
            assert!(
                back == sent,
                "{setup:?}: {} of {} bytes",
                back.len(),
                sent.len()
            );
            // The loop came back by itself only where the trigger is edge.
            let again = server.stats.total().again;
            let poller = matches!(setup.backend, Backend::Epoll | Backend::Kqueue);
            let edge = setup.trigger == Trigger::Edge && poller;
            assert_eq!(again > 0, edge, "{setup:?}: {again} steps unasked");
            server.stop(10).unwrap();
        }
    });
}
