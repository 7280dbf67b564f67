//! The examples, run as a reader runs them: as child processes, talked to
//! over real sockets. Chapter 2 walks through `echo`, which prints one ready line with the real port, which is what
//! makes `--port 0` usable here.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;

use common::{connect_tcp, example_bin, parse_ready, read_line, read_stdout_line, spawn, within};

#[test]
fn ch02_echo_example_prints_its_port_and_echoes() {
    within(60, || {
        for (args, want_loops) in [
            (&["--port", "0"][..], 1),
            (
                &["--port", "0", "--loops", "2", "--balance", "round-robin"][..],
                2,
            ),
            // The `--name=value` form, and a switch.
            (
                &[
                    "--port=0",
                    "--loops=2",
                    "--balance=least-connections",
                    "--reuseport",
                ][..],
                2,
            ),
        ] {
            let (_child, mut stdout) = spawn("echo", args);
            let (port, loops) = parse_ready("echo", &read_stdout_line(&mut stdout));
            assert_ne!(port, 0, "the ready line must give the bound port");
            assert_eq!(loops, want_loops, "{args:?}");
            // Two clients at once, each echoed independently.
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut a = connect_tcp(addr);
            let mut b = connect_tcp(addr);
            a.write_all(b"hello from a\n").unwrap();
            b.write_all(b"hello from b\n").unwrap();
            assert_eq!(read_line(&mut b), "hello from b\n");
            assert_eq!(read_line(&mut a), "hello from a\n");
            let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
            a.write_all(&big).unwrap();
            let mut back = vec![0; big.len()];
            a.read_exact(&mut back).unwrap();
            assert!(back == big, "200 kB echoed back unchanged");
        }
    });
}

#[test]
fn ch02_echo_example_help_lists_its_flags() {
    within(60, || {
        let out = Command::new(example_bin("echo"))
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        for flag in ["--port", "--loops", "--balance", "--reuseport"] {
            assert!(text.contains(flag), "--help lacks {flag}: {text}");
        }
    });
}

#[test]
fn ch02_echo_example_refuses_a_bad_flag_value() {
    within(60, || {
        let out = Command::new(example_bin("echo"))
            .args(["--balance", "fastest"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "a usage error exits with 2");
        let text = String::from_utf8_lossy(&out.stderr);
        // The library's `FromStr` error, which names what is accepted.
        assert!(
            text.contains("expected random, round-robin or least-connections"),
            "{text}"
        );
    });
}
