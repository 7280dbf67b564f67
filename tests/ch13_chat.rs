//! The `chat` example of chapter 13, run as a child process on every engine
//! and strategy: 50 clients, 100 lines each; every client must receive
//! every other client's 100 lines, complete, and in the order that client
//! sent them. The lines cross loops (3 of them), so each one goes through a
//! [`Writer`](evio::Writer) and another loop's note queue or channel.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{parse_ready, read_stdout_line, spawn, wake_setups, within, Setup};
use evio::{Accept, Backend, RingWake, Trigger, Writes};

const CLIENTS: usize = 50;
const LINES: usize = 100;

/// The example's flags for `setup`, with 3 loops.
fn flags(setup: Setup) -> Vec<String> {
    let backend = match setup.backend {
        Backend::Epoll => "epoll",
        Backend::Kqueue => "kqueue",
        Backend::IoUring => "io-uring",
        _ => "threads",
    };
    let wake = match setup.io_uring.wake {
        RingWake::Eventfd => "eventfd",
        RingWake::MsgRing => "msg-ring",
    };
    let accept = match setup.accept {
        Accept::HandOff => "hand-off",
        Accept::EveryLoop => "every-loop",
        Accept::Exclusive => "exclusive",
        Accept::ReusePort => "reuseport",
    };
    let writes = match setup.writes {
        Writes::Eager => "eager",
        Writes::Deferred => "deferred",
    };
    let trigger = match setup.trigger {
        Trigger::Edge => "edge",
        Trigger::Level => "level",
    };
    ["--port", "0", "--loops", "3", "--backend", backend]
        .into_iter()
        .chain(["--accept", accept, "--writes", writes, "--trigger", trigger])
        .chain(["--uring-wake", wake])
        .map(String::from)
        .collect()
}

#[test]
fn ch13_chat_every_line_reaches_every_other_client_in_order() {
    within(180, || {
        for setup in wake_setups() {
            let args = flags(setup);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (_server, mut stdout) = spawn("chat", &args);
            let (port, _) = parse_ready("chat", &read_stdout_line(&mut stdout));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            // Join one at a time: a client is in the room once it has read
            // its welcome, so when the last has, everyone hears everyone.
            let clients: Vec<BufReader<TcpStream>> = (0..CLIENTS)
                .map(|_| {
                    let s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    let mut r = BufReader::new(s);
                    let mut welcome = String::new();
                    r.read_line(&mut welcome).unwrap();
                    assert!(welcome.starts_with("welcome"), "{setup:?}: {welcome:?}");
                    r
                })
                .collect();
            // Each client writes its lines and reads everyone else's, at once.
            let threads: Vec<_> = clients
                .into_iter()
                .enumerate()
                .map(|(me, mut r)| {
                    let mut w = r.get_ref().try_clone().unwrap();
                    std::thread::spawn(move || {
                        let writer = std::thread::spawn(move || {
                            for n in 0..LINES {
                                w.write_all(format!("{me} {n}\n").as_bytes()).unwrap();
                            }
                            w
                        });
                        // The next line number expected from each sender.
                        let mut next: HashMap<usize, usize> = HashMap::new();
                        let mut line = String::new();
                        for _ in 0..(CLIENTS - 1) * LINES {
                            line.clear();
                            r.read_line(&mut line).unwrap();
                            let (from, n) = line.trim_end().split_once(' ').unwrap();
                            let (from, n): (usize, usize) =
                                (from.parse().unwrap(), n.parse().unwrap());
                            assert_ne!(from, me, "my own line came back: {line:?}");
                            let want = next.entry(from).or_insert(0);
                            assert_eq!(n, *want, "client {me}: from {from}, out of order");
                            *want += 1;
                        }
                        let _keep_open_until_done = writer.join().unwrap();
                        next.values().all(|&n| n == LINES) && next.len() == CLIENTS - 1
                    })
                })
                .collect();
            for (i, t) in threads.into_iter().enumerate() {
                assert!(t.join().unwrap(), "{setup:?}: client {i} missed lines");
            }
        }
    });
}
