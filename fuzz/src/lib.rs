//! What the fuzz targets check, as plain functions over the fuzzer's bytes:
//! each panics on a defect (a panic in the code under test, or a property
//! that does not hold), which libFuzzer reports as a crash.
//!
//! Chapter 15, "What a server owes its clients", explains this file in its
//! section "Fuzzing the parsers". The targets in `fuzz/fuzz_targets/` call
//! these functions on the nightly compiler; `tests/ch15_fuzz_corpus.rs`
//! includes this file and calls them on every seed in `fuzz/seeds/`, on the
//! stable compiler, in a plain `cargo test`.
//!
//! Beyond "never panics", each parser must give the same answer however its
//! input is cut into reads, as a server sees it: whole, and in three pieces
//! cut at places the input itself chooses (a hash of it), fed through an
//! [`InputStream`] exactly as the example servers feed it.

use evio::internals::ListenAddr;
use evio::InputStream;
use protocols::{http as h, resp};

/// Two cut points in `0..=len`, chosen by a hash of the input (FNV-1a), so
/// that a seed file is plain input, with no prefix to steer the cuts, and
/// every run cuts it the same way.
fn cuts(data: &[u8]) -> (usize, usize) {
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let n = data.len() as u64 + 1;
    let (a, b) = ((hash % n) as usize, ((hash >> 32) % n) as usize);
    (a.min(b), a.max(b))
}

/// The input whole, then in the three pieces `cuts` chooses.
fn splits(data: &[u8]) -> [Vec<&[u8]>; 2] {
    let (a, b) = cuts(data);
    [vec![data], vec![&data[..a], &data[a..b], &data[b..]]]
}

// ANCHOR: addr
/// Any text as a listen address: parsing never panics, and a refusal is an
/// `InvalidInput` error that quotes the address.
pub fn addr(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ListenAddr::parse(text) {
        Ok(addr) => {
            // Parsing is a function of the text: the same text, the same address.
            assert_eq!(ListenAddr::parse(text).unwrap(), addr);
        }
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{text:?}: {e}");
            assert!(
                e.to_string().contains(&format!("{text:?}")),
                "{text:?}: {e}"
            );
        }
    }
}
// ANCHOR_END: addr

/// Lines out of `packets` through an [`InputStream`], and what is left.
fn lines(packets: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
    let mut stream = InputStream::default();
    let mut lines = Vec::new();
    for packet in packets {
        let data = stream.begin(packet);
        let mut used = 0;
        while let Some(nl) = data[used..].iter().position(|&b| b == b'\n') {
            lines.push(data[used..used + nl].to_vec());
            used += nl + 1;
        }
        stream.end(packet, used);
    }
    (lines, stream.pending())
}

/// An [`InputStream`] joins pieces back into the input: the lines found in
/// the pieces are the input's lines, and what is kept is its last,
/// unfinished line.
pub fn input_stream(data: &[u8]) {
    let mut want: Vec<Vec<u8>> = data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let rest = want.pop().map_or(0, |last| last.len());
    for packets in splits(data) {
        assert_eq!(lines(&packets), (want.clone(), rest), "cut as {packets:?}");
    }
}

/// What a server sees of an HTTP stream: each request's method, target,
/// body and keep-alive, then the error that ended it, if any.
type HttpSeen = (Vec<(Vec<u8>, Vec<u8>, Vec<u8>, bool)>, Option<h::Error>);

fn http_feed(packets: &[&[u8]]) -> HttpSeen {
    let mut stream = InputStream::default();
    let mut seen = Vec::new();
    for packet in packets {
        let data = stream.begin(packet);
        let mut used = 0;
        loop {
            match h::parse(&data[used..]) {
                Ok(Some(r)) => {
                    assert!(
                        r.len > 0 && used + r.len <= data.len(),
                        "request length {}",
                        r.len
                    );
                    used += r.len;
                    let body = r.body.to_vec();
                    seen.push((r.method.to_vec(), r.target.to_vec(), body, r.keep_alive));
                }
                Ok(None) => break,
                Err(e) => return (seen, Some(e)),
            }
        }
        stream.end(packet, used);
    }
    (seen, None)
}

// ANCHOR: http
/// Any bytes as an HTTP/1.1 stream: no panic, every request takes bytes
/// (no endless loop), and the same requests and error however it is cut.
pub fn http(data: &[u8]) {
    let [whole, pieces] = splits(data);
    assert_eq!(http_feed(&pieces), http_feed(&whole), "cut as {pieces:?}");
}
// ANCHOR_END: http

/// The commands a server sees of a RESP stream, then the error, if any.
type RespSeen = (Vec<Vec<Vec<u8>>>, Option<resp::ProtocolError>);

fn resp_feed(packets: &[&[u8]]) -> RespSeen {
    let (mut stream, mut parser) = (InputStream::default(), resp::Parser::default());
    let mut commands = Vec::new();
    for packet in packets {
        let data = stream.begin(packet);
        let mut used = 0;
        loop {
            match parser.parse(&data[used..]) {
                Ok(Some(cmd)) => {
                    let n = cmd.consumed();
                    assert!(n > 0 && used + n <= data.len(), "command length {n}");
                    used += n;
                    commands.push(cmd.args().map(<[u8]>::to_vec).collect());
                }
                Ok(None) => break,
                Err(e) => return (commands, Some(e)),
            }
        }
        stream.end(packet, used);
    }
    (commands, None)
}

/// Any bytes as a RESP stream: as for [`http`].
pub fn resp(data: &[u8]) {
    let [whole, pieces] = splits(data);
    assert_eq!(resp_feed(&pieces), resp_feed(&whole), "cut as {pieces:?}");
}
