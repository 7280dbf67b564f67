//! An in-memory key-value server that speaks the Redis protocol (RESP2).
//!
//! Chapter 12, "Three servers", walks through it. It is evio's
//! `examples/redis-server/main.go`, with the same flags, and more commands:
//! PING, ECHO, SET (EX/PX/NX/XX), GET, DEL, EXISTS, INCR, KEYS, DBSIZE,
//! FLUSHDB, FLUSHALL, QUIT, and the COMMAND and CONFIG GET that `redis-cli`
//! and `redis-benchmark` send when they start. Try it:
//!
//! ```text
//! cargo run --release --example redis -- --port 6380
//! redis-cli -p 6380 set hello world
//! redis-cli -p 6380 get hello
//! redis-benchmark -p 6380 -t ping,set,get -q
//! ```

mod common;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use evio::{Action, Conn, Events, InputStream};
use protocols::{glob::glob_match, parse_i64, resp};

// The handler's types are `pub` so that `tests/ch13_allocations.rs`, which
// includes this file as a module, can serve them and count what they allocate.
// ANCHOR: store
/// One value, and when it expires (`SET ... EX 10`).
struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    /// Expired keys are removed lazily, when a command touches them.
    /// `Instant::now()` is called only for keys that have a deadline.
    fn expired(&self) -> bool {
        self.expires.is_some_and(|t| t <= Instant::now())
    }
}

/// The keys, shared by every loop: each loop is a thread, so the map is
/// behind a mutex, held for one command at a time.
#[derive(Default)]
pub struct Redis {
    keys: Mutex<HashMap<Vec<u8>, Entry>>,
}

/// The most a client may send of one command before it is whole: past it,
/// the connection gets an error and is closed (chapter 15). Redis itself
/// takes bulk strings up to 512 MB; a server that holds that much per
/// connection is one that a few hundred slow clients can exhaust.
pub const MAX_INPUT: usize = 16 * 1024 * 1024;

/// Each connection's state: its unparsed input, and the parser's place.
#[derive(Default)]
pub struct Client {
    input: InputStream,
    parser: resp::Parser,
}
// ANCHOR_END: store

// ANCHOR: data
impl Events for Redis {
    type Context = Client;

    fn data(&self, c: &mut Conn<Client>, input: &[u8], out: &mut Vec<u8>) -> Action {
        let client = c.context_mut();
        let data = client.input.begin(input);
        let mut used = 0;
        let mut action = Action::None;
        while action == Action::None {
            match client.parser.parse(&data[used..]) {
                Ok(Some(cmd)) => {
                    used += cmd.consumed();
                    if !cmd.is_empty() {
                        action = self.execute(&cmd, out);
                    }
                }
                Ok(None) => break, // the rest is a partial command: keep it
                Err(e) => {
                    // Redis's answer to a framing error: say why, then close.
                    resp::append_error(out, &e.to_string());
                    (used, action) = (data.len(), Action::Close);
                }
            }
        }
        client.input.end(input, used);
        if client.input.pending() > MAX_INPUT {
            resp::append_error(out, "ERR Protocol error: command too large");
            return Action::Close;
        }
        action
    }
}
// ANCHOR_END: data

/// The command's name in upper case, in a stack buffer: no allocation.
/// Names longer than the buffer are no command of ours.
fn upper(name: &[u8], buf: &mut [u8; 16]) -> usize {
    if name.len() > buf.len() {
        return 0;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_uppercase();
    }
    name.len()
}

impl Redis {
    /// The keys, locked. A command that panicked while holding the lock
    /// poisoned it; its connection was closed (chapter 15), and the map,
    /// which no command leaves half-changed in a way that breaks it, goes on
    /// serving the others.
    fn keys(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Entry>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ANCHOR: execute
    /// Runs one command, appending its reply to `out`.
    fn execute(&self, cmd: &resp::Command, out: &mut Vec<u8>) -> Action {
        let mut name = [0; 16];
        let n = upper(cmd.arg(0), &mut name);
        let argc = cmd.argc();
        match (&name[..n], argc) {
            (b"PING", 1) => resp::append_simple(out, "PONG"),
            (b"PING", 2) | (b"ECHO", 2) => resp::append_bulk(out, cmd.arg(1)),
            (b"GET", 2) => match self.keys().get(cmd.arg(1)) {
                Some(e) if !e.expired() => resp::append_bulk(out, &e.value),
                _ => resp::append_null(out),
            },
            (b"SET", 3..) => self.set(cmd, out),
            (b"DEL", 2..) | (b"EXISTS", 2..) => {
                let delete = name.starts_with(b"DEL");
                let mut keys = self.keys();
                let mut count = 0;
                for key in cmd.args().skip(1) {
                    let live = keys.get(key).is_some_and(|e| !e.expired());
                    if delete {
                        keys.remove(key);
                    }
                    count += i64::from(live);
                }
                resp::append_int(out, count);
            }
            (b"INCR", 2) => self.incr(cmd.arg(1), out),
            (b"KEYS", 2) => {
                let keys = self.keys();
                let found: Vec<&[u8]> = keys
                    .iter()
                    .filter(|(k, e)| !e.expired() && glob_match(cmd.arg(1), k))
                    .map(|(k, _)| k.as_slice())
                    .collect();
                resp::append_array(out, found.len());
                for k in found {
                    resp::append_bulk(out, k);
                }
            }
            (b"DBSIZE", 1) => {
                let keys = self.keys();
                let live = keys.values().filter(|e| !e.expired()).count();
                resp::append_int(out, live as i64);
            }
            (b"FLUSHDB" | b"FLUSHALL", 1 | 2) => {
                self.keys().clear();
                resp::append_simple(out, "OK");
            }
            (b"QUIT", _) => {
                resp::append_simple(out, "OK");
                return Action::Close; // once "+OK" is written
            }
            (b"COMMAND", _) => command(cmd, out),
            (b"CONFIG", 3..) if cmd.arg(1).eq_ignore_ascii_case(b"GET") => config_get(cmd, out),
            (b"CONFIG", 3..) => resp::append_error(out, "ERR only CONFIG GET is supported"),
            (
                b"PING" | b"ECHO" | b"GET" | b"SET" | b"DEL" | b"EXISTS" | b"INCR" | b"KEYS"
                | b"DBSIZE" | b"FLUSHDB" | b"FLUSHALL" | b"CONFIG",
                _,
            ) => wrong_arity(cmd, out),
            _ => unknown(cmd, out),
        }
        Action::None
    }
    // ANCHOR_END: execute

    // ANCHOR: set
    /// `SET key value [NX | XX] [EX seconds | PX milliseconds]`.
    fn set(&self, cmd: &resp::Command, out: &mut Vec<u8>) {
        let (mut nx, mut xx, mut ttl) = (false, false, None);
        let mut i = 3;
        while i < cmd.argc() {
            let mut opt = [0; 16];
            let n = upper(cmd.arg(i), &mut opt);
            match &opt[..n] {
                b"NX" if !xx => nx = true,
                b"XX" if !nx => xx = true,
                b"EX" | b"PX" if ttl.is_none() && i + 1 < cmd.argc() => {
                    let Some(t) = parse_i64(cmd.arg(i + 1)) else {
                        return resp::append_error(
                            out,
                            "ERR value is not an integer or out of range",
                        );
                    };
                    if t <= 0 {
                        return resp::append_error(out, "ERR invalid expire time in 'set' command");
                    }
                    let ms = if opt[0] == b'E' {
                        t.saturating_mul(1000)
                    } else {
                        t
                    };
                    ttl = Some(Duration::from_millis(ms as u64));
                    i += 1;
                }
                _ => return resp::append_error(out, "ERR syntax error"),
            }
            i += 1;
        }
        let (key, value) = (cmd.arg(1), cmd.arg(2));
        let expires = match ttl {
            None => None,
            Some(d) => match Instant::now().checked_add(d) {
                Some(t) => Some(t),
                None => return resp::append_error(out, "ERR invalid expire time in 'set' command"),
            },
        };
        let mut keys = self.keys();
        let exists = keys.get(key).is_some_and(|e| !e.expired());
        if (nx && exists) || (xx && !exists) {
            return resp::append_null(out);
        }
        match keys.get_mut(key) {
            // Overwriting reuses the key and the value's buffer: no
            // allocation when the new value fits (redis-benchmark's SET
            // writes one key over and over).
            Some(e) => {
                e.value.clear();
                e.value.extend_from_slice(value);
                e.expires = expires;
            }
            None => {
                let value = value.to_vec();
                keys.insert(key.to_vec(), Entry { value, expires });
            }
        }
        resp::append_simple(out, "OK");
    }
    // ANCHOR_END: set

    /// `INCR key`: the value must be a decimal i64; a missing key is 0.
    /// The key keeps its deadline, as in Redis.
    fn incr(&self, key: &[u8], out: &mut Vec<u8>) {
        let mut keys = self.keys();
        let (old, expires) = match keys.get(key) {
            Some(e) if !e.expired() => (parse_i64(&e.value), e.expires),
            _ => (Some(0), None),
        };
        let Some(old) = old else {
            return resp::append_error(out, "ERR value is not an integer or out of range");
        };
        let Some(n) = old.checked_add(1) else {
            return resp::append_error(out, "ERR increment or decrement would overflow");
        };
        match keys.get_mut(key) {
            Some(e) => {
                e.value.clear();
                push_i64(&mut e.value, n);
                e.expires = expires;
            }
            None => {
                let mut value = Vec::new();
                push_i64(&mut value, n);
                keys.insert(key.to_vec(), Entry { value, expires });
            }
        }
        resp::append_int(out, n);
    }
}

/// Appends `n` in decimal.
fn push_i64(v: &mut Vec<u8>, n: i64) {
    if n < 0 {
        v.push(b'-');
    }
    protocols::push_decimal(v, n.unsigned_abs());
}

// ANCHOR: startup
/// `COMMAND` (and `COMMAND DOCS`, which `redis-cli` sends when it starts
/// interactively, to learn the commands for its hints): an empty list,
/// which clients take as "no documentation" and carry on.
fn command(cmd: &resp::Command, out: &mut Vec<u8>) {
    if cmd.argc() == 2 && cmd.arg(1).eq_ignore_ascii_case(b"COUNT") {
        resp::append_int(out, 0);
    } else {
        resp::append_array(out, 0);
    }
}

/// `CONFIG GET name...`: `redis-benchmark` asks for `save` and
/// `appendonly` when it starts, and warns if it gets no answer. We have no
/// persistence, so: no save points, append-only off. Other names match
/// nothing, as an unknown parameter does in Redis.
fn config_get(cmd: &resp::Command, out: &mut Vec<u8>) {
    const KNOWN: [(&[u8], &[u8]); 2] = [(b"save", b""), (b"appendonly", b"no")];
    let found: Vec<_> = KNOWN
        .iter()
        .filter(|(name, _)| {
            cmd.args()
                .skip(2)
                .any(|p| glob_match(&p.to_ascii_lowercase(), name))
        })
        .collect();
    resp::append_array(out, found.len() * 2);
    for (name, value) in found {
        resp::append_bulk(out, name);
        resp::append_bulk(out, value);
    }
}
// ANCHOR_END: startup

/// `-ERR wrong number of arguments for 'get' command`, Redis's wording.
fn wrong_arity(cmd: &resp::Command, out: &mut Vec<u8>) {
    let name = String::from_utf8_lossy(cmd.arg(0)).to_lowercase();
    resp::append_error(
        out,
        &format!("ERR wrong number of arguments for '{name}' command"),
    );
}

/// `-ERR unknown command 'x', with args beginning with: 'a' 'b' `, as
/// Redis words it (each part cut at 128 bytes). A rare path: `format!` is fine.
fn unknown(cmd: &resp::Command, out: &mut Vec<u8>) {
    let show = |a: &[u8]| String::from_utf8_lossy(&a[..a.len().min(128)]).into_owned();
    let mut msg = format!(
        "ERR unknown command '{}', with args beginning with: ",
        show(cmd.arg(0))
    );
    for a in cmd.args().skip(1) {
        msg += &format!("'{}' ", show(a));
    }
    resp::append_error(out, &msg);
}

use clap::Parser;

/// redis: a Redis-protocol key-value server on evio-rs
#[derive(Parser)]
#[command(name = "redis")]
struct Flags {
    /// TCP port (0: any free port)
    #[arg(long, default_value_t = 6380)]
    port: u16,
    #[command(flatten)]
    server: common::ServerFlags,
}

/// The redis example's output limit: a bulk loader that writes a long
/// pipeline before it reads a reply needs its replies held until it reads
/// (Redis itself holds them without a limit). Bounded all the same.
const OUTPUT_LIMIT: usize = 64 * 1024 * 1024;

fn main() {
    let mut flags = Flags::parse();
    flags.server.output_limit.get_or_insert(OUTPUT_LIMIT);
    common::serve("redis", flags.port, &flags.server, &Redis::default());
}
