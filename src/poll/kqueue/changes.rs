//! The change list: what the loop wants watched, turned into the few
//! `struct kevent` entries that tell the kernel.
//!
//! Chapter 10, "kqueue", explains this file. evio's `AddRead`, `ModRead`,
//! `ModReadWrite` and `ModDetach` each append to a change list that the next
//! `kevent` call submits; here [`Registry`] remembers what is wanted per fd
//! and writes only the difference with what the kernel has. Plain logic, no
//! system call: it is compiled and tested on every OS.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;

use super::ffi::{self, EVFILT_READ, EVFILT_WRITE, EV_ADD, EV_CLEAR, EV_DELETE};
use crate::poll::interface::Interest;

// ANCHOR: change
/// One entry of the change list, before it becomes the platform's
/// `struct kevent` (whose field types differ between systems).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Change {
    pub ident: usize,
    pub filter: i16,
    pub flags: u16,
    pub fflags: u32,
}
// ANCHOR_END: change

/// A change as the platform's `struct kevent`.
#[allow(clippy::unnecessary_cast)] // field types differ between systems
pub(super) fn to_kevent(c: &Change) -> ffi::kevent {
    let mut k = ffi::blank();
    k.ident = c.ident as _;
    k.filter = c.filter as _;
    k.flags = c.flags as _;
    k.fflags = c.fflags as _;
    k
}

/// No filter at all: the state of an fd the kernel has nothing for.
const NONE: Interest = Interest::NONE;

/// What the kernel has, and what the loop wants, for one fd.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The filters the kernel has, as of the last change list submitted.
    kernel: Interest,
    /// The filters wanted; `None` after `delete`.
    want: Option<Interest>,
    /// `add` was called since the last submit: this may be a new socket
    /// that reuses the number of a closed one, so re-add every filter.
    fresh: bool,
    /// Watched edge-triggered: its filters carry `EV_CLEAR` (chapter 13).
    edge: bool,
    /// Already in the dirty list.
    queued: bool,
}

// ANCHOR: registry
/// The interest of every fd, and the changes not yet sent to the kernel.
///
/// `add`, `modify` and `delete` only note what is wanted; [`drain_changes`]
/// then compares it with what the kernel has and writes the few entries
/// that make up the difference. Any number of calls on one fd between two
/// waits cost at most one entry per filter (two on libkqueue after an
/// `add`: see `fresh`).
///
/// [`drain_changes`]: Registry::drain_changes
#[derive(Debug)]
pub(super) struct Registry {
    entries: HashMap<RawFd, Entry>,
    /// Fds whose wanted interest changed since the last drain, in order.
    dirty: Vec<RawFd>,
    close_removes_filters: bool,
}

impl Registry {
    /// An empty registry. `close_removes_filters`: see
    /// `libkqueue::CLOSE_REMOVES_FILTERS` (a parameter, so the tests run
    /// both ways).
    pub(super) fn new(close_removes_filters: bool) -> Self {
        Registry {
            entries: HashMap::new(),
            dirty: Vec::new(),
            close_removes_filters,
        }
    }

    fn touch(&mut self, fd: RawFd) {
        let e = self.entries.get_mut(&fd).expect("touch a known fd");
        if !e.queued {
            e.queued = true;
            self.dirty.push(fd);
        }
    }

    /// Starts watching `fd`. Adding an fd that is already known is not an
    /// error (epoll says `EEXIST`): the reactor closes fds without deleting
    /// them, and the kernel hands the number out again.
    pub(super) fn add(&mut self, fd: RawFd, interest: Interest, edge: bool) {
        let e = self.entries.entry(fd).or_insert(Entry {
            kernel: NONE,
            want: None,
            fresh: false,
            edge,
            queued: false,
        });
        e.want = Some(interest);
        e.fresh = true;
        e.edge = edge;
        self.touch(fd);
    }

    /// Changes what `fd` is watched for; `ENOENT` if it is not watched, as
    /// `epoll_ctl` would say. A change of trigger re-adds every filter,
    /// with the new flags.
    pub(super) fn modify(&mut self, fd: RawFd, interest: Interest, edge: bool) -> io::Result<()> {
        match self.entries.get_mut(&fd) {
            Some(e) if e.want.is_some() => {
                e.want = Some(interest);
                e.fresh |= e.edge != edge;
                e.edge = edge;
            }
            _ => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
        self.touch(fd);
        Ok(())
    }

    /// Stops watching `fd`; `ENOENT` if it is not watched.
    pub(super) fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        match self.entries.get_mut(&fd) {
            Some(e) if e.want.is_some() => e.want = None,
            _ => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
        self.touch(fd);
        Ok(())
    }

    /// Appends to `out` the entries that bring the kernel to what is
    /// wanted, and assumes from now on that the kernel has it.
    pub(super) fn drain_changes(&mut self, out: &mut Vec<Change>) {
        let close_removes = self.close_removes_filters;
        for fd in self.dirty.drain(..) {
            let Some(e) = self.entries.get_mut(&fd) else {
                continue;
            };
            e.queued = false;
            let want = e.want.unwrap_or(NONE);
            let filters = [
                (EVFILT_READ, e.kernel.read, want.read),
                (EVFILT_WRITE, e.kernel.write, want.write),
            ];
            for (filter, has, wants) in filters {
                // A filter goes when it is no longer wanted, or, on
                // libkqueue, when `add` may be re-using a closed fd's number.
                let delete = has && (!wants || (e.fresh && !close_removes));
                // A filter comes when it is wanted and missing, and on every
                // `add` (EV_ADD on a live filter just updates it).
                let add = wants && (!has || e.fresh);
                let change = |flags| Change {
                    ident: fd as usize,
                    filter,
                    flags,
                    fflags: 0,
                };
                if delete {
                    out.push(change(EV_DELETE));
                }
                if add && e.edge {
                    out.push(change(EV_ADD | EV_CLEAR));
                } else if add {
                    out.push(change(EV_ADD));
                }
            }
            if e.want.is_none() {
                self.entries.remove(&fd);
            } else {
                e.kernel = want;
                e.fresh = false;
            }
        }
    }

    /// The kernel refused a change for `fd`'s `filter`: forget that it has
    /// the filter, so a later `modify` that wants it adds it again.
    pub(super) fn failed(&mut self, fd: RawFd, filter: i16) {
        if let Some(e) = self.entries.get_mut(&fd) {
            match filter {
                EVFILT_READ => e.kernel.read = false,
                EVFILT_WRITE => e.kernel.write = false,
                _ => {}
            }
        }
    }
}
// ANCHOR_END: registry

#[cfg(test)]
mod tests {
    use super::*;

    fn change(fd: usize, filter: i16, flags: u16) -> Change {
        Change {
            ident: fd,
            filter,
            flags,
            fflags: 0,
        }
    }

    fn drain(r: &mut Registry) -> Vec<Change> {
        let mut out = Vec::new();
        r.drain_changes(&mut out);
        out
    }

    #[test]
    fn ch10_changes_become_kevent_structs() {
        let c = Change {
            ident: 42,
            filter: EVFILT_WRITE,
            flags: EV_DELETE,
            fflags: 0,
        };
        let k = to_kevent(&c);
        let back = crate::poll::kqueue::fired::from_kevent(&k);
        assert_eq!(
            (back.ident, back.filter, back.flags),
            (42, EVFILT_WRITE, EV_DELETE)
        );
        assert_eq!((back.fflags, back.data), (0, 0));
    }

    #[test]
    fn ch13_edge_triggered_filters_carry_ev_clear() {
        let mut r = Registry::new(true);
        r.add(5, Interest::READ, true);
        assert_eq!(drain(&mut r), [change(5, EVFILT_READ, EV_ADD | EV_CLEAR)]);
        // Write turned on: a new filter, checked by the kernel at once.
        r.modify(5, Interest::READ_WRITE, true).unwrap();
        assert_eq!(drain(&mut r), [change(5, EVFILT_WRITE, EV_ADD | EV_CLEAR)]);
        // Back to level: every filter again, without the flag.
        r.modify(5, Interest::READ_WRITE, false).unwrap();
        assert_eq!(
            drain(&mut r),
            [
                change(5, EVFILT_READ, EV_ADD),
                change(5, EVFILT_WRITE, EV_ADD)
            ]
        );
    }

    #[test]
    fn ch10_read_and_write_are_separate_filters() {
        let mut r = Registry::new(true);
        r.add(5, Interest::READ_WRITE, false);
        assert_eq!(
            drain(&mut r),
            [
                change(5, EVFILT_READ, EV_ADD),
                change(5, EVFILT_WRITE, EV_ADD)
            ]
        );
        // evio's ModRead: only the write filter goes.
        r.modify(5, Interest::READ, false).unwrap();
        assert_eq!(drain(&mut r), [change(5, EVFILT_WRITE, EV_DELETE)]);
        // evio's ModReadWrite: only the write filter comes back.
        r.modify(5, Interest::READ_WRITE, false).unwrap();
        assert_eq!(drain(&mut r), [change(5, EVFILT_WRITE, EV_ADD)]);
        r.delete(5).unwrap();
        assert_eq!(
            drain(&mut r),
            [
                change(5, EVFILT_READ, EV_DELETE),
                change(5, EVFILT_WRITE, EV_DELETE)
            ]
        );
        assert!(
            r.modify(5, Interest::READ, false).is_err(),
            "deleted means unknown"
        );
    }

    #[test]
    fn ch10_changes_between_two_waits_are_coalesced() {
        let mut r = Registry::new(true);
        r.add(7, Interest::READ, false);
        drain(&mut r);
        // Write interest on, then off, before the next wait: nothing to send.
        r.modify(7, Interest::READ_WRITE, false).unwrap();
        r.modify(7, Interest::READ, false).unwrap();
        assert_eq!(drain(&mut r), []);
        // Added and deleted before any wait: the kernel never hears of it.
        r.add(8, Interest::READ, false);
        r.delete(8).unwrap();
        assert_eq!(drain(&mut r), []);
        // Several fds: one batch, in the order they changed.
        r.add(9, Interest::READ, false);
        r.modify(7, Interest::READ_WRITE, false).unwrap();
        assert_eq!(
            drain(&mut r),
            [
                change(9, EVFILT_READ, EV_ADD),
                change(7, EVFILT_WRITE, EV_ADD)
            ]
        );
        assert_eq!(drain(&mut r), [], "a drained list is empty");
    }

    #[test]
    fn ch10_unknown_fds_are_refused_like_epoll() {
        let mut r = Registry::new(true);
        let err = r.modify(3, Interest::READ, false).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(r.delete(3).unwrap_err().raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn ch10_a_reused_fd_is_added_afresh() {
        // fd 4 was watched for read and write, then closed without a
        // delete; a new socket gets number 4 and is added for read.
        for close_removes in [true, false] {
            let mut r = Registry::new(close_removes);
            r.add(4, Interest::READ_WRITE, false);
            drain(&mut r);
            r.add(4, Interest::READ, false);
            let got = drain(&mut r);
            let want = if close_removes {
                // BSD: closing removed both filters; re-add read, and
                // delete write in case the fd was never closed.
                vec![
                    change(4, EVFILT_READ, EV_ADD),
                    change(4, EVFILT_WRITE, EV_DELETE),
                ]
            } else {
                // libkqueue: the old filters are still there; delete them
                // first, or EV_ADD would fail on the stale read filter.
                vec![
                    change(4, EVFILT_READ, EV_DELETE),
                    change(4, EVFILT_READ, EV_ADD),
                    change(4, EVFILT_WRITE, EV_DELETE),
                ]
            };
            assert_eq!(got, want, "close_removes_filters = {close_removes}");
        }
    }

    #[test]
    fn ch10_a_refused_change_is_added_again_later() {
        let mut r = Registry::new(true);
        r.add(6, Interest::READ_WRITE, false);
        drain(&mut r);
        r.failed(6, EVFILT_WRITE);
        r.modify(6, Interest::READ_WRITE, false).unwrap();
        assert_eq!(drain(&mut r), [change(6, EVFILT_WRITE, EV_ADD)]);
    }
}
