//! What the server examples share: the flags every server takes
//! ([`ServerFlags`], which each example's own `clap` parser flattens in next
//! to its `--port` and its own flags), and the start-up every server does
//! ([`serve`]: bind, print the ready line, run, stop cleanly on SIGINT or
//! SIGTERM). Explained in the "Run it" section of chapter 2; the signals in
//! chapter 15.
//!
//! The load client of `echo_load` and `conn_cost` is `load.rs`, next to this
//! file; those two include it on its own (`#[path = "common/load.rs"]`), so
//! that no example compiles code it does not use.

use std::process::exit;
use std::time::Duration;

#[cfg(unix)]
use evio::Stopper;
use evio::{
    Accept, Addr, Backend, Config, Events, IoUringOptions, Limits, LoadBalance, Panics, Receive,
    RingAccept, RingSubmit, RingWake, Server, Trigger, Wakeups, Writes,
};

// ANCHOR: server_flags
/// The flags every server example takes. Each default is written once, here,
/// and `--help` shows it.
#[derive(clap::Args, Debug)]
pub struct ServerFlags {
    /// Event loops: 0 means 1, a negative number one per CPU
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub loops: isize,
    /// Load balancing: random, round-robin or least-connections
    // Parsed by `LoadBalance`'s `FromStr`, whose error names the choices. The
    // default is given as a string, parsed the same way: `default_value_t`
    // would need a `Display` impl, which `LoadBalance` does not have.
    #[arg(long, default_value = "random")]
    pub balance: LoadBalance,
    /// Listen on this address only, e.g. 127.0.0.1 or ::1 [default: every
    /// address, IPv4 and IPv6, on one socket]
    // The benchmarks pass 127.0.0.1, as they do to nginx and redis-server:
    // IPv4 through an IPv6 socket costs the kernel a little more per
    // request (chapter 14).
    #[arg(long, value_name = "IP")]
    pub host: Option<std::net::IpAddr>,
    /// Set SO_REUSEPORT, so that several servers can share the port
    #[arg(long)]
    pub reuseport: bool,
    /// Also listen on this unix socket path
    #[arg(long, value_name = "PATH")]
    pub unixsocket: Option<String>,
    /// The implementation: auto, epoll, kqueue, threads or io-uring
    // Parsed by `Backend`'s `FromStr`, like `balance`.
    #[arg(long, default_value = "auto")]
    pub backend: Backend,
    /// Use the thread-based variant (as --backend threads)
    #[arg(long)]
    pub stdlib: bool,
    /// Who accepts: hand-off (loop 0 hands out), exclusive, reuseport, or every-loop (evio's)
    // Parsed by `Accept`'s `FromStr`, like `balance` (chapter 13).
    #[arg(long, default_value = "hand-off")]
    pub accept: Accept,
    /// When the reactor writes: eager, or deferred (evio's)
    // Parsed by `Writes`' `FromStr`, like `balance` (chapter 13).
    #[arg(long, default_value = "eager")]
    pub writes: Writes,
    /// When a note wakes a loop: coalesced, or every-note (evio's)
    #[arg(long, default_value = "coalesced")]
    pub wakeups: Wakeups,
    /// How the reactor's poller reports connections: edge, or level (evio's)
    // Parsed by `Trigger`'s `FromStr`, like `balance` (chapter 13).
    #[arg(long, default_value = "edge")]
    pub trigger: Trigger,
    /// How io_uring receives: single (one submission per arrival) or multishot (chapter 16)
    // Parsed by `Receive`'s `FromStr`, like `balance`; other engines ignore it.
    #[arg(long, value_name = "HOW", default_value = "single")]
    pub uring_recv: Receive,
    /// How another thread wakes an io_uring loop: eventfd, or msg-ring (Linux 6.13; chapter 16)
    #[arg(long, default_value = "eventfd")]
    pub uring_wake: RingWake,
    /// How an io_uring loop keeps its accepts in flight: single, or multishot (chapter 16)
    #[arg(long, default_value = "multishot")]
    pub uring_accept: RingAccept,
    /// When an io_uring loop submits: batched (once a turn), or each-op (chapter 16)
    #[arg(long, default_value = "batched")]
    pub uring_submit: RingSubmit,
    /// Print each loop's counters to stderr every SECONDS (0: never)
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub stats: u64,
    /// Print every dispatch step of the reactor to stderr (slow)
    #[arg(long)]
    pub trace: bool,
    /// Close a connection idle this long (chapter 15; 0: never)
    #[arg(long, value_name = "SECONDS", default_value_t = secs_of(Limits::default().idle_timeout))]
    pub idle_timeout: u64,
    /// Stop reading a peer with this much output pending (chapter 15) [default: 1 MiB; redis: 64 MiB]
    #[arg(long, value_name = "BYTES")]
    pub output_limit: Option<usize>,
    /// Close a peer over its output limit this long (chapter 15; 0: never)
    #[arg(long, value_name = "SECONDS", default_value_t = secs_of(Limits::default().output_timeout))]
    pub output_timeout: u64,
    /// The most connections at once; more are closed at once (chapter 15)
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// A panic in a callback: isolate (close that connection) or fail-fast (evio's)
    #[arg(long, default_value = "isolate")]
    pub panics: Panics,
}
// ANCHOR_END: server_flags

/// A timeout flag: seconds, 0 for none.
fn secs(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n))
}

/// A timeout's flag value: the library's default is written once, there.
fn secs_of(timeout: Option<Duration>) -> u64 {
    timeout.map_or(0, |d| d.as_secs())
}

impl ServerFlags {
    /// The [`Config`] the flags ask for.
    fn config(&self) -> Config {
        Config {
            loops: self.loops,
            balance: self.balance,
            backend: if self.stdlib {
                Backend::Threads
            } else {
                self.backend
            },
            accept: self.accept,
            writes: self.writes,
            wakeups: self.wakeups,
            trigger: self.trigger,
            trace: self.trace,
            limits: Limits {
                idle_timeout: secs(self.idle_timeout),
                output_limit: (self.output_limit).unwrap_or(Limits::default().output_limit),
                output_timeout: secs(self.output_timeout),
                max_connections: self.max_connections,
            },
            panics: self.panics,
            io_uring: IoUringOptions {
                recv: self.uring_recv,
                wake: self.uring_wake,
                accept: self.uring_accept,
                submit: self.uring_submit,
            },
            // New settings keep their defaults (`Config` asks for this).
            ..Config::default()
        }
    }

    /// The addresses the flags ask for: `tcp://:PORT` (`tcp://HOST:PORT`
    /// with `--host`; with `--reuseport`), and `unix://PATH` for
    /// `--unixsocket`.
    fn addrs(&self, port: u16) -> Vec<String> {
        // `SocketAddr`'s `Display` puts an IPv6 address in brackets.
        let host = match self.host {
            Some(ip) => std::net::SocketAddr::new(ip, port).to_string(),
            None => format!(":{port}"),
        };
        let mut addrs = vec![format!("tcp://{host}?reuseport={}", self.reuseport)];
        if let Some(path) = &self.unixsocket {
            addrs.push(format!("unix://{path}"));
        }
        addrs
    }
}

/// Binds `port` and what `flags` ask for, prints the ready line, serves
/// `events` until it shuts down; on an error prints `NAME: error` and exits
/// with 1.
///
/// The ready line is `NAME server started on port P (loops: N)` with the
/// bound port (so `--port 0` works), then `NAME server started at PATH` for
/// a unix socket, as evio's examples log them. Tests wait for the first.
pub fn serve<E: Events>(name: &str, port: u16, flags: &ServerFlags, events: &E) {
    let addrs = flags.addrs(port);
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let fail = |e: std::io::Error| -> ! {
        eprintln!("{name}: {e}");
        exit(1)
    };
    #[cfg(unix)]
    let signals = block_stop_signals();
    let server = Server::bind(flags.config(), &addrs).unwrap_or_else(|e| fail(e));
    #[cfg(unix)]
    match server.stopper() {
        stopper if stopper.is_signal_safe() => stop_in_handler(name, signals, stopper),
        stopper => stop_on_signals(name, signals, stopper),
    }
    let info = server.info();
    let port = info
        .addrs
        .iter()
        .find_map(Addr::socket_addr)
        .map_or(0, |a| a.port());
    println!(
        "{name} server started on port {port} (loops: {})",
        info.num_loops
    );
    for a in &info.addrs {
        if let Addr::Unix(path) = a {
            println!("{name} server started at {}", path.display());
        }
    }
    if flags.stats > 0 {
        // A thread of its own reads the counters; it ends with the process.
        let (stats, every) = (server.stats(), Duration::from_secs(flags.stats));
        std::thread::spawn(move || loop {
            std::thread::sleep(every);
            for (i, s) in stats.loops().iter().enumerate() {
                eprintln!("loop {i}: {s}");
            }
        });
    }
    if let Err(e) = server.run(events) {
        fail(e);
    }
}

// ANCHOR: signals
/// Blocks SIGINT (Ctrl-C) and SIGTERM (`kill`, systemd, Docker) in this
/// thread, and so in every thread it starts from now on: instead of killing
/// the process, a signal waits until `stop_in_handler` or `stop_on_signals`
/// is ready for it. Call it before any thread starts, or that thread may be
/// the one the kernel picks to deliver the signal to, and the process dies.
#[cfg(unix)]
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: initialising a local signal set, then changing this thread's
    // signal mask (pthread_sigmask(3)); no pointer outlives the call.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Stops the server from a signal handler, where its `Stopper` allows it
/// (the reactor and io_uring): a server of one loop runs it on this thread
/// (chapter 14), and a thread that only waits for signals would make the
/// process two threads, which costs every system call a little. A handler
/// runs on whatever thread the signal interrupts, in the middle of
/// anything, so it may do only what is async-signal-safe: `write(2)` a line
/// prepared now, `_exit(2)`, and `Stopper::stop` (a flag and an eventfd
/// write, chapter 4). The loop's wait returns (`EINTR`, or the eventfd), it
/// sees the flag, and `run` returns: the listeners close, a unix socket's
/// file is removed, and `main` returns 0. A second signal while the server
/// stops exits at once, with 130 (128 + SIGINT).
#[cfg(unix)]
fn stop_in_handler(name: &str, blocked: libc::sigset_t, stopper: Stopper) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;

    static STOPPER: OnceLock<Stopper> = OnceLock::new();
    static LINES: OnceLock<[String; 2]> = OnceLock::new();
    static SEEN: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(signal: libc::c_int) {
        if SEEN.swap(true, Ordering::SeqCst) {
            // SAFETY: _exit(2) is async-signal-safe; nothing is flushed.
            unsafe { libc::_exit(130) };
        }
        if let Some(lines) = LINES.get() {
            let line = &lines[usize::from(signal == libc::SIGTERM)];
            // SAFETY: a write(2) of a string that lives for ever.
            unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
        }
        if let Some(stopper) = STOPPER.get() {
            stopper.stop();
        }
    }

    let lines = ["SIGINT", "SIGTERM"].map(|s| format!("{name}: {s}, stopping\n"));
    let _ = (LINES.set(lines), STOPPER.set(stopper));
    // SAFETY: installing a handler that only does async-signal-safe things
    // (above), then unblocking the signals in this thread, which is the
    // loop's (one loop), or starts the loops' threads (they inherit it).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &blocked, std::ptr::null_mut());
    }
}

/// A thread that waits for one of the blocked signals (sigwait(3): an
/// ordinary thread, so it may do anything, unlike a signal handler) and
/// stops the server through its `Stopper`, for the thread variant, whose
/// stop sends messages (it allocates): as `stop_in_handler`, from a thread.
#[cfg(unix)]
fn stop_on_signals(name: &str, signals: libc::sigset_t, stopper: Stopper) {
    let name = name.to_string();
    std::thread::spawn(move || {
        for n in 0.. {
            let mut signal = 0;
            // SAFETY: `signals` is an initialised set, `signal` a local.
            if unsafe { libc::sigwait(&signals, &mut signal) } != 0 {
                return;
            }
            if n > 0 {
                exit(130);
            }
            let which = if signal == libc::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            eprintln!("{name}: {which}, stopping");
            stopper.stop();
        }
    });
}
// ANCHOR_END: signals
