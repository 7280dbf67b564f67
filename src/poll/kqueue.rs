//! The kqueue backend: macOS and the BSDs, and Linux through libkqueue.
//!
//! Chapter 10, "kqueue", explains this file. It mirrors evio's
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
//! The file has two halves. The first is plain logic, compiled everywhere and
//! unit-tested on Linux: [`Registry`] turns interest changes into change-list
//! entries, and [`classify`] turns the entries `kevent` returns into
//! readiness. The second, `Kqueue`, is the only code that calls `kevent`.
//! It is compiled on macOS, iOS, FreeBSD, NetBSD, OpenBSD and DragonFly with
//! `libc`'s definitions, and on Linux with the `libkqueue` cargo feature,
//! against the userspace library of that name (`build.rs` links it).

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;

use super::{Event, Interest};

// ANCHOR: consts
/// The constants, from `libc`: their values differ between systems
/// (`EVFILT_USER` is -10 on macOS, -11 on FreeBSD, 8 on NetBSD).
#[allow(clippy::unnecessary_cast)] // the types differ between systems too
#[cfg(kqueue_os)]
mod consts {
    pub const EVFILT_READ: i16 = libc::EVFILT_READ as i16;
    pub const EVFILT_WRITE: i16 = libc::EVFILT_WRITE as i16;
    pub const EVFILT_USER: i16 = libc::EVFILT_USER as i16;
    pub const EV_ADD: u16 = libc::EV_ADD as u16;
    pub const EV_DELETE: u16 = libc::EV_DELETE as u16;
    pub const EV_CLEAR: u16 = libc::EV_CLEAR as u16;
    pub const EV_RECEIPT: u16 = libc::EV_RECEIPT as u16;
    pub const EV_EOF: u16 = libc::EV_EOF as u16;
    pub const EV_ERROR: u16 = libc::EV_ERROR as u16;
    pub const NOTE_TRIGGER: u32 = libc::NOTE_TRIGGER as u32;
}

/// Our own constants, so the logic compiles and is tested on Linux. The
/// values are FreeBSD's, which libkqueue's `<sys/event.h>` uses too.
#[cfg(not(kqueue_os))]
mod consts {
    pub const EVFILT_READ: i16 = -1;
    pub const EVFILT_WRITE: i16 = -2;
    pub const EVFILT_USER: i16 = -11;
    pub const EV_ADD: u16 = 0x0001;
    pub const EV_DELETE: u16 = 0x0002;
    pub const EV_CLEAR: u16 = 0x0020;
    pub const EV_RECEIPT: u16 = 0x0040;
    pub const EV_EOF: u16 = 0x8000;
    pub const EV_ERROR: u16 = 0x4000;
    pub const NOTE_TRIGGER: u32 = 0x0100_0000;
}
// ANCHOR_END: consts

pub use consts::*;

/// Whether closing an fd removes its filters from the kqueue. A BSD kernel
/// does (kqueue(2): "calling close() on a file descriptor will remove any
/// kevents that reference the descriptor"). libkqueue cannot: Linux does
/// not tell a library that an fd was closed (libkqueue's BUGS.md), so a
/// filter outlives its fd, and an `EV_ADD` for a new socket that reuses the
/// number fails. Our reactor closes connections without deleting them
/// first, as it does on epoll, so on libkqueue [`Registry`] deletes the
/// stale filters before it adds new ones.
pub const CLOSE_REMOVES_FILTERS: bool = cfg!(kqueue_os);

/// The ident of the wake-up event: evio's choice, 0. `EVFILT_USER` idents
/// are not fds, so this cannot clash with fd 0 (a kqueue keys its events by
/// ident *and* filter).
pub const WAKE_IDENT: usize = 0;

/// No filter at all: the state of an fd the kernel has nothing for.
const NONE: Interest = Interest {
    read: false,
    write: false,
};

// ANCHOR: change
/// One entry of the change list, before it becomes the platform's
/// `struct kevent` (whose field types differ between systems).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub ident: usize,
    pub filter: i16,
    pub flags: u16,
    pub fflags: u32,
}

/// One entry `kevent` returned: the fields readiness needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fired {
    pub ident: usize,
    pub filter: i16,
    pub flags: u16,
    pub fflags: u32,
    pub data: i64,
}
// ANCHOR_END: change

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
pub struct Registry {
    entries: HashMap<RawFd, Entry>,
    /// Fds whose wanted interest changed since the last drain, in order.
    dirty: Vec<RawFd>,
    close_removes_filters: bool,
}

impl Registry {
    /// An empty registry. `close_removes_filters`: see
    /// [`CLOSE_REMOVES_FILTERS`] (a parameter, so the tests run both ways).
    pub fn new(close_removes_filters: bool) -> Self {
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
    pub fn add(&mut self, fd: RawFd, interest: Interest) {
        let e = self.entries.entry(fd).or_insert(Entry {
            kernel: NONE,
            want: None,
            fresh: false,
            queued: false,
        });
        e.want = Some(interest);
        e.fresh = true;
        self.touch(fd);
    }

    /// Changes what `fd` is watched for; `ENOENT` if it is not watched, as
    /// `epoll_ctl` would say.
    pub fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        match self.entries.get_mut(&fd) {
            Some(e) if e.want.is_some() => e.want = Some(interest),
            _ => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
        self.touch(fd);
        Ok(())
    }

    /// Stops watching `fd`; `ENOENT` if it is not watched.
    pub fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        match self.entries.get_mut(&fd) {
            Some(e) if e.want.is_some() => e.want = None,
            _ => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
        self.touch(fd);
        Ok(())
    }

    /// Appends to `out` the entries that bring the kernel to what is
    /// wanted, and assumes from now on that the kernel has it.
    pub fn drain_changes(&mut self, out: &mut Vec<Change>) {
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
                if add {
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
    pub fn failed(&mut self, fd: RawFd, filter: i16) {
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
pub enum Fate {
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
pub fn classify(f: &Fired) -> Fate {
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
            })
        }
        _ => Fate::Ignored,
    }
}

/// Adds `ev` to `events`, merged with an earlier event for the same fd:
/// kqueue reports read and write as two entries, epoll as one event, and
/// the loop should see one event per fd either way. A linear search is fine
/// for the few dozen events one wait returns.
pub fn merge(events: &mut Vec<Event>, ev: Event) {
    match events.iter_mut().rev().find(|e| e.fd == ev.fd) {
        Some(e) => {
            e.readable |= ev.readable;
            e.writable |= ev.writable;
        }
        None => events.push(ev),
    }
}
// ANCHOR_END: classify

// ANCHOR: struct_kevent
/// The platform's `struct kevent` and `kevent` call, from `libc`.
#[cfg(kqueue_os)]
pub mod sys {
    pub use libc::{kevent, kqueue};
}

/// `struct kevent` as libkqueue declares it (and as macOS does):
/// 32 bytes on x86-64, checked by a test. The functions exist only when
/// the `libkqueue` feature links the library.
#[cfg(not(kqueue_os))]
pub mod sys {
    #[cfg(feature = "libkqueue")]
    use std::ffi::c_int;
    use std::ffi::c_void;

    #[allow(non_camel_case_types)]
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct kevent {
        pub ident: usize,
        pub filter: i16,
        pub flags: u16,
        pub fflags: u32,
        pub data: isize,
        pub udata: *mut c_void,
    }

    #[cfg(feature = "libkqueue")]
    extern "C" {
        pub fn kqueue() -> c_int;
        pub fn kevent(
            kq: c_int,
            changelist: *const kevent,
            nchanges: c_int,
            eventlist: *mut kevent,
            nevents: c_int,
            timeout: *const libc::timespec,
        ) -> c_int;
    }
}
// ANCHOR_END: struct_kevent

/// An all-zero `struct kevent` (a null `udata`).
pub fn blank() -> sys::kevent {
    // SAFETY: every field is an integer or a raw pointer; zero is valid.
    unsafe { std::mem::zeroed() }
}

/// A change as the platform's `struct kevent`.
#[allow(clippy::unnecessary_cast)] // field types differ between systems
pub fn to_kevent(c: &Change) -> sys::kevent {
    let mut k = blank();
    k.ident = c.ident as _;
    k.filter = c.filter as _;
    k.flags = c.flags as _;
    k.fflags = c.fflags as _;
    k
}

/// The fields of a returned `struct kevent` that readiness needs.
#[allow(clippy::unnecessary_cast)] // field types differ between systems
pub fn fired(k: &sys::kevent) -> Fired {
    Fired {
        ident: k.ident as usize,
        filter: k.filter as i16,
        flags: k.flags as u16,
        fflags: k.fflags as u32,
        data: k.data as i64,
    }
}

/// Where a `kevent` call exists: the kqueue targets, or Linux with libkqueue.
#[cfg(has_kqueue)]
pub use backend::{Kqueue, UserEvent};

#[cfg(has_kqueue)]
mod backend {
    use std::io;
    use std::os::fd::RawFd;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::poll::sys::cvt;
    use crate::poll::Signal;
    use crate::poll::{Event, Interest, Poll};

    /// How many events one wait can return: evio's 128 for kqueue.
    const MAX_EVENTS: usize = 128;

    /// How many refused changes are kept for [`Kqueue::take_change_errors`].
    const MAX_KEPT_ERRORS: usize = 64;

    /// One `kevent` call: submit `changes`, wait up to `timeout` for
    /// events, put them in `out`; returns how many there are.
    fn kevent(
        kq: RawFd,
        changes: &[sys::kevent],
        out: &mut [sys::kevent],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        // The same cap as epoll's i32 milliseconds: libkqueue turns the
        // timespec into milliseconds for `epoll_wait`.
        let ts = timeout.map(|t| {
            let t = t.min(Duration::from_millis(i32::MAX as u64));
            // SAFETY: a timespec is plain integers.
            let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
            ts.tv_sec = t.as_secs() as _;
            ts.tv_nsec = t.subsec_nanos() as _;
            ts
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: both slices are live for the call and their lengths
        // are passed with them; the kernel writes at most `out.len()`.
        let n = unsafe {
            sys::kevent(
                kq,
                changes.as_ptr(),
                changes.len() as _,
                out.as_mut_ptr(),
                out.len() as _,
                ts_ptr,
            )
        };
        Ok(cvt(n)? as usize)
    }

    /// The kqueue's fd. Closing it frees the kqueue and all its filters.
    struct KqFd(RawFd);

    impl Drop for KqFd {
        fn drop(&mut self) {
            // SAFETY: we own the fd and close it once.
            unsafe { libc::close(self.0) };
            if cfg!(feature = "libkqueue") {
                drain_pending_close();
            }
        }
    }

    /// libkqueue notices a closed kqueue from a thread of its own, which
    /// closes the kqueue's own fds (an epoll fd, a pipe, eventfds) a little
    /// later. Until then those numbers stay taken, and the next sockets get
    /// other numbers than they would from a BSD kernel (a test that expects
    /// a closed connection's fd to be handed out again can fail). libkqueue
    /// after 2.7.0 exports a call that waits for that thread; older versions
    /// lack it, so look it up at run time instead of linking to it.
    fn drain_pending_close() {
        let name = c"libkqueue_drain_pending_close";
        // SAFETY: dlsym with a valid C string; a null result means absent.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        if !f.is_null() {
            // SAFETY: libkqueue declares it `void libkqueue_drain_pending_close(void)`.
            let f: extern "C" fn() = unsafe { std::mem::transmute(f) };
            f();
        }
    }

    // ANCHOR: kqueue
    /// A kqueue, its change list, and the `EVFILT_USER` event that wakes it.
    pub struct Kqueue {
        /// Shared with every [`UserEvent`] handed out, so a late wake-up
        /// from another thread triggers a still-open kqueue.
        kq: Arc<KqFd>,
        registry: Registry,
        /// Scratch buffers, kept to avoid allocating on every wait.
        changes: Vec<Change>,
        list: Vec<sys::kevent>,
        buf: Vec<sys::kevent>,
        errors: Vec<ChangeError>,
    }

    /// The wake-up half: triggers the `EVFILT_USER` event.
    pub struct UserEvent(Arc<KqFd>);

    // SAFETY: the only pointers in a `struct kevent` are `udata`, which
    // we leave null and never read; the buffers are plain data.
    unsafe impl Send for Kqueue {}

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
            kevent(self.0 .0, &[to_kevent(&trigger)], &mut [], None)?;
            Ok(())
        }
    }
    // ANCHOR_END: kqueue

    impl Kqueue {
        /// The changes the kernel refused since the last call, except the
        /// harmless ones ([`ChangeError::is_harmless`]); at most 64 are
        /// kept. Each was also reported by its wait as the fd being ready,
        /// so that the loop's next read or write meets the socket's error.
        pub fn take_change_errors(&mut self) -> Vec<ChangeError> {
            std::mem::take(&mut self.errors)
        }
    }

    impl Poll for Kqueue {
        type Signal = UserEvent;

        // ANCHOR: new
        fn new() -> io::Result<Self> {
            // SAFETY: a plain call; the fd is owned at once.
            let kq = KqFd(cvt(unsafe { sys::kqueue() })?);
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
            let n = kevent(kq.0, &[to_kevent(&wake)], &mut answer, None)?;
            if let (1, Fate::Failed(e)) = (n, classify(&fired(&answer[0]))) {
                return Err(e.error());
            }
            Ok(Kqueue {
                kq: Arc::new(kq),
                registry: Registry::new(CLOSE_REMOVES_FILTERS),
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
            self.registry.add(fd, interest);
            Ok(())
        }

        fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
            self.registry.modify(fd, interest)
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
            // Blank the entries a failed change would be written to (see below).
            self.buf[..nchanges].fill(blank());
            let kq = self.kq.0;
            let mut n = match kevent(kq, &self.list, &mut self.buf[..room], timeout) {
                Ok(n) => n,
                // Interrupted: the changes were applied (FreeBSD's
                // kevent(2)); report no events, as epoll does.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
                Err(e) => return Err(e),
            };
            if n == 0 && nchanges > 0 {
                // libkqueue writes a failed change's EV_ERROR entry, then
                // waits, and returns 0 if the wait times out: the entry is
                // there but not counted. Those entries were blanked, so
                // count the leading ones that carry EV_ERROR. (A BSD kernel
                // returns at once with them; this finds none there.)
                n = self.buf[..nchanges]
                    .iter()
                    .take_while(|k| fired(k).flags & EV_ERROR != 0)
                    .count();
            }
            for k in &self.buf[..n] {
                match classify(&fired(k)) {
                    Fate::Ready(ev) => merge(events, ev),
                    Fate::Failed(err) if !err.is_harmless() => {
                        self.registry.failed(err.fd, err.filter);
                        merge(
                            events,
                            Event {
                                fd: err.fd,
                                readable: true,
                                writable: true,
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
}

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
    fn ch10_read_and_write_are_separate_filters() {
        let mut r = Registry::new(true);
        r.add(5, Interest::READ_WRITE);
        assert_eq!(
            drain(&mut r),
            [
                change(5, EVFILT_READ, EV_ADD),
                change(5, EVFILT_WRITE, EV_ADD)
            ]
        );
        // evio's ModRead: only the write filter goes.
        r.modify(5, Interest::READ).unwrap();
        assert_eq!(drain(&mut r), [change(5, EVFILT_WRITE, EV_DELETE)]);
        // evio's ModReadWrite: only the write filter comes back.
        r.modify(5, Interest::READ_WRITE).unwrap();
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
            r.modify(5, Interest::READ).is_err(),
            "deleted means unknown"
        );
    }

    #[test]
    fn ch10_changes_between_two_waits_are_coalesced() {
        let mut r = Registry::new(true);
        r.add(7, Interest::READ);
        drain(&mut r);
        // Write interest on, then off, before the next wait: nothing to send.
        r.modify(7, Interest::READ_WRITE).unwrap();
        r.modify(7, Interest::READ).unwrap();
        assert_eq!(drain(&mut r), []);
        // Added and deleted before any wait: the kernel never hears of it.
        r.add(8, Interest::READ);
        r.delete(8).unwrap();
        assert_eq!(drain(&mut r), []);
        // Several fds: one batch, in the order they changed.
        r.add(9, Interest::READ);
        r.modify(7, Interest::READ_WRITE).unwrap();
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
        let err = r.modify(3, Interest::READ).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(r.delete(3).unwrap_err().raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn ch10_a_reused_fd_is_added_afresh() {
        // fd 4 was watched for read and write, then closed without a
        // delete; a new socket gets number 4 and is added for read.
        for close_removes in [true, false] {
            let mut r = Registry::new(close_removes);
            r.add(4, Interest::READ_WRITE);
            drain(&mut r);
            r.add(4, Interest::READ);
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
        r.add(6, Interest::READ_WRITE);
        drain(&mut r);
        r.failed(6, EVFILT_WRITE);
        r.modify(6, Interest::READ_WRITE).unwrap();
        assert_eq!(drain(&mut r), [change(6, EVFILT_WRITE, EV_ADD)]);
    }

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
        let ready = |fd, readable, writable| {
            Fate::Ready(Event {
                fd,
                readable,
                writable,
            })
        };
        // `data` is the bytes to read, or the room to write (libkqueue says
        // 0 for write); readiness does not need it.
        assert_eq!(
            classify(&entry(5, EVFILT_READ, 0, 0, 10)),
            ready(5, true, false)
        );
        assert_eq!(
            classify(&entry(5, EVFILT_WRITE, 0, 0, 0)),
            ready(5, false, true)
        );
        // The peer shut down: readable (the read returns 0), not writable.
        assert_eq!(
            classify(&entry(5, EVFILT_READ, EV_EOF, 0, 0)),
            ready(5, true, false)
        );
        // The socket failed (errno in fflags): both, as epoll's EPOLLERR.
        let reset = entry(5, EVFILT_WRITE, EV_EOF, libc::ECONNRESET as u32, 0);
        assert_eq!(classify(&reset), ready(5, true, true));
        assert_eq!(
            classify(&entry(WAKE_IDENT, EVFILT_USER, EV_CLEAR, 0, 0)),
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
            };
            merge(&mut events, ev);
        }
        let ev = |fd, readable, writable| Event {
            fd,
            readable,
            writable,
        };
        assert_eq!(events, [ev(5, true, true), ev(6, false, true)]);
    }

    #[test]
    fn ch10_changes_become_kevent_structs() {
        let c = change(42, EVFILT_WRITE, EV_DELETE);
        let k = to_kevent(&c);
        let back = fired(&k);
        assert_eq!(
            (back.ident, back.filter, back.flags),
            (42, EVFILT_WRITE, EV_DELETE)
        );
        assert_eq!((back.fflags, back.data), (0, 0));
    }

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

    // ANCHOR: layout_test
    /// Our `struct kevent` must match libkqueue's byte for byte: a wrong
    /// field type would not fail to compile, it would corrupt every event.
    #[cfg(all(target_pointer_width = "64", not(kqueue_os)))]
    #[test]
    fn ch10_kevent_struct_has_the_libkqueue_layout() {
        use std::mem::{offset_of, size_of};
        assert_eq!(size_of::<sys::kevent>(), 32);
        assert_eq!(offset_of!(sys::kevent, ident), 0);
        assert_eq!(offset_of!(sys::kevent, filter), 8);
        assert_eq!(offset_of!(sys::kevent, flags), 10);
        assert_eq!(offset_of!(sys::kevent, fflags), 12);
        assert_eq!(offset_of!(sys::kevent, data), 16);
        assert_eq!(offset_of!(sys::kevent, udata), 24);
    }
    // ANCHOR_END: layout_test
}
