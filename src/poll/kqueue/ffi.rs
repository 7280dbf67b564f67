//! The C side of kqueue: the constants, `struct kevent`, and the two calls,
//! `kqueue` and `kevent` (with [`submit`], the safe way to make the second).
//!
//! Chapter 10, "kqueue", explains this file. On macOS and the BSDs all of it
//! comes from `libc`. On Linux we declare it ourselves, with FreeBSD's
//! values and libkqueue's layout, so that the logic of the backend compiles
//! and is tested without libkqueue; the two calls exist only when the
//! `libkqueue` feature links the library (`build.rs`). No header, no bindgen.

#[cfg(has_kqueue)]
use std::io;
#[cfg(has_kqueue)]
use std::os::fd::RawFd;
#[cfg(has_kqueue)]
use std::time::Duration;

#[cfg(has_kqueue)]
use crate::poll::sys::cvt;

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

pub(super) use consts::*;

// ANCHOR: struct_kevent
/// The platform's `struct kevent` and `kevent` call, from `libc`.
#[cfg(kqueue_os)]
pub(super) use libc::{kevent, kqueue};

/// `struct kevent` as libkqueue declares it (and as macOS does):
/// 32 bytes on x86-64, checked by a test.
#[cfg(not(kqueue_os))]
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(super) struct kevent {
    pub ident: usize,
    pub filter: i16,
    pub flags: u16,
    pub fflags: u32,
    pub data: isize,
    pub udata: *mut std::ffi::c_void,
}

// The calls exist only when the `libkqueue` feature links the library.
#[cfg(all(not(kqueue_os), feature = "libkqueue"))]
extern "C" {
    pub(super) fn kqueue() -> std::ffi::c_int;
    pub(super) fn kevent(
        kq: std::ffi::c_int,
        changelist: *const kevent,
        nchanges: std::ffi::c_int,
        eventlist: *mut kevent,
        nevents: std::ffi::c_int,
        timeout: *const libc::timespec,
    ) -> std::ffi::c_int;
}
// ANCHOR_END: struct_kevent

/// An all-zero `struct kevent` (a null `udata`).
pub(super) fn blank() -> kevent {
    // SAFETY: every field is an integer or a raw pointer; zero is valid.
    unsafe { std::mem::zeroed() }
}

/// One `kevent` call: submit `changes`, wait up to `timeout` for events,
/// put them in `out`; returns how many there are.
#[cfg(has_kqueue)]
pub(super) fn submit(
    kq: RawFd,
    changes: &[kevent],
    out: &mut [kevent],
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
    // SAFETY: both slices are live for the call and their lengths are
    // passed with them; the kernel writes at most `out.len()`.
    let n = cvt(unsafe {
        kevent(
            kq,
            changes.as_ptr(),
            changes.len() as _,
            out.as_mut_ptr(),
            out.len() as _,
            ts_ptr,
        )
    })?;
    Ok(n as usize)
}

// Only our own declaration needs checking; libc's is libc's.
#[cfg(all(test, not(kqueue_os)))]
mod tests {
    use super::*;

    // ANCHOR: layout_test
    /// Our `struct kevent` must match libkqueue's byte for byte: a wrong
    /// field type would not fail to compile, it would corrupt every event.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn ch10_kevent_struct_has_the_libkqueue_layout() {
        use std::mem::{offset_of, size_of};
        assert_eq!(size_of::<kevent>(), 32);
        assert_eq!(offset_of!(kevent, ident), 0);
        assert_eq!(offset_of!(kevent, filter), 8);
        assert_eq!(offset_of!(kevent, flags), 10);
        assert_eq!(offset_of!(kevent, fflags), 12);
        assert_eq!(offset_of!(kevent, data), 16);
        assert_eq!(offset_of!(kevent, udata), 24);
    }
    // ANCHOR_END: layout_test
}
