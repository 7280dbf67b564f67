//! The callbacks a server calls: the [`Events`] trait, evio's `Events`.
//!
//! Chapter 2, "The API", explains this file. evio's `Events` is a struct of
//! optional closures (`Serving`, `Opened`, `Closed`, `Detached`, `PreWrite`,
//! `Data`, `Tick`) next to its settings (`NumLoops`, `LoadBalance`); here the
//! callbacks are the methods of one trait, each with a default that does
//! nothing, the per-connection context is an associated type instead of an
//! `interface{}`, and the settings are in [`Config`](crate::Config).

use std::io;
use std::time::Duration;

use crate::api::{Action, Options, ServerInfo, Stream};
use crate::conn::Conn;

// ANCHOR: events
/// The callbacks of a server: evio's `Events`, one method per callback, each
/// with a default that does nothing, so you write only the ones you need.
///
/// The loops call these from their own threads, so the type is `Sync`: state
/// shared by all connections goes behind atomics or a mutex, state of one
/// connection goes in [`Events::Context`], which only its loop touches.
pub trait Events: Sync {
    /// The per-connection state, created with `Default` when a connection is
    /// accepted and reachable as [`Conn::context`] in every callback.
    type Context: Default;

    /// The server is bound and about to run (evio's `Serving`).
    /// Returning [`Action::Shutdown`] stops it before any loop starts.
    fn serving(&self, _server: &ServerInfo) -> Action {
        Action::None
    }

    /// A connection was accepted (evio's `Opened`). Bytes appended to `out`
    /// are sent to it first.
    fn opened(&self, _c: &mut Conn<Self::Context>, _out: &mut Vec<u8>) -> (Options, Action) {
        (Options::default(), Action::None)
    }

    /// A connection was closed, by either side (evio's `Closed`). `err` is the
    /// error that closed it, if any. Not called for detached connections.
    fn closed(&self, _c: &mut Conn<Self::Context>, _err: Option<io::Error>) -> Action {
        Action::None
    }

    /// A connection left the loop after [`Action::Detach`] (evio's
    /// `Detached`). The stream is blocking and yours; dropping it closes it.
    /// The default drops it and calls [`Events::closed`], as evio does when
    /// `Detached` is not set.
    fn detached(&self, c: &mut Conn<Self::Context>, stream: Stream) -> Action {
        drop(stream);
        self.closed(c, None)
    }

    /// Called just before the loop writes to any socket (evio's `PreWrite`).
    fn pre_write(&self) {}

    /// Input arrived (evio's `Data`). `input` borrows the loop's read buffer;
    /// append the reply to `out`, which the loop owns and reuses, and do not
    /// clear it: it may already hold output that a wake-up produced.
    ///
    /// After [`Waker::wake`](crate::Waker::wake) this is called with an empty `input`.
    fn data(&self, _c: &mut Conn<Self::Context>, _input: &[u8], _out: &mut Vec<u8>) -> Action {
        Action::None
    }

    /// Called on loop 0 right after start, then again after the delay it
    /// returns (evio's `Tick`). Returning `None` as the delay stops the ticks.
    fn tick(&self) -> (Option<Duration>, Action) {
        (None, Action::None)
    }

    /// `accept` failed with an error other than "try again". evio stops the
    /// server here; we report it and go on (chapter 6). The default prints
    /// it to standard error.
    fn accept_error(&self, err: &io::Error) -> Action {
        eprintln!("evio: accept failed: {err}");
        Action::None
    }
}
// ANCHOR_END: events
