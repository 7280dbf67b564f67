//! What a reactor loop that accepts keeps for the moment the process runs
//! out of fds: something to shed a waiting connection with
//! (chapter 15, "What a server owes its clients").
//!
//! Out of fds, a connection waiting in the listen queue cannot be taken,
//! and would wait there until fds come back. The classic way out is a
//! spare fd (`/dev/null`): close it, accept the connection with the fd that
//! frees, close that at once, open the spare again. The client sees its
//! connection closed rather than hang. But between the close and the
//! accept another loop's accept can take the fd, and the loop is left with
//! no spare while fds are short.
//!
//! On Linux the spare is a small io_uring instead, whose table of files has
//! one slot: the ring accepts the connection into the slot (a *direct
//! descriptor*, Linux 5.15), which needs no fd, and closes it from there.
//! Nothing another thread does can take the slot. It still costs the loop
//! one fd, the ring's, as `/dev/null` did; where a ring cannot be had (a
//! seccomp profile, an old kernel) and on other systems, the spare fd.
//!
//! When the spare is made matters. Made by a loop once another has begun
//! to accept, it could take the fd another loop's spare had just freed
//! (chapter 15's fd-exhaustion test saw it: a loop left without a spare,
//! and clients left waiting). So each loop that accepts makes its spare on
//! its own thread (a ring's teardown interrupts the thread that opened it,
//! chapter 16), and no loop runs until all have (`Server::run`).

use std::fs::File;
#[cfg(target_os = "linux")]
use std::os::fd::RawFd;
use std::os::fd::{AsRawFd, OwnedFd};

#[cfg(target_os = "linux")]
use crate::shared;
use crate::shared::Listener;

#[cfg(target_os = "linux")]
use io_uring::{opcode, types, IoUring};

// ANCHOR: spare
/// What a loop sheds with when the process is out of fds.
pub(crate) enum Spare {
    /// `/dev/null`, held open to be closed when an fd is needed; `None`
    /// while it is closed, or for a loop that does not accept.
    Fd(Option<OwnedFd>),
    /// A ring that accepts into its own table of files, with no fd (boxed:
    /// a ring is some hundreds of bytes, kept for a rare moment).
    #[cfg(target_os = "linux")]
    Ring(Box<IoUring>),
}

impl std::fmt::Debug for Spare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spare::Fd(fd) => write!(f, "spare fd {:?}", fd.as_ref().map(|f| f.as_raw_fd())),
            #[cfg(target_os = "linux")]
            Spare::Ring(ring) => write!(f, "shedding ring (fd {})", ring.as_raw_fd()),
        }
    }
}

impl Default for Spare {
    fn default() -> Spare {
        Spare::Fd(None)
    }
}

impl Spare {
    /// A spare for a loop that accepts (`accepts`), none for another: a
    /// ring where one can be had, else `/dev/null`.
    pub(crate) fn open(accepts: bool) -> Spare {
        if !accepts {
            return Spare::default();
        }
        #[cfg(target_os = "linux")]
        if let Ok(ring) = shedding_ring() {
            return Spare::Ring(Box::new(ring));
        }
        let mut spare = Spare::default();
        spare.restore();
        spare
    }

    /// Accepts the connection waiting on `listener` and closes it at once.
    /// Whether one was shed: `false` when none waited, or there was nothing
    /// to shed with (the spare fd was taken).
    pub(crate) fn shed(&mut self, listener: &Listener) -> bool {
        match self {
            Spare::Fd(spare) => {
                // Closing the spare frees its fd, which the accept takes;
                // the socket it returns is dropped: closed.
                let shed = spare.take().is_some() && listener.accept_nonblocking().is_ok();
                self.restore() && shed
            }
            #[cfg(target_os = "linux")]
            Spare::Ring(ring) => shed_through(ring, listener.fd()),
        }
    }

    /// Takes a spare fd again if there is none; `false` if none can be had
    /// (out of fds still, or another thread took the fd it freed). A ring
    /// is never let go of.
    pub(crate) fn restore(&mut self) -> bool {
        match self {
            Spare::Fd(spare) => {
                if spare.is_none() {
                    // std opens it close-on-exec.
                    *spare = File::open("/dev/null").ok().map(OwnedFd::from);
                }
                spare.is_some()
            }
            #[cfg(target_os = "linux")]
            Spare::Ring(_) => true,
        }
    }
}

/// A ring of four entries with a table of one file (Linux 5.19 for the
/// sparse table).
#[cfg(target_os = "linux")]
fn shedding_ring() -> std::io::Result<IoUring> {
    let ring = IoUring::new(4)?;
    ring.submitter().register_files_sparse(1)?;
    Ok(ring)
}

/// Accepts into slot 0 of the ring's table, linked to a 1 ms timeout
/// (`shared::accept_into_slot`), and waits for both to come back; then
/// closes the slot. One or two `io_uring_enter` calls, on the rare path
/// where the process is out of fds.
#[cfg(target_os = "linux")]
fn shed_through(ring: &mut IoUring, listener: RawFd) -> bool {
    let [accept, wait] = shared::accept_into_slot(listener, 0);
    let (accept, wait) = (accept.user_data(1), wait.user_data(2));
    // SAFETY: the entries point to no memory of ours but a static timespec.
    if unsafe { ring.submission().push_multiple(&[accept, wait]) }.is_err() || !reap(ring, 2) {
        return false;
    }
    // Every completion is taken off the queue: the accept's and the timeout's.
    let accepted = (ring.completion())
        .filter(|c| c.user_data() == 1 && c.result() >= 0)
        .count()
        == 1;
    if accepted {
        let close = opcode::Close::new(types::Fixed(0)).build();
        // SAFETY: a close of the slot points to no memory.
        if unsafe { ring.submission().push(&close) }.is_ok() && reap(ring, 1) {
            ring.completion().for_each(drop);
        }
    }
    accepted
}

/// Submits and waits for `n` completions, through interruptions by signals
/// (the operations are in flight: the completions must be had).
#[cfg(target_os = "linux")]
fn reap(ring: &mut IoUring, n: usize) -> bool {
    loop {
        match ring.submit_and_wait(n) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            done => return done.is_ok(),
        }
    }
}
// ANCHOR_END: spare

/// The fd the spare holds, for the tests (the ring's, or `/dev/null`'s).
#[cfg(test)]
fn held(spare: &Spare) -> Option<std::os::fd::RawFd> {
    match spare {
        Spare::Fd(fd) => fd.as_ref().map(|f| f.as_raw_fd()),
        #[cfg(target_os = "linux")]
        Spare::Ring(ring) => Some(ring.as_raw_fd()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::ListenAddr;
    use std::io::Read;
    use std::net::TcpStream;
    use std::time::Duration;

    /// Sheds two waiting connections, then finds none waiting; the spare
    /// is there after each, and each client sees its connection closed.
    fn sheds(mut spare: Spare) {
        let addr = ListenAddr::parse("tcp://127.0.0.1:0").unwrap();
        let (mut listeners, bound) = Listener::bind_all(&[addr]).unwrap();
        let (listener, addr) = (listeners.remove(0), bound[0].socket_addr().unwrap());
        listener.set_nonblocking().unwrap();
        for _ in 0..2 {
            let mut client = TcpStream::connect(addr).unwrap();
            assert!(spare.shed(&listener), "{spare:?}: a waiting one is shed");
            assert!(held(&spare).is_some(), "{spare:?}: the spare is back");
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let closed = matches!(client.read(&mut [0u8; 1]), Ok(0) | Err(_));
            assert!(closed, "{spare:?}: the client sees its connection closed");
        }
        assert!(!spare.shed(&listener), "{spare:?}: none waiting");
    }

    #[test]
    fn ch15_a_spare_fd_sheds_and_comes_back() {
        let mut spare = Spare::default();
        assert!(spare.restore(), "fds are free here");
        sheds(spare);
        assert!(
            held(&Spare::open(false)).is_none(),
            "a loop that does not accept holds none"
        );
    }

    /// On a thread of its own, which opens, uses and drops the ring: a
    /// ring's teardown interrupts the thread that opened it (chapter 16).
    #[cfg(target_os = "linux")]
    #[test]
    fn ch15_a_ring_sheds_without_an_fd() {
        let own_thread = std::thread::spawn(|| {
            let Ok(ring) = shedding_ring() else {
                println!("skipped: no io_uring here");
                return;
            };
            sheds(Spare::Ring(Box::new(ring)));
        });
        own_thread.join().unwrap();
    }
}
