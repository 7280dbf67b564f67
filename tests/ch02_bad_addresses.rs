//! evio's `TestBadAddresses`, ported, and more: every malformed address is
//! an `io::Error` of kind `InvalidInput` whose message says what is wrong,
//! and `tcp://` (any host, any port) binds.
//!
//! Chapter 2, "The API", explains the address syntax (`src/addr.rs`).

mod common;

use std::io;

use common::{backends, within, Setup};
use evio::{Action, Addr, Config, Events, Server, ServerInfo};

/// Binding `addr` on `backend` must fail with `InvalidInput`, and the
/// message must contain every one of `words`.
fn rejects(backend: Setup, addr: &str, words: &[&str]) {
    let config = Config {
        backend: backend.backend,
        accept: backend.accept,
        writes: backend.writes,
        trigger: backend.trigger,
        ..Config::default()
    };
    let err = match Server::bind(config, &[addr]) {
        Ok(_) => panic!("{backend:?}: {addr:?} was accepted"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{addr:?}: {err}");
    let msg = err.to_string();
    for w in words {
        assert!(msg.contains(w), "{addr:?}: message {msg:?} lacks {w:?}");
    }
}

#[test]
fn ch02_bad_addresses_fail_with_a_message_that_says_why() {
    within(30, || {
        for backend in backends() {
            rejects(backend, "tulip://howdy", &["tulip", "scheme"]);
            rejects(backend, "howdy", &["howdy", "port"]);
            rejects(backend, "tcp://127.0.0.1:99999", &["99999", "port"]);
            rejects(backend, "tcp://127.0.0.1:http", &["http", "port"]);
            rejects(backend, "tcp://127.0.0.1:0?fast=1", &["fast", "option"]);
            rejects(backend, "unix://", &["unix", "path"]);
            // One bad address among good ones fails the whole bind.
            let config = Config {
                backend: backend.backend,
                accept: backend.accept,
                writes: backend.writes,
                trigger: backend.trigger,
                ..Config::default()
            };
            let err = Server::bind(config, &["tcp://127.0.0.1:0", "tulip://howdy"]).err();
            assert!(err.is_some(), "a bad second address was accepted");
        }
    });
}

struct StopAtOnce;

impl Events for StopAtOnce {
    type Context = ();

    fn serving(&self, _info: &ServerInfo) -> Action {
        Action::Shutdown
    }
}

#[test]
fn ch02_tcp_with_no_host_and_no_port_binds_any() {
    within(30, || {
        for backend in backends() {
            let config = Config {
                backend: backend.backend,
                accept: backend.accept,
                writes: backend.writes,
                trigger: backend.trigger,
                ..Config::default()
            };
            let server = Server::bind(config, &["tcp://"]).unwrap();
            match &server.info().addrs[0] {
                Addr::Tcp(a) => {
                    assert!(a.ip().is_unspecified(), "{a}");
                    assert_ne!(a.port(), 0, "the kernel picked no port");
                }
                other => panic!("tcp:// bound {other}"),
            }
            server.run(&StopAtOnce).unwrap();
        }
        // evio's own form of the test, through `serve`.
        evio::serve(&StopAtOnce, &["tcp://"]).unwrap();
    });
}
