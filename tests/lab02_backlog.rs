//! The grader of lab 02 (chapter 2, "The API", exercise 3): a new address
//! option, `?backlog=N`, the length of the listen queue that `listen(2)`
//! gets instead of the constant `BACKLOG` (`src/shared/listener.rs`).
//! `#[ignore]`d: it fails until you do the lab. Grade it with
//! `cargo test lab02 -- --ignored`.
//!
//! It binds servers (without running them: `Server::bind` already
//! listens) and asks the kernel for each listener's queue length with
//! `ss`, which prints it in the `Send-Q` column of a listening socket.

mod common;

use std::process::Command;

use common::TempDir;
use evio::{Backend, Config, Server};

/// The listen queue length of the listening socket whose local address
/// ends with `local` (`:PORT` for TCP, the path for a unix socket), from
/// `ss -Hl` (`-t` or `-x`): its third column, `Send-Q`.
fn queue_length(kind: &str, local: &str) -> u32 {
    let out = Command::new("ss")
        .args(["-Hln", kind])
        .output()
        .expect("run ss (iproute2): the grader asks the kernel through it");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().any(|w| w.ends_with(local)))
        .unwrap_or_else(|| panic!("ss {kind} lists no listener at {local}:\n{text}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    // unix: Netid State Recv-Q Send-Q ...; tcp (-t): State Recv-Q Send-Q ...
    let at = if kind == "-x" { 3 } else { 2 };
    fields[at]
        .parse()
        .unwrap_or_else(|_| panic!("no Send-Q in {line:?}"))
}

fn bind(backend: Backend, addr: &str) -> std::io::Result<Server> {
    let config = Config {
        backend,
        ..Config::default()
    };
    Server::bind(config, &[addr])
}

#[test]
#[ignore = "lab 02: add the address option ?backlog=N, then `cargo test lab02 -- --ignored`"]
fn lab02_backlog_option_sets_the_listen_queue() {
    let dir = TempDir::new();
    for backend in [Backend::Epoll, Backend::Threads] {
        // The kernel's queue is what `listen` was given (up to somaxconn).
        for n in [7, 100] {
            let addr = format!("tcp://127.0.0.1:0?backlog={n}");
            let server = bind(backend, &addr).unwrap_or_else(|e| {
                panic!(
                    "lab02: the address {addr:?} is refused ({e}): the option ?backlog= is not \
                     parsed yet. Add it to ListenAddr::parse (src/addr.rs) and use it in \
                     Listener::bind (src/shared/listener.rs)"
                )
            });
            let port = server.info().addrs[0].socket_addr().unwrap().port();
            let got = queue_length("-t", &format!(":{port}"));
            assert_eq!(
                got, n,
                "lab02, {backend:?}: {addr} is listening with a queue of {got}, not {n}: \
                 is the option passed on to listen() (Listener::bind, src/shared/listener.rs)?"
            );
        }
        // A unix socket too.
        let path = dir.path(&format!("backlog-{backend:?}.sock"));
        let addr = format!("unix://{}?backlog=5", path.display());
        let server = bind(backend, &addr).unwrap_or_else(|e| panic!("lab02: {addr:?}: {e}"));
        let got = queue_length("-x", &path.display().to_string());
        assert_eq!(
            got, 5,
            "lab02, {backend:?}: {addr} listens with a queue of {got}"
        );
        drop(server);
        // Without the option: the old constant, 1024.
        let server = bind(backend, "tcp://127.0.0.1:0").unwrap();
        let port = server.info().addrs[0].socket_addr().unwrap().port();
        assert_eq!(queue_length("-t", &format!(":{port}")), 1024);
    }
    // Mistakes are refused, naming the option.
    for bad in ["backlog=", "backlog=many", "backlog=-1", "backlog=0"] {
        let addr = format!("tcp://127.0.0.1:0?{bad}");
        match bind(Backend::Epoll, &addr) {
            Ok(_) => {
                panic!("lab02: {addr:?} was accepted: a backlog must be a number of 1 or more")
            }
            Err(e) => assert!(
                e.to_string().contains("backlog"),
                "lab02: the error for {addr:?} must name the option: {e}"
            ),
        }
    }
}
