//! Where libkqueue, a kqueue in userspace over epoll, behaves unlike a BSD
//! kernel, and what the backend does about it: four workarounds, kept in
//! one place so that the rest of the backend reads as plain kqueue.
//!
//! Chapter 10, "kqueue", explains them. evio never met them: it runs its
//! kqueue code on the BSDs only.
//!
//! 1. Closing an fd does not remove its filters ([`CLOSE_REMOVES_FILTERS`]):
//!    the change list deletes them before it adds new ones
//!    (`changes::Registry`, `fresh`).
//! 2. A refused change's error entry comes back uncounted when the wait
//!    times out ([`uncounted_errors`]).
//! 3. A closed kqueue's own fds are freed a little later, by a thread of
//!    libkqueue's ([`drain_pending_close`]).
//! 4. A change of one filter loses another's `EV_CLEAR` and `EV_EOF`
//!    ([`EDGE_TRIGGERED`]): the backend watches level-triggered there.
//!
//! On a BSD the first is `false`, the second finds nothing, the third is
//! not called, and the fourth is `true`.
//!
//! One more difference needs nothing here, as nothing leaks: the process's
//! first kqueue makes libkqueue open two fds of its own, an epoll fd and an
//! eventfd for the thread of the third point (`monitoring_epfd` and
//! `monitoring_drain_efd`, opened by `linux_kqueue_init` in its
//! `src/linux/platform.c`). Every later kqueue uses the same two; they stay
//! open after the thread has ended with the last kqueue, and are closed
//! only at exit (`linux_libkqueue_free`, from an `atexit` handler). Measured
//! here (libkqueue 2.7.0, commit f966089): one `anon_inode:[eventpoll]` and
//! one `anon_inode:[eventfd]` more once the first kqueue is closed, the
//! same two whether it watched 0 or 20,000 sockets, and no more after
//! later kqueues. A test that counts fds (chapter 15's churn) opens a
//! kqueue before it counts. A BSD kernel keeps nothing.

use super::ffi::{self, EV_ERROR};
use super::fired::from_kevent;

// ANCHOR: close_removes
/// Whether closing an fd removes its filters from the kqueue. A BSD kernel
/// does (kqueue(2): "calling close() on a file descriptor will remove any
/// kevents that reference the descriptor"). libkqueue cannot: Linux does
/// not tell a library that an fd was closed (libkqueue's BUGS.md), so a
/// filter outlives its fd, and an `EV_ADD` for a new socket that reuses the
/// number fails. Our reactor closes connections without deleting them
/// first, as it does on epoll, so on libkqueue `Registry` deletes the
/// stale filters before it adds new ones.
pub(super) const CLOSE_REMOVES_FILTERS: bool = cfg!(kqueue_os);
// ANCHOR_END: close_removes

/// Whether `EV_CLEAR` gives the edge-triggered watch the loop relies on
/// (`Poll::add_edge`, chapter 13). On a BSD kernel each filter is its own.
/// libkqueue keeps one epoll registration per fd for its read and write
/// filters: measured here (libkqueue 2.7.0, commit f966089), a read filter
/// added with `EV_CLEAR` in the same change list that deletes the fd's
/// write filter is then reported by every wait, and without `EV_EOF` while
/// the peer's end waits behind unread input, which the conformance suite's
/// `edge_modify_reports_what_it_turns_on` catches. So on libkqueue the
/// backend watches level-triggered, which reports more, never less.
pub(super) const EDGE_TRIGGERED: bool = cfg!(kqueue_os);

/// How many of `answers`, the entries a wait got back for its changes, are
/// error entries that `kevent` wrote but did not count.
///
/// libkqueue writes a failed change's EV_ERROR entry, then waits, and
/// returns 0 if the wait times out: the entry is there but not counted. The
/// wait blanks these entries before the call, so the leading ones that
/// carry EV_ERROR are exactly the uncounted errors. (A BSD kernel returns
/// at once with them; this finds none there.)
pub(super) fn uncounted_errors(answers: &[ffi::kevent]) -> usize {
    answers
        .iter()
        .take_while(|k| from_kevent(k).flags & EV_ERROR != 0)
        .count()
}

/// libkqueue notices a closed kqueue from a thread of its own, which
/// closes the kqueue's own fds (an epoll fd, a pipe, eventfds) a little
/// later. Until then those numbers stay taken, and the next sockets get
/// other numbers than they would from a BSD kernel (a test that expects
/// a closed connection's fd to be handed out again can fail). libkqueue
/// after 2.7.0 exports a call that waits for that thread; older versions
/// lack it, so look it up at run time instead of linking to it.
pub(super) fn drain_pending_close() {
    let name = c"libkqueue_drain_pending_close";
    // SAFETY: dlsym with a valid C string; a null result means absent.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    if !f.is_null() {
        // SAFETY: libkqueue declares it `void libkqueue_drain_pending_close(void)`.
        let f: extern "C" fn() = unsafe { std::mem::transmute(f) };
        f();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::kqueue::ffi::{blank, EVFILT_READ};

    #[test]
    fn ch10_uncounted_errors_are_the_leading_error_entries() {
        let mut answers = [blank(); 3];
        assert_eq!(uncounted_errors(&answers), 0, "blank: no error");
        answers[0].flags = EV_ERROR as _;
        answers[0].filter = EVFILT_READ as _;
        answers[2].flags = EV_ERROR as _;
        assert_eq!(uncounted_errors(&answers), 1, "stops at the first blank");
    }
}
