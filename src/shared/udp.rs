//! A datagram in, a datagram back: the same for every engine.
//!
//! Chapter 8, "Tick, UDP, unix sockets, detach and shutdown", explains this
//! file. It mirrors evio's `loopUDPRead` (`evio_unix.go`) and
//! `stdloopReadUDP` (`evio_std.go`): one `data` call with a throw-away
//! connection that knows both addresses, and its reply, if any, sent back
//! with one `sendto`. How the datagram was read differs (the reactor's loop
//! reads it when the poller says so, the thread variant's UDP thread blocks
//! in `recv_from`, the io_uring engine's receive completes), so the engines
//! do that part; the io_uring engine sends the reply itself too (`answer`).

use std::net::{SocketAddr, UdpSocket};

use crate::addr::canonical;
use crate::api::{Action, Addr};
use crate::conn::{Conn, Ends, SockFd};
use crate::events::Events;

// ANCHOR: datagram
/// Hands one datagram that arrived on listener `li` to `data`, and sends
/// the reply. `local` is the bound address, known since `bind`: no
/// `getsockname` per datagram. `out` is the engine's reply buffer.
#[allow(clippy::too_many_arguments)] // each is one fact about the datagram
pub(crate) fn datagram<E: Events>(
    events: &E,
    socket: &UdpSocket,
    fd: SockFd,
    li: usize,
    local: Option<SocketAddr>,
    from: SocketAddr,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Action {
    let action = answer(events, fd, li, local, from, input, out);
    if !out.is_empty() {
        // A datagram that cannot be sent is dropped, as UDP allows.
        let _ = socket.send_to(out, from);
    }
    action
}

/// Everything of [`datagram`] but the send: `data`'s reply is left in
/// `out` (empty: no reply). The io_uring engine (chapter 16) sends it
/// through its ring, where a `send_to` on its blocking socket could block.
pub(crate) fn answer<E: Events>(
    events: &E,
    fd: SockFd,
    li: usize,
    local: Option<SocketAddr>,
    from: SocketAddr,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Action {
    out.clear();
    if input.is_empty() {
        // An empty datagram would reach `data` as empty input, which means
        // "woken". evio drops empty datagrams; so do we.
        return Action::None;
    }
    // The sender as callbacks see it (IPv4, not IPv4-mapped); the reply
    // goes to `from` as it came, in the socket's own family.
    let ends = Ends::Known {
        local: Some(Addr::Udp(local.unwrap_or(from))),
        remote: Some(Addr::Udp(canonical(from))),
    };
    // Id 0 and no waker: a datagram is not a connection anyone can wake.
    let mut conn: Conn<E::Context> = Conn::new(fd, 0, li, ends, None);
    let action = events.data(&mut conn, input, out);
    if !out.is_empty() {
        events.pre_write();
    }
    action
}
// ANCHOR_END: datagram
