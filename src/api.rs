//! The vocabulary of the API: the plain types a user of the library passes
//! in and gets back.
//!
//! Chapter 2, "The API", explains this file. It mirrors the types of evio's
//! `evio.go` (`Action`, `Options`, `Server`, `LoadBalance`), with the
//! server's settings gathered in [`Config`]. The callbacks themselves, the
//! [`Events`](crate::Events) trait, are in `events.rs`: they name
//! [`Conn`](crate::Conn), which is built from the types here, so they sit one
//! step above it (the layers are drawn in `src/lib.rs`).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

// ANCHOR: action
/// What a callback asks the loop to do next with the connection (or server).
///
/// evio's `Action`. `Close`, `Detach` and `Shutdown` returned together with
/// output are *deferred*: the loop first writes all the pending output, then
/// acts (chapter 7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Action {
    /// Carry on.
    #[default]
    None,
    /// Take the socket out of the loop and hand it to [`Events::detached`](crate::Events::detached).
    Detach,
    /// Close the connection.
    Close,
    /// Stop the whole server: every loop ends and every connection is closed.
    Shutdown,
}
// ANCHOR_END: action

/// Whether a loop goes on after handling something; internal to both
/// implementations' loops (`reactor/event_loop.rs`, `threads/event_loop.rs`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Go,
    Stop,
}

impl Flow {
    /// After a callback: its action stops the loop only if it is
    /// `Shutdown` (a `Close` or `Detach` is about one connection).
    pub(crate) fn after(action: Action) -> Flow {
        if action == Action::Shutdown {
            Flow::Stop
        } else {
            Flow::Go
        }
    }
}

// ANCHOR: options
/// Per-connection options, returned by [`Events::opened`](crate::Events::opened): evio's `Options`.
///
/// evio's `ReuseInputBuffer` is not here: [`Events::data`](crate::Events::data) always gets a
/// borrowed slice of the loop's read buffer, and the borrow checker stops you
/// from keeping it past the call (chapter 2 explains why that makes the option
/// unnecessary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Turn on TCP keep-alive with this idle time and probe interval
    /// (`SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`). Ignored for unix sockets.
    pub tcp_keep_alive: Option<Duration>,
}
// ANCHOR_END: options

// ANCHOR: load_balance
/// How the loops share new connections: evio's `LoadBalance` (chapter 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadBalance {
    /// Whichever loop wins the race for `accept` takes the connection.
    #[default]
    Random,
    /// Loops take turns, in order.
    RoundRobin,
    /// A loop accepts only if no other loop has fewer connections.
    LeastConnections,
}
// ANCHOR_END: load_balance

impl std::str::FromStr for LoadBalance {
    type Err = io::Error;

    /// Parses the names the examples' `--balance` flag takes.
    fn from_str(s: &str) -> io::Result<Self> {
        match s {
            "random" => Ok(LoadBalance::Random),
            "round-robin" | "roundrobin" => Ok(LoadBalance::RoundRobin),
            "least-connections" | "leastconnections" => Ok(LoadBalance::LeastConnections),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "unknown load balance {s:?}: expected random, round-robin or least-connections"
                ),
            )),
        }
    }
}

/// Which implementation serves: a poller-based reactor, or threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The best poller this OS has (epoll on Linux), unless an address asks
    /// for the thread-based variant with a `-net` scheme (`tcp-net://`).
    #[default]
    Auto,
    /// The reactor on epoll (Linux).
    Epoll,
    /// The reactor on kqueue (macOS and the BSDs).
    Kqueue,
    /// The thread-based variant: plain std threads, no poller (evio's `-net`).
    Threads,
    /// The completion-based engine on io_uring (Linux 5.19 or later, chapter
    /// 16). Fails at `bind`, naming the cause, where the kernel or a
    /// seccomp profile forbids io_uring; `Auto` never picks it.
    IoUring,
}

impl std::str::FromStr for Backend {
    type Err = io::Error;

    /// Parses the names the examples' `--backend` flag takes.
    fn from_str(s: &str) -> io::Result<Self> {
        match s {
            "auto" => Ok(Backend::Auto),
            "epoll" => Ok(Backend::Epoll),
            "kqueue" => Ok(Backend::Kqueue),
            "threads" | "stdlib" => Ok(Backend::Threads),
            "io-uring" | "iouring" => Ok(Backend::IoUring),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown backend {s:?}: expected auto, epoll, kqueue, threads or io-uring"),
            )),
        }
    }
}

// ANCHOR: accept
/// Who accepts new connections, in the reactor (chapters 6 and 13). The
/// thread-based variant always has one accept thread per listener; the
/// io_uring engine does `HandOff` and `ReusePort`, and serves the other
/// two as `HandOff` (chapter 16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Accept {
    /// evio's way: every loop watches every listener. Each connection wakes
    /// every loop; all but one find nothing to accept (the thundering herd),
    /// and under RoundRobin or LeastConnections a loop that may not take it
    /// is woken again and again until the one that may does (the refusal
    /// spin).
    EveryLoop,
    /// Loop 0 watches the listeners, accepts, and hands each connection to
    /// the loop the balancing rule picks, through that loop's note queue.
    /// One wake-up for the accepting loop, one for the chosen one, and every
    /// rule exact. UDP datagrams are all read by loop 0.
    #[default]
    HandOff,
    /// Every loop watches every listener, but with `EPOLLEXCLUSIVE`: the
    /// kernel wakes one waiting loop per connection, not all, and that loop
    /// takes it. The balancing rule is not consulted (the kernel chose);
    /// on kqueue, which has no such flag, every loop is woken, as evio's.
    Exclusive,
    /// Every loop has its own listening socket for each TCP and UDP address,
    /// all bound to the same port with `SO_REUSEPORT`, and accepts from its
    /// own: the kernel hands each connection (or datagram) to one socket by
    /// a hash of the addresses, and only that socket's loop wakes. The
    /// balancing rule is not consulted (the hash chose), so RoundRobin and
    /// LeastConnections become the kernel's hash. A unix socket cannot be
    /// shared this way: loop 0 alone watches it, and hands its connections
    /// out as `HandOff` does. Linux spreads by hash; macOS and the BSDs
    /// accept the option but do not promise to spread.
    ReusePort,
}
// ANCHOR_END: accept

impl std::str::FromStr for Accept {
    type Err = io::Error;

    /// Parses the names the examples' `--accept` flag takes.
    fn from_str(s: &str) -> io::Result<Self> {
        match s {
            "hand-off" | "handoff" => Ok(Accept::HandOff),
            "every-loop" | "evio" => Ok(Accept::EveryLoop),
            "exclusive" => Ok(Accept::Exclusive),
            "reuseport" | "reuse-port" => Ok(Accept::ReusePort),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "unknown accept {s:?}: expected hand-off, exclusive, reuseport or every-loop (evio's)"
                ),
            )),
        }
    }
}

// ANCHOR: writes
/// When a reply is written, and what the loop watches while it waits: the
/// reactor's two write decisions (chapters 7 and 13). The thread-based
/// variant always writes at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Writes {
    /// evio's way: never in the callback's step. The loop arms write
    /// interest (read stays on) and writes when the next wait says the
    /// socket is writable, then acts on the next. Two `epoll_ctl` calls and
    /// an extra wait per reply, and a peer that does not read spins the
    /// loop (chapter 7).
    Deferred,
    /// Write at once, as much as the socket takes, and act at once when all
    /// of it has gone. Only if the socket would block does the loop watch
    /// for write, and then for write only: it stops reading that peer
    /// (back-pressure). One `read` and one `write` per reply (chapter 13).
    #[default]
    Eager,
}
// ANCHOR_END: writes

// ANCHOR: trigger
/// How the reactor's poller reports a connection ready (chapter 13). The
/// listeners, the wake-up and UDP sockets are watched level-triggered
/// either way; io_uring and the thread-based variant have no poller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trigger {
    /// evio's way: a socket with unread input, or room to write that is
    /// watched for, is reported by every wait while it stays so, and each
    /// wait polls it again to find out.
    Level,
    /// Reported once when input arrives or room frees up (`EPOLLET`,
    /// `EV_CLEAR`). The loop remembers a socket it did not read to the end
    /// and comes back to it on its next turn, so no wait has to poll a
    /// socket only to find it quiet.
    #[default]
    Edge,
}
// ANCHOR_END: trigger

impl std::str::FromStr for Trigger {
    type Err = io::Error;

    /// Parses the names the examples' `--trigger` flag takes.
    fn from_str(s: &str) -> io::Result<Self> {
        match s {
            "edge" => Ok(Trigger::Edge),
            "level" | "evio" => Ok(Trigger::Level),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown trigger {s:?}: expected edge or level (evio's)"),
            )),
        }
    }
}

// ANCHOR: wakeups
/// When another thread's note wakes a loop (chapters 4 and 13).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Wakeups {
    /// On every note, as evio does: one eventfd write per note.
    EveryNote,
    /// Only when the note lands in an empty queue. A non-empty queue has
    /// already been signalled by whoever made it non-empty, and the loop has
    /// not drained it yet, so a second signal would wake nobody new.
    #[default]
    Coalesced,
}
// ANCHOR_END: wakeups

impl std::str::FromStr for Writes {
    type Err = io::Error;

    /// Parses the names the examples' `--writes` flag takes.
    fn from_str(s: &str) -> io::Result<Self> {
        match s {
            "eager" => Ok(Writes::Eager),
            "deferred" | "evio" => Ok(Writes::Deferred),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown writes {s:?}: expected eager or deferred (evio's)"),
            )),
        }
    }
}

impl std::str::FromStr for Wakeups {
    type Err = io::Error;

    /// Parses the names the examples' `--wakeups` flag takes.
    fn from_str(s: &str) -> io::Result<Self> {
        match s {
            "coalesced" => Ok(Wakeups::Coalesced),
            "every-note" | "evio" => Ok(Wakeups::EveryNote),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown wakeups {s:?}: expected coalesced or every-note (evio's)"),
            )),
        }
    }
}

// ANCHOR: io_uring_options
/// The io_uring engine's choices of technique (chapter 16), each beside
/// the simpler one so that each can be measured on its own. The other
/// engines ignore them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoUringOptions {
    /// How a connection's bytes are received.
    pub recv: Receive,
    /// How another thread's note wakes a loop.
    pub wake: RingWake,
    /// How a loop keeps its accepts in flight.
    pub accept: RingAccept,
    /// When a loop hands the kernel what it has queued.
    pub submit: RingSubmit,
}

// ANCHOR: ring_submit
/// When an io_uring loop hands the kernel the operations it has queued
/// (chapter 16). Only `Backend::IoUring` reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RingSubmit {
    /// Once a turn: the `io_uring_enter` that waits carries every receive,
    /// send and accept queued since the last one. The default, and the
    /// point of a ring.
    #[default]
    Batched,
    /// Each operation at once, with an `io_uring_enter` of its own, as a
    /// readiness loop makes one system call per read or write: what
    /// batching saves, measured (chapter 16). Slower; for comparison only.
    EachOp,
}
// ANCHOR_END: ring_submit

impl std::str::FromStr for RingSubmit {
    type Err = io::Error;

    /// Parses the names the examples' `--uring-submit` flag takes.
    fn from_str(s: &str) -> io::Result<Self> {
        match s {
            "batched" => Ok(RingSubmit::Batched),
            "each-op" | "each" => Ok(RingSubmit::EachOp),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown io_uring submit {s:?}: expected batched or each-op"),
            )),
        }
    }
}

/// How the io_uring engine keeps a receive in flight for a connection.
/// Chapter 16 measures both: multishot halves the submissions, but not the
/// system calls, and costs more where it stops reading, so it is not the
/// default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Receive {
    /// One receive at a time: after each completion the loop submits the
    /// next. One submission per arrival of bytes.
    #[default]
    Single,
    /// One multishot receive per connection (Linux 6.0): a single
    /// submission brings a completion for every arrival, for as long as
    /// the kernel says "more". Back-pressure and closing cancel it, and it
    /// receives on until the cancel takes effect. A kernel that refuses it
    /// (`EINVAL`) gets `Single`.
    Multishot,
}
// ANCHOR_END: io_uring_options

impl std::str::FromStr for Receive {
    type Err = io::Error;

    /// Parses the names the examples' `--uring-recv` flag takes.
    fn from_str(s: &str) -> io::Result<Self> {
        match s {
            "single" | "single-shot" => Ok(Receive::Single),
            "multishot" | "multi-shot" => Ok(Receive::Multishot),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown receive {s:?}: expected single or multishot"),
            )),
        }
    }
}

// ANCHOR: ring_wake
/// How another thread wakes an io_uring loop that waits in its ring
/// (chapter 16). Only `Backend::IoUring` reads it. Both cost the waking
/// thread one system call per signal; chapter 16 counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RingWake {
    /// The loop keeps an 8-byte read of an eventfd in its ring (Linux 5.6);
    /// the waking thread `write`s to the eventfd, which completes the read.
    /// The loop submits a new read after each wake. The default: it works
    /// on every kernel this engine runs on, and a storm of wakes cost less
    /// CPU this way than by MSG_RING (chapter 16).
    #[default]
    Eventfd,
    /// The waking thread posts a completion straight into the loop's ring
    /// (`IORING_OP_MSG_RING`, Linux 5.18), with one `io_uring_register`
    /// call, as it has no ring of its own to submit from
    /// (`IORING_REGISTER_SEND_MSG_RING`, Linux 6.13). Nothing to re-arm.
    /// Where the kernel refuses it, `bind` says why on standard error and
    /// the server wakes through the eventfd instead.
    MsgRing,
}
// ANCHOR_END: ring_wake

impl std::str::FromStr for RingWake {
    type Err = io::Error;

    /// Parses the names the examples' `--uring-wake` flag takes.
    fn from_str(s: &str) -> io::Result<Self> {
        match s {
            "eventfd" => Ok(RingWake::Eventfd),
            "msg-ring" | "msgring" => Ok(RingWake::MsgRing),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown io_uring wake {s:?}: expected eventfd or msg-ring"),
            )),
        }
    }
}

// ANCHOR: ring_accept
/// How an io_uring loop keeps an accept in flight on a listener (chapter
/// 16). Only `Backend::IoUring` reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RingAccept {
    /// One accept at a time: each connection's completion is followed by
    /// the submission of the next accept.
    Single,
    /// One submission that stays armed (Linux 5.19): a completion per
    /// connection, with nothing to submit again until the kernel ends it.
    /// The default. Where the kernel refuses it (`EINVAL`), the loop
    /// falls back to `Single` by itself.
    #[default]
    Multishot,
}
// ANCHOR_END: ring_accept

impl std::str::FromStr for RingAccept {
    type Err = io::Error;

    /// Parses the names the examples' `--uring-accept` flag takes.
    fn from_str(s: &str) -> io::Result<Self> {
        match s {
            "single" => Ok(RingAccept::Single),
            "multishot" | "multi-shot" => Ok(RingAccept::Multishot),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown io_uring accept {s:?}: expected single or multishot"),
            )),
        }
    }
}

// ANCHOR: loop_stats
/// What one loop has done since the server started, as
/// [`Server::stats`](crate::Server::stats) reads it while the server runs
/// (chapter 13). The thread-based variant has no poller: there a wait is a
/// message its loop received, a read one its reader threads made, and it
/// counts no refusals, would-blocks or interest changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Returns from the poller's wait.
    pub waits: u64,
    /// Notes taken from the loop's queue: wakes, handed-off connections, stops.
    pub notes: u64,
    /// Connections this loop accepted itself.
    pub accepts: u64,
    /// Times a listener woke this loop and the balancing rule said "not you"
    /// (evio's `Accept::EveryLoop` only).
    pub refusals: u64,
    /// `read` calls on connections.
    pub reads: u64,
    /// `write` calls on connections.
    pub writes: u64,
    /// Reads and writes that said "try again" (`EAGAIN`).
    pub would_blocks: u64,
    /// Changes to what the poller watches a connection for (`epoll_ctl`).
    pub interest_changes: u64,
    /// Bytes read from connections.
    pub bytes_in: u64,
    /// Bytes written to connections.
    pub bytes_out: u64,
    /// Connections closed at once because the server held
    /// `Limits::max_connections` already (chapter 15).
    pub rejected: u64,
    /// Connections closed by a timeout of `Limits` or a deadline (chapter 15).
    pub timed_out: u64,
    /// Callbacks that panicked, under `Panics::Isolate` (chapter 15).
    pub panics: u64,
    /// Operations handed to the kernel through a ring: accepts, receives,
    /// sends, cancellations (the io_uring engine only, chapter 16). There
    /// a wait is one `io_uring_enter`, which may carry many of them.
    pub submitted: u64,
    /// Steps the loop ran unasked, for a connection it had left with
    /// readiness unused: a read that filled the buffer, say (the reactor
    /// under `Trigger::Edge` only, chapter 13).
    pub again: u64,
}
// ANCHOR_END: loop_stats

impl LoopStats {
    /// Every field summed over `loops`.
    pub fn sum<'a>(loops: impl IntoIterator<Item = &'a LoopStats>) -> LoopStats {
        loops
            .into_iter()
            .fold(LoopStats::default(), |a, b| LoopStats {
                waits: a.waits + b.waits,
                notes: a.notes + b.notes,
                accepts: a.accepts + b.accepts,
                refusals: a.refusals + b.refusals,
                reads: a.reads + b.reads,
                writes: a.writes + b.writes,
                would_blocks: a.would_blocks + b.would_blocks,
                interest_changes: a.interest_changes + b.interest_changes,
                bytes_in: a.bytes_in + b.bytes_in,
                bytes_out: a.bytes_out + b.bytes_out,
                rejected: a.rejected + b.rejected,
                timed_out: a.timed_out + b.timed_out,
                panics: a.panics + b.panics,
                submitted: a.submitted + b.submitted,
                again: a.again + b.again,
            })
    }
}

impl std::fmt::Display for LoopStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "waits {} notes {} accepts {} refusals {} reads {} writes {} would-block {} \
             interest {} in {} B out {} B rejected {} timed-out {} panics {} submitted {} again {}",
            self.waits,
            self.notes,
            self.accepts,
            self.refusals,
            self.reads,
            self.writes,
            self.would_blocks,
            self.interest_changes,
            self.bytes_in,
            self.bytes_out,
            self.rejected,
            self.timed_out,
            self.panics,
            self.submitted,
            self.again
        )
    }
}

/// The default limit of a connection's [`Writer`](crate::Writer)s: 1 MiB of
/// output not yet written (`Config::writer_limit`).
pub const DEFAULT_WRITER_LIMIT: usize = 1024 * 1024;

// ANCHOR: limits
/// What one connection may cost the server.
/// Chapter 15, "What a server owes its clients", explains them.
/// evio has none of these: an idle or slow client holds its
/// connection forever, and output for a peer that does not read grows
/// without bound. Every default is safe; `Limits::none()` is evio's way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Close a connection that has neither sent a byte nor taken one for
    /// this long (`closed` gets a `TimedOut` error). Default: 120 s.
    pub idle_timeout: Option<Duration>,
    /// The most output a connection may hold that its peer has not taken
    /// yet. Past it the loop stops reading that peer until the output drains
    /// (back-pressure), so a peer that sends but never reads cannot grow the
    /// server's memory. Default: 1 MiB.
    pub output_limit: usize,
    /// How long a connection may stay over `output_limit` before it is
    /// closed (`TimedOut`). Default: 30 s.
    pub output_timeout: Option<Duration>,
    /// The most connections the server holds at once; a connection accepted
    /// past it is closed at once and counted (`LoopStats::rejected`).
    /// Default: 65,536.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            idle_timeout: Some(Duration::from_secs(120)),
            output_limit: 1024 * 1024,
            output_timeout: Some(Duration::from_secs(30)),
            max_connections: 65_536,
        }
    }
}

impl Limits {
    /// No timeout and no limit: evio's way, for the chapters that show what
    /// it costs.
    pub fn none() -> Limits {
        Limits {
            idle_timeout: None,
            output_limit: usize::MAX,
            output_timeout: None,
            max_connections: usize::MAX,
        }
    }
}
// ANCHOR_END: limits

// ANCHOR: panics
/// What a panic in a connection's callback does (chapter 15).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Panics {
    /// Only that connection is closed: its `closed` runs with an error that
    /// says the callback panicked and carries the message, and the loop
    /// goes on serving the others.
    #[default]
    Isolate,
    /// evio's way (a Go panic ends the program): the loop ends, the server
    /// stops, and `run` returns an error naming the loop.
    FailFast,
}

impl std::str::FromStr for Panics {
    type Err = io::Error;

    /// Parses the names the examples' `--panics` flag takes.
    fn from_str(s: &str) -> io::Result<Self> {
        match s {
            "isolate" => Ok(Panics::Isolate),
            "fail-fast" | "evio" => Ok(Panics::FailFast),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown panics {s:?}: expected isolate or fail-fast (evio's)"),
            )),
        }
    }
}
// ANCHOR_END: panics

// ANCHOR: config
/// How a server is run: the fields evio keeps in its `Events` struct next to
/// the callbacks (`NumLoops`, `LoadBalance`), and the choice of backend.
///
/// Build it with `..Config::default()` so that new fields do not break you.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The number of event loops: `0` means 1, a negative number means one
    /// per CPU (evio's rule).
    pub loops: isize,
    /// How the loops share new connections.
    pub balance: LoadBalance,
    /// Which implementation serves.
    pub backend: Backend,
    /// Who accepts, in the reactor: evio's `EveryLoop`, `HandOff`,
    /// `Exclusive` or `ReusePort` (on io_uring, `HandOff` or `ReusePort`).
    pub accept: Accept,
    /// When the reactor writes replies: evio's `Deferred`, or `Eager`.
    pub writes: Writes,
    /// When a note wakes a reactor loop: evio's `EveryNote`, or `Coalesced`.
    pub wakeups: Wakeups,
    /// How the reactor's poller reports connections: evio's `Level`, or
    /// `Edge`.
    pub trigger: Trigger,
    /// Print each dispatch step of the reactor to standard error (chapter
    /// 13): to watch one request go through the loop. Slow; off by default.
    pub trace: bool,
    /// The most output a connection may hold for its
    /// [`Writer`](crate::Writer)s (queued, plus not yet written); past it a
    /// write fails. `0` means the default, 1 MiB.
    pub writer_limit: usize,
    /// Timeouts and limits per connection (chapter 15).
    pub limits: Limits,
    /// What a panic in a connection's callback does (chapter 15).
    pub panics: Panics,
    /// The io_uring engine's techniques (chapter 16); ignored by the others.
    pub io_uring: IoUringOptions,
}

impl Config {
    /// The writer limit this config asks for, after the rule for `0`.
    pub fn writer_limit(&self) -> usize {
        match self.writer_limit {
            0 => DEFAULT_WRITER_LIMIT,
            n => n,
        }
    }

    /// The number of loops this config asks for, after evio's rule.
    pub fn num_loops(&self) -> usize {
        match self.loops {
            0 => 1,
            n if n < 0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        }
    }
}
// ANCHOR_END: config

/// A bound address, or the address of a connection's end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// A TCP listener or connection.
    Tcp(std::net::SocketAddr),
    /// A UDP listener or datagram peer.
    Udp(std::net::SocketAddr),
    /// A unix socket path. Empty for an unnamed socket (a client end usually is).
    Unix(PathBuf),
}

impl Addr {
    /// The IP address and port, for TCP and UDP.
    pub fn socket_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Addr::Tcp(a) | Addr::Udp(a) => Some(*a),
            Addr::Unix(_) => None,
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp(a) => write!(f, "tcp://{a}"),
            Addr::Udp(a) => write!(f, "udp://{a}"),
            Addr::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

// ANCHOR: server_info
/// What [`Events::serving`](crate::Events::serving) learns about the server: evio's `Server`.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    /// The bound addresses, in the order given to `serve`. A port of 0 has
    /// been replaced by the port the kernel chose.
    pub addrs: Vec<Addr>,
    /// The number of event loops.
    pub num_loops: usize,
}
// ANCHOR_END: server_info

// ANCHOR: stream
/// A detached connection: an ordinary blocking std stream, yours to keep.
#[derive(Debug)]
pub enum Stream {
    /// From a TCP listener.
    Tcp(std::net::TcpStream),
    /// From a unix listener.
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}
// ANCHOR_END: stream

impl io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ch02_zero_loops_means_one_and_negative_means_one_per_cpu() {
        let cfg = |loops| Config {
            loops,
            ..Config::default()
        };
        assert_eq!(cfg(0).num_loops(), 1);
        assert_eq!(cfg(5).num_loops(), 5);
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(cfg(-1).num_loops(), cpus);
    }

    #[test]
    fn ch16_receive_names_parse_and_single_is_the_default() {
        assert_eq!("single".parse::<Receive>().unwrap(), Receive::Single);
        assert_eq!("multishot".parse::<Receive>().unwrap(), Receive::Multishot);
        assert_eq!(Config::default().io_uring.recv, Receive::Single);
        let err = "twice".parse::<Receive>().unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn ch02_balance_names_parse() {
        assert_eq!(
            "random".parse::<LoadBalance>().unwrap(),
            LoadBalance::Random
        );
        assert_eq!(
            "round-robin".parse::<LoadBalance>().unwrap(),
            LoadBalance::RoundRobin
        );
        assert_eq!(
            "least-connections".parse::<LoadBalance>().unwrap(),
            LoadBalance::LeastConnections
        );
        let err = "fastest".parse::<LoadBalance>().unwrap_err();
        assert!(err.to_string().contains("fastest"), "{err}");
    }
}
