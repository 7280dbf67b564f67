//! Binding listeners, and the `accept` system call.
//!
//! Chapter 6, "Accepting and balancing", explains this file. It mirrors the
//! listener set-up in evio's `Serve` (`evio.go`) and `reuseportListen`, and the
//! `syscall.Accept` in `loopAccept` (`evio_unix.go`). Differences: one
//! `accept4` call makes the new socket non-blocking and close-on-exec (evio
//! needs a second call, `SetNonblock`), and a unix socket path is removed
//! before binding only if it is a socket, never an ordinary file.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use socket2::{Domain, Socket, Type};

#[cfg(not(target_vendor = "apple"))]
use libc::{accept4, SOCK_CLOEXEC, SOCK_NONBLOCK};
// macOS has no accept4: see `apple` at the end of this file.
#[cfg(target_vendor = "apple")]
use apple::{accept4, SOCK_CLOEXEC, SOCK_NONBLOCK};

use crate::addr::{ListenAddr, Network, Target};
use crate::api::Addr;

/// How many connections the kernel queues for us before `accept`.
const BACKLOG: i32 = 1024;

/// A bound, non-blocking listening socket.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Udp(UdpSocket),
    /// The path is removed again when the listener is dropped.
    Unix(UnixListener, PathBuf),
}

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
}

/// Adds the address to an error, keeping its kind.
fn context(addr: impl std::fmt::Display, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{addr}: {err}"))
}

/// Resolves an `Inet` target to one socket address of the network's family.
/// An empty host means "any": `0.0.0.0`, or `[::]` for tcp6/udp6.
fn resolve(network: Network, host: &str, port: u16) -> io::Result<SocketAddr> {
    let v6_only = matches!(network, Network::Tcp6 | Network::Udp6);
    let v4_only = matches!(network, Network::Tcp4 | Network::Udp4);
    if host.is_empty() {
        let any: std::net::IpAddr = if v6_only {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        return Ok(SocketAddr::new(any, port));
    }
    (host, port)
        .to_socket_addrs()?
        .find(|a| !(v4_only && a.is_ipv6() || v6_only && a.is_ipv4()))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("host {host:?} has no address for {network:?}"),
            )
        })
}

impl Listener {
    // ANCHOR: bind
    /// Binds one parsed address. Errors name the address.
    pub(crate) fn bind(addr: &ListenAddr) -> io::Result<Listener> {
        match &addr.target {
            Target::Unix(path) => {
                // evio removes the path first so that a socket file left by a
                // crashed server does not block the bind. We only remove
                // sockets: a typo must not delete somebody's file.
                match std::fs::symlink_metadata(path) {
                    Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
                    Ok(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!("{}: exists and is not a socket", path.display()),
                        ))
                    }
                    Err(_) => {}
                }
                let ln = UnixListener::bind(path).map_err(|e| context(path.display(), e))?;
                ln.set_nonblocking(true)?;
                Ok(Listener::Unix(ln, path.clone()))
            }
            Target::Inet { host, port } => {
                let sa = resolve(addr.network, host, *port)?;
                let ty = if addr.network.is_udp() {
                    Type::DGRAM
                } else {
                    Type::STREAM
                };
                // socket2 sets close-on-exec; non-blocking is one more call,
                // since macOS has no SOCK_NONBLOCK (this runs once per address).
                let socket = Socket::new(Domain::for_address(sa), ty, None)?;
                socket.set_nonblocking(true)?;
                if addr.network.is_tcp() {
                    // Lets a restarted server bind while old connections
                    // are still in TIME_WAIT.
                    socket.set_reuse_address(true)?;
                }
                if addr.reuse_port {
                    // Several sockets, in this process or others, share the
                    // port; the kernel spreads new connections over them.
                    socket.set_reuse_port(true)?;
                }
                if sa.is_ipv6() {
                    socket.set_only_v6(matches!(addr.network, Network::Tcp6 | Network::Udp6))?;
                }
                socket.bind(&sa.into()).map_err(|e| context(sa, e))?;
                if addr.network.is_udp() {
                    Ok(Listener::Udp(socket.into()))
                } else {
                    socket.listen(BACKLOG)?;
                    Ok(Listener::Tcp(socket.into()))
                }
            }
        }
    }
    // ANCHOR_END: bind

    pub(crate) fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Udp(s) => s.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    /// The bound address, with the port the kernel chose for port 0.
    pub(crate) fn local_addr(&self) -> io::Result<Addr> {
        Ok(match self {
            Listener::Tcp(l) => Addr::Tcp(l.local_addr()?),
            Listener::Udp(s) => Addr::Udp(s.local_addr()?),
            Listener::Unix(_, path) => Addr::Unix(path.clone()),
        })
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

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
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
