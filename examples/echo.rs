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

struct Echo;

// ANCHOR: echo
impl Events for Echo {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        out.extend_from_slice(input);
        Action::None
    }
}
// ANCHOR_END: echo

fn main() {
    let flags = common::Flags::parse(
        "echo: an echo server on evio-rs\n\nUsage: cargo run --example echo -- [flags]",
        &[
            ("port", true, "TCP port (0: any free port) [default: 5000]"),
            common::LOOPS,
            common::BALANCE,
            common::REUSEPORT,
            common::UNIXSOCKET,
            common::BACKEND,
            common::STDLIB,
        ],
    );
    common::serve("echo", &flags, 5000, &Echo);
}
