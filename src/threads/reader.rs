//! One thread per connection, reading: the only place the thread-based
//! variant reads a stream.
//!
//! Chapter 9, "The thread-based variant", explains this file. It mirrors the
//! goroutine that evio's `stdlistenerRun` (`evio_std.go`) starts for every
//! connection: read up to 64 KiB, copy the bytes into a fresh buffer, send
//! them to the loop. One difference is the [`Gate`]: our reader reads only
//! when its loop has said "go", once per message. evio's reads ahead freely;
//! that costs a wake-up less per message, but bytes read ahead of a
//! `Detach` are no longer in the socket. evio keeps them in the detached
//! conn (`donein`); our detached [`Stream`](crate::Stream) is a plain std
//! socket with no room for them, so we never read ahead instead. The gate
//! also bounds what a connection can queue to one message: the reactor's
//! rule, "no read while a reply is pending", by other means.
//!
//! On unix the reader waits for its socket in `poll`, beside a [`Bell`],
//! and reads only once the socket is ready: so its loop can call it back
//! from that wait without losing a byte (a *recall*, for a `Detach` asked
//! for while a permit is out; chapter 15).

use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

#[cfg(unix)]
use super::bell::{Bell, Woken};
use crate::shared::Sock;

/// Windows has no bell: a read in flight returns by itself.
#[cfg(not(unix))]
struct Bell;

/// The size of each reader's buffer: evio's 64 KiB.
const READ_BUFFER: usize = 64 * 1024;

/// The stack of a reader thread. It runs only the few frames of `read_run`
/// (the buffer is on the heap), never a callback, so 64 KiB is plenty;
/// std's default is 2 MiB of address space per thread.
const READER_STACK: usize = 64 * 1024;

/// What one read gave, as the reader hands it to its loop.
pub(crate) enum Got {
    /// Bytes, in a fresh `Vec`.
    Bytes(Vec<u8>),
    /// The end of the stream (`None`) or an error: the reader has returned.
    End(Option<io::Error>),
    /// Called back by its loop before it read anything: back at its gate.
    #[cfg_attr(not(unix), allow(dead_code))]
    Recalled,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Permit {
    /// Wait for the loop.
    Wait,
    /// Read once.
    Go,
    /// Return without reading.
    Stop,
    /// The loop wants the reader back at its gate without reading more.
    Recall,
}

// ANCHOR: gate
/// The loop's say over its reader: a permit behind a mutex, and a condition
/// variable the reader sleeps on.
pub(crate) struct Gate {
    permit: Mutex<Permit>,
    changed: Condvar,
}

impl Gate {
    fn set(&self, to: Permit) {
        let mut permit = self.permit.lock().unwrap();
        // A stopped reader stays stopped.
        if *permit != Permit::Stop {
            *permit = to;
        }
        self.changed.notify_one();
    }

    /// The reader's side: waits for a permit, uses it up. `false`: stop.
    fn pass(&self) -> bool {
        let mut permit = self.permit.lock().unwrap();
        loop {
            match *permit {
                Permit::Go => {
                    *permit = Permit::Wait;
                    return true;
                }
                Permit::Stop => return false,
                Permit::Wait | Permit::Recall => permit = self.changed.wait(permit).unwrap(),
            }
        }
    }

    /// The reader's side, after its bell rang: a recall is taken (and the
    /// reader goes back to its gate), a stop is kept.
    #[cfg(unix)]
    fn after_bell(&self) -> Permit {
        let mut permit = self.permit.lock().unwrap();
        let was = *permit;
        if was == Permit::Recall {
            *permit = Permit::Wait;
        }
        was
    }
}
// ANCHOR_END: gate

/// A connection's reader thread, as its loop holds it. Dropping it closes
/// the connection: see `Drop`.
pub(crate) struct Reader {
    gate: Arc<Gate>,
    sock: Arc<Sock>,
    #[cfg_attr(not(unix), allow(dead_code))]
    bell: Arc<Bell>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    /// Starts the thread, waiting at its gate for the first [`permit`].
    /// It hands what each read gave to `deliver`, which sends it to the
    /// loop and says whether the loop is still there.
    ///
    /// [`permit`]: Reader::permit
    pub(crate) fn spawn(
        id: u64,
        sock: Arc<Sock>,
        deliver: impl FnMut(Got) -> bool + Send + 'static,
    ) -> io::Result<Self> {
        let gate = Arc::new(Gate {
            permit: Mutex::new(Permit::Wait),
            changed: Condvar::new(),
        });
        #[cfg(unix)]
        let bell = Arc::new(Bell::new()?);
        #[cfg(not(unix))]
        let bell = Arc::new(Bell);
        let (g, s, b) = (gate.clone(), sock.clone(), bell.clone());
        let thread = std::thread::Builder::new()
            .name(format!("evio-read-{id}"))
            .stack_size(READER_STACK)
            .spawn(move || read_run(&s, &g, &b, deliver))?;
        Ok(Reader {
            gate,
            sock,
            bell,
            thread: Some(thread),
        })
    }

    /// Lets the thread read once more.
    pub(crate) fn permit(&self) {
        self.gate.set(Permit::Go);
    }

    // ANCHOR: recall
    /// Calls back a reader that has a permit out, for a detach. `true`: it
    /// had not started yet and is at its gate now. `false`: it is waiting
    /// for its socket; its bell rings and it answers with `Got::Recalled`,
    /// unless the socket was ready first (then its bytes come, as `Input`,
    /// and it is back at its gate after them). On Windows there is no bell:
    /// the read in flight has to return by itself.
    pub(crate) fn recall(&self) -> bool {
        let mut permit = self.gate.permit.lock().unwrap();
        match *permit {
            Permit::Go => {
                *permit = Permit::Wait;
                true
            }
            Permit::Wait => {
                *permit = Permit::Recall;
                #[cfg(unix)]
                self.bell.ring();
                false
            }
            Permit::Stop | Permit::Recall => false,
        }
    }
    // ANCHOR_END: recall

    // ANCHOR: finish
    /// Ends a thread that is waiting at its gate, and waits until it has
    /// returned: it has read nothing that the loop did not get, and it no
    /// longer holds the socket. For a detach. (The loop calls it only when
    /// no permit is out, so the thread is not in a `read`.)
    pub(crate) fn finish(mut self) {
        self.gate.set(Permit::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
    // ANCHOR_END: finish
}

// ANCHOR: drop
impl Drop for Reader {
    /// Closing: the thread may be blocked in `read`, which nothing but a
    /// shutdown of the socket interrupts (std has no cancel). So: stop at
    /// the gate, shut the socket down, wait for the thread to return. Its
    /// last message, `Eof`, reaches a loop that has forgotten the id.
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.gate.set(Permit::Stop);
            self.sock.shutdown();
            let _ = t.join();
        }
    }
}
// ANCHOR_END: drop

// ANCHOR: read_run
/// The reader thread: one read per permit, each handed to the loop in a
/// fresh `Vec` (a copy and an allocation per read: the price of handing
/// bytes from one thread to another).
fn read_run(sock: &Sock, gate: &Gate, bell: &Bell, mut deliver: impl FnMut(Got) -> bool) {
    let mut buf = vec![0u8; READ_BUFFER];
    while gate.pass() {
        match wait(sock, gate, bell) {
            Permit::Go => {}
            Permit::Recall if deliver(Got::Recalled) => continue,
            _ => return,
        }
        let got = loop {
            match sock.read(&mut buf) {
                Ok(0) => break Got::End(None),
                Ok(n) => break Got::Bytes(buf[..n].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Got::End(Some(e)),
            }
        };
        let last = matches!(got, Got::End(_));
        if !deliver(got) || last {
            return;
        }
    }
}
// ANCHOR_END: read_run

// ANCHOR: wait
/// Waits until the socket is ready to read, callable back by the bell:
/// `Go` (read now), `Recall` (back to the gate) or `Stop`. An error of
/// `poll` falls through to `read`, which reports the socket's.
#[cfg(unix)]
fn wait(sock: &Sock, gate: &Gate, bell: &Bell) -> Permit {
    while let Ok(Woken::Bell) = bell.wait(sock.fd()) {
        bell.drain();
        match gate.after_bell() {
            p @ (Permit::Recall | Permit::Stop) => return p,
            Permit::Go | Permit::Wait => {} // rung for an earlier recall
        }
    }
    Permit::Go
}
// ANCHOR_END: wait

/// Windows: `read` itself waits.
#[cfg(not(unix))]
fn wait(_: &Sock, _: &Gate, _: &Bell) -> Permit {
    Permit::Go
}
