//! Wake-ups over real sockets: a [`Waker`] used from another thread, a stale
//! one (its connection closed, its fd number since given to a new
//! connection), and a wake while output is still pending.
//!
//! Chapter 4, "Wake-ups", explains the note queue and the waker; this is
//! where evio differs on purpose. evio drops a stale wake by checking that
//! its fd map still holds the same conn object; we check a per-connection id,
//! the same rule without a pointer. And evio's wake *replaces* pending output
//! (weakness 7), while ours is appended.
//!
//! [`Waker`]: evio::Waker

mod common;

use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{config, read_line, read_to_eof, start, wait_until, wake_setups, within, Client};
use common::{Rng, TempDir};
use evio::{Action, Addr, Backend, Conn, Events, LoadBalance, Options, Waker};
use socket2::{Domain, SockAddr, Socket, Type};

/// The tests of this file run one at a time: fd numbers are per process, and
/// the fd-reuse test needs no other test of this binary taking them.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Takes [`ONE_AT_A_TIME`], even if a failed test poisoned it.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records every connection's waker and fd, and every wake-up by serial.
#[derive(Default)]
struct Wakes {
    opened: AtomicUsize,
    closed: AtomicUsize,
    /// (serial, fd, waker) of each connection, in order of opening.
    conns: Mutex<Vec<(usize, RawFd, Waker)>>,
    /// Serials of the connections `data` was called for with no input.
    woken: Mutex<Vec<usize>>,
}

impl Events for Wakes {
    /// The connection's serial: 1, 2, ...
    type Context = usize;

    fn opened(&self, c: &mut Conn<usize>, out: &mut Vec<u8>) -> (Options, Action) {
        let serial = self.opened.fetch_add(1, Ordering::SeqCst) + 1;
        *c.context_mut() = serial;
        let mut conns = self.conns.lock().unwrap();
        conns.push((serial, c.fd(), c.waker()));
        out.extend_from_slice(format!("serial {serial}\n").as_bytes());
        (Options::default(), Action::None)
    }

    fn data(&self, c: &mut Conn<usize>, input: &[u8], out: &mut Vec<u8>) -> Action {
        if input.is_empty() {
            let serial = *c.context();
            self.woken.lock().unwrap().push(serial);
            out.extend_from_slice(format!("woken {serial}\n").as_bytes());
        }
        Action::None
    }

    fn closed(&self, _c: &mut Conn<usize>, _err: Option<io::Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }
}

/// Connects and reads the greeting: returns the client and the server-side
/// serial, fd and waker of its connection.
fn open(server: &common::Running, events: &Wakes) -> (Client, usize, RawFd, Waker) {
    greet(Client::connect(&server.info.addrs[0]), events)
}

/// Reads a new connection's greeting and finds its server-side record.
fn greet(mut c: Client, events: &Wakes) -> (Client, usize, RawFd, Waker) {
    let line = read_line(&mut c);
    let serial: usize = line.trim_end()["serial ".len()..].parse().unwrap();
    let conns = events.conns.lock().unwrap();
    let (_, fd, waker) = conns.iter().find(|(s, ..)| *s == serial).unwrap();
    (c, serial, *fd, waker.clone())
}

/// A client socket made but not yet connected. Made while A is still open,
/// its fd number cannot be A's: this test's clients live in the same process
/// as the server and would otherwise take the number the test wants the
/// server to reuse.
fn unconnected(addr: &Addr) -> Socket {
    let domain = match addr {
        Addr::Unix(_) => Domain::UNIX,
        Addr::Tcp(a) => Domain::for_address(*a),
        Addr::Udp(_) => unreachable!("a stream test"),
    };
    Socket::new(domain, Type::STREAM, None).unwrap()
}

/// Connects a socket from [`unconnected`] and reads the greeting.
fn open_on(sock: Socket, addr: &Addr, events: &Wakes) -> (Client, usize, RawFd, Waker) {
    let target = match addr {
        Addr::Unix(p) => SockAddr::unix(p).unwrap(),
        Addr::Tcp(a) => SockAddr::from(*a),
        Addr::Udp(_) => unreachable!("a stream test"),
    };
    sock.connect(&target).unwrap();
    sock.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let c = match addr {
        Addr::Unix(_) => Client::Unix(sock.into()),
        _ => Client::Tcp(sock.into()),
    };
    greet(c, events)
}

/// Closes a client and waits until the server has closed its side.
fn close(c: Client, events: &Wakes) {
    let before = events.closed.load(Ordering::SeqCst);
    drop(c);
    wait_until(10, "the server's close", || {
        events.closed.load(Ordering::SeqCst) > before
    });
}

#[test]
fn ch04_stale_waker_is_harmless_even_when_its_fd_is_reused() {
    let _serial = one_at_a_time();
    within(60, || {
        let dir = TempDir::new();
        for backend in wake_setups() {
            for addr in ["tcp://127.0.0.1:0".to_string(), dir.unix_addr("w.sock")] {
                let events = Arc::new(Wakes::default());
                // One loop: every note goes through one queue, in order.
                let cfg = config(backend, 1, LoadBalance::Random);
                let server = start(backend, events.clone(), cfg, &[&addr]);

                let (a, a_serial, a_fd, a_waker) = open(&server, &events);
                let bound = &server.info.addrs[0];
                let pool: Vec<Socket> = (0..32).map(|_| unconnected(bound)).collect();
                close(a, &events);
                // Its connection is gone: nothing to wake.
                a_waker.wake().unwrap();

                // The kernel hands out the lowest free fd. A's client end was
                // freed too, and other tests of this process open
                // descriptors, so the server may first get other numbers:
                // keep those connections open (so their numbers stay taken)
                // until the server's side of a new connection gets A's fd.
                let mut others = Vec::new();
                let mut found = None;
                for sock in pool {
                    let (c, serial, fd, waker) = open_on(sock, bound, &events);
                    // The thread variant names connections by id alone and
                    // its readers hold a second fd per connection, so which
                    // number comes back is not worth waiting for there: any
                    // new connection shows the stale wake does not reach it.
                    if fd == a_fd || backend == Backend::Threads {
                        found = Some((c, serial, waker));
                        break;
                    }
                    others.push(c);
                    std::thread::sleep(Duration::from_millis(20));
                }
                let (mut b, b_serial, b_waker) = found
                    .unwrap_or_else(|| panic!("{backend:?} {addr}: fd {a_fd} was never reused"));

                // A's waker names A's fd, which now is B's: B must not hear it.
                a_waker.wake().unwrap();
                // B's own waker, after it: the queue is FIFO, so once B is
                // woken, both stale wakes have been handled.
                std::thread::spawn(move || b_waker.wake().unwrap())
                    .join()
                    .unwrap();
                assert_eq!(read_line(&mut b), format!("woken {b_serial}\n"));
                assert_eq!(*events.woken.lock().unwrap(), [b_serial], "{addr}");
                assert_ne!(a_serial, b_serial);
                // And nothing else arrives for B.
                b.set_read_timeout(Some(Duration::from_millis(100)));
                let mut byte = [0u8];
                match b.read(&mut byte) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                    other => panic!("{addr}: unexpected {other:?} after the wake"),
                }

                server.stop(10).unwrap();
                // A waker that outlives its server is harmless too.
                a_waker.wake().unwrap();
            }
        }
    });
}

/// Sends a big reply with `Close`, and appends `TAIL` when woken.
struct Append {
    big: Vec<u8>,
    waker: Mutex<Option<Waker>>,
    /// `out.len() + 1` when the wake-up came (0: not yet).
    out_at_wake: AtomicUsize,
    closed: AtomicUsize,
}

impl Events for Append {
    type Context = ();

    fn data(&self, c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        if input.is_empty() {
            self.out_at_wake.store(out.len() + 1, Ordering::SeqCst);
            out.extend_from_slice(b"TAIL");
            // Not a Close: the pending Close must survive anyway.
            return Action::None;
        }
        out.extend_from_slice(&self.big);
        *self.waker.lock().unwrap() = Some(c.waker());
        Action::Close
    }

    fn closed(&self, _c: &mut Conn<()>, _err: Option<io::Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }
}

#[test]
fn ch04_wake_from_another_thread_appends_to_pending_output() {
    let _serial = one_at_a_time();
    within(60, || {
        let dir = TempDir::new();
        // More than the socket buffers hold while the client does not read.
        let big = Rng::from_clock("append").bytes(16 << 20);
        for backend in wake_setups() {
            for addr in ["tcp://127.0.0.1:0".to_string(), dir.unix_addr("a.sock")] {
                let events = Arc::new(Append {
                    big: big.clone(),
                    waker: Mutex::new(None),
                    out_at_wake: AtomicUsize::new(0),
                    closed: AtomicUsize::new(0),
                });
                let cfg = config(backend, 1, LoadBalance::Random);
                let server = start(backend, events.clone(), cfg, &[&addr]);
                let mut c = Client::connect(&server.info.addrs[0]);
                c.write_all(b"go\n").unwrap();
                wait_until(10, "the big reply", || {
                    events.waker.lock().unwrap().is_some()
                });
                let waker = events.waker.lock().unwrap().clone().unwrap();
                std::thread::spawn(move || waker.wake().unwrap())
                    .join()
                    .unwrap();
                wait_until(10, "the wake-up", || {
                    events.out_at_wake.load(Ordering::SeqCst) != 0
                });
                let pending = events.out_at_wake.load(Ordering::SeqCst) - 1;
                // The thread variant holds pending output in the
                // connection's writer thread, not in `out` (chapter 15);
                // io_uring in the send in flight, which the kernel owns
                // until it completes, not in `out` (chapter 16).
                if backend != Backend::Threads && backend != Backend::IoUring {
                    assert!(pending > 0, "{addr}: output was all sent before the wake");
                }

                // All of the big reply, then the tail, then the deferred close.
                let got = read_to_eof(&mut c);
                assert_eq!(got.len(), big.len() + 4, "{addr}: bytes received");
                assert!(got[..big.len()] == big[..], "{addr}: big reply corrupted");
                assert_eq!(&got[big.len()..], b"TAIL", "{addr}");
                wait_until(10, "closed", || events.closed.load(Ordering::SeqCst) == 1);
                server.stop(10).unwrap();
            }
        }
    });
}
