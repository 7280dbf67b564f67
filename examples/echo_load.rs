//! An echo load generator, built on this crate's own poller: N connections,
//! each keeping K `PING\r\n` messages in flight, counting round trips.
//!
//! Chapters 3 and 7 use it to count round trips and system calls (their
//! "Run it" sections show the commands). It is one thread and one epoll instance (our
//! [`evio::poll::Poll`] used from the client side, in
//! `examples/common/load.rs`), so on its own core it can drive a server
//! harder than a thread-per-connection client could. It needs a unix system.
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
}

#[cfg(unix)]
fn main() -> std::io::Result<()> {
    let Flags {
        addr,
        conns,
        inflight,
        seconds,
    } = Flags::parse();
    let inflight = inflight.max(1);

    let streams = (0..conns)
        .map(|_| {
            let s = std::net::TcpStream::connect(&addr)?;
            s.set_nodelay(true)?;
            Ok(s)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let (round_trips, secs) = load::PingLoad::start(streams, inflight)?.run(seconds)?;
    println!(
        "{round_trips} round trips in {secs:.2} s: {:.0} round trips/s ({conns} connections, {inflight} in flight each)",
        round_trips as f64 / secs
    );
    Ok(())
}
