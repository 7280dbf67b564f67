//! Chapter 14, "Benchmarks": a server of one loop, on the reactor and on
//! io_uring, is a process of one thread. Its loop runs on the thread that
//! called `run` (`run_loops_here`, `src/shared/loops.rs`), and the examples
//! take SIGINT and SIGTERM in a handler rather than on a thread of their
//! own (`examples/common/mod.rs`), so every system call the loop makes
//! finds a file table nobody else shares (the kernel then takes no
//! reference on the file). With two loops there are three threads: the
//! loops, and the caller that waits for them. Either way a signal still
//! stops the example cleanly. Linux only: it reads `/proc`.

#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{parse_ready, read_stdout_line, spawn, wait_exit, within};

/// The number of threads of process `pid`.
fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    (status.lines())
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Threads: line")
}

#[test]
fn ch14_a_one_loop_server_is_one_thread_and_stops_on_a_signal() {
    within(120, || {
        let mut engines = vec!["epoll"];
        if common::io_uring() {
            engines.push("io-uring");
        }
        for engine in engines {
            for (loops, signal, want) in [(1, libc::SIGTERM, 1), (2, libc::SIGINT, 3)] {
                let loops_arg = loops.to_string();
                let args = ["--port", "0", "--backend", engine, "--loops", &loops_arg];
                let (mut server, mut out) = spawn("echo", &args);
                let (port, _) = parse_ready("echo", &read_stdout_line(&mut out));
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.write_all(b"x").unwrap();
                c.read_exact(&mut [0u8; 1]).unwrap();
                let pid = server.0.id();
                assert_eq!(threads(pid), want, "{engine}, {loops} loops");
                // SAFETY: kill(2) on our own child's pid.
                assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
                let status = wait_exit(&mut server.0, 10);
                assert_eq!(status.code(), Some(0), "{engine}, {loops} loops: {status}");
            }
        }
    });
}
