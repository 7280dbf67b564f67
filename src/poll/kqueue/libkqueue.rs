//! Where libkqueue, a kqueue in userspace over epoll, behaves unlike a BSD
//! kernel, and what the backend does about it: three workarounds, kept in
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
//!
//! On a BSD the first is `false`, the second finds nothing, and the third
//! is not called.

use super::ffi::{self, EV_ERROR};

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
        .take_while(|k| ffi::from_kevent(k).flags & EV_ERROR != 0)
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

    // The two tests below run the real libkqueue.
    #[cfg(all(target_os = "linux", feature = "libkqueue"))]
    use crate::poll::kqueue::{ChangeError, Kqueue};
    #[cfg(all(target_os = "linux", feature = "libkqueue"))]
    use crate::poll::{Event, Interest};

    /// On libkqueue, a change the kernel refuses comes back even when the
    /// wait times out (kevent returns 0 then: see `wait`). epoll refuses
    /// /dev/null (EPERM), and libkqueue passes that on.
    #[cfg(all(target_os = "linux", feature = "libkqueue"))]
    #[test]
    fn ch10_libkqueue_a_refused_change_is_reported() {
        use crate::poll::Poll;
        use std::os::fd::AsRawFd;
        let mut kq = Kqueue::new().unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let fd = null.as_raw_fd();
        kq.add(fd, Interest::READ).unwrap();
        let mut events = Vec::new();
        kq.wait(&mut events, Some(std::time::Duration::from_millis(50)))
            .unwrap();
        let both = Event {
            fd,
            readable: true,
            writable: true,
        };
        assert_eq!(events, [both], "the fd is reported, to meet its error");
        let errors = kq.take_change_errors();
        let eperm = ChangeError {
            fd,
            filter: EVFILT_READ,
            errno: libc::EPERM,
        };
        assert_eq!(errors, [eperm]);
        // An fd that is not open: harmless, so not reported.
        kq.add(1_000_000, Interest::READ).unwrap();
        kq.wait(&mut events, Some(std::time::Duration::ZERO))
            .unwrap();
        assert_eq!(events, []);
        assert_eq!(kq.take_change_errors(), []);
    }

    /// The reactor's pattern: an fd closed without `delete`, its number
    /// handed to a new socket, which is then added. `dup2` makes the reuse
    /// certain (it closes the old socket and reuses its number at once).
    #[cfg(all(target_os = "linux", feature = "libkqueue"))]
    #[test]
    fn ch10_libkqueue_a_reused_fd_number_works() {
        use crate::poll::Poll;
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;
        let mut kq = Kqueue::new().unwrap();
        let (mut a1, b1) = UnixStream::pair().unwrap();
        let fd = b1.as_raw_fd();
        kq.add(fd, Interest::READ).unwrap();
        a1.write_all(b"old").unwrap();
        let mut events = Vec::new();
        kq.wait(&mut events, Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert!(events.iter().any(|e| e.fd == fd && e.readable));
        // A new socket takes fd's number; the old one is gone.
        let (mut a2, b2) = UnixStream::pair().unwrap();
        // SAFETY: both fds are open; `fd` now refers to b2's socket.
        assert_eq!(unsafe { libc::dup2(b2.as_raw_fd(), fd) }, fd);
        drop(a1);
        kq.add(fd, Interest::READ).unwrap();
        kq.wait(&mut events, Some(std::time::Duration::from_millis(50)))
            .unwrap();
        assert_eq!(events, [], "nothing sent on the new socket yet");
        a2.write_all(b"new").unwrap();
        kq.wait(&mut events, Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert!(
            events.iter().any(|e| e.fd == fd && e.readable),
            "{events:?}"
        );
        assert_eq!(kq.take_change_errors(), []);
    }
}
