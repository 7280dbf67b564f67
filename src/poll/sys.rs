//! The one helper every raw system call of the pollers goes through.
//!
//! Chapter 3, "The poller", uses it first. A libc call says it failed by
//! returning -1 and leaves the reason in `errno`; [`cvt`] turns that into an
//! `io::Result`, so that a call site reads
//! `cvt(unsafe { libc::epoll_ctl(...) })?` and no backend checks for -1 by
//! hand. evio needs no such thing: Go's `syscall` package returns the error
//! with each call. It is `pub(crate)`, so other layers may use it too.

use std::io;

/// A system call's return value as an `io::Result`: -1 is the error that
/// `errno` names, anything else is the value.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
