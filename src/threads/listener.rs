//! The thread that accepts (or, for UDP, reads datagrams) on each listener.
//!
//! Chapter 9, "The thread-based variant", explains this file. It mirrors
//! evio's `stdlistenerRun` (`evio_std.go`): one thread per listener, blocked
//! in `accept`, that hands each new connection to a loop. Unlike evio's, it
//! asks the `Balancer` (`src/shared/balancer.rs`) which loop (evio always
//! takes turns), starts the connection's reader thread itself, so that the
//! loop never pays for a thread spawn, it turns away connections past
//! `Limits::max_connections` before any thread is spent on them, and it can
//! be stopped without a connection to itself (chapter 15).
//!
//! The listeners are bound by `src/shared/listener.rs`, as the reactor's
//! are. On unix the thread waits in `poll` for its listener or the server's
//! stop bell (`bell.rs`), and the listener is non-blocking, so that a
//! client gone between `poll` and `accept` cannot leave it stuck in
//! `accept`. On Windows it stays blocking in `accept`, and `run` stops it
//! with a poke (`Listener::poke` in `src/shared/listener.rs`).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[cfg(unix)]
use super::bell;
use super::msg::{Msg, NewConn, Shared};
use super::reader::Reader;
use crate::shared::Listener;

/// The size of a UDP thread's receive buffer: the largest datagram.
const DATAGRAM: usize = 64 * 1024;

/// How long an accept thread waits after an error other than "try again".
/// A blocking `accept` that fails with `EMFILE` fails again at once: without
/// a pause the thread would spin (the reactor sheds the connection instead,
/// chapter 6).
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Starts the thread for listener `li`: accepting, or reading datagrams.
pub(crate) fn spawn(li: usize, shared: Arc<Shared>) -> io::Result<std::thread::JoinHandle<()>> {
    let udp = matches!(shared.listeners[li], Listener::Udp(_));
    #[cfg(unix)]
    shared.listeners[li].set_nonblocking()?;
    std::thread::Builder::new()
        .name(format!("evio-accept-{li}"))
        .spawn(move || {
            if udp {
                udp_run(li, &shared)
            } else {
                accept_run(li, &shared)
            }
        })
}

/// Errors after which `accept` is simply called again.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionAborted
    )
}

/// Hands an error to a loop, which reports it to `accept_error`, and
/// pauses so that a persistent error does not spin this thread.
fn report(shared: &Shared, err: io::Error) {
    let _ = shared.loops[0].send(Msg::AcceptError(err));
    std::thread::sleep(ERROR_PAUSE);
}

// ANCHOR: wait
/// Waits until listener `li` has something for us: `false` when the server
/// stops instead. On Windows, `accept` itself waits (and a poke ends it).
fn ready(li: usize, shared: &Shared) -> bool {
    #[cfg(unix)]
    if let Ok(bell::Woken::Bell) = shared.stop_bell.wait(shared.listeners[li].fd()) {
        return false;
    }
    #[cfg(not(unix))]
    let _ = li;
    !shared.stopping.load(Ordering::SeqCst)
}
// ANCHOR_END: wait

// ANCHOR: accept_run
/// evio's `stdlistenerRun` for a stream listener: accept, pick a loop,
/// start the connection's reader, send both to the loop.
fn accept_run(li: usize, shared: &Shared) {
    let listener = &shared.listeners[li];
    while ready(li, shared) {
        let accepted = listener.accept_blocking();
        if shared.stopping.load(Ordering::SeqCst) {
            // A poke from `run` (Windows), or a client just too late:
            // dropped, closed.
            return;
        }
        let sock = match accepted {
            Ok(sock) => sock,
            Err(e) if transient(&e) => continue,
            Err(e) => {
                report(shared, e);
                continue;
            }
        };
        // Past the limit: closed at once (dropped), counted, and no thread
        // spent on it. One atomic step, exact across listeners.
        let max = shared.limits.max_connections;
        if shared.open.fetch_add(1, Ordering::SeqCst) >= max {
            shared.open.fetch_sub(1, Ordering::SeqCst);
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // The BSDs give an accepted socket the listener's O_NONBLOCK
        // (Linux does not): the reader and writer threads need it blocking.
        #[cfg(unix)]
        if let Err(e) = sock.set_nonblocking(false) {
            shared.open.fetch_sub(1, Ordering::SeqCst);
            report(shared, e);
            continue;
        }
        let sock = Arc::new(sock);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        // Counted at once, before the loop has even seen it, so that the
        // next choice of LeastConnections is exact.
        let idx = shared.balancer.choose(true);
        let tx = &shared.loops[idx];
        let to_loop = tx.clone();
        let deliver = move |got| to_loop.send(Msg::read(id, got)).is_ok();
        let reader = match Reader::spawn(id, sock.clone(), deliver) {
            Ok(reader) => reader,
            Err(e) => {
                // Out of threads: the socket is dropped, so closed.
                shared.balancer.release(idx);
                shared.open.fetch_sub(1, Ordering::SeqCst);
                report(shared, e);
                continue;
            }
        };
        let conn = NewConn {
            id,
            li,
            sock,
            reader,
        };
        if tx.send(Msg::Accept(conn)).is_err() {
            // The loop has ended (a panic): the message comes back and is
            // dropped, which stops the reader and closes the socket.
            shared.balancer.release(idx);
            shared.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
// ANCHOR_END: accept_run

/// evio's `stdlistenerRun` for UDP: read a datagram, copy it, hand it to a
/// loop (by the balancing rule; datagrams are not counted as connections).
fn udp_run(li: usize, shared: &Shared) {
    let Listener::Udp(socket) = &shared.listeners[li] else {
        return;
    };
    let mut buf = vec![0u8; DATAGRAM];
    while ready(li, shared) {
        let got = socket.recv_from(&mut buf);
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match got {
            // An empty one too: `shared::datagram` drops it, for both engines.
            Ok((n, from)) => {
                let idx = shared.balancer.choose(false);
                let data = buf[..n].to_vec();
                let _ = shared.loops[idx].send(Msg::Datagram { li, from, data });
            }
            // Windows reports an earlier send's ICMP "port unreachable" as a
            // reset on the next receive; it is not this datagram's problem.
            Err(e) if transient(&e) || e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => report(shared, e),
        }
    }
}
