//! Parsing listen addresses: `scheme://host:port?option=value`.
//!
//! Chapter 2, "The API", explains this file. It mirrors `parseAddr` in evio's
//! `evio.go`: the same schemes, "no scheme means tcp", the `-net` suffix and the
//! `reuseport` option with the same truth rule. It is a plain function over a
//! string, with no system call, so every rule is unit-tested; resolving a host
//! name and binding happen later, in `listener.rs`.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The network an address names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// TCP over IPv4 or IPv6, whichever the host resolves to first.
    Tcp,
    /// TCP over IPv4 only.
    Tcp4,
    /// TCP over IPv6 only.
    Tcp6,
    /// UDP over IPv4 or IPv6.
    Udp,
    /// UDP over IPv4 only.
    Udp4,
    /// UDP over IPv6 only.
    Udp6,
    /// A unix stream socket at a path.
    Unix,
}

impl Network {
    /// TCP of any family.
    pub fn is_tcp(self) -> bool {
        matches!(self, Network::Tcp | Network::Tcp4 | Network::Tcp6)
    }

    /// UDP of any family.
    pub fn is_udp(self) -> bool {
        matches!(self, Network::Udp | Network::Udp4 | Network::Udp6)
    }
}

/// Where to listen: the result of [`ListenAddr::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A host (name, IPv4, or IPv6 without brackets; empty for "any") and port.
    Inet {
        /// The host part, brackets removed.
        host: String,
        /// The port; 0 lets the kernel choose.
        port: u16,
    },
    /// A unix socket path.
    Unix(PathBuf),
}

/// A parsed listen address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenAddr {
    /// The scheme, without `-net`.
    pub network: Network,
    /// Where to listen.
    pub target: Target,
    /// `?reuseport=...`: set `SO_REUSEPORT` so several servers share the port.
    pub reuse_port: bool,
    /// `?mode=0660`: the permissions of a unix socket's file (chapter 15);
    /// `None` leaves them to the umask. Not an evio option.
    pub mode: Option<u32>,
    /// The scheme ended in `-net` (`tcp-net://`): evio's way to ask for the
    /// goroutine-based fallback instead of the poller.
    pub stdlib: bool,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

// ANCHOR: truth
/// evio's truth rule for option values: true when the value starts with a
/// digit 1-9 or with `t`, `T`, `y` or `Y` ("1", "true", "yes", "Y" ...).
pub fn is_true(value: &str) -> bool {
    matches!(
        value.bytes().next(),
        Some(b'1'..=b'9' | b't' | b'T' | b'y' | b'Y')
    )
}
// ANCHOR_END: truth

impl ListenAddr {
    // ANCHOR: parse
    /// Parses `[scheme://]address[?options]`. A missing scheme means `tcp`.
    /// Every mistake is an `InvalidInput` error that quotes the address and
    /// says what is wrong with it.
    pub fn parse(addr: &str) -> io::Result<ListenAddr> {
        let (scheme, rest) = match addr.split_once("://") {
            Some((scheme, rest)) => (scheme, rest),
            None => ("tcp", addr),
        };
        let (scheme, stdlib) = match scheme.strip_suffix("-net") {
            Some(s) => (s, true),
            None => (scheme, false),
        };
        let network = match scheme {
            "tcp" => Network::Tcp,
            "tcp4" => Network::Tcp4,
            "tcp6" => Network::Tcp6,
            "udp" => Network::Udp,
            "udp4" => Network::Udp4,
            "udp6" => Network::Udp6,
            "unix" => Network::Unix,
            _ => {
                return Err(invalid(format!(
                    "address {addr:?}: unknown scheme {scheme:?} \
                     (expected tcp, tcp4, tcp6, udp, udp4, udp6 or unix)"
                )))
            }
        };
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));

        let mut reuse_port = false;
        let mut mode = None;
        for option in query.split('&').filter(|o| !o.is_empty()) {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            match key {
                "reuseport" => reuse_port = is_true(value),
                "mode" if network != Network::Unix => {
                    return Err(invalid(format!(
                        "address {addr:?}: option mode is only for unix sockets"
                    )))
                }
                "mode" => {
                    mode = Some(
                        parse_mode(value)
                            .map_err(|why| invalid(format!("address {addr:?}: {why}")))?,
                    )
                }
                _ => {
                    return Err(invalid(format!(
                        "address {addr:?}: unknown option {key:?} \
                         (the options are reuseport, and mode for unix sockets)"
                    )))
                }
            }
        }

        let target = if network == Network::Unix {
            if location.is_empty() {
                return Err(invalid(format!(
                    "address {addr:?}: unix socket path is empty"
                )));
            }
            Target::Unix(PathBuf::from(location))
        } else {
            parse_host_port(location).map_err(|why| invalid(format!("address {addr:?}: {why}")))?
        };
        Ok(ListenAddr {
            network,
            target,
            reuse_port,
            mode,
            stdlib,
        })
    }
    // ANCHOR_END: parse
}

// ANCHOR: mode
/// A `mode` value: permission bits in octal, as `chmod` takes them (`660`,
/// `0660`). Only the nine permission bits: set-user-id and friends mean
/// nothing on a socket.
fn parse_mode(value: &str) -> Result<u32, String> {
    let bad = || format!("invalid mode {value:?} (expected octal permissions, such as 0660)");
    let digits = value.strip_prefix("0o").unwrap_or(value);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| matches!(b, b'0'..=b'7')) {
        return Err(bad());
    }
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(bad()),
    }
}
// ANCHOR_END: mode

/// Splits `host:port`, `[v6]:port`, `:port` or the empty string (any host,
/// any port, as evio's `tcp://` test expects).
fn parse_host_port(location: &str) -> Result<Target, String> {
    if location.is_empty() {
        return Ok(Target::Inet {
            host: String::new(),
            port: 0,
        });
    }
    let (host, port) = if let Some(rest) = location.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "missing ']' after an IPv6 host".to_string())?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| "missing port after ']'".to_string())?;
        (host, port)
    } else {
        let (host, port) = location
            .rsplit_once(':')
            .ok_or_else(|| "missing port (write host:port, or :port for any host)".to_string())?;
        if host.contains(':') {
            return Err("an IPv6 host must be written in brackets, as [::1]:port".into());
        }
        (host, port)
    };
    let port = if port.is_empty() {
        0
    } else {
        port.parse::<u16>()
            .map_err(|_| format!("invalid port {port:?} (expected 0 to 65535)"))?
    };
    Ok(Target::Inet {
        host: host.to_string(),
        port,
    })
}

// ANCHOR: canonical
/// An address as callbacks see it: an IPv4 peer of a dual-stack socket
/// (`tcp://:PORT`) arrives as the IPv4-mapped `[::ffff:127.0.0.1]:PORT`,
/// and is shown as the `127.0.0.1:PORT` it is, as Go (so evio) shows it.
/// Any other address is kept whole (an IPv6 scope id included).
pub(crate) fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        a => a,
    }
}
// ANCHOR_END: canonical

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn inet(host: &str, port: u16) -> Target {
        Target::Inet {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn ch02_addr_no_scheme_means_tcp() {
        let a = ListenAddr::parse("127.0.0.1:5000").unwrap();
        assert_eq!(a.network, Network::Tcp);
        assert_eq!(a.target, inet("127.0.0.1", 5000));
        assert!(!a.reuse_port && !a.stdlib);
    }

    #[test]
    fn ch02_addr_every_scheme() {
        for (s, n) in [
            ("tcp", Network::Tcp),
            ("tcp4", Network::Tcp4),
            ("tcp6", Network::Tcp6),
            ("udp", Network::Udp),
            ("udp4", Network::Udp4),
            ("udp6", Network::Udp6),
        ] {
            let a = ListenAddr::parse(&format!("{s}://:0")).unwrap();
            assert_eq!(a.network, n);
            let a = ListenAddr::parse(&format!("{s}-net://:0")).unwrap();
            assert_eq!((a.network, a.stdlib), (n, true));
        }
        let a = ListenAddr::parse("unix:///tmp/x.sock").unwrap();
        assert_eq!(a.target, Target::Unix("/tmp/x.sock".into()));
    }

    #[test]
    fn ch02_addr_empty_tcp_binds_any_port() {
        assert_eq!(ListenAddr::parse("tcp://").unwrap().target, inet("", 0));
        assert_eq!(ListenAddr::parse("tcp://:").unwrap().target, inet("", 0));
    }

    #[test]
    fn ch02_addr_ipv6_in_brackets() {
        assert_eq!(
            ListenAddr::parse("tcp6://[::1]:80").unwrap().target,
            inet("::1", 80)
        );
        assert!(ListenAddr::parse("tcp6://::1:80").is_err());
        assert!(ListenAddr::parse("tcp6://[::1").is_err());
    }

    #[test]
    fn ch02_addr_reuseport_truth_rule() {
        for v in ["1", "9", "true", "True", "yes", "Y", "t"] {
            let a = ListenAddr::parse(&format!("tcp://:0?reuseport={v}")).unwrap();
            assert!(a.reuse_port, "{v}");
        }
        for v in ["", "0", "false", "no", "N", "off"] {
            let a = ListenAddr::parse(&format!("tcp://:0?reuseport={v}")).unwrap();
            assert!(!a.reuse_port, "{v}");
        }
    }

    #[test]
    fn ch15_addr_unix_mode() {
        let mode = |a: &str| ListenAddr::parse(a).unwrap().mode;
        assert_eq!(mode("unix:///s"), None);
        assert_eq!(mode("unix:///s?mode=0660"), Some(0o660));
        assert_eq!(mode("unix:///s?mode=600"), Some(0o600));
        assert_eq!(mode("unix:///s?mode=0o777&reuseport=1"), Some(0o777));
        assert_eq!(mode("unix:///s?mode=0"), Some(0));
    }

    #[test]
    fn ch02_addr_bad_addresses_say_what_is_wrong() {
        let cases = [
            ("tulip://howdy", "unknown scheme \"tulip\""),
            ("howdy", "missing port"),
            ("tcp://:99999", "invalid port \"99999\""),
            ("tcp://:http", "invalid port \"http\""),
            ("tcp://:0?fast=1", "unknown option \"fast\""),
            ("tcp://:0?mode=0600", "only for unix sockets"),
            ("unix:///s?mode=999", "invalid mode \"999\""),
            ("unix:///s?mode=01777", "invalid mode"),
            ("unix://", "path is empty"),
        ];
        for (addr, why) in cases {
            let err = ListenAddr::parse(addr).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            let msg = err.to_string();
            assert!(msg.contains(why) && msg.contains(addr), "{addr}: {msg}");
        }
    }
}
