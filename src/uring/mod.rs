//! The io_uring engine: the same callbacks as the reactor, served by
//! *completions* instead of readiness (Linux only).
//!
//! Chapter 16, "Completion instead of readiness", explains this folder. evio
//! has no such engine; its place is that of evio's `serve` (`evio_unix.go`),
//! and it is built like the reactor's (`src/reactor/mod.rs`): [`Server::bind`]
//! binds the addresses and opens one ring per loop, `run` runs the loops on
//! the threads of `src/shared/loops.rs`.
//!
//! | file | holds |
//! |---|---|
//! | `note.rs` | how another thread wakes a loop through its ring: an eventfd, or a MSG_RING (the notes are `src/shared/note.rs`) |
//! | `ring.rs` | opening a ring as every loop's is, and the probe that says why there is none |
//! | `buffers.rs` | the provided-buffer ring the receives take their buffers from |
//! | `sends.rs` | the sends in flight, and the bytes the kernel reads for them |
//! | `event_loop.rs` | one loop on one ring: accept, receive, send, cancel |
//! | `udp.rs` | a UDP listener's datagrams and replies, by `recvmsg` and `sendmsg` on the ring |
//!
//! What this step leaves out, and why, is at the end of chapter 16:
//! `Accept::EveryLoop` and `Accept::Exclusive` (served as hand-off).

mod buffers;
mod event_loop;
mod note;
mod ring;
mod sends;
mod udp;

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use crate::addr::{ListenAddr, Network};
use crate::api::{Accept, Action, Config, RingWake, ServerInfo};
use crate::events::Events;
use crate::notes::NoteQueue;
use crate::shared::{run_loops_here, Counters, Listener, Report, Stats, StopNotes, Stopper};
use buffers::BufRing;
use event_loop::{Loop, Shared};
use note::{Bell, Mailbox, Note, Ringer};
use ring::open_ring;
pub(crate) use ring::probe;

// ANCHOR: probe_msg_ring
/// Whether another thread can wake a ring here with a MSG_RING sent
/// through `io_uring_register`: a ring set up as the loops' are, on a
/// thread of its own (see `probe`), is sent one and must see it within a
/// second. Kernels before 6.13 refuse the call (`EINVAL`).
pub(crate) fn probe_msg_ring() -> io::Result<()> {
    const PROBE: u64 = 0x5EA1;
    let probe = std::thread::spawn(|| {
        let mut ring = open_ring()?;
        let mailbox = Mailbox::default();
        let open = mailbox.open(ring.as_raw_fd(), PROBE);
        let signalled = std::thread::spawn(move || crate::poll::Signal::signal(&mailbox));
        signalled
            .join()
            .map_err(|_| io::Error::other("panicked"))??;
        let ts = io_uring::types::Timespec::new().sec(1);
        let args = io_uring::types::SubmitArgs::new().timespec(&ts);
        match ring.submitter().submit_with_args(1, &args) {
            Err(e) if e.raw_os_error() != Some(libc::ETIME) => return Err(e),
            _ => {}
        }
        drop(open);
        let got = ring
            .completion()
            .next()
            .map(|c| (c.user_data(), c.result()));
        match got {
            Some((PROBE, 0)) => Ok(()),
            Some((_, res)) => Err(io::Error::other(format!("a completion with {res}"))),
            None => Err(io::Error::other("no completion within 1 s")),
        }
    });
    probe
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("probing MSG_RING panicked")))
}

/// The ringers for `loops` loops: by MSG_RING if the config asks for it
/// and the kernel can (else the eventfd, saying why on standard error,
/// once per `bind`), or by the eventfd.
fn ringers(wake: RingWake, loops: usize) -> io::Result<Vec<Ringer>> {
    if wake == RingWake::MsgRing {
        match probe_msg_ring() {
            Ok(()) => {
                return Ok((0..loops)
                    .map(|_| Ringer::MsgRing(Mailbox::default()))
                    .collect())
            }
            Err(e) => eprintln!(
                "evio: io_uring: RingWake::MsgRing refused here ({e}; it needs Linux 6.13): \
                 the loops are woken through an eventfd"
            ),
        }
    }
    (0..loops)
        .map(|_| Bell::new().map(Ringer::Eventfd))
        .collect()
}
// ANCHOR_END: probe_msg_ring

/// A bound server on io_uring, ready to run.
pub struct Server {
    listeners: Vec<Listener>,
    /// `Accept::ReusePort`: each loop's own socket for each address,
    /// `own[loop][address]` (none for loop 0, whose are `listeners`).
    own: Vec<Vec<Option<Listener>>>,
    bells: Vec<Ringer>,
    notes: Vec<Arc<NoteQueue<Note>>>,
    config: Config,
    counters: Arc<[Counters]>,
    info: ServerInfo,
}

impl Server {
    // ANCHOR: bind
    /// Binds every parsed address and opens a ring per loop: every reason
    /// io_uring cannot serve here fails now, before any callback runs.
    pub fn bind(config: Config, addrs: &[ListenAddr]) -> io::Result<Server> {
        // Each loop opens its own ring on its own thread, the one that
        // submits to it: the kernel's work for a ring interrupts the thread
        // that opened it (see `probe`), and must interrupt no other.
        probe()?;
        let num_loops = config.num_loops();
        // ReusePort: every loop accepts on its own socket of each TCP
        // address, all bound with SO_REUSEPORT (the first one too, or the
        // others cannot join it), as the reactor's (chapter 13). A unix
        // socket cannot be shared: loop 0 accepts on it and hands out.
        let share = config.accept == Accept::ReusePort && num_loops > 1;
        let addrs: Vec<ListenAddr> = (addrs.iter())
            .map(|a| ListenAddr {
                reuse_port: a.reuse_port || share && a.network != Network::Unix,
                ..a.clone()
            })
            .collect();
        // Blocking listeners and sockets: io_uring waits for them itself.
        let (listeners, bound) = Listener::bind_all(&addrs)?;
        let own = (0..num_loops)
            .map(|idx| match share && idx > 0 {
                true => Listener::bind_again(&addrs, &bound),
                false => Ok(Vec::new()),
            })
            .collect::<io::Result<Vec<_>>>()?;
        let bells = ringers(config.io_uring.wake, num_loops)?;
        let notes = (bells.iter())
            .map(|b| Arc::new(NoteQueue::with_wakeups(Box::new(b.clone()), config.wakeups)))
            .collect();
        Ok(Server {
            listeners,
            own,
            bells,
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

    /// Calls `serving`, then runs every loop on its own thread (one loop on
    /// this thread) until one ends; then stops the others and returns the
    /// first error, if any.
    pub fn run<E: Events>(self, events: &E) -> io::Result<()> {
        if events.serving(&self.info) == Action::Shutdown {
            return Ok(());
        }
        let shared = Shared::new(
            self.listeners,
            self.notes.clone(),
            self.counters.clone(),
            &self.config,
        )
        .with_own(self.own);
        let stopper = Stopper::new(StopNotes(self.notes.clone()));
        let queues = self.notes.clone();
        let opened = Barrier::new(self.bells.len());
        let items = self.bells.into_iter().zip(self.notes).collect();
        // Every loop opens its ring before any loop runs: once loop 0
        // accepts, connections take fds, and a ring opened after them could
        // find none left (`EMFILE`, found by chapter 15's fd-exhaustion
        // test). A loop whose ring fails still reaches the barrier, so that
        // no other waits for ever; then every loop ends.
        let failed = AtomicBool::new(false);
        let run = |idx, (bell, notes), _: &Report| {
            // (ring, buffers): dropped in that order, the ring first, as
            // the kernel lets go of the buffers with it.
            let ring = open_ring().and_then(|ring| {
                let buffers = BufRing::new(&ring)?;
                Ok((ring, buffers))
            });
            failed.fetch_or(ring.is_err(), Ordering::SeqCst);
            opened.wait();
            let (ring, buffers) = ring?;
            if failed.load(Ordering::SeqCst) {
                return Ok(()); // another loop has the error to report
            }
            Loop::new(idx, (ring, buffers), bell, notes, &shared, events).run()
        };
        let result = run_loops_here(items, run, |reports| {
            let first = reports.first();
            stopper.stop();
            first.and(reports.rest())
        });
        queues.iter().for_each(|q| q.close());
        result
    }
}
