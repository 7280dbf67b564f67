//! Running a server's loops, for every engine: one thread per loop, a panic
//! caught and turned into an error, the first loop to end ending them all,
//! and the [`Stopper`] that ends them from any thread.
//!
//! Chapter 5, "The loop and its dispatch", explains this file; chapter 8
//! explains the shutdown. It mirrors the end of evio's `serve`
//! (`evio_unix.go`) and `stdserve` (`evio_std.go`): start a goroutine per
//! loop, wait for the first to report, signal the others, wait for them all.
//! evio has no way to stop a server from outside (its weakness 8); the
//! [`Stopper`] is ours.

use std::cell::Cell;
use std::io;
use std::sync::{mpsc, Arc};

use crate::api::Panics;

// ANCHOR: stopper
/// What stopping means to one engine: a flag and a signal for each loop, a
/// stop message on each loop's channel, ...
pub(crate) trait Stop: Send + Sync {
    /// Asks every loop to stop; a loop that has ended already is skipped.
    fn stop(&self);

    /// Whether `stop` is async-signal-safe: no lock, no allocation.
    fn signal_safe(&self) -> bool {
        false
    }
}

/// Stops a running server from any thread; cheap to clone.
#[derive(Clone)]
pub struct Stopper(Arc<dyn Stop>);

impl Stopper {
    pub(crate) fn new(how: impl Stop + 'static) -> Stopper {
        Stopper(Arc::new(how))
    }

    /// Asks every loop to stop. The server's `run` returns once all loops
    /// have ended and closed their connections. Stopping a server that has
    /// already stopped does nothing. On the reactor and io_uring it takes
    /// no lock and allocates nothing, so a signal handler may call it (the
    /// thread variant sends each loop a message, which allocates).
    pub fn stop(&self) {
        self.0.stop()
    }

    /// Whether [`Stopper::stop`] may be called from a signal handler: on the
    /// reactor and io_uring, not on the thread variant. The examples stop on
    /// SIGINT and SIGTERM in a handler where they may, and else from a
    /// thread that waits for the signals (`examples/common/mod.rs`).
    pub fn is_signal_safe(&self) -> bool {
        self.0.signal_safe()
    }
}
// ANCHOR_END: stopper

/// How a loop thread says it has ended; the first report of a loop counts.
/// A loop may report before its thread returns (the thread variant's loops
/// go on draining their channel); otherwise its return value is its report.
pub(crate) struct Report {
    tx: mpsc::Sender<io::Result<()>>,
    sent: Cell<bool>,
}

impl Report {
    pub(crate) fn send(&self, result: io::Result<()>) {
        if !self.sent.replace(true) {
            let _ = self.tx.send(result);
        }
    }
}

/// The loops' reports, as the supervisor of [`run_loops`] reads them.
pub(crate) struct Reports(mpsc::Receiver<io::Result<()>>);

impl Reports {
    /// Waits until the first loop ends, and returns what it reported.
    pub(crate) fn first(&self) -> io::Result<()> {
        self.0.recv().unwrap_or(Ok(()))
    }

    /// Waits until every other loop has ended; the first error, if any.
    pub(crate) fn rest(self) -> io::Result<()> {
        self.0.into_iter().fold(Ok(()), io::Result::and)
    }
}

// ANCHOR: run_loops
/// Runs `run(idx, item, report)` for each item on a thread of its own,
/// named `evio-loop-IDX`, and hands the reports to `supervise`, which waits
/// for the first, stops the others and waits for them. A callback that
/// panics ends its loop with an error rather than leaving the other loops
/// running forever. Returns when every loop thread has returned.
pub(crate) fn run_loops<T: Send, R>(
    items: Vec<T>,
    run: impl Fn(usize, T, &Report) -> io::Result<()> + Sync,
    supervise: impl FnOnce(Reports) -> R,
) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        for (idx, item) in items.into_iter().enumerate() {
            let (tx, run) = (tx.clone(), &run);
            std::thread::Builder::new()
                .name(format!("evio-loop-{idx}"))
                .spawn_scoped(scope, move || {
                    let report = Report {
                        tx,
                        sent: Cell::new(false),
                    };
                    report.send(ran(idx, || run(idx, item, &report)));
                })
                .expect("spawn loop thread");
        }
        drop(tx);
        supervise(Reports(rx))
    })
}

/// [`run_loops`], except that one loop runs on the calling thread, and
/// `supervise` after it: for the reactor and io_uring, whose supervisors
/// only wait (the thread variant's starts its accept threads first).
///
/// A loop on a thread of its own would leave the caller idle, and a process
/// of two threads pays on every system call: the kernel looks each fd up in
/// a table that threads share, and takes a reference on the file for the
/// length of the call unless no other thread shares the table (`fdget`;
/// chapter 14 measures it). tokio's `current_thread` runtime is one thread
/// too.
#[cfg(unix)] // the reactor and io_uring
pub(crate) fn run_loops_here<T: Send, R>(
    mut items: Vec<T>,
    run: impl Fn(usize, T, &Report) -> io::Result<()> + Sync,
    supervise: impl FnOnce(Reports) -> R,
) -> R {
    if items.len() != 1 {
        return run_loops(items, run, supervise);
    }
    let (tx, rx) = mpsc::channel();
    let report = Report {
        tx,
        sent: Cell::new(false),
    };
    let item = items.pop().expect("one item");
    report.send(ran(0, || run(0, item, &report)));
    drop(report);
    supervise(Reports(rx))
}

/// What loop `idx` reports: what `run` returned, or an error if it panicked.
fn ran(idx: usize, run: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    ran.unwrap_or_else(|_| Err(io::Error::other(format!("loop {idx} panicked"))))
}
// ANCHOR_END: run_loops

// ANCHOR: catch
/// Runs a callback about one connection. Under [`Panics::Isolate`] a panic
/// is caught and becomes the error that connection is closed with (the
/// panic hook has already printed it); under `FailFast` it unwinds the
/// loop, as evio's would end the program. Catching costs nothing until
/// something panics: the unwinding tables are there anyway.
pub(crate) fn catch<R>(panics: Panics, callback: impl FnOnce() -> R) -> io::Result<R> {
    if panics == Panics::FailFast {
        return Ok(callback());
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback)).map_err(|payload| {
        let msg = (payload.downcast_ref::<&str>().copied())
            .or(payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic without a message");
        io::Error::other(format!("a callback panicked: {msg}"))
    })
}
// ANCHOR_END: catch
