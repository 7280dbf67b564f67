//! The grader of lab 11 (chapter 11, "Testing what is hard to test"): your
//! property, `check` in `labs/stream_property.rs`, which this file includes
//! as a module. It must pass on `evio::InputStream` and fail on each of four
//! streams with a planted bug, defined below. `#[ignore]`d: it fails until
//! you do the lab. Grade it with `cargo test lab11 -- --ignored`.

// Until `check` is written, nothing calls the streams' methods.
#![allow(dead_code)]

#[path = "../labs/stream_property.rs"]
mod stream_property;

use stream_property::{check, Stream};

/// Copies every packet, even when nothing is pending: right bytes, but not
/// the zero-copy `begin` that `InputStream` promises.
#[derive(Default)]
struct CopiesAlways {
    kept: Vec<u8>,
}

impl Stream for CopiesAlways {
    fn begin<'a>(&'a mut self, packet: &'a [u8]) -> &'a [u8] {
        self.kept.extend_from_slice(packet);
        &self.kept
    }
    fn end(&mut self, _packet: &[u8], consumed: usize) {
        self.kept.drain(..consumed);
    }
    fn pending(&self) -> usize {
        self.kept.len()
    }
}

/// Keeps a packet's tail only if the parser used some of it.
#[derive(Default)]
struct KeepsOnlyAfterProgress {
    kept: Vec<u8>,
}

impl Stream for KeepsOnlyAfterProgress {
    fn begin<'a>(&'a mut self, packet: &'a [u8]) -> &'a [u8] {
        if self.kept.is_empty() {
            packet
        } else {
            self.kept.extend_from_slice(packet);
            &self.kept
        }
    }
    fn end(&mut self, packet: &[u8], consumed: usize) {
        if self.kept.is_empty() {
            if consumed > 0 {
                self.kept.extend_from_slice(&packet[consumed..]);
            }
        } else {
            self.kept.drain(..consumed);
        }
    }
    fn pending(&self) -> usize {
        self.kept.len()
    }
}

/// Keeps at most 100 bytes: a leftover longer than that loses its end.
#[derive(Default)]
struct KeepsAHundred {
    kept: Vec<u8>,
}

impl Stream for KeepsAHundred {
    fn begin<'a>(&'a mut self, packet: &'a [u8]) -> &'a [u8] {
        if self.kept.is_empty() {
            packet
        } else {
            self.kept.extend_from_slice(packet);
            &self.kept
        }
    }
    fn end(&mut self, packet: &[u8], consumed: usize) {
        if self.kept.is_empty() {
            self.kept.extend_from_slice(&packet[consumed..]);
        } else {
            self.kept.drain(..consumed);
        }
        self.kept.truncate(100);
    }
    fn pending(&self) -> usize {
        self.kept.len()
    }
}

/// Drops the new packet when the parser did not get past the old leftover:
/// it "finishes the old message first".
#[derive(Default)]
struct DropsPacketBehindLeftover {
    kept: Vec<u8>,
    old: usize,
}

impl Stream for DropsPacketBehindLeftover {
    fn begin<'a>(&'a mut self, packet: &'a [u8]) -> &'a [u8] {
        self.old = self.kept.len();
        if self.kept.is_empty() {
            packet
        } else {
            self.kept.extend_from_slice(packet);
            &self.kept
        }
    }
    fn end(&mut self, packet: &[u8], consumed: usize) {
        if self.kept.is_empty() {
            self.kept.extend_from_slice(&packet[consumed..]);
        } else {
            if consumed < self.old {
                self.kept.truncate(self.old);
            }
            self.kept.drain(..consumed.min(self.kept.len()));
        }
    }
    fn pending(&self) -> usize {
        self.kept.len()
    }
}

/// Runs `check::<S>()` on a thread of its own under a watchdog (a property
/// that loops forever fails instead of hanging the grader).
fn run<S: Stream + 'static>() -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(check::<S>));
    });
    match rx.recv_timeout(std::time::Duration::from_secs(120)) {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("lab11: check did not finish within 120 s"),
    }
}

/// Your property must find `S`'s bug.
fn must_catch<S: Stream + 'static>(name: &str, bug: &str) {
    assert!(
        run::<S>().is_err(),
        "lab11: your property passed on {name}, which {bug}: it does not catch that bug"
    );
}

#[test]
#[ignore = "lab 11: write check in labs/stream_property.rs, then `cargo test lab11 -- --ignored`"]
fn lab11_stream_property_passes_on_input_stream() {
    if let Err(e) = run::<evio::InputStream>() {
        panic!(
            "lab11: your property fails on evio::InputStream itself, which is right: it asks \
             for more than the documentation promises. It said:\n{e}"
        );
    }
}

#[test]
#[ignore = "lab 11: write check in labs/stream_property.rs, then `cargo test lab11 -- --ignored`"]
fn lab11_stream_property_catches_a_copy_of_every_packet() {
    must_catch::<CopiesAlways>(
        "CopiesAlways",
        "copies every packet into its buffer, even when nothing is pending (its bytes are right)",
    );
}

#[test]
#[ignore = "lab 11: write check in labs/stream_property.rs, then `cargo test lab11 -- --ignored`"]
fn lab11_stream_property_catches_a_tail_kept_only_after_progress() {
    must_catch::<KeepsOnlyAfterProgress>(
        "KeepsOnlyAfterProgress",
        "keeps a packet's unused tail only when the parser used some of the packet",
    );
}

#[test]
#[ignore = "lab 11: write check in labs/stream_property.rs, then `cargo test lab11 -- --ignored`"]
fn lab11_stream_property_catches_a_leftover_cut_at_100_bytes() {
    must_catch::<KeepsAHundred>("KeepsAHundred", "keeps at most 100 bytes of leftover");
}

#[test]
#[ignore = "lab 11: write check in labs/stream_property.rs, then `cargo test lab11 -- --ignored`"]
fn lab11_stream_property_catches_a_packet_dropped_behind_the_leftover() {
    must_catch::<DropsPacketBehindLeftover>(
        "DropsPacketBehindLeftover",
        "drops the new packet when the parser used less than the old leftover",
    );
}
