//! The grader of lab 03 (chapter 3, "The poller", exercise 3): the poll
//! conformance suite (`src/poll/conformance.rs`) on your `poll(2)` backend,
//! `Poll2` in `labs/poll2.rs`, which this file includes as a module.
//!
//! Every test is `#[ignore]`d, so a plain `cargo test` compiles the starting
//! file (it panics with "not yet implemented" until you write it) but does
//! not run it; grade the lab with
//!
//! ```text
//! cargo test lab03 -- --ignored
//! ```
//!
//! Eight properties, each a test named after it: the six of chapter 3, and
//! the two the loop relies on about closed fds
//! (`closed_fd_number_can_be_added_again`, `closed_fd_is_never_reported`),
//! which the `Poll` trait's documentation states.

#[path = "../labs/poll2.rs"]
mod poll2;

evio::poll_conformance!(
    #[ignore = "lab 03: write the poll(2) backend in labs/poll2.rs, then `cargo test lab03 -- --ignored`"]
    lab03_poll2,
    poll2::Poll2
);
