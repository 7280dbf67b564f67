//! An HTTP/1.1 server that answers `Hello World!\r\n` to every request.
//!
//! Chapter 12, "Three servers", walks through it. It is evio's
//! `examples/http-server/main.go`, with the same flags, made correct:
//! keep-alive and pipelining, requests split across reads, `Content-Length`
//! bodies, `Connection: close` and HTTP/1.0, `400`/`431`/`413` for bad input.
//! `POST /echo` sends the body back. Try it:
//!
//! ```text
//! cargo run --release --example http -- --port 8080
//! curl -v http://127.0.0.1:8080/
//! curl -d 'some data' http://127.0.0.1:8080/echo
//! ```

mod common;

use std::time::{Duration, Instant};

use evio::{Action, Conn, Events, InputStream};
use protocols::http;

// The handler's types are `pub` so that `tests/ch13_allocations.rs`, which
// includes this file as a module, can serve them and count what they allocate.
// ANCHOR: state
/// The server: what every connection shares, read-only.
pub struct Http {
    /// The response body: `Hello World!\r\n`, or 1 KiB of `a` with `--aaaa`.
    pub body: Vec<u8>,
    /// `--noparse`: answer once per read that holds a blank line, without
    /// parsing (evio's benchmark shortcut; wrong for pipelined requests).
    pub noparse: bool,
    /// How long a client may take to send a whole request once it has
    /// begun one (chapter 15): a slowloris client, one header byte every
    /// few seconds, is never idle, but it meets this deadline.
    pub request_timeout: Option<Duration>,
}

/// Each connection's state: the unparsed end of what it sent.
#[derive(Default)]
pub struct Client {
    input: InputStream,
}
// ANCHOR_END: state

// ANCHOR: data
impl Events for Http {
    type Context = Client;

    fn data(&self, c: &mut Conn<Client>, input: &[u8], out: &mut Vec<u8>) -> Action {
        let client = c.context_mut();
        // What was left over last time, followed by this read.
        let data = client.input.begin(input);
        if self.noparse {
            let (used, action) = self.noparse(data, out);
            client.input.end(input, used);
            return action;
        }
        let mut used = 0;
        let mut action = Action::None;
        // Every complete request in `data`, in order: pipelining. (Nothing
        // left is "need more" without asking `parse`.)
        while used < data.len() {
            match http::parse(&data[used..]) {
                Ok(Some(req)) => {
                    used += req.len;
                    self.respond(&req, out);
                    if !req.keep_alive {
                        action = Action::Close; // after the output is written
                        break;
                    }
                }
                // The rest is the start of a request: keep it for next time.
                Ok(None) => break,
                Err(e) => {
                    let body = e.reason().as_bytes();
                    http::append_response(out, e.status(), Some("close"), body, true);
                    (used, action) = (data.len(), Action::Close);
                    break;
                }
            }
        }
        client.input.end(input, used);
        // A request begun and not finished has until a deadline, from when
        // it began; none pending, no deadline. (A clock read only when a
        // read ends in the middle of a new request.)
        let begun = client.input.pending() > 0;
        let new_request = used > 0 || c.deadline().is_none();
        match (begun, self.request_timeout) {
            (true, Some(t)) if new_request => c.set_deadline(Some(Instant::now() + t)),
            (false, _) => c.set_deadline(None),
            _ => {}
        }
        action
    }
}
// ANCHOR_END: data

impl Http {
    // ANCHOR: respond
    /// The routes: `/echo` sends the body back, everything else gets the
    /// server's body. `HEAD` gets the headers only.
    fn respond(&self, req: &http::Request, out: &mut Vec<u8>) {
        let body = match req.path() {
            b"/echo" => req.body,
            _ => &self.body,
        };
        let send_body = req.method != b"HEAD";
        http::append_response(out, "200 OK", req.connection_header(), body, send_body);
    }
    // ANCHOR_END: respond

    /// `--noparse`: one response per read that holds the end of a head,
    /// whatever else it holds. Returns the bytes used and the action.
    fn noparse(&self, data: &[u8], out: &mut Vec<u8>) -> (usize, Action) {
        if data.windows(4).any(|w| w == b"\r\n\r\n") {
            http::append_response(out, "200 OK", None, &self.body, true);
            (data.len(), Action::None)
        } else if data.len() >= http::MAX_HEAD {
            let e = http::Error::HeadTooLarge;
            http::append_response(out, e.status(), Some("close"), e.reason().as_bytes(), true);
            (data.len(), Action::Close)
        } else {
            (0, Action::None)
        }
    }
}

use clap::Parser;

/// http: an HTTP/1.1 server on evio-rs
#[derive(Parser)]
#[command(name = "http")]
struct Flags {
    /// TCP port (0: any free port)
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Answer 1 KiB of 'a' instead of Hello World
    #[arg(long)]
    aaaa: bool,
    /// Do not parse requests: one response per read (benchmarks only)
    #[arg(long)]
    noparse: bool,
    /// Close a client that takes longer to send a whole request (0: never)
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    request_timeout: u64,
    #[command(flatten)]
    server: common::ServerFlags,
}

fn main() {
    let flags = Flags::parse();
    let body = if flags.aaaa {
        vec![b'a'; 1024]
    } else {
        b"Hello World!\r\n".to_vec()
    };
    let server = Http {
        body,
        noparse: flags.noparse,
        request_timeout: (flags.request_timeout > 0)
            .then(|| Duration::from_secs(flags.request_timeout)),
    };
    common::serve("http", flags.port, &flags.server, &server);
}
