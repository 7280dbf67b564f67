//! The reactor's side of a listener: non-blocking, and the `accept` system
//! call.
//!
//! Chapter 6, "Accepting and balancing", explains this file. The binding
//! itself, shared with the thread-based variant, is in `src/listener.rs`.
//! This file mirrors the `syscall.Accept` in evio's `loopAccept`
//! (`evio_unix.go`) and the non-blocking fd of `Serve` (`evio.go`). The
//! difference: one `accept4` call makes the new socket non-blocking and
//! close-on-exec (evio needs a second call, `SetNonblock`).

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;

#[cfg(not(target_vendor = "apple"))]
use libc::{accept4, SOCK_CLOEXEC, SOCK_NONBLOCK};
// macOS has no accept4: see `apple` at the end of this file.
#[cfg(target_vendor = "apple")]
use apple::{accept4, SOCK_CLOEXEC, SOCK_NONBLOCK};

use crate::addr::ListenAddr;
use crate::api::{Addr, Stream};
pub(crate) use crate::listener::Listener;

/// An accepted connection's socket.
pub(crate) enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    pub(crate) fn fd(&self) -> RawFd {
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }

    /// The socket, as the stream `detached` gets.
    pub(crate) fn into_stream(self) -> Stream {
        match self {
            Sock::Tcp(s) => Stream::Tcp(s),
            Sock::Unix(s) => Stream::Unix(s),
        }
    }
}

// ANCHOR: nonblocking
/// Binds every address (`Listener::bind`, in `src/listener.rs`) and makes
/// each listener non-blocking: a loop woken for a connection that another
/// loop took first must get `EAGAIN`, not sleep in `accept`. A second call
/// per address, once at start, since macOS has no `SOCK_NONBLOCK`.
pub(crate) fn bind_all(addrs: &[ListenAddr]) -> io::Result<(Vec<Listener>, Vec<Addr>)> {
    let (listeners, bound) = Listener::bind_all(addrs)?;
    for l in &listeners {
        match l {
            Listener::Tcp(l) => l.set_nonblocking(true)?,
            Listener::Udp(s) => s.set_nonblocking(true)?,
            Listener::Unix(l, _) => l.set_nonblocking(true)?,
        }
    }
    Ok((listeners, bound))
}
// ANCHOR_END: nonblocking

impl Listener {
    pub(crate) fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Udp(s) => s.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    // ANCHOR: accept
    /// Accepts one connection, already non-blocking, or fails with
    /// `WouldBlock` when another loop was faster or the client is gone.
    pub(crate) fn accept(&self) -> io::Result<Sock> {
        let flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
        // SAFETY: a listening fd; we ask for no peer address.
        let fd = unsafe { accept4(self.fd(), std::ptr::null_mut(), std::ptr::null_mut(), flags) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: accept4 returned a new fd that nothing else owns.
        Ok(match self {
            Listener::Unix(..) => Sock::Unix(unsafe { UnixStream::from_raw_fd(fd) }),
            _ => {
                let s = unsafe { TcpStream::from_raw_fd(fd) };
                // Replies go out at once rather than waiting for the ACK of
                // the previous segment (Nagle's algorithm); Go's net package,
                // and so evio's fallback, does the same by default.
                let _ = s.set_nodelay(true);
                Sock::Tcp(s)
            }
        })
    }
    // ANCHOR_END: accept
}

/// `accept4` for macOS, which lacks it: `accept`, then the two `fcntl`
/// calls that evio makes on every OS. (Chapter 10; the BSDs have accept4.)
#[cfg(target_vendor = "apple")]
mod apple {
    pub const SOCK_NONBLOCK: i32 = 1;
    pub const SOCK_CLOEXEC: i32 = 2;

    /// # Safety
    /// As `accept(2)`. Both flags are always set: our one caller asks for both.
    pub unsafe fn accept4(
        fd: i32,
        addr: *mut libc::sockaddr,
        len: *mut libc::socklen_t,
        _flags: i32,
    ) -> i32 {
        let new = libc::accept(fd, addr, len);
        if new != -1
            && (libc::fcntl(new, libc::F_SETFL, libc::O_NONBLOCK) == -1
                || libc::fcntl(new, libc::F_SETFD, libc::FD_CLOEXEC) == -1)
        {
            // Close the half-made socket, keeping errno for the caller.
            let errno = *libc::__error();
            libc::close(new);
            *libc::__error() = errno;
            return -1;
        }
        new
    }
}
