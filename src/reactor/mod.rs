//! The reactor: a [`Server`] binds its addresses, makes its loops, runs them
//! on threads, and stops them all when one ends.
//!
//! Chapter 5, "The loop and its dispatch", explains this file, and chapter 8
//! the shutdown. It mirrors evio's `serve` (`evio_unix.go`), with two
//! additions evio lacks (its weakness 8): a [`Stopper`] that ends the server
//! from any thread, and [`Server::bind`] as a separate step, so the bound
//! addresses (port 0!) are known before the server runs.
//!
//! | file | holds | evio |
//! |---|---|---|
//! | `listener.rs` | non-blocking listeners (bound by `src/listener.rs`), `accept4` | `Serve`, `loopAccept` |
//! | `balance.rs` | which loop accepts | top of `loopAccept` |
//! | `conn.rs` | the notes, the wake rule ([`Conn`](conn::Conn) and [`Waker`](conn::Waker) are in `src/conn.rs`) | `conn`, `Wake` |
//! | `dispatch.rs` | the per-connection steps | `loopRun` switch, `loopRead`... |
//! | `event_loop.rs` | one loop | `loopRun`, `loopAccept`, `loopNote`... |

pub mod balance;
pub mod conn;
pub mod dispatch;
#[cfg(all(test, not(loom)))]
mod dispatch_model;
mod event_loop;
mod listener;

use std::io;
use std::sync::atomic::AtomicUsize;
use std::sync::{mpsc, Arc};

use crate::addr::ListenAddr;
use crate::api::{Action, Addr, Backend, Config, Events, LoadBalance, ServerInfo};
use crate::notes::NoteQueue;
use crate::poll::{AnyPoll, Choice, Interest, Poll};
use conn::Note;
use event_loop::Loop;
use listener::Listener;

/// What all loops of a server share.
pub(crate) struct Shared {
    listeners: Vec<Listener>,
    /// The bound addresses, for a datagram's `local_addr` (no
    /// `getsockname` per datagram).
    addrs: Vec<Addr>,
    /// Connections held by each loop, for `LeastConnections`.
    counts: Vec<AtomicUsize>,
    /// Connections accepted so far, for `RoundRobin`.
    turn: AtomicUsize,
    balance: LoadBalance,
}

// ANCHOR: server
/// A bound server, ready to run.
pub struct Server {
    listeners: Vec<Listener>,
    /// One poller per loop, of the backend the config chose at run time.
    polls: Vec<AnyPoll>,
    notes: Vec<Arc<NoteQueue<Note>>>,
    balance: LoadBalance,
    info: ServerInfo,
}
// ANCHOR_END: server

// ANCHOR: stopper
/// Stops a running server from any thread; cheap to clone.
#[derive(Clone)]
pub struct Stopper {
    notes: Vec<Arc<NoteQueue<Note>>>,
}

impl Stopper {
    /// Sends every loop a stop note. The server's `run` returns once all
    /// loops have ended and closed their connections. Stopping a server that
    /// has already stopped does nothing.
    pub fn stop(&self) {
        for q in &self.notes {
            let _ = q.add(Note::Stop);
        }
    }
}
// ANCHOR_END: stopper

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
    }
}

impl Server {
    // ANCHOR: bind
    /// Binds every parsed address (`evio::Server::bind` parsed them all
    /// first) and makes the loops' pollers. All that can fail at start
    /// fails here, before any callback runs.
    pub fn bind(config: Config, addrs: &[ListenAddr]) -> io::Result<Server> {
        let (listeners, addrs) = listener::bind_all(addrs)?;
        let num_loops = config.num_loops();
        let mut polls = Vec::with_capacity(num_loops);
        let mut notes = Vec::with_capacity(num_loops);
        for _ in 0..num_loops {
            // epoll or kqueue, as the config says (chapter 10).
            let mut poll = AnyPoll::open(poll_choice(config.backend)?)?;
            // Decision: *who accepts*. evio's rule: every loop watches every
            // listener, and `balance::may_accept` picks among the woken.
            for l in &listeners {
                poll.add(l.fd(), Interest::READ)?;
            }
            notes.push(Arc::new(NoteQueue::new(Box::new(poll.signal()))));
            polls.push(poll);
        }
        Ok(Server {
            listeners,
            polls,
            notes,
            balance: config.balance,
            info: ServerInfo { addrs, num_loops },
        })
    }
    // ANCHOR_END: bind

    /// The bound addresses and the number of loops.
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// A handle that stops this server from any thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            notes: self.notes.clone(),
        }
    }

    // ANCHOR: run
    /// Calls `serving`, then runs every loop on its own thread until one
    /// ends; then stops the others and returns the first error, if any.
    /// Listeners are closed (and unix socket files removed) on return.
    pub fn run<E: Events>(self, events: &E) -> io::Result<()> {
        if events.serving(&self.info) == Action::Shutdown {
            return Ok(());
        }
        let shared = Shared {
            counts: self.polls.iter().map(|_| AtomicUsize::new(0)).collect(),
            listeners: self.listeners,
            addrs: self.info.addrs,
            turn: AtomicUsize::new(0),
            balance: self.balance,
        };
        let stopper = Stopper { notes: self.notes };
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::scope(|scope| {
            for (idx, poll) in self.polls.into_iter().enumerate() {
                let (done, notes, shared) = (done_tx.clone(), stopper.notes[idx].clone(), &shared);
                std::thread::Builder::new()
                    .name(format!("evio-loop-{idx}"))
                    .spawn_scoped(scope, move || {
                        let run = || Loop::new(idx, poll, notes, shared, events).run();
                        // A panicking callback ends the server with an error
                        // rather than leaving the other loops running forever.
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                            .unwrap_or_else(|_| {
                                Err(io::Error::other(format!("loop {idx} panicked")))
                            });
                        let _ = done.send(result);
                    })
                    .expect("spawn loop thread");
            }
            drop(done_tx);
            // The first loop to end ends them all (evio signals its main
            // goroutine the same way).
            let mut result = done_rx.recv().unwrap_or(Ok(()));
            stopper.stop();
            for other in done_rx {
                if result.is_ok() {
                    result = other;
                }
            }
            result
        })
    }
    // ANCHOR_END: run
}
