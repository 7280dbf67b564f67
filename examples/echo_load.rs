//! An echo load generator, built on this crate's own poller: N connections,
//! each keeping K `PING\r\n` messages in flight, counting round trips.
//!
//! Chapters 3 and 7 use it to count round trips and system calls (their
//! "Run it" sections show the commands). It is one thread and one epoll instance (our
//! [`evio::poll::Poll`] used from the client side, in
//! `examples/common/load.rs`), so on its own core it can drive a server
//! harder than a thread-per-connection client could. It checks every byte
//! that comes back and prints the round-trip time's percentiles too. It
//! needs a unix system.
//!
//! With `--kv` it prints one line of `key=value` pairs instead, which the
//! benchmark driver of chapter 14 (`bench/driver/src/client.rs`) reads.
//!
//! ```text
//! cargo run --release --example echo_load -- --addr 127.0.0.1:5000 --conns 50 --inflight 1 --seconds 10
//! ```

#[cfg(unix)]
#[path = "common/load.rs"]
mod load;

#[cfg(not(unix))]
fn main() {
    eprintln!("echo_load drives this crate's poller (epoll or kqueue): it needs a unix system");
    std::process::exit(1);
}

#[cfg(unix)]
use clap::Parser;

/// echo_load: drives an echo server with PING\r\n messages
#[cfg(unix)]
#[derive(Parser)]
#[command(name = "echo_load")]
struct Flags {
    /// Server address
    #[arg(long, default_value = "127.0.0.1:5000")]
    addr: String,
    /// Connections
    #[arg(long, default_value_t = 50)]
    conns: usize,
    /// Messages in flight per connection
    #[arg(long, default_value_t = 1)]
    inflight: usize,
    /// How long to run, in seconds
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Print one line of key=value pairs (for the benchmark driver)
    #[arg(long)]
    kv: bool,
}

#[cfg(unix)]
fn main() -> std::io::Result<()> {
    let Flags {
        addr,
        conns,
        inflight,
        seconds,
        kv,
    } = Flags::parse();
    let inflight = inflight.max(1);

    let streams = (0..conns)
        .map(|_| {
            let s = std::net::TcpStream::connect(&addr)?;
            s.set_nodelay(true)?;
            Ok(s)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let out = load::PingLoad::start(streams, inflight)?.run(seconds)?;
    let (round_trips, secs) = (out.round_trips, out.secs);
    // Percentiles in microseconds.
    let us = |q: f64| out.latency.value_at_quantile(q) as f64 / 1e3;
    let (p50, p99, p999) = (us(0.5), us(0.99), us(0.999));
    let rate = round_trips as f64 / secs;
    if kv {
        println!(
            "round_trips={round_trips} seconds={secs:.3} rate={rate:.0} p50_us={p50:.1} \
             p99_us={p99:.1} p999_us={p999:.1} conns={conns} inflight={inflight}"
        );
    } else {
        println!(
            "{round_trips} round trips in {secs:.2} s: {rate:.0} round trips/s ({conns} connections, {inflight} in flight each)"
        );
        println!("round-trip time: p50 {p50:.0} µs, p99 {p99:.0} µs, p99.9 {p999:.0} µs");
    }
    Ok(())
}
