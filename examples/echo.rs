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

use evio::{Action, Config, Conn, Events, Server, ServerInfo};

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
            (
                "loops",
                true,
                "event loops; 0 = 1, -1 = one per CPU [default: 0]",
            ),
            (
                "balance",
                true,
                "random | round-robin | least-connections [default: random]",
            ),
            (
                "reuseport",
                false,
                "set SO_REUSEPORT, so several servers share the port",
            ),
            ("unixsocket", true, "also listen on this unix socket path"),
            (
                "backend",
                true,
                "auto | epoll | kqueue | threads [default: auto]",
            ),
            (
                "stdlib",
                false,
                "use the thread-based variant (as --backend threads)",
            ),
        ],
    );
    let port: u16 = flags.get("port", 5000);
    let mut addrs = vec![format!("tcp://:{port}?reuseport={}", flags.on("reuseport"))];
    let unix: String = flags.get("unixsocket", String::new());
    if !unix.is_empty() {
        addrs.push(format!("unix://{unix}"));
    }
    let config = Config {
        loops: flags.get("loops", 0),
        balance: flags.get("balance", evio::LoadBalance::Random),
        // evio's examples take `--stdlib` for their `-net` fallback (chapter 9).
        backend: if flags.on("stdlib") {
            evio::Backend::Threads
        } else {
            flags.get("backend", evio::Backend::Auto)
        },
    };
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let server = Server::bind(config, &addrs).unwrap_or_else(|e| {
        eprintln!("echo: {e}");
        std::process::exit(1)
    });
    print_ready("echo", server.info());
    if let Err(e) = server.run(&Echo) {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}

fn print_ready(name: &str, info: &ServerInfo) {
    use std::io::Write;
    println!(
        "{name} server started on port {} (loops: {})",
        common::port_of(info),
        info.num_loops
    );
    let _ = std::io::stdout().flush();
}
