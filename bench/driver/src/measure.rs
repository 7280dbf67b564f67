//! What the driver measures of a running server besides its clients'
//! numbers: its system calls (with `perf stat` on the kernel's syscall
//! tracepoints, else `strace -c`, else nothing), its context switches and
//! its CPU time (from `/proc`). Chapter 14, "Benchmarks", explains each.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The system calls broken down in the CSV, beside the total: the ones an
/// event loop's round trip is made of.
const DETAIL: &[&str] = &[
    "epoll_wait",
    "epoll_pwait",
    "epoll_ctl",
    "read",
    "write",
    "writev",
    "recvfrom",
    "sendto",
    "accept4",
];

// ANCHOR: syscalls
/// How system calls are counted here.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Method {
    /// `perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_...`: the
    /// kernel counts each entry into a system call, in the traced threads,
    /// at the price of an increment; the server runs at nearly full speed.
    Perf,
    /// `strace -c -f`: a stop of the server at every system call, so the
    /// server slows down many times; the counts stay right.
    Strace,
    /// Neither works here: the column says n/a.
    None,
}

impl Method {
    /// The first that works on this machine: perf must open the tracepoints
    /// (root, or `perf_event_paranoid` low enough, and tracefs mounted).
    pub fn detect() -> Method {
        let works = |cmd: &mut Command| {
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if works(Command::new("perf").args(["stat", "-e", &perf_events(), "--", "true"])) {
            Method::Perf
        } else if works(Command::new("strace").args(["-c", "-o", "/dev/null", "true"])) {
            Method::Strace
        } else {
            Method::None
        }
    }
}

fn perf_events() -> String {
    let mut events = vec!["raw_syscalls:sys_enter".to_string()];
    events.extend(DETAIL.iter().map(|s| format!("syscalls:sys_enter_{s}")));
    events.join(",")
}

/// A counter attached to a server's process.
pub struct Counter {
    method: Method,
    child: Option<Child>,
    out: PathBuf,
}

impl Counter {
    /// Attaches to `pid` (every thread it has now: threads it starts later
    /// are not counted, so a run that makes new threads must not use this).
    /// The counter itself runs on the client CPUs.
    pub fn attach(method: Method, pid: u32, cpus: &str) -> Counter {
        let out =
            std::env::temp_dir().join(format!("evio-bench-{}-count-{pid}", std::process::id()));
        let pid = pid.to_string();
        let out_s = out.to_string_lossy().to_string();
        let args: Vec<String> = match method {
            Method::Perf => [
                "perf",
                "stat",
                "-x",
                ",",
                "-o",
                &out_s,
                "-e",
                &perf_events(),
                "-p",
                &pid,
            ]
            .map(String::from)
            .to_vec(),
            Method::Strace => ["strace", "-c", "-f", "-q", "-o", &out_s, "-p", &pid]
                .map(String::from)
                .to_vec(),
            Method::None => vec![],
        };
        let child = (!args.is_empty())
            .then(|| {
                Command::new("taskset")
                    .args(["-c", cpus])
                    .args(&args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .ok()
            })
            .flatten();
        // Measuring must start when counting does, or the counts cover more
        // time than the window they are divided by. perf has attached once
        // it holds a perf_event descriptor per event (it opens them all
        // before it counts); strace attaches in a few milliseconds.
        let pid = child.as_ref().map_or(0, |c| c.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        let wanted = if method == Method::Perf {
            DETAIL.len() + 1
        } else {
            0
        };
        while perf_fds(pid) < wanted && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        Counter { method, child, out }
    }

    /// Stops counting (SIGINT: perf and strace both print their counts on
    /// it) and returns the total and a breakdown, `read=1.0 ...` counts.
    pub fn finish(mut self) -> Option<(f64, Vec<(String, f64)>)> {
        let mut child = self.child.take()?;
        // SAFETY: a signal to our own child, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(child.try_wait(), Ok(Some(_))) {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&self.out).ok()?;
        let _ = std::fs::remove_file(&self.out);
        let mut total = None;
        let mut detail = Vec::new();
        for line in text.lines() {
            match self.method {
                // `COUNT,,EVENT,...`
                Method::Perf => {
                    let f: Vec<&str> = line.split(',').collect();
                    let (Some(n), Some(ev)) =
                        (f.first().and_then(|n| n.parse::<f64>().ok()), f.get(2))
                    else {
                        continue;
                    };
                    match ev.strip_prefix("syscalls:sys_enter_") {
                        Some(name) => detail.push((name.to_string(), n)),
                        None if *ev == "raw_syscalls:sys_enter" => total = Some(n),
                        None => {}
                    }
                }
                // `% time  seconds  usecs/call  calls  [errors]  syscall`
                Method::Strace => {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let (Some(name), Some(n)) =
                        (f.last(), f.get(3).and_then(|n| n.parse::<f64>().ok()))
                    else {
                        continue;
                    };
                    if *name == "total" {
                        total = Some(n);
                    } else if DETAIL.contains(name) {
                        detail.push((name.to_string(), n));
                    }
                }
                Method::None => {}
            }
        }
        Some((total?, detail))
    }
}
// ANCHOR_END: syscalls

/// How many perf_event descriptors process `pid` holds.
fn perf_fds(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.filter_map(Result::ok)
        .filter(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().contains("perf_event"))
        })
        .count()
}

/// Voluntary and involuntary context switches of every thread of `pid`.
pub fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .map(|t| {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// The process's user + system CPU time, in seconds (every thread, those
/// that ended included).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may
    // hold spaces: utime and stime are fields 14 and 15, here 11 and 12.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // SAFETY: a plain query.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / hz
}
