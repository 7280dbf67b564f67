//! The listening sockets, for every engine: binding them, and the three ways
//! to take a connection from one.
//!
//! Chapter 6, "Accepting and balancing", explains this file. It mirrors the
//! listener set-up in evio's `Serve` (`evio.go`) and `reuseportListen`, and
//! the `syscall.Accept` of `loopAccept` (`evio_unix.go`). Differences: a unix
//! socket path is removed before binding only if it is a socket, never an
//! ordinary file; every error names the address; and one `accept4` call makes
//! the new socket non-blocking and close-on-exec (evio needs a second call,
//! `SetNonblock`).
//!
//! How each engine takes connections differs, and each way is a method here:
//! the reactor makes its listeners non-blocking and calls
//! [`Listener::accept_nonblocking`] when its poller says one is ready; the
//! thread-based variant keeps them blocking, calls
//! [`Listener::accept_blocking`] on a thread per listener, and wakes that
//! thread with [`Listener::poke`] to stop it. Binding uses only std and
//! socket2, so it builds on Windows too, where unix sockets and `reuseport`
//! are refused with a clear error.

use std::io::{
    self,
    ErrorKind::{AddrInUse, PermissionDenied},
};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket,
};
use std::time::Duration;

#[cfg(unix)]
use super::socket_file::{self, SocketFile};
#[cfg(unix)]
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};

use socket2::{Domain, Socket, Type};

use super::sock::Sock;
use crate::addr::{ListenAddr, Network, Target};
use crate::api::Addr;

/// How many finished handshakes the kernel queues for us before `accept`.
const BACKLOG: i32 = 1024;

/// A bound listening socket (blocking, as std and socket2 make it).
pub(crate) enum Listener {
    Tcp(TcpListener),
    Udp(UdpSocket),
    /// The socket file is removed again when the listener is dropped, if
    /// it is still the one this listener made (`socket_file.rs`).
    #[cfg(unix)]
    Unix(UnixListener, SocketFile),
}

/// Adds the address to an error, keeping its kind.
fn context(addr: impl std::fmt::Display, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{addr}: {err}"))
}

/// Resolves an `Inet` target to one socket address of the network's family.
/// An empty host means "any": `[::]` for tcp6/udp6, `0.0.0.0` for tcp4/udp4,
/// and for tcp/udp `[::]` too, which [`Listener::bind`] makes dual-stack.
fn resolve(network: Network, host: &str, port: u16) -> io::Result<SocketAddr> {
    let v6_only = matches!(network, Network::Tcp6 | Network::Udp6);
    let v4_only = matches!(network, Network::Tcp4 | Network::Udp4);
    if host.is_empty() {
        let any: IpAddr = if v4_only {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
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
        let (host, port) = match &addr.target {
            Target::Inet { host, port } => (host, *port),
            #[cfg(unix)]
            Target::Unix(path) => {
                let (ln, file) = socket_file::bind(path, addr.mode, BACKLOG)?;
                return Ok(Listener::Unix(ln, file));
            }
            #[cfg(not(unix))]
            Target::Unix(path) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("{}: unix sockets need a unix OS", path.display()),
                ))
            }
        };
        let sa = resolve(addr.network, host, port)?;
        // ANCHOR: dual_stack
        // `tcp://:PORT` and `udp://:PORT` answer on both families, as Go's
        // (so evio's) do: one IPv6 socket with IPV6_V6ONLY off takes IPv4
        // peers too, as `::ffff:a.b.c.d` (ipv6(7)). Where IPv6 is missing,
        // or cannot be dual-stack (OpenBSD refuses to turn V6ONLY off), the
        // same address on IPv4 alone. A port in use is an error either way.
        let any_family = matches!(addr.network, Network::Tcp | Network::Udp) && host.is_empty();
        match Self::bind_one(addr, sa) {
            Err(e) if any_family && !matches!(e.kind(), AddrInUse | PermissionDenied) => {
                Self::bind_one(addr, (Ipv4Addr::UNSPECIFIED, port).into())
            }
            bound => bound,
        }
        // ANCHOR_END: dual_stack
    }

    /// Makes, sets up and binds one socket for `sa`.
    fn bind_one(addr: &ListenAddr, sa: SocketAddr) -> io::Result<Listener> {
        let udp = addr.network.is_udp();
        let ty = if udp { Type::DGRAM } else { Type::STREAM };
        // socket2 makes the socket close-on-exec, as std does.
        let socket = Socket::new(Domain::for_address(sa), ty, None)?;
        // On unix, SO_REUSEADDR lets a restarted server bind while old
        // connections are still in TIME_WAIT (std sets it too). On Windows
        // it would let another process steal the port.
        #[cfg(unix)]
        if addr.network.is_tcp() {
            socket.set_reuse_address(true)?;
        }
        if addr.reuse_port {
            // Several sockets, in this process or others, share the port;
            // the kernel spreads new connections over them.
            #[cfg(unix)]
            socket.set_reuse_port(true)?;
            #[cfg(not(unix))]
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "reuseport needs a unix OS",
            ));
        }
        if sa.is_ipv6() {
            // Set either way: the system's default (Linux's
            // net.ipv6.bindv6only, always on for OpenBSD) is not ours.
            socket.set_only_v6(matches!(addr.network, Network::Tcp6 | Network::Udp6))?;
        }
        socket.bind(&sa.into()).map_err(|e| context(sa, e))?;
        if udp {
            Ok(Listener::Udp(socket.into()))
        } else {
            socket.listen(BACKLOG)?;
            Ok(Listener::Tcp(socket.into()))
        }
    }
    // ANCHOR_END: bind

    /// Binds every address, in order, and returns the listeners with their
    /// bound addresses (the port the kernel chose for port 0).
    pub(crate) fn bind_all(addrs: &[ListenAddr]) -> io::Result<(Vec<Listener>, Vec<Addr>)> {
        let listeners = addrs
            .iter()
            .map(Listener::bind)
            .collect::<io::Result<Vec<_>>>()?;
        let bound = listeners
            .iter()
            .map(Listener::local_addr)
            .collect::<io::Result<_>>()?;
        Ok((listeners, bound))
    }

    // ANCHOR: bind_again
    /// `Accept::ReusePort`: one more socket for each address, bound with
    /// `SO_REUSEPORT` to the address and port the first one got (so port 0
    /// means the same port for every loop), or `None` for a unix socket.
    /// Blocking, as every socket `bind` makes.
    #[cfg(unix)] // the reactor and io_uring
    pub(crate) fn bind_again(
        addrs: &[ListenAddr],
        bound: &[Addr],
    ) -> io::Result<Vec<Option<Listener>>> {
        let again = |(a, b): (&ListenAddr, &Addr)| -> io::Result<Option<Listener>> {
            let Some(sa) = b.socket_addr() else {
                return Ok(None);
            };
            let target = Target::Inet {
                host: sa.ip().to_string(),
                port: sa.port(),
            };
            Listener::bind(&ListenAddr {
                target,
                ..a.clone()
            })
            .map(Some)
        };
        addrs.iter().zip(bound).map(again).collect()
    }
    // ANCHOR_END: bind_again

    /// The bound address, with the port the kernel chose for port 0.
    pub(crate) fn local_addr(&self) -> io::Result<Addr> {
        Ok(match self {
            Listener::Tcp(l) => Addr::Tcp(l.local_addr()?),
            Listener::Udp(s) => Addr::Udp(s.local_addr()?),
            #[cfg(unix)]
            Listener::Unix(_, file) => Addr::Unix(file.path().to_path_buf()),
        })
    }
}

impl Listener {
    /// Makes the listener non-blocking, for the reactor: a loop woken for a
    /// connection that another loop took first must get `EAGAIN`, not sleep
    /// in `accept`. A second call per address, once at start, since macOS
    /// has no `SOCK_NONBLOCK`.
    #[cfg(unix)]
    pub(crate) fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true),
            Listener::Udp(s) => s.set_nonblocking(true),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.set_nonblocking(true),
        }
    }

    #[cfg(unix)]
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
    #[cfg(unix)]
    pub(crate) fn accept_nonblocking(&self) -> io::Result<Sock> {
        let flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
        // SAFETY: a listening fd; we ask for no peer address.
        let fd = unsafe { accept4(self.fd(), std::ptr::null_mut(), std::ptr::null_mut(), flags) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: accept4 returned a new fd that nothing else owns.
        Ok(match self {
            Listener::Unix(..) => Sock::Unix(unsafe { UnixStream::from_raw_fd(fd) }),
            _ => Sock::tcp(unsafe { TcpStream::from_raw_fd(fd) }),
        })
    }
    // ANCHOR_END: accept

    /// Wraps an fd that something else accepted from this listener (an
    /// io_uring accept, chapter 16): a TCP or a unix stream, as it is.
    #[cfg(target_os = "linux")]
    pub(crate) fn adopt(&self, fd: std::os::fd::OwnedFd) -> Sock {
        match self {
            Listener::Unix(..) => Sock::Unix(UnixStream::from(fd)),
            _ => Sock::tcp(TcpStream::from(fd)),
        }
    }

    /// Blocks until a connection arrives, for the thread-based variant.
    pub(crate) fn accept_blocking(&self) -> io::Result<Sock> {
        match self {
            Listener::Tcp(l) => Ok(Sock::tcp(l.accept()?.0)),
            #[cfg(unix)]
            Listener::Unix(l, _) => Ok(Sock::Unix(l.accept()?.0)),
            Listener::Udp(_) => Err(io::Error::other("accept on a UDP socket")),
        }
    }

    // ANCHOR: poke
    /// Wakes a thread blocked on this listener: a connection to it (or an
    /// empty datagram), from a fresh socket that is dropped at once.
    /// Windows only: on unix the thread variant rings a bell (chapter 15).
    #[cfg_attr(unix, allow(dead_code))]
    pub(crate) fn poke(&self) -> io::Result<()> {
        // A listener bound to "any" is reached through the loopback address.
        let reachable = |a: SocketAddr| match a.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, a.port()).into(),
            IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, a.port()).into(),
            _ => a,
        };
        match self {
            Listener::Tcp(l) => {
                let to = reachable(l.local_addr()?);
                TcpStream::connect_timeout(&to, Duration::from_secs(1)).map(drop)
            }
            Listener::Udp(s) => {
                let to = reachable(s.local_addr()?);
                let any: SocketAddr = match to {
                    SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
                    SocketAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
                };
                UdpSocket::bind(any)?.send_to(&[], to).map(drop)
            }
            // Through the file, if it is still ours. If another server has
            // taken the path since, a connect would reach that server:
            // shut the listener down instead, which makes a blocked
            // `accept` return (Linux; elsewhere the connect is all we have).
            #[cfg(unix)]
            Listener::Unix(_, file) if file.is_ours() || !cfg!(target_os = "linux") => {
                UnixStream::connect(file.path()).map(drop)
            }
            #[cfg(unix)]
            Listener::Unix(ln, _) => {
                // SAFETY: shutdown(2) on a descriptor we own.
                let done = unsafe { libc::shutdown(ln.as_raw_fd(), libc::SHUT_RDWR) };
                if done == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            }
        }
    }
    // ANCHOR_END: poke
}

#[cfg(all(unix, not(target_vendor = "apple")))]
use libc::{accept4, SOCK_CLOEXEC, SOCK_NONBLOCK};
// macOS has no accept4: see `apple` below.
#[cfg(target_vendor = "apple")]
use apple::{accept4, SOCK_CLOEXEC, SOCK_NONBLOCK};

/// `accept4` for macOS, which lacks it: `accept`, then the two `fcntl`
/// calls that evio makes on every OS. (Chapter 6; the BSDs have accept4.)
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
