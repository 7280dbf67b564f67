//! A connection as your callbacks see it: [`Conn`], and its [`Waker`], the
//! same two types for both implementations of the library.
//!
//! Chapter 2, "The API", explains [`Conn`]; chapter 4, "Wake-ups", explains
//! [`Waker`]; chapter 9, "The thread-based variant", explains why each holds
//! a small enum. They mirror evio's `Conn` interface (`Context`,
//! `SetContext`, `AddrIndex`, `LocalAddr`, `RemoteAddr`, `Wake`), which evio
//! implements twice: by `conn` in `evio_unix.go` and by `stdconn` in
//! `evio_std.go`. Here one struct serves both, and only two things differ:
//! how a connection finds its addresses ([`Kind`]) and how a wake reaches its
//! loop (`WakeVia`: the reactor's note queue, or the thread variant's
//! channel).
//!
//! The context is a typed field rather than an `interface{}`, and a wake
//! names the connection by a per-loop id (plus its fd, in the reactor), so a
//! wake for a connection that has closed cannot reach a new one.

use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::Duration;

#[cfg(unix)]
use std::os::fd::{BorrowedFd, RawFd};

#[cfg(unix)]
use socket2::SockRef;

use crate::api::Addr;
#[cfg(unix)]
use crate::notes::NoteQueue;
#[cfg(unix)]
use crate::reactor::conn::Note;
use crate::threads;

/// A socket's descriptor where there is one (unix), nothing elsewhere; so
/// that [`Conn::new`] has one signature on every OS.
#[cfg(unix)]
pub(crate) type SockFd = RawFd;
#[cfg(not(unix))]
pub(crate) type SockFd = ();

/// How a [`Conn`] finds its addresses: the one thing about a connection's
/// socket that callbacks can ask for.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// Reactor, TCP: ask the kernel through the fd, only when asked.
    #[cfg(unix)]
    Tcp,
    /// Reactor, unix socket: the same.
    #[cfg(unix)]
    Unix,
    /// A datagram (both implementations): the loop makes a throw-away `Conn`
    /// for each one, with both addresses known.
    Udp {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// Thread variant: the connection's std stream, shared with its reader
    /// thread (chapter 9).
    Stream(Arc<threads::Sock>),
    /// Thread variant, after a detach: the addresses, read while the loop
    /// still had the stream, which now belongs to your `detached`.
    Known {
        local: Option<Addr>,
        remote: Option<Addr>,
    },
}

/// How a [`Waker`] reaches the loop of its connection.
#[derive(Clone)]
pub(crate) enum WakeVia {
    /// The reactor: the loop's note queue, whose signal interrupts its wait.
    #[cfg(unix)]
    Notes(Arc<NoteQueue<Note>>),
    /// The thread variant: the loop's channel, on which it is blocked.
    Channel(mpsc::Sender<threads::Msg>),
}

// ANCHOR: conn
/// One connection, lent to every callback about it.
pub struct Conn<C> {
    ctx: C,
    /// The socket's descriptor (in the reactor, the loop's key for it).
    #[allow(dead_code)] // read only on unix
    pub(crate) fd: SockFd,
    /// Never given to two connections of one loop, so a stale wake is harmless.
    pub(crate) id: u64,
    addr_index: usize,
    pub(crate) kind: Kind,
    wake: WakeVia,
}
// ANCHOR_END: conn

impl<C: Default> Conn<C> {
    /// A connection whose wakes reach its loop `via` the note queue (the
    /// reactor) or the channel (the thread variant).
    pub(crate) fn new(fd: SockFd, id: u64, addr_index: usize, kind: Kind, wake: WakeVia) -> Self {
        Conn {
            ctx: C::default(),
            fd,
            id,
            addr_index,
            kind,
            wake,
        }
    }
}

impl<C> Conn<C> {
    /// Your state for this connection.
    pub fn context(&self) -> &C {
        &self.ctx
    }

    /// Your state for this connection, to change.
    pub fn context_mut(&mut self) -> &mut C {
        &mut self.ctx
    }

    /// The index, in the list given to `serve`, of the address this
    /// connection came in on.
    pub fn addr_index(&self) -> usize {
        self.addr_index
    }

    /// The connection's file descriptor. It is the loop's: do not close it.
    #[cfg(unix)]
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    #[cfg(unix)]
    fn with_sock<R>(&self, f: impl FnOnce(SockRef<'_>) -> R) -> R {
        // SAFETY: a reactor Conn only exists while its socket is open: the
        // loop lends it to callbacks and closes the fd after the last one.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        f(SockRef::from(&fd))
    }

    /// A reactor address from `getsockname`/`getpeername`.
    #[cfg(unix)]
    fn addr(&self, a: io::Result<socket2::SockAddr>) -> io::Result<Addr> {
        let a = a?;
        Ok(match self.kind {
            Kind::Unix => Addr::Unix(a.as_pathname().map(Into::into).unwrap_or_default()),
            _ => Addr::Tcp(
                a.as_socket()
                    .ok_or_else(|| io::Error::other("not an inet address"))?,
            ),
        })
    }

    /// The address of our end (a `getsockname` call, made only if you ask).
    pub fn local_addr(&self) -> io::Result<Addr> {
        match &self.kind {
            #[cfg(unix)]
            Kind::Tcp | Kind::Unix => self.addr(self.with_sock(|s| s.local_addr())),
            Kind::Udp { local, .. } => Ok(Addr::Udp(*local)),
            Kind::Stream(sock) => sock.local_addr(),
            Kind::Known { local, .. } => local.clone().ok_or_else(unknown),
        }
    }

    /// The address of the peer (a `getpeername` call, made only if you ask).
    pub fn remote_addr(&self) -> io::Result<Addr> {
        match &self.kind {
            #[cfg(unix)]
            Kind::Tcp | Kind::Unix => self.addr(self.with_sock(|s| s.peer_addr())),
            Kind::Udp { remote, .. } => Ok(Addr::Udp(*remote)),
            Kind::Stream(sock) => sock.peer_addr(),
            Kind::Known { remote, .. } => remote.clone().ok_or_else(unknown),
        }
    }

    /// A handle that makes the loop call [`Events::data`](crate::Events::data)
    /// for this connection, with empty input, from any thread.
    pub fn waker(&self) -> Waker {
        Waker {
            via: self.wake.clone(),
            fd: self.fd,
            id: self.id,
        }
    }

    /// Applies TCP keep-alive; ignored for unix and UDP sockets.
    pub(crate) fn set_keep_alive(&self, idle: Duration) {
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(idle);
        // evio ignores this error too: keep-alive is best effort.
        match &self.kind {
            #[cfg(unix)]
            Kind::Tcp => {
                let _ = self.with_sock(|s| s.set_tcp_keepalive(&ka));
            }
            Kind::Stream(sock) => sock.set_keep_alive(&ka),
            _ => {}
        }
    }
}

fn unknown() -> io::Error {
    io::Error::other("address unknown")
}

// ANCHOR: waker
/// Wakes one connection from any thread: evio's `Conn.Wake`.
///
/// Cheap to clone and to keep. A wake for a connection that has closed does
/// nothing, even when a new connection has been given the same fd: the loop
/// checks the id, which it never hands out twice. A wake for a server that
/// has stopped does nothing either.
#[derive(Clone)]
pub struct Waker {
    via: WakeVia,
    /// The reactor's key for the connection (nothing on Windows).
    #[allow(dead_code)] // read only on unix
    fd: SockFd,
    id: u64,
}

impl Waker {
    /// Asks the loop to call `data` with empty input for this connection.
    pub fn wake(&self) -> io::Result<()> {
        match &self.via {
            #[cfg(unix)]
            WakeVia::Notes(notes) => notes.add(Note::Wake {
                fd: self.fd,
                id: self.id,
            }),
            // A send fails only when the loop has ended: nobody to wake.
            WakeVia::Channel(tx) => {
                let _ = tx.send(threads::Msg::Wake { id: self.id });
                Ok(())
            }
        }
    }
}
// ANCHOR_END: waker
