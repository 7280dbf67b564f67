//! The echo server: every byte a client sends comes back.
//!
//! Chapter 2, "The API", walks through it; evio's `examples/echo-server`
//! has the same flags. Try it:
//!
//! ```text
//! cargo run --release --example echo -- --port 5000
//! nc 127.0.0.1 5000
//! ```

mod common;

use evio::{Action, Conn, Events};

// The handler's types are `pub` so that `tests/ch13_allocations.rs`, which
// includes this file as a module, can serve them and count what they allocate.
pub struct Echo;

// ANCHOR: echo
impl Events for Echo {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        out.extend_from_slice(input);
        Action::None
    }
}
// ANCHOR_END: echo

// ANCHOR: flags
use clap::Parser;

/// echo: an echo server on evio-rs
#[derive(Parser)]
#[command(name = "echo")]
struct Flags {
    /// TCP port (0: any free port)
    #[arg(long, default_value_t = 5000)]
    port: u16,
    #[command(flatten)]
    server: common::ServerFlags,
}

fn main() {
    let flags = Flags::parse();
    common::serve("echo", flags.port, &flags.server, &Echo);
}
// ANCHOR_END: flags
