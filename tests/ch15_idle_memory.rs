//! Chapter 15, "What a server owes its clients": what 10,000 idle
//! connections cost the server, on every engine (9,000 on the thread-based
//! variant, whose connections hold two fds each). The echo example runs as a
//! child process (so that its memory is its own, and the test runner's fd
//! limit holds only the clients); the test reads its resident memory before
//! and after the connections, prints the cost per connection, and checks
//! a bound. Run with `-- --nocapture` to see the figures. Linux only: it
//! reads `/proc`.

#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{parse_ready, spawn, within};

/// The resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("a VmRSS: line");
    kib * 1024
}

#[test]
fn ch15_ten_thousand_idle_connections_cost_little() {
    within(300, || {
        // (engine, connections, the bound per connection in bytes). A
        // reader thread's stack is what the thread-based variant pays
        // (chapter 9); its connections hold two fds each (the socket and
        // the reader's bell), so 9,000 of them fit under a limit of 20,000.
        // io_uring (chapter 16) where the kernel allows it: its receives
        // hold no buffer until bytes arrive (a provided-buffer ring), with
        // either way of receiving (`--uring-recv`, which the others ignore).
        let mut engines = vec![("epoll", 10_000, 2 * 1024), ("threads", 9_000, 64 * 1024)];
        if common::io_uring() {
            engines.push(("io-uring", 10_000, 2 * 1024));
            engines.push(("io-uring-multishot", 10_000, 2 * 1024));
        }
        let mut measured = Vec::new();
        for (engine, n, bound) in engines {
            let (backend, recv) = match engine.strip_suffix("-multishot") {
                Some(backend) => (backend, "multishot"),
                None => (engine, "single"),
            };
            let args = [
                "--port",
                "0",
                "--backend",
                backend,
                "--idle-timeout",
                "0",
                "--uring-recv",
                recv,
            ];
            let (server, mut out) = spawn("echo", &args);
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            let (port, _) = parse_ready("echo", &line);
            let pid = server.0.id();
            // One round trip first, so that what a first connection
            // allocates once (buffers, tables) is in the baseline.
            let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
            first.write_all(b"x").unwrap();
            first.read_exact(&mut [0u8; 1]).unwrap();
            let before = rss(pid);
            let conns: Vec<TcpStream> = (0..n)
                .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
                .collect();
            // Served: the last one echoes (all were accepted before it).
            let mut last = conns.last().unwrap();
            last.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            last.write_all(b"y").unwrap();
            last.read_exact(&mut [0u8; 1]).unwrap();
            let per_conn = rss(pid).saturating_sub(before) / n;
            println!("{engine}: {per_conn} bytes of server memory per idle connection");
            assert!(
                per_conn <= bound,
                "{engine}: {per_conn} bytes per connection"
            );
            drop(conns);
            measured.push((engine, per_conn));
        }
        // Chapter 16's goal: io_uring's idle connection costs no more than
        // the reactor's (give or take 8 bytes: the two processes' heaps
        // grow by different handfuls of pages). It cost 210 bytes more
        // while the probe's freed buffers let `malloc` keep outgrown
        // tables (`src/uring/buffers.rs`, `Pages`).
        let of = |e| measured.iter().find(|(m, _)| *m == e).map(|&(_, b)| b);
        for uring in ["io-uring", "io-uring-multishot"] {
            if let (Some(bytes), Some(epoll)) = (of(uring), of("epoll")) {
                assert!(
                    bytes <= epoll + 8,
                    "{uring}: {bytes} bytes per idle connection, epoll: {epoll}"
                );
            }
        }
    });
}
