//! Defects found by holding evio-rs against evio, each with the probe that
//! showed it: an empty host that listened on IPv4 only, `Detach` without a
//! `detached` that never called `closed`, wakes after the server stopped
//! that queued forever, and a detached socket left in the poller (a spin
//! that no test caught).
//!
//! Chapter 15, "What a server owes its clients", explains each one in its
//! section "Defects found against evio".

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{backends, config, connect_tcp, read_line, start, wait_until, within, Client};
use common::{wake_setups, Setup, TempDir};
use evio::{Action, Addr, Backend, Conn, Events, LoadBalance, Options, Stream, Waker};

// ------------------------------------------------- bytes this thread allocates

/// The global allocator of this test binary: `System`, plus a count of the
/// bytes allocated (or grown into) by the current thread, so that a test can
/// tell how much memory a loop of calls made it take.
struct Counting;

thread_local! {
    /// A `const` thread-local without `Drop`: reading it never allocates.
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn add_bytes(n: usize) {
    let _ = BYTES.try_with(|b| b.set(b.get() + n));
}

/// Bytes the current thread has allocated so far.
fn allocated() -> usize {
    BYTES.with(Cell::get)
}

// SAFETY: every call is passed on to `System` unchanged; counting allocates
// nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add_bytes(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add_bytes(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add_bytes(new_size.saturating_sub(layout.size()));
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// --------------------------------------------------------------- dual stack

/// An echo server that records each connection's two ends as it sees them.
#[derive(Default)]
struct Ends {
    seen: Mutex<Vec<(Addr, Addr)>>,
}

impl Events for Ends {
    type Context = ();

    fn data(&self, c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        if let (Ok(local), Ok(remote)) = (c.local_addr(), c.remote_addr()) {
            self.seen.lock().unwrap().push((local, remote));
        }
        out.extend_from_slice(input);
        Action::None
    }
}

/// `port` on the loopback address of one family.
fn loopback(v6: bool, port: u16) -> SocketAddr {
    if v6 {
        (Ipv6Addr::LOCALHOST, port).into()
    } else {
        (Ipv4Addr::LOCALHOST, port).into()
    }
}

fn echo_over_tcp(to: SocketAddr) -> io::Result<SocketAddr> {
    let mut s = TcpStream::connect_timeout(&to, common::IO_TIMEOUT)?;
    s.set_read_timeout(Some(common::IO_TIMEOUT))?;
    s.write_all(b"hello\n")?;
    assert_eq!(read_line(&mut s), "hello\n", "echo over {to}");
    s.local_addr()
}

fn echo_over_udp(to: SocketAddr) -> SocketAddr {
    let client = UdpSocket::bind(loopback(to.is_ipv6(), 0)).unwrap();
    client.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    client.send_to(b"hello", to).unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = client.recv_from(&mut buf).expect("the echo");
    assert_eq!(&buf[..n], b"hello", "udp echo over {to}");
    client.local_addr().unwrap()
}

/// Whether this machine has IPv6 loopback (some CI containers do not): if
/// not, the IPv6 halves of these tests are skipped, saying so.
fn has_ipv6() -> bool {
    let yes = std::net::TcpListener::bind(loopback(true, 0)).is_ok();
    if !yes {
        println!("skipping IPv6: no [::1] on this machine");
    }
    yes
}

/// `tcp://:PORT` and `udp://:PORT` answer on both families, as evio's do
/// (Go listens on `[::]` with IPV6_V6ONLY off); an IPv4 client is seen as
/// IPv4 (not `[::ffff:127.0.0.1]`), as Go shows it.
#[test]
fn ch15_empty_host_listens_on_ipv4_and_ipv6() {
    within(60, || {
        for backend in backends() {
            let events = Arc::new(Ends::default());
            let server = start(
                backend,
                events.clone(),
                config(backend, 1, LoadBalance::Random),
                &["tcp://:0", "udp://:0"],
            );
            let (tcp, udp) = (server.port(), server.addr(1).port());
            let families: &[bool] = if has_ipv6() { &[false, true] } else { &[false] };
            for &v6 in families {
                let me = echo_over_tcp(loopback(v6, tcp))
                    .unwrap_or_else(|e| panic!("{backend:?}: tcp://:0 over IPv6={v6}: {e}"));
                let seen = events.seen.lock().unwrap().pop().expect("data was called");
                assert_eq!(seen.1, Addr::Tcp(me), "{backend:?}: the peer as it is");
                assert_eq!(seen.0, Addr::Tcp(loopback(v6, tcp)), "{backend:?}: our end");

                let me = echo_over_udp(loopback(v6, udp));
                let seen = events.seen.lock().unwrap().pop().expect("data was called");
                assert_eq!(seen.1, Addr::Udp(me), "{backend:?}: the datagram's sender");
            }
            server.stop(10).unwrap();
        }
    });
}

/// `tcp4` stays IPv4 and `tcp6` stays IPv6-only.
#[test]
fn ch15_tcp4_and_tcp6_keep_to_their_family() {
    within(60, || {
        if !has_ipv6() {
            return;
        }
        for backend in backends() {
            let events = Arc::new(Ends::default());
            let cfg = config(backend, 1, LoadBalance::Random);
            let server = start(backend, events, cfg, &["tcp4://:0", "tcp6://:0"]);
            let (v4, v6) = (server.addr(0), server.addr(1));
            assert!(v4.is_ipv4() && v6.is_ipv6(), "{backend:?}: {v4} {v6}");
            echo_over_tcp(loopback(false, v4.port())).unwrap();
            echo_over_tcp(loopback(true, v6.port())).unwrap();
            // Each holds its port in its own family only, so the same port
            // of the other family is free (a dual-stack socket holds both).
            let free = |a: SocketAddr| std::net::TcpListener::bind(a).is_ok();
            assert!(
                free(loopback(true, v4.port())),
                "{backend:?}: tcp4 holds IPv6"
            );
            assert!(
                free(loopback(false, v6.port())),
                "{backend:?}: tcp6 holds IPv4"
            );
            server.stop(10).unwrap();
        }
    });
}

// ------------------------------------------------ detach without `detached`

/// Detaches on the first input, and has no `detached`: evio closes the
/// connection and calls `Closed` then.
#[derive(Default)]
struct DetachNobody {
    closed: AtomicUsize,
    peers: Mutex<Vec<Option<Addr>>>,
}

impl Events for DetachNobody {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], _out: &mut Vec<u8>) -> Action {
        if input.is_empty() {
            Action::None
        } else {
            Action::Detach
        }
    }

    fn closed(&self, c: &mut Conn<()>, _err: Option<io::Error>) -> Action {
        self.peers.lock().unwrap().push(c.remote_addr().ok());
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }
}

#[test]
fn ch15_detach_without_detached_closes_and_calls_closed() {
    within(60, || {
        let dir = TempDir::new();
        for backend in backends() {
            for addr in ["tcp://127.0.0.1:0".to_string(), dir.unix_addr("d.sock")] {
                let events = Arc::new(DetachNobody::default());
                let cfg = config(backend, 1, LoadBalance::Random);
                let server = start(backend, events.clone(), cfg, &[&addr]);
                let mut c = Client::connect(&server.info.addrs[0]);
                let me = c.local_addr();
                c.write_all(b"detach me").unwrap();
                common::expect_eof(&mut c);
                wait_until(10, "closed after a detach nobody takes", || {
                    events.closed.load(Ordering::SeqCst) == 1
                });
                server.stop(10).unwrap();
                assert_eq!(
                    events.closed.load(Ordering::SeqCst),
                    1,
                    "{backend:?} {addr}"
                );
                // `closed` could still read the peer's address.
                assert_eq!(*events.peers.lock().unwrap(), [Some(me)], "{backend:?}");
            }
        }
    });
}

// ------------------------------------------------ wakes after the server ended

/// Keeps the waker of the first connection.
#[derive(Default)]
struct KeepWaker {
    waker: Mutex<Option<Waker>>,
}

impl Events for KeepWaker {
    type Context = ();

    fn opened(&self, c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        *self.waker.lock().unwrap() = Some(c.waker());
        out.extend_from_slice(b"hi\n");
        (Options::default(), Action::None)
    }
}

/// What the waking thread allocates for a million wakes after the server
/// has stopped.
fn wakes_after_stop(backend: Setup) -> usize {
    let events = Arc::new(KeepWaker::default());
    let cfg = config(backend, 1, LoadBalance::Random);
    let server = start(backend, events.clone(), cfg, &["tcp://127.0.0.1:0"]);
    let mut c = connect_tcp(server.addr(0));
    assert_eq!(read_line(&mut c), "hi\n");
    server.stop(10).unwrap();
    let waker = events.waker.lock().unwrap().take().expect("opened ran");
    let before = allocated();
    for _ in 0..1_000_000 {
        waker
            .wake()
            .expect("a wake after the end does nothing, and says Ok");
    }
    allocated() - before
}

#[test]
fn ch15_wakes_after_the_server_stopped_take_no_memory() {
    within(120, || {
        for backend in wake_setups() {
            let grown = wakes_after_stop(backend);
            println!("{backend:?}: a million wakes after stop allocated {grown} bytes");
            // Before the fix the reactor's note queue kept every one:
            // tens of MB for a million wakes.
            assert!(
                grown < 64 * 1024,
                "{backend:?}: a million wakes after stop allocated {grown} bytes"
            );
        }
    });
}

// --------------------------------------------------- a held detached stream

/// Detaches on the first input and keeps the stream, unread.
#[derive(Default)]
struct Hold {
    held: Mutex<Vec<Stream>>,
}

impl Events for Hold {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], _out: &mut Vec<u8>) -> Action {
        if input.is_empty() {
            Action::None
        } else {
            Action::Detach
        }
    }

    fn detached(&self, _c: &mut Conn<()>, stream: Stream) -> Action {
        self.held.lock().unwrap().push(stream);
        Action::None
    }
}

/// A detached socket that its new owner does not read is readable for ever;
/// if the loop still watched it (no `poll.delete` in `detach`), every wait
/// would return at once: a loop at 100% CPU. Reactor only: the thread
/// variant has no poller.
#[test]
fn ch15_a_held_detached_stream_does_not_spin_the_loop() {
    within(60, || {
        for backend in backends() {
            if backend == Backend::Threads {
                continue;
            }
            let events = Arc::new(Hold::default());
            let cfg = config(backend, 1, LoadBalance::Random);
            let server = start(backend, events.clone(), cfg, &["tcp://127.0.0.1:0"]);
            let mut c = connect_tcp(server.addr(0));
            c.write_all(b"detach").unwrap();
            wait_until(10, "the detach", || !events.held.lock().unwrap().is_empty());
            // Unread input, and the peer's end-of-file: readable for ever.
            c.write_all(b"more input nobody reads").unwrap();
            c.shutdown(std::net::Shutdown::Write).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            let before = server.stats.total().waits;
            std::thread::sleep(Duration::from_millis(300));
            let waits = server.stats.total().waits - before;
            println!("{backend:?}: {waits} waits in 300 ms with a detached socket held");
            assert!(
                waits < 20,
                "{backend:?}: the loop woke {waits} times in 300 ms with only a detached socket"
            );
            server.stop(10).unwrap();
            // The stream is still the server's new owner's, and works.
            let mut held = events.held.lock().unwrap().pop().unwrap();
            let mut rest = Vec::new();
            held.read_to_end(&mut rest).unwrap();
            assert_eq!(rest, b"more input nobody reads");
        }
    });
}
