//! A minimal HTTP/1.1 keep-alive server on tokio's `current_thread`
//! runtime: the peer of our `http` example. Every request gets `200 OK` and
//! `Hello World!\r\n`, the same bytes our `http` answers `GET /` with.
//!
//! It parses just enough for a benchmark client such as `wrk`: it finds the
//! end of each head, skips a `Content-Length` body, answers every complete
//! request in a read (pipelining) with one write. It does not check the
//! request line or honour `Connection: close` (the client closes instead);
//! our `http` does, at a cost it pays here and `tokio_http` does not.
//!
//! ```text
//! cargo build --release -p evio-peers
//! target/release/tokio_http --port 8080
//! curl http://127.0.0.1:8080/
//! ```

use std::io;

use clap::Parser;
use protocols::http::{append_response, MAX_BODY, MAX_HEAD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The body of every response: our `http` example's.
const BODY: &[u8] = b"Hello World!\r\n";

/// tokio_http: a minimal HTTP/1.1 server on tokio's current_thread runtime
#[derive(Parser)]
#[command(name = "tokio_http")]
struct Flags {
    /// TCP port (0: any free port)
    #[arg(long, default_value_t = 8080)]
    port: u16,
}

fn main() -> io::Result<()> {
    let flags = Flags::parse();
    evio_peers::run(async {
        let listener = evio_peers::bind("tokio_http", flags.port).await?;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // As our server does, and as every HTTP server should: a small
            // response must not wait for Nagle's algorithm.
            stream.set_nodelay(true)?;
            tokio::spawn(serve(stream));
        }
    })
}

/// Answers requests until the client closes, sends something this server
/// cannot read (a head over 8 KiB, a body over 1 MiB, a bad length), or an
/// error; each of those just ends the task.
async fn serve(mut stream: TcpStream) {
    // `input[..filled]` holds what has arrived and is not yet answered: a
    // request may be split across reads. It starts at 4 KiB, plenty for
    // wrk's requests, and grows for long heads and bodies.
    let mut input = vec![0u8; 4096];
    let mut filled = 0;
    // The responses to one read's requests, sent with one `write_all`.
    let mut out = Vec::new();
    loop {
        if filled == input.len() {
            if input.len() >= MAX_HEAD + MAX_BODY {
                return;
            }
            input.resize(input.len() * 2, 0);
        }
        match stream.read(&mut input[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        // Every complete request, in order.
        let mut used = 0;
        loop {
            match request_len(&input[used..filled]) {
                Ok(Some(len)) => {
                    used += len;
                    append_response(&mut out, "200 OK", None, BODY, true);
                }
                Ok(None) => break,
                Err(()) => return,
            }
        }
        // Keep the start of the next request at the front.
        input.copy_within(used..filled, 0);
        filled -= used;
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// The length of the request at the start of `buf`, head and body, once all
/// of it has arrived; `Ok(None)` until then; `Err` for what this server will
/// not read.
fn request_len(buf: &[u8]) -> Result<Option<usize>, ()> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() >= MAX_HEAD {
            Err(())
        } else {
            Ok(None)
        };
    };
    let head_len = end + 4;
    if head_len > MAX_HEAD {
        return Err(());
    }
    let body_len = content_length(&buf[..end])?;
    if body_len > MAX_BODY {
        return Err(());
    }
    let len = head_len + body_len;
    Ok((buf.len() >= len).then_some(len))
}

/// The value of the head's `Content-Length` header, 0 without one. Header
/// names are case-insensitive; a value that is not a number is an error.
fn content_length(head: &[u8]) -> Result<usize, ()> {
    const NAME: &[u8] = b"content-length:";
    for line in head.split(|&b| b == b'\n') {
        if line.len() > NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME) {
            let value = std::str::from_utf8(&line[NAME.len()..]).map_err(|_| ())?;
            return value.trim().parse().map_err(|_| ());
        }
    }
    Ok(0)
}
