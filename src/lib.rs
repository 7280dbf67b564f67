//! # evio-rs: an event loop you can read
//!
//! A reimplementation, in Rust, of the Go library
//! [evio](https://github.com/tidwall/evio): a small *reactor* that runs one or
//! more event loops, each blocked in `epoll_wait`, and calls your [`Events`]
//! callbacks when a connection opens, sends data, or closes.
//!
//! The book in `chapters/` walks through every file; its introduction
//! (`chapters/ch01-introduction.md`) has the map from evio's files to ours.
//!
//! ## How the crate is built: layers, and imports that point one way
//!
//! Each layer uses only the layers above it in this list, never one below;
//! `.ci/check-layers` fails CI on an import that goes the wrong way.
//!
//! | layer | files | what it is | chapter |
//! |---|---|---|---|
//! | the poller | `poll/`, `sync.rs` | the [`Poll`](poll::Poll) trait and its backends (epoll, kqueue); imports nothing of the crate | 3, 10 |
//! | vocabulary | `api.rs`, `addr.rs`, `input_stream.rs` | the types you pass and get back ([`Action`], [`Config`], [`Addr`], ...), address parsing, [`InputStream`] | 2 |
//! | the connection, the note queue | `conn.rs`, `notes.rs` | [`Conn`] and [`Waker`], naming no engine; the queue through which other threads wake a loop | 2, 4 |
//! | the callbacks | `events.rs` | [`Events`] | 2 |
//! | what engines share | `shared/` | listeners, sockets, loop threads, [`Stopper`], the UDP reply | 5, 6, 8, 9 |
//! | the engines | `reactor/`, `threads/`, `uring/` | the reactor on a poller; the thread-based variant; the completion-based engine on io_uring (Linux). None imports another | 5 to 9, 16 |
//! | the server | `server.rs` | [`Server`]: picks an engine at `bind` | 9 |
//! | the crate | `lib.rs` | what is public | 2 |
//!
//! Only what a user of the library needs is public, plus one deliberate
//! extension point: [`poll`], where a student's own poller plugs in.
//!
//! ```no_run
//! use evio::{Action, Conn, Events};
//!
//! struct Echo;
//!
//! impl Events for Echo {
//!     type Context = ();
//!     fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
//!         out.extend_from_slice(input);
//!         Action::None
//!     }
//! }
//!
//! evio::serve(&Echo, &["tcp://127.0.0.1:5000"]).unwrap();
//! ```

mod addr;
mod api;
mod conn;
mod events;
mod input_stream;
#[cfg(unix)]
mod notes;
// The pollers and the reactor need a unix OS; elsewhere (Windows) only the
// thread-based variant exists (chapter 9).
#[cfg(unix)]
pub mod poll;
#[cfg(unix)]
mod reactor;
mod server;
mod shared;
mod sync;
mod threads;
// io_uring exists on Linux only (chapter 16).
#[cfg(target_os = "linux")]
mod uring;

pub use api::{
    Accept, Action, Addr, Backend, Config, IoUringOptions, Limits, LoadBalance, LoopStats, Options,
    Panics, Receive, RingAccept, RingSubmit, RingWake, ServerInfo, Stream, Trigger, Wakeups,
    Writes,
};
pub use conn::{Conn, Waker, Writer};
pub use events::Events;
pub use input_stream::InputStream;
pub use server::Server;
pub use shared::{Stats, Stopper};

/// What this crate's own tests reach inside the library (chapter 11's loom
/// models and property tests): not part of the API, and free to change.
#[doc(hidden)]
pub mod internals {
    pub use crate::addr::{ListenAddr, Network, Target};
    #[cfg(unix)]
    pub use crate::api::Wakeups;
    pub use crate::conn::{Budget, Deliver, Wake};
    #[cfg(all(unix, loom))]
    pub use crate::notes::Bug;
    #[cfg(unix)]
    pub use crate::notes::NoteQueue;
    #[cfg(unix)]
    pub use crate::reactor::balance::may_accept;
    #[cfg(unix)]
    pub use crate::reactor::note::wake_target;

    /// Whether this machine lets a process open an io_uring: `Err` with the
    /// reason where the kernel lacks it or a seccomp profile forbids it,
    /// so that the tests skip `Backend::IoUring` there, saying why.
    pub fn io_uring_available() -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        return crate::uring::probe();
        #[cfg(not(target_os = "linux"))]
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "io_uring is Linux only",
        ));
    }

    /// Whether another thread can wake an io_uring loop here by MSG_RING
    /// (`RingWake::MsgRing`, Linux 6.13): `Err` with the reason where not,
    /// and there `bind` falls back to the eventfd.
    pub fn io_uring_msg_ring_available() -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        return crate::uring::probe_msg_ring();
        #[cfg(not(target_os = "linux"))]
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "io_uring is Linux only",
        ));
    }

    /// A [`Writer`](crate::Writer) that delivers through `via`, with its own
    /// budget of `limit` bytes: for chapter 13's loom model.
    pub fn writer(via: std::sync::Arc<dyn Wake>, id: u64, limit: usize) -> crate::Writer {
        crate::conn::Writer::for_model(via, id, limit)
    }
}

// ANCHOR: serve
/// Binds `addrs` with the default [`Config`] (one loop) and serves `events`
/// until a callback returns [`Action::Shutdown`]: evio's `Serve`.
///
/// Use [`Server::bind`] instead when you need the bound addresses before the
/// server runs (port 0), several loops, or a [`Stopper`].
pub fn serve<E: Events>(events: &E, addrs: &[&str]) -> std::io::Result<()> {
    Server::bind(Config::default(), addrs)?.run(events)
}
// ANCHOR_END: serve
