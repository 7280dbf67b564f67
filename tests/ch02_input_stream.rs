//! evio's `TestInputStream`, in a real server: a line-based protocol whose
//! lines arrive split across writes, joined with an [`InputStream`] kept in
//! the typed connection context.
//!
//! Chapter 2, "The API", explains `InputStream` (`src/input_stream.rs`).
//! The unit tests there check every split of a buffer; this one checks it
//! across real reads: the client sends the next piece only once the server
//! has reported the partial line it keeps, so every split really happens.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{backends, config, read_line, start, wait_until, within, Client, TempDir};
use evio::{Action, Conn, Events, InputStream, LoadBalance};

#[derive(Default)]
struct Lines {
    /// Bytes the stream kept after the last `data` call, plus one (0: none yet).
    pending: AtomicUsize,
}

impl Events for Lines {
    type Context = InputStream;

    /// Replies with each complete line, upper-cased.
    fn data(&self, c: &mut Conn<InputStream>, packet: &[u8], out: &mut Vec<u8>) -> Action {
        let stream = c.context_mut();
        let data = stream.begin(packet);
        let mut used = 0;
        while let Some(nl) = data[used..].iter().position(|&b| b == b'\n') {
            out.extend(data[used..=used + nl].iter().map(u8::to_ascii_uppercase));
            used += nl + 1;
        }
        stream.end(packet, used);
        self.pending.store(stream.pending() + 1, Ordering::SeqCst);
        Action::None
    }
}

#[test]
fn ch02_input_stream_joins_lines_split_across_writes() {
    within(60, || {
        let dir = TempDir::new();
        for backend in backends() {
            for addr in ["tcp://127.0.0.1:0".to_string(), dir.unix_addr("lines.sock")] {
                let events = Arc::new(Lines::default());
                let server = start(
                    backend,
                    events.clone(),
                    config(backend, 1, LoadBalance::Random),
                    &[&addr],
                );
                let mut c = Client::connect(&server.info.addrs[0]);
                // (piece to send, line expected back, bytes the server keeps)
                let script: [(&[u8], Option<&str>, usize); 5] = [
                    (b"hel", None, 3),
                    (b"lo\nwor", Some("HELLO\n"), 3),
                    (b"ld\nfo", Some("WORLD\n"), 2),
                    (b"o", None, 3),
                    (b"\n", Some("FOO\n"), 0),
                ];
                for (piece, line, keeps) in script {
                    events.pending.store(0, Ordering::SeqCst);
                    c.write_all(piece).unwrap();
                    if let Some(line) = line {
                        assert_eq!(read_line(&mut c), line, "{addr}");
                    }
                    let what = format!("{addr}: server keeping {keeps} bytes");
                    wait_until(10, &what, || events.pending.load(Ordering::SeqCst) != 0);
                    assert_eq!(events.pending.load(Ordering::SeqCst), keeps + 1, "{what}");
                }
                server.stop(10).unwrap();
            }
        }
    });
}
