//! Chapter 15's graded exercise: the redis example's own idle timeout
//! (`--timeout SECONDS`, like redis-server's `timeout`). Ignored until you
//! do exercise 1; run it with `cargo test ch15_exercise -- --ignored`.

mod common;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{parse_ready, spawn, within};

#[test]
#[ignore = "chapter 15, exercise 1: the redis example's --timeout"]
fn ch15_exercise_redis_timeout_closes_an_idle_client_only() {
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
                "the redis example did not start: has it a --timeout flag yet (exercise 1)?"
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
            assert_eq!(n, 0, "{engine}: the idle client got {:?}", &buf[..n]);
            assert!(t.elapsed() < Duration::from_secs(5), "{engine}");
        }
    });
}
