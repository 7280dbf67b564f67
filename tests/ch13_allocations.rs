//! Chapter 13, "Beyond evio": no allocation per request, in steady state,
//! for the three example servers under the default (better) strategies.
//!
//! A counting global allocator counts every allocation, and every
//! reallocation that grows, made by a thread that has opted in. The loop
//! thread opts in from the first callback it runs for the connection under
//! test ([`Measured`] wraps the real handler and sets the flag in
//! `opened`), so the test client's allocations and the harness's are not
//! counted. Each server is started in-process on port 0 with
//! `Config::default()`, one connection makes [`WARM_UP`] round trips (the
//! loop's and the connection's buffers grow to their steady size), the
//! count is reset, and [`ROUND_TRIPS`] more round trips are counted.
//!
//! The handlers are the examples' own: each example file is included here
//! as a module (`#[path]`), so what is checked is `examples/echo.rs`,
//! `examples/http.rs` and `examples/redis.rs` as they are.
//!
//! What "steady state" means, per request kind:
//!
//! - echo: the same message, over and over;
//! - HTTP: keep-alive `GET /`, one at a time and pipelined ten at a time;
//! - redis: `PING`, `GET` of an existing key, and `SET` of an existing key
//!   to a value no longer than the one it holds, which the server writes
//!   into the value's buffer. A `SET` that makes a new key allocates (the
//!   key, the value, and now and then the map's table), and so does a
//!   longer value; a server that must store what it is sent cannot avoid
//!   that, and those are not counted as "per request".
//!
//! The instrument is checked too: a handler that copies each input
//! (`input.to_vec()`) must show at least one allocation per round trip.

#![allow(clippy::duplicate_mod)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use evio::{Action, Config, Conn, Events, Options, Server};

// Each example, with its handler, as a module. Their `main`s and flags are
// not used here. Each includes `examples/common/mod.rs`, as in its own
// build, so that file is compiled three times (clippy's `duplicate_mod`).
#[allow(dead_code)]
#[path = "../examples/echo.rs"]
mod echo;
#[allow(dead_code)]
#[path = "../examples/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "../examples/redis.rs"]
mod redis;

// ANCHOR: allocator
/// The global allocator of this test binary: `System`, plus a count of the
/// allocations made by threads that opted in.
struct Counting;

thread_local! {
    /// The counter this thread adds to, if it counts. A `const` thread-local
    /// of a type without `Drop`: reading it never allocates, and it is
    /// readable until the thread ends.
    static COUNTER: Cell<Option<&'static AtomicU64>> = const { Cell::new(None) };
}

fn count_one() {
    if let Ok(Some(counter)) = COUNTER.try_with(Cell::get) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to `System` unchanged; counting allocates
// nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            count_one(); // a buffer that grows
        }
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Wraps a handler: the loop thread starts counting into `counter` when it
/// opens a connection, then `data` is the handler's own. (The examples
/// implement only `data`; their other callbacks are the trait's defaults.)
struct Measured<E> {
    events: E,
    counter: &'static AtomicU64,
}

impl<E: Events> Events for Measured<E> {
    type Context = E::Context;

    fn opened(&self, c: &mut Conn<E::Context>, out: &mut Vec<u8>) -> (Options, Action) {
        // Callbacks run on the connection's loop thread.
        COUNTER.with(|cell| cell.set(Some(self.counter)));
        self.events.opened(c, out)
    }

    fn data(&self, c: &mut Conn<E::Context>, input: &[u8], out: &mut Vec<u8>) -> Action {
        self.events.data(c, input, out)
    }
}
// ANCHOR_END: allocator

const WARM_UP: usize = 100;
const ROUND_TRIPS: usize = 1_000;

/// One request, and the reply it must get: its length and its last bytes
/// (an HTTP reply's `Date` header changes; its length does not).
struct Exchange {
    request: Vec<u8>,
    reply_len: usize,
    reply_ends: Vec<u8>,
}

impl Exchange {
    /// A request whose reply is known byte for byte.
    fn exact(request: &[u8], reply: &[u8]) -> Exchange {
        Exchange {
            request: request.to_vec(),
            reply_len: reply.len(),
            reply_ends: reply.to_vec(),
        }
    }
}

// ANCHOR: measure
/// Serves `events` with `Config::default()` on port 0, makes `WARM_UP`
/// round trips on one connection, then returns the loop thread's
/// allocations during `ROUND_TRIPS` more. `setup` is sent once first, then
/// `exchanges` in turn.
fn allocations<E>(events: E, setup: &[Exchange], exchanges: &[Exchange]) -> u64
where
    E: Events + Send + 'static,
{
    let counter: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let server = Server::bind(Config::default(), &["tcp://127.0.0.1:0"]).unwrap();
    let addr = server.info().addrs[0].socket_addr().unwrap();
    let stopper = server.stopper();
    let handle = std::thread::spawn(move || server.run(&Measured { events, counter }));

    let mut client = TcpStream::connect(addr).unwrap();
    client.set_nodelay(true).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let longest = setup.iter().chain(exchanges).map(|e| e.reply_len).max();
    let mut reply = vec![0; longest.unwrap()];
    let mut round_trip = |e: &Exchange| {
        client.write_all(&e.request).unwrap();
        let reply = &mut reply[..e.reply_len];
        client.read_exact(reply).unwrap();
        let text = String::from_utf8_lossy(reply);
        assert!(reply.ends_with(&e.reply_ends), "unexpected reply {text:?}");
    };
    for e in setup.iter().chain(exchanges.iter().cycle().take(WARM_UP)) {
        round_trip(e);
    }
    counter.store(0, Ordering::Relaxed);
    for e in exchanges.iter().cycle().take(ROUND_TRIPS) {
        round_trip(e);
    }
    let counted = counter.load(Ordering::Relaxed);

    stopper.stop();
    handle.join().unwrap().unwrap();
    counted
}
// ANCHOR_END: measure

/// `GET /` with keep-alive, `n` times in one write (pipelined: then a round
/// trip is `n` requests), and the replies'.
fn http_gets(n: usize) -> Exchange {
    let body = b"Hello World!\r\n";
    let mut reply = Vec::new();
    protocols::http::append_response(&mut reply, "200 OK", None, body, true);
    Exchange {
        request: b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(n),
        reply_len: reply.len() * n,
        reply_ends: [&b"\r\n\r\n"[..], body].concat(),
    }
}

/// A redis command in RESP, as clients send it.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

#[test]
fn ch13_alloc_echo_allocates_nothing_per_request() {
    let message = Exchange::exact(b"hello, loop\n", b"hello, loop\n");
    assert_eq!(allocations(echo::Echo, &[], &[message]), 0);
}

#[test]
fn ch13_alloc_http_get_allocates_nothing_per_request() {
    let http = || http::Http {
        body: b"Hello World!\r\n".to_vec(),
        noparse: false,
        request_timeout: Some(std::time::Duration::from_secs(30)),
    };
    for (n, how) in [(1, "one at a time"), (10, "ten pipelined")] {
        assert_eq!(allocations(http(), &[], &[http_gets(n)]), 0, "{how}");
    }
}

#[test]
fn ch13_alloc_redis_get_set_ping_allocate_nothing_per_request() {
    let set = |v: &[u8]| Exchange::exact(&resp(&[b"SET", b"key", v]), b"+OK\r\n");
    let get = |v: &[u8]| {
        let reply = [format!("${}\r\n", v.len()).as_bytes(), v, b"\r\n"].concat();
        Exchange::exact(&resp(&[b"GET", b"key"]), &reply)
    };
    let ping = Exchange::exact(&resp(&[b"PING"]), b"+PONG\r\n");
    // The key exists before the count starts: `setup` makes it.
    let kinds = [
        ("PING", vec![ping]),
        ("GET", vec![get(b"value-1")]),
        ("SET", vec![set(b"value-2"), set(b"value-3")]),
    ];
    for (kind, exchanges) in kinds {
        let server = redis::Redis::default();
        let counted = allocations(server, &[set(b"value-1")], &exchanges);
        assert_eq!(counted, 0, "{kind}");
    }
}

/// A handler that copies each input before echoing it: one allocation per
/// request, which the counter must see.
struct Copying;

impl Events for Copying {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        let copy = input.to_vec();
        out.extend_from_slice(&copy);
        Action::None
    }
}

#[test]
fn ch13_alloc_the_counter_sees_an_allocation_per_request() {
    let message = Exchange::exact(b"hello, loop\n", b"hello, loop\n");
    let counted = allocations(Copying, &[], &[message]);
    assert!(counted >= ROUND_TRIPS as u64, "{counted} allocations");
}
