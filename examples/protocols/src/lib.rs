//! Wire protocols for the example servers: an HTTP/1.1 request parser and a
//! RESP2 (Redis) command parser, plus the reply writers they need.
//!
//! Chapter 12, "Three servers", explains these files. They mirror the parsing
//! done inside evio's examples: `parsereq` and `appendresp` in
//! `examples/http-server/main.go`, and the `redcon` calls
//! (`ReadNextCommand`, `AppendBulk`, ...) in `examples/redis-server/main.go`.
//!
//! They are a crate of their own, `evio-protocols` in `examples/protocols/`,
//! next to the examples that use them, so that the library `evio` is the
//! reactor and nothing else. Go's evio draws the same line: its HTTP parser
//! sits in the example's `main.go`, and its redis example imports `redcon`.
//! A crate, rather than a module each example includes, so that unit tests
//! and property tests can drive the parsers with plain byte slices (no
//! socket, no loop), and so that the example servers and their tests
//! (`tests/ch12_http.rs`, `tests/ch12_redis.rs`) share one copy.
//!
//! Every parser here has the same contract, the one a reactor needs:
//!
//! - it is given the bytes received so far (an `evio::InputStream` joins
//!   them) and says *complete, and this many bytes long*, *need more*,
//!   or *bad input*;
//! - it never allocates in proportion to a length the peer announced, only
//!   in proportion to bytes that actually arrived, and it refuses a length
//!   over its limit as soon as it has read the number;
//! - its reply writers append to a `&mut Vec<u8>` (the connection's `out`),
//!   so a steady stream of requests allocates nothing.
//!
//! | file | what | evio |
//! |---|---|---|
//! | `http.rs` | request heads, `Content-Length` bodies, responses | `parsereq`, `appendresp` |
//! | `resp.rs` | multi-bulk and inline commands, replies | `redcon.ReadNextCommand`, `redcon.Append*` |
//! | `glob.rs` | the `KEYS` pattern match | none: evio's example has no `KEYS` (Redis: `stringmatchlen`) |

pub mod glob;
pub mod http;
pub mod resp;

// ANCHOR: push_decimal
/// Appends `n` in decimal, without going through `format!` and a `String`:
/// digits are produced backwards into a stack buffer, then copied once.
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
// ANCHOR_END: push_decimal

/// Parses a whole slice as a decimal `i64`: an optional `-`, then digits,
/// nothing else (no `+`, no spaces). `None` on anything else or on overflow.
/// This is the rule Redis's `string2ll` applies to lengths and to `INCR`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    // Redis refuses leading zeros ("01"), so that one number has one spelling.
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        // Accumulate negatively: i64::MIN has no positive counterpart.
        n = n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if neg {
        Some(n)
    } else {
        n.checked_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ch12_push_decimal_matches_to_string() {
        for n in [0, 1, 9, 10, 99, 100, 12345, u64::from(u32::MAX), u64::MAX] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn ch12_parse_i64_is_strict() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"1x",
            b"9223372036854775808",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest::proptest! {
        #[test]
        fn ch12_parse_i64_round_trips(n: i64) {
            proptest::prop_assert_eq!(parse_i64(n.to_string().as_bytes()), Some(n));
        }
    }
}
