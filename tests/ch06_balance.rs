//! Accepting and balancing over real sockets: with several loops, which loop
//! takes each connection, under each rule; and evio's `TestReuseport`,
//! extended so that the five servers sharing a port must each serve.
//!
//! Chapter 6, "Accepting and balancing", explains the rules
//! (`src/reactor/balance.rs`, whose unit tests check the decision alone).
//! Here a callback learns its loop from its thread's name, `evio-loop-N`,
//! and greets the client with it, so the client knows who accepted it.

mod common;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{
    accept_setups, config, loop_index, read_line, start, wait_until, within, Client, Setup,
};
use evio::{Accept, Action, Config, Conn, Events, LoadBalance, Options, Server};

const LOOPS: usize = 3;

/// Greets each connection with the index of the loop that accepted it.
#[derive(Default)]
struct WhichLoop {
    closed: AtomicUsize,
}

impl Events for WhichLoop {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        out.extend_from_slice(format!("loop {}\n", loop_index()).as_bytes());
        (Options::default(), Action::None)
    }

    fn closed(&self, _c: &mut Conn<()>, _err: Option<io::Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }
}

/// Connects one client and waits for its greeting, so that connections are
/// accepted one at a time: returns the client and its loop.
fn connect(server: &common::Running) -> (Client, usize) {
    let mut c = Client::connect(&server.info.addrs[0]);
    let line = read_line(&mut c);
    let idx = line
        .trim_end()
        .strip_prefix("loop ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad greeting {line:?}"));
    assert!(idx < LOOPS, "loop {idx} of {LOOPS}");
    (c, idx)
}

/// Under `Accept::ReusePort` (chapter 13) the kernel's hash picks the loop,
/// not the rule: every connection must still be served, with no loop woken
/// for one it may not take (no refusal), but no spread is promised.
fn hashed(server: &common::Running, backend: Setup) -> bool {
    if backend.accept != Accept::ReusePort {
        return false;
    }
    let s = server.stats.total();
    assert_eq!((s.refusals, s.notes), (0, 0), "{backend:?}: {s}");
    true
}

fn start_loops(backend: Setup, balance: LoadBalance) -> (common::Running, Arc<WhichLoop>) {
    let events = Arc::new(WhichLoop::default());
    let cfg = config(backend, LOOPS as isize, balance);
    let server = start(backend, events.clone(), cfg, &["tcp://127.0.0.1:0"]);
    assert_eq!(server.info.num_loops, LOOPS);
    (server, events)
}

#[test]
fn ch06_round_robin_gives_each_loop_its_turn() {
    within(60, || {
        for backend in accept_setups() {
            let (server, _) = start_loops(backend, LoadBalance::RoundRobin);
            let (clients, seq): (Vec<_>, Vec<_>) = (0..3 * LOOPS).map(|_| connect(&server)).unzip();
            // Each loop in turn: 0 1 2 0 1 2 ... (starting anywhere), so
            // each loop holds exactly three.
            let turns = (0..seq.len()).map(|i| (seq[0] + i) % LOOPS);
            if !hashed(&server, backend) {
                assert!(seq.iter().copied().eq(turns), "{backend:?}: order {seq:?}");
            }
            drop(clients);
            server.stop(10).unwrap();
        }
    });
}

#[test]
fn ch06_least_connections_fills_the_emptiest_loop() {
    within(60, || {
        for backend in accept_setups() {
            let (server, events) = start_loops(backend, LoadBalance::LeastConnections);
            let mut held: Vec<(Client, usize)> = Vec::new();
            let counts = |held: &[(Client, usize)]| {
                let mut n = [0usize; LOOPS];
                held.iter().for_each(|&(_, i)| n[i] += 1);
                n
            };
            // While connections are held open, no loop gets ahead by two.
            for _ in 0..10 {
                held.push(connect(&server));
                let n = counts(&held);
                let (min, max) = (n.iter().min().unwrap(), n.iter().max().unwrap());
                assert!(
                    max - min <= 1 || hashed(&server, backend),
                    "{backend:?}: {n:?}"
                );
            }
            // Empty one loop: the next connections must all go to it.
            let target = held[0].1;
            let before = counts(&held)[target];
            held.retain(|&(_, i)| i != target);
            wait_until(10, "the closes", || {
                events.closed.load(Ordering::SeqCst) == before
            });
            for _ in 0..before - 1 {
                let (c, idx) = connect(&server);
                let chosen = idx == target || hashed(&server, backend);
                assert!(chosen, "{backend:?}: the emptied loop is not chosen");
                held.push((c, idx));
            }
            drop(held);
            server.stop(10).unwrap();
        }
    });
}

#[test]
fn ch06_random_serves_every_connection() {
    within(60, || {
        for backend in accept_setups() {
            let (server, _) = start_loops(backend, LoadBalance::Random);
            // Several at once, not one by one: whichever loop is fastest.
            let clients: Vec<_> = (0..12)
                .map(|_| Client::connect(&server.info.addrs[0]))
                .collect();
            for mut c in clients {
                assert!(read_line(&mut c).starts_with("loop "));
            }
            server.stop(10).unwrap();
        }
    });
}

/// Greets with the number of the server.
struct Numbered(usize);

impl Events for Numbered {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        out.extend_from_slice(format!("server {}\n", self.0).as_bytes());
        (Options::default(), Action::None)
    }
}

#[test]
fn ch06_reuseport_five_servers_share_one_port_and_each_serves() {
    within(60, || {
        for backend in accept_setups() {
            let first = start(
                backend,
                Arc::new(Numbered(0)),
                Config::default(),
                &["tcp://127.0.0.1:0?reuseport=1"],
            );
            let port = first.port();
            let mut servers = vec![first];
            for i in 1..5 {
                // evio's test alternates the spellings of "true".
                let yes = if i % 2 == 0 { "true" } else { "1" };
                let addr = format!("tcp://127.0.0.1:{port}?reuseport={yes}");
                let s = start(backend, Arc::new(Numbered(i)), Config::default(), &[&addr]);
                assert_eq!(s.port(), port, "server {i} bound elsewhere");
                servers.push(s);
            }
            // Without the option, the port is taken.
            let cfg = Config {
                backend: backend.backend,
                accept: backend.accept,
                writes: backend.writes,
                trigger: backend.trigger,
                ..Config::default()
            };
            let taken = Server::bind(cfg, &[&format!("tcp://127.0.0.1:{port}")]).err();
            assert_eq!(
                taken.map(|e| e.kind()),
                Some(io::ErrorKind::AddrInUse),
                "a sixth server without reuseport bound port {port}"
            );
            // The kernel spreads connections over the five by a hash of the
            // client's address; connect until every server has answered.
            let mut seen = [false; 5];
            for _ in 0..1000 {
                if seen.iter().all(|&s| s) {
                    break;
                }
                let mut c = Client::connect(&servers[0].info.addrs[0]);
                let line = read_line(&mut c);
                let n: usize = line.trim_end()["server ".len()..].parse().unwrap();
                seen[n] = true;
            }
            assert_eq!(seen, [true; 5], "servers that answered on port {port}");
            for s in servers {
                s.stop(10).unwrap();
            }
        }
    });
}
