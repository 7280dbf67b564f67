//! The thread that accepts (or, for UDP, reads datagrams) on each listener.
//!
//! Chapter 9, "The thread-based variant", explains this file. It mirrors
//! evio's `stdlistenerRun` (`evio_std.go`): one thread per listener, blocked
//! in `accept`, that hands each new connection to a loop. Unlike evio's, it
//! asks the [`Balancer`](super::balance::Balancer) which loop (evio always
//! takes turns), starts the connection's reader thread itself, so that the
//! loop never pays for a thread spawn, and it can be stopped: see `poke`.
//!
//! The listeners are bound by `src/listener.rs`, as the reactor's are, and
//! stay blocking, as std makes them: nothing here polls.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::net::UnixStream;

use super::reader::Reader;
use super::{Msg, Shared};
use crate::api::{Addr, Stream};
use crate::conn::SockFd;
pub(crate) use crate::listener::Listener;

/// The size of a UDP thread's receive buffer: the largest datagram.
const DATAGRAM: usize = 64 * 1024;

/// How long an accept thread waits after an error other than "try again".
/// A blocking `accept` that fails with `EMFILE` fails again at once: without
/// a pause the thread would spin (the reactor sheds the connection instead,
/// chapter 6).
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// An accepted connection's socket, shared by its loop and its reader.
///
/// std implements `Read` and `Write` for `&TcpStream` and `&UnixStream`:
/// the reader thread reads and the loop writes through the *same*
/// descriptor, no `dup` needed, each holding an `Arc<Sock>`.
#[derive(Debug)]
pub(crate) enum Sock {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

/// A connection on its way from the accept thread to its loop.
pub(crate) struct NewConn {
    pub(crate) id: u64,
    /// The index of the listener it came in on.
    pub(crate) li: usize,
    pub(crate) sock: Arc<Sock>,
    /// Its reader thread, started and waiting for the loop's go-ahead.
    pub(crate) reader: Reader,
}

impl Sock {
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => (&mut &*s).read(buf),
            #[cfg(unix)]
            Sock::Unix(s) => (&mut &*s).read(buf),
        }
    }

    pub(crate) fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => (&mut &*s).write_all(buf),
            #[cfg(unix)]
            Sock::Unix(s) => (&mut &*s).write_all(buf),
        }
    }

    /// Shuts both directions down: a read blocked in another thread returns
    /// at once, and the peer sees end-of-file even while a descriptor is
    /// still open. Errors (the peer has gone already) do not matter.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Sock::Tcp(s) => s.shutdown(Shutdown::Both),
            #[cfg(unix)]
            Sock::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    pub(crate) fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Sock::Tcp(s) => s.local_addr().map(Addr::Tcp),
            #[cfg(unix)]
            Sock::Unix(s) => s.local_addr().map(|a| unix_addr(&a)),
        }
    }

    pub(crate) fn peer_addr(&self) -> io::Result<Addr> {
        match self {
            Sock::Tcp(s) => s.peer_addr().map(Addr::Tcp),
            #[cfg(unix)]
            Sock::Unix(s) => s.peer_addr().map(|a| unix_addr(&a)),
        }
    }

    /// Applies TCP keep-alive; a unix socket has none. std has no
    /// keep-alive call; socket2 has one on every OS. Best effort, as in evio.
    pub(crate) fn set_keep_alive(&self, ka: &socket2::TcpKeepalive) {
        match self {
            Sock::Tcp(s) => {
                let _ = socket2::SockRef::from(s).set_tcp_keepalive(ka);
            }
            #[cfg(unix)]
            Sock::Unix(_) => {}
        }
    }

    /// The socket, as the blocking stream `detached` gets.
    pub(crate) fn into_stream(self) -> Stream {
        match self {
            Sock::Tcp(s) => Stream::Tcp(s),
            #[cfg(unix)]
            Sock::Unix(s) => Stream::Unix(s),
        }
    }

    #[cfg(unix)]
    pub(crate) fn fd(&self) -> SockFd {
        use std::os::fd::AsRawFd;
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }

    #[cfg(not(unix))]
    pub(crate) fn fd(&self) -> SockFd {}
}

#[cfg(unix)]
fn unix_addr(a: &std::os::unix::net::SocketAddr) -> Addr {
    // A client's end is unnamed: an empty path, as in the reactor.
    Addr::Unix(a.as_pathname().map(Into::into).unwrap_or_default())
}

impl Listener {
    /// Blocks until a connection arrives.
    fn accept_blocking(&self) -> io::Result<Sock> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                // Replies go out at once, as in the reactor (no Nagle).
                let _ = s.set_nodelay(true);
                Ok(Sock::Tcp(s))
            }
            #[cfg(unix)]
            Listener::Unix(l, _) => Ok(Sock::Unix(l.accept()?.0)),
            Listener::Udp(_) => Err(io::Error::other("accept on a UDP socket")),
        }
    }

    // ANCHOR: poke
    /// Wakes the thread blocked on this listener: a connection to it (or an
    /// empty datagram), from a fresh socket that is dropped at once.
    pub(crate) fn poke(&self) -> io::Result<()> {
        // A listener bound to "any" is reached through the loopback address.
        let reachable = |a: SocketAddr| match a.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, a.port()).into(),
            IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, a.port()).into(),
            _ => a,
        };
        match self {
            Listener::Tcp(l) => {
                let to = reachable(l.local_addr()?);
                TcpStream::connect_timeout(&to, Duration::from_secs(1)).map(drop)
            }
            Listener::Udp(s) => {
                let to = reachable(s.local_addr()?);
                let any: SocketAddr = match to {
                    SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
                    SocketAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
                };
                UdpSocket::bind(any)?.send_to(&[], to).map(drop)
            }
            #[cfg(unix)]
            Listener::Unix(_, path) => UnixStream::connect(path).map(drop),
        }
    }
    // ANCHOR_END: poke
}

/// Starts the thread for listener `li`: accepting, or reading datagrams.
pub(crate) fn spawn(li: usize, shared: Arc<Shared>) -> io::Result<std::thread::JoinHandle<()>> {
    let udp = matches!(shared.listeners[li], Listener::Udp(_));
    std::thread::Builder::new()
        .name(format!("evio-accept-{li}"))
        .spawn(move || {
            if udp {
                udp_run(li, &shared)
            } else {
                accept_run(li, &shared)
            }
        })
}

/// Errors after which `accept` is simply called again.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionAborted
    )
}

/// Hands an error to a loop, which reports it to `accept_error`, and
/// pauses so that a persistent error does not spin this thread.
fn report(shared: &Shared, err: io::Error) {
    let _ = shared.loops[0].send(Msg::AcceptError(err));
    std::thread::sleep(ERROR_PAUSE);
}

// ANCHOR: accept_run
/// evio's `stdlistenerRun` for a stream listener: accept, pick a loop,
/// start the connection's reader, send both to the loop.
fn accept_run(li: usize, shared: &Shared) {
    let listener = &shared.listeners[li];
    loop {
        let accepted = listener.accept_blocking();
        if shared.stopping.load(Ordering::SeqCst) {
            // A poke from `run`, or a client just too late: dropped, closed.
            return;
        }
        let sock = match accepted {
            Ok(sock) => Arc::new(sock),
            Err(e) if transient(&e) => continue,
            Err(e) => {
                report(shared, e);
                continue;
            }
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        // Counted at once, before the loop has even seen it, so that the
        // next choice of LeastConnections is exact.
        let idx = shared.balancer.choose(true);
        let tx = &shared.loops[idx];
        let reader = match Reader::spawn(id, sock.clone(), tx.clone()) {
            Ok(reader) => reader,
            Err(e) => {
                // Out of threads: the socket is dropped, so closed.
                shared.balancer.release(idx);
                report(shared, e);
                continue;
            }
        };
        let conn = NewConn {
            id,
            li,
            sock,
            reader,
        };
        if tx.send(Msg::Accept(conn)).is_err() {
            // The loop has ended (a panic): the message comes back and is
            // dropped, which stops the reader and closes the socket.
            shared.balancer.release(idx);
        }
    }
}
// ANCHOR_END: accept_run

/// evio's `stdlistenerRun` for UDP: read a datagram, copy it, hand it to a
/// loop (by the balancing rule; datagrams are not counted as connections).
fn udp_run(li: usize, shared: &Shared) {
    let Listener::Udp(socket) = &shared.listeners[li] else {
        return;
    };
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        let got = socket.recv_from(&mut buf);
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match got {
            // An empty datagram would reach `data` as empty input, which
            // means "woken": dropped, as the reactor and evio drop it.
            Ok((0, _)) => {}
            Ok((n, from)) => {
                let idx = shared.balancer.choose(false);
                let data = buf[..n].to_vec();
                let _ = shared.loops[idx].send(Msg::Datagram { li, from, data });
            }
            // Windows reports an earlier send's ICMP "port unreachable" as a
            // reset on the next receive; it is not this datagram's problem.
            Err(e) if transient(&e) || e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => report(shared, e),
        }
    }
}
