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
//! reply is written at once with a write that never blocks (`writer.rs`):
//! what the socket does not take goes to the connection's writer thread.
//! evio's loop writes with a blocking write, so one client that does not
//! read stalls every other connection of the loop; this one stops reading
//! that client instead (back-pressure), and closes it if it stays over
//! `Limits::output_limit` too long. The idle timeout, the output timeout
//! and `Panics::Isolate` are this loop's too (chapter 15).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use super::msg::{Msg, NewConn, Shared};
use super::reader::Reader;
use super::writer::{try_write, Outbox};
use crate::api::{Action, Flow};
use crate::conn::{Conn, Deliver, Ends, Peer, Wake};
use crate::events::Events;
use crate::shared::{self, catch, Clocks, Count, Deadlines, Listener, Report, Sock};

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
    /// An action that waits: for the writer thread to write the output
    /// before it, or for the reader to come back (a `Detach` asked for by
    /// a wake while a permit is out).
    pending: Action,
    /// The writer thread, from the first time the socket would not take a
    /// whole reply; until then, and whenever it has nothing to write, the
    /// loop writes itself.
    outbox: Option<Outbox>,
    /// When it was last active, for its timeouts (chapter 15); the writer
    /// thread's writes count too (`pending`).
    clocks: Clocks,
}

impl<C> Slot<C> {
    /// The pending output, and the last time a byte went out or came in.
    fn pending(&self) -> (usize, Instant) {
        match &self.outbox {
            Some(outbox) => {
                let (bytes, wrote) = outbox.pending();
                (bytes, wrote.max(self.clocks.last_active))
            }
            None => (0, self.clocks.last_active),
        }
    }
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
    /// The reply being built; written (or handed to the connection's writer
    /// thread) before the next message is looked at.
    out: Vec<u8>,
    /// When each connection may next time out (chapter 15).
    deadlines: Deadlines<u64>,
    /// The time of the message being handled: one clock read per message.
    now: Instant,
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
            deadlines: Deadlines::new(),
            now: Instant::now(),
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

    /// evio's `stdloopRun`, with the tick and the timeouts in the same
    /// thread: the loop waits for a message, the next tick or the next
    /// deadline, whichever comes first, with `recv_timeout`. evio runs a
    /// ticker goroutine and a second channel, and has no timeouts.
    /// Returns whether the message that ended it was the final `Exit`.
    fn serve(&mut self) -> bool {
        let mut next_tick = (self.idx == 0).then(Instant::now);
        loop {
            self.now = Instant::now();
            if next_tick.is_some_and(|at| at <= self.now) {
                let (delay, action) = self.events.tick();
                next_tick = delay.map(|d| Instant::now() + d);
                if action == Action::Shutdown {
                    return false;
                }
                continue;
            }
            if self.expire() == Flow::Stop {
                return false;
            }
            let wake_at = match (next_tick, self.deadlines.next()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let msg = match wake_at {
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
            self.now = Instant::now();
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
            Msg::Recalled { id } => self.recalled(id),
            Msg::Flushed { id, err } => self.flushed(id, err),
            Msg::Wake { id } => self.data(id, &[]),
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
            Msg::Recalled { .. } | Msg::Flushed { .. } => {}
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
            outbox: None,
            clocks: Clocks::new(self.now),
        };
        let conns = &self.conns;
        (self.deadlines).compact(conns.len(), || {
            let armed = |(id, s): (&u64, &Slot<_>)| Some((s.clocks.armed()?, *id));
            conns.iter().filter_map(armed).collect()
        });
        let slot = self.conns.entry(id).or_insert(slot);
        (self.deadlines).update(&mut slot.clocks, id, &self.shared.limits, None);
        self.out.clear();
        let Some(slot) = self.conns.get_mut(&id) else {
            return Flow::Go;
        };
        let (events, out) = (self.events, &mut self.out);
        match catch(self.shared.panics, || events.opened(&mut slot.conn, out)) {
            Ok((options, action)) => {
                if let Some(idle) = options.tcp_keep_alive {
                    slot.conn.set_keep_alive(idle);
                }
                self.respond(id, action)
            }
            Err(panicked) => self.panicked(id, panicked),
        }
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
        slot.clocks.last_active = self.now;
        self.data(id, data)
    }

    /// `data` for bytes or a wake (evio's `wakeReq`, `data` with no
    /// input), then `respond`. A stale id, of a connection closed since,
    /// finds nothing.
    fn data(&mut self, id: u64, input: &[u8]) -> Flow {
        let Some(slot) = self.conns.get_mut(&id) else {
            return Flow::Go;
        };
        self.out.clear();
        let (events, out) = (self.events, &mut self.out);
        match catch(self.shared.panics, || {
            events.data(&mut slot.conn, input, out)
        }) {
            Ok(action) => self.respond(id, action),
            Err(panicked) => self.panicked(id, panicked),
        }
    }
    // ANCHOR_END: input

    /// Bytes or a close from a [`Writer`](crate::Writer), or a wake: in
    /// order with the connection's other output. A stale id finds nothing.
    fn deliver(&mut self, id: u64, what: Deliver) -> Flow {
        let Some(slot) = self.conns.get_mut(&id) else {
            return Flow::Go;
        };
        self.out.clear();
        let action = match what {
            Deliver::Wake => return self.data(id, &[]),
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
    /// After a callback: send its output, then act, or wait. evio writes
    /// with a blocking write (`c.conn.Write(out)` in `stdloopRead`) and acts
    /// at once; here an action waits for the output before it, and a
    /// connection whose pending output is over `output_limit` gets no new
    /// permit to read (back-pressure) until its writer thread reports
    /// that it is not (`flushed`).
    fn respond(&mut self, id: u64, action: Action) -> Flow {
        if !self.out.is_empty() {
            if let Err(e) = self.send(id) {
                return self.close(id, Some(e));
            }
        }
        let Some(slot) = self.conns.get_mut(&id) else {
            return Flow::Go;
        };
        // Moves its timeouts: the output one starts when it goes over the
        // limit, and a callback may have set a deadline.
        let (limits, (pending, _)) = (&self.shared.limits, slot.pending());
        slot.clocks.touch(self.now, pending, limits);
        (self.deadlines).update(&mut slot.clocks, id, limits, slot.conn.deadline());
        // The writer thread reports when its output is down to `level`.
        let waits_for =
            |slot: &Slot<_>, level| slot.outbox.as_ref().is_some_and(|o| o.notify_at(level));
        // A pending action is not replaced by a later callback's.
        let action = match std::mem::take(&mut slot.pending) {
            Action::None => action,
            pending => pending,
        };
        match action {
            Action::None => {}
            _ if waits_for(slot, 0) => slot.pending = action,
            Action::Close => return self.close(id, None),
            Action::Shutdown => return Flow::Stop,
            // A permit is out: call the reader back, and detach when it
            // answers (`recalled`, or `input` if bytes came first).
            Action::Detach if slot.reading => {
                slot.pending = Action::Detach;
                if slot.reader.as_ref().is_some_and(Reader::recall) {
                    slot.reading = false;
                    return self.detach(id);
                }
            }
            Action::Detach => return self.detach(id),
        }
        if slot.pending == Action::None && !slot.reading && !waits_for(slot, limits.output_limit) {
            slot.reading = true;
            if let Some(r) = &slot.reader {
                r.permit();
            }
        }
        Flow::Go
    }
    // ANCHOR_END: respond

    // ANCHOR: send
    /// Sends the reply in `out`: at once, what the socket takes without
    /// waiting, unless output is queued before it; the rest, in order, by
    /// the connection's writer thread, started the first time it is needed.
    fn send(&mut self, id: u64) -> io::Result<()> {
        let Some(slot) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        self.events.pre_write();
        let c = &self.shared.counters[self.idx];
        let mut sent = 0;
        if slot.pending().0 == 0 {
            sent = try_write(&slot.sock, &self.out)?;
            c.add(Count::Writes, 1);
            if sent > 0 {
                slot.clocks.last_active = self.now;
            }
            if sent < self.out.len() {
                c.add(Count::WouldBlocks, 1);
            }
        }
        // Bytes handed to the writer thread count as written now.
        c.add(Count::BytesOut, self.out.len() as u64);
        if sent < self.out.len() {
            let rest = match sent {
                0 => std::mem::take(&mut self.out),
                n => self.out[n..].to_vec(),
            };
            if slot.outbox.is_none() {
                let tx = self.shared.loops[self.idx].clone();
                let report = move |err| tx.send(Msg::Flushed { id, err }).is_ok();
                slot.outbox = Some(Outbox::spawn(id, slot.sock.clone(), report)?);
            }
            if let Some(outbox) = &slot.outbox {
                outbox.push(rest, slot.conn.budget.as_ref());
            }
        }
        if self.out.capacity() > KEEP_OUTPUT_CAPACITY {
            self.out = Vec::new();
        }
        Ok(())
    }
    // ANCHOR_END: send

    /// The writer thread has written down to the level `respond` asked
    /// for, or failed.
    fn flushed(&mut self, id: u64, err: Option<io::Error>) -> Flow {
        if let Some(e) = err {
            return self.close(id, Some(e));
        }
        self.out.clear();
        self.respond(id, Action::None)
    }

    /// The reader answered a recall: the pending `Detach` can go ahead.
    fn recalled(&mut self, id: u64) -> Flow {
        match self.conns.get_mut(&id) {
            Some(slot) => slot.reading = false,
            None => return Flow::Go,
        }
        self.out.clear();
        self.respond(id, Action::None)
    }

    /// The reader hit end-of-file or an error, and has returned (evio's
    /// `stdloopError`): the connection is closed. But a `Detach` waiting
    /// for the reader goes ahead: the end of the stream is its new owner's
    /// to read (evio loses the detach here).
    fn eof(&mut self, id: u64, err: Option<io::Error>) -> Flow {
        let Some(slot) = self.conns.get_mut(&id) else {
            return Flow::Go;
        };
        slot.reading = false;
        if err.is_none() && slot.pending == Action::Detach {
            self.out.clear();
            return self.respond(id, Action::None);
        }
        self.close(id, err)
    }

    /// A callback about connection `id` panicked (under `Panics::Isolate`):
    /// only that connection is closed, with the panic's message.
    fn panicked(&mut self, id: u64, err: io::Error) -> Flow {
        self.shared.counters[self.idx].add(Count::Panics, 1);
        self.close(id, Some(err))
    }

    // ANCHOR: expire
    /// Closes, with `TimedOut`, each connection whose time is up, and moves
    /// the others' entries on: all the work timeouts cost, done when an
    /// entry comes due, never per request (`src/shared/deadlines.rs`).
    fn expire(&mut self) -> Flow {
        let limits = &self.shared.limits;
        while let Some((at, id)) = self.deadlines.pop_due(self.now) {
            let Some(slot) = self.conns.get_mut(&id) else {
                continue; // closed since
            };
            // What the writer thread did since: its last write is activity,
            // and output drained below the limit is not over it any more.
            let (pending, active) = slot.pending();
            slot.clocks.last_active = active;
            if pending <= limits.output_limit {
                slot.clocks.over_since = None;
            }
            let deadline = slot.conn.deadline();
            let why = (self.deadlines).due(at, self.now, id, &mut slot.clocks, limits, deadline);
            if let Some(why) = why {
                self.shared.counters[self.idx].add(Count::TimedOut, 1);
                if self.close(id, Some(why.error())) == Flow::Stop {
                    return Flow::Stop;
                }
            }
        }
        Flow::Go
    }
    // ANCHOR_END: expire

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
        self.shared.open.fetch_sub(1, Ordering::SeqCst);
        let Slot {
            mut conn,
            reader,
            outbox,
            ..
        } = slot;
        conn.gone();
        // `closed` first: it may still ask for the addresses, and a TCP
        // socket that has been shut down has no peer address any more. A
        // `closed` that panics has nothing left to close: it is dropped.
        let events = self.events;
        let closed = catch(self.shared.panics, || events.closed(&mut conn, err));
        // Then stop the reader (shutting the socket down if it is in
        // `read`) and the writer (blocked in `write`, maybe), and wait for
        // them: the peer sees end-of-file now. The descriptor itself is
        // closed when `conn`, the last holder, drops.
        drop(reader);
        drop(outbox);
        Flow::after(closed.unwrap_or(Action::None))
    }
    // ANCHOR_END: close

    // ANCHOR: detach
    /// Hands a connection over (evio's `stdloopDetach`). The reader is at
    /// its gate (`respond` waits for that), so it has read nothing that
    /// `data` did not get; `finish` ends it and waits until it has
    /// returned, and so for the writer thread, which has nothing left to
    /// write. Then the loop holds the only handle on the socket.
    fn detach(&mut self, id: u64) -> Flow {
        let Some(slot) = self.conns.remove(&id) else {
            return Flow::Go;
        };
        self.shared.balancer.release(self.idx);
        self.shared.open.fetch_sub(1, Ordering::SeqCst);
        let Slot {
            mut conn,
            sock,
            reader,
            outbox,
            ..
        } = slot;
        conn.gone();
        if let Some(reader) = reader {
            reader.finish();
        }
        if let Some(outbox) = outbox {
            outbox.finish();
        }
        // `detached` may still ask for the addresses: read them now, and
        // let go of the conn's handle on the socket.
        conn.ends = Ends::Known {
            local: sock.local_addr().ok(),
            remote: sock.peer_addr().ok(),
        };
        // The reader's, the writer's and the conn's handles are gone:
        // `try_unwrap` succeeds, and proves that nobody else can touch the
        // stream.
        let (events, panics) = (self.events, self.shared.panics);
        let detached = match Arc::try_unwrap(sock) {
            Ok(sock) => {
                let stream = sock.into_stream();
                catch(panics, || events.detached(&mut conn, stream))
            }
            Err(_) => Err(io::Error::other("detach: the socket is still shared")),
        };
        let action = detached.unwrap_or_else(|e| {
            catch(panics, || events.closed(&mut conn, Some(e))).unwrap_or(Action::None)
        });
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
