//! The examples, run as a reader runs them: as child processes, talked to
//! over real sockets. Chapter 2 walks through `echo`, chapter 8 through
//! `ticker`; both print one ready line with the real port, which is what
//! makes `--port 0` usable here.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::{connect_tcp, example_bin, read_line, read_stdout_line, within};

/// Kills the child when the test ends, even when it fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Parses `NAME server started on port P (loops: N)`.
fn parse_ready(name: &str, line: &str) -> (u16, usize) {
    let rest = line
        .trim_end()
        .strip_prefix(&format!("{name} server started on port "))
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    let (port, loops) = rest
        .split_once(" (loops: ")
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    let loops = loops.strip_suffix(')').expect("closing parenthesis");
    (port.parse().unwrap(), loops.parse().unwrap())
}

fn spawn(name: &str, args: &[&str]) -> (Killed, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(example_bin(name))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn example {name}: {e}"));
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (Killed(child), stdout)
}

#[test]
fn ch02_echo_example_prints_its_port_and_echoes() {
    within(60, || {
        for (args, want_loops) in [
            (&["--port", "0"][..], 1),
            (
                &["--port", "0", "--loops", "2", "--balance", "round-robin"][..],
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
fn ch08_ticker_example_stops_after_its_ticks() {
    within(60, || {
        let (mut child, mut stdout) = spawn(
            "ticker",
            &["--port", "0", "--interval-ms", "50", "--ticks", "3"],
        );
        let (port, loops) = parse_ready("ticker", &read_stdout_line(&mut stdout));
        assert_ne!(port, 0);
        assert_eq!(loops, 1);
        // The rest of the output arrives when the ticker exits by itself
        // (the watchdog fails the test if it does not).
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let status = child.0.wait().unwrap();
        assert!(status.success(), "{status}");
        let ticks = rest.lines().filter(|l| l.starts_with("tick: ")).count();
        assert_eq!(ticks, 3, "{rest}");
        assert!(rest.trim_end().ends_with("ticker: done"), "{rest}");
    });
}
