//! Helpers shared by the integration tests in `tests/`: which backends to
//! test, starting a server on a thread, a watchdog, clients with timeouts,
//! temporary directories for unix sockets, and a small random generator.
//!
//! Chapter 11, "Testing what is hard to test", explains how the suite is built;
//! each test file is named after the chapter that explains what it checks
//! (`ch05_serve.rs` for chapter 5, ...). The suite is a port of evio's
//! `evio_test.go`, with port 0 everywhere (evio's fixed ports are its
//! weakness 10) and every test bounded in time.
//!
//! Every helper that starts a server takes the [`Backend`], and every test
//! loops over [`backends()`], so that the *same* suite runs against every
//! implementation of the library.

// Each test file compiles its own copy of this module and uses only part of it.
#![allow(dead_code)]

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use evio::{
    Accept, Addr, Backend, Config, Events, IoUringOptions, LoadBalance, Receive, RingWake, Server,
    ServerInfo, Stats, Stopper, Trigger, Writes,
};

/// Socket read/write timeout for test clients: long enough for a loaded
/// 2-core machine, short enough that a hang fails the test.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ANCHOR: backends
/// One way to run a server: the engine, and for the reactor, evio's
/// strategies or chapter 13's (who accepts, when replies are written), for
/// io_uring its techniques: how it receives, how a loop is woken (chapter
/// 16). It compares equal to its [`Backend`], so a test can ask
/// `setup == Backend::Threads`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    pub backend: Backend,
    pub accept: Accept,
    pub writes: Writes,
    pub trigger: Trigger,
    pub io_uring: IoUringOptions,
}

impl From<Backend> for Setup {
    fn from(backend: Backend) -> Setup {
        Setup {
            backend,
            accept: Accept::default(),
            writes: Writes::default(),
            trigger: Trigger::default(),
            io_uring: IoUringOptions::default(),
        }
    }
}

impl PartialEq<Backend> for Setup {
    fn eq(&self, backend: &Backend) -> bool {
        self.backend == *backend
    }
}

/// The implementations the suite runs against: every reactor backend with
/// chapter 13's strategies (the defaults: `HandOff`, `Eager`, `Edge`) and
/// with evio's (`EveryLoop`, `Deferred`, `Level`), and the thread-based
/// variant. Add each
/// new backend here and every integration test runs on it too.
pub fn backends() -> Vec<Setup> {
    let mut reactors = Vec::new();
    if evio::poll::HAS_EPOLL {
        reactors.push(Backend::Epoll);
    }
    // macOS and the BSDs, or Linux with `--features libkqueue` (chapter 10).
    if evio::poll::HAS_KQUEUE {
        reactors.push(Backend::Kqueue);
    }
    let mut all = Vec::new();
    for backend in reactors {
        all.push(backend.into());
        all.push(Setup {
            accept: Accept::EveryLoop,
            writes: Writes::Deferred,
            trigger: Trigger::Level,
            ..backend.into()
        });
    }
    // The thread-based variant (chapter 9), on every OS.
    all.push(Backend::Threads.into());
    // The io_uring engine (chapter 16), where the kernel lets us have a
    // ring, with each way of receiving; elsewhere it is skipped, saying
    // why, once per test binary.
    all.extend(io_uring_setups());
    all
}

/// The io_uring engine with one receive at a time (the default) and with
/// multishot receive, or none where io_uring cannot run.
pub fn io_uring_setups() -> Vec<Setup> {
    if !io_uring() {
        return Vec::new();
    }
    [Receive::Single, Receive::Multishot]
        .map(|recv| Setup {
            io_uring: IoUringOptions {
                recv,
                ..Default::default()
            },
            ..Backend::IoUring.into()
        })
        .to_vec()
}

/// Whether the io_uring engine can run here; prints why not, once.
pub fn io_uring() -> bool {
    static WHY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let why = WHY.get_or_init(|| {
        let why = evio::internals::io_uring_available().err()?.to_string();
        println!("skipping Backend::IoUring: {why}");
        Some(why)
    });
    why.is_none()
}
// ANCHOR_END: backends

// ANCHOR: wake_setups
/// [`backends()`], plus the io_uring engine woken the other way
/// (`RingWake::Eventfd` and `RingWake::MsgRing`, chapter 16): for the
/// suites where wakes matter (chapter 4's wakes, chapter 13's writers and
/// chat, chapter 15's wakes after the end), so that the rest of
/// `cargo test` does not grow.
pub fn wake_setups() -> Vec<Setup> {
    let mut all = backends();
    if io_uring() {
        for wake in [RingWake::Eventfd, RingWake::MsgRing] {
            let setup = Setup {
                io_uring: IoUringOptions {
                    wake,
                    ..Default::default()
                },
                ..Backend::IoUring.into()
            };
            if !all.contains(&setup) {
                all.push(setup);
            }
        }
    }
    all
}
// ANCHOR_END: wake_setups

/// [`backends()`], plus the reactor on epoll and the io_uring engine with
/// chapter 13's `Accept::ReusePort` (a socket per loop, spread by the
/// kernel's hash): for the suites where who accepts matters (chapters 5
/// and 6, and chapter 8's UDP), so that the rest of `cargo test` does not
/// grow. Only on Linux: Linux spreads by hash, macOS and the BSDs do not.
pub fn accept_setups() -> Vec<Setup> {
    let mut all = backends();
    if evio::poll::HAS_EPOLL {
        all.push(Setup {
            accept: Accept::ReusePort,
            ..Backend::Epoll.into()
        });
    }
    if io_uring() {
        all.push(Setup {
            accept: Accept::ReusePort,
            ..Backend::IoUring.into()
        });
    }
    all
}

/// A config for `setup` with `loops` loops and the `balance` rule.
pub fn config(setup: impl Into<Setup>, loops: isize, balance: LoadBalance) -> Config {
    let setup = setup.into();
    Config {
        loops,
        balance,
        backend: setup.backend,
        accept: setup.accept,
        writes: setup.writes,
        trigger: setup.trigger,
        io_uring: setup.io_uring,
        ..Config::default()
    }
}

/// A server running on its own thread.
pub struct Running {
    /// Ends with what `Server::run` returned.
    pub handle: JoinHandle<io::Result<()>>,
    /// The bound addresses (real ports) and the number of loops.
    pub info: ServerInfo,
    /// Stops the server from the test thread.
    pub stopper: Stopper,
    /// Reads the loops' counters (chapter 13).
    pub stats: Stats,
}

impl Running {
    /// Waits at most `secs` for the server to end and returns its result;
    /// fails the test if it is still running then.
    pub fn join(self, secs: u64) -> io::Result<()> {
        join_within(self.handle, secs)
    }

    /// Stops the server and waits (at most `secs`) for it to end.
    pub fn stop(self, secs: u64) -> io::Result<()> {
        self.stopper.stop();
        self.join(secs)
    }

    /// The port of the first address (TCP or UDP).
    pub fn port(&self) -> u16 {
        self.addr(0).port()
    }

    /// The IP address and port of address `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.info.addrs[i].socket_addr().expect("an inet address")
    }
}

// ANCHOR: start
/// Binds `addrs` on `setup` (overriding `config.backend`, `config.accept`,
/// `config.writes`, `config.trigger` and `config.io_uring`), then runs the server on a thread. Fails the test if
/// binding fails.
pub fn start<E>(
    setup: impl Into<Setup>,
    events: Arc<E>,
    mut config: Config,
    addrs: &[&str],
) -> Running
where
    E: Events + Send + 'static,
{
    let backend = setup.into();
    config.backend = backend.backend;
    config.accept = backend.accept;
    config.writes = backend.writes;
    config.trigger = backend.trigger;
    config.io_uring = backend.io_uring;
    let server = Server::bind(config, addrs)
        .unwrap_or_else(|e| panic!("{backend:?}: binding {addrs:?} failed: {e}"));
    let info = server.info().clone();
    let stopper = server.stopper();
    let stats = server.stats();
    // A server of one loop on the reactor or io_uring runs it on this
    // thread (`Server::run`): named as its loop, so that `loop_index` and a
    // test that reads its loop thread's CPU time find it.
    let name = match info.num_loops {
        1 => "evio-loop-0".to_string(),
        _ => format!("server-{backend:?}"),
    };
    let handle = std::thread::Builder::new()
        .name(name)
        .spawn(move || server.run(&*events))
        .expect("spawn server thread");
    Running {
        handle,
        info,
        stopper,
        stats,
    }
}
// ANCHOR_END: start

/// Waits at most `secs` for `handle` to finish and returns its result.
/// Re-raises a panic from the thread; fails the test on timeout.
pub fn join_within<T>(handle: JoinHandle<T>, secs: u64) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "thread {:?} still running after {secs}s",
            handle.thread().name()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

// ANCHOR: within
/// The watchdog: runs `f` on a thread and fails the test if it has not
/// finished within `secs` seconds (the thread is abandoned). A panic in `f`
/// fails the test with `f`'s own message.
pub fn within<T, F>(secs: u64, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        // The sender was dropped without sending: `f` panicked.
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("f returned without sending"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test timed out after {secs}s"),
    }
}
// ANCHOR_END: within

/// Polls `cond` every millisecond until it holds; fails the test with
/// `what` after `secs` seconds.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A TCP client with read and write timeouts.
pub fn connect_tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// A unix-socket client with read and write timeouts.
pub fn connect_unix(path: &Path) -> UnixStream {
    let s =
        UnixStream::connect(path).unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// A client stream of either kind, so one test body serves both.
pub enum Client {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Client {
    /// Connects to a bound address of the server: TCP or unix.
    pub fn connect(addr: &Addr) -> Client {
        match addr {
            Addr::Tcp(a) => Client::Tcp(connect_tcp(*a)),
            Addr::Unix(p) => Client::Unix(connect_unix(p)),
            Addr::Udp(a) => panic!("cannot stream to udp://{a}"),
        }
    }

    /// A second handle on the same socket (for a reader and a writer thread).
    pub fn try_clone(&self) -> Client {
        match self {
            Client::Tcp(s) => Client::Tcp(s.try_clone().unwrap()),
            Client::Unix(s) => Client::Unix(s.try_clone().unwrap()),
        }
    }

    /// Our end's address, as the server's `Conn::remote_addr` should see it.
    pub fn local_addr(&self) -> Addr {
        match self {
            Client::Tcp(s) => Addr::Tcp(s.local_addr().unwrap()),
            // A client unix socket is unnamed: the server sees an empty path.
            Client::Unix(_) => Addr::Unix(PathBuf::new()),
        }
    }

    /// Sets the read timeout (`None`: block forever; avoid in tests).
    pub fn set_read_timeout(&self, t: Option<Duration>) {
        match self {
            Client::Tcp(s) => s.set_read_timeout(t).unwrap(),
            Client::Unix(s) => s.set_read_timeout(t).unwrap(),
        }
    }

    /// Shuts down our sending side: the server reads end-of-file.
    pub fn shutdown_write(&self) {
        let _ = match self {
            Client::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Client::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Client::Tcp(s) => s.read(buf),
            Client::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Client::Tcp(s) => s.write(buf),
            Client::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads one line (up to and including `\n`), byte by byte so that nothing
/// after it is consumed. Fails the test on EOF, error or timeout.
pub fn read_line(r: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8];
    while line.last() != Some(&b'\n') {
        match r.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            Ok(_) => panic!("EOF after {:?}", String::from_utf8_lossy(&line)),
            Err(e) => panic!("reading a line after {line:?}: {e}"),
        }
    }
    String::from_utf8(line).expect("utf-8 line")
}

/// Reads until end-of-file. A reset counts as end-of-file too (the server
/// may close with unread input); a timeout fails the test.
pub fn read_to_eof(r: &mut impl Read) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return all,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("expected EOF after {} bytes, got {e}", all.len()),
        }
    }
}

/// Asserts that the peer has closed: the next read gives end-of-file or a
/// reset, not data and not a timeout.
pub fn expect_eof(r: &mut impl Read) {
    let rest = read_to_eof(r);
    assert!(
        rest.is_empty(),
        "expected EOF, got {} more bytes",
        rest.len()
    );
}

/// Reads a line from a buffered reader, for the example processes' output.
pub fn read_stdout_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("read a line");
    line
}

/// A fresh, empty directory under the system temp dir, removed on drop:
/// unix socket paths of tests that run in parallel never collide.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        // Short, because a unix socket path must fit in 108 bytes.
        let dir = std::env::temp_dir().join(format!("evio-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `unix://` followed by a path inside the directory.
    pub fn unix_addr(&self, name: &str) -> String {
        format!("unix://{}", self.path(name).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small, fast pseudo-random generator (xorshift64*), so the tests need no
/// dependency and a failing run can be repeated from its seed.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A generator seeded from the clock; the seed is printed so that a
    /// failure can be reproduced.
    pub fn from_clock(what: &str) -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        println!("{what}: seed {seed}");
        Rng::new(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// The index of the event loop running the current callback, from the
/// thread's name, `evio-loop-N`. Every backend must name its loop threads so.
pub fn loop_index() -> usize {
    let current = std::thread::current();
    let name = current.name().unwrap_or("");
    name.strip_prefix("evio-loop-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("callback on thread {name:?}, not an evio loop"))
}

/// This package's cargo features that change what the examples are (a test
/// sees its own features with `cfg!`; cargo tells it no list). `conformance`
/// is not here: every test and example build has it already (Cargo.toml).
pub const FEATURES: &[(&str, bool)] = &[("libkqueue", cfg!(feature = "libkqueue"))];

/// The path of an example binary, `target/<profile>/examples/NAME`, next to
/// the test binary (`target/<profile>/deps/...`). A plain `cargo test`
/// builds the examples; `cargo test --test FILE` does not, so the binary is
/// (re)built first with the cargo that runs the tests, which never runs a
/// stale one and costs a fraction of a second when it is up to date.
/// The build gets the cargo features the tests were built with
/// ([`FEATURES`]): under `cargo test --features libkqueue` the examples run
/// on kqueue too, and a build without the feature would also overwrite the
/// binary that `cargo test` built with it.
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let mut build = std::process::Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "--example", name]);
    let on: Vec<&str> = FEATURES
        .iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| *f)
        .collect();
    if !on.is_empty() {
        build.args(["--features", &on.join(",")]);
    }
    if profile_dir.file_name() == Some("release".as_ref()) {
        build.arg("--release");
    }
    let status = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --example {name} failed");
    profile_dir.join("examples").join(name)
}

// Running the examples as child processes (tests/ch02_examples.rs, tests/ch08_examples.rs).

/// Kills the child when the test ends, even when it fails.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits at most `secs` for the child to exit, and returns how it did.
pub fn wait_exit(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit within {secs}s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Parses `NAME server started on port P (loops: N)`.
pub fn parse_ready(name: &str, line: &str) -> (u16, usize) {
    let rest = line
        .trim_end()
        .strip_prefix(&format!("{name} server started on port "))
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    let (port, loops) = rest
        .split_once(" (loops: ")
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    let loops = loops.strip_suffix(')').expect("closing parenthesis");
    (port.parse().unwrap(), loops.parse().unwrap())
}

/// Starts example `name` with `args`, its stdout piped; killed when dropped.
pub fn spawn(name: &str, args: &[&str]) -> (Killed, io::BufReader<std::process::ChildStdout>) {
    let mut child = std::process::Command::new(example_bin(name))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn example {name}: {e}"));
    let stdout = io::BufReader::new(child.stdout.take().unwrap());
    (Killed(child), stdout)
}
