//! The echo client of `echo_load` and `conn_cost`: many connections on one
//! thread and one of this crate's pollers (used from the client side), each
//! keeping some `PING\r\n` messages in flight, counting round trips.
//!
//! Chapters 3, 7 and 9 use it (their "Run it" sections show the commands),
//! and chapter 14's benchmark driver reads its latency percentiles.
//! The workload is the usual echo benchmark: 50 connections, one or 64
//! messages in flight each. On its own core it can drive a server
//! harder than a thread-per-connection client could. It checks every byte
//! that comes back: a fast server that echoes the wrong bytes fails the run.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use evio::poll::{DefaultPoll, Event, Interest, Poll};
use hdrhistogram::Histogram;

/// The message; the echo server sends it back unchanged.
pub const MSG: &[u8] = b"PING\r\n";

/// The size of one read.
const READ: usize = 64 * 1024;

/// How long the server may answer nothing before the run fails.
const STALL: Duration = Duration::from_secs(2);

/// Connections with messages in flight, ready to [`run`](PingLoad::run).
pub struct PingLoad {
    poll: DefaultPoll,
    streams: Vec<TcpStream>,
    /// Connection index by fd, as the server's loop keeps its connections.
    by_fd: Vec<usize>,
    /// Per connection, where the next byte received falls in [`MSG`]: the
    /// bytes received that do not yet make a whole message.
    partial: Vec<usize>,
    /// Per connection, the batches in flight, oldest first: when each was
    /// sent and how many of its messages have not come back. An echo server
    /// answers in order, so the next whole message belongs to the front batch.
    sent: Vec<VecDeque<(Instant, usize)>>,
}

/// What a run measured.
pub struct Outcome {
    pub round_trips: u64,
    /// How long it really ran.
    pub secs: f64,
    /// Round-trip times in nanoseconds, from the wake-up that sent a message
    /// to the wake-up that read its echo (one clock reading per wake-up, not
    /// per message: the clock would cost more than a round trip at 64 in
    /// flight). `conn_cost`, which includes this file too, does not read it.
    #[allow(dead_code)]
    pub latency: Histogram<u64>,
}

impl PingLoad {
    /// Sends `inflight` messages on every connection, then makes each
    /// non-blocking and watches it for replies.
    pub fn start(mut streams: Vec<TcpStream>, inflight: usize) -> io::Result<PingLoad> {
        let mut poll = DefaultPoll::new()?;
        let burst = MSG.repeat(inflight);
        let mut sent = Vec::with_capacity(streams.len());
        for s in &mut streams {
            s.write_all(&burst)?;
            sent.push(VecDeque::from([(Instant::now(), inflight)]));
            s.set_nonblocking(true)?;
            poll.add(s.as_raw_fd(), Interest::READ)?;
        }
        let max_fd = streams.iter().map(|s| s.as_raw_fd()).max().unwrap_or(0) as usize;
        let mut by_fd = vec![usize::MAX; max_fd + 1];
        for (i, s) in streams.iter().enumerate() {
            by_fd[s.as_raw_fd() as usize] = i;
        }
        let partial = vec![0; streams.len()];
        Ok(PingLoad {
            poll,
            streams,
            by_fd,
            partial,
            sent,
        })
    }

    /// For `seconds`, sends one new message for every one that comes back,
    /// keeping the number in flight on each connection. Fails if a
    /// connection closes or a byte differs from what was sent.
    pub fn run(&mut self, seconds: f64) -> io::Result<Outcome> {
        let mut buf = vec![0u8; READ];
        // What any read must equal, from its offset in MSG: one memcmp per
        // read instead of a comparison per byte.
        let expected = MSG.repeat(READ / MSG.len() + 2);
        let mut replies = MSG.repeat(64);
        let mut events: Vec<Event> = Vec::new();
        // 1 ns to a minute, three significant digits: about 30 KiB.
        let mut latency = Histogram::new_with_bounds(1, 60_000_000_000, 3)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut round_trips = 0u64;
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(seconds);
        let mut answered = start;
        while Instant::now() < end {
            self.poll
                .wait(&mut events, Some(Duration::from_millis(100)))?;
            let now = Instant::now();
            // Every connection has a message in flight: a server that answers
            // none for this long has stopped, and a run that waits it out
            // would pass with a low rate (wrk's default time-out is the same).
            if now.duration_since(answered) > STALL {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer on any connection for {STALL:?}: the server stopped"),
                ));
            }
            for ev in &events {
                let i = self.by_fd[ev.fd as usize];
                let n = match self.streams[i].read(&mut buf) {
                    Ok(0) => return Err(io::Error::other("the server closed a connection")),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                };
                let at = self.partial[i];
                if buf[..n] != expected[at..at + n] {
                    let bad = (0..n).find(|&j| buf[j] != expected[at + j]).unwrap_or(0);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "connection {i}: received {:?} where {:?} was sent",
                            buf[bad] as char,
                            expected[at + bad] as char
                        ),
                    ));
                }
                let whole = (at + n) / MSG.len();
                if whole > 0 {
                    answered = now;
                }
                self.partial[i] = (at + n) % MSG.len();
                round_trips += whole as u64;
                // The `whole` oldest messages of this connection are back.
                let mut back = whole;
                while back > 0 {
                    let Some(front) = self.sent[i].front_mut() else {
                        return Err(io::Error::other("more echoed than was sent"));
                    };
                    let k = front.1.min(back);
                    let took = now.duration_since(front.0).as_nanos() as u64;
                    latency.saturating_record_n(took.max(1), k as u64);
                    front.1 -= k;
                    back -= k;
                    if front.1 == 0 {
                        self.sent[i].pop_front();
                    }
                }
                if whole > 0 {
                    self.sent[i].push_back((now, whole));
                }
                if replies.len() < whole * MSG.len() {
                    replies = MSG.repeat(whole);
                }
                self.streams[i].write_all(&replies[..whole * MSG.len()])?;
            }
        }
        Ok(Outcome {
            round_trips,
            secs: start.elapsed().as_secs_f64(),
            latency,
        })
    }
}
