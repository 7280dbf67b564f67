//! One event loop: wait, drain notes, tick, handle each ready descriptor.
//!
//! Chapter 5, "The loop and its dispatch", explains this file; chapter 6
//! explains [`Loop::accept`], chapter 8 the tick, UDP, detach and the closing
//! of every connection at the end, chapter 15 the timeouts, the limits and
//! what a panic in a callback does. It mirrors evio's `loopRun`, `loopAccept`,
//! `loopUDPRead`, `loopNote`, `loopTicker`, `loopCloseConn` and
//! `loopDetachConn` (`evio_unix.go`).
//!
//! The loop owns its connections, in a table indexed by fd (evio uses a map),
//! and carries out what the dispatch decides. It is generic over the poller
//! and over the connections' socket ([`Socket`]), so that chapter 11's
//! state-machine test (`dispatch_model.rs`) drives this very code, with a
//! fake socket and a fake poller, from accept to close or detach.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::balance;
use super::dispatch::{self, ConnIo, ConnState, Outcome};
use super::note::{wake_target, Note};
use super::spare::Spare;
use super::stats::Counted;
use crate::api::{
    Accept, Action, Addr, Config, Flow, Limits, LoadBalance, Panics, Stream, Trigger, Writes,
};
use crate::conn::{Conn, Deliver, Ends, Wake};
use crate::events::Events;
use crate::notes::NoteQueue;
use crate::poll::{Event, Interest, Poll};
use crate::shared::{self, catch, Balancer, Clocks, Count, Counters, Deadlines, Listener, Sock};

/// The size of each loop's read buffer, shared by all its connections:
/// evio's 64 KiB (`0xFFFF`).
const READ_BUFFER: usize = 64 * 1024;

/// How long a loop out of fds, with no spare to shed a connection with,
/// stops watching its listeners (chapter 15).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What all loops of a server share, made by `Server::run` (`mod.rs`).
pub(crate) struct Shared {
    listeners: Vec<Listener>,
    /// `Accept::ReusePort`: each loop's own sockets, `own[loop][address]`;
    /// empty for loop 0 (its are `listeners`) and under the other strategies.
    own: Vec<Vec<Option<Listener>>>,
    /// The bound addresses, for a datagram's `local_addr` (no
    /// `getsockname` per datagram).
    addrs: Vec<Addr>,
    /// The balancing rule, each loop's connection count, RoundRobin's turn.
    balancer: Balancer,
    /// Every loop's note queue: where a hand-off sends a new connection.
    notes: Vec<Arc<NoteQueue<Note>>>,
    /// Who accepts (chapters 6 and 13).
    accept: Accept,
    /// When replies are written (chapters 7 and 13).
    writes: Writes,
    /// How the poller reports connections (chapter 13).
    trigger: Trigger,
    /// Each loop's counters, which `Server::stats` reads.
    counters: Arc<[Counters]>,
    /// Print each dispatch step (`Config::trace`).
    trace: bool,
    /// The output limit of each connection's writers.
    writer_limit: usize,
    /// Timeouts and limits (chapter 15).
    limits: Limits,
    /// What a panic in a connection's callback does (chapter 15).
    panics: Panics,
}

impl Shared {
    pub(crate) fn new(
        listeners: Vec<Listener>,
        addrs: Vec<Addr>,
        notes: Vec<Arc<NoteQueue<Note>>>,
        counters: Arc<[Counters]>,
        config: &Config,
    ) -> Shared {
        Shared {
            listeners,
            own: Vec::new(),
            addrs,
            balancer: Balancer::new(config.balance, notes.len()),
            notes,
            accept: config.accept,
            writes: config.writes,
            trigger: config.trigger,
            counters,
            trace: config.trace,
            writer_limit: config.writer_limit(),
            limits: config.limits.clone(),
            panics: config.panics,
        }
    }

    /// Gives each loop its own listeners (`Accept::ReusePort`).
    pub(crate) fn with_own(self, own: Vec<Vec<Option<Listener>>>) -> Shared {
        Shared { own, ..self }
    }
}

// ANCHOR: socket
/// What the loop needs of a connection's socket: the two system calls of
/// the dispatch ([`ConnIo`]), its fd, and what a detach does with it.
/// [`Sock`] in the server; a fake in chapter 11's state-machine test.
pub(crate) trait Socket: ConnIo + From<Sock> {
    fn fd(&self) -> RawFd;
    /// How the connection's [`Conn`] finds its addresses.
    fn ends(&self) -> Ends;
    /// Back to blocking mode, for `detached`.
    fn set_blocking(&self) -> io::Result<()>;
    /// The socket, as the std stream `detached` gets.
    fn into_stream(self) -> Stream;
}
// ANCHOR_END: socket

// `#[inline]`, as the dispatch's small functions (see `dispatch.rs`).
impl ConnIo for Sock {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Sock::recv(self, buf)
    }

    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Sock::send(self, buf)
    }
}

impl Socket for Sock {
    fn fd(&self) -> RawFd {
        Sock::fd(self)
    }

    fn ends(&self) -> Ends {
        Ends::Fd {
            unix: self.is_unix(),
        }
    }

    fn set_blocking(&self) -> io::Result<()> {
        self.set_nonblocking(false)
    }

    fn into_stream(self) -> Stream {
        Sock::into_stream(self)
    }
}

/// A connection as the loop keeps it.
pub(crate) struct Slot<C, S> {
    pub(crate) conn: Conn<C>,
    pub(crate) state: ConnState,
    sock: S,
    /// When it was last active, for its timeouts (chapter 15).
    clocks: Clocks,
    /// `Trigger::Edge`: in the loop's `again` list.
    queued: bool,
}

// ANCHOR: loop_struct
/// One event loop and everything only it touches.
pub(crate) struct Loop<'s, E: Events, P: Poll, S = Sock> {
    idx: usize,
    poll: P,
    notes: Arc<NoteQueue<Note>>,
    /// The same queue, as the wakers of this loop's connections hold it.
    wake: Arc<dyn Wake>,
    shared: &'s Shared,
    events: &'s E,
    /// The read buffer, lent to `data` as `&[u8]`.
    buf: Vec<u8>,
    /// Connections by fd. Fds are small integers the kernel hands out
    /// lowest-first, so a vector is a dense, fast map.
    slots: Vec<Option<Slot<E::Context, S>>>,
    /// The id of the last connection accepted; ids are never reused.
    last_id: u64,
    /// Reply buffer for UDP datagrams.
    udp_out: Vec<u8>,
    /// An fd held in reserve for running out of fds (see `shed`).
    spare: Spare,
    /// Out of fds with no spare: the listeners this loop stopped watching,
    /// and when to watch them again (see `shed`).
    paused: Option<(Instant, Vec<usize>)>,
    /// The time after the last wait: what timeouts are measured against,
    /// read once per wait rather than once per request.
    now: Instant,
    /// When connections expire, earliest first (chapter 15).
    deadlines: Deadlines<(RawFd, u64)>,
    /// `Trigger::Edge`: the connections to come back to on the next turn
    /// ([`dispatch::again`]), by fd and id.
    again: Vec<(RawFd, u64)>,
}
// ANCHOR_END: loop_struct

/// Prints one dispatch step (`Config::trace`). A function of its own, kept
/// out of line (`cold`): its formatting code would otherwise sit in the
/// middle of `stepped`, which runs per request, and crowd it.
#[cold]
#[inline(never)]
fn trace(
    idx: usize,
    fd: RawFd,
    id: u64,
    step: fmt::Arguments,
    (before, after): (Interest, Interest),
    pending: usize,
    outcome: &Outcome,
) {
    let step = step.to_string(); // padded below: `Arguments` is not
    let show = |i: Interest| match (i.read, i.write) {
        (true, true) => "read+write",
        (true, false) => "read",
        (false, true) => "write",
        (false, false) => "none",
    };
    eprintln!(
        "loop {idx} fd {fd} conn {id}: {step:<10} interest {} -> {}, {pending} B pending, {outcome:?}",
        show(before),
        show(after),
    );
}

impl<'s, E: Events, P: Poll, S: Socket> Loop<'s, E, P, S> {
    pub(crate) fn new(
        idx: usize,
        poll: P,
        spare: Spare,
        notes: Arc<NoteQueue<Note>>,
        shared: &'s Shared,
        events: &'s E,
    ) -> Self {
        Loop {
            idx,
            poll,
            wake: notes.clone(),
            notes,
            shared,
            events,
            buf: vec![0; READ_BUFFER],
            slots: Vec::new(),
            last_id: 0,
            udp_out: Vec::new(),
            spare,
            paused: None,
            now: Instant::now(),
            deadlines: Deadlines::new(),
            again: Vec::new(),
        }
    }

    // ANCHOR: run
    /// Runs until a stop note, a `Shutdown` action, or a poller error; then
    /// closes every connection it holds.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut ready: Vec<Event> = Vec::new();
        let mut notes = Vec::new();
        let mut retry = Vec::new();
        // Loop 0 ticks, first right away (evio's `loopTicker`). The wait's
        // timeout is the time to the next tick; with no tick the loop sleeps
        // until something happens, instead of evio's 100 ms polling.
        let mut next_tick = (self.idx == 0).then(Instant::now);
        let result = 'run: loop {
            // The wait ends by the next tick, expiry or resumed accept.
            let paused = self.paused.as_ref().map(|p| p.0);
            let until = [next_tick, self.deadlines.next(), paused]
                .into_iter()
                .flatten()
                .min();
            let timeout = match self.again.is_empty() {
                true => until.map(|t| t.saturating_duration_since(Instant::now())),
                // Connections to come back to: look for news, do not wait.
                false => Some(Duration::ZERO),
            };
            if let Err(e) = self.poll.wait(&mut ready, timeout) {
                break Err(e);
            }
            self.now = Instant::now();
            self.count(Count::Waits, 1);
            // 1. Notes first, as in evio's `Poll.Wait`.
            self.notes.swap(&mut notes);
            self.count(Count::Notes, notes.len() as u64);
            for note in notes.drain(..) {
                let flow = match note {
                    Note::Wake { fd, id } => self.wake(fd, id),
                    Note::Adopt { sock, li } => self.admit(S::from(sock), li),
                    Note::Deliver { fd, id, what } => self.deliver(fd, id, what),
                };
                if flow == Flow::Stop {
                    break 'run Ok(());
                }
            }
            // A stop is a flag beside the notes (`NoteQueue::stop`).
            if self.notes.stopping() {
                break 'run Ok(());
            }
            // 2. The tick, if due.
            if next_tick.is_some_and(|t| t <= Instant::now()) {
                let (delay, action) = self.events.tick();
                next_tick = delay.map(|d| Instant::now() + d);
                if action == Action::Shutdown {
                    break 'run Ok(());
                }
            }
            // 3. Connections whose time is up (chapter 15), and listeners
            // paused for want of fds.
            if self.expire() == Flow::Stop {
                break 'run Ok(());
            }
            if paused.is_some_and(|t| t <= self.now) {
                self.resume_accepting();
            }
            // 4. Every ready descriptor.
            if self.handle(&ready, &mut retry) == Flow::Stop {
                break 'run Ok(());
            }
        };
        self.close_all();
        result
    }
    // ANCHOR_END: run

    // ANCHOR: reported
    /// Every ready descriptor the wait reported, then (`Trigger::Edge`)
    /// every connection left with readiness unused last turn; what this
    /// turn leaves waits for the next, so each gets one step a turn.
    /// `retry` is an empty list, lent to hold last turn's.
    pub(crate) fn handle(&mut self, ready: &[Event], retry: &mut Vec<(RawFd, u64)>) -> Flow {
        std::mem::swap(&mut self.again, retry);
        for ev in ready {
            if self.reported(ev) == Flow::Stop {
                return Flow::Stop;
            }
        }
        self.retry(retry)
    }

    /// The poller reported `ev`. A connection keeps what it was reported
    /// ready for (`Trigger::Edge` needs it: see [`dispatch::again`]); one
    /// already in the `again` list gets its step there, not twice a turn.
    fn reported(&mut self, ev: &Event) -> Flow {
        if let Some(slot) = self.slots.get_mut(ev.fd as usize).and_then(Option::as_mut) {
            slot.state.ready.read |= ev.readable;
            slot.state.ready.write |= ev.writable;
            slot.state.closed |= ev.closed;
            if slot.queued {
                return Flow::Go;
            }
        }
        self.ready(ev.fd)
    }

    /// `Trigger::Edge`: runs the step of each connection in `list` that
    /// still has readiness to use; a closed one (or its fd's next owner)
    /// is skipped.
    fn retry(&mut self, list: &mut Vec<(RawFd, u64)>) -> Flow {
        for (fd, id) in list.drain(..) {
            let Some(slot) = wake_target(&mut self.slots, fd, id, |s| s.conn.id) else {
                continue;
            };
            slot.queued = false;
            if !dispatch::again(&slot.state) {
                continue;
            }
            self.count(Count::Again, 1);
            if self.ready(fd) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Go
    }

    /// After a step: a connection that must be come back to
    /// ([`dispatch::again`]) goes in the `again` list, once.
    #[inline]
    fn remember(&mut self, fd: RawFd) {
        if let Some(slot) = self.slots.get_mut(fd as usize).and_then(Option::as_mut) {
            if !slot.queued && dispatch::again(&slot.state) {
                slot.queued = true;
                self.again.push((fd, slot.conn.id));
            }
        }
    }
    // ANCHOR_END: reported

    // ANCHOR: loop_ready
    /// A ready fd: a listener if no connection has it, else dispatch.
    pub(crate) fn ready(&mut self, fd: RawFd) -> Flow {
        let Some(slot) = self.slots.get_mut(fd as usize).and_then(Option::as_mut) else {
            let listeners = 0..self.shared.listeners.len();
            return match listeners
                .into_iter()
                .position(|li| self.listener(li).fd() == fd)
            {
                Some(i) => self.accept(i),
                None => Flow::Go,
            };
        };
        let counters = &self.shared.counters[self.idx];
        let (before, step) = (slot.state.interest, dispatch::next_step(&slot.state));
        let mut sock = Counted {
            sock: &mut slot.sock,
            counters,
        };
        let ran = catch(self.shared.panics, || {
            dispatch::ready(
                self.events,
                &mut self.poll,
                &mut slot.conn,
                &mut slot.state,
                &mut sock,
                &mut self.buf,
            )
        });
        let outcome = self.outcome(ran);
        self.stepped(fd, format_args!("{step:?}"), before, &outcome);
        let flow = self.finish(fd, outcome);
        self.remember(fd);
        flow
    }

    /// A step whose callback panicked (under `Panics::Isolate`) closes its
    /// connection with the panic's message, and only that connection.
    #[inline]
    fn outcome(&self, ran: io::Result<Outcome>) -> Outcome {
        ran.unwrap_or_else(|panicked| {
            self.count(Count::Panics, 1);
            Outcome::Close(Some(panicked))
        })
    }

    /// After a dispatch step: moves the connection's timeouts, counts a
    /// change of interest, and prints the step when tracing
    /// (`Config::trace`). The step's name comes as `format_args!`, turned
    /// into text only when tracing: a `format!` here would allocate a
    /// `String` per step, so per request (chapter 13). It runs per request:
    /// `#[inline]`, and the printing is a `cold` function of its own.
    #[inline]
    fn stepped(&mut self, fd: RawFd, step: fmt::Arguments, before: Interest, outcome: &Outcome) {
        let Some(slot) = self.slots.get_mut(fd as usize).and_then(Option::as_mut) else {
            return;
        };
        let (limits, pending) = (&self.shared.limits, slot.state.pending_output().len());
        slot.clocks.touch(self.now, pending, limits);
        let key = (fd, slot.conn.id);
        (self.deadlines).update(&mut slot.clocks, key, limits, slot.conn.deadline());
        let slot = &*slot;
        let after = slot.state.interest;
        if after != before {
            self.shared.counters[self.idx].add(Count::InterestChanges, 1);
        }
        if let Some(budget) = &slot.conn.budget {
            budget.unsent(pending);
        }
        if self.shared.trace {
            let id = slot.conn.id;
            trace(self.idx, fd, id, step, (before, after), pending, outcome);
        }
    }

    fn count(&self, which: Count, n: u64) {
        self.shared.counters[self.idx].add(which, n);
    }

    /// Carries out what the dispatch decided.
    #[inline]
    pub(crate) fn finish(&mut self, fd: RawFd, outcome: Outcome) -> Flow {
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
    pub(crate) fn wake(&mut self, fd: RawFd, id: u64) -> Flow {
        self.deliver(fd, id, Deliver::Wake)
    }

    /// A wake, or bytes or a close from a [`Writer`](crate::Writer), for
    /// the connection the handle was made for, if it is still here: no slot,
    /// or another connection's (closed since, fd reused), and it is dropped.
    pub(crate) fn deliver(&mut self, fd: RawFd, id: u64, what: Deliver) -> Flow {
        let Some(slot) = wake_target(&mut self.slots, fd, id, |s| s.conn.id) else {
            return Flow::Go;
        };
        let step = match what {
            Deliver::Wake => "Wake",
            Deliver::Write(_) => "Write from a writer",
            Deliver::Close => "Close from a writer",
        };
        let before = slot.state.interest;
        let mut sock = Counted {
            sock: &mut slot.sock,
            counters: &self.shared.counters[self.idx],
        };
        let ran = catch(self.shared.panics, || {
            dispatch::push(
                self.events,
                &mut self.poll,
                &mut slot.conn,
                &mut slot.state,
                &mut sock,
                what,
            )
        });
        let outcome = self.outcome(ran);
        self.stepped(fd, format_args!("{step}"), before, &outcome);
        let flow = self.finish(fd, outcome);
        self.remember(fd);
        flow
    }
    // ANCHOR_END: loop_wake

    /// Reports an accept error; `Shutdown` from the callback stops the loop.
    fn report(&self, err: &io::Error) -> Flow {
        Flow::after(self.events.accept_error(err))
    }

    // ANCHOR: accept
    // ANCHOR: who_accepts
    /// The listener `li` is readable (evio's `loopAccept`). Decision: *who
    /// accepts*, made at `Server::bind` (which loops watch the listeners)
    /// and here.
    fn accept(&mut self, li: usize) -> Flow {
        let listener = self.listener(li);
        if let Listener::Udp(_) = listener {
            return self.udp_read(li);
        }
        match self.shared.accept {
            Accept::EveryLoop => self.accept_if_allowed(li),
            Accept::HandOff => self.accept_and_hand_off(li),
            // A unix socket has no SO_REUSEPORT: loop 0 alone watches it,
            // and hands out what it accepts.
            Accept::ReusePort if matches!(listener, Listener::Unix(..)) => {
                self.accept_and_hand_off(li)
            }
            // The kernel chose this loop (it woke only this one, or hashed
            // the connection to this loop's socket): take it, whatever the
            // rule.
            Accept::Exclusive | Accept::ReusePort => match self.accept_one(li) {
                Ok(sock) => self.take(S::from(sock), li),
                Err(flow) => flow,
            },
        }
    }
    // ANCHOR_END: who_accepts

    /// evio's way: every loop is woken, and each asks the rule whether it
    /// may take the connection.
    fn accept_if_allowed(&mut self, li: usize) -> Flow {
        let shared = self.shared;
        let b = &shared.balancer;
        let loops = shared.notes.len();
        if !balance::may_accept(b.rule(), self.idx, loops, b.turn(), |i| b.count(i)) {
            // Level-triggered: this loop is woken again while the
            // connection waits (evio's weakness 2, the refusal spin).
            self.count(Count::Refusals, 1);
            return Flow::Go;
        }
        let sock = match self.accept_one(li) {
            Ok(sock) => sock,
            Err(flow) => return flow,
        };
        if b.rule() == LoadBalance::RoundRobin {
            b.advance_turn();
        }
        self.take(S::from(sock), li)
    }

    // ANCHOR: hand_off
    /// Chapter 13's way: only loop 0 watches the listeners. It accepts, the
    /// balancer picks a loop (counting the connection at once, so the next
    /// pick is exact), and the socket goes to that loop through its note
    /// queue, or stays here. No other loop is woken for it.
    fn accept_and_hand_off(&mut self, li: usize) -> Flow {
        let sock = match self.accept_one(li) {
            Ok(sock) => sock,
            Err(flow) => return flow,
        };
        let to = self.shared.balancer.choose(true);
        if to == self.idx {
            return self.admit(S::from(sock), li);
        }
        if let Err(e) = self.shared.notes[to].add(Note::Adopt { sock, li }) {
            // The loop could not be signalled: the note (and the socket)
            // waits for its next wake, which is all we can do.
            return self.report(&e);
        }
        Flow::Go
    }
    // ANCHOR_END: hand_off

    /// The listener of address `li` as this loop sees it: its own socket
    /// under `Accept::ReusePort`, else the one every loop shares.
    fn listener(&self, li: usize) -> &'s Listener {
        let shared = self.shared;
        let own = shared.own.get(self.idx).and_then(|own| own.get(li));
        own.and_then(Option::as_ref)
            .unwrap_or(&shared.listeners[li])
    }

    /// One `accept4`: the socket, or what the loop does about the error.
    /// Past `Limits::max_connections` the socket is closed at once: the
    /// client sees its connection end rather than wait (chapter 15).
    fn accept_one(&mut self, li: usize) -> Result<Sock, Flow> {
        let shared = self.shared;
        let listener = self.listener(li);
        let sock = listener
            .accept_nonblocking()
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR | libc::ECONNABORTED) => Flow::Go,
                Some(libc::EMFILE | libc::ENFILE) => {
                    self.shed(li);
                    self.report(&e)
                }
                _ => self.report(&e),
            })?;
        self.count(Count::Accepts, 1);
        if shared.balancer.total() >= shared.limits.max_connections {
            self.count(Count::Rejected, 1);
            return Err(Flow::Go); // `sock` is dropped: closed
        }
        Ok(sock)
    }

    /// Counts a connection this loop chose to take, and takes it in.
    pub(crate) fn take(&mut self, sock: S, li: usize) -> Flow {
        self.shared.balancer.add(self.idx);
        self.admit(sock, li)
    }

    /// Takes a new connection, already counted on this loop, into the loop.
    /// `Deferred` (evio's `AddReadWrite` in `loopAccept`): registered for
    /// read and write, so that the next wait reports it writable and the
    /// open step runs then. `Eager`: registered for read, and opened at once.
    pub(crate) fn admit(&mut self, sock: S, li: usize) -> Flow {
        let fd = sock.fd();
        let shared = self.shared;
        let state = ConnState::new(shared.writes, shared.trigger, shared.limits.output_limit);
        if let Err(e) = dispatch::watch(&mut self.poll, fd, state.trigger, state.interest, true) {
            self.shared.balancer.release(self.idx);
            return self.report(&e); // `sock` is dropped: the fd is closed
        }
        self.count(Count::InterestChanges, 1);
        self.last_id += 1;
        let conn = Conn::new(fd, self.last_id, li, sock.ends(), Some(self.wake.clone()))
            .with_writer_limit(self.shared.writer_limit);
        if self.slots.len() <= fd as usize {
            self.slots.resize_with(fd as usize + 1, || None);
        }
        let mut clocks = Clocks::new(self.now);
        let (limits, key) = (&self.shared.limits, (fd, conn.id));
        let slots = &self.slots;
        (self.deadlines).compact(self.shared.balancer.count(self.idx), || {
            let armed = |(fd, s): (usize, &Option<Slot<_, _>>)| {
                let s = s.as_ref()?;
                Some((s.clocks.armed()?, (fd as RawFd, s.conn.id)))
            };
            slots.iter().enumerate().filter_map(armed).collect()
        });
        self.deadlines.update(&mut clocks, key, limits, None);
        self.slots[fd as usize] = Some(Slot {
            conn,
            state,
            sock,
            clocks,
            queued: false,
        });
        match self.shared.writes {
            Writes::Deferred => Flow::Go,
            Writes::Eager => self.ready(fd),
        }
    }
    // ANCHOR_END: accept

    // ANCHOR: shed
    /// Out of file descriptors: the pending connection cannot be accepted,
    /// and since the listener is level-triggered every wait would report it
    /// again, spinning the loop (evio stops the server instead: weakness 5).
    /// Shed the connection with the loop's spare (`spare.rs`): accept it
    /// and close it at once. The client sees a closed connection rather
    /// than a hang, and the loop goes on. (libev and Node do the same with
    /// a spare fd; on Linux our spare is a small ring, which needs none.)
    ///
    /// With a spare fd and several loops, another loop's `accept` may take
    /// the fd the spare freed, and the spare cannot be had back (chapter
    /// 15). Then, or when no connection was waiting after all, this loop
    /// stops watching the listener for `ACCEPT_PAUSE` and tries again
    /// after, instead of spinning.
    fn shed(&mut self, li: usize) {
        let listener = self.listener(li);
        if self.spare.shed(listener) {
            return;
        }
        if self.poll.delete(listener.fd()).is_ok() {
            match &mut self.paused {
                Some((_, listeners)) => listeners.push(li),
                None => self.paused = Some((self.now + ACCEPT_PAUSE, vec![li])),
            }
        }
    }

    /// The pause is over: watch the listeners again (the way `Server::bind`
    /// did) and get a spare back if one can be had.
    fn resume_accepting(&mut self) {
        let Some((_, paused)) = self.paused.take() else {
            return;
        };
        for li in paused {
            let fd = self.listener(li).fd();
            let _ = match self.shared.accept {
                Accept::Exclusive => self.poll.add_exclusive(fd, Interest::READ),
                _ => self.poll.add(fd, Interest::READ),
            };
        }
        self.spare.restore();
    }
    // ANCHOR_END: shed

    // ANCHOR: expire
    /// Closes every connection whose time is up: idle, over its output limit
    /// for too long, or past its deadline (chapter 15). An entry whose
    /// connection was active since is armed again for later instead.
    fn expire(&mut self) -> Flow {
        while let Some((at, (fd, id))) = self.deadlines.pop_due(self.now) {
            let Some(slot) = wake_target(&mut self.slots, fd, id, |s| s.conn.id) else {
                continue; // closed since: a stale entry
            };
            let (limits, deadline) = (&self.shared.limits, slot.conn.deadline());
            let why =
                (self.deadlines).due(at, self.now, (fd, id), &mut slot.clocks, limits, deadline);
            if let Some(why) = why {
                self.count(Count::TimedOut, 1);
                if self.close(fd, Some(why.error())) == Flow::Stop {
                    return Flow::Stop;
                }
            }
        }
        Flow::Go
    }
    // ANCHOR_END: expire

    // ANCHOR: udp
    /// A datagram arrived (evio's `loopUDPRead`): read it, and hand it to
    /// `shared::datagram`, which calls `data` and sends the reply.
    fn udp_read(&mut self, li: usize) -> Flow {
        let Listener::Udp(socket) = self.listener(li) else {
            return Flow::Go;
        };
        let (n, remote) = match socket.recv_from(&mut self.buf) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Go,
            Err(e) => return self.report(&e),
        };
        if self.shared.balancer.rule() == LoadBalance::RoundRobin {
            self.shared.balancer.advance_turn();
        }
        let local = self.shared.addrs[li].socket_addr();
        let (fd, input) = (socket.as_raw_fd(), &self.buf[..n]);
        let action = shared::datagram(
            self.events,
            socket,
            fd,
            li,
            local,
            remote,
            input,
            &mut self.udp_out,
        );
        Flow::after(action)
    }
    // ANCHOR_END: udp

    // ANCHOR: close
    // ANCHOR: close_conn
    /// Closes a connection (evio's `loopCloseConn`). Closing the fd also
    /// removes it from epoll, so no `epoll_ctl` is needed.
    pub(crate) fn close(&mut self, fd: RawFd, err: Option<io::Error>) -> Flow {
        let Some(Slot { mut conn, sock, .. }) = self.slots[fd as usize].take() else {
            return Flow::Go;
        };
        self.shared.balancer.release(self.idx);
        conn.gone();
        // `closed` may still ask for the addresses, which `Conn` reads
        // through the fd: close it after the callback, not before (evio
        // closes first, but it copied the addresses when the conn opened).
        // A `closed` that panics has nothing left to close.
        let closed = catch(self.shared.panics, || self.events.closed(&mut conn, err));
        if !P::FORGETS_ON_CLOSE {
            // A backend that cannot see the close (chapter 3) is told.
            let _ = self.poll.delete(fd);
            self.count(Count::InterestChanges, 1);
        }
        drop(sock);
        closed.map_or(Flow::Go, Flow::after)
    }
    // ANCHOR_END: close_conn

    // ANCHOR: detach
    /// Hands a connection over (evio's `loopDetachConn`): out of the poller,
    /// back to blocking mode, wrapped in a std stream. `closed` is not called.
    fn detach(&mut self, fd: RawFd) -> Flow {
        let Some(Slot { mut conn, sock, .. }) = self.slots[fd as usize].take() else {
            return Flow::Go;
        };
        self.shared.balancer.release(self.idx);
        conn.gone();
        let blocking = sock.set_blocking();
        let _ = self.poll.delete(fd);
        self.count(Count::InterestChanges, 1);
        let events = self.events;
        let action = catch(self.shared.panics, || match blocking {
            Ok(()) => events.detached(&mut conn, sock.into_stream()),
            // `sock` is dropped (closed) after `closed`, as in `close`.
            Err(e) => events.closed(&mut conn, Some(e)),
        });
        action.map_or(Flow::Go, Flow::after)
    }
    // ANCHOR_END: detach

    // ANCHOR: close_all
    /// Closes every connection at the end; each gets `closed`.
    pub(crate) fn close_all(&mut self) {
        for fd in 0..self.slots.len() {
            if self.slots[fd].is_some() {
                self.close(fd as RawFd, None);
            }
        }
    }
    // ANCHOR_END: close_all
    // ANCHOR_END: close

    /// Reads at most `n` bytes at a time: chapter 11's state-machine test
    /// makes input arrive in several pieces this way.
    #[cfg(test)]
    pub(crate) fn set_read_buffer(&mut self, n: usize) {
        self.buf.truncate(n);
    }

    /// Whether the loop will come back to a connection on its next turn
    /// (`Trigger::Edge`): for chapter 13's state-machine test.
    #[cfg(test)]
    pub(crate) fn coming_back(&self) -> bool {
        !self.again.is_empty()
    }

    /// The loop's bookkeeping for the connection at `fd`, if it holds one:
    /// for chapter 11's state-machine test.
    #[cfg(test)]
    pub(crate) fn slot(&self, fd: RawFd) -> Option<&Slot<E::Context, S>> {
        self.slots.get(fd as usize)?.as_ref()
    }
}
