//! The server you use, [`Server`]: one face over the engines, the reactor
//! (chapters 3 to 8) and the thread-based variant (chapter 9). This is the
//! one file that names every engine; adding one adds an arm to `Imp`.
//!
//! Chapter 9, "The thread-based variant", explains the choice. It mirrors
//! the top of evio's `Serve` (`evio.go`), which looks at every address's
//! scheme and calls `stdserve` if one of them ends in `-net`, `serve` (the
//! reactor) otherwise. Here an explicit [`Backend::Threads`] asks for it
//! too, and on an OS without a reactor (Windows) it is the only choice.

use std::io;

use crate::addr::ListenAddr;
use crate::api::{Backend, Config, ServerInfo};
use crate::events::Events;
#[cfg(unix)]
use crate::reactor;
use crate::shared::{Stats, Stopper};
use crate::threads;
#[cfg(target_os = "linux")]
use crate::uring;

/// A bound server, ready to run: the reactor or the thread-based variant,
/// whichever [`Server::bind`] chose.
pub struct Server {
    imp: Imp,
}

/// The engine behind a [`Server`].
enum Imp {
    #[cfg(unix)]
    Reactor(reactor::Server),
    Threads(threads::Server),
    #[cfg(target_os = "linux")]
    IoUring(uring::Server),
}

// ANCHOR: choose
/// Whether this config and these addresses ask for the thread-based
/// variant: evio's rule (any `-net` scheme), or `Backend::Threads`, or an
/// OS where the reactor does not exist.
fn wants_threads(config: &Config, addrs: &[ListenAddr]) -> bool {
    config.backend == Backend::Threads || addrs.iter().any(|a| a.stdlib) || cfg!(not(unix))
}
// ANCHOR_END: choose

impl Server {
    /// Parses and binds every address, and prepares the loops. All that can
    /// fail at start fails here, before any callback runs.
    pub fn bind(config: Config, addrs: &[&str]) -> io::Result<Server> {
        // Every address is parsed before any is bound: a typo in the third
        // fails with nothing half-started.
        let addrs = addrs
            .iter()
            .map(|a| ListenAddr::parse(a))
            .collect::<io::Result<Vec<_>>>()?;
        // io_uring, asked for by name (`Auto` never picks it), unless an
        // address asks for the thread-based variant with a `-net` scheme.
        if config.backend == Backend::IoUring && !addrs.iter().any(|a| a.stdlib) {
            #[cfg(target_os = "linux")]
            return Ok(Server {
                imp: Imp::IoUring(uring::Server::bind(config, &addrs)?),
            });
            #[cfg(not(target_os = "linux"))]
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "backend IoUring needs Linux: io_uring exists on no other OS",
            ));
        }
        if !wants_threads(&config, &addrs) {
            #[cfg(unix)]
            return Ok(Server {
                imp: Imp::Reactor(reactor::Server::bind(config, &addrs)?),
            });
        }
        if cfg!(not(unix)) && matches!(config.backend, Backend::Epoll | Backend::Kqueue) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("backend {:?} needs a unix OS", config.backend),
            ));
        }
        Ok(Server {
            imp: Imp::Threads(threads::Server::bind(config, &addrs)?),
        })
    }

    /// The bound addresses and the number of loops.
    pub fn info(&self) -> &ServerInfo {
        match &self.imp {
            #[cfg(unix)]
            Imp::Reactor(s) => s.info(),
            Imp::Threads(s) => s.info(),
            #[cfg(target_os = "linux")]
            Imp::IoUring(s) => s.info(),
        }
    }

    /// A handle that stops this server from any thread.
    pub fn stopper(&self) -> Stopper {
        match &self.imp {
            #[cfg(unix)]
            Imp::Reactor(s) => s.stopper(),
            Imp::Threads(s) => s.stopper(),
            #[cfg(target_os = "linux")]
            Imp::IoUring(s) => s.stopper(),
        }
    }

    /// A handle that reads each loop's counters from any thread, while the
    /// server runs or after (chapter 13).
    pub fn stats(&self) -> Stats {
        match &self.imp {
            #[cfg(unix)]
            Imp::Reactor(s) => s.stats(),
            Imp::Threads(s) => s.stats(),
            #[cfg(target_os = "linux")]
            Imp::IoUring(s) => s.stats(),
        }
    }

    /// Calls `serving`, then serves until a callback returns `Shutdown` or a
    /// [`Stopper`] stops it. Listeners are closed (and unix socket files
    /// removed) on return.
    ///
    /// Each loop runs on a thread named `evio-loop-N`; on the reactor and
    /// io_uring, a server of one loop runs it on the thread that called
    /// `run`, so that the process can be one thread (chapter 14).
    pub fn run<E: Events>(self, events: &E) -> io::Result<()> {
        match self.imp {
            #[cfg(unix)]
            Imp::Reactor(s) => s.run(events),
            Imp::Threads(s) => s.run(events),
            #[cfg(target_os = "linux")]
            Imp::IoUring(s) => s.run(events),
        }
    }

    /// Whether this server is the thread-based variant.
    pub fn is_threads(&self) -> bool {
        matches!(self.imp, Imp::Threads(_))
    }
}

#[cfg(all(test, unix, not(loom)))]
mod tests {
    use super::*;
    use crate::poll::HAS_KQUEUE;

    /// The poller's error (`crate::poll`'s test checks it) reaches the
    /// caller of `bind`, before any callback runs.
    #[test]
    fn ch10_a_server_on_kqueue_without_the_feature_fails_at_bind() {
        if HAS_KQUEUE {
            return; // nothing to check: this build has kqueue
        }
        let config = Config {
            backend: Backend::Kqueue,
            ..Config::default()
        };
        let Err(err) = Server::bind(config, &["tcp://127.0.0.1:0"]) else {
            panic!("a server on kqueue should not bind in this build");
        };
        assert!(err.to_string().contains("libkqueue"), "{err}");
    }

    /// `Threads` has no poller: `bind` gives it to the thread-based
    /// variant, and the reactor, asked directly, refuses it.
    #[test]
    fn ch10_threads_never_reach_the_reactor() {
        let config = Config {
            backend: Backend::Threads,
            ..Config::default()
        };
        let addrs = [ListenAddr::parse("tcp://127.0.0.1:0").unwrap()];
        assert!(wants_threads(&config, &addrs));
        let Err(err) = reactor::Server::bind(config, &addrs) else {
            panic!("the reactor should refuse backend Threads");
        };
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }
}
