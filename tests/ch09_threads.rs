//! What only the thread-based variant does, or does differently: how it is
//! chosen, balancing that is exact even when connections arrive all at
//! once, and the examples' `--stdlib` flag. (A `Detach` asked for by a
//! wake while the reader waits for its socket: `ch15_threads.rs`.)
//!
//! Chapter 9, "The thread-based variant", explains each. Everything the two
//! implementations share (serve, tick, shutdown, detach, wake, balancing,
//! UDP, unix sockets, bad addresses) is checked by the chapter 2 to 8 tests,
//! which run on every backend in `common::backends()`, threads included.
//! Thread and descriptor counts are checked in `ch09_no_leaks.rs`, alone in
//! its own test binary so that no other test disturbs them.

mod common;

use std::io::Write;
use std::sync::Arc;

use common::{config, loop_index, read_line, start, within, Client, TempDir};
use evio::{Action, Backend, Config, Conn, Events, LoadBalance, Options, Server};

/// Greets each connection with the index of its loop.
#[derive(Default)]
struct WhichLoop;

impl Events for WhichLoop {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        out.extend_from_slice(format!("loop {}\n", loop_index()).as_bytes());
        (Options::default(), Action::None)
    }
}

fn loop_of(c: &mut Client) -> usize {
    let line = read_line(c);
    line.trim_end()["loop ".len()..].parse().unwrap()
}

#[test]
fn ch09_net_scheme_or_backend_threads_selects_the_thread_variant() {
    within(30, || {
        let bind = |backend, addr: &str| {
            let cfg = Config {
                backend,
                ..Config::default()
            };
            Server::bind(cfg, &[addr]).unwrap()
        };
        // evio's rule: a `-net` scheme, whatever the backend says.
        assert!(bind(Backend::Auto, "tcp-net://127.0.0.1:0").is_threads());
        assert!(bind(Backend::Epoll, "tcp-net://127.0.0.1:0").is_threads());
        // Or asked for by name.
        assert!(bind(Backend::Threads, "tcp://127.0.0.1:0").is_threads());
        // Otherwise the reactor, where there is one.
        assert_eq!(
            bind(Backend::Auto, "tcp://127.0.0.1:0").is_threads(),
            cfg!(not(unix))
        );
        // A `-net` server serves: the callbacks run on its loop threads.
        let server = bind(Backend::Auto, "tcp-net://127.0.0.1:0");
        let addr = server.info().addrs[0].clone();
        let stopper = server.stopper();
        let t = std::thread::spawn(move || server.run(&WhichLoop));
        let mut c = Client::connect(&addr);
        assert_eq!(loop_of(&mut c), 0);
        stopper.stop();
        common::join_within(t, 10).unwrap();
    });
}

#[test]
fn ch09_least_connections_is_exact_when_connections_arrive_at_once() {
    within(60, || {
        let cfg = config(Backend::Threads, 3, LoadBalance::LeastConnections);
        let server = start(
            Backend::Threads,
            Arc::new(WhichLoop),
            cfg,
            &["tcp://127.0.0.1:0"],
        );
        // 30 connections without waiting for any greeting: the accept thread
        // counts each one on its loop as it chooses, before the loop has
        // even seen it, so the counts stay exact.
        let mut clients: Vec<_> = (0..30)
            .map(|_| Client::connect(&server.info.addrs[0]))
            .collect();
        let mut counts = [0; 3];
        for c in &mut clients {
            counts[loop_of(c)] += 1;
        }
        assert_eq!(counts, [10, 10, 10]);
        server.stop(10).unwrap();
    });
}

#[test]
fn ch09_round_robin_is_exact_across_two_listeners() {
    within(60, || {
        let dir = TempDir::new();
        let unix = dir.unix_addr("rr.sock");
        let cfg = config(Backend::Threads, 3, LoadBalance::RoundRobin);
        let addrs = ["tcp://127.0.0.1:0", unix.as_str()];
        let server = start(Backend::Threads, Arc::new(WhichLoop), cfg, &addrs);
        // Two accept threads take turns from one counter, in one atomic step.
        let spawn = |addr: evio::Addr| {
            std::thread::spawn(move || (0..15).map(|_| Client::connect(&addr)).collect::<Vec<_>>())
        };
        let (a, b) = (
            spawn(server.info.addrs[0].clone()),
            spawn(server.info.addrs[1].clone()),
        );
        let mut clients = a.join().unwrap();
        clients.extend(b.join().unwrap());
        let mut counts = [0; 3];
        for c in &mut clients {
            counts[loop_of(c)] += 1;
        }
        assert_eq!(counts, [10, 10, 10]);
        server.stop(10).unwrap();
    });
}

#[test]
fn ch09_random_is_random_not_round_robin() {
    within(60, || {
        let cfg = config(Backend::Threads, 3, LoadBalance::Random);
        let server = start(
            Backend::Threads,
            Arc::new(WhichLoop),
            cfg,
            &["tcp://127.0.0.1:0"],
        );
        // One at a time, as evio's fallback would hand them out in turns.
        let seq: Vec<usize> = (0..60)
            .map(|_| loop_of(&mut Client::connect(&server.info.addrs[0])))
            .collect();
        let mut counts = [0; 3];
        seq.iter().for_each(|&i| counts[i] += 1);
        // Each loop is missed by 60 fair draws with p = (2/3)^60 < 1e-10,
        // and 60 draws fall in strict turns with p = 3^-59.
        assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
        let in_turns = seq.windows(2).all(|w| w[1] == (w[0] + 1) % 3);
        assert!(!in_turns, "{seq:?}");
        server.stop(10).unwrap();
    });
}

/// The names of the threads of process `pid` (Linux: `/proc/PID/task/*/comm`).
#[cfg(target_os = "linux")]
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|n| n.trim_end().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(target_os = "linux")]
#[test]
fn ch09_examples_stdlib_flag_runs_the_thread_variant() {
    use std::io::BufReader;
    use std::process::{Command, Stdio};
    within(60, || {
        let mut child = Command::new(common::example_bin("echo"))
            .args(["--port", "0", "--stdlib"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let ready = common::read_stdout_line(&mut stdout);
        let port: u16 = ready
            .split("port ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad ready line {ready:?}"));
        let mut c = common::connect_tcp(([127, 0, 0, 1], port).into());
        c.write_all(b"threads?\n").unwrap();
        assert_eq!(read_line(&mut c), "threads?\n");
        // A reader thread for our connection, an accept thread, a loop.
        let names = thread_names(child.id());
        let _ = child.kill();
        let _ = child.wait();
        for want in ["evio-loop-0", "evio-accept-0", "evio-read-"] {
            assert!(
                names.iter().any(|n| n.starts_with(want)),
                "no {want} thread in {names:?}"
            );
        }
        // The ticker ticks on the thread variant too, and stops by itself.
        let out = Command::new(common::example_bin("ticker"))
            .args([
                "--port",
                "0",
                "--interval-ms",
                "50",
                "--ticks",
                "3",
                "--stdlib",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert_eq!(
            text.lines().filter(|l| l.starts_with("tick: ")).count(),
            3,
            "{text}"
        );
        assert!(text.trim_end().ends_with("ticker: done"), "{text}");
    });
}

#[cfg(target_os = "linux")]
#[test]
fn ch09_conn_cost_example_measures_both_designs() {
    within(120, || {
        // conn_cost starts the echo example next to itself.
        common::example_bin("echo");
        let out = std::process::Command::new(common::example_bin("conn_cost"))
            .args([
                "--conns",
                "20",
                "--seconds",
                "0.3",
                "--runs",
                "1",
                "--no-wait",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Threads with no connection -> with 20: the reactor adds none, the
        // thread-based variant exactly one per connection.
        let threads = |backend: &str| -> (usize, usize) {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("run 1 {backend} ")))
                .unwrap_or_else(|| panic!("no {backend} run in {text}"));
            let t = line.split("; threads ").nth(1).unwrap();
            let (a, b) = t.split_once(" -> ").unwrap();
            let b = b.split(';').next().unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        };
        let (e0, e1) = threads("epoll");
        assert_eq!(e0, e1, "the reactor starts no thread per connection");
        let (t0, t1) = threads("threads");
        assert_eq!(t1, t0 + 20, "one reader thread per connection");
        assert!(
            text.contains("| epoll |") && text.contains("| threads |"),
            "{text}"
        );
    });
}
