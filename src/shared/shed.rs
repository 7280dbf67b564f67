//! Shedding a connection when the process is out of fds, through a ring's
//! own table of files: the two linked io_uring entries that the reactor's
//! spare ring (chapter 15, "What a server owes its clients") and the
//! io_uring engine (chapter 16) both submit. Linux only.
//!
//! Out of fds, an accept cannot give the connection waiting in the listen
//! queue an fd. An io_uring accept can put it in the ring's table of files
//! instead (a *direct descriptor*, Linux 5.15), which the full fd table
//! does not limit; the caller closes it from there once the accept is back.
//! A ring waits for readiness rather than say `EAGAIN`, so the accept is
//! linked to a short timeout (`IORING_OP_LINK_TIMEOUT`, Linux 5.5) that
//! cancels it when no connection waits.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

/// How long the shedding accept waits for a connection: 1 ms. A waiting
/// one is taken at once; the wait only bounds the case where none waits.
/// The kernel reads it when the entry is submitted, from memory the entry
/// points to, which a static outlives.
static SHED_WAIT: types::Timespec = types::Timespec::new().nsec(1_000_000);

// ANCHOR: accept_into_slot
/// An accept of `listener`'s next connection into slot `slot` of the ring's
/// table of files, linked to the timeout that cancels it when none waits.
/// Both entries must reach the kernel in one submission, in this order; the
/// caller sets their `user_data`. The accept's completion is 0 when a
/// connection is in the slot, `-ECANCELED` when none came in time.
pub(crate) fn accept_into_slot(listener: RawFd, slot: u32) -> [squeue::Entry; 2] {
    let accept = opcode::Accept::new(
        types::Fd(listener),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
    .file_index(types::DestinationSlot::try_from_slot_target(slot).ok())
    .build()
    .flags(squeue::Flags::IO_LINK);
    [accept, opcode::LinkTimeout::new(&SHED_WAIT).build()]
}
// ANCHOR_END: accept_into_slot
