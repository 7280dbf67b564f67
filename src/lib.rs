//! # evio-rs: an event loop you can read
//!
//! A reimplementation, in Rust, of the Go library
//! [evio](https://github.com/tidwall/evio): a small *reactor* that runs one or
//! more event loops, each blocked in `epoll_wait`, and calls your [`Events`]
//! callbacks when a connection opens, sends data, or closes.
//!
//! The book in `chapters/` walks through every file; the
//! [introduction](../chapters/ch01-introduction.md) has the map from evio's files to
//! these modules:
//!
//! | module | what it is | chapter |
//! |---|---|---|
//! | [`api`] | the public types: [`Events`], [`Action`], [`Config`], ... | 2, The API |
//! | [`addr`] | parsing `tcp://host:port?reuseport=1` | 2, The API |
//! | [`input_stream`] | [`InputStream`], for messages split across reads | 2, The API |
//! | [`poll`] | the [`Poll`](poll::Poll) interface, its [`Signal`](poll::Signal), the epoll and kqueue backends | 3, The poller; 10, kqueue |
//! | [`notes`] | the note queue other threads use to wake a loop | 4, Wake-ups |
//! | `sync` | the atomics and mutexes the note queue uses (std or loom) | 4, Wake-ups |
//! | `conn` | [`Conn`] and [`Waker`], the same for both implementations | 2, 4, 9 |
//! | `listener` | binding the listening sockets, for both implementations | 6, Accepting and balancing |
//! | [`reactor`] | the server, its loops, accept, dispatch, writes | 5 to 8 |
//! | [`threads`] | the thread-based variant: std threads and channels, no poller | 9, The thread-based variant |
//! | `server` | [`Server`] and [`Stopper`]: the reactor or the threads, chosen at `bind` | 9 |
//! | [`proto`] | HTTP and RESP parsers for the example servers | 12, Three servers |
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

pub mod addr;
pub mod api;
mod conn;
pub mod input_stream;
mod listener;
// The pollers, the note queue that wakes them, and the reactor need a unix
// OS; elsewhere (Windows) only the thread-based variant exists (chapter 9).
#[cfg(unix)]
pub mod notes;
#[cfg(unix)]
pub mod poll;
/// Protocol parsers and reply writers for the example servers (HTTP/1.1, RESP2): chapter 12.
pub mod proto;
#[cfg(unix)]
pub mod reactor;
mod server;
#[cfg(unix)]
mod sync;
pub mod threads;

pub use addr::{ListenAddr, Network};
pub use api::{Action, Addr, Backend, Config, Events, LoadBalance, Options, ServerInfo, Stream};
pub use conn::{Conn, Waker};
pub use input_stream::InputStream;
pub use server::{Server, Stopper};

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
