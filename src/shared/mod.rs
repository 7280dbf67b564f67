//! What every engine shares, written once: the listening sockets, a
//! connection's socket, running the loops on threads, the [`Stopper`], and
//! the UDP reply.
//!
//! This layer sits between [`Conn`](crate::Conn) and the engines (the
//! reactor of chapters 3 to 8, the thread-based variant of chapter 9): it
//! may use the API's types and `Conn`, and it never names an engine. What
//! differs between engines, their loops above all, stays in each engine's
//! folder, side by side for chapter 9 to compare.
//!
//! | file | holds | chapter |
//! |---|---|---|
//! | `balancer.rs` | [`Balancer`]: which loop gets a connection, when one thread decides | 9, 13 |
//! | `deadlines.rs` | idle and output timeouts, deadlines: when a connection must go | 15 |
//! | `deliver.rs` | what a wake or a writer's delivery does to a connection's output and action | 4, 13 |
//! | `listener.rs` | binding, and accepting: non-blocking, blocking, the poke | 6 |
//! | `socket_file.rs` | a unix socket's file: not taken from a live server, permissions, removed only if ours | 15 |
//! | `sock.rs` | [`Sock`], an accepted connection's socket | 9 |
//! | `shed.rs` | out of fds: a connection accepted into a ring's table of files, to be closed there | 15, 16 |
//! | `note.rs` | [`Note`]: what other threads send a reactor or io_uring loop | 4, 16 |
//! | `loops.rs` | one thread per loop, panics, the first error, [`Stopper`] | 5, 8, 15 |
//! | `stats.rs` | a loop's counters, and [`Stats`], which reads them | 13 |
//! | `udp.rs` | a datagram's `data` call and its reply | 8, 16 |

mod balancer;
mod deadlines;
#[cfg(unix)]
mod deliver;
mod listener;
mod loops;
// The reactor's and io_uring's (unix only), not the thread-based variant's.
#[cfg(unix)]
mod note;
#[cfg(target_os = "linux")]
mod shed;
mod sock;
#[cfg(unix)]
mod socket_file;
mod stats;
mod udp;

pub(crate) use balancer::Balancer;
pub(crate) use deadlines::{Clocks, Deadlines};
#[cfg(unix)]
pub(crate) use deliver::delivered;
pub(crate) use listener::Listener;
#[cfg(unix)]
pub(crate) use loops::run_loops_here;
pub use loops::Stopper;
pub(crate) use loops::{catch, run_loops, Report, Stop};
#[cfg(unix)]
pub(crate) use note::{Note, StopNotes};
#[cfg(target_os = "linux")]
pub(crate) use shed::accept_into_slot;
pub(crate) use sock::Sock;
pub use stats::Stats;
pub(crate) use stats::{Count, Counters};
#[cfg(target_os = "linux")]
pub(crate) use udp::answer;
pub(crate) use udp::datagram;
