//! The reactor engine: a [`Server`] binds its addresses, makes its loops'
//! pollers, runs the loops on threads, and stops them all when one ends.
//!
//! Chapter 5, "The loop and its dispatch", explains this file, and chapter 8
//! the shutdown. It mirrors evio's `serve` (`evio_unix.go`), with two
//! additions evio lacks (its weakness 8): a [`Stopper`] that ends the server
//! from any thread, and [`Server::bind`] as a separate step, so the bound
//! addresses (port 0!) are known before the server runs.
//!
//! | file | holds | evio |
//! |---|---|---|
//! | `balance.rs` | may this loop accept (evio's `Accept::EveryLoop`) | top of `loopAccept` |
//! | `note.rs` | the wake rule (the notes are `src/shared/note.rs`) | `loopNote`, `Wake` |
//! | `dispatch.rs` | the per-connection steps | `loopRun` switch, `loopRead`... |
//! | `event_loop.rs` | one loop | `loopRun`, `loopAccept`, `loopNote`... |
//! | `spare.rs` | the fd a loop that accepts keeps for running out of fds (chapter 15) | none |
//! | `stats.rs` | each loop's counters (chapter 13) | none |
//! | `dispatch_model.rs` | chapter 11's state-machine test of the loop (tests only) | none |
//!
//! The listeners, the sockets and the threads the loops run on are the same
//! for every engine: `src/shared/`.

pub(crate) mod balance;
pub(crate) mod dispatch;
#[cfg(all(test, not(loom)))]
mod dispatch_model;
mod event_loop;
pub(crate) mod note;
mod spare;
mod stats;

use std::io;
use std::sync::{Arc, Barrier};

use crate::addr::{ListenAddr, Network};
use crate::api::{Accept, Action, Backend, Config, ServerInfo};
use crate::events::Events;
use crate::notes::NoteQueue;
use crate::poll::{AnyPoll, Choice, Interest, Poll};
use crate::shared::{run_loops_here, Counters, Listener, Report, Stats, StopNotes, Stopper};
use event_loop::{Loop, Shared};
use note::Note;
use spare::Spare;

// ANCHOR: server
/// A bound server, ready to run.
pub struct Server {
    listeners: Vec<Listener>,
    /// `Accept::ReusePort`: each loop's own socket for each address,
    /// `own[loop][address]` (none for loop 0, whose are `listeners`).
    own: Vec<Vec<Option<Listener>>>,
    /// One poller per loop, of the backend the config chose at run time,
    /// and whether the loop accepts (then it keeps a spare, chapter 15).
    polls: Vec<(AnyPoll, bool)>,
    notes: Vec<Arc<NoteQueue<Note>>>,
    config: Config,
    /// Each loop's counters (chapter 13), read by `stats`.
    counters: Arc<[Counters]>,
    info: ServerInfo,
}
// ANCHOR_END: server

/// The poller a config's [`Backend`] names. `crate::Server::bind` hands
/// `Threads` to the thread-based variant, never to the reactor; should it
/// come here anyway, the error says so.
fn poll_choice(backend: Backend) -> io::Result<Choice> {
    match backend {
        Backend::Auto => Ok(Choice::Auto),
        Backend::Epoll => Ok(Choice::Epoll),
        Backend::Kqueue => Ok(Choice::Kqueue),
        Backend::Threads => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "backend Threads has no poller: the thread-based variant serves it, not the reactor",
        )),
        Backend::IoUring => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "backend IoUring is served by the io_uring engine, not the reactor",
        )),
    }
}

impl Server {
    // ANCHOR: bind
    /// Binds every parsed address (`evio::Server::bind` parsed them all
    /// first) and makes the loops' pollers. All that can fail at start
    /// fails here, before any callback runs.
    pub fn bind(config: Config, addrs: &[ListenAddr]) -> io::Result<Server> {
        let num_loops = config.num_loops();
        // ReusePort: the first socket of an address needs SO_REUSEPORT too,
        // or the others cannot join it. With one loop there are no others,
        // and the port stays closed to other processes, as without it.
        let share = config.accept == Accept::ReusePort && num_loops > 1;
        let addrs: Vec<ListenAddr> = addrs
            .iter()
            .map(|a| ListenAddr {
                reuse_port: a.reuse_port || share && a.network != Network::Unix,
                ..a.clone()
            })
            .collect();
        let (listeners, bound) = Listener::bind_all(&addrs)?;
        for l in &listeners {
            l.set_nonblocking()?;
        }
        // ReusePort: loops 1.. bind their own sockets to what loop 0's got.
        let own = (0..num_loops)
            .map(|idx| {
                if share && idx > 0 {
                    let own = Listener::bind_again(&addrs, &bound)?;
                    for l in own.iter().flatten() {
                        l.set_nonblocking()?;
                    }
                    Ok(own)
                } else {
                    Ok(Vec::new())
                }
            })
            .collect::<io::Result<Vec<_>>>()?;
        let mut polls = Vec::with_capacity(num_loops);
        let mut notes = Vec::with_capacity(num_loops);
        // `own` has a (maybe empty) list for every loop.
        for (idx, own) in own.iter().enumerate() {
            // epoll or kqueue, as the config says (chapter 10).
            let mut poll = AnyPoll::open(poll_choice(config.backend)?)?;
            // Decision: *who accepts*. evio's rule: every loop watches every
            // listener, and `balance::may_accept` picks among the woken.
            // Hand-off: loop 0 watches them, and hands connections out.
            // Exclusive: every loop watches them, and the kernel wakes one.
            // ReusePort: each loop watches its own sockets, loop 0 the
            // first ones and any unix socket (which cannot be shared).
            for (li, l) in listeners.iter().enumerate() {
                match config.accept {
                    Accept::EveryLoop => poll.add(l.fd(), Interest::READ)?,
                    Accept::HandOff | Accept::ReusePort if idx == 0 => {
                        poll.add(l.fd(), Interest::READ)?
                    }
                    Accept::HandOff => {}
                    Accept::Exclusive => poll.add_exclusive(l.fd(), Interest::READ)?,
                    Accept::ReusePort => {
                        if let Some(mine) = own.get(li).and_then(Option::as_ref) {
                            poll.add(mine.fd(), Interest::READ)?
                        }
                    }
                }
            }
            // A loop that accepts keeps a spare (`spare.rs`).
            let accepts = match config.accept {
                Accept::EveryLoop | Accept::Exclusive => true,
                Accept::HandOff => idx == 0,
                Accept::ReusePort => idx == 0 || own.iter().any(Option::is_some),
            };
            // Decision: *when to signal*: on every note (evio), or coalesced.
            let signal = Box::new(poll.signal());
            notes.push(Arc::new(NoteQueue::with_wakeups(signal, config.wakeups)));
            polls.push((poll, accepts));
        }
        Ok(Server {
            listeners,
            own,
            polls,
            notes,
            config,
            counters: (0..num_loops).map(|_| Counters::default()).collect(),
            info: ServerInfo {
                addrs: bound,
                num_loops,
            },
        })
    }
    // ANCHOR_END: bind

    /// The bound addresses and the number of loops.
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// A handle that stops this server from any thread.
    pub fn stopper(&self) -> Stopper {
        Stopper::new(StopNotes(self.notes.clone()))
    }

    /// A handle that reads the loops' counters from any thread.
    pub fn stats(&self) -> Stats {
        let counters = self.counters.clone();
        Stats::new(move || counters.iter().map(Counters::snapshot).collect())
    }

    // ANCHOR: run
    /// Calls `serving`, then runs every loop on its own thread (one loop on
    /// this thread) until one ends; then stops the others and returns the
    /// first error, if any.
    /// Listeners are closed (and unix socket files removed) on return.
    pub fn run<E: Events>(self, events: &E) -> io::Result<()> {
        if events.serving(&self.info) == Action::Shutdown {
            return Ok(());
        }
        let notes = self.notes.clone();
        let counters = self.counters.clone();
        let shared = Shared::new(
            self.listeners,
            self.info.addrs,
            notes,
            counters,
            &self.config,
        )
        .with_own(self.own);
        let stopper = Stopper::new(StopNotes(self.notes.clone()));
        let queues = self.notes.clone();
        let made = Barrier::new(self.polls.len());
        let items = self.polls.into_iter().zip(self.notes).collect();
        // Every loop makes its spare before any loop runs: made after loop
        // 0 began to accept, it could take the fd another loop's spare had
        // just freed to shed with (chapter 15). On its own thread: a ring's
        // teardown interrupts the thread that opened it (chapter 16).
        let run = |idx, ((poll, accepts), notes), _: &Report| {
            let spare = Spare::open(accepts);
            made.wait();
            Loop::<E, AnyPoll>::new(idx, poll, spare, notes, &shared, events).run()
        };
        let result = run_loops_here(items, run, |reports| {
            // The first loop to end ends them all (evio signals its main
            // goroutine the same way).
            let first = reports.first();
            stopper.stop();
            first.and(reports.rest())
        });
        // Every loop has ended, however (a panic too): the wakers and
        // writers that outlive the server must not fill queues nobody reads.
        queues.iter().for_each(|q| q.close());
        result
    }
    // ANCHOR_END: run
}
