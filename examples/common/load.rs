//! The echo client of `echo_load` and `conn_cost`: many connections on one
//! thread and one of this crate's pollers (used from the client side), each
//! keeping some `PING\r\n` messages in flight, counting round trips.
//!
//! Chapters 3, 7 and 9 use it (their "Run it" sections show the commands).
//! The workload is the usual echo benchmark: 50 connections, one or 64
//! messages in flight each. On its own core it can drive a server
//! harder than a thread-per-connection client could.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use evio::poll::{DefaultPoll, Event, Interest, Poll};

/// The message; the echo server sends it back unchanged.
pub const MSG: &[u8] = b"PING\r\n";

/// Connections with messages in flight, ready to [`run`](PingLoad::run).
pub struct PingLoad {
    poll: DefaultPoll,
    streams: Vec<TcpStream>,
    /// Connection index by fd, as the server's loop keeps its connections.
    by_fd: Vec<usize>,
    /// Bytes received per connection that do not yet make a whole message.
    partial: Vec<usize>,
}

impl PingLoad {
    /// Sends `inflight` messages on every connection, then makes each
    /// non-blocking and watches it for replies.
    pub fn start(mut streams: Vec<TcpStream>, inflight: usize) -> io::Result<PingLoad> {
        let mut poll = DefaultPoll::new()?;
        let burst = MSG.repeat(inflight);
        for s in &mut streams {
            s.write_all(&burst)?;
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
        })
    }

    /// For `seconds`, sends one new message for every one that comes back,
    /// keeping the number in flight on each connection. Returns the round
    /// trips and the seconds it really ran.
    pub fn run(&mut self, seconds: f64) -> io::Result<(u64, f64)> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut replies = MSG.repeat(64);
        let mut events: Vec<Event> = Vec::new();
        let mut round_trips = 0u64;
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(seconds);
        while Instant::now() < end {
            self.poll
                .wait(&mut events, Some(Duration::from_millis(100)))?;
            for ev in &events {
                let i = self.by_fd[ev.fd as usize];
                let n = match self.streams[i].read(&mut buf) {
                    Ok(0) => return Err(io::Error::other("the server closed a connection")),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                };
                self.partial[i] += n;
                let whole = self.partial[i] / MSG.len();
                self.partial[i] %= MSG.len();
                round_trips += whole as u64;
                if replies.len() < whole * MSG.len() {
                    replies = MSG.repeat(whole);
                }
                self.streams[i].write_all(&replies[..whole * MSG.len()])?;
            }
        }
        Ok((round_trips, start.elapsed().as_secs_f64()))
    }
}
