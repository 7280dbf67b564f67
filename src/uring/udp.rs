//! UDP on the ring: a datagram comes in by a receive the kernel completes,
//! goes to `data`, and its reply goes out by a send the kernel completes.
//!
//! Chapter 16, "Completion instead of readiness", explains this file (its
//! section "UDP on the ring"). What a datagram means to the callbacks is
//! the reactor's, written once in `src/shared/udp.rs` (`answer`): one
//! `data` call, the reply back to the sender, empty datagrams dropped. This
//! file is only how the ring gets the datagram in (`IORING_OP_RECVMSG`,
//! which reports the sender's address, as `recvfrom` does) and the reply
//! out (`IORING_OP_SENDMSG`, which takes the address to send to). The loop's
//! side, which submits and reaps, is `Loop::arm_datagram` and after it in
//! `event_loop.rs`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{opcode, squeue, types};
use socket2::SockAddr;

use crate::api::Action;
use crate::events::Events;
use crate::shared::{self, Listener};

/// The most one datagram can carry (a UDP length is 16 bits): a receive
/// buffer this big holds any datagram whole, so none is cut short.
const DATAGRAM: usize = 64 * 1024;

// ANCHOR: udp
/// One UDP listener, as loop 0 keeps it.
///
/// Loop 0 serves every UDP listener, as it keeps the accepts: the reactor's
/// loop 0 too reads every datagram under its default `Accept::HandOff`
/// (chapter 13), and a datagram is not a connection to hand to another loop.
///
/// *One operation at a time*, a receive or the send of its reply, never
/// both. So the reply buffer, the address and the header below are the
/// kernel's or the loop's, never both at once; the replies go in the order
/// of the datagrams; and at the end there is one operation to cancel. The
/// price is one more `io_uring_enter` per datagram answered (the receive is
/// submitted once the send has completed), while the next datagrams wait in
/// the socket's receive buffer, as they would for any busy reader.
///
/// Single-shot receives with a buffer of their own, not multishot from the
/// loop's buffer ring (Linux 6.0): that ring's buffers are sized for a
/// stream's reads (`buffers::SIZE`), and a datagram needs its 64 KiB whole.
pub(super) struct Udp {
    fd: RawFd,
    /// The bound address, known since `bind`: no `getsockname` per datagram.
    local: Option<SocketAddr>,
    /// What an operation in flight points the kernel to. Boxed, and only
    /// dropped after the ring (or leaked): the kernel keeps the addresses.
    msg: Box<Msg>,
    /// The datagram, written by the kernel while a receive is in flight.
    buf: Box<[u8]>,
    /// `data`'s reply, read by the kernel while its send is in flight.
    reply: Vec<u8>,
    busy: Option<Busy>,
}

/// The header of a `recvmsg` or `sendmsg`, and what it points to besides
/// the bytes: the peer's address and the one-entry buffer list.
struct Msg {
    header: libc::msghdr,
    /// The sender's address, written by a receive; the reply's, for a send.
    addr: libc::sockaddr_storage,
    iov: libc::iovec,
}

/// The operation a UDP listener has in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Busy {
    Receiving,
    Sending,
}

impl Udp {
    /// The state of a listener, if it is a UDP socket.
    pub(super) fn new(listener: &Listener) -> Option<Udp> {
        let Listener::Udp(socket) = listener else {
            return None;
        };
        // SAFETY: all zeroes is a valid `msghdr`, `sockaddr_storage` and
        // `iovec` (null pointers, zero lengths, no control messages).
        let msg = Box::new(unsafe { std::mem::zeroed::<Msg>() });
        Some(Udp {
            fd: socket.as_raw_fd(),
            local: socket.local_addr().ok(),
            msg,
            buf: vec![0; DATAGRAM].into_boxed_slice(),
            reply: Vec::new(),
            busy: None,
        })
    }

    pub(super) fn busy(&self) -> Option<Busy> {
        self.busy
    }

    /// Its operation has come back, whatever it did.
    pub(super) fn done(&mut self) {
        self.busy = None;
    }

    /// A receive of the next datagram into `buf`, its sender into `addr`.
    /// Set again before each: the kernel writes back the address's length.
    pub(super) fn receive(&mut self) -> squeue::Entry {
        let msg = &mut *self.msg;
        msg.iov = libc::iovec {
            iov_base: self.buf.as_mut_ptr().cast(),
            iov_len: self.buf.len(),
        };
        msg.header.msg_name = (&mut msg.addr as *mut libc::sockaddr_storage).cast();
        msg.header.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
        msg.header.msg_iov = &mut msg.iov;
        msg.header.msg_iovlen = 1;
        self.busy = Some(Busy::Receiving);
        opcode::RecvMsg::new(types::Fd(self.fd), &mut msg.header).build()
    }

    /// A receive completed with `res`: the datagram goes to `data` (through
    /// `shared::answer`, as the reactor's does), and its reply, if any,
    /// comes back as the send to submit. An error is for `accept_error`, as
    /// the reactor reports its `recvfrom`'s.
    pub(super) fn received<E: Events>(
        &mut self,
        events: &E,
        li: usize,
        res: i32,
    ) -> io::Result<(Action, Option<squeue::Entry>)> {
        self.done();
        let n = match res {
            n if n >= 0 => n as usize,
            n => match -n {
                // Cancelled (the loop is ending), or nothing after all.
                libc::ECANCELED | libc::EINTR | libc::EAGAIN => return Ok((Action::None, None)),
                err => return Err(io::Error::from_raw_os_error(err)),
            },
        };
        // SAFETY: the kernel wrote the sender's address into `addr`; the
        // length is at most the storage's, which `as_socket` reads by family.
        let from = unsafe { SockAddr::new(self.msg.addr, self.msg.header.msg_namelen) };
        let Some(from) = from.as_socket() else {
            return Ok((Action::None, None)); // not IP: no one to answer
        };
        let (fd, local, input) = (self.fd, self.local, &self.buf[..n]);
        let action = shared::answer(events, fd, li, local, from, input, &mut self.reply);
        if self.reply.is_empty() {
            return Ok((action, None));
        }
        // The reply goes back to `from`, in the socket's own family, from
        // the buffer `answer` left it in: nothing touches either until the
        // send completes, as nothing is received meanwhile.
        let to = SockAddr::from(from);
        let msg = &mut *self.msg;
        msg.header.msg_namelen = to.len();
        msg.addr = to.as_storage();
        msg.iov = libc::iovec {
            iov_base: self.reply.as_mut_ptr().cast(),
            iov_len: self.reply.len(),
        };
        msg.header.msg_flags = 0;
        self.busy = Some(Busy::Sending);
        let send = opcode::SendMsg::new(types::Fd(self.fd), &msg.header).build();
        Ok((action, Some(send)))
    }
}
// ANCHOR_END: udp
