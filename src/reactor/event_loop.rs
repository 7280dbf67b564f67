//! One event loop: wait, drain notes, tick, handle each ready descriptor.
//!
//! Chapter 5, "The loop and its dispatch", explains this file; chapter 6
//! explains [`Loop::accept`], chapter 8 the tick, UDP, detach and the closing
//! of every connection at the end. It mirrors evio's `loopRun`, `loopAccept`,
//! `loopUDPRead`, `loopNote`, `loopTicker`, `loopCloseConn` and
//! `loopDetachConn` (`evio_unix.go`).
//!
//! The loop owns its connections, in a table indexed by fd (evio uses a map),
//! and carries out what the dispatch decides.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::balance;
use super::conn::{Conn, Kind, Note, WakeVia};
use super::dispatch::{self, ConnIo, ConnState, Outcome};
use super::listener::{Listener, Sock};
use super::Shared;
use crate::api::{Action, Events, Flow, LoadBalance};
use crate::notes::NoteQueue;
use crate::poll::{Event, Interest, Poll};

/// The size of each loop's read buffer, shared by all its connections:
/// evio's 64 KiB (`0xFFFF`).
const READ_BUFFER: usize = 64 * 1024;

impl ConnIo for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
}

/// A connection as the loop keeps it.
struct Slot<C> {
    conn: Conn<C>,
    state: ConnState,
    sock: Sock,
}

// ANCHOR: loop_struct
/// One event loop and everything only it touches.
pub(crate) struct Loop<'s, E: Events, P: Poll> {
    idx: usize,
    poll: P,
    notes: Arc<NoteQueue<Note>>,
    shared: &'s Shared,
    events: &'s E,
    /// The read buffer, lent to `data` as `&[u8]`.
    buf: Vec<u8>,
    /// Connections by fd. Fds are small integers the kernel hands out
    /// lowest-first, so a vector is a dense, fast map.
    slots: Vec<Option<Slot<E::Context>>>,
    /// The id of the last connection accepted; ids are never reused.
    last_id: u64,
    /// Reply buffer for UDP datagrams.
    udp_out: Vec<u8>,
    /// An fd held in reserve for running out of fds (see `shed`).
    spare: Option<OwnedFd>,
}
// ANCHOR_END: loop_struct

/// Opens `/dev/null` as a spare file descriptor.
fn open_spare() -> Option<OwnedFd> {
    // SAFETY: a constant C string; the fd is owned at once.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

impl<'s, E: Events, P: Poll> Loop<'s, E, P> {
    pub(crate) fn new(
        idx: usize,
        poll: P,
        notes: Arc<NoteQueue<Note>>,
        shared: &'s Shared,
        events: &'s E,
    ) -> Self {
        Loop {
            idx,
            poll,
            notes,
            shared,
            events,
            buf: vec![0; READ_BUFFER],
            slots: Vec::new(),
            last_id: 0,
            udp_out: Vec::new(),
            spare: open_spare(),
        }
    }

    // ANCHOR: run
    /// Runs until a stop note, a `Shutdown` action, or a poller error; then
    /// closes every connection it holds.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut ready: Vec<Event> = Vec::new();
        let mut notes = Vec::new();
        // Loop 0 ticks, first right away (evio's `loopTicker`). The wait's
        // timeout is the time to the next tick; with no tick the loop sleeps
        // until something happens, instead of evio's 100 ms polling.
        let mut next_tick = (self.idx == 0).then(Instant::now);
        let result = 'run: loop {
            let timeout = next_tick.map(|t| t.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.wait(&mut ready, timeout) {
                break Err(e);
            }
            // 1. Notes first, as in evio's `Poll.Wait`.
            self.notes.swap(&mut notes);
            for note in notes.drain(..) {
                let flow = match note {
                    Note::Stop => Flow::Stop,
                    Note::Wake { fd, id } => self.wake(fd, id),
                };
                if flow == Flow::Stop {
                    break 'run Ok(());
                }
            }
            // 2. The tick, if due.
            if next_tick.is_some_and(|t| t <= Instant::now()) {
                let (delay, action) = self.events.tick();
                next_tick = delay.map(|d| Instant::now() + d);
                if action == Action::Shutdown {
                    break 'run Ok(());
                }
            }
            // 3. Every ready descriptor.
            for ev in &ready {
                if self.ready(ev.fd) == Flow::Stop {
                    break 'run Ok(());
                }
            }
        };
        self.close_all();
        result
    }
    // ANCHOR_END: run

    // ANCHOR: loop_ready
    /// A ready fd: a listener if no connection has it, else dispatch.
    fn ready(&mut self, fd: RawFd) -> Flow {
        let Some(slot) = self.slots.get_mut(fd as usize).and_then(Option::as_mut) else {
            return match self.shared.listeners.iter().position(|l| l.fd() == fd) {
                Some(i) => self.accept(i),
                None => Flow::Go,
            };
        };
        let outcome = dispatch::ready(
            self.events,
            &mut self.poll,
            &mut slot.conn,
            &mut slot.state,
            &mut slot.sock,
            &mut self.buf,
        );
        self.finish(fd, outcome)
    }

    /// Carries out what the dispatch decided.
    fn finish(&mut self, fd: RawFd, outcome: Outcome) -> Flow {
        match outcome {
            Outcome::Continue => Flow::Go,
            Outcome::Close(err) => self.close(fd, err),
            Outcome::Detach => self.detach(fd),
            Outcome::Shutdown => Flow::Stop,
        }
    }
    // ANCHOR_END: loop_ready

    // ANCHOR: loop_wake
    /// A wake note: dispatch to `data` if the connection is still the one
    /// the waker was made for.
    fn wake(&mut self, fd: RawFd, id: u64) -> Flow {
        // No slot, or another connection's (closed since, fd reused): drop it.
        let Some(slot) = super::conn::wake_target(&mut self.slots, fd, id, |s| s.conn.id) else {
            return Flow::Go;
        };
        let outcome = dispatch::wake(self.events, &mut self.poll, &mut slot.conn, &mut slot.state);
        self.finish(fd, outcome)
    }
    // ANCHOR_END: loop_wake

    /// Reports an accept error; `Shutdown` from the callback stops the loop.
    fn report(&self, err: &io::Error) -> Flow {
        Flow::after(self.events.accept_error(err))
    }

    // ANCHOR: accept
    /// The listener `li` is readable (evio's `loopAccept`).
    fn accept(&mut self, li: usize) -> Flow {
        let shared = self.shared;
        let loops = shared.counts.len();
        let turn = shared.turn.load(Ordering::SeqCst);
        let count = |i: usize| shared.counts[i].load(Ordering::SeqCst);
        if !balance::may_accept(shared.balance, self.idx, loops, turn, count) {
            // Level-triggered: this loop is woken again while the
            // connection waits (evio's weakness 2, the refusal spin).
            return Flow::Go;
        }
        let listener = &shared.listeners[li];
        if let Listener::Udp(_) = listener {
            return self.udp_read(li);
        }
        let sock = match listener.accept() {
            Ok(sock) => sock,
            Err(e) => {
                return match e.raw_os_error() {
                    Some(libc::EAGAIN | libc::EINTR | libc::ECONNABORTED) => Flow::Go,
                    Some(libc::EMFILE | libc::ENFILE) => {
                        self.shed(listener);
                        self.report(&e)
                    }
                    _ => self.report(&e),
                };
            }
        };
        if shared.balance == LoadBalance::RoundRobin {
            shared.turn.fetch_add(1, Ordering::SeqCst);
        }
        let fd = sock.fd();
        let kind = match sock {
            Sock::Tcp(_) => Kind::Tcp,
            Sock::Unix(_) => Kind::Unix,
        };
        if let Err(e) = self.poll.add(fd, Interest::READ_WRITE) {
            return self.report(&e); // `sock` is dropped: the fd is closed
        }
        shared.counts[self.idx].fetch_add(1, Ordering::SeqCst);
        self.last_id += 1;
        let conn = Conn::new(
            fd,
            self.last_id,
            li,
            kind,
            WakeVia::Notes(self.notes.clone()),
        );
        if self.slots.len() <= fd as usize {
            self.slots.resize_with(fd as usize + 1, || None);
        }
        self.slots[fd as usize] = Some(Slot {
            conn,
            state: ConnState::new(),
            sock,
        });
        Flow::Go
    }
    // ANCHOR_END: accept

    // ANCHOR: shed
    /// Out of file descriptors: the pending connection cannot be accepted,
    /// and since the listener is level-triggered every wait would report it
    /// again, spinning the loop (evio stops the server instead: weakness 5).
    /// Close the spare fd, accept the connection with it and close it at
    /// once, then take the spare back. The client sees a closed connection
    /// rather than a hang, and the loop goes on. (libev and Node do the same.)
    fn shed(&mut self, listener: &Listener) {
        self.spare = None;
        if let Ok(sock) = listener.accept() {
            drop(sock);
        }
        self.spare = open_spare();
    }
    // ANCHOR_END: shed

    // ANCHOR: udp
    /// A datagram arrived (evio's `loopUDPRead`): one `data` call with a
    /// throw-away `Conn`, its reply sent back with one `sendto`.
    fn udp_read(&mut self, li: usize) -> Flow {
        let Listener::Udp(socket) = &self.shared.listeners[li] else {
            return Flow::Go;
        };
        let (n, remote) = match socket.recv_from(&mut self.buf) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Go,
            Err(e) => return self.report(&e),
        };
        if n == 0 {
            // An empty datagram would reach `data` as empty input, which
            // means "woken". evio drops empty datagrams; so do we.
            return Flow::Go;
        }
        if self.shared.balance == LoadBalance::RoundRobin {
            self.shared.turn.fetch_add(1, Ordering::SeqCst);
        }
        // The bound address, known since `bind`: no `getsockname` per datagram.
        let local = self.shared.addrs[li].socket_addr().unwrap_or(remote);
        let kind = Kind::Udp { local, remote };
        let mut conn: Conn<E::Context> = Conn::new(
            socket.as_raw_fd(),
            0,
            li,
            kind,
            WakeVia::Notes(self.notes.clone()),
        );
        self.udp_out.clear();
        let action = self
            .events
            .data(&mut conn, &self.buf[..n], &mut self.udp_out);
        if !self.udp_out.is_empty() {
            self.events.pre_write();
            // A datagram that cannot be sent is dropped, as UDP allows.
            let _ = socket.send_to(&self.udp_out, remote);
        }
        Flow::after(action)
    }
    // ANCHOR_END: udp

    // ANCHOR: close
    // ANCHOR: close_conn
    /// Closes a connection (evio's `loopCloseConn`). Closing the fd also
    /// removes it from epoll, so no `epoll_ctl` is needed.
    fn close(&mut self, fd: RawFd, err: Option<io::Error>) -> Flow {
        let Some(Slot { mut conn, sock, .. }) = self.slots[fd as usize].take() else {
            return Flow::Go;
        };
        self.shared.counts[self.idx].fetch_sub(1, Ordering::SeqCst);
        // `closed` may still ask for the addresses, which `Conn` reads
        // through the fd: close it after the callback, not before (evio
        // closes first, but it copied the addresses when the conn opened).
        let flow = Flow::after(self.events.closed(&mut conn, err));
        drop(sock);
        flow
    }
    // ANCHOR_END: close_conn

    // ANCHOR: detach
    /// Hands a connection over (evio's `loopDetachConn`): out of the poller,
    /// back to blocking mode, wrapped in a std stream. `closed` is not called.
    fn detach(&mut self, fd: RawFd) -> Flow {
        let Some(Slot { mut conn, sock, .. }) = self.slots[fd as usize].take() else {
            return Flow::Go;
        };
        self.shared.counts[self.idx].fetch_sub(1, Ordering::SeqCst);
        let blocking = match &sock {
            Sock::Tcp(s) => s.set_nonblocking(false),
            Sock::Unix(s) => s.set_nonblocking(false),
        };
        let _ = self.poll.delete(fd);
        let action = match blocking {
            Ok(()) => self.events.detached(&mut conn, sock.into_stream()),
            // `sock` is dropped (closed) after `closed`, as in `close`.
            Err(e) => self.events.closed(&mut conn, Some(e)),
        };
        Flow::after(action)
    }
    // ANCHOR_END: detach

    // ANCHOR: close_all
    /// Closes every connection at the end; each gets `closed`.
    fn close_all(&mut self) {
        for fd in 0..self.slots.len() {
            if self.slots[fd].is_some() {
                self.close(fd as RawFd, None);
            }
        }
    }
    // ANCHOR_END: close_all
    // ANCHOR_END: close
}
