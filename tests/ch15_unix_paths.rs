//! Unix socket paths that belong to somebody: a path a live server answers
//! on is not taken from it, a server removes only the socket file it made,
//! `?mode=` sets the file's permissions, and an example stopped by SIGTERM
//! or SIGINT exits 0 and removes its socket file.
//!
//! Chapter 15, "What a server owes its clients", explains these in its
//! section "Unix socket paths and signals".

mod common;

use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use common::{
    backends, read_line, read_stdout_line, spawn, start, wait_exit, within, Client, TempDir,
};
use evio::{Action, Config, Conn, Events, Server};

struct Echo;

impl Events for Echo {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        out.extend_from_slice(input);
        Action::None
    }
}

fn cfg(backend: common::Setup) -> Config {
    Config {
        backend: backend.backend,
        ..Config::default()
    }
}

fn answers(path: &Path) {
    let mut c = Client::Unix(common::connect_unix(path));
    c.write_all(b"still here\n").unwrap();
    assert_eq!(read_line(&mut c), "still here\n");
}

#[test]
fn ch15_unix_a_live_path_is_not_taken() {
    within(60, || {
        let dir = TempDir::new();
        for backend in backends() {
            let addr = dir.unix_addr("live.sock");
            let first = start(backend, Arc::new(Echo), cfg(backend), &[&addr]);
            // evio removes the path and binds: the first server keeps
            // running, deaf, and its clients reach the second.
            let err = Server::bind(cfg(backend), &[&addr])
                .err()
                .unwrap_or_else(|| panic!("{backend:?}: bound a path a live server answers on"));
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
            let msg = err.to_string();
            assert!(msg.contains("in use") && msg.contains("live.sock"), "{msg}");
            answers(&dir.path("live.sock"));
            first.stop(10).unwrap();
            assert!(!dir.path("live.sock").exists());
        }
    });
}

#[test]
fn ch15_unix_a_server_removes_only_its_own_socket_file() {
    within(60, || {
        let dir = TempDir::new();
        for backend in backends() {
            let (addr, path) = (dir.unix_addr("mine.sock"), dir.path("mine.sock"));
            let first = start(backend, Arc::new(Echo), cfg(backend), &[&addr]);
            // Somebody removes the first server's file, and a second
            // server binds the path anew.
            std::fs::remove_file(&path).unwrap();
            let second = start(backend, Arc::new(Echo), cfg(backend), &[&addr]);
            let inode = std::fs::metadata(&path).unwrap().ino();
            first.stop(10).unwrap();
            assert!(
                path.exists(),
                "{backend:?}: the first server removed the second's file"
            );
            assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
            answers(&path);
            second.stop(10).unwrap();
            assert!(
                !path.exists(),
                "{backend:?}: the second server left its file"
            );
        }
    });
}

#[test]
fn ch15_unix_mode_sets_the_socket_permissions() {
    within(60, || {
        let dir = TempDir::new();
        for backend in backends() {
            for mode in [0o600, 0o660, 0o666] {
                let path = dir.path("mode.sock");
                let addr = format!("unix://{}?mode={mode:04o}", path.display());
                let server = start(backend, Arc::new(Echo), cfg(backend), &[&addr]);
                let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
                assert_eq!(got, mode, "{backend:?}: {addr} made {got:o}");
                answers(&path);
                server.stop(10).unwrap();
            }
        }
        // Only for unix sockets, and only permission bits.
        for (addr, why) in [
            ("tcp://:0?mode=0600", "only for unix"),
            ("unix:///tmp/x.sock?mode=rw", "invalid mode"),
            ("unix:///tmp/x.sock?mode=4755", "invalid mode"),
            ("unix:///tmp/x.sock?mode=", "invalid mode"),
        ] {
            let err = Server::bind(Config::default(), &[addr]).err().expect(addr);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{addr}");
            assert!(err.to_string().contains(why), "{addr}: {err}");
        }
    });
}

#[test]
fn ch15_unix_an_example_stopped_by_a_signal_exits_0_and_removes_its_socket() {
    within(120, || {
        let dir = TempDir::new();
        for (example, signal) in [("echo", libc::SIGTERM), ("http", libc::SIGINT)] {
            let path = dir.path(&format!("{example}.sock"));
            let path_arg = path.to_str().unwrap();
            let (mut child, mut stdout) =
                spawn(example, &["--port", "0", "--unixsocket", path_arg]);
            common::parse_ready(example, &read_stdout_line(&mut stdout));
            let at = read_stdout_line(&mut stdout);
            assert_eq!(
                at.trim_end(),
                format!("{example} server started at {path_arg}")
            );
            assert!(path.exists());
            // SAFETY: kill(2) on our own child's pid.
            let sent = unsafe { libc::kill(child.0.id() as libc::pid_t, signal) };
            assert_eq!(sent, 0, "kill: {}", io::Error::last_os_error());
            let status = wait_exit(&mut child.0, 10);
            assert_eq!(status.code(), Some(0), "{example}: {status}");
            assert!(
                !path.exists(),
                "{example}: socket file left after signal {signal}"
            );
        }
    });
}
