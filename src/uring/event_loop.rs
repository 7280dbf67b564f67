//! One io_uring loop: submit operations, reap their completions, and turn
//! each into the callbacks the reactor would call.
//!
//! Chapter 16, "Completion instead of readiness", explains this file. Where
//! the reactor (`src/reactor/event_loop.rs`, evio's `loopRun`) asks "which
//! sockets *may* I read?" and then reads them itself, this loop hands the
//! kernel the reads, sends and accepts it wants done, with the buffers to
//! do them in, and learns when each is *done*. Three things follow, each
//! marked where the code handles it:
//!
//! - **The kernel owns a buffer while its operation is in flight.** The
//!   bytes of a send in flight must neither move nor be freed until its
//!   completion comes back; they wait in the loop's table of sends
//!   (`sends.rs`), and new output goes to `Slot::out` meanwhile. Receives
//!   take their buffers from a ring the loop lends the kernel
//!   (`buffers.rs`), only when bytes arrive.
//! - **A read is done when its completion arrives**, not when a wait says
//!   the socket is readable: the loop never calls `recv` or `send` itself.
//! - **Closing is not immediate.** A connection's operations must come back
//!   (completed, or cancelled) before its fd is closed, or the kernel could
//!   finish a receive into a freed buffer, or for a new connection that got
//!   the same fd number. So a closed connection keeps its slot, and its fd,
//!   until its last completion (`Slot::leaving`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::buffers::{self, BufRing};
use super::note::{Note, Open, Ringer};
use super::sends::Sends;
use super::udp::{Busy, Udp};
use crate::api::{
    Action, Config, Flow, IoUringOptions, Limits, LoadBalance, Panics, Receive, RingAccept,
    RingSubmit,
};
use crate::conn::{Conn, Deliver, Ends, Wake};
use crate::events::Events;
use crate::notes::NoteQueue;
use crate::shared::{self, catch, Balancer, Clocks, Count, Counters, Deadlines, Listener, Sock};

/// How long a loop out of fds, with no connection waiting to be shed,
/// stops accepting (chapter 15).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The slot of the ring's table of files that a shed connection passes
/// through (see `shed`).
const SHED_SLOT: u32 = 0;

/// How long the loop waits, at its end, for its operations to come back.
const DRAIN: Duration = Duration::from_secs(2);

// ANCHOR: user_data
/// What a completion is about: every submission carries a 64-bit
/// `user_data` that its completion gives back, and ours packs the kind of
/// operation (4 bits), the fd or listener index (24 bits) and the
/// connection's id (36 bits). A completion whose id is not the slot's is
/// for a connection that has gone, and is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Accept = 0,
    Bell = 1,
    Recv = 2,
    Send = 3,
    Cancel = 4,
    /// A UDP listener's receive, and the send of its reply (`udp.rs`).
    DatagramIn = 5,
    DatagramOut = 6,
    /// A wake posted into the ring by another thread (`RingWake::MsgRing`),
    /// or the loop's own first one.
    Message = 7,
    /// An accept whose connection is closed at once: out of fds (`shed`).
    Shed = 8,
    /// A poll for a reset beside a multishot receive (`guard_entry`).
    Guard = 9,
}

const ID_BITS: u64 = 36;
const ID_MASK: u64 = (1 << ID_BITS) - 1;

fn tag(op: Op, fd: RawFd, id: u64) -> u64 {
    ((id & ID_MASK) << 28) | ((fd as u64 & 0xFF_FFFF) << 4) | op as u64
}

fn untag(data: u64) -> (Option<Op>, RawFd, u64) {
    let op = match data & 0xF {
        0 => Op::Accept,
        1 => Op::Bell,
        2 => Op::Recv,
        3 => Op::Send,
        4 => Op::Cancel,
        5 => Op::DatagramIn,
        6 => Op::DatagramOut,
        7 => Op::Message,
        8 => Op::Shed,
        9 => Op::Guard,
        _ => return (None, 0, 0),
    };
    (Some(op), ((data >> 4) & 0xFF_FFFF) as RawFd, data >> 28)
}
// ANCHOR_END: user_data

/// What all loops of a server share.
pub(crate) struct Shared {
    listeners: Vec<Listener>,
    /// `Accept::ReusePort`: each loop's own sockets, `own[loop][address]`;
    /// empty for loop 0 (its are `listeners`) and under the other strategies.
    own: Vec<Vec<Option<Listener>>>,
    balancer: Balancer,
    notes: Vec<Arc<NoteQueue<Note>>>,
    counters: Arc<[Counters]>,
    writer_limit: usize,
    limits: Limits,
    panics: Panics,
    /// The techniques the config chose (`IoUringOptions`, chapter 16).
    options: IoUringOptions,
}

impl Shared {
    pub(crate) fn new(
        listeners: Vec<Listener>,
        notes: Vec<Arc<NoteQueue<Note>>>,
        counters: Arc<[Counters]>,
        config: &Config,
    ) -> Shared {
        Shared {
            listeners,
            own: Vec::new(),
            balancer: Balancer::new(config.balance, notes.len()),
            notes,
            counters,
            writer_limit: config.writer_limit(),
            limits: config.limits.clone(),
            panics: config.panics,
            options: config.io_uring,
        }
    }

    /// Gives each loop its own listeners (`Accept::ReusePort`).
    pub(crate) fn with_own(self, own: Vec<Vec<Option<Listener>>>) -> Shared {
        Shared { own, ..self }
    }
}

/// Why a connection left, while it waits for its operations to come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaving {
    Close,
    Detach,
}

// ANCHOR: slot
/// Where a connection's receive stands. One byte, as the flag it replaced:
/// an idle connection costs no more with multishot receive (chapter 15's
/// idle-memory test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Receiving {
    /// None in flight.
    Off,
    /// A single-shot receive is in flight: its completion ends it.
    Single,
    /// A multishot receive is in flight: it stays armed, completion after
    /// completion, until one comes without "more" (`cqueue::more`).
    Multi,
    /// Either, with a cancel on its way: in flight until its last
    /// completion.
    Cancelled,
}

/// A connection as the loop keeps it.
struct Slot<C> {
    conn: Conn<C>,
    sock: Sock,
    /// Output the callbacks produced since the send in flight was submitted.
    out: Vec<u8>,
    /// The send in flight, by its index in the loop's [`Sends`]: the kernel
    /// reads its bytes until it completes.
    send: Option<u32>,
    /// Whether a receive is in flight, and which. It holds no buffer: the
    /// kernel takes one from the loop's buffer ring when bytes arrive
    /// (`buffers.rs`).
    recv: Receiving,
    /// Whether a guard is in flight beside a multishot receive (see
    /// `guard_entry`).
    guard: bool,
    /// The action to perform once the output is written.
    action: Action,
    /// `closed` (or the detach) has happened: the slot waits for its
    /// operations to come back, then closes the fd (or hands it over).
    leaving: Option<Leaving>,
    clocks: Clocks,
}

impl<C> Slot<C> {
    /// The output not sent yet: in flight, and produced since.
    fn pending(&self, sends: &Sends) -> usize {
        self.send.map_or(0, |idx| sends.rest(idx).len()) + self.out.len()
    }
}
// ANCHOR_END: slot

/// One loop on one ring, and everything only it touches.
pub(crate) struct Loop<'s, E: Events> {
    idx: usize,
    /// Under `RingWake::MsgRing`, where other threads post their wakes.
    /// Before `ring`: fields drop in order, and no thread may post to the
    /// ring's fd once it is closed.
    _mailbox: Option<Open>,
    ring: IoUring,
    /// The receive buffers, lent to the kernel. After `ring`: fields drop in
    /// order, and the ring must be gone before the buffers are freed.
    buffers: BufRing,
    /// The sends in flight and their bytes, also dropped after the ring.
    sends: Sends,
    /// Loop 0: the UDP listeners' state, by listener index (`None` for a
    /// stream listener). After `ring` too: the kernel writes into them.
    udp: Vec<Option<Udp>>,
    bell: Ringer,
    /// The eventfd read's 8 bytes: the kernel's while `bell_armed`.
    bell_buf: Box<u64>,
    bell_armed: bool,
    notes: Arc<NoteQueue<Note>>,
    wake: Arc<dyn Wake>,
    shared: &'s Shared,
    events: &'s E,
    slots: Vec<Option<Slot<E::Context>>>,
    last_id: u64,
    /// Loop 0: which listeners have an accept in flight.
    accepting: Vec<bool>,
    /// Multishot accept (Linux 5.19): one submission, a completion per
    /// connection. On if the config asks for `RingAccept::Multishot`; off
    /// after the kernel refuses it with `EINVAL`.
    multishot: bool,
    /// Multishot receive (Linux 6.0), if `IoUringOptions::recv` asks for it.
    /// Off after the kernel refuses it with `EINVAL`.
    multishot_recv: bool,
    /// Which listeners have a shedding accept in flight (see `shed`).
    shedding: Vec<bool>,
    /// The entry being pushed is linked to the next (`IO_LINK`): under
    /// `RingSubmit::EachOp` the two are submitted together.
    linking: bool,
    /// Out of fds: accepting again at this instant (chapter 15).
    paused: Option<Instant>,
    /// The loop is ending: no operation is armed again.
    stopping: bool,
    now: Instant,
    deadlines: Deadlines<(RawFd, u64)>,
    completions: Vec<(u64, i32, u32)>,
}

impl<'s, E: Events> Loop<'s, E> {
    pub(crate) fn new(
        idx: usize,
        (ring, buffers): (IoUring, BufRing),
        bell: Ringer,
        notes: Arc<NoteQueue<Note>>,
        shared: &'s Shared,
        events: &'s E,
    ) -> Self {
        let mailbox = match &bell {
            Ringer::MsgRing(mailbox) => {
                Some(mailbox.open(ring.as_raw_fd(), tag(Op::Message, 0, 0)))
            }
            Ringer::Eventfd(_) => None,
        };
        Loop {
            idx,
            _mailbox: mailbox,
            ring,
            buffers,
            sends: Sends::default(),
            udp: Vec::new(),
            bell,
            bell_buf: Box::new(0),
            bell_armed: false,
            wake: notes.clone(),
            notes,
            shared,
            events,
            slots: Vec::new(),
            last_id: 0,
            accepting: vec![false; shared.listeners.len()],
            multishot: shared.options.accept == RingAccept::Multishot,
            multishot_recv: shared.options.recv == Receive::Multishot,
            shedding: vec![false; shared.listeners.len()],
            linking: false,
            paused: None,
            stopping: false,
            now: Instant::now(),
            deadlines: Deadlines::new(),
            completions: Vec::new(),
        }
    }

    fn count(&self, which: Count, n: u64) {
        self.shared.counters[self.idx].add(which, n);
    }

    // ANCHOR: push
    /// Queues one operation. Nothing reaches the kernel until the next
    /// `io_uring_enter`, which carries every operation queued since the
    /// last: the batching that is the point of the ring. A full queue is
    /// submitted at once.
    fn push(&mut self, entry: squeue::Entry) {
        self.count(Count::Submitted, 1);
        // SAFETY: every buffer an entry points to (a send's in `sends`,
        // `bell_buf`, the buffer ring, a UDP listener's `Udp`) stays put
        // until its completion is reaped: slots are freed only when no
        // operation of theirs is in flight, and the ring only after the
        // loop's ring is gone.
        while unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.submit_now();
        }
        // `RingSubmit::EachOp`: what the loop would pay without batching.
        // An entry linked to the next one waits for it (see `shed`).
        if self.shared.options.submit == RingSubmit::EachOp && !self.linking {
            self.submit_now();
        }
    }
    // ANCHOR_END: push

    /// One `io_uring_enter` that submits and does not wait (counted as a
    /// wait, as the loop's own are).
    fn submit_now(&mut self) {
        self.count(Count::Waits, 1);
        if let Err(e) = self.ring.submit() {
            eprintln!("evio: io_uring submit failed: {e}");
        }
    }

    // ANCHOR: run
    /// Runs until a stop note, a `Shutdown`, or a ring error; then closes
    /// every connection and waits for the kernel to give back every buffer.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut notes = Vec::new();
        let mut next_tick = (self.idx == 0).then(Instant::now);
        self.arm_bell();
        let mine = |li| self.mine(li).and_then(Udp::new);
        self.udp = (0..self.accepting.len()).map(mine).collect();
        (0..self.accepting.len()).for_each(|li| self.arm_accept(li));
        (0..self.udp.len()).for_each(|li| self.arm_datagram(li));
        let result = 'run: loop {
            let until = [next_tick, self.deadlines.next(), self.paused]
                .into_iter()
                .flatten()
                .min();
            if let Err(e) = self.enter(until) {
                break Err(e);
            }
            self.now = Instant::now();
            // 1. Notes first, as in the reactor.
            self.notes.swap(&mut notes);
            self.count(Count::Notes, notes.len() as u64);
            for note in notes.drain(..) {
                let flow = match note {
                    Note::Wake { fd, id } => self.deliver(fd, id, Deliver::Wake),
                    Note::Adopt { sock, li } => self.admit(sock, li),
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
            // 3. Expiries, and accepting again after running out of fds.
            if self.expire() == Flow::Stop {
                break 'run Ok(());
            }
            if self.paused.is_some_and(|t| t <= self.now) {
                self.paused = None;
                (0..self.accepting.len()).for_each(|li| self.arm_accept(li));
            }
            // 4. Every completion the wait brought.
            if self.reap() == Flow::Stop {
                break 'run Ok(());
            }
        };
        self.stopping = true;
        self.close_all();
        self.drain();
        result
    }
    // ANCHOR_END: run

    // ANCHOR: enter
    /// One `io_uring_enter`: submits what was queued and waits for one
    /// completion at least, or until `until`. The timeout is an argument of
    /// the call itself (IORING_FEAT_EXT_ARG), not one more operation.
    fn enter(&mut self, until: Option<Instant>) -> io::Result<()> {
        self.count(Count::Waits, 1);
        let waited = match until {
            None => self.ring.submit_and_wait(1),
            Some(t) => {
                let ts = types::Timespec::from(t.saturating_duration_since(Instant::now()));
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match waited {
            Ok(_) => Ok(()),
            // Timed out, interrupted, or completions to reap first.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
    // ANCHOR_END: enter

    // ANCHOR: reap
    /// Takes every completion off the queue, then handles each: a
    /// completion names its operation by the `user_data` it was given.
    fn reap(&mut self) -> Flow {
        let mut done = std::mem::take(&mut self.completions);
        done.extend((self.ring.completion()).map(|c| (c.user_data(), c.result(), c.flags())));
        let mut flow = Flow::Go;
        for &(data, res, flags) in &done {
            let (op, fd, id) = untag(data);
            let step = match op {
                Some(Op::Accept) => self.accepted(fd as usize, res, flags),
                Some(Op::Shed) => self.shed_done(fd as usize, res),
                Some(Op::Bell) => {
                    self.bell_armed = false;
                    self.arm_bell();
                    Flow::Go
                }
                // The wait has ended: the notes are read on every turn.
                Some(Op::Message) => Flow::Go,
                Some(Op::Recv) => self.received(fd, id, res, flags),
                Some(Op::Guard) => self.guarded(fd, id, res),
                Some(Op::Send) => self.sent(fd, id, res),
                Some(Op::DatagramIn) => self.datagram_in(fd as usize, res),
                Some(Op::DatagramOut) => self.datagram_out(fd as usize),
                Some(Op::Cancel) | None => Flow::Go,
            };
            if step == Flow::Stop {
                flow = Flow::Stop;
            }
        }
        done.clear();
        self.completions = done;
        flow
    }
    // ANCHOR_END: reap

    // ANCHOR: arm_bell
    /// Keeps the eventfd's read in flight (`RingWake::Eventfd`), or, under
    /// `RingWake::MsgRing`, where there is nothing to keep in flight, makes
    /// the loop's first wait return at once with a no-op: a note added
    /// before the loop opened its mailbox signalled nobody.
    fn arm_bell(&mut self) {
        if self.bell_armed || self.stopping {
            return;
        }
        let Ringer::Eventfd(bell) = &self.bell else {
            // Called once, as `run` starts: no `Op::Bell` completes here.
            self.push(opcode::Nop::new().build().user_data(tag(Op::Message, 0, 0)));
            return;
        };
        let fd = bell.fd();
        self.bell_armed = true;
        let buf: *mut u64 = &mut *self.bell_buf;
        let read = opcode::Read::new(types::Fd(fd), buf.cast(), 8);
        self.push(read.build().user_data(tag(Op::Bell, 0, 0)));
    }
    // ANCHOR_END: arm_bell

    // ANCHOR: accept
    // ANCHOR: mine
    /// The listener of address `li` this loop serves: loop 0 every first
    /// socket; under `Accept::ReusePort` each other loop its own socket of
    /// each TCP and UDP address too. `None`: another loop serves it.
    fn mine(&self, li: usize) -> Option<&'s Listener> {
        let shared = self.shared;
        match self.idx {
            0 => Some(&shared.listeners[li]),
            idx => shared.own.get(idx)?.get(li)?.as_ref(),
        }
    }

    /// Whether the kernel's hash chose this loop for the connections of
    /// listener `li` (`Accept::ReusePort`): then they are taken here,
    /// whatever the balancing rule, as in the reactor.
    fn hashed(&self, li: usize) -> bool {
        let own = |idx: usize| self.shared.own.get(idx).and_then(|o| o.get(li)?.as_ref());
        own(self.idx.max(1)).is_some()
    }
    // ANCHOR_END: mine

    /// Keeps one accept in flight per listener this loop serves: multishot
    /// if the config asks for it and the kernel has it (one submission,
    /// then a completion per connection, for as long as it says "more"),
    /// else one accept at a time.
    fn arm_accept(&mut self, li: usize) {
        if self.accepting[li] || self.shedding[li] || self.stopping || self.paused.is_some() {
            return;
        }
        let Some(listener) = self.mine(li) else {
            return; // another loop's
        };
        if let Listener::Udp(_) = listener {
            return; // served by `arm_datagram`
        }
        self.accepting[li] = true;
        let fd = types::Fd(listener.fd());
        let entry = match self.multishot {
            true => opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC)
                .build(),
            false => opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build(),
        };
        self.push(entry.user_data(tag(Op::Accept, li as RawFd, 0)));
    }

    /// An accept completed: a new connection's fd, or an error. The
    /// connection is taken here if the kernel's hash chose this loop
    /// (`Accept::ReusePort`), else handed to the loop the balancer picks
    /// (the reactor's `Accept::HandOff`), which may be this one.
    fn accepted(&mut self, li: usize, res: i32, flags: u32) -> Flow {
        let more = cqueue::more(flags);
        if !more {
            self.accepting[li] = false;
        }
        if res < 0 {
            let flow = match -res {
                libc::ECANCELED => return Flow::Go,
                // A kernel before 5.19 does not know multishot accept.
                libc::EINVAL if self.multishot => {
                    self.multishot = false;
                    Flow::Go
                }
                libc::EINTR | libc::EAGAIN | libc::ECONNABORTED => Flow::Go,
                err @ (libc::EMFILE | libc::ENFILE) => {
                    // Out of fds: shed the waiting connection, or stop
                    // accepting for a moment, rather than spin on the same
                    // error (chapter 15).
                    if more {
                        let cancel = opcode::AsyncCancel::new(tag(Op::Accept, li as RawFd, 0));
                        self.push(cancel.build().user_data(tag(Op::Cancel, 0, 0)));
                    }
                    self.shed(li);
                    Flow::after((self.events).accept_error(&io::Error::from_raw_os_error(err)))
                }
                err => Flow::after((self.events).accept_error(&io::Error::from_raw_os_error(err))),
            };
            self.arm_accept(li);
            return flow;
        }
        // SAFETY: the kernel made this fd for us; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(res) };
        self.arm_accept(li);
        if self.stopping {
            return Flow::Go; // dropped: closed
        }
        let Some(listener) = self.mine(li) else {
            return Flow::Go; // not ours: cannot be
        };
        let sock = listener.adopt(fd);
        self.count(Count::Accepts, 1);
        let shared = self.shared;
        if shared.balancer.total() >= shared.limits.max_connections {
            self.count(Count::Rejected, 1);
            return Flow::Go;
        }
        if self.hashed(li) {
            shared.balancer.add(self.idx);
            return self.admit(sock, li);
        }
        let to = shared.balancer.choose(true);
        if to == self.idx {
            return self.admit(sock, li);
        }
        match shared.notes[to].add(Note::Adopt { sock, li }) {
            Ok(()) => Flow::Go,
            Err(e) => Flow::after(self.events.accept_error(&e)),
        }
    }
    // ANCHOR_END: accept

    // ANCHOR: shed
    /// Out of fds: the connection that made the accept fail waits in the
    /// listen queue, and would wait there until fds come back. The reactor
    /// sheds it with a spare fd (chapter 15), which another thread can take
    /// from under it. A ring needs none: an accept can put the new socket
    /// in the ring's own table of files (a *direct descriptor*, Linux 5.15)
    /// instead of the process's, which is what is full. So the connection
    /// is accepted into the table's one slot (`open_ring` registers it) and
    /// closed from there at once: the client sees its connection closed
    /// rather than hang, and no other thread's accept can be in the way.
    ///
    /// The listener is blocking, as this engine's are: an accept with no
    /// connection waiting would wait for one. So the shedding accept is
    /// linked to a timeout (`IORING_OP_LINK_TIMEOUT`, Linux 5.5) that
    /// cancels it if no connection waits (an accept fails with `EMFILE`
    /// with none waiting too: the kernel takes the fd first). A waiting
    /// connection is taken at once, before the timeout.
    fn shed(&mut self, li: usize) {
        let Some(listener) = self.mine(li).filter(|_| !self.shedding[li]) else {
            return;
        };
        self.shedding[li] = true;
        let [accept, wait] = shared::accept_into_slot(listener.fd(), SHED_SLOT);
        // Linked entries must reach the kernel in one submission: a full
        // queue is submitted first, so that `push` does not split them.
        let room = {
            let sq = self.ring.submission();
            sq.capacity() - sq.len()
        };
        if room < 2 {
            self.submit_now();
        }
        self.linking = true;
        self.push(accept.user_data(tag(Op::Shed, li as RawFd, 0)));
        self.linking = false;
        self.push(wait.user_data(tag(Op::Cancel, 0, 0)));
    }

    /// The shedding accept came back: 0, a connection now in the slot,
    /// closed from there; or `ECANCELED` when none waited. Then accepting
    /// again: at once if one was shed (the next one in the queue is shed
    /// the same way), else after a pause.
    fn shed_done(&mut self, li: usize, res: i32) -> Flow {
        self.shedding[li] = false;
        match res {
            0.. => {
                let close = opcode::Close::new(types::Fixed(SHED_SLOT));
                self.push(close.build().user_data(tag(Op::Cancel, 0, 0)));
            }
            _ => self.paused = Some(self.now + ACCEPT_PAUSE),
        }
        self.arm_accept(li);
        Flow::Go
    }
    // ANCHOR_END: shed

    // ANCHOR: datagram
    /// Loop 0 keeps one operation in flight per UDP listener (`udp.rs`):
    /// a receive, or the send of the last datagram's reply.
    fn arm_datagram(&mut self, li: usize) {
        let Some(udp) = self.udp.get_mut(li).and_then(Option::as_mut) else {
            return;
        };
        if udp.busy().is_some() || self.stopping {
            return;
        }
        let entry = udp.receive();
        self.push(entry.user_data(tag(Op::DatagramIn, li as RawFd, 0)));
    }

    /// A datagram arrived on listener `li`: `data` is called, and its reply
    /// sent, before the next receive (as the reactor's `udp_read`; under
    /// `RoundRobin` the turn moves for datagrams too, as there).
    fn datagram_in(&mut self, li: usize, res: i32) -> Flow {
        let (events, stopping) = (self.events, self.stopping);
        let Some(udp) = self.udp.get_mut(li).and_then(Option::as_mut) else {
            return Flow::Go;
        };
        if stopping {
            udp.done(); // the loop is ending: no callback runs now
            return Flow::Go;
        }
        if res > 0 && self.shared.balancer.rule() == LoadBalance::RoundRobin {
            self.shared.balancer.advance_turn();
        }
        let flow = match udp.received(events, li, res) {
            Ok((action, Some(send))) => {
                self.push(send.user_data(tag(Op::DatagramOut, li as RawFd, 0)));
                return Flow::after(action);
            }
            Ok((action, None)) => Flow::after(action),
            Err(e) => Flow::after(events.accept_error(&e)),
        };
        self.arm_datagram(li);
        flow
    }

    /// A reply's send completed: a reply that could not be sent is dropped,
    /// as UDP allows (and as the reactor's `send_to` drops it).
    fn datagram_out(&mut self, li: usize) -> Flow {
        if let Some(udp) = self.udp.get_mut(li).and_then(Option::as_mut) {
            udp.done();
        }
        self.arm_datagram(li);
        Flow::Go
    }
    // ANCHOR_END: datagram

    // ANCHOR: admit
    /// Takes a new connection, counted on this loop already: `opened` at
    /// once, then its output is sent and its first receive armed.
    fn admit(&mut self, sock: Sock, li: usize) -> Flow {
        let fd = sock.fd();
        self.last_id += 1;
        let ends = Ends::Fd {
            unix: sock.is_unix(),
        };
        let mut conn = Conn::new(fd, self.last_id, li, ends, Some(self.wake.clone()))
            .with_writer_limit(self.shared.writer_limit);
        let mut out = Vec::new();
        let opened = catch(self.shared.panics, || {
            self.events.opened(&mut conn, &mut out)
        });
        if self.slots.len() <= fd as usize {
            self.slots.resize_with(fd as usize + 1, || None);
        }
        let slots = &self.slots;
        (self.deadlines).compact(self.shared.balancer.count(self.idx), || {
            let armed = |(fd, s): (usize, &Option<Slot<_>>)| {
                let s = s.as_ref().filter(|s| s.leaving.is_none())?;
                Some((s.clocks.armed()?, (fd as RawFd, s.conn.id)))
            };
            slots.iter().enumerate().filter_map(armed).collect()
        });
        self.slots[fd as usize] = Some(Slot {
            conn,
            sock,
            out,
            send: None,
            recv: Receiving::Off,
            guard: false,
            action: Action::None,
            leaving: None,
            clocks: Clocks::new(self.now),
        });
        match opened {
            Ok((options, action)) => {
                let slot = self.slots[fd as usize].as_mut().expect("just put");
                slot.action = action;
                if let Some(idle) = options.tcp_keep_alive {
                    slot.conn.set_keep_alive(idle);
                }
                self.settle(fd)
            }
            Err(panicked) => self.panicked(fd, panicked),
        }
    }
    // ANCHOR_END: admit

    fn slot(&mut self, fd: RawFd, id: u64) -> Option<&mut Slot<E::Context>> {
        slot_of(&mut self.slots, fd, id)
    }

    // ANCHOR: settle
    /// After anything happened to a connection: start a send if output
    /// waits and none is in flight; act once all output has gone; keep a
    /// receive in flight while the connection may read (no action pending,
    /// output under `Limits::output_limit`: back-pressure, as the reactor's
    /// `Writes::Eager`); move its timeouts.
    fn settle(&mut self, fd: RawFd) -> Flow {
        let (limits, now) = (&self.shared.limits, self.now);
        let Some(slot) = self.slots[fd as usize].as_mut() else {
            return Flow::Go;
        };
        if slot.leaving.is_some() {
            return Flow::Go;
        }
        let mut send = None;
        if slot.send.is_none() && !slot.out.is_empty() {
            // The output becomes the send's: the kernel reads it from now
            // on, and callbacks write to another buffer.
            let idx = self.sends.start(&mut slot.out);
            slot.send = Some(idx);
            send = Some(send_entry(fd, slot.conn.id, self.sends.rest(idx)));
        }
        let pending = slot.pending(&self.sends);
        if pending == 0 {
            match slot.action {
                Action::None => {}
                Action::Close => return self.close(fd, None),
                Action::Detach => return self.detach(fd),
                Action::Shutdown => return Flow::Stop,
            }
        }
        let reading = slot.action == Action::None && pending <= limits.output_limit;
        let recv = recv_entry(fd, slot, reading, self.multishot_recv);
        let guard = guard_entry(fd, slot);
        slot.clocks.touch(now, pending, limits);
        let key = (fd, slot.conn.id);
        (self.deadlines).update(&mut slot.clocks, key, limits, slot.conn.deadline());
        if let Some(budget) = &slot.conn.budget {
            budget.unsent(pending);
        }
        if send.is_some() {
            self.events.pre_write();
        }
        send.into_iter()
            .chain(recv)
            .chain(guard)
            .for_each(|e| self.push(e));
        Flow::Go
    }
    // ANCHOR_END: settle

    // ANCHOR: received
    /// A receive completed: `res` bytes are in the buffer its flags name,
    /// or the peer closed (`0`), or an error. The buffer goes back to the
    /// ring once `data` has returned, whatever happened.
    fn received(&mut self, fd: RawFd, id: u64, res: i32, flags: u32) -> Flow {
        let bid = cqueue::buffer_select(flags);
        let flow = self.receive(fd, id, res, bid, cqueue::more(flags));
        if let Some(bid) = bid {
            self.buffers.give_back(bid);
        }
        flow
    }

    fn receive(&mut self, fd: RawFd, id: u64, res: i32, bid: Option<u16>, more: bool) -> Flow {
        let (panics, events) = (self.shared.panics, self.events);
        let Some(slot) = slot_of(&mut self.slots, fd, id) else {
            return Flow::Go;
        };
        // A multishot receive stays in flight while its completions say
        // "more"; any other completion ends the receive, and `settle`
        // submits the next.
        let multi = slot.recv == Receiving::Multi;
        if !more {
            slot.recv = Receiving::Off;
        }
        if slot.leaving.is_some() {
            // Cancelled, or bytes nobody will read: the connection is gone.
            return self.release(fd);
        }
        let ran = match res {
            0 if slot.pending(&self.sends) > 0 => {
                // The peer sends no more but may still read: the output
                // goes first, then the close (as in the reactor).
                slot.action = Action::Close;
                Ok(())
            }
            0 => return self.close(fd, None),
            n if n < 0 => match -n {
                // ENOBUFS: more receives completed in one batch than the
                // ring has buffers (a multishot receive ends there); they
                // are all back before the next submission: receive again.
                // ECANCELED: a multishot receive cancelled for back-pressure.
                libc::EINTR | libc::EAGAIN | libc::ENOBUFS | libc::ECANCELED => Ok(()),
                // A kernel before 6.0 does not know multishot receive.
                libc::EINVAL if multi => {
                    self.multishot_recv = false;
                    Ok(())
                }
                err => return self.close(fd, Some(io::Error::from_raw_os_error(err))),
            },
            // The connection asked to close or detach, and reads no more:
            // these are bytes a multishot receive brought before its cancel
            // took effect, which a reactor would not have read.
            _ if slot.action != Action::None => Ok(()),
            n => {
                let Slot { conn, out, .. } = &mut *slot;
                let Some(bid) = bid else {
                    let err = io::Error::other("a receive completed without a buffer");
                    return self.close(fd, Some(err));
                };
                let input = self.buffers.get(bid, n as usize);
                let got = catch(panics, || events.data(conn, input, out));
                got.map(|action| slot.action = action)
            }
        };
        if res > 0 {
            self.count(Count::Reads, 1);
            self.count(Count::BytesIn, res as u64);
        }
        match ran {
            Ok(()) => self.settle(fd),
            Err(panicked) => self.panicked(fd, panicked),
        }
    }
    // ANCHOR_END: received

    // ANCHOR: sent
    /// A send completed: `res` bytes of it have gone. The rest, if any, is
    /// sent again; then whatever output accumulated meanwhile.
    fn sent(&mut self, fd: RawFd, id: u64, res: i32) -> Flow {
        let Some(slot) = slot_of(&mut self.slots, fd, id) else {
            return Flow::Go;
        };
        let Some(idx) = slot.send else {
            return Flow::Go;
        };
        let all = res > 0 && self.sends.advance(idx, res as usize);
        if slot.leaving.is_some() || res <= 0 || all {
            slot.send = None;
            self.sends.finish(idx);
        }
        if slot.leaving.is_some() {
            return self.release(fd);
        }
        if res <= 0 {
            let err = match res {
                0 => io::ErrorKind::WriteZero.into(),
                _ => io::Error::from_raw_os_error(-res),
            };
            return self.close(fd, Some(err));
        }
        let partial = (!all).then(|| send_entry(fd, id, self.sends.rest(idx)));
        self.count(Count::Writes, 1);
        self.count(Count::BytesOut, res as u64);
        if let Some(entry) = partial {
            self.push(entry);
        }
        self.settle(fd)
    }
    // ANCHOR_END: sent

    // ANCHOR: deliver
    /// A wake, or a [`Writer`](crate::Writer)'s bytes or close, for the
    /// connection the handle was made for, if it is still here, applied by
    /// the rule the reactor follows too (`shared::delivered`): a wake's
    /// output is appended and its action does not replace a pending one;
    /// bytes go after all output so far; a close waits for them.
    fn deliver(&mut self, fd: RawFd, id: u64, what: Deliver) -> Flow {
        let (panics, events) = (self.shared.panics, self.events);
        let Some(slot) = self.slot(fd, id).filter(|s| s.leaving.is_none()) else {
            return Flow::Go;
        };
        let Slot {
            conn, out, action, ..
        } = slot;
        let ran = catch(panics, || {
            shared::delivered(events, conn, out, action, what)
        });
        match ran {
            Ok(()) => self.settle(fd),
            Err(panicked) => self.panicked(fd, panicked),
        }
    }
    // ANCHOR_END: deliver

    /// A callback panicked (under `Panics::Isolate`): only its connection
    /// is closed, with the panic's message.
    fn panicked(&mut self, fd: RawFd, err: io::Error) -> Flow {
        self.count(Count::Panics, 1);
        self.close(fd, Some(err))
    }

    // ANCHOR: guarded
    /// The guard beside a multishot receive came back: the socket has an
    /// error or has hung up (a reset), or the guard was cancelled. A
    /// multishot receive still in flight may never say so (see
    /// `guard_entry`): it is cancelled, and its last completion brings
    /// `settle`, which submits a fresh receive, and that one reports the
    /// reset, as a single-shot receive always does.
    fn guarded(&mut self, fd: RawFd, id: u64, res: i32) -> Flow {
        let Some(slot) = self.slot(fd, id) else {
            return Flow::Go;
        };
        slot.guard = false;
        if slot.leaving.is_some() {
            return self.release(fd);
        }
        if res > 0 && slot.recv == Receiving::Multi {
            slot.recv = Receiving::Cancelled;
            let cancel = opcode::AsyncCancel::new(tag(Op::Recv, fd, id));
            self.push(cancel.build().user_data(tag(Op::Cancel, fd, id)));
        }
        Flow::Go
    }
    // ANCHOR_END: guarded

    // ANCHOR: close
    /// Closes a connection: `closed` now, exactly once; the fd only after
    /// every operation on it has come back. Those in flight are cancelled
    /// (`IORING_OP_ASYNC_CANCEL`), so they come back soon, with `ECANCELED`
    /// (or with what they had done just before).
    fn close(&mut self, fd: RawFd, err: Option<io::Error>) -> Flow {
        let Some(slot) = self.slots[fd as usize].as_mut() else {
            return Flow::Go;
        };
        if slot.leaving.is_some() {
            return Flow::Go;
        }
        slot.leaving = Some(Leaving::Close);
        slot.conn.gone();
        self.shared.balancer.release(self.idx);
        self.cancel(fd);
        let (panics, events) = (self.shared.panics, self.events);
        let slot = self.slots[fd as usize].as_mut().expect("still here");
        let closed = catch(panics, || events.closed(&mut slot.conn, err));
        let released = self.release(fd);
        match closed.map_or(Flow::Go, Flow::after) {
            Flow::Stop => Flow::Stop,
            Flow::Go => released,
        }
    }

    /// Hands a connection over once its receive has come back: its output
    /// is all sent already (a detach waits for it), and the socket is
    /// blocking already (io_uring needs no non-blocking sockets).
    fn detach(&mut self, fd: RawFd) -> Flow {
        let Some(slot) = self.slots[fd as usize].as_mut() else {
            return Flow::Go;
        };
        slot.leaving = Some(Leaving::Detach);
        slot.conn.gone();
        self.shared.balancer.release(self.idx);
        self.cancel(fd);
        self.release(fd)
    }

    /// Asks the kernel to give back the connection's operations in flight.
    fn cancel(&mut self, fd: RawFd) {
        let Some(slot) = self.slots[fd as usize].as_mut() else {
            return;
        };
        let id = slot.conn.id;
        // A multishot receive may have been cancelled already (`recv_entry`).
        let recv = matches!(slot.recv, Receiving::Single | Receiving::Multi);
        if recv {
            slot.recv = Receiving::Cancelled;
        }
        let ops = [
            (recv, Op::Recv),
            (slot.send.is_some(), Op::Send),
            (slot.guard, Op::Guard),
        ];
        for (_, op) in ops.into_iter().filter(|(armed, _)| *armed) {
            let cancel = opcode::AsyncCancel::new(tag(op, fd, id));
            self.push(cancel.build().user_data(tag(Op::Cancel, fd, id)));
        }
    }

    /// A connection that has left: once none of its operations is in
    /// flight, its slot is freed and its fd closed, or handed to `detached`.
    fn release(&mut self, fd: RawFd) -> Flow {
        let slot = &self.slots[fd as usize];
        if slot.as_ref().map_or(true, |s| {
            s.recv != Receiving::Off || s.send.is_some() || s.guard || s.leaving.is_none()
        }) {
            return Flow::Go;
        }
        let Some(mut slot) = self.slots[fd as usize].take() else {
            return Flow::Go;
        };
        if slot.leaving == Some(Leaving::Close) {
            return Flow::Go; // `slot.sock` is dropped: the fd is closed
        }
        let events = self.events;
        let stream = slot.sock.into_stream();
        let action = catch(self.shared.panics, || {
            events.detached(&mut slot.conn, stream)
        });
        action.map_or(Flow::Go, Flow::after)
    }
    // ANCHOR_END: close

    /// Closes every connection whose time is up (chapter 15).
    fn expire(&mut self) -> Flow {
        while let Some((at, (fd, id))) = self.deadlines.pop_due(self.now) {
            let limits = &self.shared.limits;
            let now = self.now;
            let Some(slot) = (self.slots.get_mut(fd as usize))
                .and_then(Option::as_mut)
                .filter(|s| s.conn.id == id && s.leaving.is_none())
            else {
                continue;
            };
            let deadline = slot.conn.deadline();
            let why = (self.deadlines).due(at, now, (fd, id), &mut slot.clocks, limits, deadline);
            if let Some(why) = why {
                self.count(Count::TimedOut, 1);
                if self.close(fd, Some(why.error())) == Flow::Stop {
                    return Flow::Stop;
                }
            }
        }
        Flow::Go
    }

    fn close_all(&mut self) {
        for fd in 0..self.slots.len() {
            if self.slots[fd].as_ref().is_some_and(|s| s.leaving.is_none()) {
                self.close(fd as RawFd, None);
            }
        }
    }

    // ANCHOR: drain
    /// The loop is ending: cancels the accepts, the UDP listeners'
    /// operations and the bell's read, and waits until the kernel has given
    /// back every operation, so that no buffer is freed while the kernel
    /// may still write into it. Should one not come back in time, its
    /// buffers are leaked rather than freed.
    fn drain(&mut self) {
        for li in 0..self.accepting.len() {
            if self.accepting[li] {
                let cancel = opcode::AsyncCancel::new(tag(Op::Accept, li as RawFd, 0));
                self.push(cancel.build().user_data(tag(Op::Cancel, 0, 0)));
            }
            if self.shedding[li] {
                let cancel = opcode::AsyncCancel::new(tag(Op::Shed, li as RawFd, 0));
                self.push(cancel.build().user_data(tag(Op::Cancel, 0, 0)));
            }
        }
        if self.bell_armed {
            let cancel = opcode::AsyncCancel::new(tag(Op::Bell, 0, 0));
            self.push(cancel.build().user_data(tag(Op::Cancel, 0, 0)));
        }
        for li in 0..self.udp.len() {
            let op = match self.udp[li].as_ref().and_then(Udp::busy) {
                Some(Busy::Receiving) => Op::DatagramIn,
                Some(Busy::Sending) => Op::DatagramOut,
                None => continue,
            };
            let cancel = opcode::AsyncCancel::new(tag(op, li as RawFd, 0));
            self.push(cancel.build().user_data(tag(Op::Cancel, 0, 0)));
        }
        let end = Instant::now() + DRAIN;
        while self.in_flight() && Instant::now() < end {
            if self.enter(Some(end)).is_err() {
                break;
            }
            self.reap();
        }
        if self.in_flight() {
            std::mem::forget(std::mem::take(&mut self.slots));
            self.sends.leak();
            std::mem::forget(std::mem::replace(&mut self.bell_buf, Box::new(0)));
            std::mem::forget(std::mem::take(&mut self.udp));
            self.buffers.leak();
        }
    }

    fn in_flight(&self) -> bool {
        self.bell_armed
            || self.accepting.iter().any(|&a| a)
            || self.shedding.iter().any(|&s| s)
            || self.udp.iter().flatten().any(|u| u.busy().is_some())
            || self.slots.iter().any(Option::is_some)
    }
    // ANCHOR_END: drain
}

/// The connection at `fd`, if it is still the one with this id.
fn slot_of<C>(slots: &mut [Option<Slot<C>>], fd: RawFd, id: u64) -> Option<&mut Slot<C>> {
    let slot = slots.get_mut(usize::try_from(fd).ok()?)?.as_mut()?;
    (slot.conn.id & ID_MASK == id & ID_MASK).then_some(slot)
}

// ANCHOR: recv_entry
/// What keeps a connection's receive as `settle` wants it: one in flight
/// while the connection may read, none while it may not (`reading`).
///
/// A single-shot receive is one submission per arrival: it is simply not
/// submitted again while the connection may not read. A multishot one
/// (`opcode::RecvMulti`, Linux 6.0) is one submission for every arrival,
/// but it stays in flight: to stop reading, the loop cancels it, and it
/// comes back with a last completion, without "more"; `settle` submits it
/// again once the connection may read. Neither holds a buffer while it
/// waits: the kernel takes one from the group when bytes come
/// (`BUFFER_SELECT`).
fn recv_entry<C>(
    fd: RawFd,
    slot: &mut Slot<C>,
    reading: bool,
    multishot: bool,
) -> Option<squeue::Entry> {
    let (data, id) = (tag(Op::Recv, fd, slot.conn.id), slot.conn.id);
    if !reading {
        if slot.recv != Receiving::Multi {
            return None;
        }
        slot.recv = Receiving::Cancelled;
        let cancel = opcode::AsyncCancel::new(data).build();
        return Some(cancel.user_data(tag(Op::Cancel, fd, id)));
    }
    if slot.recv != Receiving::Off {
        return None; // in flight, or cancelled: `settle` runs again after
    }
    let entry = if multishot {
        slot.recv = Receiving::Multi;
        opcode::RecvMulti::new(types::Fd(fd), buffers::GROUP).build()
    } else {
        slot.recv = Receiving::Single;
        let len = buffers::SIZE as u32;
        opcode::Recv::new(types::Fd(fd), std::ptr::null_mut(), len)
            .buf_group(buffers::GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
    };
    Some(entry.user_data(data))
}
// ANCHOR_END: recv_entry

// ANCHOR: guard_entry
/// A guard beside a multishot receive: a one-shot poll that completes
/// when the socket has an error or has hung up. Linux (6.18 here) can lose
/// a reset under a multishot receive: when a byte and the reset arrive
/// together, the receive posts the byte, says "more", and never posts the
/// reset. A standalone program found it too, so it is the kernel's, not
/// ours (chapter 16). The guard costs one more entry in the same
/// submission, once per connection, and a completion at its end.
fn guard_entry<C>(fd: RawFd, slot: &mut Slot<C>) -> Option<squeue::Entry> {
    if slot.recv != Receiving::Multi || slot.guard {
        return None;
    }
    slot.guard = true;
    let mask = (libc::POLLERR | libc::POLLHUP) as u32;
    let poll = opcode::PollAdd::new(types::Fd(fd), mask).build();
    Some(poll.user_data(tag(Op::Guard, fd, slot.conn.id)))
}
// ANCHOR_END: guard_entry

/// A send of `rest` for connection `id`, with `MSG_NOSIGNAL`: a peer that
/// has gone makes it fail with `EPIPE`, not kill the process with `SIGPIPE`.
fn send_entry(fd: RawFd, id: u64, rest: &[u8]) -> squeue::Entry {
    let len = rest.len().min(u32::MAX as usize) as u32;
    let send = opcode::Send::new(types::Fd(fd), rest.as_ptr(), len).flags(libc::MSG_NOSIGNAL);
    send.build().user_data(tag(Op::Send, fd, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::ListenAddr;
    use crate::conn::Conn;
    use crate::uring::note::Bell;
    use crate::uring::ring::{open_ring, probe};
    use std::io::{Read, Write};
    use std::net::TcpStream;

    struct Echo;
    impl Events for Echo {
        type Context = ();
        fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
            out.extend_from_slice(input);
            Action::None
        }
    }

    /// A kernel before 5.19 refuses multishot accept with `EINVAL`. This
    /// one (6.18) has it, so the refusal is handed to the loop here, as
    /// the kernel would: the loop must fall back to one accept at a time,
    /// and go on accepting connection after connection that way.
    #[test]
    fn ch16_a_refused_multishot_accept_falls_back_to_one_at_a_time() {
        if let Err(e) = probe() {
            eprintln!("skipped: no io_uring here: {e}");
            return;
        }
        let addr = ListenAddr::parse("tcp://127.0.0.1:0").unwrap();
        let (listeners, bound) = Listener::bind_all(&[addr]).unwrap();
        let addr = bound[0].socket_addr().unwrap();
        let config = Config::default();
        assert_eq!(config.io_uring.accept, RingAccept::Multishot);
        let bell = Bell::new().unwrap();
        let notes = Arc::new(NoteQueue::with_wakeups(
            Box::new(Ringer::Eventfd(bell.clone())),
            config.wakeups,
        ));
        let counters: Arc<[Counters]> = Arc::new([Counters::default()]);
        let shared = Shared::new(listeners, vec![notes.clone()], counters, &config);
        let stopper = notes.clone();
        let served = std::thread::scope(|s| {
            let looping = s.spawn(|| {
                let ring = open_ring().unwrap();
                let buffers = BufRing::new(&ring).unwrap();
                let mut lp = Loop::new(
                    0,
                    (ring, buffers),
                    Ringer::Eventfd(bell),
                    notes,
                    &shared,
                    &Echo,
                );
                lp.accepted(0, -libc::EINVAL, 0);
                assert!(!lp.multishot, "multishot accept is off after EINVAL");
                assert!(lp.accepting[0], "an accept is in flight again");
                lp.run()
            });
            let served = (0..3)
                .map(|i| {
                    let mut c = TcpStream::connect(addr).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    c.write_all(&[b'a' + i]).unwrap();
                    let mut b = [0u8; 1];
                    c.read_exact(&mut b).map(|_| b[0])
                })
                .collect::<Vec<_>>();
            let _ = stopper.stop();
            looping.join().unwrap().unwrap();
            served
        });
        let served: Vec<u8> = served.into_iter().map(Result::unwrap).collect();
        assert_eq!(served, b"abc");
    }

    #[test]
    fn ch16_user_data_carries_the_op_the_fd_and_the_id() {
        for (op, fd, id) in [
            (Op::Recv, 7, 1),
            (Op::Send, 0xFF_FFFF, ID_MASK),
            (Op::Cancel, 3, 99),
            (Op::DatagramIn, 0, 0),
            (Op::DatagramOut, 2, 0),
            (Op::Message, 0, 0),
            (Op::Shed, 1, 0),
            (Op::Guard, 4, 5),
        ] {
            assert_eq!(untag(tag(op, fd, id)), (Some(op), fd, id));
        }
    }
}
