//! The rule that finds a wake's target in a reactor loop. The [`Note`]s
//! themselves, and how a [`Waker`] turns into one, are shared with the
//! io_uring engine: `src/shared/note.rs`.
//!
//! Chapter 4, "Wake-ups", explains this file. It mirrors evio's `loopNote`
//! and `Conn.Wake` (`evio_unix.go`): a wake is a note on the loop's note
//! queue (`src/notes.rs`), whose signal interrupts the loop's wait. A wake
//! names the connection by fd *and* a per-loop id, so a wake for a
//! connection that has closed cannot reach a new one that got the same fd.
//!
//! [`Waker`]: crate::Waker

use std::os::fd::RawFd;

pub(crate) use crate::shared::Note;

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
