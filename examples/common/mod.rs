//! What the examples share: a tiny flag parser, so they need no dependency,
//! the flags every server takes, and the start-up every server does (bind,
//! print the ready line, run). The parser accepts `--name value`,
//! `--name=value`, and Go-style `-name value` as evio's examples do.
//! Explained in the "Run it" section of chapter 2.

#![allow(dead_code)]

use std::collections::HashMap;
use std::process::exit;

use evio::{Addr, Backend, Config, Events, LoadBalance, Server};

/// The echo load client (`echo_load`, `conn_cost`); it needs this crate's
/// poller, so a unix system.
#[cfg(unix)]
pub mod load;

/// One flag for [`Flags::parse`]: its name, whether it takes a value, its help.
pub type Spec = (&'static str, bool, &'static str);

/// `--loops`: [`Config::loops`].
pub const LOOPS: Spec = (
    "loops",
    true,
    "event loops; 0 = 1, -1 = one per CPU [default: 0]",
);
/// `--balance`: [`Config::balance`].
pub const BALANCE: Spec = (
    "balance",
    true,
    "random | round-robin | least-connections [default: random]",
);
/// `--reuseport`: `?reuseport=true` on the TCP address.
pub const REUSEPORT: Spec = (
    "reuseport",
    false,
    "set SO_REUSEPORT, so several servers share the port",
);
/// `--unixsocket`: a second address, `unix://PATH`.
pub const UNIXSOCKET: Spec = ("unixsocket", true, "also listen on this unix socket path");
/// `--backend`: [`Config::backend`].
pub const BACKEND: Spec = (
    "backend",
    true,
    "auto | epoll | kqueue | threads [default: auto]",
);
/// `--stdlib`: evio's examples' flag for their `-net` fallback (chapter 9).
pub const STDLIB: Spec = (
    "stdlib",
    false,
    "use the thread-based variant (as --backend threads)",
);

/// Parsed flags: values by name, and the switches that were given.
pub struct Flags {
    values: HashMap<String, String>,
}

impl Flags {
    /// Parses `std::env::args()`. `spec` lists `(name, takes_value, help)`.
    /// Prints `usage` and the flags, then exits, on `--help` or a bad flag.
    pub fn parse(usage: &str, spec: &[Spec]) -> Flags {
        let help = || {
            println!("{usage}\n\nFlags:");
            for (name, takes, text) in spec {
                let arg = if *takes {
                    format!("--{name} <value>")
                } else {
                    format!("--{name}")
                };
                println!("  {arg:<28} {text}");
            }
            println!("  {:<28} print this help", "--help");
        };
        let mut values = HashMap::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let name = arg.trim_start_matches('-');
            if name == "help" || name == "h" {
                help();
                exit(0);
            }
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            let Some((_, takes, _)) = spec.iter().find(|(n, _, _)| *n == name) else {
                eprintln!("unknown flag {arg:?}\n");
                help();
                exit(2);
            };
            let value = match (takes, inline) {
                (true, Some(v)) => v,
                (true, None) => args.next().unwrap_or_else(|| {
                    eprintln!("flag --{name} needs a value");
                    exit(2)
                }),
                (false, Some(v)) => v,
                (false, None) => "true".to_string(),
            };
            values.insert(name.to_string(), value);
        }
        Flags { values }
    }

    /// A flag's value parsed as `T`, or `default`; exits on a bad value.
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> T
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|e| {
                eprintln!("bad value {v:?} for --{name}: {e}");
                exit(2)
            }),
        }
    }

    /// Whether a switch was given (`--reuseport`, or `--reuseport=true`).
    pub fn on(&self, name: &str) -> bool {
        self.values
            .get(name)
            .is_some_and(|v| evio::internals::is_true(v))
    }
}

/// The [`Config`] the server flags ask for; a flag an example does not take
/// keeps its default.
pub fn config(flags: &Flags) -> Config {
    Config {
        loops: flags.get("loops", 0),
        balance: flags.get("balance", LoadBalance::Random),
        backend: if flags.on("stdlib") {
            Backend::Threads
        } else {
            flags.get("backend", Backend::Auto)
        },
    }
}

/// The addresses the flags ask for: `tcp://:PORT` (`--port`, else
/// `default_port`; `--reuseport`), and `unix://PATH` for `--unixsocket`.
pub fn addrs(flags: &Flags, default_port: u16) -> Vec<String> {
    let port: u16 = flags.get("port", default_port);
    let mut addrs = vec![format!("tcp://:{port}?reuseport={}", flags.on("reuseport"))];
    let unix: String = flags.get("unixsocket", String::new());
    if !unix.is_empty() {
        addrs.push(format!("unix://{unix}"));
    }
    addrs
}

/// Binds what the flags ask for, prints the ready line, serves `events`
/// until it shuts down; on an error prints `NAME: error` and exits with 1.
///
/// The ready line is `NAME server started on port P (loops: N)` with the
/// bound port (so `--port 0` works), then `NAME server started at PATH` for
/// a unix socket, as evio's examples log them. Tests wait for the first.
pub fn serve<E: Events>(name: &str, flags: &Flags, default_port: u16, events: &E) {
    let addrs = addrs(flags, default_port);
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let fail = |e: std::io::Error| -> ! {
        eprintln!("{name}: {e}");
        exit(1)
    };
    let server = Server::bind(config(flags), &addrs).unwrap_or_else(|e| fail(e));
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
    if let Err(e) = server.run(events) {
        fail(e);
    }
}
