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
//! Every wake reaches `data` either way (a note is never lost or merged);
//! what coalescing saves is the signal: the `write` to the loop's eventfd
//! when the note queue was not empty anyway.

use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use clap::Parser;
use evio::{Action, Config, Conn, Events, Options, Server, Waker, Wakeups};

/// wake_storm: one thread wakes one connection N times; the loop counts
#[derive(Parser)]
struct Flags {
    /// How many wakes
    #[arg(long, default_value_t = 1_000_000)]
    wakes: usize,
    /// When a note wakes the loop: coalesced, or every-note (evio's)
    #[arg(long, default_value = "coalesced")]
    wakeups: Wakeups,
}

struct Storm {
    wakes: usize,
    /// The connection's waker, handed to the waking thread.
    waker: Mutex<Option<mpsc::Sender<Waker>>>,
    seen: AtomicUsize,
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
        if input.is_empty() && self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.wakes {
            return Action::Shutdown;
        }
        Action::None
    }
}

fn main() {
    let flags = Flags::parse();
    let config = Config {
        wakeups: flags.wakeups,
        ..Config::default()
    };
    let server = Server::bind(config, &["tcp://127.0.0.1:0"]).expect("bind");
    let addr = server.info().addrs[0].socket_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let storm = Storm {
        wakes: flags.wakes,
        waker: Mutex::new(Some(tx)),
        seen: AtomicUsize::new(0),
    };
    let start = Instant::now();
    let waking = std::thread::spawn(move || {
        let _client = TcpStream::connect(addr).expect("connect");
        let waker = rx.recv().expect("the connection's waker");
        for _ in 0..flags.wakes {
            waker.wake().expect("wake");
        }
        _client
    });
    server.run(&storm).expect("run");
    let elapsed = start.elapsed();
    drop(waking.join());
    println!(
        "{} wakes seen by the loop in {} ms (--wakeups {:?})",
        storm.seen.load(Ordering::Relaxed),
        elapsed.as_millis(),
        flags.wakeups
    );
}
