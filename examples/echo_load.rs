//! An echo load generator, built on this crate's own poller: N connections,
//! each keeping K `PING\r\n` messages in flight, counting round trips.
//!
//! Chapter 14, "Benchmarks", explains how it is used; it is the echo client
//! of `../shared/BENCHMARKS.md`. It is one thread and one epoll instance (our
//! [`evio::poll::Poll`] used from the client side), so on its own core it
//! can drive a server harder than a thread-per-connection client could.
//!
//! ```text
//! cargo run --release --example echo_load -- --addr 127.0.0.1:5000 --conns 50 --inflight 1 --seconds 10
//! ```

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use evio::poll::{DefaultPoll, Event, Interest, Poll};

const MSG: &[u8] = b"PING\r\n";

fn main() -> std::io::Result<()> {
    let flags = common::Flags::parse(
        "echo_load: drives an echo server with PING\\r\\n messages\n\n\
         Usage: cargo run --release --example echo_load -- [flags]",
        &[
            ("addr", true, "server address [default: 127.0.0.1:5000]"),
            ("conns", true, "connections [default: 50]"),
            (
                "inflight",
                true,
                "messages in flight per connection [default: 1]",
            ),
            ("seconds", true, "how long to run [default: 10]"),
        ],
    );
    let addr: String = flags.get("addr", "127.0.0.1:5000".to_string());
    let conns: usize = flags.get("conns", 50);
    let inflight: usize = flags.get::<usize>("inflight", 1).max(1);
    let seconds: f64 = flags.get("seconds", 10.0);

    let mut poll = DefaultPoll::new()?;
    let mut streams = Vec::with_capacity(conns);
    // Bytes received per connection that do not yet make a whole message.
    let mut partial = vec![0usize; conns];
    let burst = MSG.repeat(inflight);
    for _ in 0..conns {
        let mut s = TcpStream::connect(&addr)?;
        s.set_nodelay(true)?;
        s.write_all(&burst)?;
        s.set_nonblocking(true)?;
        poll.add(s.as_raw_fd(), Interest::READ)?;
        streams.push(s);
    }
    // Connection index by fd, as the server's loop keeps its connections.
    let max_fd = streams.iter().map(|s| s.as_raw_fd()).max().unwrap_or(0) as usize;
    let mut by_fd = vec![usize::MAX; max_fd + 1];
    for (i, s) in streams.iter().enumerate() {
        by_fd[s.as_raw_fd() as usize] = i;
    }

    let mut buf = vec![0u8; 64 * 1024];
    let mut replies = MSG.repeat(64 * 1024 / MSG.len());
    let mut events: Vec<Event> = Vec::new();
    let mut round_trips: u64 = 0;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        poll.wait(&mut events, Some(Duration::from_millis(100)))?;
        for ev in &events {
            let i = by_fd[ev.fd as usize];
            let n = match streams[i].read(&mut buf) {
                Ok(0) => return Err(std::io::Error::other("server closed a connection")),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            partial[i] += n;
            let whole = partial[i] / MSG.len();
            partial[i] %= MSG.len();
            round_trips += whole as u64;
            // Send one new message for every one that came back, keeping
            // `inflight` messages in flight on this connection.
            if replies.len() < whole * MSG.len() {
                replies = MSG.repeat(whole);
            }
            streams[i].write_all(&replies[..whole * MSG.len()])?;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{round_trips} round trips in {secs:.2} s: {:.0} round trips/s ({conns} connections, {inflight} in flight each)",
        round_trips as f64 / secs
    );
    Ok(())
}
