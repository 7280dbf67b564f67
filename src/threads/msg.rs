//! The messages a loop thread of the thread-based variant receives, and
//! what all the threads of a server share.
//!
//! Chapter 9, "The thread-based variant", explains this file. It mirrors
//! evio's `stdloop.ch` (`evio_std.go`) and the types sent on it: `*stdconn`,
//! `*stdin`, `*stderr`, `*stdudpconn`, `wakeReq` and `errClosing`.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{mpsc, Arc};

#[cfg(unix)]
use super::bell::Bell;
use super::reader::{Got, Reader};
use crate::api::{Addr, Limits, Panics};
use crate::conn::{Deliver, SockFd, Wake};
use crate::shared::{Balancer, Counters, Listener, Sock};

// ANCHOR: msg
/// Everything a loop thread learns, it learns from its channel: evio's
/// `stdloop.ch` and the types sent on it. The channel *is* the queue; the
/// loop blocks in `recv` as the reactor blocks in `epoll_wait`.
pub(crate) enum Msg {
    /// A new connection, with its reader thread waiting for a go-ahead
    /// (evio sends the `*stdconn`).
    Accept(NewConn),
    /// Bytes a reader thread read, in a fresh `Vec` (evio's `*stdin`).
    Input { id: u64, data: Vec<u8> },
    /// A reader thread hit end-of-file or an error, and has returned
    /// (evio's `*stderr`).
    Eof { id: u64, err: Option<io::Error> },
    /// A reader thread answered a recall: it is at its gate, having read
    /// nothing (chapter 15).
    Recalled { id: u64 },
    /// A connection's writer thread has written down to the level its loop
    /// asked for (`None`), or a write failed (chapter 15).
    Flushed { id: u64, err: Option<io::Error> },
    /// A datagram from a UDP thread (evio's `*stdudpconn`).
    Datagram {
        li: usize,
        from: std::net::SocketAddr,
        data: Vec<u8>,
    },
    /// `accept` failed: the loop reports it to `accept_error`, so that every
    /// callback runs on a loop thread.
    AcceptError(io::Error),
    /// From a [`Waker`](crate::Waker) (evio's `wakeReq`).
    Wake { id: u64 },
    /// From a [`Writer`](crate::Writer): bytes to write to the connection,
    /// or a close (chapter 13).
    Deliver { id: u64, what: Deliver },
    /// Stop serving: close every connection (a [`Stopper`], or the end of
    /// another loop; evio's `errClosing`).
    Stop,
    /// The accept threads have ended: nothing more will come; return.
    Exit,
}
// ANCHOR_END: msg

impl Msg {
    /// What a reader thread's read becomes on its loop's channel.
    pub(crate) fn read(id: u64, got: Got) -> Msg {
        match got {
            Got::Bytes(data) => Msg::Input { id, data },
            Got::End(err) => Msg::Eof { id, err },
            Got::Recalled => Msg::Recalled { id },
        }
    }
}

// ANCHOR: wake
/// A [`Waker`](crate::Waker) or a [`Writer`](crate::Writer) of the thread
/// variant holds its loop's channel. A send fails only when the loop has
/// ended: nobody to wake or write to.
impl Wake for mpsc::Sender<Msg> {
    fn deliver(&self, _fd: SockFd, id: u64, what: Deliver) -> io::Result<()> {
        let msg = match what {
            Deliver::Wake => Msg::Wake { id },
            what => Msg::Deliver { id, what },
        };
        let _ = self.send(msg);
        Ok(())
    }
}
// ANCHOR_END: wake

/// A connection on its way from the accept thread to its loop.
pub(crate) struct NewConn {
    pub(crate) id: u64,
    /// The index of the listener it came in on.
    pub(crate) li: usize,
    pub(crate) sock: Arc<Sock>,
    /// Its reader thread, started and waiting for the loop's go-ahead.
    pub(crate) reader: Reader,
}

/// What the loops, the accept threads and the reader threads share.
pub(crate) struct Shared {
    pub(crate) listeners: Vec<Listener>,
    /// The bound addresses, for a datagram's `local_addr`.
    pub(crate) addrs: Vec<Addr>,
    /// Each loop's channel.
    pub(crate) loops: Vec<mpsc::Sender<Msg>>,
    pub(crate) balancer: Balancer,
    /// The id of the next connection; ids are never reused, so a stale
    /// waker reaches nobody.
    pub(crate) next_id: AtomicU64,
    /// Set before the accept threads are woken to make them return.
    pub(crate) stopping: AtomicBool,
    /// The output limit of each connection's writers.
    pub(crate) writer_limit: usize,
    /// Each loop's counters, which `Server::stats` reads (chapter 13).
    pub(crate) counters: Arc<[Counters]>,
    /// What one connection may cost (chapter 15).
    pub(crate) limits: Limits,
    /// What a panic in a connection's callback does (chapter 15).
    pub(crate) panics: Panics,
    /// Connections open in all loops, for `limits.max_connections`.
    pub(crate) open: AtomicUsize,
    /// Connections closed at once because `open` was at the limit.
    pub(crate) rejected: Arc<AtomicU64>,
    /// Rung once to make every accept thread return (chapter 15).
    #[cfg(unix)]
    pub(crate) stop_bell: Bell,
}
