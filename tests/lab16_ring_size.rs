//! The grader of lab 16 (chapter 16, "Completion instead of readiness"):
//! the ring's size as a setting, `IoUringOptions::entries`, and the server
//! examples' `--uring-entries N`. `#[ignore]`d: it fails until you do the
//! lab. Grade it with `cargo test lab16 -- --ignored`.
//!
//! The size is read where the kernel says it, not from our own counters:
//! `/proc/PID/fdinfo/FD` of a ring's fd has the masks of its two queues
//! (`SqMask: 0x7` for 8 entries, `CqMask: 0xf` for the 16 completions).

mod common;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::{example_bin, parse_ready, spawn, wait_exit, within, Killed, Rng};

/// The io_uring engine must run here: a grader that passes where it cannot
/// run would grade nothing.
fn need_io_uring() {
    if let Err(e) = evio::internals::io_uring_available() {
        panic!("lab16 needs io_uring, which this machine cannot run: {e}");
    }
}

/// The (submission, completion) queue sizes of every ring the process
/// `pid` holds, once it holds one: the ready line comes before the loops
/// open their rings.
fn rings(pid: u32) -> Vec<(u64, u64)> {
    for _ in 0..250 {
        let rings = rings_now(pid);
        if !rings.is_empty() {
            return rings;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Vec::new()
}

/// The same, now, read from `/proc/PID/fdinfo`.
fn rings_now(pid: u32) -> Vec<(u64, u64)> {
    let mask = |info: &str, key: &str| {
        let line = info.lines().find_map(|l| l.strip_prefix(key));
        let hex = line.expect(key).trim().trim_start_matches("0x");
        u64::from_str_radix(hex, 16).unwrap() + 1
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
    fds.filter_map(|fd| {
        let fd = fd.ok()?;
        let target = std::fs::read_link(fd.path()).ok()?;
        if target.to_str()? != "anon_inode:[io_uring]" {
            return None;
        }
        let path = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_str()?);
        // The kernel leaves the queues out while the ring is busy (it only
        // tries its lock): read again until they are there.
        let info = (0..100)
            .map(|_| std::fs::read_to_string(&path).unwrap_or_default())
            .find(|info| {
                info.contains("SqMask:") || {
                    std::thread::sleep(Duration::from_millis(20));
                    false
                }
            })
            .expect("the ring's fdinfo never showed its queues");
        Some((mask(&info, "SqMask:"), mask(&info, "CqMask:")))
    })
    .collect()
}

/// Starts the echo example on io_uring with `--uring-entries N`; its port.
fn start(entries: &str) -> (Killed, u16) {
    let args = [
        "--port",
        "0",
        "--backend",
        "io-uring",
        "--uring-entries",
        entries,
    ];
    let (server, mut out) = spawn("echo", &args);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        !line.is_empty(),
        "lab16: the echo example did not start with `--uring-entries {entries}`: it has no \
         --uring-entries flag yet, or refused {entries} (its error is above). Add the flag \
         to `ServerFlags` in examples/common/mod.rs"
    );
    (server, parse_ready("echo", &line).0)
}

#[test]
#[ignore = "lab 16: the ring's size as a setting, then `cargo test lab16 -- --ignored`"]
fn lab16_ring_size_a_ring_of_8_serves_100_connections_at_once() {
    need_io_uring();
    within(120, || {
        let (server, port) = start("8");
        let sizes = rings(server.0.id());
        assert!(
            !sizes.is_empty() && sizes.iter().all(|&s| s == (8, 16)),
            "lab16: with --uring-entries 8 the server's rings should have 8 submission and 16 \
             completion entries; /proc says (submission, completion) = {sizes:?}"
        );
        // 100 clients at once, 64 KiB each: far more operations in flight
        // than the ring has entries, and more completions than its queue.
        let clients: Vec<_> = (0..100u64)
            .map(|i| {
                std::thread::spawn(move || {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    let sent = Rng::new(i).bytes(64 * 1024);
                    let mut w = c.try_clone().unwrap();
                    let data = sent.clone();
                    let writer = std::thread::spawn(move || w.write_all(&data));
                    let mut got = vec![0u8; sent.len()];
                    let read = c.read_exact(&mut got);
                    writer.join().unwrap().unwrap();
                    read.map(|_| got == sent)
                })
            })
            .collect();
        for (i, c) in clients.into_iter().enumerate() {
            match c.join().unwrap() {
                Ok(true) => {}
                Ok(false) => panic!("lab16: client {i} got other bytes back than it sent"),
                Err(e) => panic!("lab16: client {i} did not get its 64 KiB back: {e}"),
            }
        }
    });
}

#[test]
#[ignore = "lab 16: the ring's size as a setting, then `cargo test lab16 -- --ignored`"]
fn lab16_ring_size_a_bad_size_is_refused_and_0_is_the_default() {
    need_io_uring();
    within(60, || {
        for bad in ["3", "100", "8192"] {
            let mut child = std::process::Command::new(example_bin("echo"))
                .args([
                    "--port",
                    "0",
                    "--backend",
                    "io-uring",
                    "--uring-entries",
                    bad,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let status = wait_exit(&mut child, 10);
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert!(
                !status.success() && err.contains("power of two"),
                "lab16: `--uring-entries {bad}` must stop the server with an error that names \
                 the rule (a power of two from 8 to 4096); it exited {status} saying {err:?}"
            );
        }
        let (server, _) = start("0");
        let sizes = rings(server.0.id());
        assert!(
            !sizes.is_empty() && sizes.iter().all(|&s| s == (256, 512)),
            "lab16: `--uring-entries 0` is the default, 256 entries; /proc says {sizes:?}"
        );
    });
}
