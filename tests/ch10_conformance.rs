//! The poll-backend conformance suite (`src/poll/conformance.rs`) on
//! chapter 10's backend, kqueue: on macOS and the BSDs, and on Linux with
//! `--features libkqueue`. Elsewhere this file has no tests.
//!
//! Chapter 10, "kqueue", explains why the same six properties hold. The
//! `has_kqueue` cfg comes from `build.rs`, which sets it for every target
//! of this package: the library, its tests, its examples.

// ANCHOR: suite
#[cfg(has_kqueue)]
evio::poll_conformance!(ch10_kqueue, evio::poll::Kqueue);
// ANCHOR_END: suite
