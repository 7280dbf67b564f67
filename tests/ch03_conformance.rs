//! The poll-backend conformance suite (`src/poll/conformance.rs`) on the
//! backends of chapter 3: epoll (Linux) and [`AnyPoll`], the run-time choice
//! the reactor holds. Chapter 10's kqueue runs it in
//! `tests/ch10_conformance.rs`.
//!
//! Chapter 3, "The poller", explains the suite. Your own backend joins with
//! one line, here or in a file of its chapter:
//! `evio::poll_conformance!(ch03_poll2, Poll2);` and `cargo test ch03_poll2`
//! checks it. The suite needs the `conformance` feature, which every test
//! build of this crate has (see Cargo.toml).
//!
//! [`AnyPoll`]: evio::poll::AnyPoll

#[cfg(target_os = "linux")]
evio::poll_conformance!(ch03_epoll, evio::poll::Epoll);

evio::poll_conformance!(ch03_any, evio::poll::AnyPoll);
