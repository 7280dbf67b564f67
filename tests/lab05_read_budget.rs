//! The grader of lab 05 (chapter 5, "The loop and its dispatch"): a read
//! budget. When a read fills the whole read buffer, more input is likely
//! waiting: the Read step reads again, up to `READ_BUDGET` (4) reads per
//! turn of the loop, instead of waiting to be told. `#[ignore]`d: it fails
//! until you have done the lab. Grade it with `cargo test lab05 -- --ignored`.
//!
//! Only the reactor is graded (epoll, kqueue; evio's strategies and chapter
//! 13's): the thread-based variant's readers block in `read`, and io_uring
//! receives through its ring.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use common::{backends, config, connect_tcp, read_line, start, wait_until, within, Setup};
use evio::{Action, Backend, Conn, Events, LoadBalance, Stats};

/// The budget the lab asks for.
const BUDGET: usize = 4;
/// The loop's read buffer (`READ_BUFFER` in `src/reactor/event_loop.rs`).
const BUFFER: usize = 64 * 1024;
/// What the client sends while the loop is busy.
const UPLOAD: usize = 4 << 20;

/// On `hold`, holds the loop until the test says go. Any other input is
/// counted, with the loop's wait count at the time: the inputs of one
/// turn share it.
struct Upload {
    go: Mutex<mpsc::Receiver<()>>,
    holding: Mutex<mpsc::Sender<()>>,
    stats: OnceLock<Stats>,
    bytes: AtomicUsize,
    /// (the loop's waits, the input's length), for every input but `hold`.
    inputs: Mutex<Vec<(u64, usize)>>,
}

impl Events for Upload {
    type Context = ();

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        if input == b"hold\n" {
            let _ = self.holding.lock().unwrap().send(());
            let _ = self
                .go
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30));
            out.extend_from_slice(b"held\n");
            return Action::None;
        }
        let waits = self.stats.get().map_or(0, |s| s.loops()[0].waits);
        self.inputs.lock().unwrap().push((waits, input.len()));
        self.bytes.fetch_add(input.len(), Ordering::SeqCst);
        Action::None
    }
}

/// The reactor's setups: the lab changes the dispatch's Read step.
fn reactors() -> Vec<Setup> {
    backends()
        .into_iter()
        .filter(|s| !matches!(s.backend, Backend::Threads | Backend::IoUring))
        .collect()
}

/// One loop, held busy by one client while another sends 4 MiB (as much as
/// the kernel buffers, the rest as the loop reads); then released. Some
/// turn of the loop must read two full buffers or more from the uploading
/// client (untouched: one read per turn), none more than 4 (the budget, so
/// that one busy client cannot starve the others), and every byte must
/// arrive.
#[test]
#[ignore = "lab 05: read up to 4 times per turn while reads fill the buffer, then `cargo test lab05 -- --ignored`"]
fn lab05_read_budget_reads_up_to_four_full_buffers_per_turn() {
    within(120, || {
        for setup in reactors() {
            let (go, go_rx) = mpsc::channel();
            let (holding_tx, holding) = mpsc::channel();
            let upload = Arc::new(Upload {
                go: Mutex::new(go_rx),
                holding: Mutex::new(holding_tx),
                stats: OnceLock::new(),
                bytes: AtomicUsize::new(0),
                inputs: Mutex::new(Vec::new()),
            });
            let cfg = config(setup, 1, LoadBalance::RoundRobin);
            let server = start(setup, upload.clone(), cfg, &["tcp://127.0.0.1:0"]);
            let _ = upload.stats.set(server.stats.clone());
            let mut holder = connect_tcp(server.addr(0));
            let mut uploader = connect_tcp(server.addr(0));
            holder.write_all(b"hold\n").unwrap();
            holding.recv_timeout(Duration::from_secs(30)).unwrap();
            let sending =
                thread::spawn(move || uploader.write_all(&vec![b'x'; UPLOAD]).map(|()| uploader));
            // Let the kernel's buffers fill while the loop is busy.
            thread::sleep(Duration::from_millis(200));
            go.send(()).unwrap();
            assert_eq!(read_line(&mut holder), "held\n");
            wait_until(60, "the whole upload read", || {
                upload.bytes.load(Ordering::SeqCst) == UPLOAD
            });
            let uploader = sending.join().unwrap().unwrap();
            let inputs = upload.inputs.lock().unwrap().clone();
            let mut per_turn: Vec<(usize, usize)> = Vec::new(); // (reads, full ones)
            for turn in inputs.chunk_by(|a, b| a.0 == b.0) {
                let full = turn.iter().filter(|i| i.1 == BUFFER).count();
                per_turn.push((turn.len(), full));
            }
            let most = per_turn.iter().map(|t| t.0).max().unwrap_or(0);
            let most_full = per_turn.iter().map(|t| t.1).max().unwrap_or(0);
            let shown: Vec<usize> = per_turn.iter().map(|t| t.0).take(40).collect();
            assert!(
                most_full >= 2,
                "lab05, {setup:?}: the loop read the 4 MiB upload {} times in {} turns, never \
                 more than {most_full} full {BUFFER}-byte buffer per turn (reads per turn: \
                 {shown:?}...): when a read fills the buffer, read again, up to READ_BUDGET = \
                 {BUDGET} reads per turn (the Read step, src/reactor/dispatch.rs)",
                inputs.len(),
                per_turn.len()
            );
            assert!(
                most <= BUDGET,
                "lab05, {setup:?}: one turn read the uploading client {most} times (reads per \
                 turn: {shown:?}...): stop at READ_BUDGET = {BUDGET}, so that one busy \
                 client cannot keep the loop from the others"
            );
            drop((holder, uploader));
            server.stop(10).unwrap();
        }
    });
}
