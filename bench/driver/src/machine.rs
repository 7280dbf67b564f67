//! The machine: which CPUs the servers and the clients get, how busy each
//! CPU is (from `/proc/stat`), waiting for an idle machine before a run, and
//! the environment a result was measured in. Chapter 14, "Benchmarks",
//! explains why each matters.

use std::process::Command;
use std::time::{Duration, Instant};

// ANCHOR: cpus
/// The CPUs of a benchmark: the servers run on the first half, the clients
/// on the second, so that neither steals the other's time and the server's
/// busy % is its own.
pub struct Cpus {
    pub server: Vec<usize>,
    pub client: Vec<usize>,
}

impl Cpus {
    /// Splits the first `cores` CPUs (all of them when `None`).
    pub fn split(cores: Option<usize>) -> Cpus {
        let all = online_cpus();
        let n = cores.unwrap_or(all).clamp(1, all);
        if n == 1 {
            // A server and its client on one CPU measure their sum: say so.
            println!("cpus: 1 core only: the server and the client share CPU 0");
            return Cpus {
                server: vec![0],
                client: vec![0],
            };
        }
        let half = n / 2;
        let cpus = Cpus {
            server: (0..half).collect(),
            client: (half..n).collect(),
        };
        println!(
            "cpus: {} server core(s) ({}) + {} client core(s) ({}), of {all}",
            half,
            cpus.list(&cpus.server),
            n - half,
            cpus.list(&cpus.client)
        );
        cpus
    }

    /// A CPU list as `taskset -c` takes it: `0` or `2,3`.
    pub fn list(&self, cpus: &[usize]) -> String {
        cpus.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every CPU the benchmark uses.
    pub fn used(&self) -> Vec<usize> {
        let mut all = [self.server.clone(), self.client.clone()].concat();
        all.sort_unstable();
        all.dedup();
        all
    }
}
// ANCHOR_END: cpus

/// The CPUs `/proc/stat` lists.
pub fn online_cpus() -> usize {
    Sample::take().cpus.len().max(1)
}

/// One reading of `/proc/stat`: per CPU, the time spent in each state, in
/// clock ticks since boot.
#[derive(Clone)]
pub struct Sample {
    /// Per CPU: (total, idle + iowait, steal).
    cpus: Vec<(u64, u64, u64)>,
}

impl Sample {
    pub fn take() -> Sample {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpus = stat
            .lines()
            // `cpu0 ...`, `cpu1 ...`: not the `cpu ...` line, the sum.
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .map(|l| {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .skip(1)
                    .map(|x| x.parse().unwrap_or(0))
                    .collect();
                let at = |i: usize| f.get(i).copied().unwrap_or(0);
                // user nice system idle iowait irq softirq steal guest guest_nice;
                // guest time is already counted in user, so the total stops at steal.
                (f.iter().take(8).sum(), at(3) + at(4), at(7))
            })
            .collect();
        Sample { cpus }
    }

    /// The busy fraction of `cpus` (their average) between `earlier` and this sample.
    pub fn busy_since(&self, earlier: &Sample, cpus: &[usize]) -> f64 {
        let (mut total, mut idle) = (0, 0);
        for &c in cpus {
            let (Some(a), Some(b)) = (earlier.cpus.get(c), self.cpus.get(c)) else {
                continue;
            };
            total += b.0.saturating_sub(a.0);
            idle += b.1.saturating_sub(a.1);
        }
        if total == 0 {
            return 0.0;
        }
        1.0 - idle as f64 / total as f64
    }

    /// The fraction of time the hypervisor gave `cpus` to someone else.
    pub fn steal_since(&self, earlier: &Sample, cpus: &[usize]) -> f64 {
        let (mut total, mut steal) = (0, 0);
        for &c in cpus {
            if let (Some(a), Some(b)) = (earlier.cpus.get(c), self.cpus.get(c)) {
                total += b.0.saturating_sub(a.0);
                steal += b.2.saturating_sub(a.2);
            }
        }
        steal as f64 / total.max(1) as f64
    }
}

// ANCHOR: wait_idle
/// Waits until every CPU in `cpus` was under `threshold` busy over one
/// `window`, for at most `limit`. Returns the busiest CPU's fraction in the
/// last window and whether the machine was idle: a run that starts on a busy
/// machine is still made, and recorded as such, rather than waited for
/// forever on a machine shared with other work.
pub fn wait_idle(cpus: &[usize], threshold: f64, window: Duration, limit: Duration) -> (f64, bool) {
    let deadline = Instant::now() + limit;
    loop {
        let before = Sample::take();
        std::thread::sleep(window);
        let after = Sample::take();
        let busiest = cpus
            .iter()
            .map(|&c| after.busy_since(&before, &[c]))
            .fold(0.0, f64::max);
        if busiest < threshold {
            return (busiest, true);
        }
        if Instant::now() >= deadline {
            return (busiest, false);
        }
    }
}
// ANCHOR_END: wait_idle

/// The output of a command (stdout, else stderr), first line, or `-`.
fn version(cmd: &str, args: &[&str]) -> String {
    let Ok(out) = Command::new(cmd).args(args).output() else {
        return "-".into();
    };
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .unwrap_or("-")
        .trim()
        .to_string()
}

/// What the results were measured on, as `(what, value)` rows for the
/// summary: a number means little without them.
pub fn environment(cpus: &Cpus) -> Vec<(String, String)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let model = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "-".into());
    let rows = [
        ("date (UTC)", version("date", &["-u", "+%Y-%m-%d %H:%M"])),
        ("commit", version("git", &["rev-parse", "--short", "HEAD"])),
        (
            "kernel",
            read("/proc/sys/kernel/osrelease").trim().to_string(),
        ),
        ("CPU", model),
        (
            "cores",
            format!(
                "{} online; servers on CPU {}, clients on CPU {}",
                online_cpus(),
                cpus.list(&cpus.server),
                cpus.list(&cpus.client)
            ),
        ),
        ("rustc", version("rustc", &["--version"])),
        ("wrk", version("wrk", &["-v"])),
        (
            "redis-benchmark",
            version("redis-benchmark", &["--version"]),
        ),
        ("redis-server", version("redis-server", &["--version"])),
        ("nginx", version("nginx", &["-v"])),
        ("perf", version("perf", &["--version"])),
        ("strace", version("strace", &["-V"])),
        (
            "load average before",
            read("/proc/loadavg").trim().to_string(),
        ),
    ];
    rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
