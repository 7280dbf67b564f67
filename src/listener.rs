//! Binding the listening sockets: the same for the reactor and the
//! thread-based variant.
//!
//! Chapter 6, "Accepting and balancing", explains this file. It mirrors the
//! listener set-up in evio's `Serve` (`evio.go`) and `reuseportListen`.
//! Differences: a unix socket path is removed before binding only if it is a
//! socket, never an ordinary file, and every error names the address.
//!
//! What happens next differs, so it lives with each implementation: the
//! reactor makes its listeners non-blocking and accepts with `accept4`
//! (`reactor/listener.rs`); the thread-based variant keeps them blocking and
//! accepts on a thread per listener (`threads/listener.rs`). This file uses
//! only std and socket2, so it builds on Windows too, where unix sockets and
//! `reuseport` are refused with a clear error.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};

#[cfg(unix)]
use std::os::unix::net::UnixListener;
#[cfg(unix)]
use std::path::{Path, PathBuf};

use socket2::{Domain, Socket, Type};

use crate::addr::{ListenAddr, Network, Target};
use crate::api::Addr;

/// How many finished handshakes the kernel queues for us before `accept`.
const BACKLOG: i32 = 1024;

/// A bound listening socket (blocking, as std and socket2 make it).
pub(crate) enum Listener {
    Tcp(TcpListener),
    Udp(UdpSocket),
    /// The path is removed again when the listener is dropped.
    #[cfg(unix)]
    Unix(UnixListener, PathBuf),
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
        let any: IpAddr = if v6_only {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
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

/// evio removes a unix socket's path before binding, so that a socket file
/// left by a crashed server does not block the bind. We only remove
/// sockets: a typo must not delete somebody's file.
#[cfg(unix)]
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: exists and is not a socket", path.display()),
        )),
        Err(_) => Ok(()),
    }
}

impl Listener {
    // ANCHOR: bind
    /// Binds one parsed address. Errors name the address.
    pub(crate) fn bind(addr: &ListenAddr) -> io::Result<Listener> {
        let (host, port) = match &addr.target {
            Target::Inet { host, port } => (host, *port),
            #[cfg(unix)]
            Target::Unix(path) => {
                remove_stale_socket(path)?;
                let ln = UnixListener::bind(path).map_err(|e| context(path.display(), e))?;
                return Ok(Listener::Unix(ln, path.clone()));
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

    /// The bound address, with the port the kernel chose for port 0.
    pub(crate) fn local_addr(&self) -> io::Result<Addr> {
        Ok(match self {
            Listener::Tcp(l) => Addr::Tcp(l.local_addr()?),
            Listener::Udp(s) => Addr::Udp(s.local_addr()?),
            #[cfg(unix)]
            Listener::Unix(_, path) => Addr::Unix(path.clone()),
        })
    }
}

#[cfg(unix)]
impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}
