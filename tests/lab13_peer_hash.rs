//! The grader of lab 13 (chapter 13, "Beyond evio", exercise 5): a fourth
//! balancing rule, by the client's address. `#[ignore]`d: it fails until you
//! have done the lab. Grade it with `cargo test lab13 -- --ignored`.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;

use common::{backends, config, loop_index, read_line, start, within, IO_TIMEOUT};
use evio::{Accept, Action, Conn, Events, LoadBalance, Options};

const LOOPS: usize = 4;
/// Clients 127.0.0.1 to 127.0.0.16: on Linux every 127.x.y.z address is the
/// machine's own, so a test can be sixteen clients.
const PEERS: u8 = 16;
const CONNS_PER_PEER: usize = 2;

/// Greets each connection with the index of the loop that took it.
struct WhichLoop;

impl Events for WhichLoop {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        out.extend_from_slice(format!("loop {}\n", loop_index()).as_bytes());
        (Options::default(), Action::None)
    }
}

/// A connection to `server` from the address `from` (any port), and the
/// loop that greeted it.
fn connect_from(from: Ipv4Addr, server: SocketAddr) -> (TcpStream, usize) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into())
        .unwrap_or_else(|e| panic!("bind a client to {from}: {e}"));
    s.connect_timeout(&server.into(), IO_TIMEOUT).unwrap();
    let mut s: TcpStream = s.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let line = read_line(&mut s);
    let idx = line.trim_end()["loop ".len()..].parse().unwrap();
    (s, idx)
}

/// Exercise 5 of chapter 13: a fourth balancing rule, `LoadBalance::PeerHash`,
/// parsed as `peer-hash`, with which the thread that accepts picks the loop
/// by a hash of the client's IP address. Every connection from one address
/// must land on the same loop, and sixteen addresses must spread over at
/// least three of four loops: on the reactor's hand-off and on the
/// thread-based variant, where one thread chooses for all. Run with
/// `cargo test lab13 -- --ignored`.
#[test]
#[ignore = "lab 13: add LoadBalance::PeerHash, parsed as \"peer-hash\", then `cargo test lab13 -- --ignored`"]
fn lab13_peer_hash_keeps_each_client_on_one_loop() {
    let rule: LoadBalance = "peer-hash".parse().unwrap_or_else(|e| {
        panic!(
            "lab13: there is no balancing rule \"peer-hash\" yet ({e}): add \
             LoadBalance::PeerHash in src/api.rs, parsed from \"peer-hash\", and its choice \
             in Balancer::choose (src/shared/balancer.rs)"
        )
    });
    within(60, move || {
        for setup in backends() {
            if setup.accept != Accept::HandOff {
                continue; // evio's way decides before it accepts: no peer yet
            }
            let cfg = config(setup, LOOPS as isize, rule);
            let server = start(setup, Arc::new(WhichLoop), cfg, &["tcp://127.0.0.1:0"]);
            let mut held = Vec::new();
            let mut loop_of_peer = Vec::new();
            for peer in 1..=PEERS {
                let from = Ipv4Addr::new(127, 0, 0, peer);
                let loops: Vec<usize> = (0..CONNS_PER_PEER)
                    .map(|_| {
                        let (s, idx) = connect_from(from, server.addr(0));
                        held.push(s); // held open, so every choice is made with all in place
                        idx
                    })
                    .collect();
                assert!(
                    loops.iter().all(|&l| l == loops[0]),
                    "lab13, {setup:?}: the connections from {from} went to loops {loops:?}: \
                     one client's connections must all land on one loop (hash the IP \
                     address only, not the port)"
                );
                loop_of_peer.push(loops[0]);
            }
            let mut used = loop_of_peer.clone();
            used.sort();
            used.dedup();
            assert!(
                used.len() >= 3,
                "lab13, {setup:?}: {PEERS} clients went only to loops {used:?} (by client: \
                 {loop_of_peer:?}): a hash should spread them over at least 3 of {LOOPS} loops"
            );
            drop(held);
            server.stop(10).unwrap();
        }
    });
}
