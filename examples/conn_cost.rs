//! What a connection costs: the `echo` example with N connections, on the
//! reactor and on the thread-based variant, side by side, in one run.
//!
//! Chapter 9, "The thread-based variant", shows its numbers. For each
//! backend in turn (A B A B ..., so that both see the same machine noise) it
//! starts `echo` as a child process (pinned with `taskset` to
//! `--server-cpu`), reads the server's memory (`VmRSS` in
//! `/proc/PID/status`) and thread count with no connection, opens N
//! connections and waits until each has echoed one `PING`, reads them again,
//! then keeps one `PING` in flight on every connection for `--seconds` and
//! counts round trips, the server's CPU time (`/proc/PID/stat`) and its
//! context switches (every thread's, in `/proc/PID/task/*/status`). The
//! client is `echo_load`'s (`examples/common/load.rs`). Before each run it
//! waits (a minute at most) for the machine to be idle, and prints how busy
//! it was.
//! Linux only: it reads `/proc`.
//!
//! ```text
//! cargo build --release --examples
//! taskset -c 1 target/release/examples/conn_cost --conns 1000 --seconds 10 --runs 3 --server-cpu 0
//! ```

#[cfg(target_os = "linux")]
#[path = "common/load.rs"]
mod load;

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("conn_cost reads /proc: it runs on Linux only");
}

#[cfg(target_os = "linux")]
fn main() -> std::io::Result<()> {
    linux::main()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use clap::Parser;

    use crate::load::{PingLoad, MSG};

    /// One run's numbers.
    struct Run {
        rss_empty_kib: u64,
        rss_conns_kib: u64,
        rss_after_kib: u64,
        threads_empty: usize,
        threads_conns: usize,
        round_trips_per_s: f64,
        /// Server CPU busy, in percent of one CPU.
        cpu_pct: f64,
        /// Context switches per round trip, all server threads together.
        switches_per_rt: f64,
    }

    /// A `Key: value kB` line of `/proc/PID/status`, or of a task's.
    fn status_field(path: &str, key: &str) -> u64 {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    fn rss_kib(pid: u32) -> u64 {
        status_field(&format!("/proc/{pid}/status"), "VmRSS:")
    }

    fn threads(pid: u32) -> usize {
        status_field(&format!("/proc/{pid}/status"), "Threads:") as usize
    }

    /// Voluntary and involuntary context switches of every thread.
    fn switches(pid: u32) -> u64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return 0;
        };
        tasks
            .filter_map(Result::ok)
            .map(|t| {
                let p = t.path().join("status");
                let p = p.to_string_lossy();
                status_field(&p, "voluntary_ctxt_switches:")
                    + status_field(&p, "nonvoluntary_ctxt_switches:")
            })
            .sum()
    }

    /// The server's user + system CPU time, in clock ticks.
    fn cpu_ticks(pid: u32) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // utime and stime are fields 14 and 15; `rest` starts at field 3.
        f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
    }

    /// The machine's busy fraction over `over`, from `/proc/stat` (all CPUs).
    fn busy(over: Duration) -> f64 {
        let sample = || -> (u64, u64) {
            let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
            let f: Vec<u64> = stat
                .lines()
                .next()
                .unwrap_or("")
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            // idle + iowait are fields 4 and 5.
            let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
            (f.iter().sum(), idle)
        };
        let (t0, i0) = sample();
        std::thread::sleep(over);
        let (t1, i1) = sample();
        let total = (t1 - t0).max(1) as f64;
        1.0 - (i1 - i0) as f64 / total
    }

    /// Waits (at most a minute) until the machine is idle: under 5 % busy
    /// for a second, so that one run does not measure another's leftovers. Returns the last busy
    /// fraction seen, which the run's line reports.
    fn wait_idle() -> f64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let b = busy(Duration::from_secs(1));
            if b < 0.05 || Instant::now() > deadline {
                return b;
            }
        }
    }

    /// Lets this process (and so the server it starts) open `need` files.
    fn raise_fd_limit(need: u64) {
        // SAFETY: plain calls on a local struct.
        unsafe {
            let mut lim: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < need {
                lim.rlim_cur = need.min(lim.rlim_max);
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    }

    /// Kills the server when dropped, even on an error.
    struct Server {
        child: Child,
        port: u16,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn start_server(backend: &str, cpu: isize) -> io::Result<Server> {
        let exe = std::env::current_exe()?;
        let echo: PathBuf = exe.with_file_name("echo");
        let mut cmd = if cpu >= 0 {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(&echo);
            c
        } else {
            Command::new(&echo)
        };
        let mut child = cmd
            .args(["--port", "0", "--backend", backend])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", echo.display())))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        let port = line
            .split("port ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad ready line {line:?}")))?;
        Ok(Server { child, port })
    }

    fn run_once(backend: &str, conns: usize, seconds: f64, cpu: isize) -> io::Result<Run> {
        let server = start_server(backend, cpu)?;
        let pid = server.child.id();
        std::thread::sleep(Duration::from_millis(200));
        let (rss_empty_kib, threads_empty) = (rss_kib(pid), threads(pid));

        let mut streams = Vec::with_capacity(conns);
        for _ in 0..conns {
            let s = TcpStream::connect(("127.0.0.1", server.port))?;
            s.set_nodelay(true)?;
            streams.push(s);
        }
        // One PING each, answered, before anything is measured: every
        // connection is then accepted and opened in the server.
        for s in &mut streams {
            s.write_all(MSG)?;
        }
        let mut buf = [0u8; MSG.len()];
        for s in &mut streams {
            s.read_exact(&mut buf)?;
        }
        std::thread::sleep(Duration::from_millis(200));
        let (rss_conns_kib, threads_conns) = (rss_kib(pid), threads(pid));

        let mut load = PingLoad::start(streams, 1)?;
        let (ticks0, switches0) = (cpu_ticks(pid), switches(pid));
        let outcome = load.run(seconds)?;
        let (round_trips, secs) = (outcome.round_trips, outcome.secs);
        let (ticks1, switches1) = (cpu_ticks(pid), switches(pid));
        // SAFETY: a plain query.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let rss_after_kib = rss_kib(pid);
        Ok(Run {
            rss_empty_kib,
            rss_conns_kib,
            rss_after_kib,
            threads_empty,
            threads_conns,
            round_trips_per_s: round_trips as f64 / secs,
            cpu_pct: (ticks1 - ticks0) as f64 / hz / secs * 100.0,
            switches_per_rt: (switches1 - switches0) as f64 / round_trips.max(1) as f64,
        })
    }

    fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
        v.sort_by(|a, b| a.total_cmp(b));
        (v[0], v[v.len() / 2], v[v.len() - 1])
    }

    /// conn_cost: memory and throughput of the echo example with N
    /// connections, reactor against threads
    ///
    /// Build the echo example first: cargo build --release --examples
    #[derive(Parser)]
    #[command(name = "conn_cost")]
    struct Flags {
        /// Connections
        #[arg(long, default_value_t = 1000)]
        conns: usize,
        /// Seconds of load per run
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Runs per backend, interleaved
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Comma-separated --backend values of the echo example
        #[arg(long, default_value = "epoll,threads")]
        backends: String,
        /// Do not wait for an idle machine before each run
        #[arg(long)]
        no_wait: bool,
        /// Pin the server to this CPU with taskset; -1: no pin
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        server_cpu: isize,
    }

    pub fn main() -> io::Result<()> {
        let flags = Flags::parse();
        let (conns, seconds, cpu) = (flags.conns, flags.seconds, flags.server_cpu);
        let runs = flags.runs.max(1);
        let backends: Vec<&str> = flags.backends.split(',').collect();
        let wait = !flags.no_wait;
        raise_fd_limit(conns as u64 + 100);

        let mut all: Vec<Vec<Run>> = backends.iter().map(|_| Vec::new()).collect();
        for run in 1..=runs {
            for (b, backend) in backends.iter().enumerate() {
                let idle = if wait { wait_idle() } else { 0.0 };
                let r = run_once(backend, conns, seconds, cpu)?;
                println!(
                    "run {run} {backend:<8} (machine {:>2.0} % busy before) RSS {:>7} KiB empty, {:>7} KiB with {conns} conns, \
                     {:>7} KiB after load; threads {} -> {}; {:>9.0} round trips/s; \
                     server CPU {:>5.1} %; {:.2} context switches per round trip",
                    idle * 100.0,
                    r.rss_empty_kib,
                    r.rss_conns_kib,
                    r.rss_after_kib,
                    r.threads_empty,
                    r.threads_conns,
                    r.round_trips_per_s,
                    r.cpu_pct,
                    r.switches_per_rt,
                );
                all[b].push(r);
            }
        }
        println!(
            "\nmedians (min..max) of {runs} runs, {conns} connections, 1 PING in flight each:"
        );
        println!(
            "| backend | RSS per connection | threads | round trips/s | server CPU per round trip | context switches per round trip |"
        );
        println!("|---|---|---|---|---|---|");
        for (b, backend) in backends.iter().enumerate() {
            let rs = &all[b];
            let per_conn = median(
                rs.iter()
                    .map(|r| {
                        (r.rss_after_kib as f64 - r.rss_empty_kib as f64) * 1024.0 / conns as f64
                    })
                    .collect(),
            );
            let rt = median(rs.iter().map(|r| r.round_trips_per_s).collect());
            let cpu_per_rt = median(
                rs.iter()
                    .map(|r| r.cpu_pct / 100.0 / r.round_trips_per_s.max(1.0) * 1e6)
                    .collect(),
            );
            let sw = median(rs.iter().map(|r| r.switches_per_rt).collect());
            println!(
                "| {backend} | {:.1} KiB ({:.1}..{:.1}) | {} | {:.0} ({:.0}..{:.0}) | {:.2} µs ({:.2}..{:.2}) | {:.2} ({:.2}..{:.2}) |",
                per_conn.1 / 1024.0,
                per_conn.0 / 1024.0,
                per_conn.2 / 1024.0,
                rs[0].threads_conns,
                rt.1,
                rt.0,
                rt.2,
                cpu_per_rt.1,
                cpu_per_rt.0,
                cpu_per_rt.2,
                sw.1,
                sw.0,
                sw.2,
            );
        }
        Ok(())
    }
}
