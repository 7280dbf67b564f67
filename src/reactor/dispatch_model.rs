//! A state-machine test of one connection's dispatch (chapter 11, "Testing
//! what is hard to test").
//!
//! proptest makes up sequences of [`Op`]s (the kernel reports the socket
//! ready, the socket takes some bytes or none, the peer sends, closes or
//! resets, the handler's next answer, a wake-up), runs each through the
//! *real* [`dispatch::ready`] and [`dispatch::wake`] with a fake socket and a
//! fake poller, carries out each [`Outcome`] the way `Loop::finish` does,
//! and after every step compares the result with a small reference
//! [`Model`] written from evio's rules (`loopRun`, `loopOpened`, `loopWrite`,
//! `loopAction`, `loopRead`, `loopWake` in `evio_unix.go`) and checks the
//! invariants in [`check`]. A failing sequence is shrunk to a minimal one,
//! and its seed saved in `proptest-regressions/reactor/dispatch_model.txt`,
//! which every later run replays first.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

use super::conn::{Conn, Kind, WakeVia};
use super::dispatch::{self, ConnIo, ConnState, Outcome};
use crate::api::{Action, Events, Options};
use crate::notes::NoteQueue;
use crate::poll::{Event, Interest, Poll, Signal};

/// The connection's fd, as the fake poller knows it.
const FD: RawFd = 7;
/// The loop's read buffer: small, so that input is read in several pieces.
const READ_BUFFER: usize = 8;

// ANCHOR: op
/// One thing that happens to the connection or around it.
#[derive(Clone)]
enum Op {
    /// The kernel reports the socket ready: the loop calls `dispatch::ready`.
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
    /// A wake note for this connection: the loop calls `dispatch::wake`.
    Wake,
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
// ANCHOR_END: strategy

/// The socket, as the dispatch sees it (`ConnIo`) and as the peer sees it.
#[derive(Default)]
struct FakeSocket {
    /// Sent by the peer, not read yet.
    inbound: VecDeque<u8>,
    peer_closed: bool,
    reset: bool,
    /// How many more bytes a write may take.
    room: usize,
    /// What the peer has received.
    received: Vec<u8>,
    reads: usize,
}

impl ConnIo for FakeSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        if self.reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if self.inbound.is_empty() {
            return match self.peer_closed {
                true => Ok(0),
                false => Err(io::ErrorKind::WouldBlock.into()),
            };
        }
        let n = buf.len().min(self.inbound.len());
        for (b, byte) in buf.iter_mut().zip(self.inbound.drain(..n)) {
            *b = byte;
        }
        Ok(n)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.reset {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        self.received.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// A poller that only remembers what the connection is registered for.
#[derive(Default)]
struct FakePoll {
    registered: Option<Interest>,
    fail_next: bool,
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
        Ok(FakePoll::default())
    }

    fn signal(&self) -> NoSignal {
        NoSignal
    }

    fn add(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        assert_eq!((fd, self.registered), (FD, None), "add twice");
        self.registered = Some(interest);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        assert!(fd == FD && self.registered.is_some(), "modify unregistered");
        if std::mem::take(&mut self.fail_next) {
            return Err(io::Error::from_raw_os_error(libc::ENOMEM));
        }
        self.registered = Some(interest);
        Ok(())
    }

    fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        assert!(fd == FD && self.registered.is_some(), "delete unregistered");
        self.registered = None;
        Ok(())
    }

    fn wait(&mut self, _: &mut Vec<Event>, _: Option<Duration>) -> io::Result<()> {
        unreachable!("the test calls the dispatch directly")
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
#[derive(Default)]
struct Handler {
    answers: Mutex<VecDeque<(Vec<u8>, Action)>>,
    calls: Mutex<Vec<Call>>,
    /// Every byte any callback produced, in order.
    produced: Mutex<Vec<u8>>,
}

impl Handler {
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
        self.calls.lock().unwrap().push(Call::Closed(err.is_some()));
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

/// The system under test: the real dispatch, with fakes around it, and the
/// loop's handling of each outcome.
struct World {
    events: Handler,
    poll: FakePoll,
    /// The loop's slot for the connection: `None` once it is gone.
    slot: Option<(Conn<()>, ConnState)>,
    sock: FakeSocket,
    status: Status,
    /// Set if an action ran while output produced before it was unsent.
    acted_early: Option<String>,
}

impl World {
    fn new() -> Self {
        let notes = Arc::new(NoteQueue::new(Box::new(NoSignal)));
        let mut poll = FakePoll::default();
        // Accept: registered for read and write (`Loop::accept`).
        poll.add(FD, Interest::READ_WRITE).unwrap();
        World {
            events: Handler::default(),
            poll,
            slot: Some((
                Conn::new(FD, 1, 0, Kind::Tcp, WakeVia::Notes(notes)),
                ConnState::new(),
            )),
            sock: FakeSocket::default(),
            status: Status::Open,
            acted_early: None,
        }
    }

    // ANCHOR: world_step
    /// Applies one op: to the fakes, or through the real dispatch.
    fn step(&mut self, op: &Op) {
        let outcome = match op {
            Op::Ready | Op::Wake => self.dispatch(matches!(op, Op::Ready)),
            Op::Room(n) => {
                self.sock.room = *n;
                Outcome::Continue
            }
            Op::Send(bytes) => {
                if !self.sock.peer_closed && !self.sock.reset {
                    self.sock.inbound.extend(bytes);
                }
                Outcome::Continue
            }
            Op::PeerClose => {
                self.sock.peer_closed = true;
                Outcome::Continue
            }
            Op::PeerReset => {
                self.sock.reset = true;
                Outcome::Continue
            }
            Op::Answer(bytes, action) => {
                let answer = (bytes.clone(), *action);
                self.events.answers.lock().unwrap().push_back(answer);
                Outcome::Continue
            }
            Op::CtlFails => {
                self.poll.fail_next = true;
                Outcome::Continue
            }
        };
        // Close(None), Detach and Shutdown come from actions (or from a read
        // of 0 bytes, which happens only with nothing pending).
        if matches!(
            outcome,
            Outcome::Close(None) | Outcome::Detach | Outcome::Shutdown
        ) {
            let produced = self.events.produced.lock().unwrap();
            if self.sock.received != *produced {
                self.acted_early = Some(format!("{outcome:?} with output unsent"));
            }
        }
        self.finish(outcome);
    }

    /// What the loop does when the kernel reports the fd (`ready`) or a wake
    /// note names it: dispatch, if the connection is still there.
    fn dispatch(&mut self, ready: bool) -> Outcome {
        let Some((conn, state)) = &mut self.slot else {
            return Outcome::Continue;
        };
        if ready {
            let mut buf = [0; READ_BUFFER];
            dispatch::ready(
                &self.events,
                &mut self.poll,
                conn,
                state,
                &mut self.sock,
                &mut buf,
            )
        } else {
            dispatch::wake(&self.events, &mut self.poll, conn, state)
        }
    }

    /// What `Loop::finish` does with an outcome.
    fn finish(&mut self, outcome: Outcome) {
        let (status, err) = match outcome {
            Outcome::Continue => return,
            Outcome::Close(err) => (Status::Closed, err),
            // The loop ends, and `close_all` closes the connection.
            Outcome::Shutdown => (Status::Stopped, None),
            Outcome::Detach => {
                self.slot = None;
                self.poll.delete(FD).unwrap();
                self.events.calls.lock().unwrap().push(Call::Detached);
                self.status = Status::Detached;
                return;
            }
        };
        let (mut conn, _) = self.slot.take().expect("an outcome for a gone connection");
        self.status = status;
        // As `Loop::close`: `closed` first, while the socket is still open,
        // then the close, which also removes the fd from epoll.
        self.events.closed(&mut conn, err);
        self.poll.registered = None;
    }
    // ANCHOR_END: world_step
}

// ANCHOR: model
/// The reference: what should happen, after evio's rules, written without
/// looking at `dispatch.rs`. It keeps its own copy of the socket and script.
#[derive(Default)]
struct Model {
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
    fn new() -> Self {
        let registered = Some(Interest::READ_WRITE);
        Model {
            registered,
            ..Model::default()
        }
    }

    fn step(&mut self, op: &Op) {
        let open = self.status == Status::Open;
        match op {
            Op::Room(n) => self.room = *n,
            Op::Send(bytes) if !self.peer_closed && !self.reset => self.inbound.extend(bytes),
            Op::Send(_) => {}
            Op::PeerClose => self.peer_closed = true,
            Op::PeerReset => self.reset = true,
            Op::Answer(bytes, action) => self.answers.push_back((bytes.clone(), *action)),
            Op::CtlFails => self.ctl_fails = true,
            Op::Ready | Op::Wake if !open => {}
            // A wake before `opened` is dropped; after, it is `data` with no
            // input whose output is added and whose action does not replace
            // a pending one (evio replaces both: its weakness 7).
            Op::Wake if !self.opened => {}
            Op::Wake => {
                let action = self.callback(Call::Data(Vec::new()));
                if self.action == Action::None {
                    self.action = action;
                }
                self.sync();
            }
            // evio's switch: open, else write, else act, else read.
            Op::Ready if !self.opened => {
                self.opened = true;
                self.action = self.callback(Call::Opened);
                self.sync();
            }
            Op::Ready if !self.pending.is_empty() => {
                if self.reset {
                    self.close(true);
                } else if self.room > 0 {
                    let n = self.room.min(self.pending.len());
                    self.received.extend(self.pending.drain(..n));
                    self.room -= n;
                    self.sync();
                }
            }
            Op::Ready if self.action != Action::None => match self.action {
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
                Action::None => unreachable!("guarded above"),
            },
            Op::Ready => {
                if self.reset {
                    self.close(true);
                } else if !self.inbound.is_empty() {
                    let n = READ_BUFFER.min(self.inbound.len());
                    let input = self.inbound.drain(..n).collect();
                    self.action = self.callback(Call::Data(input));
                    self.sync();
                } else if self.peer_closed {
                    self.close(false);
                }
            }
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
            self.opened,
            !self.pending.is_empty(),
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
/// The interest a connection must be registered for (evio's rule): read and
/// write until opened and while output or an action is pending, else read.
fn demanded(rule: Rule, opened: bool, output_pending: bool, action: Action) -> Interest {
    let action_pending = action != Action::None && rule == Rule::Right;
    if !opened || output_pending || action_pending {
        Interest::READ_WRITE
    } else {
        Interest::READ
    }
}
// ANCHOR_END: demanded

/// What the step being checked started from.
struct Before {
    open: bool,
    output_pending: bool,
    reads: usize,
}

// ANCHOR: invariants
/// The invariants, then agreement with the reference model.
fn check(world: &World, model: &Model, before: &Before, rule: Rule) -> Result<(), TestCaseError> {
    let produced = world.events.produced.lock().unwrap().clone();
    let calls = world.events.calls.lock().unwrap().clone();
    let received = &world.sock.received;
    // 1. The peer receives the outputs in order, none lost or doubled.
    prop_assert!(produced.starts_with(received), "received {received:?}");
    if let Some((_, state)) = &world.slot {
        prop_assert_eq!([received, state.pending_output()].concat(), produced);
    }
    // 2. An action runs only after the output before it is written.
    prop_assert_eq!(&world.acted_early, &None);
    // 3. `closed` (or `detached`) fires at most once, and is the last call;
    //    a connection that is gone sees no system call.
    if let Some(end) = calls
        .iter()
        .position(|c| matches!(c, Call::Closed(_) | Call::Detached))
    {
        prop_assert_eq!(end, calls.len() - 1, "a call after the end: {:?}", calls);
    }
    prop_assert_eq!(world.slot.is_some(), world.status == Status::Open);
    if !before.open {
        prop_assert_eq!(world.sock.reads, before.reads, "a read after the end");
    }
    // 4. The registered interest is what the state demands, and what the
    //    dispatch believes is registered.
    match &world.slot {
        Some((_, s)) => {
            let want = demanded(rule, s.opened, !s.pending_output().is_empty(), s.action);
            prop_assert_eq!(world.poll.registered, Some(want), "state {:?}", s);
            prop_assert_eq!(world.poll.registered, Some(s.interest));
        }
        None => prop_assert_eq!(world.poll.registered, None),
    }
    // 5. No read while output is pending (evio's rule).
    if before.output_pending {
        prop_assert_eq!(world.sock.reads, before.reads, "read with output pending");
    }
    // And the dispatch did what the reference model says.
    prop_assert_eq!(world.status, model.status);
    prop_assert_eq!(&calls, &model.calls);
    prop_assert_eq!(received, &model.received);
    if let Some((_, s)) = &world.slot {
        prop_assert_eq!((s.opened, s.action), (model.opened, model.action));
        prop_assert_eq!(s.pending_output(), &model.pending[..]);
    }
    Ok(())
}
// ANCHOR_END: invariants

// ANCHOR: run
/// Runs `ops` through the real dispatch and the model, checking after each.
fn run(ops: &[Op], rule: Rule) -> Result<(), TestCaseError> {
    let (mut world, mut model) = (World::new(), Model::new());
    for (i, op) in ops.iter().enumerate() {
        let before = Before {
            open: world.slot.is_some(),
            output_pending: (world.slot.as_ref())
                .is_some_and(|(_, s)| !s.pending_output().is_empty()),
            reads: world.sock.reads,
        };
        world.step(op);
        model.step(op);
        check(&world, &model, &before, rule).map_err(|e| match e {
            TestCaseError::Fail(why) => TestCaseError::fail(format!("after op {}: {why}", i + 1)),
            reject => reject,
        })?;
    }
    // The server ends: `close_all` closes what is still open.
    if world.status == Status::Open {
        world.finish(Outcome::Close(None));
        model.close(false);
    }
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

proptest! {
    #![proptest_config(Config { cases: 2000, ..Config::default() })]

    #[test]
    fn ch11_dispatch_state_machine(ops in vec(op(), 1..60)) {
        run(&ops, Rule::Right)?;
    }
}
// ANCHOR_END: run

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
        run(&ops, Rule::ForgetsPendingAction)
    });
    let Err(TestError::Fail(why, minimal)) = result else {
        panic!("the broken invariant was not caught: {result:?}");
    };
    println!("Test failed: {why}.\nminimal failing input: ops = {minimal:?}");
    assert!(why.message().starts_with("after op 2:"), "{why}");
    assert!(
        matches!(&minimal[..2], [Op::Answer(out, a), Op::Ready] if out.is_empty() && *a != Action::None),
        "not shrunk: {minimal:?}"
    );
    assert!(minimal.len() <= 4, "not shrunk: {minimal:?}");
}
// ANCHOR_END: shrink
