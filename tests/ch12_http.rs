//! Chapter 12: the http example (`examples/http.rs`), started as a child
//! process on port 0 and driven by real clients: `curl`, `wrk`, and raw
//! sockets for what no client sends on purpose (pipelined requests,
//! garbage, a byte at a time, a request cut short).

mod ch12_common;
mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::process::Command;
use std::time::{Duration, Instant};

use ch12_common::{allocations_in, have, read_n, run, send_byte_by_byte, stdout_of, ExampleServer};
use common::{connect_unix, read_to_eof, within, TempDir};

const HELLO: &[u8] = b"Hello World!\r\n";

/// One parsed response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        let h = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        h.map(|(_, v)| v.as_str())
    }
}

/// Reads one response (head, then `Content-Length` bytes of body).
/// `None` on end-of-file before its first byte.
fn read_response(r: &mut impl Read) -> Option<Response> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        match r.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) if head.is_empty() => return None,
            other => panic!("reading a response head after {head:?}: {other:?}"),
        }
    }
    let head = String::from_utf8(head).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').expect("a header");
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = response
        .header("content-length")
        .expect("every response has a Content-Length")
        .parse()
        .unwrap();
    response.body = read_n(r, len);
    Some(response)
}

/// Every response in `bytes`.
fn responses(bytes: &[u8]) -> Vec<Response> {
    let mut r = bytes;
    std::iter::from_fn(|| read_response(&mut r)).collect()
}

/// The server still answers a fresh client: what every bad-input test
/// checks after the abuse.
fn assert_serves(server: &ExampleServer) {
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let all = responses(&read_to_eof(&mut s));
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].status, &all[0].body[..]), (200, HELLO));
}

/// Sends `request` and expects one response with `status`, then the close.
fn expect_refused(server: &ExampleServer, request: &[u8], status: u16) {
    let mut s = server.connect();
    s.write_all(request).unwrap();
    let start = Instant::now();
    let all = responses(&read_to_eof(&mut s));
    assert!(start.elapsed() < Duration::from_secs(5), "closed promptly");
    assert_eq!(all.len(), 1, "one response, then the close");
    assert_eq!(
        all[0].status,
        status,
        "{:?}",
        String::from_utf8_lossy(&all[0].body)
    );
    assert_eq!(all[0].header("connection"), Some("close"));
}

#[test]
fn ch12_http_ready_line_help_and_loops() {
    within(120, || {
        let server = ExampleServer::start("http", &["--loops", "3"]);
        assert_eq!(server.loops, 3);
        assert_serves(&server);
        let help = Command::new(common::example_bin("http"))
            .arg("--help")
            .output()
            .unwrap();
        let text = stdout_of(&help, "http --help");
        for flag in [
            "--port",
            "--loops",
            "--aaaa",
            "--noparse",
            "--unixsocket",
            "--backend",
        ] {
            assert!(text.contains(flag), "--help lists {flag}:\n{text}");
        }
    });
}

#[test]
fn ch12_http_curl_get_and_head() {
    if !have("curl") {
        return;
    }
    within(120, || {
        let server = ExampleServer::start("http", &[]);
        let url = format!("http://127.0.0.1:{}/", server.port);
        let out = run(Command::new("curl").args(["-sS", "-i", &url]), b"", 30);
        let text = stdout_of(&out, "curl");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 14\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nHello World!\r\n"), "{text}");
        // HEAD (`curl -I`): the headers, no body.
        let out = run(Command::new("curl").args(["-sS", "-I", &url]), b"", 30);
        let text = stdout_of(&out, "curl -I");
        assert!(text.contains("Content-Length: 14"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "no body after HEAD: {text}");
    });
}

#[test]
fn ch12_http_curl_reuses_one_connection_for_two_urls() {
    if !have("curl") {
        return;
    }
    within(120, || {
        let server = ExampleServer::start("http", &[]);
        let base = format!("http://127.0.0.1:{}", server.port);
        // `num_connects`: new connections made for each transfer. Keep-alive
        // works if the second URL made none.
        let out = run(
            Command::new("curl").args([
                "-sS",
                "-o",
                "/dev/null",
                "-o",
                "/dev/null",
                "--write-out",
                "%{http_code} %{num_connects}\\n",
                &format!("{base}/a"),
                &format!("{base}/b"),
            ]),
            b"",
            30,
        );
        assert_eq!(stdout_of(&out, "curl"), "200 1\n200 0\n");
    });
}

#[test]
fn ch12_http_curl_post_bodies_small_and_large() {
    if !have("curl") {
        return;
    }
    within(120, || {
        let server = ExampleServer::start("http", &[]);
        let url = format!("http://127.0.0.1:{}/echo", server.port);
        let out = run(
            Command::new("curl").args(["-sS", "-d", "some data", &url]),
            b"",
            30,
        );
        assert_eq!(stdout_of(&out, "curl -d"), "some data");
        // 300 kB: many reads, joined by the InputStream before the parser
        // sees a complete request. (curl would send `Expect: 100-continue`
        // for a body this size; an empty `Expect:` turns that off.)
        let body: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let out = run(
            Command::new("curl").args(["-sS", "-H", "Expect:", "--data-binary", "@-", &url]),
            &body,
            30,
        );
        assert!(out.stdout == body, "300 kB echoed back: {:?}", out.status);
        // A POST to any other path gets Hello World: the body is skipped.
        let other = format!("http://127.0.0.1:{}/", server.port);
        let out = run(
            Command::new("curl").args(["-sS", "-d", "x=1", &other]),
            b"",
            30,
        );
        assert_eq!(stdout_of(&out, "curl -d /").as_bytes(), HELLO);
    });
}

#[test]
fn ch12_http_pipelined_requests_in_one_write() {
    within(60, || {
        let server = ExampleServer::start("http", &[]);
        let mut s = server.connect();
        s.write_all(
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
              HEAD / HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let bytes = read_to_eof(&mut s);
        // HEAD's response has a Content-Length but no body: read it apart.
        let mut r = &bytes[..];
        let first = read_response(&mut r).unwrap();
        let second = read_response(&mut r).unwrap();
        assert_eq!((first.status, &first.body[..]), (200, HELLO));
        assert_eq!((second.status, &second.body[..]), (200, &b"hello"[..]));
        let head_end = r.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"));
        let last = responses(&r[head_end..]);
        assert_eq!(last.len(), 1, "four responses, in order, then the close");
        assert_eq!(last[0].header("connection"), Some("close"));
    });
}

#[test]
fn ch12_http_http10_closes_unless_keep_alive() {
    within(60, || {
        let server = ExampleServer::start("http", &[]);
        // HTTP/1.0 without keep-alive: one response, told `close`, closed.
        let mut s = server.connect();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let all = responses(&read_to_eof(&mut s));
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].header("connection"), Some("close"));
        // HTTP/1.0 with keep-alive: told `keep-alive`, and it stays open.
        let mut s = server.connect();
        for _ in 0..2 {
            s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap();
            let r = read_response(&mut s).unwrap();
            assert_eq!(r.header("connection"), Some("keep-alive"));
            assert_eq!(r.body, HELLO);
        }
    });
}

#[test]
fn ch12_http_wrk_gets_only_2xx_and_no_errors() {
    if !have("wrk") {
        return;
    }
    within(120, || {
        let server = ExampleServer::start("http", &["--loops", "2"]);
        let url = format!("http://127.0.0.1:{}/", server.port);
        let out = run(
            Command::new("wrk").args(["-t1", "-c10", "-d2s", "--timeout", "5s", &url]),
            b"",
            60,
        );
        let text = stdout_of(&out, "wrk");
        // wrk prints these lines only when there is something to report.
        assert!(!text.contains("Socket errors"), "{text}");
        assert!(!text.contains("Non-2xx"), "{text}");
        let requests: u64 = text
            .lines()
            .find_map(|l| l.trim().split_once(" requests in "))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
        assert!(requests > 1000, "only {requests} requests in 2 s:\n{text}");
    });
}

#[test]
fn ch12_http_garbage_gets_400_and_the_server_goes_on() {
    within(60, || {
        let server = ExampleServer::start("http", &[]);
        // Binary garbage (a TLS ClientHello's first bytes): refused at once,
        // without waiting for a line end.
        expect_refused(
            &server,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            400,
        );
        expect_refused(&server, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400);
        expect_refused(&server, b"GET / HTTP/1.1\r\n\r\n", 400); // no Host
        expect_refused(&server, b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505);
        expect_refused(
            &server,
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            501,
        );
        assert_serves(&server);
    });
}

#[test]
fn ch12_http_oversized_head_and_body_are_refused_without_buffering() {
    within(60, || {
        let mut server = ExampleServer::start("http", &[]);
        // A head that never ends: 431 once 8 KiB have arrived.
        let mut long = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
        long.resize(9000, b'a');
        expect_refused(&server, &long, 431);
        // A body announced at 100 GB: 413 at once, nothing buffered.
        expect_refused(
            &server,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n",
            413,
        );
        assert!(server.rss_kib() < 64 * 1024, "RSS {} KiB", server.rss_kib());
        server.assert_alive();
        assert_serves(&server);
    });
}

#[test]
fn ch12_http_truncated_and_abandoned_requests() {
    within(60, || {
        let server = ExampleServer::start("http", &[]);
        // Cut short, then end-of-file: the server closes, sending nothing.
        let mut s = server.connect();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let start = Instant::now();
        assert_eq!(read_to_eof(&mut s), b"", "no response to half a request");
        assert!(start.elapsed() < Duration::from_secs(5), "closed promptly");
        // Body cut short.
        let mut s = server.connect();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_eof(&mut s), b"");
        // Gone mid-request, without a word.
        for _ in 0..20 {
            let mut s = server.connect();
            s.write_all(b"GET /slow HTTP/1.1\r\nHo").unwrap();
            drop(s);
        }
        assert_serves(&server);
    });
}

#[test]
fn ch12_http_one_byte_at_a_time() {
    within(60, || {
        let server = ExampleServer::start("http", &[]);
        let mut s = server.connect();
        send_byte_by_byte(
            &mut s,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
              GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let all = responses(&read_to_eof(&mut s));
        assert_eq!(all.len(), 2);
        assert_eq!((&all[0].body[..], &all[1].body[..]), (&b"abc"[..], HELLO));
        assert_serves(&server);
    });
}

#[test]
fn ch12_http_unix_socket_aaaa_and_noparse() {
    within(60, || {
        let dir = TempDir::new();
        let path = dir.path("http.sock");
        let path_arg = path.to_str().unwrap();
        let server = ExampleServer::start("http", &["--unixsocket", path_arg, "--aaaa"]);
        let mut u = connect_unix(&path);
        u.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let all = responses(&read_to_eof(&mut u));
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].body, vec![b'a'; 1024], "--aaaa: 1 KiB of a");
        drop(server);

        let server = ExampleServer::start("http", &["--noparse"]);
        let mut s = server.connect();
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap(); // not even parsed
        let r = read_response(&mut s).unwrap();
        assert_eq!((r.status, &r.body[..]), (200, HELLO));
    });
}

#[test]
fn ch12_http_parsing_and_replying_allocate_nothing_in_steady_state() {
    use protocols::http;
    // What wrk sends: one request per read, over and over.
    let input = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
    let mut out = Vec::new();
    let mut serve_one_read = || {
        out.clear();
        let req = http::parse(input).unwrap().unwrap();
        let body = if req.method == b"HEAD" {
            &b""[..]
        } else {
            HELLO
        };
        http::append_response(&mut out, "200 OK", req.connection_header(), body, true);
    };
    serve_one_read();
    assert_eq!(
        allocations_in(|| (0..1000).for_each(|_| serve_one_read())),
        0
    );
}
