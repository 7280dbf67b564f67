//! An echo server on tokio's `current_thread` runtime: the peer of our
//! `echo` example. One task per connection reads into a buffer and writes
//! what it read back, the way a tokio user writes an echo server.
//!
//! ```text
//! cargo build --release -p evio-peers
//! target/release/tokio_echo --port 5000
//! ```

use std::io;

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// tokio_echo: an echo server on tokio's current_thread runtime
#[derive(Parser)]
#[command(name = "tokio_echo")]
struct Flags {
    /// TCP port (0: any free port)
    #[arg(long, default_value_t = 5000)]
    port: u16,
}

fn main() -> io::Result<()> {
    let flags = Flags::parse();
    evio_peers::run(async {
        let listener = evio_peers::bind("tokio_echo", flags.port).await?;
        loop {
            // An accept error (EMFILE, a connection reset before accept)
            // ends only that accept, not the server.
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // Our server sets TCP_NODELAY on every connection: so does this
            // one, or Nagle's algorithm would hold back small replies.
            stream.set_nodelay(true)?;
            tokio::spawn(echo(stream));
        }
    })
}

/// Echoes until the client closes or an error; any error just ends the task
/// (dropping the stream closes the socket).
async fn echo(mut stream: TcpStream) {
    // In the task itself, so it lives in the task's future: one allocation
    // per connection, none per message. 16 KiB holds what 64 messages in
    // flight send many times over; bigger reads would only change how much
    // one system call carries.
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
