//! The thread-based variant leaves nothing behind: after a connection
//! closes (either side), after a detach, and after the server stops with
//! connections open, the process has exactly the threads and file
//! descriptors it had before. And while it serves, it runs exactly the
//! threads chapter 9 promises: one per loop, one per listener, one per
//! connection, and no helper for the tick.
//!
//! Chapter 9, "The thread-based variant", explains why this takes care
//! (a reader blocked in `read` must be shut out; a detach must wait for the
//! reader to return). This is the only test in its binary, so that no test
//! running in parallel changes the counts. Linux only: it reads `/proc`.

#![cfg(target_os = "linux")]

mod common;

use std::io::{self, Read, Write};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{config, expect_eof, read_line, start, wait_until, within, Client, TempDir};
use evio::{Action, Backend, Conn, Events, LoadBalance, Options, Stream};

/// The number of threads of this process.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Threads: line")
}

/// The number of open file descriptors of this process (the directory
/// handle that `read_dir` opens is counted every time, so it cancels out).
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits until the thread count is `want`: a joined thread may take a
/// moment to leave the kernel's count.
fn threads_become(want: usize, what: &str) {
    wait_until(5, &format!("{what}: {want} threads"), || threads() == want);
}

fn fds_become(want: usize, what: &str) {
    wait_until(5, &format!("{what}: {want} fds"), || fds() == want);
}

/// Echoes lines; `close\n` closes, `detach\n` detaches (the stream then
/// answers one line from a thread of ours and is dropped).
#[derive(Default)]
struct Echo {
    opened: AtomicUsize,
    closed: AtomicUsize,
    detached: Mutex<Vec<JoinHandle<()>>>,
}

impl Events for Echo {
    type Context = ();

    fn opened(&self, _c: &mut Conn<()>, out: &mut Vec<u8>) -> (Options, Action) {
        self.opened.fetch_add(1, Ordering::SeqCst);
        out.extend_from_slice(b"hi\n");
        let options = Options {
            tcp_keep_alive: Some(Duration::from_secs(60)),
        };
        (options, Action::None)
    }

    fn data(&self, _c: &mut Conn<()>, input: &[u8], out: &mut Vec<u8>) -> Action {
        out.extend_from_slice(input);
        match input {
            b"close\n" => Action::Close,
            b"detach\n" => Action::Detach,
            _ => Action::None,
        }
    }

    fn detached(&self, _c: &mut Conn<()>, mut stream: Stream) -> Action {
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let n = stream.read(&mut buf).unwrap();
            stream.write_all(&buf[..n]).unwrap();
        });
        self.detached.lock().unwrap().push(t);
        Action::None
    }

    fn closed(&self, _c: &mut Conn<()>, _err: Option<io::Error>) -> Action {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Action::None
    }
}

#[test]
fn ch09_no_thread_or_fd_left_after_close_detach_and_shutdown() {
    within(120, || {
        let dir = TempDir::new();
        let unix = dir.unix_addr("leak.sock");
        let (threads0, fds0) = (threads(), fds());

        const LOOPS: usize = 3;
        let events = Arc::new(Echo::default());
        let cfg = config(Backend::Threads, LOOPS as isize, LoadBalance::RoundRobin);
        let addrs = ["tcp://127.0.0.1:0", unix.as_str(), "udp://127.0.0.1:0"];
        let server = start(Backend::Threads, events.clone(), cfg, &addrs);
        // The test's server thread, one thread per loop, one per listener;
        // loop 0 ticks with no thread of its own.
        let serving = threads0 + 1 + LOOPS + addrs.len();
        threads_become(serving, "serving, no connection");
        // Three listeners, the accept threads' stop bell (an eventfd,
        // chapter 15), and each loop's... nothing: channels are not fds.
        let fds_serving = fds();
        assert_eq!(fds_serving, fds0 + 3 + 1, "one fd per listener, one bell");

        // Ten connections: one reader thread each.
        let mut clients: Vec<Client> = (0..10)
            .map(|i| Client::connect(&server.info.addrs[i % 2]))
            .collect();
        for c in &mut clients {
            assert_eq!(read_line(c), "hi\n");
            c.write_all(b"ping\n").unwrap();
            assert_eq!(read_line(c), "ping\n");
        }
        threads_become(serving + 10, "ten connections");
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        udp.send_to(b"dgram", server.addr(2)).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(udp.recv(&mut buf).unwrap(), 5);
        drop(udp);

        // Closed by the client: its reader returns with end-of-file.
        drop(clients.pop());
        // Closed by the server: its reader is stopped at its gate.
        let mut c = clients.pop().unwrap();
        c.write_all(b"close\n").unwrap();
        assert_eq!(read_line(&mut c), "close\n");
        expect_eof(&mut c);
        drop(c);
        wait_until(10, "two closes", || {
            events.closed.load(Ordering::SeqCst) == 2
        });
        // Detached: the reader returns, the stream is handed over, used and
        // dropped by a thread of the test, which we join.
        let mut c = clients.pop().unwrap();
        c.write_all(b"detach\n").unwrap();
        assert_eq!(read_line(&mut c), "detach\n");
        c.write_all(b"raw\n").unwrap();
        assert_eq!(read_line(&mut c), "raw\n");
        expect_eof(&mut c);
        drop(c);
        wait_until(10, "the detached stream's thread", || {
            events.detached.lock().unwrap().len() == 1
        });
        for t in std::mem::take(&mut *events.detached.lock().unwrap()) {
            common::join_within(t, 10);
        }
        threads_become(serving + 7, "three connections gone");
        // Our 7 clients' ends, the server's 7 and their readers' bells: 3
        // fds each.
        fds_become(fds_serving + 21, "three connections gone");

        // A reader blocked in `read` for each of the 7 connections left:
        // stopping must shut them out, and join every thread.
        server.stop(10).unwrap();
        assert_eq!(events.closed.load(Ordering::SeqCst), 2 + 7);
        for c in &mut clients {
            expect_eof(c);
        }
        drop(clients);
        threads_become(threads0, "after shutdown");
        fds_become(fds0, "after shutdown");
        assert!(!dir.path("leak.sock").exists(), "socket file left");
    });
}
