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
/// What stopping means to one engine: a stop note for each loop, a stop
/// message on each loop's channel, ...
pub(crate) trait Stop: Send + Sync {
    /// Asks every loop to stop; a loop that has ended already is skipped.
    fn stop(&self);
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
    /// already stopped does nothing.
    pub fn stop(&self) {
        self.0.stop()
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
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run(idx, item, &report)
                    }));
                    let panicked = || Err(io::Error::other(format!("loop {idx} panicked")));
                    report.send(ran.unwrap_or_else(|_| panicked()));
                })
                .expect("spawn loop thread");
        }
        drop(tx);
        supervise(Reports(rx))
    })
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
