//! Every seed of the fuzz targets, replayed through the very checks the
//! targets run (`fuzz/src/lib.rs`, included here), on the stable compiler:
//! so a plain `cargo test` (and CI) covers the seeds and any crash a fuzzing
//! run found and we fixed (its input is kept as a seed), with no nightly.
//!
//! Chapter 15, "What a server owes its clients", explains the fuzzing in
//! its section "Fuzzing the parsers".

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz_checks;

use std::path::Path;

// ANCHOR: replay
/// Runs `check` on every file of `fuzz/seeds/TARGET/`, and says how many.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{target}: only {} seeds", files.len());
    for file in &files {
        let data = std::fs::read(file).unwrap();
        // A panic names the file, so a failing seed is easy to find.
        let run = std::panic::catch_unwind(|| check(&data));
        assert!(run.is_ok(), "{target}: {} fails", file.display());
    }
    println!("{target}: {} seeds replayed", files.len());
}
// ANCHOR_END: replay

#[test]
fn ch15_fuzz_seeds_addr() {
    replay("addr", fuzz_checks::addr);
}

#[test]
fn ch15_fuzz_seeds_input_stream() {
    replay("input_stream", fuzz_checks::input_stream);
}

#[test]
fn ch15_fuzz_seeds_resp() {
    replay("resp", fuzz_checks::resp);
}

#[test]
fn ch15_fuzz_seeds_http() {
    replay("http", fuzz_checks::http);
}
