//! Wakes one connection many times from another thread, and says how long
//! the loop took to see every wake: what chapter 13 measures coalesced
//! wake-ups with. Count the eventfd writes the wakes cost with `perf`:
//!
//! ```text
//! cargo build --release --example wake_storm
//! perf stat -e syscalls:sys_enter_write target/release/examples/wake_storm --wakeups every-note
//! perf stat -e syscalls:sys_enter_write target/release/examples/wake_storm --wakeups coalesced
//! ```
//!
//! On io_uring (`--backend io-uring`, chapter 16) `--uring-wake` says how
//! the note queue's signal reaches the loop; count the system calls of
//! each way with
//!
//! ```text
//! perf stat -e syscalls:sys_enter_write,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_io_uring_register \
//!     target/release/examples/wake_storm --backend io-uring --uring-wake eventfd --wakeups every-note
//! ```
//!
//! Every wake reaches `data` either way (a note is never lost or merged);
//! what coalescing saves is the signal: the `write` to the loop's eventfd
//! when the note queue was not empty anyway.

use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::Thread;
use std::time::Instant;

use clap::Parser;
use evio::{Action, Backend, Config, Conn, Events, IoUringOptions, Options, RingWake, Server};
use evio::{Waker, Wakeups};

/// wake_storm: one thread wakes one connection N times; the loop counts
#[derive(Parser)]
struct Flags {
    /// How many wakes
    #[arg(long, default_value_t = 1_000_000)]
    wakes: usize,
    /// When a note wakes the loop: coalesced, or every-note (evio's)
    #[arg(long, default_value = "coalesced")]
    wakeups: Wakeups,
    /// The engine: auto, epoll, kqueue, threads or io-uring
    #[arg(long, default_value = "auto")]
    backend: Backend,
    /// How a note wakes an io_uring loop: eventfd, or msg-ring (Linux 6.13; chapter 16)
    #[arg(long, default_value = "eventfd")]
    uring_wake: RingWake,
    /// How many threads share the wakes
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Wake only once the loop has seen the last wake (the waking threads
    /// sleep meanwhile): every wake finds the loop asleep, or about to be,
    /// as a wake costs alone rather than in a storm
    #[arg(long)]
    one_at_a_time: bool,
}

struct Storm {
    wakes: usize,
    /// The connection's waker, handed to the waking thread.
    waker: Mutex<Option<mpsc::Sender<Waker>>>,
    seen: Arc<AtomicUsize>,
    /// Under `--one-at-a-time`, the waking threads, asleep until a wake is seen.
    sleepers: Arc<Mutex<Vec<Thread>>>,
}

impl Events for Storm {
    type Context = ();

    fn opened(&self, c: &mut Conn<()>, _out: &mut Vec<u8>) -> (Options, Action) {
        if let Some(tx) = self.waker.lock().unwrap().take() {
            let _ = tx.send(c.waker());
        }
        (Options::default(), Action::None)
    }

    fn data(&self, _c: &mut Conn<()>, input: &[u8], _out: &mut Vec<u8>) -> Action {
        if !input.is_empty() {
            return Action::None;
        }
        let seen = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        self.sleepers
            .lock()
            .unwrap()
            .iter()
            .for_each(Thread::unpark);
        if seen == self.wakes {
            return Action::Shutdown;
        }
        Action::None
    }
}

fn main() {
    let flags = Flags::parse();
    let config = Config {
        wakeups: flags.wakeups,
        backend: flags.backend,
        io_uring: IoUringOptions {
            wake: flags.uring_wake,
            ..IoUringOptions::default()
        },
        ..Config::default()
    };
    let server = Server::bind(config, &["tcp://127.0.0.1:0"]).expect("bind");
    let addr = server.info().addrs[0].socket_addr().unwrap();
    let stats = server.stats();
    let (tx, rx) = mpsc::channel();
    let storm = Storm {
        wakes: flags.wakes,
        waker: Mutex::new(Some(tx)),
        seen: Arc::default(),
        sleepers: Arc::default(),
    };
    let (seen, one_at_a_time) = (storm.seen.clone(), flags.one_at_a_time);
    let sleepers = storm.sleepers.clone();
    let start = Instant::now();
    let waking = std::thread::spawn(move || {
        let _client = TcpStream::connect(addr).expect("connect");
        let waker = rx.recv().expect("the connection's waker");
        let threads = flags.threads.max(1);
        std::thread::scope(|s| {
            for t in 0..threads {
                // The first threads take one wake more when they do not divide evenly.
                let mine = flags.wakes / threads + usize::from(t < flags.wakes % threads);
                let (waker, seen, sleepers) = (waker.clone(), seen.clone(), sleepers.clone());
                s.spawn(move || {
                    if one_at_a_time {
                        sleepers.lock().unwrap().push(std::thread::current());
                    }
                    for _ in 0..mine {
                        let before = seen.load(Ordering::SeqCst);
                        waker.wake().expect("wake");
                        while one_at_a_time && seen.load(Ordering::SeqCst) == before {
                            std::thread::park();
                        }
                    }
                });
            }
        });
        _client
    });
    server.run(&storm).expect("run");
    let elapsed = start.elapsed();
    drop(waking.join());
    println!(
        "{} wakes seen by the loop in {} ms (--wakeups {:?}, --backend {:?}, --uring-wake {:?}, --threads {}{})",
        storm.seen.load(Ordering::Relaxed),
        elapsed.as_millis(),
        flags.wakeups,
        flags.backend,
        flags.uring_wake,
        flags.threads,
        if one_at_a_time { ", --one-at-a-time" } else { "" }
    );
    // The loop's counters: `submitted` is what the io_uring engine handed
    // its ring (chapter 16), `waits` its `io_uring_enter` calls.
    println!("{}", stats.total());
}
