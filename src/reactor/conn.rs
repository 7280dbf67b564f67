//! What the reactor's loop needs about connections besides [`Conn`]: the
//! notes other threads send it, and the rule that finds a wake's target.
//!
//! Chapter 4, "Wake-ups", explains this file. [`Conn`] and [`Waker`], which
//! evio's `Conn` interface and its `conn` struct in `evio_unix.go` describe,
//! live in `src/conn.rs`, because the thread-based variant (chapter 9) hands
//! the very same types to your callbacks; they are re-exported here. A wake
//! names the connection by fd *and* a per-loop id, so a wake for a connection
//! that has closed cannot reach a new one that got the same fd.

use std::os::fd::RawFd;

pub use crate::conn::{Conn, Waker};
pub(crate) use crate::conn::{Kind, WakeVia};

// ANCHOR: note
/// What other threads send a loop through its note queue (evio's notes are
/// an `interface{}`: a duration, an error, or a conn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// Call `data` with no input for the connection with this fd and id.
    Wake { fd: RawFd, id: u64 },
    /// End the loop (from [`crate::Stopper`] or another loop's shutdown).
    Stop,
}
// ANCHOR_END: note

// ANCHOR: wake_target
/// The connection a `Note::Wake { fd, id }` is for: the one the loop holds at
/// `fd`, but only if it is still the connection the waker was made for.
/// Since the loop never hands out an id twice, a waker that outlives its
/// connection reaches nobody, even after the kernel reuses the fd. A plain
/// function over the loop's table, so chapter 11's loom model
/// (`tests/ch11_loom_waker.rs`) checks the very rule the loop's `wake`
/// (`event_loop.rs`) uses.
pub fn wake_target<T>(
    slots: &mut [Option<T>],
    fd: RawFd,
    id: u64,
    id_of: impl Fn(&T) -> u64,
) -> Option<&mut T> {
    let slot = slots.get_mut(usize::try_from(fd).ok()?)?.as_mut()?;
    (id_of(slot) == id).then_some(slot)
}
// ANCHOR_END: wake_target
