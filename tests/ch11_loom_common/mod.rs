//! What the chapter 11 loom models share: running a model and counting the
//! interleavings it explored, expecting a model to fail (and printing the
//! interleaving that failed), a do-nothing signal. Used by
//! `tests/ch11_loom_notes.rs` and `tests/ch11_loom_waker.rs`.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use evio::poll::Signal;

/// The preemption bound when `LOOM_MAX_PREEMPTIONS` is not set: every
/// interleaving with at most this many forced thread switches. 3 explores
/// every model here in about 10 s on two cores; 4 takes about a minute;
/// no bound at all does not finish in ten minutes (chapter 11 has the numbers).
const DEFAULT_PREEMPTIONS: usize = 3;

thread_local! {
    /// What the interleaving being explored has done so far. Loom runs a
    /// model's threads one at a time on the test's own OS thread, so a
    /// thread-local sees them all; being no loom object, it adds no
    /// interleavings. Loom stops at the first failing interleaving, so after
    /// a failure this holds the story of that one.
    static TRACE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Records one step of the current interleaving.
pub fn trace(step: impl Into<String>) {
    TRACE.with(|t| t.borrow_mut().push(step.into()));
}

// ANCHOR: explore
/// Runs `model` under loom and returns the number of interleavings explored.
pub fn explore(model: impl Fn() + Send + Sync + 'static) -> usize {
    let mut builder = loom::model::Builder::new(); // reads the LOOM_* variables
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = Some(DEFAULT_PREEMPTIONS);
    }
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    builder.check(move || {
        counter.fetch_add(1, Relaxed);
        TRACE.with(|t| t.borrow_mut().clear());
        model();
    });
    let runs = runs.load(Relaxed);
    println!("explored {runs} interleavings");
    runs
}
// ANCHOR_END: explore

/// Runs `check`, a model that must fail, and returns loom's panic message.
pub fn expect_failure(check: impl FnOnce()) -> String {
    let Err(failed) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) else {
        panic!("loom explored every interleaving and found no failure");
    };
    let msg = failed
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| failed.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    println!("loom failed, as it should: {msg}");
    println!("the failing interleaving:");
    TRACE.with(|t| t.borrow().iter().for_each(|step| println!("    {step}")));
    msg
}

/// A signal that does nothing, for models that are not about wake-ups.
pub struct NoSignal;

impl Signal for NoSignal {
    fn signal(&self) -> io::Result<()> {
        Ok(())
    }
}
