//! UDP and unix sockets over real sockets: a UDP echo (one `data` call per
//! datagram, the reply sent back to its sender, no `opened`/`closed`), and
//! the life of a unix socket file (removed before bind when stale, removed
//! after shutdown, never when it is an ordinary file).
//!
//! Chapter 8, "Tick, UDP, unix sockets, detach and shutdown", explains
//! both: evio's `loopUDPRead`, and the path handling in `Serve`.

mod common;

use std::io::{self, Write};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{accept_setups, backends, config, read_line, start, within, Client, Rng, TempDir};
use evio::{Action, Addr, Config, Conn, Events, LoadBalance, Options, Server};

#[derive(Default)]
struct UdpEcho {
    opened: AtomicUsize,
    closed: AtomicUsize,
    datagrams: AtomicUsize,
    /// (address index, local, remote) of each datagram.
    seen: Mutex<Vec<(usize, Addr, Addr)>>,
}

impl Events for UdpEcho {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, _out: &mut Vec<u8>) -> (Options, Action) {
        self.opened.fetch_add(1, Ordering::SeqCst);
        (Options::default(), Action::None)
    }

    fn closed(&self, _c: &mut Conn<()>, _err: Option<io::Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }

    fn data(&self, c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        if let (Ok(local), Ok(remote)) = (c.local_addr(), c.remote_addr()) {
            if let Addr::Udp(_) = local {
                self.datagrams.fetch_add(1, Ordering::SeqCst);
                self.seen
                    .lock()
                    .unwrap()
                    .push((c.addr_index(), local, remote));
            }
        }
        out.extend_from_slice(input);
        Action::None
    }
}

#[test]
fn ch08_udp_echo_answers_each_datagram_without_opened_or_closed() {
    within(60, || {
        let mut rng = Rng::from_clock("udp");
        for backend in accept_setups() {
            for loops in [1, 2] {
                let events = Arc::new(UdpEcho::default());
                let cfg = config(backend, loops, LoadBalance::Random);
                // A stream listener first, so the UDP one is address 1.
                let server = start(
                    backend,
                    events.clone(),
                    cfg,
                    &["tcp://127.0.0.1:0", "udp://127.0.0.1:0"],
                );
                let udp_addr = server.addr(1);
                assert_eq!(server.info.addrs[1], Addr::Udp(udp_addr));
                let client = UdpSocket::bind("127.0.0.1:0").unwrap();
                client.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
                let mut buf = vec![0u8; 65536];
                let sizes = [1, 100, 1500, 60_000];
                for &size in &sizes {
                    let msg = rng.bytes(size);
                    client.send_to(&msg, udp_addr).unwrap();
                    let (n, from) = client.recv_from(&mut buf).expect("the echo");
                    assert_eq!(from, udp_addr, "reply from the server's address");
                    assert!(buf[..n] == msg[..], "datagram of {size} echoed wrong");
                }
                // The TCP listener of the same server works too.
                let mut tcp = Client::connect(&server.info.addrs[0]);
                tcp.write_all(b"tcp too\n").unwrap();
                assert_eq!(read_line(&mut tcp), "tcp too\n");
                drop(tcp);

                server.stop(10).unwrap();
                assert_eq!(events.datagrams.load(Ordering::SeqCst), sizes.len());
                // Only the TCP connection was opened and closed.
                assert_eq!(events.opened.load(Ordering::SeqCst), 1);
                assert_eq!(events.closed.load(Ordering::SeqCst), 1);
                let me = Addr::Udp(client.local_addr().unwrap());
                for (index, local, remote) in events.seen.lock().unwrap().iter() {
                    assert_eq!(*index, 1, "address index of the udp listener");
                    assert_eq!(*local, Addr::Udp(udp_addr));
                    assert_eq!(*remote, me);
                }
            }
        }
    });
}

struct Quiet;

impl Events for Quiet {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        out.extend_from_slice(input);
        Action::None
    }
}

#[test]
fn ch08_unix_socket_file_is_removed_before_bind_and_after_shutdown() {
    within(60, || {
        let dir = TempDir::new();
        for backend in backends() {
            let path = dir.path("life.sock");
            // A socket file left behind (as by a crashed server).
            drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
            assert!(path.exists(), "std leaves the socket file behind");

            let addr = format!("unix://{}", path.display());
            let server = start(backend, Arc::new(Quiet), Config::default(), &[&addr]);
            assert_eq!(server.info.addrs[0], Addr::Unix(path.clone()));
            let mut c = Client::connect(&server.info.addrs[0]);
            c.write_all(b"ping\n").unwrap();
            assert_eq!(read_line(&mut c), "ping\n");
            assert!(path.exists());
            server.stop(10).unwrap();
            assert!(!path.exists(), "socket file left after shutdown");
            common::expect_eof(&mut c);

            // An ordinary file in the way is an error, and is kept.
            let file = dir.path("not-a-socket");
            std::fs::write(&file, b"precious").unwrap();
            let cfg = Config {
                backend: backend.backend,
                ..Config::default()
            };
            let err = Server::bind(cfg, &[&format!("unix://{}", file.display())]);
            assert!(err.is_err(), "bound over an ordinary file");
            assert_eq!(std::fs::read(&file).unwrap(), b"precious");
        }
    });
}
