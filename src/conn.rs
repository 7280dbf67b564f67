//! A connection as your callbacks see it: [`Conn`], and its [`Waker`], the
//! same two types for every engine of the library.
//!
//! Chapter 2, "The API", explains [`Conn`]; chapter 4, "Wake-ups", explains
//! [`Waker`]; chapter 9, "The thread-based variant", explains how two
//! engines share them. They mirror evio's `Conn` interface (`Context`,
//! `SetContext`, `AddrIndex`, `LocalAddr`, `RemoteAddr`, `Wake`), which evio
//! implements twice: by `conn` in `evio_unix.go` and by `stdconn` in
//! `evio_std.go`. Here one struct serves every engine, and it names none of
//! them: what differs between engines comes in through two small traits, as
//! std's `task::Waker` hides the executor behind it.
//!
//! - [`Ends`]: how a connection finds its addresses (ask the kernel through
//!   the fd, ask the engine's socket object, or they are known already).
//! - [`Wake`]: how a wake reaches the connection's loop (the reactor's note
//!   queue, the thread variant's channel, ...).
//!
//! The context is a typed field rather than an `interface{}`, and a wake
//! names the connection by an id its loop never hands out twice (plus its
//! fd, in the reactor), so a wake for a connection that has closed cannot
//! reach a new one.

use std::io;
use std::time::{Duration, Instant};

#[cfg(unix)]
use std::os::fd::{BorrowedFd, RawFd};

#[cfg(unix)]
use socket2::SockRef;

use crate::api::{Addr, DEFAULT_WRITER_LIMIT};
// The budget's counters are loom's under `--cfg loom`, for chapter 11's
// style of model (`tests/ch13_loom_writer.rs`); the `Arc`s stay std's,
// since loom's cannot hold a `dyn Wake`.
use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A socket's descriptor where there is one (unix), nothing elsewhere; so
/// that [`Conn::new`] has one signature on every OS.
#[cfg(unix)]
pub(crate) type SockFd = RawFd;
#[cfg(not(unix))]
pub(crate) type SockFd = ();

// ANCHOR: engine_traits
/// An engine's socket, as a [`Conn`] asks it for its addresses.
pub(crate) trait Peer: Send + Sync {
    /// The address of our end.
    fn local_addr(&self) -> io::Result<Addr>;
    /// The address of the other end.
    fn peer_addr(&self) -> io::Result<Addr>;
    /// Turns on TCP keep-alive; nothing for other sockets. Best effort.
    fn set_keep_alive(&self, keepalive: &socket2::TcpKeepalive);
}

/// How a [`Conn`] finds its addresses: the one thing about a connection's
/// socket that callbacks can ask for.
#[derive(Clone)]
pub(crate) enum Ends {
    /// Ask the kernel through the connection's fd, only when asked
    /// (`getsockname`, `getpeername`). `unix`: a unix socket, else TCP.
    #[cfg(unix)]
    Fd { unix: bool },
    /// Ask the engine's socket object, shared with the engine.
    Socket(Arc<dyn Peer>),
    /// Known already: a datagram's two ends, or a connection that has left
    /// its loop (the stream belongs to `detached` now).
    Known {
        local: Option<Addr>,
        remote: Option<Addr>,
    },
}

/// What another thread asks a connection's loop to do for it.
#[derive(Debug)]
pub enum Deliver {
    /// Call `data` with empty input ([`Waker::wake`]).
    Wake,
    /// Append these bytes to the connection's output ([`Writer::write`]).
    Write(Vec<u8>),
    /// Close the connection once its output is written ([`Writer::close`]).
    Close,
}

/// How a [`Waker`] or a [`Writer`] reaches the loop of its connection. Each
/// engine implements it for its own queue or channel.
pub trait Wake: Send + Sync {
    /// Hands `what` to the loop, for the connection `(fd, id)`; the loop
    /// drops it if that connection has gone.
    fn deliver(&self, fd: SockFd, id: u64, what: Deliver) -> io::Result<()>;
}
// ANCHOR_END: engine_traits

// ANCHOR: budget
/// How much output a connection may hold for its [`Writer`]s: the bytes
/// queued on their way to the loop, plus the output the loop has not
/// written yet, which the loop publishes after each step. Shared by the
/// connection's writers and its loop.
#[derive(Debug)]
pub struct Budget {
    /// Bytes written by handles that the loop has not taken yet.
    queued: AtomicUsize,
    /// The connection has left its loop: writes do nothing.
    gone: AtomicBool,
    /// The connection's pending output, as the loop last saw it.
    unsent: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            queued: AtomicUsize::new(0),
            gone: AtomicBool::new(false),
            unsent: AtomicUsize::new(0),
            limit,
        }
    }

    /// Whether the connection has left its loop.
    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }

    /// Reserves room for `n` bytes, or says the connection is over its
    /// limit (a peer that does not read, most likely).
    pub fn reserve(&self, n: usize) -> io::Result<()> {
        let before = self.queued.fetch_add(n, Ordering::SeqCst);
        if before + n + self.unsent.load(Ordering::SeqCst) > self.limit {
            self.queued.fetch_sub(n, Ordering::SeqCst);
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "connection output over its limit of {} bytes (the peer is not reading?)",
                    self.limit
                ),
            ));
        }
        Ok(())
    }

    /// The loop has taken `n` queued bytes into the connection's output.
    pub fn taken(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::SeqCst);
    }

    /// The loop's connection has `n` bytes of output not written yet.
    pub fn unsent(&self, n: usize) {
        self.unsent.store(n, Ordering::SeqCst);
    }
}
// ANCHOR_END: budget

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
    pub(crate) ends: Ends,
    /// `None` for a datagram: there is no connection to wake.
    wake: Option<Arc<dyn Wake>>,
    /// The output limit of this connection's [`Writer`]s, made with the
    /// first of them (`Config::writer_limit`).
    pub(crate) budget: Option<Arc<Budget>>,
    writer_limit: usize,
    /// When the loop closes the connection unless a callback moves it.
    deadline: Option<Instant>,
}
// ANCHOR_END: conn

impl<C: Default> Conn<C> {
    /// A connection whose addresses come from `ends` and whose wakes go
    /// through `wake`, with a fresh context.
    pub(crate) fn new(
        fd: SockFd,
        id: u64,
        addr_index: usize,
        ends: Ends,
        wake: Option<Arc<dyn Wake>>,
    ) -> Self {
        Conn {
            ctx: C::default(),
            fd,
            id,
            addr_index,
            ends,
            wake,
            budget: None,
            writer_limit: DEFAULT_WRITER_LIMIT,
            deadline: None,
        }
    }

    /// Sets the limit of this connection's writers (before any is made).
    pub(crate) fn with_writer_limit(mut self, limit: usize) -> Self {
        self.writer_limit = limit;
        self
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

    // ANCHOR: set_deadline
    /// Closes the connection at `at` (its `closed` gets a `TimedOut`
    /// error) unless a callback moves or clears (`None`) the deadline
    /// before then. For timeouts of your protocol: how long an HTTP client
    /// may take to send a whole request head, for instance (chapter 15).
    /// The server's own timeouts are in [`Limits`](crate::Limits).
    pub fn set_deadline(&mut self, at: Option<Instant>) {
        self.deadline = at;
    }
    // ANCHOR_END: set_deadline

    /// The deadline set with [`Conn::set_deadline`], if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
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
        // SAFETY: a Conn with `Ends::Fd` only exists while its socket is
        // open: the loop lends it to callbacks and closes the fd after the
        // last one.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        f(SockRef::from(&fd))
    }

    /// An address from `getsockname`/`getpeername`.
    #[cfg(unix)]
    fn fd_addr(unix: bool, a: io::Result<socket2::SockAddr>) -> io::Result<Addr> {
        let a = a?;
        if unix {
            return Ok(Addr::Unix(
                a.as_pathname().map(Into::into).unwrap_or_default(),
            ));
        }
        let ip = a.as_socket().map(crate::addr::canonical);
        Ok(Addr::Tcp(
            ip.ok_or_else(|| io::Error::other("not an inet address"))?,
        ))
    }

    /// The address of our end (a `getsockname` call, made only if you ask).
    pub fn local_addr(&self) -> io::Result<Addr> {
        match &self.ends {
            #[cfg(unix)]
            Ends::Fd { unix } => Self::fd_addr(*unix, self.with_sock(|s| s.local_addr())),
            Ends::Socket(peer) => peer.local_addr(),
            Ends::Known { local, .. } => local.clone().ok_or_else(unknown),
        }
    }

    /// The address of the peer (a `getpeername` call, made only if you ask).
    pub fn remote_addr(&self) -> io::Result<Addr> {
        match &self.ends {
            #[cfg(unix)]
            Ends::Fd { unix } => Self::fd_addr(*unix, self.with_sock(|s| s.peer_addr())),
            Ends::Socket(peer) => peer.peer_addr(),
            Ends::Known { remote, .. } => remote.clone().ok_or_else(unknown),
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

    /// A handle that writes to this connection, or closes it, from any
    /// thread: in order with the loop's own output, and bounded (see
    /// [`Writer::write`]).
    pub fn writer(&mut self) -> Writer {
        let limit = self.writer_limit;
        let budget = self
            .budget
            .get_or_insert_with(|| Arc::new(Budget::new(limit)));
        Writer {
            via: self.wake.clone(),
            fd: self.fd,
            id: self.id,
            budget: budget.clone(),
        }
    }

    /// The connection has left its loop (closed or detached): its writers'
    /// writes do nothing from now on.
    pub(crate) fn gone(&self) {
        if let Some(budget) = &self.budget {
            budget.gone.store(true, Ordering::SeqCst);
        }
    }

    /// Applies TCP keep-alive; ignored for unix and UDP sockets. evio
    /// ignores the error too: keep-alive is best effort.
    pub(crate) fn set_keep_alive(&self, idle: Duration) {
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(idle);
        match &self.ends {
            #[cfg(unix)]
            Ends::Fd { unix: false } => {
                let _ = self.with_sock(|s| s.set_tcp_keepalive(&ka));
            }
            Ends::Socket(peer) => peer.set_keep_alive(&ka),
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
    via: Option<Arc<dyn Wake>>,
    /// The reactor's key for the connection (nothing on Windows).
    fd: SockFd,
    id: u64,
}

impl Waker {
    /// Asks the loop to call `data` with empty input for this connection.
    pub fn wake(&self) -> io::Result<()> {
        match &self.via {
            Some(via) => via.deliver(self.fd, self.id, Deliver::Wake),
            None => Ok(()),
        }
    }
}
// ANCHOR_END: waker

// ANCHOR: writer
/// Writes to one connection, or closes it, from any thread: what evio never
/// had (chapter 13). Cheap to clone and to keep, and harmless after the
/// connection has closed, like a [`Waker`].
///
/// Bytes go to the connection's loop as a note and are appended to the
/// connection's output there, so they reach the peer whole, after whatever
/// the loop had written for the connection before, and in the order each
/// thread wrote them. Writes from different threads interleave only as
/// whole writes.
#[derive(Clone)]
pub struct Writer {
    via: Option<Arc<dyn Wake>>,
    fd: SockFd,
    id: u64,
    budget: Arc<Budget>,
}

impl Writer {
    /// A writer on its own, outside any loop: for chapter 13's loom model
    /// (`evio::internals::writer`).
    #[doc(hidden)]
    pub fn for_model(via: Arc<dyn Wake>, id: u64, limit: usize) -> Writer {
        Writer {
            via: Some(via),
            fd: Default::default(),
            id,
            budget: Arc::new(Budget::new(limit)),
        }
    }

    /// The writer's budget, for the model to play the loop's part.
    #[doc(hidden)]
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Queues `bytes` for the connection. Fails, queueing nothing, with
    /// `WouldBlock` when the connection's output (what the loop has not
    /// written yet, plus what writers have queued) would go over its limit:
    /// a peer that does not read cannot make the server grow without bound.
    /// Succeeds and does nothing once the connection has closed.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let Some(via) = &self.via else { return Ok(()) };
        if self.budget.is_gone() {
            return Ok(());
        }
        self.budget.reserve(bytes.len())?;
        let sent = via.deliver(self.fd, self.id, Deliver::Write(bytes.to_vec()));
        if sent.is_err() {
            self.budget.taken(bytes.len());
        }
        sent
    }

    /// Closes the connection once the output queued before has been
    /// written, as if a callback had returned [`Action::Close`](crate::Action::Close).
    pub fn close(&self) -> io::Result<()> {
        match &self.via {
            Some(via) => via.deliver(self.fd, self.id, Deliver::Close),
            None => Ok(()),
        }
    }
}
// ANCHOR_END: writer
