//! A state-machine test of one connection's life in the reactor's loop
//! (chapter 11, "Testing what is hard to test").
//!
//! proptest makes up sequences of [`Op`]s (the kernel reports the socket
//! ready, the socket takes some bytes or none, the peer sends, closes or
//! resets, the handler's next answer, a wake-up, bytes or a close from a
//! [`Writer`](crate::Writer) on another thread), and runs each through the
//! *real* loop (`event_loop.rs`): [`Loop::take`] takes the connection in as
//! an accept does, [`Loop::ready`], [`Loop::wake`] and [`Loop::deliver`] run the dispatch
//! (`dispatch.rs`) and carry out its outcome with the loop's own `finish`,
//! `close` and `detach`, and [`Loop::close_all`] ends it as a stopping loop
//! does. Only the socket and the poller are fakes. After every step the
//! result is compared with a small reference [`Model`] written from evio's
//! rules (`loopRun`, `loopOpened`, `loopWrite`, `loopAction`, `loopRead`,
//! `loopWake`, `loopCloseConn`, `loopDetachConn` in `evio_unix.go`) and
//! checked against the invariants in [`check`]. A failing sequence is shrunk
//! to a minimal one, and its seed saved in
//! `proptest-regressions/reactor/dispatch_model.txt`, which every later run
//! replays first.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

use super::dispatch::ConnIo;
use super::event_loop::{Loop, Shared, Socket};
use super::note::Note;
use super::spare::Spare;
use crate::api::{Action, Flow, Options, Stream, Trigger, Writes};
use crate::conn::{Conn, Deliver, Ends};
use crate::events::Events;
use crate::notes::NoteQueue;
use crate::poll::{Event, Interest, Poll, Signal};
use crate::shared::Sock;

/// The connection's fd, as the fake poller knows it.
const FD: RawFd = 7;
/// The id the loop gives its first connection.
const ID: u64 = 1;
/// The loop's read buffer: small, so that input is read in several pieces.
const READ_BUFFER: usize = 8;

/// `Limits::output_limit` in the model: small, so that scripted answers
/// cross it and `Eager`'s reading while output is pending is checked on
/// both sides of the limit (chapter 15).
const OUTPUT_LIMIT: usize = 12;

// ANCHOR: op
/// One thing that happens to the connection or around it.
#[derive(Clone)]
enum Op {
    /// The kernel reports the socket ready: the loop's `ready`.
    Ready,
    /// The socket now takes this many bytes before it says EAGAIN (0: full).
    Room(usize),
    /// The peer sends bytes.
    Send(Vec<u8>),
    /// The peer closes its end (a read returns 0 once the input is read).
    PeerClose,
    /// The peer resets the connection: reads and writes fail.
    PeerReset,
    /// The handler's answer to its next `opened` or `data` call.
    Answer(Vec<u8>, Action),
    /// A wake note for this connection: the loop's `wake`.
    Wake,
    /// A writer's bytes (chapter 13), as the loop takes them from its queue.
    WriterWrite(Vec<u8>),
    /// A writer's close (chapter 13).
    WriterClose,
    /// The next `epoll_ctl` fails (ENOMEM).
    CtlFails,
}
// ANCHOR_END: op

/// Bytes as text, so that a shrunk case reads `Answer("ab", Close)`.
impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Op::Ready => write!(f, "Ready"),
            Op::Room(n) => write!(f, "Room({n})"),
            Op::Send(b) => write!(f, "Send({:?})", text(b)),
            Op::PeerClose => write!(f, "PeerClose"),
            Op::PeerReset => write!(f, "PeerReset"),
            Op::Answer(b, a) => write!(f, "Answer({:?}, {a:?})", text(b)),
            Op::Wake => write!(f, "Wake"),
            Op::WriterWrite(b) => write!(f, "WriterWrite({:?})", text(b)),
            Op::WriterClose => write!(f, "WriterClose"),
            Op::CtlFails => write!(f, "CtlFails"),
        }
    }
}

// ANCHOR: strategy
/// Ops, the most common first: proptest shrinks a choice towards the first
/// alternative, so a minimal case uses `Ready` and `Action::None` where it can.
fn op() -> impl Strategy<Value = Op> {
    let action = prop_oneof![
        4 => Just(Action::None),
        1 => Just(Action::Close),
        1 => Just(Action::Detach),
        1 => Just(Action::Shutdown),
    ];
    prop_oneof![
        20 => Just(Op::Ready),
        8 => (0usize..12).prop_map(Op::Room),
        8 => vec(b'A'..=b'Z', 1..12).prop_map(Op::Send),
        2 => Just(Op::PeerClose),
        1 => Just(Op::PeerReset),
        8 => (vec(b'a'..=b'z', 0..10), action).prop_map(|(out, a)| Op::Answer(out, a)),
        5 => Just(Op::Wake),
        1 => Just(Op::CtlFails),
    ]
}

/// [`op`], and a writer's bytes or close (chapter 13). Apart from `op`, so
/// that the shrink test below, which uses `op` alone, still makes up and
/// shrinks the very case chapter 11 prints.
fn op_or_writer() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => op(),
        2 => vec(b'0'..=b'9', 1..8).prop_map(Op::WriterWrite),
        1 => Just(Op::WriterClose),
    ]
}
// ANCHOR_END: strategy

/// The peer's end of the fake socket, and what the kernel knows of it.
#[derive(Default)]
struct Wire {
    /// Sent by the peer, not read yet.
    inbound: VecDeque<u8>,
    peer_closed: bool,
    reset: bool,
    /// How many more bytes a write may take.
    room: usize,
    /// What the peer has received.
    received: Vec<u8>,
    reads: usize,
    /// The loop has closed the fd (dropped the socket).
    fd_closed: bool,
}

/// What the fake poller holds for the one fd.
#[derive(Default)]
struct Registration {
    registered: Option<Interest>,
    fail_next: bool,
    /// Registered edge-triggered (`add_edge`, `modify_edge`).
    edge: bool,
    /// Edge-triggered: queued to be reported by the next wait, as epoll
    /// queues an fd when the socket wakes it or `epoll_ctl` finds it ready.
    queued: bool,
}

impl Registration {
    /// What a poll of the socket finds, as far as this registration asks
    /// for it (`None`: nothing), as the kernel's `tcp_poll` and epoll's
    /// mask: input or the peer's end make it readable, room writable, an
    /// error (a reset) both; the peer's end is told only to read interest.
    fn wanted(&self, w: &Wire) -> Option<Event> {
        let i = self.registered?;
        let readable = i.read && (!w.inbound.is_empty() || w.peer_closed || w.reset);
        let writable = i.write && (w.room > 0 || w.reset);
        (readable || writable).then_some(Event {
            fd: FD,
            readable,
            writable,
            closed: (i.read && w.peer_closed) || w.reset,
        })
    }
}

/// The socket, as the loop owns it: the dispatch reads and writes through
/// it ([`ConnIo`]); dropping it is closing the fd, which removes it from
/// the poller, as closing does in the kernel.
struct FakeSocket {
    wire: Arc<Mutex<Wire>>,
    reg: Arc<Mutex<Registration>>,
    /// Handed to `detached`: the fd stays open, and registered unless the
    /// loop deleted it.
    handed_over: bool,
}

impl ConnIo for FakeSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut w = self.wire.lock().unwrap();
        w.reads += 1;
        if w.reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if w.inbound.is_empty() {
            return match w.peer_closed {
                true => Ok(0),
                false => Err(io::ErrorKind::WouldBlock.into()),
            };
        }
        let n = buf.len().min(w.inbound.len());
        for (b, byte) in buf.iter_mut().zip(w.inbound.drain(..n)) {
            *b = byte;
        }
        Ok(n)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut w = self.wire.lock().unwrap();
        if w.reset {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if w.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(w.room);
        w.room -= n;
        w.received.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl From<Sock> for FakeSocket {
    fn from(_: Sock) -> Self {
        unreachable!("the model's loop has no listener to accept from")
    }
}

impl Socket for FakeSocket {
    fn fd(&self) -> RawFd {
        FD
    }

    fn ends(&self) -> Ends {
        Ends::Fd { unix: false }
    }

    fn set_blocking(&self) -> io::Result<()> {
        Ok(())
    }

    /// A real stream for `detached`, unrelated to the fake.
    fn into_stream(mut self) -> Stream {
        self.handed_over = true;
        Stream::Unix(UnixStream::pair().expect("socketpair").0)
    }
}

impl Drop for FakeSocket {
    fn drop(&mut self) {
        if !self.handed_over {
            self.wire.lock().unwrap().fd_closed = true;
            self.reg.lock().unwrap().registered = None;
        }
    }
}

/// A poller that remembers what the connection is registered for, and
/// (edge-triggered) whether it is queued to be reported.
struct FakePoll {
    reg: Arc<Mutex<Registration>>,
    wire: Arc<Mutex<Wire>>,
}

impl FakePoll {
    /// After `add_edge` or `modify_edge`: edge-triggered from now on, and
    /// queued if ready for what is watched.
    fn edge_checks(&mut self) {
        let wire = self.wire.lock().unwrap();
        let mut reg = self.reg.lock().unwrap();
        reg.edge = true;
        reg.queued |= reg.wanted(&wire).is_some();
    }
}

struct NoSignal;

impl Signal for NoSignal {
    fn signal(&self) -> io::Result<()> {
        Ok(())
    }
}

impl Poll for FakePoll {
    type Signal = NoSignal;

    fn new() -> io::Result<Self> {
        Ok(FakePoll {
            reg: Arc::default(),
            wire: Arc::default(),
        })
    }

    fn signal(&self) -> NoSignal {
        NoSignal
    }

    fn add(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let mut reg = self.reg.lock().unwrap();
        assert_eq!((fd, reg.registered), (FD, None), "add twice");
        reg.registered = Some(interest);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let mut reg = self.reg.lock().unwrap();
        assert!(fd == FD && reg.registered.is_some(), "modify unregistered");
        if std::mem::take(&mut reg.fail_next) {
            return Err(io::Error::from_raw_os_error(libc::ENOMEM));
        }
        reg.registered = Some(interest);
        Ok(())
    }

    /// epoll's `EPOLLET`, as the chapter 13 test below needs it: `add` and
    /// `modify` poll the socket and queue it if it is ready for the new
    /// interest ([`World::wakes`] queues it too).
    const EDGE_TRIGGERED: bool = true;

    fn add_edge(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.add(fd, interest)?;
        self.edge_checks();
        Ok(())
    }

    fn modify_edge(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.modify(fd, interest)?;
        self.edge_checks();
        Ok(())
    }

    fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        let mut reg = self.reg.lock().unwrap();
        assert!(fd == FD && reg.registered.is_some(), "delete unregistered");
        reg.registered = None;
        Ok(())
    }

    fn wait(&mut self, _: &mut Vec<Event>, _: Option<Duration>) -> io::Result<()> {
        unreachable!("the test calls the loop's steps directly")
    }
}

/// A callback the handler saw.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    Opened,
    Data(Vec<u8>),
    /// `closed`, and whether it came with an error.
    Closed(bool),
    /// The loop handed the connection to `detached`.
    Detached,
}

/// The handler: answers from a script, and logs every call.
struct Handler {
    answers: Mutex<VecDeque<(Vec<u8>, Action)>>,
    calls: Mutex<Vec<Call>>,
    /// Every byte any callback produced, in order.
    produced: Mutex<Vec<u8>>,
    /// The peer's end, to see what it has received when an action runs.
    wire: Arc<Mutex<Wire>>,
    /// Set if the loop did something out of order: an action ran while
    /// output produced before it was unsent, or `closed` ran after the fd
    /// was closed.
    out_of_order: Mutex<Option<String>>,
    /// The server is ending: `close_all` may close with output unsent.
    ending: Mutex<bool>,
}

impl Handler {
    fn new(wire: Arc<Mutex<Wire>>) -> Self {
        Handler {
            answers: Mutex::default(),
            calls: Mutex::default(),
            produced: Mutex::default(),
            wire,
            out_of_order: Mutex::default(),
            ending: Mutex::default(),
        }
    }

    /// An action (Close, Detach or Shutdown) is being carried out: all the
    /// output produced before it must have reached the peer.
    fn acting(&self, what: &str) {
        let sent = self.wire.lock().unwrap().received.len();
        let produced = self.produced.lock().unwrap().len();
        if sent != produced && !*self.ending.lock().unwrap() {
            *self.out_of_order.lock().unwrap() = Some(format!("{what} with output unsent"));
        }
    }

    fn answer(&self, call: Call, out: &mut Vec<u8>) -> Action {
        self.calls.lock().unwrap().push(call);
        let (bytes, action) = self.answers.lock().unwrap().pop_front().unwrap_or_default();
        out.extend_from_slice(&bytes);
        self.produced.lock().unwrap().extend_from_slice(&bytes);
        action
    }
}

impl Events for Handler {
    type Context = ();

    fn opened(&self, _: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        (Options::default(), self.answer(Call::Opened, out))
    }

    fn data(&self, _: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        self.answer(Call::Data(input.to_vec()), out)
    }

    fn closed(&self, _: &mut Conn<()>, err: Option<io::Error>) -> Action {
        // `closed` may still ask for the addresses, through the fd.
        if self.wire.lock().unwrap().fd_closed {
            *self.out_of_order.lock().unwrap() =
                Some("closed called after the fd was closed".into());
        }
        // Close(None) comes from an action, or from a read of 0 bytes, which
        // happens only with nothing pending.
        if err.is_none() {
            self.acting("close");
        }
        self.calls.lock().unwrap().push(Call::Closed(err.is_some()));
        Action::None
    }

    fn detached(&self, _: &mut Conn<()>, _: Stream) -> Action {
        self.acting("detach");
        self.calls.lock().unwrap().push(Call::Detached);
        Action::None
    }
}

/// Where the connection is, for the loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Status {
    #[default]
    Open,
    Closed,
    Detached,
    /// The server stopped (`Shutdown`); the connection was closed with it.
    Stopped,
}

/// Which interest rule the invariant checks: the right one, or, to show a
/// failure being shrunk (chapter 11), one that forgets the pending action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Right,
    ForgetsPendingAction,
}

/// The system under test: the real loop, holding one connection on a fake
/// socket and a fake poller, and the handles the test reads them through.
struct World<'a> {
    lp: Loop<'a, Handler, FakePoll, FakeSocket>,
    events: &'a Handler,
    wire: Arc<Mutex<Wire>>,
    reg: Arc<Mutex<Registration>>,
    /// Waiting for the loop to take it in (see `step`).
    sock: Option<FakeSocket>,
    status: Status,
    /// `Op::Ready` is a turn of the loop: the fake poller's report, if it
    /// has one, then the connections the loop comes back to (chapter 13's
    /// test); else the dispatch of the connection, whatever the poller.
    turns: bool,
    /// The list the loop's turn lends (`Loop::handle`).
    retry: Vec<(RawFd, u64)>,
}

impl<'a> World<'a> {
    fn new(events: &'a Handler, shared: &'a Shared, notes: Arc<NoteQueue<Note>>) -> Self {
        let (wire, reg) = (events.wire.clone(), Arc::default());
        let poll = FakePoll {
            reg: Arc::clone(&reg),
            wire: wire.clone(),
        };
        let mut lp = Loop::new(0, poll, Spare::default(), notes, shared, events);
        lp.set_read_buffer(READ_BUFFER);
        let sock = FakeSocket {
            wire: wire.clone(),
            reg: Arc::clone(&reg),
            handed_over: false,
        };
        World {
            lp,
            events,
            wire,
            reg,
            sock: Some(sock),
            status: Status::Open,
            turns: false,
            retry: Vec::new(),
        }
    }

    /// The socket woke its watchers, for input (`read`), room (`write`) or
    /// its end (both): edge-triggered, the fd is queued if it is watched
    /// for that, or, for the end, at all (epoll's wake-up carries no key
    /// then).
    fn wakes(&mut self, read: bool, write: bool) {
        let mut reg = self.reg.lock().unwrap();
        if let Some(i) = reg.registered {
            let end = read && write;
            reg.queued |= end || (read && i.read) || (write && i.write);
        }
    }

    /// What a wait reports for the fd: level-triggered, what it is ready
    /// for; edge-triggered, that only if it was queued since the last.
    fn poll(&mut self) -> Vec<Event> {
        let wire = self.wire.lock().unwrap();
        let mut reg = self.reg.lock().unwrap();
        let queued = std::mem::take(&mut reg.queued);
        match reg.edge && !queued {
            true => None,
            false => reg.wanted(&wire),
        }
        .into_iter()
        .collect()
    }

    /// One turn of the loop, as `Loop::run` takes it after a wait.
    fn turn(&mut self) -> Flow {
        let ready = self.poll();
        self.lp.handle(&ready, &mut self.retry)
    }

    /// The loop takes the connection in, as `Loop::accept` does with a new
    /// socket: at the first op that is not a scripted answer, so that the
    /// answers before it reach `opened`, which `Eager` runs right here.
    fn admit(&mut self) {
        if let Some(sock) = self.sock.take() {
            let flow = self.lp.take(sock, 0);
            self.settle(flow);
        }
    }

    /// Where the connection is after the loop's step returned `flow`.
    fn settle(&mut self, flow: Flow) {
        if flow == Flow::Stop {
            // A `Shutdown`: the loop ends, and closes what it holds.
            self.lp.close_all();
            self.status = Status::Stopped;
        } else if self.status == Status::Open && self.sock.is_none() && self.state().is_none() {
            let detached = self.events.calls.lock().unwrap().last() == Some(&Call::Detached);
            self.status = if detached {
                Status::Detached
            } else {
                Status::Closed
            };
        }
    }

    /// The loop's bookkeeping for the connection, while it holds it.
    fn state(&self) -> Option<&super::dispatch::ConnState> {
        self.lp.slot(FD).map(|slot| &slot.state)
    }

    // ANCHOR: world_step
    /// Applies one op: to the fakes, or through the real loop.
    fn step(&mut self, op: &Op) {
        if !matches!(op, Op::Answer(..)) {
            self.admit();
        }
        let flow = match op {
            // What the loop does when the kernel reports the fd, or a wake
            // note names the connection (a gone one is looked up and not
            // found, as in the server).
            Op::Ready if self.turns => self.turn(),
            Op::Ready => self.lp.ready(FD),
            // Also a stale waker's note first (an id the loop never gave
            // this connection), which must reach nobody.
            Op::Wake => match self.lp.wake(FD, ID + 1) {
                Flow::Go => self.lp.wake(FD, ID),
                stop => stop,
            },
            // A writer exists only once `opened` has run (it is made in a
            // callback). Also a stale writer's note first, as for `Wake`;
            // bytes that reach the connection count as produced.
            Op::WriterWrite(_) | Op::WriterClose if !self.state().is_some_and(|s| s.opened) => {
                Flow::Go
            }
            Op::WriterWrite(_) | Op::WriterClose => {
                let bytes = match op {
                    Op::WriterWrite(bytes) => Some(bytes),
                    _ => None,
                };
                let what = || bytes.map_or(Deliver::Close, |b| Deliver::Write(b.clone()));
                match self.lp.deliver(FD, ID + 1, what()) {
                    Flow::Go => {
                        let mut produced = self.events.produced.lock().unwrap();
                        produced.extend(bytes.into_iter().flatten());
                        drop(produced);
                        self.lp.deliver(FD, ID, what())
                    }
                    stop => stop,
                }
            }
            Op::Room(n) => {
                self.wire.lock().unwrap().room = *n;
                self.wakes(false, *n > 0);
                Flow::Go
            }
            Op::Send(bytes) => {
                let mut w = self.wire.lock().unwrap();
                if !w.peer_closed && !w.reset {
                    w.inbound.extend(bytes);
                }
                drop(w);
                self.wakes(true, false);
                Flow::Go
            }
            Op::PeerClose => {
                self.wire.lock().unwrap().peer_closed = true;
                self.wakes(true, true);
                Flow::Go
            }
            Op::PeerReset => {
                self.wire.lock().unwrap().reset = true;
                self.wakes(true, true);
                Flow::Go
            }
            Op::Answer(bytes, action) => {
                let answer = (bytes.clone(), *action);
                self.events.answers.lock().unwrap().push_back(answer);
                Flow::Go
            }
            Op::CtlFails => {
                self.reg.lock().unwrap().fail_next = true;
                Flow::Go
            }
        };
        self.settle(flow);
    }
    // ANCHOR_END: world_step

    /// The server ends: `close_all` closes what is still open.
    fn end(&mut self) {
        self.admit();
        *self.events.ending.lock().unwrap() = true;
        self.lp.close_all();
    }
}

// ANCHOR: model
/// The reference: what should happen, after evio's rules (`Deferred`) or
/// chapter 13's (`Eager`), written without looking at `dispatch.rs`. It
/// keeps its own copy of the socket and script.
#[derive(Default)]
struct Model {
    writes: Writes,
    admitted: bool,
    status: Status,
    opened: bool,
    pending: Vec<u8>,
    action: Action,
    registered: Option<Interest>,
    calls: Vec<Call>,
    inbound: VecDeque<u8>,
    peer_closed: bool,
    reset: bool,
    room: usize,
    received: Vec<u8>,
    answers: VecDeque<(Vec<u8>, Action)>,
    ctl_fails: bool,
}

impl Model {
    fn new(writes: Writes) -> Self {
        Model {
            writes,
            ..Model::default()
        }
    }

    /// Accepted: `Deferred` registers read and write and waits; `Eager`
    /// registers read and opens at once.
    fn admit(&mut self) {
        if std::mem::replace(&mut self.admitted, true) {
            return;
        }
        self.registered = Some(demanded(Rule::Right, self.writes, false, 0, Action::None));
        if self.writes == Writes::Eager {
            self.opened = true;
            self.action = self.callback(Call::Opened);
            self.produced();
        }
    }

    fn step(&mut self, op: &Op) {
        if !matches!(op, Op::Answer(..)) {
            self.admit();
        }
        let open = self.status == Status::Open;
        match op {
            Op::Room(n) => self.room = *n,
            Op::Send(bytes) if !self.peer_closed && !self.reset => self.inbound.extend(bytes),
            Op::Send(_) => {}
            Op::PeerClose => self.peer_closed = true,
            Op::PeerReset => self.reset = true,
            Op::Answer(bytes, action) => self.answers.push_back((bytes.clone(), *action)),
            Op::CtlFails => self.ctl_fails = true,
            Op::Ready | Op::Wake | Op::WriterWrite(_) | Op::WriterClose if !open => {}
            // No writer before `opened`; after, its bytes go after all the
            // output so far, and its close waits for them as a `Close` does
            // (not replacing a pending action), then output is handled as
            // after a callback.
            Op::WriterWrite(_) | Op::WriterClose if !self.opened => {}
            Op::WriterWrite(bytes) => {
                self.pending.extend(bytes);
                self.produced();
            }
            Op::WriterClose => {
                if self.action == Action::None {
                    self.action = Action::Close;
                }
                self.produced();
            }
            // A wake before `opened` is dropped; after, it is `data` with no
            // input whose output is added and whose action does not replace
            // a pending one (evio replaces both: its weakness 7).
            Op::Wake if !self.opened => {}
            Op::Wake => {
                let action = self.callback(Call::Data(Vec::new()));
                if self.action == Action::None {
                    self.action = action;
                }
                self.produced();
            }
            // evio's switch: open, else write, else act, else read.
            Op::Ready if !self.opened => {
                self.opened = true;
                self.action = self.callback(Call::Opened);
                self.produced();
            }
            // `Eager` under the output limit writes, then reads too.
            Op::Ready if !self.pending.is_empty() => {
                self.write();
                if self.status == Status::Open && self.reads_while_pending() {
                    self.read();
                }
            }
            Op::Ready if self.action != Action::None => self.act(),
            Op::Ready => self.read(),
        }
    }

    /// `Eager`: output is pending but under the limit, no action waits.
    fn reads_while_pending(&self) -> bool {
        let n = self.pending.len();
        self.writes == Writes::Eager && n > 0 && n <= OUTPUT_LIMIT && self.action == Action::None
    }

    /// The read step: input to `data`, or the end of the connection.
    fn read(&mut self) {
        if self.reset {
            self.close(true);
        } else if !self.inbound.is_empty() {
            let n = READ_BUFFER.min(self.inbound.len());
            let input = self.inbound.drain(..n).collect();
            self.action = self.callback(Call::Data(input));
            self.produced();
        } else if self.peer_closed && !self.pending.is_empty() {
            self.action = Action::Close; // the output first, then the close
            self.sync();
        } else if self.peer_closed {
            self.close(false);
        }
    }

    /// A callback produced output or an action. `Deferred`: register what
    /// the state demands, write later. `Eager`: write now, unless already
    /// waiting for the socket to take the earlier output (then register
    /// what the state demands: past the limit, no more reading).
    fn produced(&mut self) {
        match self.writes {
            Writes::Deferred => self.sync(),
            Writes::Eager if self.registered.is_some_and(|r| r.write) => self.sync(),
            Writes::Eager => self.write(),
        }
    }

    /// The write step: the socket takes what it has room for. `Eager` then
    /// acts at once if the output is all gone; `Deferred` leaves that to the
    /// next ready step, and on a full socket does nothing at all.
    fn write(&mut self) {
        if !self.pending.is_empty() {
            if self.reset {
                return self.close(true);
            }
            if self.room == 0 && self.writes == Writes::Deferred {
                return;
            }
            let n = self.room.min(self.pending.len());
            self.received.extend(self.pending.drain(..n));
            self.room -= n;
        }
        if self.writes == Writes::Eager && self.pending.is_empty() && self.action != Action::None {
            return self.act();
        }
        self.sync();
    }

    /// The pending action, all output being written.
    fn act(&mut self) {
        match self.action {
            Action::Close => self.close(false),
            Action::Detach => {
                self.status = Status::Detached;
                self.registered = None;
                self.calls.push(Call::Detached);
            }
            Action::Shutdown => {
                self.close(false); // by the loop's `close_all`
                self.status = Status::Stopped;
            }
            Action::None => unreachable!("only a pending action is acted on"),
        }
    }

    /// The handler answers a call with the next scripted answer.
    fn callback(&mut self, call: Call) -> Action {
        self.calls.push(call);
        let (bytes, action) = self.answers.pop_front().unwrap_or_default();
        self.pending.extend(bytes);
        action
    }

    /// Registers what the state demands, if it changed; a failed
    /// `epoll_ctl` closes the connection with the error.
    fn sync(&mut self) {
        let want = demanded(
            Rule::Right,
            self.writes,
            self.opened,
            self.pending.len(),
            self.action,
        );
        if Some(want) != self.registered {
            if std::mem::take(&mut self.ctl_fails) {
                self.close(true);
            } else {
                self.registered = Some(want);
            }
        }
    }

    fn close(&mut self, err: bool) {
        self.status = Status::Closed;
        self.registered = None;
        self.calls.push(Call::Closed(err));
    }
}
// ANCHOR_END: model

// ANCHOR: demanded
/// The interest a connection must be registered for. evio's rule
/// (`Deferred`): read and write until opened and while output or an action
/// is pending, else read. `Eager`: read and write while output is pending
/// under the limit with no action; write only while output is pending
/// otherwise; else read.
fn demanded(rule: Rule, writes: Writes, opened: bool, pending: usize, action: Action) -> Interest {
    let action_pending = action != Action::None && rule == Rule::Right;
    match writes {
        Writes::Deferred if !opened || pending > 0 || action_pending => Interest::READ_WRITE,
        Writes::Deferred => Interest::READ,
        Writes::Eager if pending > 0 && pending <= OUTPUT_LIMIT && !action_pending => {
            Interest::READ_WRITE
        }
        Writes::Eager if pending > 0 => Interest::WRITE,
        Writes::Eager => Interest::READ,
    }
}
// ANCHOR_END: demanded

/// What the step being checked started from.
struct Before {
    open: bool,
    /// Output pending, and bytes the peer had received.
    pending: usize,
    received: usize,
    /// `Eager`, and no action pending.
    eager_no_action: bool,
    reads: usize,
}

// ANCHOR: invariants
/// The invariants, then agreement with the reference model.
fn check(world: &World, model: &Model, before: &Before, rule: Rule) -> Result<(), TestCaseError> {
    let produced = world.events.produced.lock().unwrap().clone();
    let calls = world.events.calls.lock().unwrap().clone();
    let wire = world.wire.lock().unwrap();
    let received = &wire.received;
    let registered = world.reg.lock().unwrap().registered;
    // 1. The peer receives the outputs in order, none lost or doubled.
    prop_assert!(produced.starts_with(received), "received {received:?}");
    if let Some(state) = world.state() {
        prop_assert_eq!([received, state.pending_output()].concat(), produced);
    }
    // 2. An action runs only after the output before it is written (and,
    //    for 3, `closed` runs while the fd is still open: the handler
    //    records either slip when it sees it).
    prop_assert_eq!(&*world.events.out_of_order.lock().unwrap(), &None);
    // 3. `closed` (or `detached`) fires at most once, and is the last call;
    //    a connection that is gone sees no system call.
    if let Some(end) = calls
        .iter()
        .position(|c| matches!(c, Call::Closed(_) | Call::Detached))
    {
        prop_assert_eq!(end, calls.len() - 1, "a call after the end: {:?}", calls);
    }
    prop_assert_eq!(world.state().is_some(), world.status == Status::Open);
    if !before.open {
        prop_assert_eq!(wire.reads, before.reads, "a read after the end");
    }
    // 4. The registered interest is what the state demands, and what the
    //    dispatch believes is registered.
    match world.state() {
        Some(s) => {
            let pending = s.pending_output().len();
            let want = demanded(rule, s.writes, s.opened, pending, s.action);
            prop_assert_eq!(registered, Some(want), "state {:?}", s);
            prop_assert_eq!(registered, Some(s.interest));
        }
        None => prop_assert_eq!(registered, None),
    }
    // 5. No read while output is pending (evio's rule), except `Eager`'s
    //    under the output limit with no action waiting (chapter 15): what
    //    counts is the output left after this step's write.
    let left = before
        .pending
        .saturating_sub(received.len() - before.received);
    let eager_reads = before.eager_no_action && left <= OUTPUT_LIMIT;
    if left > 0 && !eager_reads {
        prop_assert_eq!(wire.reads, before.reads, "read with output pending");
    }
    // And the dispatch did what the reference model says.
    prop_assert_eq!(world.status, model.status);
    prop_assert_eq!(&calls, &model.calls);
    prop_assert_eq!(received, &model.received);
    if let Some(s) = world.state() {
        prop_assert_eq!((s.opened, s.action), (model.opened, model.action));
        prop_assert_eq!(s.pending_output(), &model.pending[..]);
    }
    Ok(())
}
// ANCHOR_END: invariants

/// What the world is made of besides the loop: the scripted handler, what
/// the loop shares with other loops (here none), and its note queue.
fn parts(writes: Writes, trigger: Trigger) -> (Handler, Shared, Arc<NoteQueue<Note>>) {
    let notes = Arc::new(NoteQueue::new(Box::new(NoSignal)));
    let config = crate::api::Config {
        writes,
        trigger,
        limits: crate::api::Limits {
            output_limit: OUTPUT_LIMIT,
            ..crate::api::Limits::none()
        },
        ..Default::default()
    };
    let counters = Arc::new([Default::default()]);
    let shared = Shared::new(
        Vec::new(),
        Vec::new(),
        vec![notes.clone()],
        counters,
        &config,
    );
    (Handler::new(Arc::default()), shared, notes)
}

/// After the server's end: `closed` or `detached` ran exactly once.
fn ended_once(world: &World) -> Result<(), TestCaseError> {
    let calls = world.events.calls.lock().unwrap();
    let ends = calls
        .iter()
        .filter(|c| matches!(c, Call::Closed(_) | Call::Detached));
    prop_assert_eq!(
        ends.count(),
        1,
        "closed or detached exactly once: {:?}",
        calls
    );
    Ok(())
}

// ANCHOR: run
/// Runs `ops` through the real loop and the model, checking after each.
fn run(ops: &[Op], rule: Rule, writes: Writes) -> Result<(), TestCaseError> {
    let (events, shared, notes) = parts(writes, Trigger::default());
    let (mut world, mut model) = (World::new(&events, &shared, notes), Model::new(writes));
    for (i, op) in ops.iter().enumerate() {
        let (received, reads) = {
            let wire = world.wire.lock().unwrap();
            (wire.received.len(), wire.reads)
        };
        let before = Before {
            // Not accepted yet counts as open: it is about to be.
            open: world.sock.is_some() || world.state().is_some(),
            pending: world.state().map_or(0, |s| s.pending_output().len()),
            received,
            eager_no_action: world
                .state()
                .is_some_and(|s| s.writes == Writes::Eager && s.action == Action::None),
            reads,
        };
        world.step(op);
        model.step(op);
        if world.sock.is_some() {
            continue; // not accepted yet: only answers were scripted
        }
        check(&world, &model, &before, rule).map_err(|e| match e {
            TestCaseError::Fail(why) => {
                TestCaseError::fail(format!("after op {} ({writes:?}): {why}", i + 1))
            }
            reject => reject,
        })?;
    }
    // The server ends: `close_all` closes what is still open.
    if world.status == Status::Open {
        world.end();
        model.admit();
        if model.status == Status::Open {
            model.close(false);
        }
    }
    ended_once(&world)
}

proptest! {
    #![proptest_config(Config { cases: 2000, ..Config::default() })]

    #[test]
    fn ch11_dispatch_state_machine(ops in vec(op_or_writer(), 1..60)) {
        run(&ops, Rule::Right, Writes::Deferred)?;
        run(&ops, Rule::Right, Writes::Eager)?;
    }
}
// ANCHOR_END: run

// ANCHOR: edge
/// The most turns an edge-triggered loop may take to go quiet after the
/// last op: far more than it needs, so only a loop that comes back to a
/// connection forever reaches it.
const SETTLE_TURNS: usize = 100;

/// Chapter 13's edge-triggered loop (`Trigger::Edge`), turn by turn: the
/// same ops, with `Ready` a turn of the loop (`Loop::handle`) on a fake
/// poller that reports the fd only when the socket wakes it, or when
/// `add_edge`/`modify_edge` find it ready, as `EPOLLET`. After the ops the
/// loop runs until it goes quiet (no report, no connection to come back
/// to), in at most [`SETTLE_TURNS`] turns; then a level-triggered report
/// of whatever the socket is ready for must find nothing left to do: the
/// loop has not stalled where evio's would have gone on. And throughout,
/// the outputs arrive in order and the connection ends once.
fn run_edge(ops: &[Op], writes: Writes) -> Result<(), TestCaseError> {
    let (events, shared, notes) = parts(writes, Trigger::Edge);
    let mut world = World::new(&events, &shared, notes);
    world.turns = true;
    let ordered = |world: &World| -> Result<(), TestCaseError> {
        let produced = world.events.produced.lock().unwrap();
        let received = &world.wire.lock().unwrap().received;
        prop_assert!(produced.starts_with(received), "received {:?}", received);
        prop_assert_eq!(&*world.events.out_of_order.lock().unwrap(), &None);
        Ok(())
    };
    for op in ops {
        world.step(op);
        ordered(&world)?;
    }
    world.admit();
    let mut turns = 0;
    while world.status == Status::Open
        && (world.lp.coming_back() || world.reg.lock().unwrap().queued)
    {
        prop_assert!(turns < SETTLE_TURNS, "not quiet after {} turns", turns);
        let flow = world.turn();
        world.settle(flow);
        turns += 1;
    }
    ordered(&world)?;
    // Quiet. A level-triggered poller would report what the socket is
    // ready for: the step that report runs must change nothing.
    let seen = |w: &World| {
        let wire = w.wire.lock().unwrap();
        let calls = w.events.calls.lock().unwrap().len();
        (w.status, calls, wire.received.len(), wire.inbound.len())
    };
    let level = world
        .reg
        .lock()
        .unwrap()
        .wanted(&world.wire.lock().unwrap());
    if let (Status::Open, Some(ev)) = (world.status, level) {
        let before = seen(&world);
        let flow = world.lp.handle(&[ev], &mut world.retry);
        world.settle(flow);
        prop_assert_eq!(
            seen(&world),
            before,
            "stalled: a level report of {:?} still had work",
            ev
        );
    }
    world.end();
    ended_once(&world)
}

/// [`op_or_writer`], with more and longer sends: input that fills the
/// loop's 8-byte buffer more than once.
fn op_edge() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => op_or_writer(),
        1 => vec(b'A'..=b'Z', 9..30).prop_map(Op::Send),
    ]
}

proptest! {
    #![proptest_config(Config { cases: 2000, ..Config::default() })]

    #[test]
    fn ch13_edge_triggered_loop_never_stalls(ops in vec(op_edge(), 1..60)) {
        run_edge(&ops, Writes::Eager)?;
        run_edge(&ops, Writes::Deferred)?;
    }
}
// ANCHOR_END: edge

// ANCHOR: shrink
/// A deliberately broken invariant (the interest rule forgets the pending
/// action) must fail, and proptest must shrink the failure to a short case
/// that starts with the two ops that show it: an answer with an action and
/// no output, then `Ready`.
#[test]
fn ch11_broken_invariant_shrinks_to_a_minimal_case() {
    let config = Config {
        failure_persistence: None, // keep this failure out of the regressions file
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&vec(op(), 1..60), |ops| {
        run(&ops, Rule::ForgetsPendingAction, Writes::Deferred)
    });
    let Err(TestError::Fail(why, minimal)) = result else {
        panic!("the broken invariant was not caught: {result:?}");
    };
    println!("Test failed: {why}.\nminimal failing input: ops = {minimal:?}");
    assert!(why.message().starts_with("after op 2 "), "{why}");
    assert!(
        matches!(&minimal[..2], [Op::Answer(out, a), Op::Ready] if out.is_empty() && *a != Action::None),
        "not shrunk: {minimal:?}"
    );
    assert!(minimal.len() <= 4, "not shrunk: {minimal:?}");
}
// ANCHOR_END: shrink
