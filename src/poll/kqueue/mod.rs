//! The kqueue backend: macOS and the BSDs, and Linux through libkqueue.
//!
//! Chapter 10, "kqueue", explains this folder. It mirrors evio's
//! `internal/internal_bsd.go`: `OpenPoll` makes a kqueue and registers an
//! `EVFILT_USER` event (ident 0, `EV_CLEAR`) that `Trigger` fires with
//! `NOTE_TRIGGER`; `AddRead`, `AddReadWrite`, `ModRead`, `ModReadWrite` and
//! `ModDetach` do not call the kernel but append to a change list, which
//! `Wait` hands to the same `kevent` call that waits. Read and write are two
//! separate *filters*, registered and removed one by one.
//!
//! Where we differ from evio:
//! - changes are coalesced per fd: evio appends one entry per call, so a
//!   `ModReadWrite` then a `ModRead` before the next wait send two entries
//!   that cancel out; here they send none;
//! - a change the kernel refuses comes back as an `EV_ERROR` entry, and is
//!   reported (evio never looks);
//! - the wait has a timeout (evio waits forever and ticks from a goroutine).
//!
//! | file | holds |
//! |---|---|
//! | `ffi.rs` | the constants, `struct kevent`, the `kqueue` and `kevent` calls |
//! | `changes.rs` | `Registry`: interest changes become change-list entries (`to_kevent`) |
//! | `fired.rs` | `classify`, `merge`: returned entries (`from_kevent`) become readiness |
//! | `libkqueue.rs` | where libkqueue is not a BSD kernel, and the workarounds |
//! | `mod.rs` | `Kqueue`, the only code that calls `kevent` |
//!
//! All but this file's backend are plain logic, compiled everywhere and
//! unit-tested on Linux. Imports point one way: `ffi.rs` uses none of the
//! others, `changes.rs` and `fired.rs` use `ffi.rs`, this file uses them all. `Kqueue` is compiled on macOS, iOS, FreeBSD,
//! NetBSD, OpenBSD and DragonFly with `libc`'s definitions, and on Linux
//! with the `libkqueue` cargo feature, against the userspace library of that
//! name (`build.rs` links it): where the `has_kqueue` cfg is set.

// Without a `kevent` to call (Linux without the feature) the backend below
// is left out, and only the tests use the logic it is built from.
#![cfg_attr(not(has_kqueue), allow(dead_code, unused_imports))]

mod changes;
mod ffi;
mod fired;
mod libkqueue;

pub use fired::ChangeError;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::interface::{Event, Interest, Poll, Signal};
use super::sys::cvt;
use changes::{to_kevent, Change, Registry};
use ffi::{blank, EVFILT_USER, EV_ADD, EV_CLEAR, EV_RECEIPT, NOTE_TRIGGER};
use fired::{classify, from_kevent, merge, Fate};

/// The ident of the wake-up event: evio's choice, 0. `EVFILT_USER` idents
/// are not fds, so this cannot clash with fd 0 (a kqueue keys its events by
/// ident *and* filter).
const WAKE_IDENT: usize = 0;

/// How many events one wait can return: evio's 128 for kqueue.
const MAX_EVENTS: usize = 128;

/// How many refused changes are kept for [`Kqueue::take_change_errors`].
const MAX_KEPT_ERRORS: usize = 64;

/// The kqueue's fd. Closing it frees the kqueue and all its filters.
struct KqFd(Option<OwnedFd>);

impl KqFd {
    fn raw(&self) -> RawFd {
        self.0.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }
}

impl Drop for KqFd {
    fn drop(&mut self) {
        drop(self.0.take()); // closes the kqueue
        if cfg!(feature = "libkqueue") {
            libkqueue::drain_pending_close();
        }
    }
}

// ANCHOR: kqueue
/// A kqueue, its change list, and the `EVFILT_USER` event that wakes it.
#[cfg(has_kqueue)]
pub struct Kqueue {
    /// Shared with every [`UserEvent`] handed out, so a late wake-up
    /// from another thread triggers a still-open kqueue.
    kq: Arc<KqFd>,
    registry: Registry,
    /// Scratch buffers, kept to avoid allocating on every wait.
    changes: Vec<Change>,
    list: Vec<ffi::kevent>,
    buf: Vec<ffi::kevent>,
    errors: Vec<ChangeError>,
}

/// The wake-up half: triggers the `EVFILT_USER` event.
#[cfg(has_kqueue)]
pub struct UserEvent(Arc<KqFd>);

// SAFETY: the only pointers in a `struct kevent` are `udata`, which
// we leave null and never read; the buffers are plain data.
#[cfg(has_kqueue)]
unsafe impl Send for Kqueue {}

#[cfg(has_kqueue)]
impl Signal for UserEvent {
    fn signal(&self) -> io::Result<()> {
        // NOTE_TRIGGER fires the event; many triggers before a wait
        // leave it fired once. (It also overwrites `udata`, on BSD as
        // on libkqueue: harmless, we keep none.) With no room for
        // events the call returns at once, and reports an error as -1.
        let trigger = Change {
            ident: WAKE_IDENT,
            filter: EVFILT_USER,
            flags: 0,
            fflags: NOTE_TRIGGER,
        };
        ffi::submit(self.0.raw(), &[to_kevent(&trigger)], &mut [], None)?;
        Ok(())
    }
}
// ANCHOR_END: kqueue

#[cfg(has_kqueue)]
impl Kqueue {
    /// The changes the kernel refused since the last call, except the
    /// harmless ones ([`ChangeError::is_harmless`]); at most 64 are
    /// kept. Each was also reported by its wait as the fd being ready,
    /// so that the loop's next read or write meets the socket's error.
    pub fn take_change_errors(&mut self) -> Vec<ChangeError> {
        std::mem::take(&mut self.errors)
    }
}

#[cfg(has_kqueue)]
impl Poll for Kqueue {
    type Signal = UserEvent;

    // ANCHOR: new
    fn new() -> io::Result<Self> {
        // SAFETY: a plain call; the fd is owned at once.
        let kq = KqFd(Some(unsafe { OwnedFd::from_raw_fd(cvt(ffi::kqueue())?) }));
        // Register the wake-up event now, alone. EV_CLEAR: delivering
        // it resets it, so it wakes one wait and not every wait after.
        // EV_RECEIPT: the answer comes back as an entry (data 0 for
        // success) and the call does not wait for, or take, events.
        let wake = Change {
            ident: WAKE_IDENT,
            filter: EVFILT_USER,
            flags: EV_ADD | EV_CLEAR | EV_RECEIPT,
            fflags: 0,
        };
        let mut answer = [blank()];
        let n = ffi::submit(kq.raw(), &[to_kevent(&wake)], &mut answer, None)?;
        if let (1, Fate::Failed(e)) = (n, classify(&from_kevent(&answer[0]))) {
            return Err(e.error());
        }
        Ok(Kqueue {
            kq: Arc::new(kq),
            registry: Registry::new(libkqueue::CLOSE_REMOVES_FILTERS),
            changes: Vec::new(),
            list: Vec::new(),
            buf: Vec::new(),
            errors: Vec::new(),
        })
    }
    // ANCHOR_END: new

    fn signal(&self) -> UserEvent {
        UserEvent(self.kq.clone())
    }

    fn add(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.registry.add(fd, interest, false);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.registry.modify(fd, interest, false)
    }

    /// `EV_CLEAR` on each filter: a delivered event is reset, and comes
    /// again only when the filter's state changes (more input, more room).
    /// A filter that `modify_edge` adds is new to the kernel, which checks
    /// it at once: a readiness it turns on is reported. Not on libkqueue
    /// (`libkqueue::EDGE_TRIGGERED`), which watches level-triggered.
    const EDGE_TRIGGERED: bool = libkqueue::EDGE_TRIGGERED;

    fn add_edge(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.registry.add(fd, interest, Self::EDGE_TRIGGERED);
        Ok(())
    }

    fn modify_edge(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.registry.modify(fd, interest, Self::EDGE_TRIGGERED)
    }

    fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        self.registry.delete(fd)
    }

    // ANCHOR: wait
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        self.changes.clear();
        self.registry.drain_changes(&mut self.changes);
        self.list.clear();
        self.list.extend(self.changes.iter().map(to_kevent));
        // Room for an error entry per change, plus the events: when a
        // change fails with no room left, kevent(2) returns -1 and the
        // rest of the list is never applied.
        let nchanges = self.list.len();
        let room = MAX_EVENTS + nchanges;
        if self.buf.len() < room {
            self.buf.resize(room, blank());
        }
        // Blank the entries a failed change would be written to, so that
        // libkqueue's uncounted ones can be found (see below).
        self.buf[..nchanges].fill(blank());
        let kq = self.kq.raw();
        let mut n = match ffi::submit(kq, &self.list, &mut self.buf[..room], timeout) {
            Ok(n) => n,
            // Interrupted: the changes were applied (FreeBSD's
            // kevent(2)); report no events, as epoll does.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        if n == 0 && nchanges > 0 {
            // A timed-out wait on libkqueue does not count its error entries.
            n = libkqueue::uncounted_errors(&self.buf[..nchanges]);
        }
        for k in &self.buf[..n] {
            match classify(&from_kevent(k)) {
                Fate::Ready(ev) => merge(events, ev),
                Fate::Failed(err) if !err.is_harmless() => {
                    self.registry.failed(err.fd, err.filter);
                    merge(
                        events,
                        Event {
                            fd: err.fd,
                            readable: true,
                            writable: true,
                            closed: true,
                        },
                    );
                    if self.errors.len() < MAX_KEPT_ERRORS {
                        self.errors.push(err);
                    }
                }
                Fate::Failed(_) | Fate::Wake | Fate::Ignored => {}
            }
        }
        Ok(())
    }
    // ANCHOR_END: wait
}

/// The backend on the real libkqueue: its workarounds (`libkqueue.rs`) at
/// work.
#[cfg(all(test, target_os = "linux", feature = "libkqueue"))]
mod tests {
    use super::*;
    use ffi::EVFILT_READ;

    /// On libkqueue, a change the kernel refuses comes back even when the
    /// wait times out (kevent returns 0 then: see `wait`). epoll refuses
    /// /dev/null (EPERM), and libkqueue passes that on.
    #[cfg(all(target_os = "linux", feature = "libkqueue"))]
    #[test]
    fn ch10_libkqueue_a_refused_change_is_reported() {
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
            closed: true,
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
