//! What a wake or a [`Writer`](crate::Writer)'s delivery does to a
//! connection, written once for every engine whose loop keeps the
//! connection's output: the reactor (`src/reactor/dispatch.rs`) and the
//! io_uring engine (`src/uring/event_loop.rs`).
//!
//! Chapter 4, "Wake-ups", explains the wake's rule, and chapter 13,
//! "Beyond evio", the writer's. evio's `loopWake` (`evio_unix.go`) calls
//! `Data` and *replaces* the connection's output and action with what it
//! returns (its weakness 7); here both are kept. When the output is then
//! written is each engine's business.

use crate::api::Action;
use crate::conn::{Conn, Deliver};
use crate::events::Events;

// ANCHOR: delivered
/// Applies `what` to a connection whose pending output is `out` and whose
/// pending action is `action`:
///
/// - a wake calls `data` with empty input; its output is appended to any
///   pending, and its action does not replace a pending one (a `Close`
///   returned with output stays);
/// - a writer's bytes go after all the output so far, and leave its
///   budget for the connection's output;
/// - a writer's close waits for the output, like a `Close` returned with it.
pub(crate) fn delivered<E: Events>(
    events: &E,
    c: &mut Conn<E::Context>,
    out: &mut Vec<u8>,
    action: &mut Action,
    what: Deliver,
) {
    let wanted = match what {
        Deliver::Wake => events.data(c, &[], out),
        Deliver::Write(bytes) => {
            if let Some(budget) = &c.budget {
                budget.taken(bytes.len());
            }
            out.extend_from_slice(&bytes);
            Action::None
        }
        Deliver::Close => Action::Close,
    };
    if *action == Action::None {
        *action = wanted;
    }
}
// ANCHOR_END: delivered
