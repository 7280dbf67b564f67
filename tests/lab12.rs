//! The graders of chapter 12's labs ("Three servers"): new commands for the
//! redis example and a new route for the http example. Each is `#[ignore]`d:
//! it fails until you do its lab. Grade one with its name, all five with
//! `cargo test lab12 -- --ignored`:
//!
//! | lab | grader |
//! |---|---|
//! | `STRLEN key` | `cargo test lab12_redis_strlen -- --ignored` |
//! | `APPEND key value` | `cargo test lab12_redis_append -- --ignored` |
//! | `EXPIRE key seconds` and `TTL key` | `cargo test lab12_redis_expire -- --ignored` |
//! | `GET /health` | `cargo test lab12_http_health -- --ignored` |
//! | chunked request bodies | `cargo test lab12_http_chunked -- --ignored` |
//!
//! Each starts the example as a child process on port 0 (as
//! `tests/ch12_redis.rs` does) and speaks to it over a raw socket, so the
//! failure shows the exact reply.

mod ch12_common;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ch12_common::{read_n, send_byte_by_byte, ExampleServer};
use common::{read_line, within};

/// One RESP reply, whole: a line, or for a bulk string its length line and
/// its data line. Our scripts' replies are these two kinds only.
fn read_reply(s: &mut TcpStream) -> String {
    let first = read_line(s);
    match first.strip_prefix('$').map(|n| n.trim_end().parse::<i64>()) {
        Some(Ok(len)) if len >= 0 => {
            let data = read_n(s, len as usize + 2);
            first + &String::from_utf8_lossy(&data)
        }
        _ => first,
    }
}

/// Sends each command of `script` (inline form) and checks its reply. A
/// reply of "unknown command" fails at once with what the lab asks for.
fn redis_script(s: &mut TcpStream, lab: &str, command: &str, script: &[(&str, &str)]) {
    for (cmd, want) in script {
        s.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        let got = read_reply(s);
        let got = got.strip_suffix("\r\n").unwrap_or(&got);
        assert!(
            !got.starts_with("-ERR unknown command"),
            "{lab}: the redis example has no {command} yet: `{cmd}` got {got:?}. \
             Add it to `Redis::execute` in examples/redis.rs (chapter 12's labs)"
        );
        assert_eq!(
            got, *want,
            "{lab}: `{cmd}` must answer {want:?} (as Redis does), got {got:?}"
        );
    }
}

/// Lab 12 "STRLEN": the length of a key's value, 0 for a missing key, the
/// arity error without a key.
#[test]
#[ignore = "lab 12: add STRLEN to examples/redis.rs, then `cargo test lab12_redis_strlen -- --ignored`"]
fn lab12_redis_strlen() {
    within(60, || {
        let server = ExampleServer::start("redis", &[]);
        let mut s = server.connect();
        redis_script(
            &mut s,
            "lab12_redis_strlen",
            "STRLEN",
            &[
                ("SET k hello", "+OK"),
                ("STRLEN k", ":5"),
                ("STRLEN nope", ":0"),
                (
                    "STRLEN",
                    "-ERR wrong number of arguments for 'strlen' command",
                ),
            ],
        );
    });
}

/// Lab 12 "APPEND": appends to a key's value (creating the key) and
/// answers the new length; an expired key counts as missing, and a key
/// keeps its deadline.
#[test]
#[ignore = "lab 12: add APPEND to examples/redis.rs, then `cargo test lab12_redis_append -- --ignored`"]
fn lab12_redis_append() {
    within(60, || {
        let server = ExampleServer::start("redis", &[]);
        let mut s = server.connect();
        let lab = "lab12_redis_append";
        redis_script(
            &mut s,
            lab,
            "APPEND",
            &[
                ("APPEND k hello", ":5"),
                ("APPEND k _world", ":11"),
                ("GET k", "$11\r\nhello_world"),
                ("SET n 41", "+OK"),
                ("APPEND n 0", ":3"),
                ("INCR n", ":411"),
                (
                    "APPEND k",
                    "-ERR wrong number of arguments for 'append' command",
                ),
                ("SET old gone PX 50", "+OK"),
                ("SET kept ab PX 400", "+OK"),
                ("APPEND kept c", ":3"),
            ],
        );
        std::thread::sleep(Duration::from_millis(600));
        redis_script(
            &mut s,
            lab,
            "APPEND",
            &[
                // Expired: APPEND starts from nothing, and GET of the key
                // that kept its deadline finds it expired too.
                ("APPEND old new", ":3"),
                ("GET old", "$3\r\nnew"),
                ("GET kept", "$-1"),
            ],
        );
    });
}

/// Lab 12 "EXPIRE and TTL": `EXPIRE key seconds` sets a key's deadline
/// (`:1`, or `:0` for a missing key; a deadline not in the future deletes
/// the key), `TTL key` answers the seconds left, rounded to the nearest
/// (`:-1` without a deadline, `:-2` for a missing key), and SET without EX
/// or PX removes the deadline.
#[test]
#[ignore = "lab 12: add EXPIRE and TTL to examples/redis.rs, then `cargo test lab12_redis_expire -- --ignored`"]
fn lab12_redis_expire() {
    within(60, || {
        let server = ExampleServer::start("redis", &[]);
        let mut s = server.connect();
        let lab = "lab12_redis_expire";
        redis_script(
            &mut s,
            lab,
            "EXPIRE and TTL",
            &[
                ("SET k v", "+OK"),
                ("TTL k", ":-1"),
                ("TTL nope", ":-2"),
                ("EXPIRE nope 10", ":0"),
                ("EXPIRE k 100", ":1"),
                ("TTL k", ":100"),
                ("SET k v2", "+OK"),
                ("TTL k", ":-1"),
                (
                    "EXPIRE k abc",
                    "-ERR value is not an integer or out of range",
                ),
                (
                    "EXPIRE k",
                    "-ERR wrong number of arguments for 'expire' command",
                ),
                ("TTL", "-ERR wrong number of arguments for 'ttl' command"),
                ("SET gone v", "+OK"),
                ("EXPIRE gone 0", ":1"),
                ("EXISTS gone", ":0"),
                ("SET short v", "+OK"),
                ("EXPIRE short 1", ":1"),
            ],
        );
        std::thread::sleep(Duration::from_millis(1300));
        redis_script(
            &mut s,
            lab,
            "EXPIRE and TTL",
            &[("GET short", "$-1"), ("TTL short", ":-2")],
        );
    });
}

/// One HTTP response on `s`: its status and body (`Content-Length` bodies).
fn read_response(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head[9..12].parse().expect("a status code");
    let len = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    (status, read_n(s, len))
}

/// Lab 12 "/health": `GET /health` answers `200` with the body `ok\n`;
/// every other path is unchanged.
#[test]
#[ignore = "lab 12: add a /health route to examples/http.rs, then `cargo test lab12_http_health -- --ignored`"]
fn lab12_http_health() {
    within(60, || {
        let server = ExampleServer::start("http", &[]);
        let mut s = server.connect();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (status, body) = read_response(&mut s);
        assert!(
            (status, &body[..]) == (200, b"ok\n"),
            "lab12_http_health: the http example has no /health route yet: GET /health got \
             {status} {:?}, not 200 \"ok\\n\". Add it to `Http::respond` in examples/http.rs",
            String::from_utf8_lossy(&body)
        );
        let (status, body) = read_response(&mut s);
        assert_eq!(
            (status, &body[..]),
            (200, &b"Hello World!\r\n"[..]),
            "lab12_http_health: the other routes must be unchanged"
        );
    });
}

/// Sends `request` on a new connection (in one write, or a byte at a time)
/// and reads one response.
fn exchange_http(server: &ExampleServer, request: &[u8], byte_by_byte: bool) -> (u16, Vec<u8>) {
    let mut s = server.connect();
    if byte_by_byte {
        send_byte_by_byte(&mut s, request);
    } else {
        s.write_all(request).unwrap();
    }
    read_response(&mut s)
}

/// Lab 12 "chunked request bodies": a body sent with
/// `Transfer-Encoding: chunked` is decoded (chunk extensions and trailers
/// skipped), whole or a byte at a time, and the next request on the
/// connection is found after it; a bad chunk size is `400`, a body over
/// `MAX_BODY` is `413` as soon as the size line says so, another transfer
/// coding is still `501`, and `Content-Length` with `Transfer-Encoding` is
/// `400` (RFC 9112, section 6.1: a request-smuggling trick).
#[test]
#[ignore = "lab 12: decode chunked request bodies, then `cargo test lab12_http_chunked -- --ignored`"]
fn lab12_http_chunked() {
    within(60, || {
        let server = ExampleServer::start("http", &[]);
        let head = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        let chunked = format!("{head}5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        let (status, body) = exchange_http(&server, chunked.as_bytes(), false);
        assert!(
            status != 501,
            "lab12_http_chunked: the http example answers 501 to a chunked body: \
             http::parse (examples/protocols/src/http.rs) refuses Transfer-Encoding. \
             Decode `chunked` instead"
        );
        assert_eq!(
            (status, String::from_utf8_lossy(&body).into_owned()),
            (200, "hello world".to_string()),
            "lab12_http_chunked: POST /echo with a chunked body must echo the decoded body"
        );
        // A byte at a time: the same answer.
        let (status, body) = exchange_http(&server, chunked.as_bytes(), true);
        assert_eq!(
            (status, &body[..]),
            (200, &b"hello world"[..]),
            "lab12_http_chunked: the same request sent a byte at a time"
        );
        // Extensions and trailers are skipped, and the next request is
        // found right after the body (pipelining).
        let mut s = server.connect();
        let with_extras = format!(
            "{head}5;name=value\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        s.write_all(with_extras.as_bytes()).unwrap();
        let (status, body) = read_response(&mut s);
        assert_eq!(
            (status, &body[..]),
            (200, &b"hello"[..]),
            "lab12_http_chunked: a chunk extension (`;name=value`) and a trailer are skipped"
        );
        let (status, body) = read_response(&mut s);
        assert_eq!(
            (status, &body[..]),
            (200, &b"Hello World!\r\n"[..]),
            "lab12_http_chunked: the request after a chunked body must be served too"
        );
        // Refusals.
        let refused = [
            (format!("{head}zz\r\nhello\r\n0\r\n\r\n"), 400, "a chunk size that is not hex"),
            (format!("{head}5\r\nhelloXX0\r\n\r\n"), 400, "chunk data not followed by CRLF"),
            (format!("{head}100001\r\n"), 413, "a chunk over MAX_BODY (1 MiB), at once"),
            (
                "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_string(),
                501,
                "a transfer coding other than chunked",
            ),
            (
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                    .to_string(),
                400,
                "Content-Length and Transfer-Encoding together",
            ),
        ];
        for (request, want, what) in refused {
            let (status, _) = exchange_http(&server, request.as_bytes(), false);
            assert_eq!(status, want, "lab12_http_chunked: {what} must get {want}");
        }
    });
}
