//! The grader of lab 15 (chapter 15, "What a server owes its clients",
//! exercise 1): the redis example's own idle timeout (`--timeout SECONDS`,
//! like redis-server's `timeout`). `#[ignore]`d: it fails until you do the
//! lab. Grade it with `cargo test lab15 -- --ignored`.

mod common;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{parse_ready, spawn, within};

#[test]
#[ignore = "lab 15: give the redis example a --timeout flag, then `cargo test lab15 -- --ignored`"]
fn lab15_redis_timeout_closes_an_idle_client_only() {
    within(60, || {
        for engine in ["epoll", "threads"] {
            let (_server, mut out) = spawn(
                "redis",
                &["--port", "0", "--backend", engine, "--timeout", "1"],
            );
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert!(
                !line.is_empty(),
                "lab15: the redis example did not start with `--timeout 1`: it has no \
                 --timeout flag yet (its error is above). Add it to `Flags` in examples/redis.rs"
            );
            let (port, _) = parse_ready("redis", &line);
            let connect = || {
                let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s
            };
            let (mut idle, mut busy) = (connect(), connect());
            let t = Instant::now();
            // The busy client sends a command every 300 ms for 2.4 s.
            for _ in 0..8 {
                busy.write_all(b"PING\r\n").unwrap();
                let mut pong = [0u8; 7];
                busy.read_exact(&mut pong).unwrap();
                assert_eq!(&pong, b"+PONG\r\n", "{engine}: the busy client was closed");
                std::thread::sleep(Duration::from_millis(300));
            }
            // The idle one was closed after about a second, with nothing to read.
            let mut buf = [0u8; 16];
            let n = idle.read(&mut buf).unwrap_or(0);
            assert_eq!(
                n,
                0,
                "lab15, {engine}: the idle client got {:?} instead of being closed",
                &buf[..n]
            );
            assert!(t.elapsed() < Duration::from_secs(5), "{engine}");
        }
    });
}
