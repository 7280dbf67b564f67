//! The poll-backend conformance suite (`src/poll/conformance.rs`), run on
//! every backend this build has: epoll on Linux, kqueue on macOS and the
//! BSDs (or on Linux with `--features libkqueue`), and [`AnyPoll`], the
//! run-time choice the reactor holds.
//!
//! Chapter 3, "The poller", explains the suite; chapter 10, "kqueue", runs
//! it on kqueue. Your own backend joins with one line here, and
//! `cargo test --test ch03_conformance` checks it.
//!
//! [`AnyPoll`]: evio::poll::AnyPoll

#[cfg(target_os = "linux")]
evio::poll_conformance!(epoll, evio::poll::epoll::Epoll);

#[cfg(has_kqueue)]
evio::poll_conformance!(kqueue, evio::poll::kqueue::Kqueue);

evio::poll_conformance!(any, evio::poll::AnyPoll);
