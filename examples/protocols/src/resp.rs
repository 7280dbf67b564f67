//! RESP2, the Redis protocol: reading commands, writing replies.
//!
//! Chapter 12, "Three servers", explains this file. It mirrors what evio's
//! redis example (`examples/redis-server/main.go`) gets from the `redcon`
//! package: `ReadNextCommand` (one command out of a buffer, or "not
//! complete") and `AppendString`, `AppendError`, `AppendBulk`, `AppendInt`,
//! `AppendNull`, `AppendArray`.
//!
//! A client sends a command in one of two forms
//! (<https://redis.io/docs/reference/protocol-spec/>):
//!
//! - *multi-bulk*, what every client library and `redis-cli` send:
//!   `*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n`, an array of length-prefixed strings;
//! - *inline*, what a person types in `telnet` or `nc`: `GET key\r\n`.
//!
//! The parser keeps its place in a [`Parser`], so a command that arrives in
//! pieces is not re-read from its start at every piece (Redis keeps the same
//! state, `multibulklen` and `bulklen`, in its `client` struct). Limits are
//! Redis's: a bulk string over 512 MB (`proto-max-bulk-len`) or an array of
//! over 1M elements is refused as soon as its length has been read, before
//! any byte of it is awaited or stored; the error messages are Redis's own.

use std::fmt;

use super::push_decimal;

/// The longest bulk string accepted: Redis's default `proto-max-bulk-len`.
pub const MAX_BULK: usize = 512 * 1024 * 1024;
/// The most arguments one command may have. Redis allows up to `INT_MAX`
/// once a client is authenticated, 1M before; we have no authentication.
pub const MAX_ARGS: usize = 1024 * 1024;
/// The longest inline command: Redis's `PROTO_INLINE_MAX_SIZE`.
pub const MAX_INLINE: usize = 64 * 1024;
/// The longest `*N` or `$N` line: a sign, 19 digits and `\r\n` fit.
const MAX_COUNT_LINE: usize = 32;

/// The errors of a `*N` line and of a `$N` line (see `count_line`).
const ARRAY_ERRORS: (ProtocolError, ProtocolError) = (
    ProtocolError::TooBigCountString,
    ProtocolError::InvalidMultibulkLength,
);
const BULK_ERRORS: (ProtocolError, ProtocolError) = (
    ProtocolError::TooBigBulkCountString,
    ProtocolError::InvalidBulkLength,
);

// ANCHOR: error
/// Input that is not RESP. The server replies `-` + this, then closes the
/// connection, as Redis does: after a framing error nothing that follows
/// can be trusted to start a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// No `\r\n` after `*`, within a sane number of bytes.
    TooBigCountString,
    /// `*` followed by something that is not a number, or over [`MAX_ARGS`].
    InvalidMultibulkLength,
    /// An array element that does not start with `$`.
    ExpectedDollar(u8),
    /// No `\r\n` after `$`, within a sane number of bytes.
    TooBigBulkCountString,
    /// `$` followed by something that is not a number, negative, or over [`MAX_BULK`].
    InvalidBulkLength,
    /// A bulk string not followed by `\r\n`.
    ExpectedCrlf,
    /// An inline command longer than [`MAX_INLINE`] bytes.
    TooBigInline,
}
// ANCHOR_END: error

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ERR Protocol error: ")?;
        match *self {
            ProtocolError::TooBigCountString => f.write_str("too big mbulk count string"),
            ProtocolError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ProtocolError::ExpectedDollar(b) if b.is_ascii_graphic() => {
                write!(f, "expected '$', got '{}'", b as char)
            }
            ProtocolError::ExpectedDollar(b) => write!(f, "expected '$', got '\\x{b:02x}'"),
            ProtocolError::TooBigBulkCountString => f.write_str("too big bulk count string"),
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtocolError::ExpectedCrlf => f.write_str("expected CRLF after bulk string"),
            ProtocolError::TooBigInline => f.write_str("too big inline request"),
        }
    }
}

// ANCHOR: parser
/// Reads commands out of a buffer, one at a time, keeping its place in a
/// command that has not fully arrived.
///
/// Contract: after [`Parser::parse`] returned `Ok(None)` ("need more"),
/// call it again with the *same* bytes followed by whatever arrived since.
/// An `evio::InputStream` whose `end` is given the number of
/// bytes of the complete commands does exactly that.
#[derive(Debug, Default)]
pub struct Parser {
    /// `(start, end)` of each argument read so far, as offsets into the buffer.
    /// Reused from command to command: after the first few commands, parsing
    /// allocates nothing. It grows one entry per argument that has *arrived*,
    /// never by the count a `*N` line announced.
    spans: Vec<(usize, usize)>,
    /// The element count of the multi-bulk being read; 0 between commands.
    want: usize,
    /// Where to resume: the offset of the next element to read.
    pos: usize,
}

/// One complete command: its arguments borrow the buffer.
#[derive(Debug)]
pub struct Command<'a> {
    buf: &'a [u8],
    spans: &'a [(usize, usize)],
    len: usize,
}
// ANCHOR_END: parser

impl<'a> Command<'a> {
    /// The number of bytes the command took in the buffer: where the next
    /// command starts.
    pub fn consumed(&self) -> usize {
        self.len
    }

    /// The number of arguments, the command's name included. Zero for an
    /// empty command (`*0\r\n` or a blank inline line), which Redis ignores.
    pub fn argc(&self) -> usize {
        self.spans.len()
    }

    /// True for an empty command.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i` (0 is the command's name). Panics if `i >= argc()`.
    pub fn arg(&self, i: usize) -> &'a [u8] {
        let (start, end) = self.spans[i];
        &self.buf[start..end]
    }

    /// All arguments, the name first.
    pub fn args(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.spans.iter().map(|&(s, e)| &self.buf[s..e])
    }
}

// ANCHOR: parse
impl Parser {
    /// Reads the next command at the start of `buf`: `Ok(Some(command))`,
    /// `Ok(None)` if `buf` ends before the command does, or the error to
    /// reply before closing.
    pub fn parse<'a>(&'a mut self, buf: &'a [u8]) -> Result<Option<Command<'a>>, ProtocolError> {
        if self.want == 0 {
            self.spans.clear();
            match buf.first() {
                None => return Ok(None),
                Some(b'*') => {
                    let Some((n, next)) = count_line(buf, 1, ARRAY_ERRORS)? else {
                        return Ok(None);
                    };
                    // The limit is checked here, on the number alone: nothing
                    // has been reserved for the elements, and nothing will be.
                    if n > MAX_ARGS as i64 {
                        return Err(ProtocolError::InvalidMultibulkLength);
                    }
                    if n <= 0 {
                        return Ok(Some(self.done(buf, next)));
                    }
                    (self.want, self.pos) = (n as usize, next);
                }
                Some(_) => return self.inline(buf),
            }
        }
        while self.spans.len() < self.want {
            let at = self.pos;
            match buf.get(at) {
                None => return Ok(None),
                Some(b'$') => {}
                Some(&b) => return Err(ProtocolError::ExpectedDollar(b)),
            }
            let Some((len, start)) = count_line(buf, at + 1, BULK_ERRORS)? else {
                return Ok(None);
            };
            if !(0..=MAX_BULK as i64).contains(&len) {
                return Err(ProtocolError::InvalidBulkLength);
            }
            // A bulk string is waited for whole: until then, `pos` stays
            // at its `$`, and the next call re-reads only its short header.
            let end = start + len as usize;
            let Some(crlf) = buf.get(end..end + 2) else {
                return Ok(None);
            };
            if crlf != b"\r\n" {
                return Err(ProtocolError::ExpectedCrlf);
            }
            self.spans.push((start, end));
            self.pos = end + 2;
        }
        let len = self.pos;
        Ok(Some(self.done(buf, len)))
    }
    // ANCHOR_END: parse

    /// Forgets any partly read command (for a caller that drops its buffer).
    pub fn reset(&mut self) {
        (self.want, self.pos) = (0, 0);
        self.spans.clear();
    }

    /// A complete command of `len` bytes; the parser is ready for the next.
    fn done<'a>(&'a mut self, buf: &'a [u8], len: usize) -> Command<'a> {
        (self.want, self.pos) = (0, 0);
        Command {
            buf,
            spans: &self.spans,
            len,
        }
    }

    // ANCHOR: inline
    /// An inline command: one line, arguments separated by spaces. Redis
    /// also understands quotes here (`sdssplitargs`); we do not.
    fn inline<'a>(&'a mut self, buf: &'a [u8]) -> Result<Option<Command<'a>>, ProtocolError> {
        // Look for the newline only in the first MAX_INLINE bytes, so the
        // answer does not depend on how the bytes were split into reads.
        let window = &buf[..buf.len().min(MAX_INLINE)];
        let Some(nl) = window.iter().position(|&b| b == b'\n') else {
            return if buf.len() >= MAX_INLINE {
                Err(ProtocolError::TooBigInline)
            } else {
                Ok(None)
            };
        };
        let mut i = 0;
        while i < nl {
            if buf[i].is_ascii_whitespace() || buf[i] == 0x0b {
                i += 1;
                continue;
            }
            let start = i;
            while i < nl && !(buf[i].is_ascii_whitespace() || buf[i] == 0x0b) {
                i += 1;
            }
            self.spans.push((start, i));
        }
        Ok(Some(self.done(buf, nl + 1)))
    }
    // ANCHOR_END: inline
}

/// Reads the number on a `*N\r\n` or `$N\r\n` line whose digits start at
/// `from`: `Ok(Some((n, offset after the \r\n)))`, or `Ok(None)` if the line
/// has not fully arrived.
/// `too_big` and `invalid` are the errors for a line that does not end
/// soon enough and for one that is not a number.
fn count_line(
    buf: &[u8],
    from: usize,
    (too_big, invalid): (ProtocolError, ProtocolError),
) -> Result<Option<(i64, usize)>, ProtocolError> {
    let window = &buf[from..buf.len().min(from + MAX_COUNT_LINE)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if buf.len() >= from + MAX_COUNT_LINE {
            Err(too_big)
        } else {
            Ok(None)
        };
    };
    match buf.get(from + cr + 1) {
        None => Ok(None),
        Some(b'\n') => match super::parse_i64(&window[..cr]) {
            Some(n) => Ok(Some((n, from + cr + 2))),
            None => Err(invalid),
        },
        Some(_) => Err(invalid),
    }
}

// ANCHOR: replies
/// `+OK\r\n`: a simple string (no `\r` or `\n` in `s`).
pub fn append_simple(out: &mut Vec<u8>, s: &str) {
    out.push(b'+');
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `-ERR message\r\n`. Line breaks in `msg` become spaces, as Redis does, so
/// that a client-chosen name echoed in an error cannot break the framing.
pub fn append_error(out: &mut Vec<u8>, msg: &str) {
    out.push(b'-');
    out.extend(
        msg.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// `:42\r\n`: an integer.
pub fn append_int(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    if n < 0 {
        out.push(b'-');
    }
    push_decimal(out, n.unsigned_abs());
    out.extend_from_slice(b"\r\n");
}

/// `$5\r\nhello\r\n`: a bulk string, any bytes.
pub fn append_bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    push_decimal(out, b.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// `$-1\r\n`: the null bulk string ("no such key").
pub fn append_null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// `*3\r\n`: the header of an array; its `n` elements follow.
pub fn append_array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    push_decimal(out, n as u64);
    out.extend_from_slice(b"\r\n");
}
// ANCHOR_END: replies

/// Encodes a command as a client sends it (multi-bulk), for tests and tools.
pub fn append_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    append_array(out, args.len());
    for a in args {
        append_bulk(out, a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evio::InputStream;
    use proptest::prelude::*;

    type Args = Vec<Vec<u8>>;

    /// Feeds `packets` through an InputStream and a Parser, exactly as the
    /// redis example does; returns the commands and the error, if any.
    fn feed(packets: &[&[u8]]) -> (Vec<Args>, Option<ProtocolError>) {
        let (mut stream, mut parser) = (InputStream::default(), Parser::default());
        let mut commands = Vec::new();
        for packet in packets {
            let data = stream.begin(packet);
            let mut used = 0;
            loop {
                match parser.parse(&data[used..]) {
                    Ok(Some(cmd)) => {
                        used += cmd.consumed();
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

    fn args(list: &[&str]) -> Args {
        list.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn ch12_resp_multibulk_and_inline_commands() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nSET  a\tb\r\n\r\n*0\r\nPING\n*1\r\n$0\r\n\r\n";
        let (cmds, err) = feed(&[input]);
        assert_eq!(err, None);
        assert_eq!(
            cmds,
            vec![
                args(&["GET", "k"]),
                args(&["SET", "a", "b"]),
                args(&[]),
                args(&[]),
                args(&["PING"]),
                args(&[""]),
            ]
        );
    }

    #[test]
    fn ch12_resp_bulk_strings_are_binary_safe() {
        let mut input = Vec::new();
        append_command(&mut input, &[b"SET", b"k", b"a\r\nb\0*$"]);
        let (cmds, err) = feed(&[&input]);
        assert_eq!((cmds.len(), err), (1, None));
        assert_eq!(cmds[0][2], b"a\r\nb\0*$");
    }

    #[test]
    fn ch12_resp_partial_input_needs_more() {
        let mut parser = Parser::default();
        for partial in [
            &b"*"[..],
            b"*2",
            b"*2\r",
            b"*2\r\n$3\r\nGE",
            b"*2\r\n$3\r\nGET\r\n$1\r",
        ] {
            parser.reset();
            assert!(matches!(parser.parse(partial), Ok(None)), "{partial:?}");
        }
    }

    #[test]
    fn ch12_resp_oversized_lengths_are_refused_before_their_data() {
        let mut p = Parser::default();
        let refused =
            |p: &mut Parser, input: &[u8]| p.parse(input).map(|c| c.map(|c| c.consumed()));
        assert_eq!(
            refused(&mut p, b"*2147483647\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        p.reset();
        assert_eq!(
            refused(&mut p, b"*1\r\n$999999999999\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        p.reset();
        assert_eq!(
            refused(&mut p, b"*1\r\n$536870913\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        // At the limit it is accepted, and simply waited for.
        p.reset();
        assert_eq!(refused(&mut p, b"*1\r\n$536870912\r\n"), Ok(None));
        assert!(
            p.spans.capacity() < 16,
            "nothing reserved for the announced sizes"
        );
        p.reset();
        assert_eq!(
            refused(&mut p, b"*1\r\n$-1\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        p.reset();
        assert_eq!(
            refused(&mut p, b"*x\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        p.reset();
        assert_eq!(
            refused(&mut p, &[b'*'; 40]),
            Err(ProtocolError::TooBigCountString)
        );
        p.reset();
        assert_eq!(
            refused(&mut p, b"*1\r\n+OK\r\n"),
            Err(ProtocolError::ExpectedDollar(b'+'))
        );
        p.reset();
        assert_eq!(
            refused(&mut p, b"*1\r\n$2\r\nabc\r\n"),
            Err(ProtocolError::ExpectedCrlf)
        );
        p.reset();
        assert_eq!(
            refused(&mut p, &vec![b'a'; MAX_INLINE]),
            Err(ProtocolError::TooBigInline)
        );
    }

    #[test]
    fn ch12_resp_error_messages_are_redis_s() {
        assert_eq!(
            ProtocolError::InvalidBulkLength.to_string(),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            ProtocolError::ExpectedDollar(1).to_string(),
            "ERR Protocol error: expected '$', got '\\x01'"
        );
    }

    // ANCHOR: slow_array
    /// Sends an array of `n` one-byte elements, announced up front, one
    /// element per read, and returns the time the parser took. With
    /// `resume: false` the parser forgets its place before every call, as a
    /// stateless parser does (redcon's `ReadNextCommand`, which evio's
    /// example uses): each read then costs every element received so far.
    fn one_element_per_read(n: usize, resume: bool) -> std::time::Duration {
        let (mut stream, mut parser) = (InputStream::default(), Parser::default());
        let header = format!("*{n}\r\n");
        let start = std::time::Instant::now();
        let mut got = None;
        for i in 0..=n {
            let piece = if i == 0 {
                header.as_bytes()
            } else {
                b"$1\r\nx\r\n"
            };
            let data = stream.begin(piece);
            if !resume {
                parser.reset();
            }
            let used = match parser.parse(data) {
                Ok(Some(cmd)) => {
                    got = Some(cmd.argc());
                    cmd.consumed()
                }
                Ok(None) => 0,
                Err(e) => panic!("{e}"),
            };
            stream.end(piece, used);
        }
        assert_eq!(got, Some(n));
        start.elapsed()
    }

    #[test]
    fn ch12_resp_a_partial_command_is_not_reread_from_its_start() {
        let n = 4_000;
        let (resumed, reread) = (
            one_element_per_read(n, true),
            one_element_per_read(n, false),
        );
        println!(
            "{n} elements, one per read: resumed {resumed:?}, re-read from the start {reread:?}"
        );
        // n reads of one element each, against n * n / 2 element reads.
        assert!(reread > resumed * 20, "{resumed:?} vs {reread:?}");
        // And it stays linear: 100,000 elements one by one, in well under
        // a second (re-reading would take minutes).
        let big = one_element_per_read(100_000, true);
        assert!(big.as_secs() < 10, "{big:?}");
    }
    // ANCHOR_END: slow_array

    #[test]
    fn ch12_resp_replies() {
        let mut out = Vec::new();
        append_simple(&mut out, "OK");
        append_error(&mut out, "ERR bad\r\nname");
        append_int(&mut out, -42);
        append_int(&mut out, i64::MIN);
        append_bulk(&mut out, b"hi");
        append_null(&mut out);
        append_array(&mut out, 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+OK\r\n-ERR bad  name\r\n:-42\r\n:-9223372036854775808\r\n$2\r\nhi\r\n$-1\r\n*2\r\n"
        );
    }

    /// A command and how to send it.
    fn command() -> impl Strategy<Value = (Args, bool)> {
        prop_oneof![
            // Multi-bulk: any bytes at all, empty arguments included.
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..5)
                .prop_map(|a| (a, false)),
            // Inline: words without whitespace, not starting with `*`.
            proptest::collection::vec("[a-zA-Z0-9:_$+-]{1,8}", 1..5).prop_map(|w| {
                let a: Args = w.into_iter().map(String::into_bytes).collect();
                (a, true)
            }),
        ]
        .prop_filter("inline must not start with *", |(a, inline)| {
            !*inline || a[0][0] != b'*'
        })
    }

    fn encode(cmds: &[(Args, bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (a, inline) in cmds {
            if *inline {
                out.extend_from_slice(&a.join(&b' '));
                out.extend_from_slice(b"\r\n");
            } else {
                let refs: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
                append_command(&mut out, &refs);
            }
        }
        out
    }

    proptest! {
        #[test]
        fn ch12_resp_every_split_gives_the_same_commands(
            cmds in proptest::collection::vec(command(), 1..6),
        ) {
            let input = encode(&cmds);
            let want: Vec<Args> = cmds.iter().map(|(a, _)| a.clone()).collect();
            prop_assert_eq!(feed(&[&input]), (want.clone(), None));
            for i in 0..=input.len() {
                prop_assert_eq!(feed(&[&input[..i], &input[i..]]), (want.clone(), None), "split at {}", i);
            }
        }

        #[test]
        fn ch12_resp_random_bytes_never_panic_and_split_the_same(
            input in proptest::collection::vec(any::<u8>(), 0..200),
            cut in any::<proptest::sample::Index>(),
        ) {
            let i = cut.index(input.len() + 1);
            prop_assert_eq!(feed(&[&input[..i], &input[i..]]), feed(&[&input]));
        }

        #[test]
        fn ch12_resp_random_chunks_of_resp_like_bytes_split_the_same(
            input in proptest::collection::vec(
                prop_oneof![Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'1'), Just(b'2'), Just(b'a'), Just(b' ')],
                0..60,
            ),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            points.sort_unstable();
            let mut packets = Vec::new();
            let mut last = 0;
            for p in points {
                packets.push(&input[last..p]);
                last = p;
            }
            packets.push(&input[last..]);
            prop_assert_eq!(feed(&packets), feed(&[&input]));
        }
    }
}
