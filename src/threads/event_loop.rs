//! One loop thread of the thread-based variant: it receives from its
//! channel and runs the callbacks, writing replies as it goes.
//!
//! Chapter 9, "The thread-based variant", explains this file. It mirrors
//! evio's `stdloopRun` and the functions it calls (`evio_std.go`):
//! `stdloopAccept` (here `accept`), `stdloopRead` (`input` and `wake`),
//! `stdloopReadUDP` (`datagram`), `stdloopError` (`eof`), `stdloopClose`,
//! `stdloopDetach`, and `stdloopEgress` (the end of `run`).
//!
//! What differs from the reactor's loop (chapter 5): nothing here reads a
//! socket (reader threads do), nothing is registered with a poller, and a
//! reply is written at once, with a *blocking* write. So a loop never holds
//! output for later: no write interest, no pending buffer per connection,
//! one output buffer per loop. The price: while one client is slow to read
//! a big reply, every other connection of this loop waits (head-of-line
//! blocking), and so does a `Stopper`.

use std::collections::HashMap;
use std::io;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use super::msg::{Msg, NewConn, Shared};
use super::reader::Reader;
use crate::api::{Action, Flow};
use crate::conn::{Conn, Deliver, Ends, Peer, Wake};
use crate::events::Events;
use crate::shared::{self, Count, Listener, Report, Sock};

/// A loop's output buffer is kept for the next reply while its capacity is
/// at most this; a bigger one (after a big reply) is freed.
const KEEP_OUTPUT_CAPACITY: usize = 64 * 1024;

/// A connection as its loop keeps it.
struct Slot<C> {
    conn: Conn<C>,
    sock: Arc<Sock>,
    /// `None` once the reader has been finished (detach).
    reader: Option<Reader>,
    /// A permit is out: the reader may be blocked in `read` right now.
    reading: bool,
    /// An action that waits for the reader to come back (a `Detach` asked
    /// for by a wake while the reader was in `read`).
    pending: Action,
}

/// One loop thread and everything only it touches.
pub(crate) struct Loop<'s, E: Events> {
    idx: usize,
    rx: mpsc::Receiver<Msg>,
    /// Our own channel's sending end, as the wakers of our connections hold it.
    wake: Arc<dyn Wake>,
    shared: &'s Shared,
    events: &'s E,
    /// Connections by id (ids are unique in the server).
    conns: HashMap<u64, Slot<E::Context>>,
    /// The reply being built; written before the next message is looked at.
    out: Vec<u8>,
}

impl<'s, E: Events> Loop<'s, E> {
    pub(crate) fn new(
        idx: usize,
        rx: mpsc::Receiver<Msg>,
        shared: &'s Shared,
        events: &'s E,
    ) -> Self {
        Loop {
            idx,
            rx,
            wake: Arc::new(shared.loops[idx].clone()),
            shared,
            events,
            conns: HashMap::new(),
            out: Vec::new(),
        }
    }

    // ANCHOR: run
    /// Serves until a stop message or a `Shutdown`, closes every connection,
    /// reports to `Server::run`, then drops whatever still arrives until
    /// `Exit` (evio's `stdloopEgress`).
    pub(crate) fn run(mut self, report: &Report) {
        let exit = self.serve();
        self.close_all();
        report.send(Ok(()));
        if exit {
            return;
        }
        // Connections the accept threads sent before they stopped: dropping
        // a `NewConn` stops its reader and closes its socket.
        for msg in self.rx.iter() {
            if let Msg::Exit = msg {
                break;
            }
        }
    }

    /// evio's `stdloopRun`, with the tick in the same thread: loop 0 waits
    /// for a message *or* the next tick, whichever comes first, with
    /// `recv_timeout`. evio runs a ticker goroutine and a second channel.
    /// Returns whether the message that ended it was the final `Exit`.
    fn serve(&mut self) -> bool {
        let mut next_tick = (self.idx == 0).then(Instant::now);
        loop {
            if next_tick.is_some_and(|at| at <= Instant::now()) {
                let (delay, action) = self.events.tick();
                next_tick = delay.map(|d| Instant::now() + d);
                if action == Action::Shutdown {
                    return false;
                }
                continue;
            }
            let msg = match next_tick {
                None => self.rx.recv().map_err(|_| ()),
                Some(at) => match self
                    .rx
                    .recv_timeout(at.saturating_duration_since(Instant::now()))
                {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    other => other.map_err(|_| ()),
                },
            };
            // Err: every sender is gone, which `Server::run` never allows.
            let Ok(msg) = msg else { return true };
            let exit = matches!(msg, Msg::Exit);
            if self.handle(msg) == Flow::Stop {
                return exit;
            }
        }
    }
    // ANCHOR_END: run

    // ANCHOR: handle
    /// One message: evio's `switch v := v.(type)` in `stdloopRun`.
    fn handle(&mut self, msg: Msg) -> Flow {
        self.count(&msg);
        match msg {
            Msg::Accept(new) => self.accept(new),
            Msg::Input { id, data } => self.input(id, &data),
            Msg::Eof { id, err } => self.eof(id, err),
            Msg::Wake { id } => self.wake(id),
            Msg::Deliver { id, what } => self.deliver(id, what),
            Msg::Datagram { li, from, data } => self.datagram(li, from, &data),
            Msg::AcceptError(err) => Flow::after(self.events.accept_error(&err)),
            Msg::Stop | Msg::Exit => Flow::Stop,
        }
    }
    // ANCHOR_END: handle

    /// Counts a message for `Server::stats` (chapter 13): each is a return
    /// from the channel's wait; a reader's bytes are one read.
    fn count(&self, msg: &Msg) {
        let c = &self.shared.counters[self.idx];
        c.add(Count::Waits, 1);
        match msg {
            Msg::Accept(_) => c.add(Count::Accepts, 1),
            Msg::Input { data, .. } => {
                c.add(Count::Reads, 1);
                c.add(Count::BytesIn, data.len() as u64);
            }
            Msg::Eof { .. } => c.add(Count::Reads, 1),
            Msg::Wake { .. } | Msg::Deliver { .. } | Msg::Stop => c.add(Count::Notes, 1),
            Msg::Datagram { .. } | Msg::AcceptError(_) | Msg::Exit => {}
        }
    }

    // ANCHOR: accept
    /// A new connection (evio's `stdloopAccept`): `opened`, its greeting
    /// written, its action taken; then the reader may start.
    fn accept(&mut self, new: NewConn) -> Flow {
        let NewConn {
            id,
            li,
            sock,
            reader,
        } = new;
        let ends = Ends::Socket(sock.clone());
        let conn = Conn::new(sock.fd(), id, li, ends, Some(self.wake.clone()))
            .with_writer_limit(self.shared.writer_limit);
        let slot = Slot {
            conn,
            sock,
            reader: Some(reader),
            reading: false,
            pending: Action::None,
        };
        let slot = self.conns.entry(id).or_insert(slot);
        self.out.clear();
        let (options, action) = self.events.opened(&mut slot.conn, &mut self.out);
        if let Some(idle) = options.tcp_keep_alive {
            slot.conn.set_keep_alive(idle);
        }
        self.respond(id, action)
    }
    // ANCHOR_END: accept

    // ANCHOR: input
    /// Bytes from the reader (evio's `stdloopRead`). The reader is back at
    /// its gate, waiting for the next permit.
    fn input(&mut self, id: u64, data: &[u8]) -> Flow {
        let Some(slot) = self.conns.get_mut(&id) else {
            return Flow::Go; // closed since the reader sent it
        };
        slot.reading = false;
        self.out.clear();
        let action = self.events.data(&mut slot.conn, data, &mut self.out);
        self.respond(id, action)
    }

    /// A wake (evio's `wakeReq`): `data` with no input. A stale id, of a
    /// connection closed since, finds nothing.
    fn wake(&mut self, id: u64) -> Flow {
        let Some(slot) = self.conns.get_mut(&id) else {
            return Flow::Go;
        };
        self.out.clear();
        let action = self.events.data(&mut slot.conn, &[], &mut self.out);
        self.respond(id, action)
    }
    // ANCHOR_END: input

    /// Bytes or a close from a [`Writer`](crate::Writer): written at once,
    /// as every reply of this variant is. A stale id finds nothing.
    fn deliver(&mut self, id: u64, what: Deliver) -> Flow {
        let Some(slot) = self.conns.get_mut(&id) else {
            return Flow::Go;
        };
        self.out.clear();
        let action = match what {
            Deliver::Wake => return self.wake(id),
            Deliver::Write(bytes) => {
                if let Some(budget) = &slot.conn.budget {
                    budget.taken(bytes.len());
                }
                self.out.extend_from_slice(&bytes);
                Action::None
            }
            Deliver::Close => Action::Close,
        };
        self.respond(id, action)
    }

    // ANCHOR: respond
    /// After a callback: write its output now, then act. evio writes the
    /// same way (`c.conn.Write(out)` in `stdloopRead`), ignoring errors.
    fn respond(&mut self, id: u64, action: Action) -> Flow {
        let Some(slot) = self.conns.get_mut(&id) else {
            return Flow::Go;
        };
        if !self.out.is_empty() {
            self.events.pre_write();
            // Blocking: returns when the kernel has taken every byte. A
            // client that does not read stalls this whole loop here.
            let written = slot.sock.write_all(&self.out);
            let c = &self.shared.counters[self.idx];
            c.add(Count::Writes, 1);
            c.add(Count::BytesOut, self.out.len() as u64);
            if self.out.capacity() > KEEP_OUTPUT_CAPACITY {
                self.out = Vec::new();
            }
            if let Err(e) = written {
                return self.close(id, Some(e));
            }
        }
        // A pending Detach is not replaced by a later callback's action.
        let action = match slot.pending {
            Action::None => action,
            pending => pending,
        };
        match action {
            Action::None => {
                if !slot.reading {
                    slot.reading = true;
                    if let Some(r) = &slot.reader {
                        r.permit();
                    }
                }
                Flow::Go
            }
            Action::Close => self.close(id, None),
            Action::Shutdown => Flow::Stop,
            // The reader is in `read`: std cannot call it back without
            // shutting the socket down, which would spoil the stream we
            // hand over. Detach when it comes back (`input` or `eof`).
            Action::Detach if slot.reading => {
                slot.pending = Action::Detach;
                Flow::Go
            }
            Action::Detach => self.detach(id),
        }
    }
    // ANCHOR_END: respond

    /// The reader hit end-of-file or an error, and has returned (evio's
    /// `stdloopError`): the connection is closed.
    fn eof(&mut self, id: u64, err: Option<io::Error>) -> Flow {
        match self.conns.get_mut(&id) {
            Some(slot) => slot.reading = false,
            None => return Flow::Go,
        }
        self.close(id, err)
    }

    /// A datagram (evio's `stdloopReadUDP`): `shared::datagram` calls
    /// `data` and sends the reply.
    fn datagram(&mut self, li: usize, from: std::net::SocketAddr, data: &[u8]) -> Flow {
        let Listener::Udp(socket) = &self.shared.listeners[li] else {
            return Flow::Go;
        };
        let local = self.shared.addrs[li].socket_addr();
        let fd = udp_fd(socket);
        let out = &mut self.out;
        Flow::after(shared::datagram(
            self.events,
            socket,
            fd,
            li,
            local,
            from,
            data,
            out,
        ))
    }

    // ANCHOR: close
    /// Closes a connection (evio's `stdloopClose` and `stdloopError`).
    fn close(&mut self, id: u64, err: Option<io::Error>) -> Flow {
        let Some(slot) = self.conns.remove(&id) else {
            return Flow::Go;
        };
        self.shared.balancer.release(self.idx);
        let Slot {
            mut conn, reader, ..
        } = slot;
        conn.gone();
        // `closed` first: it may still ask for the addresses, and a TCP
        // socket that has been shut down has no peer address any more.
        let flow = Flow::after(self.events.closed(&mut conn, err));
        // Then stop the reader (shutting the socket down if it is in
        // `read`) and wait for it: the peer sees end-of-file now. The
        // descriptor itself is closed when `conn`, the last holder, drops.
        drop(reader);
        flow
    }
    // ANCHOR_END: close

    // ANCHOR: detach
    /// Hands a connection over (evio's `stdloopDetach`). The reader is at
    /// its gate (`respond` waits for that), so it has read nothing that
    /// `data` did not get; `finish` ends it and waits until it has
    /// returned. Then the loop holds the only handle on the socket.
    fn detach(&mut self, id: u64) -> Flow {
        let Some(slot) = self.conns.remove(&id) else {
            return Flow::Go;
        };
        self.shared.balancer.release(self.idx);
        let Slot {
            mut conn,
            sock,
            reader,
            ..
        } = slot;
        conn.gone();
        if let Some(reader) = reader {
            reader.finish();
        }
        // `detached` may still ask for the addresses: read them now, and
        // let go of the conn's handle on the socket.
        conn.ends = Ends::Known {
            local: sock.local_addr().ok(),
            remote: sock.peer_addr().ok(),
        };
        // The reader's and the conn's handles are gone: `try_unwrap`
        // succeeds, and proves that nobody else can touch the stream.
        let action = match Arc::try_unwrap(sock) {
            Ok(sock) => self.events.detached(&mut conn, sock.into_stream()),
            Err(_) => {
                let err = io::Error::other("detach: the socket is still shared");
                self.events.closed(&mut conn, Some(err))
            }
        };
        Flow::after(action)
    }
    // ANCHOR_END: detach

    /// Closes every connection at the end; each gets `closed`.
    fn close_all(&mut self) {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id, None);
        }
    }
}

#[cfg(unix)]
fn udp_fd(s: &std::net::UdpSocket) -> crate::conn::SockFd {
    use std::os::fd::AsRawFd;
    s.as_raw_fd()
}

#[cfg(not(unix))]
fn udp_fd(_: &std::net::UdpSocket) -> crate::conn::SockFd {}
