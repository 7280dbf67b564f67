//! Writing without blocking the loop: a write that never waits, and for
//! what the socket does not take at once, the connection's own writer
//! thread.
//!
//! Chapter 15, "What a server owes its clients", explains this file (its
//! section on the thread-based variant). evio's `stdloopRead`
//! (`evio_std.go`) writes each reply with a blocking `c.conn.Write(out)` on
//! the loop's goroutine, so one peer that does not read stalls every
//! connection of that loop. Here the loop first writes what the socket
//! takes at once ([`try_write`]: `send` with `MSG_DONTWAIT`, which does
//! not touch the socket's blocking mode, shared with the reader thread).
//! Only the rest, if any, goes to an [`Outbox`]: a queue and a thread that
//! writes it with blocking writes, started the first time the connection
//! needs one. A reply that fits the kernel's buffer, nearly every reply,
//! costs what it did before: one `send`, no thread, no wake-up.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::conn::Budget;
use crate::shared::Sock;

/// The stack of a writer thread: like a reader's, a few frames, no callback.
const WRITER_STACK: usize = 64 * 1024;

/// The most a writer thread writes in one call, so that it can report
/// progress (for the idle timeout and the limit) while a big reply drains.
const CHUNK: usize = 64 * 1024;

// ANCHOR: try_write
/// Writes what the socket takes without waiting: the bytes written, maybe
/// fewer than `buf.len()`, maybe 0. `MSG_DONTWAIT` makes this one call
/// non-blocking, where `O_NONBLOCK` would change the socket for the reader
/// thread too; `MSG_NOSIGNAL` turns a closed peer into `EPIPE` rather than
/// a signal (std ignores `SIGPIPE` in a Rust `main`, not in every host).
#[cfg(unix)]
pub(crate) fn try_write(sock: &Sock, buf: &[u8]) -> io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const FLAGS: libc::c_int = libc::MSG_DONTWAIT;
    let mut done = 0;
    while done < buf.len() {
        let rest = &buf[done..];
        // SAFETY: a valid buffer and an open socket (the loop holds it).
        let n = unsafe { libc::send(sock.fd(), rest.as_ptr().cast(), rest.len(), FLAGS) };
        if n >= 0 {
            done += n as usize;
            continue;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => break,
            _ => return Err(err),
        }
    }
    Ok(done)
}

/// Windows has no per-call non-blocking send, and its sockets' blocking
/// mode is shared with the reader thread: every reply goes through the
/// connection's writer thread there (one more thread wake-up per reply).
#[cfg(not(unix))]
pub(crate) fn try_write(_sock: &Sock, _buf: &[u8]) -> io::Result<usize> {
    Ok(0)
}
// ANCHOR_END: try_write

/// What a connection's loop and its writer thread share.
struct Queue {
    bufs: VecDeque<Vec<u8>>,
    /// Bytes queued or being written: the connection's pending output.
    bytes: usize,
    /// When the thread last wrote something: progress, for the idle timeout.
    last_write: Instant,
    /// Tell the loop once `bytes` is at most this (then forget it).
    notify_at: Option<usize>,
    /// The connection's writers' budget, kept up to date as bytes go out.
    budget: Option<Arc<Budget>>,
    stop: bool,
}

/// The state and the condition variable the writer thread sleeps on.
type Shared = (Mutex<Queue>, Condvar);

// ANCHOR: outbox
/// A connection's pending output, and the thread that writes it.
pub(crate) struct Outbox {
    shared: Arc<Shared>,
    sock: Arc<Sock>,
    thread: Option<JoinHandle<()>>,
}

impl Outbox {
    /// Starts the writer thread. `report` tells the loop that the output
    /// went down to the level it asked for (`None`), or that a write failed.
    pub(crate) fn spawn(
        id: u64,
        sock: Arc<Sock>,
        report: impl Fn(Option<io::Error>) -> bool + Send + 'static,
    ) -> io::Result<Outbox> {
        let queue = Queue {
            bufs: VecDeque::new(),
            bytes: 0,
            last_write: Instant::now(),
            notify_at: None,
            budget: None,
            stop: false,
        };
        let shared = Arc::new((Mutex::new(queue), Condvar::new()));
        let (q, s) = (shared.clone(), sock.clone());
        let thread = std::thread::Builder::new()
            .name(format!("evio-write-{id}"))
            .stack_size(WRITER_STACK)
            .spawn(move || write_run(&s, &q, report))?;
        Ok(Outbox {
            shared,
            sock,
            thread: Some(thread),
        })
    }

    /// Queues bytes after those queued before; returns the pending total.
    pub(crate) fn push(&self, bytes: Vec<u8>, budget: Option<&Arc<Budget>>) -> usize {
        let mut q = self.shared.0.lock().unwrap();
        q.bytes += bytes.len();
        q.bufs.push_back(bytes);
        if q.budget.is_none() {
            q.budget = budget.cloned();
        }
        if let Some(b) = &q.budget {
            b.unsent(q.bytes);
        }
        self.shared.1.notify_one();
        q.bytes
    }

    /// The pending output, and when the thread last wrote.
    pub(crate) fn pending(&self) -> (usize, Instant) {
        let q = self.shared.0.lock().unwrap();
        (q.bytes, q.last_write)
    }

    /// Asks to be told (through `report`) when the pending output is at
    /// most `level`. `false`: it is already.
    pub(crate) fn notify_at(&self, level: usize) -> bool {
        let mut q = self.shared.0.lock().unwrap();
        if q.bytes <= level {
            return false;
        }
        q.notify_at = Some(level);
        true
    }

    /// Ends the idle thread and waits for it, leaving the socket as it is:
    /// for a detach, which hands the socket over.
    pub(crate) fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.0.lock().unwrap().stop = true;
        self.shared.1.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Outbox {
    /// Closing: a thread blocked in `write` to a peer that does not read
    /// returns only when the socket is shut down.
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.sock.shutdown();
            self.stop();
        }
    }
}
// ANCHOR_END: outbox

// ANCHOR: write_run
/// The writer thread: blocking writes of what is queued, a chunk at a time,
/// each followed by the new pending total, and a report when the loop
/// asked for one.
fn write_run(sock: &Sock, shared: &Shared, report: impl Fn(Option<io::Error>) -> bool) {
    let (lock, changed) = shared;
    loop {
        let buf = {
            let mut q = lock.lock().unwrap();
            while q.bufs.is_empty() && !q.stop {
                q = changed.wait(q).unwrap();
            }
            match q.bufs.pop_front() {
                Some(buf) if !q.stop => buf,
                _ => return,
            }
        };
        for chunk in buf.chunks(CHUNK) {
            if let Err(e) = sock.write_all(chunk) {
                lock.lock().unwrap().stop = true;
                report(Some(e));
                return;
            }
            let mut q = lock.lock().unwrap();
            q.bytes -= chunk.len();
            q.last_write = Instant::now();
            if let Some(b) = &q.budget {
                b.unsent(q.bytes);
            }
            if q.notify_at.is_some_and(|level| q.bytes <= level) {
                q.notify_at = None;
                drop(q);
                if !report(None) {
                    return;
                }
            }
        }
    }
}
// ANCHOR_END: write_run
