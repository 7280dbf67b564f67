//! A connection as your callbacks see it: [`Conn`], and its [`Waker`].
//!
//! Chapter 2, "The API", explains [`Conn`]; chapter 4, "Wake-ups", explains
//! [`Waker`]. They mirror evio's `Conn` interface (`Context`, `SetContext`,
//! `AddrIndex`, `LocalAddr`, `RemoteAddr`, `Wake`) and its `conn` struct in
//! `evio_unix.go`. The context is a typed field rather than an `interface{}`,
//! and a wake names the connection by fd *and* a per-loop id, so a wake for a
//! connection that has closed cannot reach a new one that got the same fd.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use socket2::SockRef;

use crate::api::Addr;
use crate::notes::NoteQueue;
use std::sync::Arc;

// ANCHOR: note
/// What other threads send a loop through its note queue (evio's notes are
/// an `interface{}`: a duration, an error, or a conn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// Call `data` with no input for the connection with this fd and id.
    Wake { fd: RawFd, id: u64 },
    /// End the loop (from [`crate::Stopper`] or another loop's shutdown).
    Stop,
}
// ANCHOR_END: note

/// Which kind of socket a [`Conn`] is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Tcp,
    Unix,
    /// A datagram: the loop makes a throw-away `Conn` for each one.
    Udp {
        local: SocketAddr,
        remote: SocketAddr,
    },
}

// ANCHOR: conn
/// One connection, lent to every callback about it.
pub struct Conn<C> {
    ctx: C,
    pub(crate) fd: RawFd,
    pub(crate) id: u64,
    addr_index: usize,
    kind: Kind,
    notes: Arc<NoteQueue<Note>>,
}
// ANCHOR_END: conn

impl<C: Default> Conn<C> {
    pub(crate) fn new(
        fd: RawFd,
        id: u64,
        addr_index: usize,
        kind: Kind,
        notes: Arc<NoteQueue<Note>>,
    ) -> Self {
        Conn {
            ctx: C::default(),
            fd,
            id,
            addr_index,
            kind,
            notes,
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
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    fn with_sock<R>(&self, f: impl FnOnce(SockRef<'_>) -> R) -> R {
        // SAFETY: a Conn only exists while its socket is open: the loop lends
        // it to callbacks and closes the fd only after the last one returns.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        f(SockRef::from(&fd))
    }

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
        match self.kind {
            Kind::Udp { local, .. } => Ok(Addr::Udp(local)),
            _ => self.addr(self.with_sock(|s| s.local_addr())),
        }
    }

    /// The address of the peer (a `getpeername` call, made only if you ask).
    pub fn remote_addr(&self) -> io::Result<Addr> {
        match self.kind {
            Kind::Udp { remote, .. } => Ok(Addr::Udp(remote)),
            _ => self.addr(self.with_sock(|s| s.peer_addr())),
        }
    }

    /// A handle that makes the loop call [`Events::data`](crate::Events::data)
    /// for this connection, with empty input, from any thread.
    pub fn waker(&self) -> Waker {
        Waker {
            notes: self.notes.clone(),
            fd: self.fd,
            id: self.id,
        }
    }

    /// Applies TCP keep-alive; ignored for unix and UDP sockets.
    pub(crate) fn set_keep_alive(&self, idle: Duration) {
        if let Kind::Tcp = self.kind {
            let ka = socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(idle);
            // evio ignores this error too: keep-alive is best effort.
            let _ = self.with_sock(|s| s.set_tcp_keepalive(&ka));
        }
    }
}

// ANCHOR: waker
/// Wakes one connection from any thread: evio's `Conn.Wake`.
///
/// Cheap to clone and to keep. A wake for a connection that has closed does
/// nothing, even when a new connection has been given the same fd: the loop
/// checks the id, which it never hands out twice.
#[derive(Clone)]
pub struct Waker {
    notes: Arc<NoteQueue<Note>>,
    fd: RawFd,
    id: u64,
}

impl Waker {
    /// Asks the loop to call `data` with empty input for this connection.
    pub fn wake(&self) -> io::Result<()> {
        self.notes.add(Note::Wake {
            fd: self.fd,
            id: self.id,
        })
    }
}
// ANCHOR_END: waker
