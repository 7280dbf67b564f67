//! The spare file descriptor a reactor loop that accepts keeps for the
//! moment the process runs out of fds
//! (chapter 15, "What a server owes its clients").
//!
//! Out of fds, a connection waiting in the listen queue cannot be taken,
//! and would wait there until fds come back. With a spare the loop can
//! close it, accept the connection with the fd that frees, close that at
//! once, and take the spare back: the client sees its connection closed
//! rather than hang. (The io_uring engine needs none: it accepts the
//! connection into its ring's own table of files, chapter 16.)
//!
//! When the spare is opened matters. Opened by a loop as it starts, it
//! could take the fd another loop's spare had just freed to shed with
//! (chapter 15's fd-exhaustion test saw it: a loop left without a spare,
//! and clients left waiting). So every spare is opened as the server is
//! bound, before any loop runs, and only for a loop that accepts.

use std::fs::File;
use std::os::fd::OwnedFd;

// ANCHOR: spare
/// `/dev/null`, held open to be closed when an fd is needed.
#[derive(Debug, Default)]
pub(crate) struct Spare(Option<OwnedFd>);

impl Spare {
    /// A spare for a loop that accepts (`accepts`), none for another.
    pub(crate) fn open(accepts: bool) -> Spare {
        let mut spare = Spare(None);
        if accepts {
            spare.restore();
        }
        spare
    }

    /// Closes the spare, so that the next fd the process takes is the one
    /// it held. Whether there was one to close.
    pub(crate) fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Takes a spare again if there is none; `false` if none can be had
    /// (out of fds still, or another thread took the fd it freed).
    pub(crate) fn restore(&mut self) -> bool {
        if self.0.is_none() {
            // std opens it close-on-exec.
            self.0 = File::open("/dev/null").ok().map(OwnedFd::from);
        }
        self.0.is_some()
    }
}
// ANCHOR_END: spare

#[cfg(test)]
mod tests {
    use super::Spare;

    #[test]
    fn ch15_a_spare_is_released_once_and_restored() {
        let mut spare = Spare::open(true);
        assert!(spare.release(), "an accepting loop has a spare");
        assert!(!spare.release(), "released: nothing left to close");
        assert!(spare.restore(), "fds are free here: it comes back");
        assert!(spare.release());
        let mut none = Spare::open(false);
        assert!(!none.release(), "a loop that does not accept holds none");
    }
}
