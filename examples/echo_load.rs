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

mod common;

#[cfg(not(unix))]
fn main() {
    eprintln!("echo_load drives this crate's poller (epoll or kqueue): it needs a unix system");
    std::process::exit(1);
}

#[cfg(unix)]
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

    let streams = (0..conns)
        .map(|_| {
            let s = std::net::TcpStream::connect(&addr)?;
            s.set_nodelay(true)?;
            Ok(s)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let (round_trips, secs) = common::load::PingLoad::start(streams, inflight)?.run(seconds)?;
    println!(
        "{round_trips} round trips in {secs:.2} s: {:.0} round trips/s ({conns} connections, {inflight} in flight each)",
        round_trips as f64 / secs
    );
    Ok(())
}
