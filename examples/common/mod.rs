//! A tiny flag parser shared by the examples, so they need no dependency.
//! Accepts `--name value`, `--name=value`, and Go-style `-name value` as
//! evio's examples do. Explained in chapter 2, "Run it".

#![allow(dead_code)]

use std::collections::HashMap;
use std::process::exit;

/// Parsed flags: values by name, and the switches that were given.
pub struct Flags {
    values: HashMap<String, String>,
}

impl Flags {
    /// Parses `std::env::args()`. `spec` lists `(name, takes_value, help)`.
    /// Prints `usage` and the flags, then exits, on `--help` or a bad flag.
    pub fn parse(usage: &str, spec: &[(&str, bool, &str)]) -> Flags {
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
            .is_some_and(|v| evio::addr::is_true(v))
    }
}

/// The port of the first TCP or UDP address of a server, for the ready line.
pub fn port_of(info: &evio::ServerInfo) -> u16 {
    info.addrs
        .iter()
        .find_map(|a| a.socket_addr())
        .map_or(0, |a| a.port())
}
