//! An accepted connection's socket, for every engine: [`Sock`].
//!
//! Chapter 9, "The thread-based variant", explains why both engines can use
//! one type. evio has two: the raw fd of `conn` (`evio_unix.go`) and the
//! `net.Conn` of `stdconn` (`evio_std.go`). Here it is a std stream either
//! way. std implements `Read` and `Write` for `&TcpStream` and
//! `&UnixStream`, so every method takes `&self`: the thread variant's reader
//! thread reads and its loop writes through the *same* descriptor, each
//! holding an `Arc<Sock>`, and the reactor reads and writes its own (with
//! `recv` and `send`, which on Linux make the system call without std's
//! and glibc's wrappers: see `Sock::recv`).
//! Whether the socket blocks is the engine's choice, made when it accepts
//! (`listener.rs`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

#[cfg(unix)]
use std::os::unix::net::UnixStream;

use crate::addr::canonical;
use crate::api::{Addr, Stream};
use crate::conn::{Peer, SockFd};

/// A connection's socket: TCP, or a unix stream.
#[derive(Debug)]
pub(crate) enum Sock {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Sock {
    /// A TCP connection, with Nagle's algorithm off: replies go out at once
    /// rather than waiting for the ACK of the previous segment. Go's net
    /// package, and so evio's fallback, does the same by default.
    pub(crate) fn tcp(s: TcpStream) -> Sock {
        let _ = s.set_nodelay(true);
        Sock::Tcp(s)
    }

    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => (&mut &*s).read(buf),
            #[cfg(unix)]
            Sock::Unix(s) => (&mut &*s).read(buf),
        }
    }

    /// The reactor's read (the thread variant's is `read`): on Linux,
    /// `recvfrom(2)` straight to the kernel. std's `read` goes through
    /// glibc's `recv`, which in a process with a second thread (ours has
    /// the loop's and `main`'s) brackets the system call with
    /// pthread-cancellation bookkeeping: two atomic compare-and-swaps and
    /// about 60 instructions, for a cancellation Rust never uses. A
    /// single-threaded process (tokio's current_thread server) skips it.
    /// Elsewhere, std's `read`.
    #[cfg(target_os = "linux")]
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: an open socket, and a buffer writable for `buf.len()`
        // bytes; no address is asked for (two null pointers).
        let n = unsafe {
            libc::syscall(
                libc::SYS_recvfrom,
                libc::c_long::from(self.fd()),
                buf.as_mut_ptr(),
                buf.len(),
                0 as libc::c_long,
                std::ptr::null_mut::<libc::sockaddr>(),
                std::ptr::null_mut::<libc::socklen_t>(),
            )
        };
        syscall_result(n)
    }

    #[cfg(all(unix, not(target_os = "linux")))]
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(buf)
    }

    /// The reactor's write (the thread variant writes all at once, with
    /// `write_all`): on Linux, `sendto(2)` straight to the kernel, for the
    /// reason of [`Sock::recv`]. With `MSG_NOSIGNAL`, as std's `write`: a
    /// peer that has gone is an `EPIPE` error, not a `SIGPIPE`.
    #[cfg(target_os = "linux")]
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: an open socket, and a buffer readable for `buf.len()`
        // bytes; no address is given (a null pointer, length 0).
        let n = unsafe {
            libc::syscall(
                libc::SYS_sendto,
                libc::c_long::from(self.fd()),
                buf.as_ptr(),
                buf.len(),
                libc::c_long::from(libc::MSG_NOSIGNAL),
                std::ptr::null::<libc::sockaddr>(),
                0 as libc::c_long,
            )
        };
        syscall_result(n)
    }

    #[cfg(all(unix, not(target_os = "linux")))]
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => (&mut &*s).write(buf),
            Sock::Unix(s) => (&mut &*s).write(buf),
        }
    }

    pub(crate) fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => (&mut &*s).write_all(buf),
            #[cfg(unix)]
            Sock::Unix(s) => (&mut &*s).write_all(buf),
        }
    }

    /// Shuts both directions down: a read blocked in another thread returns
    /// at once, and the peer sees end-of-file even while a descriptor is
    /// still open. Errors (the peer has gone already) do not matter.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Sock::Tcp(s) => s.shutdown(Shutdown::Both),
            #[cfg(unix)]
            Sock::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    #[cfg(unix)] // the reactor's
    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.set_nonblocking(on),
            #[cfg(unix)]
            Sock::Unix(s) => s.set_nonblocking(on),
        }
    }

    /// Whether this is a unix socket (which has no keep-alive and no port).
    #[cfg(unix)] // the reactor's
    pub(crate) fn is_unix(&self) -> bool {
        !matches!(self, Sock::Tcp(_))
    }

    /// The socket, as the stream `detached` gets.
    pub(crate) fn into_stream(self) -> Stream {
        match self {
            Sock::Tcp(s) => Stream::Tcp(s),
            #[cfg(unix)]
            Sock::Unix(s) => Stream::Unix(s),
        }
    }

    #[cfg(unix)]
    pub(crate) fn fd(&self) -> SockFd {
        use std::os::fd::AsRawFd;
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }

    #[cfg(not(unix))]
    pub(crate) fn fd(&self) -> SockFd {}
}

impl Peer for Sock {
    fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Sock::Tcp(s) => s.local_addr().map(|a| Addr::Tcp(canonical(a))),
            #[cfg(unix)]
            Sock::Unix(s) => s.local_addr().map(|a| unix_addr(&a)),
        }
    }

    fn peer_addr(&self) -> io::Result<Addr> {
        match self {
            Sock::Tcp(s) => s.peer_addr().map(|a| Addr::Tcp(canonical(a))),
            #[cfg(unix)]
            Sock::Unix(s) => s.peer_addr().map(|a| unix_addr(&a)),
        }
    }

    /// std has no keep-alive call; socket2 has one on every OS.
    fn set_keep_alive(&self, ka: &socket2::TcpKeepalive) {
        match self {
            Sock::Tcp(s) => {
                let _ = socket2::SockRef::from(s).set_tcp_keepalive(ka);
            }
            #[cfg(unix)]
            Sock::Unix(_) => {}
        }
    }
}

/// A raw system call's result: a count, or -1 and `errno`.
#[cfg(target_os = "linux")]
fn syscall_result(n: libc::c_long) -> io::Result<usize> {
    match usize::try_from(n) {
        Ok(n) => Ok(n),
        Err(_) => Err(io::Error::last_os_error()),
    }
}

#[cfg(unix)]
fn unix_addr(a: &std::os::unix::net::SocketAddr) -> Addr {
    // A client's end is unnamed: an empty path, as the reactor reports it.
    Addr::Unix(a.as_pathname().map(Into::into).unwrap_or_default())
}
