//! The grader of lab 07 (chapter 7, "Deferred actions and writes"): a third
//! answer to "when is output written", `Writes::Batched`, parsed from
//! `batched`: at the end of the loop's turn, once for all the output a
//! connection got in that turn. `#[ignore]`d: it fails until you have done
//! the lab. Grade it with `cargo test lab07 -- --ignored`.
//!
//! Only the reactor is graded (epoll, kqueue; with evio's way of accepting
//! and chapter 13's): `Writes` is the reactor's decision.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{backends, config, connect_tcp, read_line, read_to_eof, start, within, Setup};
use evio::{Action, Backend, Conn, Events, Limits, LoadBalance, Waker, Writes};

/// Wakes queued while the loop is busy.
const WAKES: usize = 100;

/// An echo, with three commands on a line of their own: `hold` hands the
/// connection's waker to the test and holds the loop until the test says
/// go; `quit` says `bye` and closes. A wake writes `w`.
struct Batchy {
    wakers: Mutex<mpsc::Sender<Waker>>,
    go: Mutex<mpsc::Receiver<()>>,
    woken: AtomicUsize,
}

impl Events for Batchy {
    type Context = ();

    fn data(&self, c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        match input {
            b"" => {
                self.woken.fetch_add(1, Ordering::SeqCst);
                out.push(b'w');
                Action::None
            }
            b"hold\n" => {
                let _ = self.wakers.lock().unwrap().send(c.waker());
                let _ = self
                    .go
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(30));
                out.extend_from_slice(b"held\n");
                Action::None
            }
            b"quit\n" => {
                out.extend_from_slice(b"bye\n");
                Action::Close
            }
            _ => {
                out.extend_from_slice(input);
                Action::None
            }
        }
    }
}

/// The strategy the lab adds, by name.
fn batched() -> Writes {
    "batched".parse().unwrap_or_else(|e| {
        panic!(
            "lab07: there is no writes strategy \"batched\" yet ({e}): add Writes::Batched in \
             src/api.rs, parsed from \"batched\", and its arms in src/reactor/dispatch.rs \
             (output_produced, wanted_interest) and src/reactor/event_loop.rs (a flush at the \
             end of the loop's turn)"
        )
    })
}

/// The reactor's setups, with batched writes.
fn reactors(writes: Writes) -> Vec<Setup> {
    backends()
        .into_iter()
        .filter(|s| !matches!(s.backend, Backend::Threads | Backend::IoUring))
        .map(|s| Setup { writes, ..s })
        .collect()
}

fn serve(
    setup: Setup,
    output_limit: usize,
) -> (
    common::Running,
    Arc<Batchy>,
    mpsc::Receiver<Waker>,
    mpsc::Sender<()>,
) {
    let (wakers_tx, wakers) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    let events = Arc::new(Batchy {
        wakers: Mutex::new(wakers_tx),
        go: Mutex::new(go_rx),
        woken: AtomicUsize::new(0),
    });
    let mut cfg = config(setup, 1, LoadBalance::RoundRobin);
    cfg.limits.output_limit = output_limit;
    let server = start(setup, events.clone(), cfg, &["tcp://127.0.0.1:0"]);
    (server, events, wakers, go)
}

/// One loop, held busy while another thread wakes a connection 100 times;
/// then released. In its next turn the loop runs the 100 wakes, and must
/// send their 100 bytes with one `write` (two at most), after the reply to
/// `hold`, in order. `Eager` would make 100 writes.
#[test]
#[ignore = "lab 07: Writes::Batched, parsed from \"batched\", then `cargo test lab07 -- --ignored`"]
fn lab07_batched_writes_sends_a_turns_output_with_one_write() {
    let writes = batched();
    within(60, move || {
        for setup in reactors(writes) {
            let (server, events, wakers, go) = serve(setup, Limits::default().output_limit);
            let mut client = connect_tcp(server.addr(0));
            client.write_all(b"ping\n").unwrap();
            assert_eq!(read_line(&mut client), "ping\n", "{setup:?}: the echo");
            client.write_all(b"hold\n").unwrap();
            let waker = wakers.recv_timeout(Duration::from_secs(30)).unwrap();
            for _ in 0..WAKES {
                waker.wake().unwrap();
            }
            let before = server.stats.loops()[0].writes;
            go.send(()).unwrap();
            assert_eq!(read_line(&mut client), "held\n", "{setup:?}");
            let mut ws = vec![0u8; WAKES];
            client.read_exact(&mut ws).unwrap();
            assert!(ws.iter().all(|&b| b == b'w'), "{setup:?}: {ws:?}");
            assert_eq!(events.woken.load(Ordering::SeqCst), WAKES);
            let made = server.stats.loops()[0].writes - before;
            assert!(
                made <= 2,
                "lab07, {setup:?}: the reply to `hold` and {WAKES} wakes, all run in one turn \
                 of the loop, took {made} writes: with Writes::Batched, the loop writes a \
                 connection's output once, at the end of its turn, not after each callback"
            );
            drop(client);
            server.stop(10).unwrap();
        }
    });
}

/// Batched output still behaves: 8 MiB echoed in order to a client that
/// sends it all before it reads (the socket fills, the loop waits to write,
/// and stops reading past `Limits::output_limit`), and `quit` gets `bye`
/// before the close, as a deferred `Close` must. With the default output
/// limit, and with a small one, which a read that fills the buffer crosses
/// at once: the loop must still come back for the input it left unread
/// (under `Trigger::Edge`, chapter 13, nobody reports it again).
#[test]
#[ignore = "lab 07: Writes::Batched, parsed from \"batched\", then `cargo test lab07 -- --ignored`"]
fn lab07_batched_writes_echoes_in_order_and_closes_after_output() {
    let writes = batched();
    within(120, move || {
        let setups = reactors(writes).into_iter();
        for (setup, limit) in setups.flat_map(|s| [(s, Limits::default().output_limit), (s, 1000)])
        {
            let (server, _events, _wakers, _go) = serve(setup, limit);
            let mut client = connect_tcp(server.addr(0));
            let mut data = Vec::with_capacity(8 << 20);
            let mut i = 0u64;
            while data.len() < 8 << 20 {
                data.extend_from_slice(format!("{i:015}\n").as_bytes());
                i += 1;
            }
            let sent = data.clone();
            let mut writer = client.try_clone().unwrap();
            let sending = thread::spawn(move || writer.write_all(&sent));
            let mut got = vec![0u8; data.len()];
            client.read_exact(&mut got).unwrap_or_else(|e| {
                panic!("lab07, {setup:?}, output limit {limit}: reading the 8 MiB echo: {e}")
            });
            sending.join().unwrap().unwrap();
            assert!(
                got == data,
                "lab07, {setup:?}: the echo came back out of order"
            );
            client.write_all(b"quit\n").unwrap();
            let rest = read_to_eof(&mut client);
            assert_eq!(
                String::from_utf8_lossy(&rest),
                "bye\n",
                "lab07, {setup:?}: `quit` must get `bye`, then end-of-file"
            );
            server.stop(10).unwrap();
        }
    });
}
