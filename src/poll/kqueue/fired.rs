//! What a `kevent` call hands back, and what it means for the loop: a
//! socket that is ready, the wake-up, or a change the kernel refused.
//!
//! Chapter 10, "kqueue", explains this file. evio's `Wait` (in
//! `internal/internal_bsd.go`) passes each returned fd to the loop, once per
//! filter, and never looks at `EV_ERROR`; here [`classify`] sorts the
//! entries and [`merge`] makes one event per fd, as epoll reports. Plain
//! logic, no system call: it is compiled and tested on every OS.

use std::io;
use std::os::fd::RawFd;

use super::ffi::{self, EVFILT_READ, EVFILT_USER, EVFILT_WRITE, EV_EOF, EV_ERROR};
use crate::poll::interface::Event;

// ANCHOR: fired
/// One entry `kevent` returned: the fields readiness needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fired {
    pub ident: usize,
    pub filter: i16,
    pub flags: u16,
    pub fflags: u32,
    pub data: i64,
}
// ANCHOR_END: fired

/// The fields of a returned `struct kevent` that readiness needs.
#[allow(clippy::unnecessary_cast)] // field types differ between systems
pub(super) fn from_kevent(k: &ffi::kevent) -> Fired {
    Fired {
        ident: k.ident as usize,
        filter: k.filter as i16,
        flags: k.flags as u16,
        fflags: k.fflags as u32,
        data: k.data as i64,
    }
}

/// A change the kernel refused, as its `EV_ERROR` entry said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeError {
    pub fd: RawFd,
    pub filter: i16,
    /// The `errno` the kernel put in the entry's `data`.
    pub errno: i32,
}

impl ChangeError {
    /// The error as an `io::Error`.
    pub fn error(&self) -> io::Error {
        io::Error::from_raw_os_error(self.errno)
    }

    /// Errors that only say the fd was closed before the change reached the
    /// kernel: `ENOENT` (a delete of a filter that closing already removed)
    /// and `EBADF` (a change for an fd that is no longer open). Nobody is
    /// waiting on such an fd any more.
    pub fn is_harmless(&self) -> bool {
        self.errno == libc::ENOENT || self.errno == libc::EBADF
    }
}

// ANCHOR: classify
/// What one entry returned by `kevent` means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    /// Our `EVFILT_USER` event: a wake-up, consumed (its `EV_CLEAR` already
    /// reset it) and not reported.
    Wake,
    /// A socket is ready.
    Ready(Event),
    /// A change of the list failed.
    Failed(ChangeError),
    /// Nothing to act on (a successful `EV_RECEIPT`, an unknown filter).
    Ignored,
}

/// Turns a returned entry into what it means for the loop.
pub(super) fn classify(f: &Fired) -> Fate {
    let fd = f.ident as RawFd;
    if f.flags & EV_ERROR != 0 {
        // An answer to a change, not an event: `data` is the errno, 0 when
        // the change asked for a receipt (EV_RECEIPT) and succeeded.
        if f.data == 0 {
            return Fate::Ignored;
        }
        let errno = f.data as i32;
        let filter = f.filter;
        return Fate::Failed(ChangeError { fd, filter, errno });
    }
    match f.filter {
        EVFILT_USER => Fate::Wake,
        EVFILT_READ | EVFILT_WRITE => {
            // EV_EOF with an errno in `fflags`: the socket failed, so a read
            // and a write will both return at once (epoll's EPOLLERR).
            let failed = f.flags & EV_EOF != 0 && f.fflags != 0;
            Fate::Ready(Event {
                fd,
                readable: f.filter == EVFILT_READ || failed,
                writable: f.filter == EVFILT_WRITE || failed,
                closed: (f.filter == EVFILT_READ && f.flags & EV_EOF != 0) || failed,
            })
        }
        _ => Fate::Ignored,
    }
}

/// Adds `ev` to `events`, merged with an earlier event for the same fd:
/// kqueue reports read and write as two entries, epoll as one event, and
/// the loop should see one event per fd either way. A linear search is fine
/// for the few dozen events one wait returns.
pub(super) fn merge(events: &mut Vec<Event>, ev: Event) {
    match events.iter_mut().rev().find(|e| e.fd == ev.fd) {
        Some(e) => {
            e.readable |= ev.readable;
            e.writable |= ev.writable;
            e.closed |= ev.closed;
        }
        None => events.push(ev),
    }
}
// ANCHOR_END: classify

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::kqueue::ffi::{EV_ADD, EV_CLEAR};

    fn entry(ident: usize, filter: i16, flags: u16, fflags: u32, data: i64) -> Fired {
        Fired {
            ident,
            filter,
            flags,
            fflags,
            data,
        }
    }

    #[test]
    fn ch10_returned_entries_become_readiness() {
        let ready = |fd, readable, writable, closed| {
            Fate::Ready(Event {
                fd,
                readable,
                writable,
                closed,
            })
        };
        // `data` is the bytes to read, or the room to write (libkqueue says
        // 0 for write); readiness does not need it.
        assert_eq!(
            classify(&entry(5, EVFILT_READ, 0, 0, 10)),
            ready(5, true, false, false)
        );
        assert_eq!(
            classify(&entry(5, EVFILT_WRITE, 0, 0, 0)),
            ready(5, false, true, false)
        );
        // The peer shut down: readable (the read returns 0), not writable.
        assert_eq!(
            classify(&entry(5, EVFILT_READ, EV_EOF, 0, 0)),
            ready(5, true, false, true)
        );
        // The socket failed (errno in fflags): both, as epoll's EPOLLERR.
        let reset = entry(5, EVFILT_WRITE, EV_EOF, libc::ECONNRESET as u32, 0);
        assert_eq!(classify(&reset), ready(5, true, true, true));
        assert_eq!(
            // 0: the wake-up event's ident (`WAKE_IDENT` in mod.rs).
            classify(&entry(0, EVFILT_USER, EV_CLEAR, 0, 0)),
            Fate::Wake
        );
    }

    #[test]
    fn ch10_error_entries_are_reported_per_change() {
        let failed = classify(&entry(
            9,
            EVFILT_READ,
            EV_ADD | EV_ERROR,
            0,
            libc::ENOMEM as i64,
        ));
        let err = ChangeError {
            fd: 9,
            filter: EVFILT_READ,
            errno: libc::ENOMEM,
        };
        assert_eq!(failed, Fate::Failed(err));
        assert!(!err.is_harmless());
        assert_eq!(err.error().raw_os_error(), Some(libc::ENOMEM));
        // A receipt (EV_RECEIPT) with data 0: the change worked.
        assert_eq!(
            classify(&entry(9, EVFILT_READ, EV_ERROR, 0, 0)),
            Fate::Ignored
        );
        // Closing the fd first makes these; nobody waits on it any more.
        for errno in [libc::ENOENT, libc::EBADF] {
            let Fate::Failed(e) = classify(&entry(9, EVFILT_WRITE, EV_ERROR, 0, errno as i64))
            else {
                panic!("an error entry must be a failure");
            };
            assert!(e.is_harmless(), "errno {errno}");
        }
    }

    #[test]
    fn ch10_read_and_write_entries_merge_into_one_event() {
        let mut events = Vec::new();
        for (fd, r, w) in [(5, true, false), (6, false, true), (5, false, true)] {
            let ev = Event {
                fd,
                readable: r,
                writable: w,
                closed: false,
            };
            merge(&mut events, ev);
        }
        let ev = |fd, readable, writable| Event {
            fd,
            readable,
            writable,
            closed: false,
        };
        assert_eq!(events, [ev(5, true, true), ev(6, false, true)]);
    }
}
