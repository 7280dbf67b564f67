//! The shared-state primitives the note queue is built from, in one place.
//!
//! Chapter 4, "Wake-ups", explains why this file exists: under
//! `RUSTFLAGS="--cfg loom"` every `Mutex`, `Arc` and atomic here is loom's
//! model of it, so the loom tests (chapter 11) can explore every interleaving
//! of the threads that add notes and the loop that drains them. evio's
//! `internal/notequeue.go` uses Go's `sync.Mutex` directly; it has no such switch.

// ANCHOR: sync
#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};
// ANCHOR_END: sync
