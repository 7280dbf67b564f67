//! evio's `TestServe`, ported: an echo server on TCP or a unix socket, with
//! 1, 5 and one-per-CPU loops and each balancing rule; 10 clients each
//! stream random-sized writes (up to 1 MiB) for a short while and check
//! every byte that comes back.
//!
//! Chapter 5, "The loop and its dispatch", explains what this exercises:
//! opened (with a greeting and keep-alive), read, data, the deferred write,
//! and closed returning `Shutdown` once every client is gone. Unlike evio's
//! test, which only prints a mismatch, a wrong byte fails here; and each
//! client reads on one thread while it writes on another, so a big write
//! cannot deadlock against its own echo (which evio's test risks on unix
//! sockets, whose buffers are small; it never streams over them).

mod common;

use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{accept_setups, config, read_line, start, within, Client, Rng, Setup, TempDir};
use evio::{Action, Addr, Conn, Events, LoadBalance, Options, ServerInfo};

const CLIENTS: usize = 10;
const GREETING: &str = "sweetness\r\n";
const KEEP_ALIVE: Duration = Duration::from_secs(300);

/// Per-connection state, typed (evio stores the conn itself in an
/// `interface{}` and compares it in `Closed`).
#[derive(Default)]
struct Ctx {
    /// 1, 2, ... in the order `opened` ran; 0 means `opened` never did.
    serial: usize,
    /// The peer's address as seen in `opened`.
    remote: Option<Addr>,
    /// Bytes echoed so far.
    echoed: usize,
    keep_alive_checked: bool,
}

#[derive(Default)]
struct Echo {
    info: OnceLock<ServerInfo>,
    opened: AtomicUsize,
    closed: AtomicUsize,
    echoed: AtomicUsize,
    /// Peer addresses seen by `opened`, to compare with the clients'.
    remotes: Mutex<Vec<Addr>>,
}

impl Events for Echo {
    type Context = Ctx;

    fn serving(&self, info: &ServerInfo) -> Action {
        self.info.set(info.clone()).expect("serving runs once");
        Action::None
    }

    fn opened(&self, c: &mut Conn<Ctx>, out: &mut Vec<u8>) -> (Options, Action) {
        let info = self.info.get().expect("serving ran before opened");
        let local = c.local_addr().expect("local address");
        let remote = c.remote_addr().expect("remote address");
        assert_eq!(local, info.addrs[c.addr_index()], "local address");
        match &remote {
            Addr::Tcp(a) => assert!(a.ip().is_loopback() && a.port() != 0, "{a}"),
            Addr::Unix(p) => assert!(p.as_os_str().is_empty(), "client is unnamed"),
            Addr::Udp(a) => panic!("stream conn with udp address {a}"),
        }
        self.remotes.lock().unwrap().push(remote.clone());
        let ctx = c.context_mut();
        ctx.serial = self.opened.fetch_add(1, Ordering::SeqCst) + 1;
        ctx.remote = Some(remote);
        out.extend_from_slice(GREETING.as_bytes());
        let options = Options {
            tcp_keep_alive: Some(KEEP_ALIVE),
        };
        (options, Action::None)
    }

    fn data(&self, c: &mut Conn<Ctx>, input: &[u8], out: &mut Vec<u8>) -> Action {
        assert_ne!(c.context().serial, 0, "data before opened");
        if !c.context().keep_alive_checked {
            c.context_mut().keep_alive_checked = true;
            if let Ok(Addr::Tcp(_)) = c.local_addr() {
                // The options returned by `opened` were applied to the socket.
                // SAFETY: the loop keeps the fd open for this callback.
                let fd = unsafe { BorrowedFd::borrow_raw(c.fd()) };
                let sock = socket2::SockRef::from(&fd);
                assert!(sock.keepalive().unwrap(), "SO_KEEPALIVE is off");
                assert_eq!(sock.keepalive_time().unwrap(), KEEP_ALIVE);
            }
        }
        c.context_mut().echoed += input.len();
        out.extend_from_slice(input);
        Action::None
    }

    fn closed(&self, c: &mut Conn<Ctx>, err: Option<io::Error>) -> Action {
        let ctx = c.context();
        assert_ne!(ctx.serial, 0, "context lost between opened and closed");
        assert!(
            ctx.remote.is_some(),
            "context lost between opened and closed"
        );
        assert!(err.is_none(), "client {} closed with {err:?}", ctx.serial);
        // The socket is still open in `closed`: its addresses can be read.
        assert_eq!(c.remote_addr().ok(), ctx.remote, "remote address in closed");
        self.echoed.fetch_add(ctx.echoed, Ordering::SeqCst);
        // evio's test: the last client to go shuts the server down.
        if self.closed.fetch_add(1, Ordering::SeqCst) + 1 == CLIENTS {
            Action::Shutdown
        } else {
            Action::None
        }
    }
}

/// One client: checks the greeting, then streams random chunks for 50 to
/// 150 ms from a writer thread while this thread reads the echo and compares
/// it byte for byte. Returns its address and the bytes sent.
fn client(addr: Addr, mut rng: Rng) -> (Addr, usize) {
    let mut conn = Client::connect(&addr);
    assert_eq!(read_line(&mut conn), GREETING);
    let me = conn.local_addr();
    let mut writer = conn.try_clone();
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(2);
    let stream_for = Duration::from_millis(50 + rng.below(100) as u64);
    let write_thread = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < stream_for {
            let size = rng.below(1024 * 1024);
            let chunk = rng.bytes(size);
            // Hand the reader its copy first: it must be reading while we
            // write, or a chunk bigger than the socket buffers never fits.
            tx.send(chunk.clone()).unwrap();
            writer.write_all(&chunk).expect("write a chunk");
        }
    });
    let mut sent = 0;
    let mut echo = Vec::new();
    for chunk in rx {
        echo.resize(chunk.len(), 0);
        conn.read_exact(&mut echo).expect("read the echo");
        if let Some(at) = (0..chunk.len()).find(|&i| echo[i] != chunk[i]) {
            panic!(
                "echo differs at byte {} (chunk of {} at offset {sent})",
                at,
                chunk.len()
            );
        }
        sent += chunk.len();
    }
    write_thread.join().unwrap();
    // We are done: the server reads end-of-file, closes, and we see EOF.
    conn.shutdown_write();
    common::expect_eof(&mut conn);
    (me, sent)
}

fn serve(backend: Setup, unix: bool, loops: isize, balance: LoadBalance) {
    let what = format!("{backend:?} unix={unix} loops={loops} {balance:?}");
    let dir = TempDir::new();
    let unix_addr = dir.unix_addr("serve.sock");
    let mut addrs = vec!["tcp://127.0.0.1:0"];
    if unix {
        // evio's test too listens on both; our clients use the second.
        addrs.push(&unix_addr);
    }
    let events = Arc::new(Echo::default());
    let server = start(
        backend,
        events.clone(),
        config(backend, loops, balance),
        &addrs,
    );
    let expected_loops = if loops < 0 {
        std::thread::available_parallelism().unwrap().get()
    } else {
        loops as usize
    };
    assert_eq!(server.info.num_loops, expected_loops, "{what}");
    let target = server.info.addrs[addrs.len() - 1].clone();

    let mut rng = Rng::from_clock(&what);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (target, rng) = (target.clone(), Rng::new(rng.next_u64()));
            std::thread::spawn(move || client(target, rng))
        })
        .collect();
    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();

    // The last `closed` returned Shutdown: the server ends by itself.
    server.join(10).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(events.opened.load(Ordering::SeqCst), CLIENTS, "{what}");
    assert_eq!(events.closed.load(Ordering::SeqCst), CLIENTS, "{what}");
    let sent: usize = results.iter().map(|r| r.1).sum();
    assert_eq!(events.echoed.load(Ordering::SeqCst), sent, "{what}");
    let mut theirs: Vec<String> = results.iter().map(|r| r.0.to_string()).collect();
    let mut ours: Vec<String> = events
        .remotes
        .lock()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs, "{what}: remote addresses seen by opened");
    if unix {
        assert!(!dir.path("serve.sock").exists(), "{what}: socket file left");
    }
}

macro_rules! serve_tests {
    ($($name:ident: $unix:expr, $loops:expr, $balance:ident;)*) => {$(
        #[test]
        fn $name() {
            within(60, || {
                for backend in accept_setups() {
                    serve(backend, $unix, $loops, LoadBalance::$balance);
                }
            });
        }
    )*};
}

serve_tests! {
    ch05_serve_tcp_1_loop_random: false, 1, Random;
    ch05_serve_tcp_1_loop_round_robin: false, 1, RoundRobin;
    ch05_serve_tcp_1_loop_least_connections: false, 1, LeastConnections;
    ch05_serve_tcp_5_loops_random: false, 5, Random;
    ch05_serve_tcp_5_loops_round_robin: false, 5, RoundRobin;
    ch05_serve_tcp_5_loops_least_connections: false, 5, LeastConnections;
    ch05_serve_tcp_cpu_loops_random: false, -1, Random;
    ch05_serve_tcp_cpu_loops_round_robin: false, -1, RoundRobin;
    ch05_serve_tcp_cpu_loops_least_connections: false, -1, LeastConnections;
    ch05_serve_unix_1_loop_random: true, 1, Random;
    ch05_serve_unix_1_loop_round_robin: true, 1, RoundRobin;
    ch05_serve_unix_1_loop_least_connections: true, 1, LeastConnections;
    ch05_serve_unix_5_loops_random: true, 5, Random;
    ch05_serve_unix_5_loops_round_robin: true, 5, RoundRobin;
    ch05_serve_unix_5_loops_least_connections: true, 5, LeastConnections;
    ch05_serve_unix_cpu_loops_random: true, -1, Random;
    ch05_serve_unix_cpu_loops_round_robin: true, -1, RoundRobin;
    ch05_serve_unix_cpu_loops_least_connections: true, -1, LeastConnections;
}
