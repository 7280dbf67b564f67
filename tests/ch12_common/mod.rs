//! Helpers for chapter 12's tests (`ch12_http.rs`, `ch12_redis.rs`): start an
//! example server as a child process on port 0, find the client tools
//! (`curl`, `wrk`, `redis-cli`, `redis-benchmark`), and run them with a
//! time limit.
//!
//! The rule for a missing tool: outside CI the test says it is skipping and
//! passes; with `CI` set (as `.ci/run`, which installs the tools, sets it on
//! a CI machine) a missing tool fails the test, so CI cannot pass by
//! skipping.

#![allow(dead_code)]

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::{connect_tcp, example_bin, read_stdout_line};

/// An example server running as a child process; killed when dropped, so
/// a failing test leaves nothing behind.
pub struct ExampleServer {
    child: Child,
    /// The port from the ready line.
    pub port: u16,
    /// The number of loops from the ready line.
    pub loops: usize,
}

impl ExampleServer {
    /// Starts `examples/NAME.rs` with `--port 0` and `args`, and waits (at
    /// most 60 s: the first call may build it) for its ready line,
    /// `NAME server started on port P (loops: N)`.
    pub fn start(name: &str, args: &[&str]) -> ExampleServer {
        let mut child = Command::new(example_bin(name))
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn example {name}: {e}"));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        // The reader thread keeps draining stdout, so the server never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            let _ = tx.send(read_stdout_line(&mut stdout));
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("{name}: no ready line within 60 s");
            }
        };
        let (port, loops) = parse_ready(name, &line);
        assert_ne!(port, 0, "the ready line must give the bound port: {line:?}");
        ExampleServer { child, port, loops }
    }

    /// The server's TCP address on the loopback interface.
    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// A new TCP client, with read and write timeouts.
    pub fn connect(&self) -> TcpStream {
        let s = connect_tcp(self.addr());
        s.set_nodelay(true).unwrap();
        s
    }

    /// The server's resident memory in KiB (`VmRSS` in `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }

    /// Asserts that the process is still running (did not crash).
    pub fn assert_alive(&mut self) {
        let status = self.child.try_wait().expect("try_wait");
        assert!(status.is_none(), "the server exited: {status:?}");
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `NAME server started on port P (loops: N)`.
pub fn parse_ready(name: &str, line: &str) -> (u16, usize) {
    let parsed = line
        .trim_end()
        .strip_prefix(&format!("{name} server started on port "))
        .and_then(|rest| rest.split_once(" (loops: "))
        .and_then(|(port, loops)| {
            Some((port.parse().ok()?, loops.strip_suffix(')')?.parse().ok()?))
        });
    parsed.unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
}

/// Whether `tool` is on the `PATH`. Missing: fails the test when `CI` is
/// set, else prints that the test is skipped and returns false.
pub fn have(tool: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let p: PathBuf = dir.join(tool);
            std::fs::metadata(&p).is_ok_and(|m| m.is_file())
        })
    });
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed, and CI is set: install it (.ci/run does)"
        );
        eprintln!("skipping: {tool} is not installed (apt-get install it to run this test)");
    }
    found
}

/// Runs `cmd`, feeding it `stdin`, and returns its output; kills it and
/// fails the test if it runs longer than `secs`.
pub fn run(cmd: &mut Command, stdin: &[u8], secs: u64) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
        // Dropping `input` closes the pipe: the tool sees end-of-file.
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.expect("wait for the tool"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child, which has not
            // been reaped (the waiting thread is still blocked on it).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{cmd:?} did not finish within {secs} s");
        }
    }
}

/// `out`'s standard output as text; fails the test if the tool failed.
pub fn stdout_of(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Reads exactly `n` bytes; fails the test on timeout or end-of-file.
pub fn read_n(r: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    r.read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    buf
}

/// Sends `bytes` one at a time, each in its own segment (`TCP_NODELAY` is
/// set by [`ExampleServer::connect`]), with a pause so that the server gets
/// them in separate reads.
pub fn send_byte_by_byte(s: &mut TcpStream, bytes: &[u8]) {
    for b in bytes {
        s.write_all(std::slice::from_ref(b)).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
}

// ANCHOR: counting_alloc
/// A global allocator that counts the allocations made by the current
/// thread, so a test can assert that a piece of code allocates nothing
/// while other tests run in parallel on other threads.
struct CountingAlloc;

thread_local! {
    // `const`: no lazy initialisation, so the allocator may touch it.
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to the system allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_one();
        std::alloc::System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_one();
        std::alloc::System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, p: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        count_one();
        std::alloc::System.realloc(p, layout, size)
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: std::alloc::Layout) {
        std::alloc::System.dealloc(p, layout)
    }
}

#[global_allocator]
static COUNTING: CountingAlloc = CountingAlloc;

/// The number of allocations `f` made on this thread.
pub fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(|n| n.get());
    f();
    ALLOCATIONS.with(|n| n.get()) - before
}
// ANCHOR_END: counting_alloc
