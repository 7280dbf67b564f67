//! The dispatch of one ready connection: evio's five-way switch, and the
//! three steps that follow it (open, write, act, read), plus a wake-up.
//!
//! Chapter 5, "The loop and its dispatch", explains [`next_step`] and
//! [`ready`]; chapter 7, "Deferred actions and writes", explains
//! [`wanted_interest`], `output_produced` and the write step. They mirror
//! evio's `loopRun` switch and `loopOpened`, `loopWrite`, `loopAction`,
//! `loopRead`, `loopWake` (`evio_unix.go`).
//!
//! Everything here works on a [`ConnState`], a [`ConnIo`] and a [`Poll`], so
//! the tests drive the real code with a fake socket and a fake poller: no
//! kernel needed. The loop (`event_loop.rs`) owns the connections and carries
//! out the [`Outcome`] (closing, detaching, shutting down).
//!
//! Three design decisions of evio's are each made in exactly one place here,
//! so that a better alternative is a new branch, not a rewrite:
//! *when output is written* (`output_produced`), *which interest is
//! registered while output is pending* ([`wanted_interest`]), and, in
//! `balance.rs` and `Server::bind`, *who accepts*. The first two are one
//! choice, [`Writes`]: evio's `Deferred`, or `Eager`, which chapter 13,
//! "Beyond evio", explains and measures.
//!
//! The small functions carry `#[inline]`, a hint that lets the compiler fold
//! them into [`ready`], which runs per request: as calls, each with its own
//! register saves and result copies, they and their like in `event_loop.rs`
//! and `stats.rs` cost the echo server about 175 of its 780 user-space
//! instructions per round trip (chapter 14 counts them with callgrind).

use std::io;

use crate::api::{Action, Trigger, Writes};
use crate::conn::{Conn, Deliver};
use crate::events::Events;
use crate::poll::{Interest, Poll};
use crate::shared;

/// A fully written output buffer with at most this much capacity is kept for
/// the next reply; a bigger one is freed, so one large reply does not pin
/// memory for the rest of the connection's life. evio's number.
pub const KEEP_OUTPUT_CAPACITY: usize = 4096;

// ANCHOR: conn_state
/// The loop's bookkeeping for one connection: evio's `conn` fields `opened`,
/// `out`, `action`, plus the interest currently registered.
#[derive(Debug)]
pub struct ConnState {
    /// The open step has run.
    pub(crate) opened: bool,
    /// Output not yet written: `out[written..]`.
    out: Vec<u8>,
    written: usize,
    /// The action to perform once the output is written.
    pub(crate) action: Action,
    /// What the poller is watching this connection for.
    pub(crate) interest: Interest,
    /// When output is written, and what is watched meanwhile.
    pub(crate) writes: Writes,
    /// `Eager`: past this much pending output the peer is not read
    /// (`Limits::output_limit`, chapter 15).
    output_limit: usize,
    /// How the poller reports this connection (chapter 13).
    pub(crate) trigger: Trigger,
    /// What the poller has reported that no step has used up since: a read
    /// that comes back short or would block ends `read`, a write that does
    /// ends `write`. `Edge` needs it ([`again`]); `Level` keeps it unused.
    pub(crate) ready: Interest,
    /// The poller reported the peer closed, or the socket failed: a short
    /// read then does not use up `ready.read`, for the end is still to be
    /// read, and no report will come for it again.
    pub(crate) closed: bool,
}
// ANCHOR_END: conn_state

impl ConnState {
    /// A connection just accepted, not opened yet, registered for what
    /// [`wanted_interest`] says.
    pub fn new(writes: Writes, trigger: Trigger, output_limit: usize) -> Self {
        let mut s = ConnState {
            opened: false,
            out: Vec::new(),
            written: 0,
            action: Action::None,
            interest: Interest::READ,
            writes,
            output_limit,
            trigger,
            ready: Interest::NONE,
            closed: false,
        };
        s.interest = wanted_interest(&s);
        s
    }

    /// The bytes still to write.
    #[inline]
    pub fn pending_output(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// `Eager`: output is pending, yet the peer may still be read: it is
    /// under the output limit and no action waits for the output to go.
    #[inline]
    fn reads_while_pending(&self) -> bool {
        let pending = self.pending_output().len();
        self.writes == Writes::Eager
            && pending > 0
            && pending <= self.output_limit
            && self.action == Action::None
    }
}

// ANCHOR: conn_io
/// The two system calls a connection needs; a fake in the tests.
pub trait ConnIo {
    /// `read(2)`: `Ok(0)` means the peer closed.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// `write(2)`: may write only part of `buf`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
}
// ANCHOR_END: conn_io

/// What the loop must do after a step.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing more: the connection stays.
    Continue,
    /// Close the connection; `closed` gets the error, if any.
    Close(Option<io::Error>),
    /// Take the connection out of the loop and hand it to `detached`.
    Detach,
    /// Stop the server.
    Shutdown,
}

// ANCHOR: step
/// The step a ready connection gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Run `opened` (evio's `loopOpened`).
    Open,
    /// Write pending output (evio's `loopWrite`).
    Write,
    /// Perform the pending action, all output being written (`loopAction`).
    Act(Action),
    /// Read input and run `data` (evio's `loopRead`).
    Read,
}

/// evio's switch in `loopRun`, for a connection (the first case, "no
/// connection: it is a listener", is the loop's). The state alone decides;
/// the readiness the kernel reported is not looked at, as in evio.
#[inline]
pub fn next_step(s: &ConnState) -> Step {
    if !s.opened {
        Step::Open
    } else if !s.pending_output().is_empty() {
        Step::Write
    } else if s.action != Action::None {
        Step::Act(s.action)
    } else {
        Step::Read
    }
}
// ANCHOR_END: step

// ANCHOR: wanted_interest
/// Decision: *which interest is registered*.
///
/// - `Deferred`, evio's rule: read and write while the connection is not
///   opened (so that the next wait runs the open step), has output pending,
///   or has an action pending; read only otherwise. Read stays on while
///   output is pending, which is evio's weakness 3 (chapter 7 shows the spin
///   it causes).
/// - `Eager`: read and write while output is pending (the socket would
///   have blocked) but under the output limit, so that a client that sends
///   a long pipeline before it reads still gets through; write only past
///   the limit or with an action pending; read otherwise. A peer that does
///   not read is not read from either once its output reaches the limit:
///   its input waits in the kernel (back-pressure), and the loop is not
///   woken for it again and again (chapters 13 and 15).
#[inline]
pub fn wanted_interest(s: &ConnState) -> Interest {
    let pending = !s.pending_output().is_empty();
    match s.writes {
        Writes::Deferred if !s.opened || pending || s.action != Action::None => {
            Interest::READ_WRITE
        }
        Writes::Deferred => Interest::READ,
        Writes::Eager if s.reads_while_pending() => Interest::READ_WRITE,
        Writes::Eager if pending => Interest::WRITE,
        Writes::Eager => Interest::READ,
    }
}
// ANCHOR_END: wanted_interest

// ANCHOR: sync_interest
/// Registers [`wanted_interest`] if it differs from what is registered.
/// evio calls `ModRead`/`ModReadWrite` unconditionally; remembering the
/// registered interest saves the `epoll_ctl` when nothing changes.
#[inline]
fn sync_interest<P: Poll>(poll: &mut P, fd: i32, s: &mut ConnState) -> Outcome {
    let want = wanted_interest(s);
    if want == s.interest {
        return Outcome::Continue;
    }
    match watch(poll, fd, s.trigger, want, false) {
        Ok(()) => {
            s.interest = want;
            Outcome::Continue
        }
        // evio panics here (weakness 12); one connection's error must not
        // take the server down, so we close just that connection.
        Err(e) => Outcome::Close(Some(e)),
    }
}
// ANCHOR_END: sync_interest

// ANCHOR: watch
/// Decision: *how readiness is reported*. evio's level-triggered watch,
/// or an edge-triggered one (chapter 13). `new`: the first registration.
#[inline]
pub fn watch<P: Poll>(
    poll: &mut P,
    fd: i32,
    trigger: Trigger,
    interest: Interest,
    new: bool,
) -> io::Result<()> {
    match (trigger, new) {
        (Trigger::Level, true) => poll.add(fd, interest),
        (Trigger::Level, false) => poll.modify(fd, interest),
        (Trigger::Edge, true) => poll.add_edge(fd, interest),
        (Trigger::Edge, false) => poll.modify_edge(fd, interest),
    }
}

/// `Edge`: whether the loop must come back to this connection on its next
/// turn, unasked, because the step it would run has a readiness to use
/// that the poller will not report again: a read that filled the buffer
/// left input behind, a write that took all the output left room, a
/// report came for a step that did not use it. Each such step uses some
/// up or makes progress, so this ends. `Level`: never; the poller tells.
#[inline]
pub fn again(s: &ConnState) -> bool {
    let read = s.ready.read && s.interest.read;
    let write = s.ready.write && s.interest.write;
    s.trigger == Trigger::Edge
        && match next_step(s) {
            Step::Open | Step::Act(_) => read || write,
            Step::Write => write || (read && s.reads_while_pending()),
            Step::Read => read,
        }
}
// ANCHOR_END: watch

// ANCHOR: output_produced
/// Decision: *when output is written*. A callback has just produced output
/// or an action.
///
/// - `Deferred`, evio's rule: never write now; arm write interest and write
///   when the next wait reports the socket writable. This costs two
///   `epoll_ctl` calls and one extra wait per reply (weakness 4, chapter 7).
/// - `Eager`: write now, as much as the socket takes, and act at once if
///   all of it went; only output that would block waits for the next wait.
///   One `read` and one `write` per reply, no `epoll_ctl`.
#[inline]
fn output_produced<E: Events, P: Poll, S: ConnIo>(
    events: &E,
    poll: &mut P,
    fd: i32,
    s: &mut ConnState,
    io: &mut S,
) -> Outcome {
    match s.writes {
        Writes::Deferred => sync_interest(poll, fd, s),
        // Already waiting to write: the socket was full a moment ago, so a
        // write now would only say EAGAIN again. The wait will tell; but
        // past the output limit, or with an action now pending, stop reading.
        Writes::Eager if s.interest.write => sync_interest(poll, fd, s),
        Writes::Eager => write(events, poll, fd, s, io),
    }
}
// ANCHOR_END: output_produced

#[inline]
fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

// ANCHOR: ready
/// Runs the step [`next_step`] picks for a ready connection.
pub fn ready<E: Events, P: Poll, S: ConnIo>(
    events: &E,
    poll: &mut P,
    c: &mut Conn<E::Context>,
    s: &mut ConnState,
    io: &mut S,
    buf: &mut [u8],
) -> Outcome {
    match next_step(s) {
        Step::Open => {
            s.opened = true;
            let (options, action) = events.opened(c, &mut s.out);
            s.action = action;
            if let Some(idle) = options.tcp_keep_alive {
                c.set_keep_alive(idle);
            }
            output_produced(events, poll, c.fd, s, io)
        }
        Step::Write => match write(events, poll, c.fd, s, io) {
            // `Eager` under the output limit: the wait may have reported
            // the socket readable rather than writable, so read too.
            Outcome::Continue if s.reads_while_pending() => read(events, poll, c, s, io, buf),
            outcome => outcome,
        },
        Step::Act(Action::Close) => Outcome::Close(None),
        Step::Act(Action::Detach) => Outcome::Detach,
        Step::Act(Action::Shutdown) => Outcome::Shutdown,
        Step::Act(Action::None) => unreachable!("next_step never acts on None"),
        Step::Read => read(events, poll, c, s, io, buf),
    }
}

/// The read step (evio's `loopRead`): input goes to `data`, whose output is
/// appended to any still pending (`Eager` reads while some is).
fn read<E: Events, P: Poll, S: ConnIo>(
    events: &E,
    poll: &mut P,
    c: &mut Conn<E::Context>,
    s: &mut ConnState,
    io: &mut S,
    buf: &mut [u8],
) -> Outcome {
    let got = io.read(buf);
    // Used up: the socket said so, or gave less than the buffer holds,
    // which a stream socket does only when it has no more (tokio's rule
    // too), unless the end is still to be read. An interrupted read used
    // up nothing.
    match &got {
        Ok(n) if *n < buf.len() && !s.closed => s.ready.read = false,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.ready.read = false,
        _ => {}
    }
    match got {
        // The peer will send no more, but may still read: output pending
        // (`Eager` reads while some is) goes first, then the close.
        Ok(0) if !s.pending_output().is_empty() => {
            s.action = Action::Close;
            sync_interest(poll, c.fd, s)
        }
        Ok(0) => Outcome::Close(None),
        Ok(n) => {
            s.action = events.data(c, &buf[..n], &mut s.out);
            output_produced(events, poll, c.fd, s, io)
        }
        Err(e) if would_block(&e) => Outcome::Continue,
        Err(e) => Outcome::Close(Some(e)),
    }
}
// ANCHOR_END: ready

// ANCHOR: write
/// Writes as much pending output as the socket takes (evio's `loopWrite`),
/// then registers what is wanted now. `Eager` acts at once when the last
/// byte has gone; `Deferred` waits for the next wait's act step, as evio.
fn write<E: Events, P: Poll, S: ConnIo>(
    events: &E,
    poll: &mut P,
    fd: i32,
    s: &mut ConnState,
    io: &mut S,
) -> Outcome {
    if !s.pending_output().is_empty() {
        events.pre_write();
        let pending = s.pending_output().len();
        match io.write(&s.out[s.written..]) {
            Ok(0) => return Outcome::Close(Some(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                s.written += n;
                // Short: the socket is full (as a short read in `read`).
                s.ready.write &= n == pending;
            }
            // Deferred: the wait said writable, but it was not (another
            // writer, a spurious wake-up): wait again. Eager: register write.
            Err(e) if would_block(&e) => {
                s.ready.write &= e.kind() == io::ErrorKind::Interrupted;
                if s.writes == Writes::Deferred {
                    return Outcome::Continue;
                }
            }
            Err(e) => return Outcome::Close(Some(e)),
        }
        if s.written == s.out.len() {
            s.written = 0;
            s.out.clear();
            if s.out.capacity() > KEEP_OUTPUT_CAPACITY {
                s.out = Vec::new();
            }
        }
    }
    if s.writes == Writes::Eager && s.pending_output().is_empty() {
        match s.action {
            Action::None => {}
            Action::Close => return Outcome::Close(None),
            Action::Detach => return Outcome::Detach,
            Action::Shutdown => return Outcome::Shutdown,
        }
    }
    sync_interest(poll, fd, s)
}
// ANCHOR_END: write

// ANCHOR: push
/// A wake-up (evio's `loopWake`: `data` with no input), or bytes or a
/// close from a [`Writer`](crate::Writer) on another thread (chapter 13),
/// applied as `shared::delivered` says: unlike evio, a wake's output is
/// *appended* to pending output and its action does not replace a pending
/// one (evio's weakness 7 loses both). Then the strategy writes as after a
/// callback. A connection not opened yet is not woken: `data` must never
/// run before `opened`.
pub fn push<E: Events, P: Poll, S: ConnIo>(
    events: &E,
    poll: &mut P,
    c: &mut Conn<E::Context>,
    s: &mut ConnState,
    io: &mut S,
    what: Deliver,
) -> Outcome {
    if matches!(what, Deliver::Wake) && !s.opened {
        return Outcome::Continue;
    }
    shared::delivered(events, c, &mut s.out, &mut s.action, what);
    output_produced(events, poll, c.fd, s, io)
}
// ANCHOR_END: push
