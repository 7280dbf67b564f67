//! HTTP/1.1 requests in, responses out: just enough for a fast, correct server.
//!
//! Chapter 12, "Three servers", explains this file. It mirrors `parsereq`
//! and `appendresp` in evio's `examples/http-server/main.go`, and fixes what
//! they skip: evio's parser turns the head into a `string` (a copy per
//! request), accepts any bytes as a method or header, answers bad input with
//! `500`, has no size limit (a client that never sends the blank line makes
//! it buffer forever), and ignores `Connection: close` and HTTP/1.0.
//!
//! Here [`parse`] reads a request from a byte slice without copying or
//! allocating: the [`Request`] borrows the slice. It follows RFC 9112
//! ("HTTP/1.1", <https://www.rfc-editor.org/rfc/rfc9112>) where it matters
//! for a server: tokens are checked, a header name must touch its colon,
//! an HTTP/1.1 request needs a `Host`, no request may have two or an
//! invalid one (chapter 15), `Content-Length` must be one plain
//! number, and a body sent with `Transfer-Encoding` is refused (`501`)
//! rather than misread. Bad input is a [`Error`] with a real status code.

use super::push_decimal;

/// The largest request head (request line and headers) accepted; a longer
/// one gets `431`. nginx's default buffer for a head is 8 KiB too
/// (`large_client_header_buffers 4 8k`, per line).
pub const MAX_HEAD: usize = 8 * 1024;
/// The largest body accepted, since the server buffers it whole; a
/// longer one gets `413` as soon as its `Content-Length` is read.
pub const MAX_BODY: usize = 1024 * 1024;

/// The protocol version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: the connection closes after the response, unless the
    /// request says `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: the connection stays open, unless a side says `Connection: close`.
    Http11,
}

// ANCHOR: request
/// A complete request; every field borrows the parsed buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// `GET`, `POST`, ... (case-sensitive, as RFC 9110 says).
    pub method: &'a [u8],
    /// The request target, query included: `/index.html?x=1`.
    pub target: &'a [u8],
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header lines, raw; [`Request::headers`] splits them.
    header_block: &'a [u8],
    /// The body: `Content-Length` bytes after the head.
    pub body: &'a [u8],
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Head and body: the bytes this request took from the buffer.
    pub len: usize,
}
// ANCHOR_END: request

/// Why a request was refused; each maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// `400 Bad Request`, with what was wrong.
    BadRequest(&'static str),
    /// `431 Request Header Fields Too Large`: no end of head within [`MAX_HEAD`].
    HeadTooLarge,
    /// `413 Content Too Large`: a `Content-Length` over [`MAX_BODY`].
    BodyTooLarge,
    /// `501 Not Implemented`: `Transfer-Encoding` (chunked bodies).
    NotImplemented,
    /// `505 HTTP Version Not Supported`: `HTTP/2.0`, `HTTP/0.9`, ...
    VersionNotSupported,
}

impl Error {
    /// The status line's code and reason phrase.
    pub fn status(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "400 Bad Request",
            Error::HeadTooLarge => "431 Request Header Fields Too Large",
            Error::BodyTooLarge => "413 Content Too Large",
            Error::NotImplemented => "501 Not Implemented",
            Error::VersionNotSupported => "505 HTTP Version Not Supported",
        }
    }

    /// A one-line explanation, sent as the response body.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::BadRequest(why) => why,
            Error::HeadTooLarge => "request head too large\n",
            Error::BodyTooLarge => "request body too large\n",
            Error::NotImplemented => "transfer-encoding is not supported\n",
            Error::VersionNotSupported => "only HTTP/1.0 and HTTP/1.1 are supported\n",
        }
    }
}

impl<'a> Request<'a> {
    /// The path: the target up to a `?`.
    pub fn path(&self) -> &'a [u8] {
        self.target
            .split(|&b| b == b'?')
            .next()
            .unwrap_or(self.target)
    }

    /// The query: the target after the first `?`, if any.
    pub fn query(&self) -> Option<&'a [u8]> {
        let q = self.target.iter().position(|&b| b == b'?')?;
        Some(&self.target[q + 1..])
    }

    /// The headers, as `(name, value)` with the value's surrounding blanks
    /// trimmed, in the order sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let mut rest = self.header_block;
        std::iter::from_fn(move || {
            let (line, after) = next_line(rest)?;
            rest = after;
            split_header(line)
        })
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The `Connection` header the response needs, if any: `close` when
    /// the connection will close, `keep-alive` for an HTTP/1.0 client that
    /// asked to keep it (HTTP/1.0 closes by default, so it must be told).
    pub fn connection_header(&self) -> Option<&'static str> {
        match (self.keep_alive, self.version) {
            (false, _) => Some("close"),
            (true, Version::Http10) => Some("keep-alive"),
            (true, Version::Http11) => None,
        }
    }
}

// ANCHOR: parse
/// Reads one request from the start of `buf`. `Ok(None)`: the request has
/// not fully arrived; call again with more bytes. Lines end in `\r\n`; a
/// bare `\n` is accepted too, as RFC 9112 allows and `nc` sends.
///
/// Lines are checked as soon as they are complete, in order, so garbage is
/// refused at once, and the outcome never depends on how the bytes were
/// split into reads: a prefix gives either "need more" or the same answer
/// as the whole.
pub fn parse(buf: &[u8]) -> Result<Option<Request<'_>>, Error> {
    // Only the first MAX_HEAD bytes may hold the head.
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let need_more = || {
        if buf.len() >= MAX_HEAD {
            Err(Error::HeadTooLarge)
        } else {
            Ok(None)
        }
    };
    // Empty lines before a request are skipped (RFC 9112, section 2.2).
    let mut rest = window;
    while let Some(after) = rest
        .strip_prefix(b"\r\n")
        .or_else(|| rest.strip_prefix(b"\n"))
    {
        rest = after;
    }
    let Some((line, after)) = next_line(rest) else {
        check_partial_request_line(rest)?;
        return need_more();
    };
    let (method, target, version) = request_line(line)?;
    rest = after;
    let headers_start = window.len() - rest.len();
    let mut content_length: Option<usize> = None;
    let (mut close, mut keep_alive, mut host) = (false, false, false);
    loop {
        let Some((line, after)) = next_line(rest) else {
            return need_more();
        };
        rest = after;
        if line.is_empty() {
            break;
        }
        let (name, value) =
            split_header(line).ok_or(Error::BadRequest("malformed header line\n"))?;
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_length(value).ok_or(Error::BadRequest("bad content-length\n"))?;
            if content_length.is_some_and(|old| old != n) {
                return Err(Error::BadRequest("conflicting content-length\n"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(Error::NotImplemented);
        } else if name.eq_ignore_ascii_case(b"host") {
            // RFC 9112, section 3.2: 400 for "more than one Host header
            // field line or a Host header field with an invalid field value".
            if host {
                return Err(Error::BadRequest("more than one host header\n"));
            }
            if !valid_host(value) {
                return Err(Error::BadRequest("invalid host header\n"));
            }
            host = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let head_len = window.len() - rest.len();
    // RFC 9112, section 3.2: "A server MUST respond with a 400 (Bad
    // Request) status code to any HTTP/1.1 request message that lacks a
    // Host header field".
    if version == Version::Http11 && !host {
        return Err(Error::BadRequest("missing host header\n"));
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > MAX_BODY {
        return Err(Error::BodyTooLarge);
    }
    let Some(body) = buf.get(head_len..head_len + body_len) else {
        return Ok(None);
    };
    Ok(Some(Request {
        method,
        target,
        version,
        header_block: &window[headers_start..head_len],
        body,
        keep_alive: match version {
            Version::Http11 => !close,
            Version::Http10 => keep_alive && !close,
        },
        len: head_len + body_len,
    }))
}
// ANCHOR_END: parse

/// The first line of `buf` without its `\n` (and `\r`), and what follows.
fn next_line(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let nl = find_newline(buf)?;
    let line = &buf[..nl];
    Some((line.strip_suffix(b"\r").unwrap_or(line), &buf[nl + 1..]))
}

// ANCHOR: find_newline
/// Where the first `\n` of `buf` is: `buf.iter().position(|&b| b == b'\n')`,
/// eight bytes at a time. Every byte of a head is searched this way, and
/// one at a time costs five instructions a byte; this costs eleven per
/// eight bytes, with the trick glibc's `memchr` and Rust's `core` use
/// (chapter 14 counts the difference).
fn find_newline(buf: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut chunks = buf.chunks_exact(8);
    let mut start = 0;
    for chunk in &mut chunks {
        // XOR makes each `\n` a zero byte. Subtracting 1 from every byte
        // sets the high bit of a zero byte (0 - 1 = 0xff), and of a byte
        // over 0x80, which `!word` rules out; a borrow from a zero byte may
        // also flag the byte after it, so only the first flag is sure:
        // the lowest, with the bytes read little-endian.
        let word = u64::from_le_bytes(chunk.try_into().unwrap()) ^ (ONES * u64::from(b'\n'));
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(start + zeros.trailing_zeros() as usize / 8);
        }
        start += 8;
    }
    let rest = chunks.remainder().iter().position(|&b| b == b'\n')?;
    Some(start + rest)
}
// ANCHOR_END: find_newline

// ANCHOR: classes
/// A token character (RFC 9110, section 5.6.2): what methods and header
/// names are made of.
const TOKEN: u8 = 1;
/// Visible ASCII, no blank, no control byte, nothing over 0x7e: what a
/// request target is made of.
const VISIBLE: u8 = 2;
/// What a field value may hold (RFC 9110, section 5.5): visible bytes,
/// blanks and bytes >= 0x80; no control byte other than a tab (a stray `\r`
/// would let a header smuggle in a line break).
const FIELD: u8 = 4;
/// Unreserved or a sub-delimiter (RFC 3986): what a `Host` name is made of,
/// besides `%XX` escapes.
const HOST: u8 = 8;

/// Which of the classes above each byte belongs to, one bit per class.
/// Every byte of a request goes through several of these checks, and as
/// comparisons they cost a chain of them per byte (a token character was
/// "alphanumeric, or one of these 15 symbols", found by searching them);
/// a table made at compile time from the same rules answers each check
/// with one load and one test. Chapter 14 counts the difference.
static CLASSES: [u8; 256] = {
    const fn one_of(b: u8, set: &[u8]) -> bool {
        let mut i = 0;
        while i < set.len() {
            if set[i] == b {
                return true;
            }
            i += 1;
        }
        false
    }
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut class = 0;
        if b.is_ascii_alphanumeric() || one_of(b, b"!#$%&'*+-.^_`|~") {
            class |= TOKEN;
        }
        if b.is_ascii_graphic() {
            class |= VISIBLE;
        }
        if !((b < 0x20 && b != b'\t') || b == 0x7f) {
            class |= FIELD;
        }
        if b.is_ascii_alphanumeric() || one_of(b, b"-._~!$&'()*+,;=") {
            class |= HOST;
        }
        table[i] = class;
        i += 1;
    }
    table
};

/// Whether every byte of `s` is in `class`.
fn all_in(s: &[u8], class: u8) -> bool {
    s.iter().all(|&b| CLASSES[usize::from(b)] & class != 0)
}
// ANCHOR_END: classes

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// `METHOD SP target SP HTTP/1.x`.
fn request_line(line: &[u8]) -> Result<(&[u8], &[u8], Version), Error> {
    let bad = Error::BadRequest("malformed request line\n");
    // At most three parts: a space after the second lands in `version`,
    // which the `match` below then refuses, so the version's bytes need no
    // search for a fourth part.
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    if method.is_empty() || !all_in(method, TOKEN) {
        return Err(bad);
    }
    if target.is_empty() || !all_in(target, VISIBLE) {
        return Err(bad);
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(Error::VersionNotSupported)
        }
        _ => return Err(bad),
    };
    Ok((method, target, version))
}

/// A request line that has not fully arrived: refuse it at once if what
/// arrived cannot start one (binary garbage, a TLS handshake), instead of
/// waiting for 8 KiB. Only the method, up to the first space, is checked:
/// exactly what [`request_line`] would refuse later anyway.
fn check_partial_request_line(partial: &[u8]) -> Result<(), Error> {
    let method_end = partial
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(partial.len());
    let method = &partial[..method_end];
    // A lone `\r` at the end may be the start of the line's `\r\n`.
    let method = method.strip_suffix(b"\r").unwrap_or(method);
    let empty_method = partial.first() == Some(&b' ');
    if empty_method || !all_in(method, TOKEN) {
        Err(Error::BadRequest("malformed request line\n"))
    } else {
        Ok(())
    }
}

/// `Name: value` → `(name, value)`; `None` if the line is not a header.
fn split_header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    // The name is token characters, and the first byte after them must be
    // the colon: no blank between name and colon (RFC 9112, section 5.1),
    // which also refuses obsolete line folding (a line starting with a
    // blank). One pass finds the colon and checks the name.
    let colon = line
        .iter()
        .position(|&b| CLASSES[usize::from(b)] & TOKEN == 0)?;
    if colon == 0 || line[colon] != b':' {
        return None;
    }
    let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
    if !all_in(value, FIELD) {
        return None;
    }
    Some((name, value))
}

// ANCHOR: valid_host
/// A `Host` value: `uri-host [ ":" port ]` (RFC 9110, section 7.2, with
/// RFC 3986's grammar): a name or IPv4 address of unreserved characters,
/// `%XX` escapes and sub-delimiters, or an IPv6 address in brackets; then
/// digits after a colon. Empty is allowed (a target with no authority).
fn valid_host(v: &[u8]) -> bool {
    let unreserved_or_sub = |b: u8| CLASSES[usize::from(b)] & HOST != 0;
    let port = if let Some(rest) = v.strip_prefix(b"[") {
        let Some(end) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &rest[..end];
        if literal.is_empty() || !literal.iter().all(|&b| unreserved_or_sub(b) || b == b':') {
            return false;
        }
        &rest[end + 1..]
    } else {
        // The name up to the first colon, checked as it is searched for:
        // a colon is neither unreserved, a sub-delimiter nor a hex digit.
        let mut i = 0;
        while i < v.len() {
            match v[i] {
                b if unreserved_or_sub(b) => i += 1,
                // Every `%` starts an escape of two hex digits.
                b'%' if v.len() > i + 2
                    && v[i + 1].is_ascii_hexdigit()
                    && v[i + 2].is_ascii_hexdigit() =>
                {
                    i += 3
                }
                b':' => break,
                _ => return false,
            }
        }
        &v[i..]
    };
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}
// ANCHOR_END: valid_host

/// A `Content-Length` value: digits only, at most 18 of them (so that it
/// cannot overflow), a single number (RFC 9110, section 8.6).
fn parse_length(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n, &d| n * 10 + usize::from(d - b'0')))
}

// ANCHOR: response
/// Appends a whole response: status line, `Server`, `Date`,
/// `Content-Length`, an optional `Connection`, then the body (left out for
/// `HEAD`, whose response has the length but not the bytes).
pub fn append_response(
    out: &mut Vec<u8>,
    status: &str,
    connection: Option<&str>,
    body: &[u8],
    send_body: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\nServer: evio-rs\r\nDate: ");
    out.extend_from_slice(&date_now());
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, body.len() as u64);
    if let Some(c) = connection {
        out.extend_from_slice(b"\r\nConnection: ");
        out.extend_from_slice(c.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
    if send_body {
        out.extend_from_slice(body);
    }
}
// ANCHOR_END: response

// ANCHOR: date
/// The `Date` header's value for now, formatted at most once a second per
/// thread (each loop is a thread): evio formats it for every response.
pub fn date_now() -> [u8; 29] {
    use std::cell::Cell;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    thread_local! {
        /// The second last formatted, `from..until`, and its text.
        static SECOND: Cell<(SystemTime, SystemTime)> = const { Cell::new((UNIX_EPOCH, UNIX_EPOCH)) };
        static TEXT: Cell<[u8; 29]> = const { Cell::new([0; 29]) };
    }
    let now = SystemTime::now();
    // Two comparisons of times are all most responses cost: turning `now`
    // into seconds (`duration_since`) costs twice as much as reading the
    // clock, and is done once a second instead. A range, not just its end,
    // so that a clock set back is followed at once.
    if SECOND.get().0 <= now && now < SECOND.get().1 {
        return TEXT.get();
    }
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let from = UNIX_EPOCH + Duration::from_secs(secs);
    let text = format_date(secs);
    SECOND.set((from, from + Duration::from_secs(1)));
    TEXT.set(text);
    text
}
// ANCHOR_END: date

/// Formats Unix time as an HTTP date, `Sun, 06 Nov 1994 08:49:37 GMT`
/// (RFC 9110, section 5.6.7), with no allocation.
pub fn format_date(unix_secs: u64) -> [u8; 29] {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    // Civil date from a day count, after Howard Hinnant's `civil_from_days`
    // (https://howardhinnant.github.io/date_algorithms.html), for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    // 1970-01-01 was a Thursday.
    let weekday = &b"ThuFriSatSunMonTueWed"[(days % 7) as usize * 3..][..3];
    let month_name = &b"JanFebMarAprMayJunJulAugSepOctNovDec"[(month as usize - 1) * 3..][..3];
    let mut d = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    d[..3].copy_from_slice(weekday);
    let two = |d: &mut [u8; 29], at: usize, n: u64| {
        d[at] = b'0' + (n / 10 % 10) as u8;
        d[at + 1] = b'0' + (n % 10) as u8;
    };
    two(&mut d, 5, day);
    d[8..11].copy_from_slice(month_name);
    two(&mut d, 12, year / 100);
    two(&mut d, 14, year % 100);
    two(&mut d, 17, secs / 3600);
    two(&mut d, 20, secs / 60 % 60);
    two(&mut d, 23, secs % 60);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use evio::InputStream;
    use proptest::prelude::*;

    /// What a server would see: each request's method, target, body and
    /// keep-alive, then the error that ended the stream, if any.
    type Seen = (Vec<(Vec<u8>, Vec<u8>, Vec<u8>, bool)>, Option<Error>);

    /// Feeds `packets` through an InputStream and `parse`, as the http
    /// example does.
    fn feed(packets: &[&[u8]]) -> Seen {
        let mut stream = InputStream::default();
        let mut seen = Vec::new();
        for packet in packets {
            let data = stream.begin(packet);
            let mut used = 0;
            loop {
                match parse(&data[used..]) {
                    Ok(Some(r)) => {
                        used += r.len;
                        seen.push((
                            r.method.to_vec(),
                            r.target.to_vec(),
                            r.body.to_vec(),
                            r.keep_alive,
                        ));
                    }
                    Ok(None) => break,
                    Err(e) => return (seen, Some(e)),
                }
            }
            stream.end(packet, used);
        }
        (seen, None)
    }

    fn one(input: &[u8]) -> Result<Option<Request<'_>>, Error> {
        parse(input)
    }

    #[test]
    fn ch12_http_parses_a_get() {
        let input = b"GET /hello?x=1 HTTP/1.1\r\nHost: a\r\nAccept:  */* \r\n\r\nNEXT";
        let r = one(input).unwrap().unwrap();
        assert_eq!(r.method, b"GET");
        assert_eq!(r.path(), b"/hello");
        assert_eq!(r.query(), Some(&b"x=1"[..]));
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.header("accept"), Some(&b"*/*"[..]));
        assert_eq!(r.headers().count(), 2);
        assert!(r.keep_alive);
        assert_eq!(r.connection_header(), None);
        assert_eq!(&input[r.len..], b"NEXT");
    }

    #[test]
    fn ch12_http_keep_alive_rules() {
        let ka = |s: &[u8]| one(s).unwrap().unwrap().keep_alive;
        assert!(ka(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, Close\r\n\r\n"
        ));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        let r = one(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.connection_header(), Some("keep-alive"));
    }

    #[test]
    fn ch12_http_body_by_content_length() {
        let input = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET";
        let r = one(input).unwrap().unwrap();
        assert_eq!((r.body, &input[r.len..]), (&b"hello"[..], &b"GET"[..]));
        assert_eq!(
            one(&input[..input.len() - 4]),
            Ok(None),
            "body not complete"
        );
    }

    #[test]
    fn ch12_http_bad_requests() {
        let bad = |s: &[u8]| one(s).unwrap_err();
        let br = |e: Error| matches!(e, Error::BadRequest(_));
        assert!(
            br(bad(b"\x16\x03\x01\x02\x00")),
            "a TLS handshake, refused before its end"
        );
        assert!(br(bad(b"GET  / HTTP/1.1\r\n\r\n")));
        assert!(br(bad(b"GET /\x01 HTTP/1.1\r\n\r\n")));
        assert!(br(bad(b"GET / HTTP/1.1\r\n\r\n")), "no host");
        assert!(br(bad(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n")));
        assert!(br(bad(b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n")));
        assert!(br(bad(b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n")));
        assert!(br(bad(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"
        )));
        assert!(br(bad(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n"
        )));
        assert!(br(bad(
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
        )));
        assert_eq!(bad(b"GET / HTTP/2.0\r\n\r\n"), Error::VersionNotSupported);
        assert_eq!(
            bad(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Error::NotImplemented
        );
        assert_eq!(
            bad(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n"),
            Error::BodyTooLarge
        );
        let mut huge = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        huge.resize(MAX_HEAD, b'a');
        assert_eq!(bad(&huge), Error::HeadTooLarge);
        assert_eq!(one(&huge[..MAX_HEAD - 1]), Ok(None), "one byte short: wait");
    }

    #[test]
    fn ch15_http_one_valid_host_or_400() {
        let status = |s: &[u8]| match one(s) {
            Ok(Some(_)) => "200",
            Ok(None) => "more",
            Err(e) => e.status(),
        };
        // RFC 9112, section 3.2: a second Host line, or an invalid value.
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: []\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a%2\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n",
        ] {
            assert_eq!(
                status(bad),
                "400 Bad Request",
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        for good in [
            &b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: my_host-1.local\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a%41\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a:\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
        ] {
            assert_eq!(status(good), "200", "{}", String::from_utf8_lossy(good));
        }
    }

    #[test]
    fn ch12_http_find_newline_is_position() {
        // Every place for the first `\n` in and around a chunk of eight,
        // with bytes that fool a careless word trick: 0x0b (`\n` + 1),
        // 0x8a (`\n` with the high bit), 0x09 and 0x00.
        for len in 0..20 {
            for fill in [b'a', 0x0b, 0x8a, 0x09, 0x00, 0xff] {
                for nl in 0..=len {
                    let mut buf = vec![fill; len];
                    if nl < len {
                        buf[nl] = b'\n';
                        if nl + 1 < len {
                            buf[nl + 1] = b'\n';
                        }
                    }
                    let expected = buf.iter().position(|&b| b == b'\n');
                    assert_eq!(find_newline(&buf), expected, "{buf:?}");
                }
            }
        }
    }

    #[test]
    fn ch12_http_byte_classes_follow_the_rfcs() {
        let members =
            |class: u8| (0..=255u8).filter(move |&b| CLASSES[usize::from(b)] & class != 0);
        let sorted = |set: &[u8]| {
            let mut v = set.to_vec();
            v.sort_unstable();
            v
        };
        let tokens: Vec<u8> = members(TOKEN)
            .filter(|b| !b.is_ascii_alphanumeric())
            .collect();
        assert_eq!(tokens, sorted(b"!#$%&'*+-.^_`|~"));
        assert_eq!(
            members(VISIBLE).collect::<Vec<_>>(),
            (0x21..=0x7e).collect::<Vec<_>>()
        );
        let not_field: Vec<u8> = (0..=255u8)
            .filter(|&b| CLASSES[usize::from(b)] & FIELD == 0)
            .collect();
        let controls: Vec<u8> = (0..0x20).filter(|&b| b != b'\t').chain([0x7f]).collect();
        assert_eq!(not_field, controls);
        let host: Vec<u8> = members(HOST)
            .filter(|b| !b.is_ascii_alphanumeric())
            .collect();
        assert_eq!(host, sorted(b"-._~!$&'()*+,;="));
    }

    #[test]
    fn ch12_http_leading_blank_lines_and_bare_newlines() {
        let r = one(b"\r\n\nGET / HTTP/1.0\n\n").unwrap().unwrap();
        assert_eq!((r.method, r.len), (&b"GET"[..], 19));
        assert_eq!(one(b"\r"), Ok(None));
        assert_eq!(one(b"GET\r"), Ok(None));
    }

    #[test]
    fn ch12_http_response_is_well_formed() {
        let mut out = Vec::new();
        append_response(&mut out, "200 OK", Some("close"), b"Hello World!\r\n", true);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\nServer: evio-rs\r\nDate: "),
            "{text}"
        );
        assert!(
            text.ends_with("\r\nContent-Length: 14\r\nConnection: close\r\n\r\nHello World!\r\n"),
            "{text}"
        );
        let mut head = Vec::new();
        append_response(&mut head, "200 OK", None, b"abc", false);
        assert!(head.ends_with(b"Content-Length: 3\r\n\r\n"));
    }

    #[test]
    fn ch12_http_dates() {
        assert_eq!(&format_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        // The example of RFC 9110, section 5.6.7.
        assert_eq!(&format_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&format_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            &format_date(4_102_444_799),
            b"Thu, 31 Dec 2099 23:59:59 GMT"
        );
    }

    #[test]
    fn ch12_http_date_now_is_the_current_second() {
        let secs = || {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.unwrap().as_secs()
        };
        // Twice, the second from the cache; each between two clock reads.
        for _ in 0..2 {
            let (before, date, after) = (secs(), date_now(), secs());
            assert!(
                [before, after].iter().any(|&s| format_date(s) == date),
                "{}",
                String::from_utf8_lossy(&date)
            );
        }
    }

    fn request() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![Just("GET"), Just("POST"), Just("HEAD"), Just("PUT")],
            "/[a-z0-9/?=&]{0,12}",
            any::<bool>(),
            proptest::collection::vec(("[A-Za-z-]{1,10}", "[ -~]{0,20}"), 0..4),
            proptest::collection::vec(any::<u8>(), 0..20),
            any::<bool>(),
        )
            .prop_map(|(method, target, http10, headers, body, crlf)| {
                let eol = if crlf { "\r\n" } else { "\n" };
                let version = if http10 { "1.0" } else { "1.1" };
                let mut s = format!("{method} {target} HTTP/{version}{eol}Host: x{eol}");
                for (name, value) in headers {
                    let lower = name.to_ascii_lowercase();
                    if ["host", "content-length", "transfer-encoding"].contains(&lower.as_str()) {
                        continue;
                    }
                    s += &format!("{name}: {value}{eol}");
                }
                s += &format!("Content-Length: {}{eol}{eol}", body.len());
                let mut bytes = s.into_bytes();
                bytes.extend_from_slice(&body);
                bytes
            })
    }

    /// Pieces of requests, so that random sequences often get far into the parser.
    const PIECES: &[&[u8]] = &[
        b"GET",
        b" ",
        b"/",
        b"\r\n",
        b"\n",
        b"\r",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"Host: a",
        b"Content-Length: 2",
        b"Connection: close",
        b":",
        b"x",
    ];

    proptest! {
        #[test]
        fn ch12_http_every_split_gives_the_same_requests(
            reqs in proptest::collection::vec(request(), 1..4),
        ) {
            let input = reqs.concat();
            let whole = feed(&[&input]);
            prop_assert_eq!(whole.0.len(), reqs.len());
            prop_assert_eq!(whole.1, None);
            for i in 0..=input.len() {
                prop_assert_eq!(&feed(&[&input[..i], &input[i..]]), &whole, "split at {}", i);
            }
        }

        #[test]
        fn ch12_http_random_bytes_never_panic_and_split_the_same(
            input in proptest::collection::vec(any::<u8>(), 0..300),
            cut in any::<proptest::sample::Index>(),
        ) {
            let i = cut.index(input.len() + 1);
            prop_assert_eq!(feed(&[&input[..i], &input[i..]]), feed(&[&input]));
        }

        #[test]
        fn ch12_http_random_http_like_bytes_split_the_same(
            input in proptest::collection::vec(proptest::sample::select(PIECES), 0..30),
            cut in any::<proptest::sample::Index>(),
        ) {
            let input = input.concat();
            let i = cut.index(input.len() + 1);
            prop_assert_eq!(feed(&[&input[..i], &input[i..]]), feed(&[&input]));
        }
    }
}
