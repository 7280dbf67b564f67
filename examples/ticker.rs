//! A ticker: a server that does nothing but count its connections, printing
//! the count on every tick, and stops after `--ticks` ticks.
//!
//! Chapter 8, "Tick, UDP, unix sockets, detach and shutdown", walks through
//! it. It shows `tick`, `opened`/`closed`, and state shared by all
//! connections (an atomic, since several loops may call in at once).
//!
//! ```text
//! cargo run --example ticker -- --port 0 --interval-ms 200 --ticks 5
//! ```

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use evio::{Action, Conn, Events, Options};

// ANCHOR: ticker
struct Ticker {
    interval: Duration,
    ticks_left: AtomicUsize,
    open: AtomicUsize,
}

impl Events for Ticker {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        self.open.fetch_add(1, Ordering::SeqCst);
        out.extend_from_slice(b"hello from the ticker\r\n");
        (Options::default(), Action::None)
    }

    fn closed(&self, _c: &mut Conn<()>, _err: Option<std::io::Error>) -> Action {
        self.open.fetch_sub(1, Ordering::SeqCst);
        Action::None
    }

    fn tick(&self) -> (Option<Duration>, Action) {
        let left = self.ticks_left.fetch_sub(1, Ordering::SeqCst);
        println!(
            "tick: {} connections open",
            self.open.load(Ordering::SeqCst)
        );
        if left == 1 {
            println!("ticker: done");
            return (None, Action::Shutdown);
        }
        (Some(self.interval), Action::None)
    }
}
// ANCHOR_END: ticker

use clap::Parser;

/// ticker: prints the number of open connections on every tick
#[derive(Parser)]
#[command(name = "ticker")]
struct Flags {
    /// TCP port (0: any free port)
    #[arg(long, default_value_t = 5001)]
    port: u16,
    /// Milliseconds between ticks
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Stop after this many ticks
    #[arg(long, default_value_t = 10)]
    ticks: usize,
    #[command(flatten)]
    server: common::ServerFlags,
}

fn main() {
    let flags = Flags::parse();
    let ticker = Ticker {
        interval: Duration::from_millis(flags.interval_ms),
        ticks_left: AtomicUsize::new(flags.ticks.max(1)),
        open: AtomicUsize::new(0),
    };
    common::serve("ticker", flags.port, &flags.server, &ticker);
}
