//! Chapter 15, "What a server owes its clients": the example servers' own
//! limits, on the real binaries, on every engine they run on. The HTTP
//! server gives a client that has begun a request a deadline to finish it
//! (a slowloris client is never idle, but it meets the deadline); the
//! Redis server closes a client whose one unfinished command grows past
//! `MAX_INPUT`.

mod common;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{parse_ready, spawn, within, Killed};

/// The engines, as the examples' flags name them: epoll and threads, and
/// io_uring where it runs.
fn engines() -> Vec<&'static [&'static str]> {
    let mut all: Vec<&[&str]> = vec![&["--backend", "epoll"], &["--backend", "threads"]];
    if common::io_uring() {
        all.push(&["--backend", "io-uring"]);
    }
    all
}

fn start(name: &str, engine: &[&str], extra: &[&str]) -> (Killed, u16) {
    let args: Vec<&str> = ["--port", "0"]
        .iter()
        .chain(engine)
        .chain(extra)
        .copied()
        .collect();
    let (child, mut out) = spawn(name, &args);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    (child, parse_ready(name, &line).0)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until EOF or reset; the bytes read.
fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("not closed: {e}"),
        }
    }
}

#[test]
fn ch15_http_a_slowloris_client_meets_the_request_timeout() {
    within(60, || {
        for engine in engines() {
            let (_server, port) = start("http", engine, &["--request-timeout", "1"]);
            let mut slow = connect(port);
            let mut fine = connect(port);
            let t = Instant::now();
            slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
            // A header byte every 200 ms: never idle, never finished.
            let mut closed = false;
            for _ in 0..25 {
                if slow.write_all(b"X").is_err() {
                    closed = true;
                    break;
                }
                fine.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut head = [0u8; 15];
                fine.read_exact(&mut head).unwrap();
                assert_eq!(&head, b"HTTP/1.1 200 OK", "{engine:?}");
                let mut rest = [0u8; 256];
                let _ = fine.read(&mut rest); // the rest of the small response
                std::thread::sleep(Duration::from_millis(200));
            }
            if !closed {
                read_to_end(&mut slow);
            }
            let took = t.elapsed();
            assert!(
                took < Duration::from_secs(4),
                "{engine:?}: closed after {took:?}"
            );
            assert!(
                took >= Duration::from_millis(900),
                "{engine:?}: closed after {took:?}"
            );
        }
    });
}

#[test]
fn ch15_redis_an_endless_command_is_refused_past_max_input() {
    within(60, || {
        for engine in engines() {
            let (_server, port) = start("redis", engine, &[]);
            let mut c = connect(port);
            c.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000\r\n")
                .unwrap();
            // 100 MB announced; the server gives up after 16 MiB.
            let chunk = vec![b'v'; 1 << 20];
            for _ in 0..40 {
                if c.write_all(&chunk).is_err() {
                    break;
                }
            }
            let reply = read_to_end(&mut c);
            let reply = String::from_utf8_lossy(&reply);
            assert!(reply.contains("command too large"), "{engine:?}: {reply:?}");
            // Another client is served.
            let mut other = connect(port);
            other.write_all(b"PING\r\n").unwrap();
            let mut pong = [0u8; 7];
            other.read_exact(&mut pong).unwrap();
            assert_eq!(&pong, b"+PONG\r\n", "{engine:?}");
        }
    });
}
