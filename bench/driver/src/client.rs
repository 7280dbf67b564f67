//! The clients: our `echo_load` and `conn_cost` examples, `wrk`,
//! `redis-benchmark`, and the accept-rate client, which lives here. Each
//! runs pinned to the client CPUs, under a time-out, and what it prints is
//! read back into numbers. Chapter 14, "Benchmarks", shows the commands.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a client measured.
#[derive(Default)]
pub struct Outcome {
    /// Requests (round trips, connections) answered in the whole run.
    pub requests: f64,
    /// The client's own measure of how long it ran.
    pub secs: f64,
    /// Latency percentiles, in microseconds, where the client gives them.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    /// What else it said that a reader may want (redis-benchmark's per-test rates).
    pub detail: String,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.requests / self.secs.max(1e-9)
    }
}

/// A client process, started, its output going to a file.
pub struct Client {
    child: Child,
    out: PathBuf,
    what: String,
    started: Instant,
    /// When it was first seen exited.
    ended: Option<Instant>,
}

impl Client {
    /// Starts `program args` pinned to `cpus`.
    pub fn spawn(program: &Path, args: &[String], cpus: &str) -> std::io::Result<Client> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let out =
            std::env::temp_dir().join(format!("evio-bench-{}-client-{n}", std::process::id()));
        let file = std::fs::File::create(&out)?;
        let child = Command::new("taskset")
            .args(["-c", cpus])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", program.display())))?;
        let what = format!("{} {}", program.display(), args.join(" "));
        Ok(Client {
            child,
            out,
            what,
            started: Instant::now(),
            ended: None,
        })
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        if self.ended.is_none() && matches!(self.child.try_wait(), Ok(Some(_))) {
            self.ended = Some(Instant::now());
        }
        self.ended.is_some()
    }

    // ANCHOR: timeout
    /// Waits for the client, at most until `deadline`: one that hangs (a
    /// server that stopped answering) is killed and the run fails, instead
    /// of the benchmark hanging with it. Returns what it printed and how
    /// long it ran.
    pub fn finish(mut self, deadline: Instant) -> Result<(String, f64), String> {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!("timed out: {}", self.what));
                }
            }
        };
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let _ = std::fs::remove_file(&self.out);
        if !status.success() {
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            return Err(format!("{status}: {}: {}", self.what, tail.join(" / ")));
        }
        let ended = self.ended.unwrap_or_else(Instant::now);
        Ok((text, ended.duration_since(self.started).as_secs_f64()))
    }
    // ANCHOR_END: timeout
}

/// `key=value` pairs of a line.
fn kv<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn num(s: Option<&str>) -> Option<f64> {
    s?.parse().ok()
}

/// `echo_load --kv`'s line. echo_load itself fails the run (exits non-zero)
/// when a byte comes back wrong or a connection closes.
pub fn parse_echo_load(text: &str) -> Result<Outcome, String> {
    let line = text
        .lines()
        .find(|l| l.starts_with("round_trips="))
        .ok_or("echo_load printed no result")?;
    let o = Outcome {
        requests: num(kv(line, "round_trips")).unwrap_or(0.0),
        secs: num(kv(line, "seconds")).unwrap_or(0.0),
        p50: num(kv(line, "p50_us")),
        p99: num(kv(line, "p99_us")),
        p999: num(kv(line, "p999_us")),
        detail: String::new(),
    };
    if o.requests == 0.0 {
        return Err("echo_load: no round trip".into());
    }
    Ok(o)
}

/// A wrk time, `250.00us`, `1.20ms` or `2.00s`, in microseconds.
fn wrk_us(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 60e6,
        _ => return None,
    })
}

/// wrk's report (with `--latency`). Any socket error or non-2xx answer
/// fails the run: a server that answers wrong fast must not look fast.
pub fn parse_wrk(text: &str) -> Result<Outcome, String> {
    let mut o = Outcome::default();
    for line in text.lines().map(str::trim) {
        let w: Vec<&str> = line.split_whitespace().collect();
        if line.contains(" requests in ") {
            o.requests = w[0].parse().unwrap_or(0.0);
            o.secs = wrk_us(w[3].trim_end_matches(',')).unwrap_or(0.0) / 1e6;
        } else if line.starts_with("Socket errors:") || line.starts_with("Non-2xx") {
            return Err(format!("wrk: {line}"));
        } else if w.len() == 2 && w[0] == "50%" {
            o.p50 = wrk_us(w[1]);
        } else if w.len() == 2 && w[0] == "99%" {
            o.p99 = wrk_us(w[1]);
        }
    }
    if o.requests == 0.0 {
        return Err(format!("wrk: no request answered: {}", text.trim()));
    }
    Ok(o)
}

/// redis-benchmark's `-q` report: one `TEST: N requests per second` line per
/// test (after progress lines that end in `\r`). `per_test` requests each.
pub fn parse_redis(text: &str, per_test: u64, secs: f64) -> Result<Outcome, String> {
    let mut rates = Vec::new();
    for line in text.split(['\r', '\n']) {
        if line.contains("rror") || line.contains("Could not connect") {
            return Err(format!("redis-benchmark: {}", line.trim()));
        }
        if let Some((test, rest)) = line.split_once(": ") {
            if let Some((rate, _)) = rest.split_once(" requests per second") {
                rates.push(format!("{} {}", test.trim(), rate.trim()));
            }
        }
    }
    // -t ping,set,get runs four tests: PING_INLINE, PING_MBULK, SET, GET.
    if rates.len() != 4 {
        return Err(format!(
            "redis-benchmark: {} of 4 tests reported: {}",
            rates.len(),
            text.trim()
        ));
    }
    Ok(Outcome {
        requests: (per_test * rates.len() as u64) as f64,
        secs,
        detail: rates.join("; "),
        ..Outcome::default()
    })
}

/// conn_cost's table row for `backend`: its memory per connection, in KiB.
pub fn parse_conn_cost(text: &str, backend: &str) -> Result<f64, String> {
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("| {backend} |")))
        .ok_or_else(|| format!("conn_cost printed no row for {backend}: {}", text.trim()))?;
    let cell = row.split('|').nth(2).unwrap_or("");
    num(cell.split_whitespace().next()).ok_or_else(|| format!("conn_cost: bad row {row}"))
}

/// The accept client's line.
pub fn parse_accept(text: &str) -> Result<Outcome, String> {
    let line = text
        .lines()
        .find(|l| l.starts_with("connections="))
        .ok_or_else(|| format!("accept client printed no result: {}", text.trim()))?;
    let errors = num(kv(line, "errors")).unwrap_or(1.0);
    if errors > 0.0 {
        return Err(format!("accept client: {line}"));
    }
    let o = Outcome {
        requests: num(kv(line, "connections")).unwrap_or(0.0),
        secs: num(kv(line, "seconds")).unwrap_or(0.0),
        ..Outcome::default()
    };
    if o.requests == 0.0 {
        return Err("accept client: no connection".into());
    }
    Ok(o)
}

// ANCHOR: accept_client
/// One new connection: connect, one `PING\r\n` echoed back (so the server
/// accepted it and served it, not only the kernel's backlog), close.
fn one_connection(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"PING\r\n")?;
    let mut buf = [0u8; 6];
    s.read_exact(&mut buf)?;
    if &buf != b"PING\r\n" {
        return Err(std::io::Error::other(format!("echoed {buf:?}")));
    }
    // Close with a reset (SO_LINGER 0): a normal close leaves the socket in
    // TIME_WAIT on our side for a minute, and at tens of thousands of
    // connections a second the 28,000 ephemeral ports would run out.
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on an fd we own, with a value of the right size.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    Ok(())
}

/// The accept-rate client: `threads` threads open, use and close
/// connections for `seconds`, each one at a time. Several threads keep
/// several connections in the making, so that a server with several loops
/// has work for each.
pub fn accept_client(port: u16, seconds: f64, threads: usize) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (done, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let first_error = std::sync::Mutex::new(None);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                while Instant::now() < end {
                    match one_connection(addr) {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            first_error.lock().unwrap().get_or_insert(e.to_string());
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            });
        }
    });
    println!(
        "connections={} seconds={:.3} errors={} first_error={:?}",
        done.into_inner(),
        start.elapsed().as_secs_f64(),
        failed.into_inner(),
        first_error.into_inner().unwrap().unwrap_or_default()
    );
}
// ANCHOR_END: accept_client
