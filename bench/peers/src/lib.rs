//! What the two peer servers share: the runtime they run on and the ready
//! line. The servers themselves are `src/bin/tokio_echo.rs` and
//! `src/bin/tokio_http.rs`; this crate exists only to be measured against
//! evio-rs (`shared/BENCHMARKS.md`), it is no part of the library.

use std::future::Future;
use std::io;

use tokio::net::TcpListener;

/// Runs `serve` on a tokio `current_thread` runtime: one thread, one event
/// loop, the counterpart of evio-rs with `--loops 1`. Tasks spawned with
/// `tokio::spawn` run on that same thread.
pub fn run<F: Future<Output = io::Result<()>>>(serve: F) -> io::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        // `enable_io`, not `enable_all`: no timers are used, so the
        // runtime needs no time driver.
        .enable_io()
        .build()?
        .block_on(serve)
}

/// Binds `0.0.0.0:port` (0: any free port) and prints the ready line our
/// servers print, `NAME server started on port P (loops: 1)`, so that the
/// same scripts and tests can drive either.
pub async fn bind(name: &str, port: u16) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(("0.0.0.0", port)).await?;
    let port = listener.local_addr()?.port();
    println!("{name} server started on port {port} (loops: 1)");
    Ok(listener)
}
