//! Chapter 12: the redis example (`examples/redis.rs`), started as a child
//! process on port 0 and driven by real clients: `redis-cli`,
//! `redis-benchmark`, and raw sockets for exact replies and for bad input
//! (garbage, lengths over the limits, a byte at a time, a command cut short).

mod ch12_common;
mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use ch12_common::{allocations_in, have, read_n, run, send_byte_by_byte, stdout_of, ExampleServer};
use common::{connect_unix, read_to_eof, within, TempDir};

/// Sends `commands` (inline form, one per line) in one write and checks
/// that the replies are exactly `replies`, in order.
fn exchange(s: &mut TcpStream, script: &[(&str, &str)]) {
    let mut send = String::new();
    let mut want = String::new();
    for (cmd, reply) in script {
        send += cmd;
        send += "\r\n";
        want += reply;
        want += "\r\n";
    }
    s.write_all(send.as_bytes()).unwrap();
    let got = read_n(s, want.len());
    assert_eq!(String::from_utf8_lossy(&got), want);
}

/// The server still answers a fresh client.
fn assert_serves(server: &ExampleServer) {
    let mut s = server.connect();
    exchange(&mut s, &[("PING", "+PONG")]);
}

/// Sends `bytes` and expects exactly `reply`, then the close, promptly.
fn expect_error_and_close(server: &ExampleServer, bytes: &[u8], reply: &str) {
    let mut s = server.connect();
    s.write_all(bytes).unwrap();
    let start = Instant::now();
    let got = read_to_eof(&mut s);
    assert!(start.elapsed() < Duration::from_secs(5), "closed promptly");
    assert_eq!(String::from_utf8_lossy(&got), format!("{reply}\r\n"));
}

fn cli(server: &ExampleServer, args: &[&str]) -> String {
    let port = server.port.to_string();
    let out = run(
        Command::new("redis-cli").args(["-p", &port]).args(args),
        b"",
        30,
    );
    stdout_of(&out, &format!("redis-cli {args:?}"))
}

#[test]
fn ch12_redis_ready_line_help_and_loops() {
    within(120, || {
        let server = ExampleServer::start("redis", &["--loops", "2", "--balance", "round-robin"]);
        assert_eq!(server.loops, 2);
        assert_serves(&server);
        let help = Command::new(common::example_bin("redis"))
            .arg("--help")
            .output()
            .unwrap();
        let text = stdout_of(&help, "redis --help");
        for flag in [
            "--port",
            "--loops",
            "--balance",
            "--unixsocket",
            "--backend",
        ] {
            assert!(text.contains(flag), "--help lists {flag}:\n{text}");
        }
    });
}

#[test]
fn ch12_redis_commands_and_their_replies() {
    within(60, || {
        let server = ExampleServer::start("redis", &[]);
        let mut s = server.connect();
        // All in one write: pipelining, inline commands, Redis's replies.
        exchange(
            &mut s,
            &[
                ("PING", "+PONG"),
                ("PING hi", "$2\r\nhi"),
                ("ECHO hello", "$5\r\nhello"),
                ("SET k v1", "+OK"),
                ("GET k", "$2\r\nv1"),
                ("get k", "$2\r\nv1"),
                ("GET nope", "$-1"),
                ("EXISTS k nope k", ":2"),
                ("INCR k", "-ERR value is not an integer or out of range"),
                ("INCR n", ":1"),
                ("INCR n", ":2"),
                ("SET big 9223372036854775807", "+OK"),
                ("INCR big", "-ERR increment or decrement would overflow"),
                ("SET a 1 NX", "+OK"),
                ("SET a 2 NX", "$-1"),
                ("SET b 1 XX", "$-1"),
                ("SET a 3 XX", "+OK"),
                ("SET a 3 NX XX", "-ERR syntax error"),
                ("SET a 3 EX 0", "-ERR invalid expire time in 'set' command"),
                (
                    "SET a 3 EX ten",
                    "-ERR value is not an integer or out of range",
                ),
                ("SET a 3 FOREVER", "-ERR syntax error"),
                ("DBSIZE", ":4"),
                ("DEL k a nope", ":2"),
                ("DBSIZE", ":2"),
                ("KEYS n", "*1\r\n$1\r\nn"),
                ("KEYS nothing*", "*0"),
                ("GET", "-ERR wrong number of arguments for 'get' command"),
                (
                    "NOPE x y",
                    "-ERR unknown command 'NOPE', with args beginning with: 'x' 'y' ",
                ),
                ("COMMAND DOCS", "*0"),
                (
                    "CONFIG GET save appendonly",
                    "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno",
                ),
                ("CONFIG GET nothing", "*0"),
                ("FLUSHDB", "+OK"),
                ("DBSIZE", ":0"),
            ],
        );
        // Multi-bulk, binary-safe: a value with CR LF and a zero byte inside.
        let mut cmd = Vec::new();
        protocols::resp::append_command(&mut cmd, &[b"SET", b"bin", b"a\r\n\0b"]);
        protocols::resp::append_command(&mut cmd, &[b"GET", b"bin"]);
        s.write_all(&cmd).unwrap();
        assert_eq!(read_n(&mut s, 5 + 11), b"+OK\r\n$5\r\na\r\n\0b\r\n");
        // QUIT: +OK, then the server closes; the PING after it is ignored.
        s.write_all(b"QUIT\r\nPING\r\n").unwrap();
        assert_eq!(read_to_eof(&mut s), b"+OK\r\n");
    });
}

#[test]
fn ch12_redis_keys_expire() {
    within(60, || {
        let server = ExampleServer::start("redis", &[]);
        let mut s = server.connect();
        exchange(
            &mut s,
            &[
                ("SET short v PX 100", "+OK"),
                ("SET long v EX 100", "+OK"),
                ("EXISTS short long", ":2"),
            ],
        );
        std::thread::sleep(Duration::from_millis(300));
        exchange(
            &mut s,
            &[
                ("GET short", "$-1"),
                ("EXISTS short long", ":1"),
                ("DBSIZE", ":1"),
                ("INCR short", ":1"),
            ],
        );
    });
}

#[test]
fn ch12_redis_one_store_shared_by_several_loops() {
    within(120, || {
        let server = ExampleServer::start("redis", &["--loops", "4", "--balance", "round-robin"]);
        // 8 clients on 4 loops, 500 pipelined INCRs each, all at once. If the
        // store were not shared correctly, some numbers would repeat.
        let (clients, each) = (8, 500);
        let addr = server.addr();
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut s = common::connect_tcp(addr);
                    s.write_all(&b"INCR counter\r\n".repeat(each)).unwrap();
                    let mut replies = Vec::new();
                    while replies.iter().filter(|&&b| b == b'\n').count() < each {
                        let mut buf = [0; 4096];
                        let n = s.read(&mut buf).expect("read replies");
                        assert_ne!(n, 0, "closed early");
                        replies.extend_from_slice(&buf[..n]);
                    }
                    String::from_utf8(replies).unwrap()
                })
            })
            .collect();
        let mut seen: Vec<u64> = Vec::new();
        for t in threads {
            for line in t.join().unwrap().lines() {
                seen.push(line.strip_prefix(':').unwrap().parse().unwrap());
            }
        }
        seen.sort_unstable();
        let want: Vec<u64> = (1..=(clients * each) as u64).collect();
        assert!(seen == want, "every INCR got its own number");
        let mut s = server.connect();
        exchange(&mut s, &[("GET counter", "$4\r\n4000")]);
    });
}

#[test]
fn ch12_redis_cli_ping_set_get_del_incr_keys() {
    if !have("redis-cli") {
        return;
    }
    within(120, || {
        let server = ExampleServer::start("redis", &[]);
        assert_eq!(cli(&server, &["PING"]), "PONG\n");
        assert_eq!(cli(&server, &["SET", "greeting", "hello world"]), "OK\n");
        assert_eq!(cli(&server, &["GET", "greeting"]), "hello world\n");
        assert_eq!(cli(&server, &["DEL", "greeting"]), "1\n");
        assert_eq!(cli(&server, &["GET", "greeting"]), "\n", "nil");
        assert_eq!(cli(&server, &["INCR", "visits"]), "1\n");
        assert_eq!(cli(&server, &["INCR", "visits"]), "2\n");
        assert_eq!(cli(&server, &["SET", "user:1", "a"]), "OK\n");
        assert_eq!(cli(&server, &["SET", "user:2", "b"]), "OK\n");
        let mut keys: Vec<String> = cli(&server, &["KEYS", "user:*"])
            .lines()
            .map(String::from)
            .collect();
        keys.sort();
        assert_eq!(keys, ["user:1", "user:2"]);
        let err = cli(&server, &["NOSUCHCOMMAND"]);
        assert!(
            err.starts_with("ERR unknown command 'NOSUCHCOMMAND'"),
            "{err}"
        );
    });
}

#[test]
fn ch12_redis_cli_pipe_mass_insert() {
    if !have("redis-cli") {
        return;
    }
    within(120, || {
        let server = ExampleServer::start("redis", &[]);
        // `redis-cli --pipe` sends raw RESP from stdin as fast as it can,
        // then an ECHO with a random marker to know when all replies are in.
        let mut input = Vec::new();
        for i in 0..10_000 {
            let key = format!("key:{i}");
            protocols::resp::append_command(&mut input, &[b"SET", key.as_bytes(), b"value"]);
        }
        let port = server.port.to_string();
        let out = run(
            Command::new("redis-cli").args(["-p", &port, "--pipe"]),
            &input,
            60,
        );
        let text = stdout_of(&out, "redis-cli --pipe");
        assert!(text.contains("errors: 0, replies: 10000"), "{text}");
        assert_eq!(cli(&server, &["DBSIZE"]), "10000\n");
    });
}

#[test]
fn ch12_redis_cli_over_a_unix_socket() {
    if !have("redis-cli") {
        return;
    }
    within(60, || {
        let dir = TempDir::new();
        let path = dir.path("redis.sock");
        let path_arg = path.to_str().unwrap();
        let _server = ExampleServer::start("redis", &["--unixsocket", path_arg]);
        let out = run(
            Command::new("redis-cli").args(["-s", path_arg, "PING"]),
            b"",
            30,
        );
        assert_eq!(stdout_of(&out, "redis-cli -s"), "PONG\n");
        let mut u = connect_unix(&path);
        u.write_all(b"ECHO unix\r\n").unwrap();
        assert_eq!(read_n(&mut u, 10), b"$4\r\nunix\r\n");
    });
}

#[test]
fn ch12_redis_benchmark_completes_without_errors() {
    if !have("redis-benchmark") {
        return;
    }
    within(180, || {
        let server = ExampleServer::start("redis", &["--loops", "2"]);
        let port = server.port.to_string();
        let out = run(
            Command::new("redis-benchmark").args([
                "-p",
                &port,
                "-t",
                "ping,set,get",
                "-n",
                "20000",
                "-P",
                "16",
                "-q",
            ]),
            b"",
            150,
        );
        let text = stdout_of(&out, "redis-benchmark");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // It overwrites a progress line with `\r`; the results end in `\n`.
        let results: Vec<&str> = text
            .split(['\r', '\n'])
            .filter(|l| l.contains("requests per second"))
            .collect();
        for test in ["PING_INLINE", "PING_MBULK", "SET", "GET"] {
            assert!(
                results
                    .iter()
                    .any(|l| l.trim_start().starts_with(&format!("{test}: "))),
                "no result for {test}:\n{text}"
            );
        }
        for bad in ["WARNING", "ERR", "rror"] {
            assert!(
                !text.contains(bad) && !stderr.contains(bad),
                "{bad}:\n{text}\n{stderr}"
            );
        }
    });
}

#[test]
fn ch12_redis_garbage_gets_a_protocol_error_and_close() {
    within(60, || {
        let server = ExampleServer::start("redis", &[]);
        expect_error_and_close(
            &server,
            b"*abc\r\n",
            "-ERR Protocol error: invalid multibulk length",
        );
        expect_error_and_close(
            &server,
            b"*1\r\n+PING\r\n",
            "-ERR Protocol error: expected '$', got '+'",
        );
        expect_error_and_close(
            &server,
            b"*1\r\n$x\r\n",
            "-ERR Protocol error: invalid bulk length",
        );
        // Commands before the bad one are answered first.
        expect_error_and_close(
            &server,
            b"PING\r\n*1\r\n$4\r\nPINGxx\r\nPING\r\n",
            "+PONG\r\n-ERR Protocol error: expected CRLF after bulk string",
        );
        // Random bytes: whatever they parse as, the server survives them.
        let mut rng = common::Rng::from_clock("garbage");
        for _ in 0..20 {
            let mut s = server.connect();
            let len = 1 + rng.below(2000);
            let _ = s.write_all(&rng.bytes(len));
            drop(s);
        }
        assert_serves(&server);
    });
}

#[test]
fn ch12_redis_oversized_lengths_are_refused_before_any_allocation() {
    within(60, || {
        let mut server = ExampleServer::start("redis", &[]);
        let before = server.rss_kib();
        expect_error_and_close(
            &server,
            b"*2147483647\r\n",
            "-ERR Protocol error: invalid multibulk length",
        );
        // (`$999999999999` on its own would be an inline command named so:
        // a length means something only inside an array.)
        expect_error_and_close(
            &server,
            b"*1\r\n$999999999999\r\n",
            "-ERR Protocol error: invalid bulk length",
        );
        expect_error_and_close(
            &server,
            b"*1\r\n$536870913\r\n",
            "-ERR Protocol error: invalid bulk length",
        );
        expect_error_and_close(
            &server,
            &vec![b'x'; 70_000],
            "-ERR Protocol error: too big inline request",
        );
        // At the limit, 512 MB is accepted and waited for, but nothing is
        // reserved for it: memory grows only with bytes that arrive.
        let mut s = server.connect();
        s.write_all(b"*1000000\r\n$536870912\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let grown = server.rss_kib().saturating_sub(before);
        assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
        drop(s);
        server.assert_alive();
        assert_serves(&server);
    });
}

#[test]
fn ch12_redis_truncated_and_abandoned_commands() {
    within(60, || {
        let server = ExampleServer::start("redis", &[]);
        // Cut short, then end-of-file: closed, with no reply.
        let mut s = server.connect();
        s.write_all(b"*2\r\n$3\r\nGET\r\n$5\r\nab").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let start = Instant::now();
        assert_eq!(read_to_eof(&mut s), b"");
        assert!(start.elapsed() < Duration::from_secs(5), "closed promptly");
        // Gone mid-command, many times.
        for _ in 0..20 {
            let mut s = server.connect();
            s.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")
                .unwrap();
            drop(s);
        }
        let mut s = server.connect();
        exchange(&mut s, &[("EXISTS k", ":0")]);
    });
}

#[test]
fn ch12_redis_one_byte_at_a_time() {
    within(60, || {
        let server = ExampleServer::start("redis", &[]);
        let mut s = server.connect();
        let mut input = Vec::new();
        protocols::resp::append_command(&mut input, &[b"SET", b"k", b"hello"]);
        input.extend_from_slice(b"GET k\r\n");
        send_byte_by_byte(&mut s, &input);
        assert_eq!(read_n(&mut s, 5 + 11), b"+OK\r\n$5\r\nhello\r\n");
        assert_serves(&server);
    });
}

// ANCHOR: no_alloc
#[test]
fn ch12_redis_parsing_and_replying_allocate_nothing_in_steady_state() {
    use protocols::resp;
    // What redis-benchmark -P 16 sends: 16 commands per read.
    let mut input = Vec::new();
    for i in 0..16 {
        let cmd: &[&[u8]] = if i % 2 == 0 {
            &[b"SET", b"key:__rand_int__", b"xxx"]
        } else {
            &[b"GET", b"key:__rand_int__"]
        };
        resp::append_command(&mut input, cmd);
    }
    let (mut parser, mut out) = (resp::Parser::default(), Vec::new());
    let mut serve_one_read = || {
        out.clear(); // the loop empties `out` once it is written
        let mut used = 0;
        while let Some(cmd) = parser.parse(&input[used..]).unwrap() {
            used += cmd.consumed();
            match cmd.arg(0) {
                b"GET" => resp::append_bulk(&mut out, b"xxx"),
                _ => resp::append_simple(&mut out, "OK"),
            }
        }
        assert_eq!(used, input.len());
    };
    serve_one_read(); // the first read sizes the reused buffers
    assert_eq!(
        allocations_in(|| (0..1000).for_each(|_| serve_one_read())),
        0
    );
    // The counter does see allocations: one `to_vec` is one.
    let copy = allocations_in(|| drop(std::hint::black_box(input.to_vec())));
    assert_eq!(copy, 1);
}
// ANCHOR_END: no_alloc
