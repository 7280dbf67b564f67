//! A chat server: every line a client sends reaches every other client.
//!
//! Chapter 13, "Beyond evio", walks through it: the reason for
//! [`Writer`](evio::Writer), which lets the loop serving one client write to
//! another client, on any loop, in order and within a limit. evio has no such
//! thing (a long-standing request in its issue tracker): a callback can only
//! answer the connection it was called for. Try it with two terminals:
//!
//! ```text
//! cargo run --release --example chat -- --port 5555
//! nc 127.0.0.1 5555        # in two or more terminals; type lines
//! ```

mod common;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use clap::Parser;
use evio::{Action, Conn, Events, InputStream, Options, Writer};

/// chat: every line a client sends reaches every other client
#[derive(Parser)]
struct Flags {
    /// TCP port (0: any free port)
    #[arg(long, default_value_t = 5555)]
    port: u16,
    #[command(flatten)]
    server: common::ServerFlags,
}

// ANCHOR: chat
/// The room: a writer for every client, by the id the server gave it.
#[derive(Default)]
struct Chat {
    members: Mutex<HashMap<u64, Writer>>,
    next_id: AtomicU64,
}

/// One client: its id, and the unfinished end of its last line.
#[derive(Default)]
struct Member {
    id: u64,
    input: InputStream,
}

impl Chat {
    /// Sends `line` to every member but `from`. A member whose output is
    /// over its limit (it does not read) is disconnected rather than let
    /// the server's memory grow.
    fn broadcast(&self, from: u64, line: &[u8]) {
        for (&id, writer) in self.members.lock().unwrap().iter() {
            if id == from {
                continue;
            }
            if let Err(e) = writer.write(line) {
                if e.kind() == ErrorKind::WouldBlock {
                    let _ = writer.close();
                }
            }
        }
    }
}

impl Events for Chat {
    type Context = Member;

    fn opened(&self, c: &mut Conn<Member>, out: &mut Vec<u8>) -> (Options, Action) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        c.context_mut().id = id;
        let writer = c.writer();
        let mut members = self.members.lock().unwrap();
        members.insert(id, writer);
        // Once this line is sent, every later line of the room reaches us.
        let online = members.len();
        out.extend_from_slice(format!("welcome, client {id}; {online} online\n").as_bytes());
        (Options::default(), Action::None)
    }

    fn data(&self, c: &mut Conn<Member>, input: &[u8], _out: &mut Vec<u8>) -> Action {
        let member = c.context_mut();
        let data = member.input.begin(input);
        let mut used = 0;
        while let Some(nl) = data[used..].iter().position(|&b| b == b'\n') {
            self.broadcast(member.id, &data[used..used + nl + 1]);
            used += nl + 1;
        }
        member.input.end(input, used);
        Action::None
    }

    fn closed(&self, c: &mut Conn<Member>, _err: Option<std::io::Error>) -> Action {
        self.members.lock().unwrap().remove(&c.context().id);
        Action::None
    }
}
// ANCHOR_END: chat

fn main() {
    let flags = Flags::parse();
    common::serve("chat", flags.port, &flags.server, &Chat::default());
}
