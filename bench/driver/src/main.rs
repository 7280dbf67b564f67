//! evio-bench: runs evio-rs's example servers and their peers side by side,
//! under the same clients, on CPUs of their own, interleaved and repeated,
//! and writes every run to a CSV, the medians to a Markdown summary and
//! charts to SVG files. Chapter 14, "Benchmarks", explains how and why, and
//! shows the results; this file is the plan and the loop that runs it.
//!
//! ```text
//! cargo run --release -p evio-bench -- --full     # about 40 minutes; into chapters/bench/
//! cargo run -p evio-bench -- --quick              # the CI smoke test; into a temp folder
//! ```
//!
//! The servers and clients are built with the driver's own profile: quick
//! mode, which checks answers and never speed, runs on the debug build that
//! `cargo test` made already.

mod charts;
mod client;
mod machine;
mod measure;
mod plan;
mod report;
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use client::Client;
use machine::{Cpus, Sample};
use measure::{Counter, Method};
use plan::{client_cmd, redis_requests, Workload};
use report::{human, spread, Row};
use server::{words, Launch};

/// evio-bench: evio-rs and its peers under the same loads, side by side
#[derive(Parser)]
#[command(name = "evio-bench")]
struct Flags {
    /// The smoke test: ~2 s per run, one run each, our servers and the
    /// peers already installed; writes into a temporary folder
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// The whole benchmark: 10 s per run, three runs each, peers installed
    /// when missing; writes into chapters/bench/
    #[arg(long)]
    full: bool,
    /// CPUs to use, the first N (default: all): servers on the first
    /// half, clients on the rest
    #[arg(long)]
    cores: Option<usize>,
    /// Where to write the CSV, the summary and the charts
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only these workloads (echo1,echo64,http,redis1,redis16,idle1000,idle10000,accept1,acceptN)
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Seconds per run (default: 2 quick, 10 full)
    #[arg(long)]
    seconds: Option<f64>,
    /// Runs of each server per workload (default: 1 quick, 3 full)
    #[arg(long)]
    runs: Option<usize>,
    /// The longest wait for an idle machine before a run, in seconds
    /// (default: 1 quick, 15 full)
    #[arg(long)]
    idle_wait: Option<f64>,
    /// Do not build the servers first (cargo build --release ...)
    #[arg(long)]
    no_build: bool,
    /// Never apt-get install a missing peer or tool
    #[arg(long)]
    no_install: bool,
    /// Build the examples with the libkqueue feature and measure the
    /// kqueue backend too (chapter 10)
    #[arg(long)]
    libkqueue: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// The accept-rate client, which the driver starts pinned on the client CPUs
    #[command(hide = true)]
    AcceptClient {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        seconds: f64,
        #[arg(long, default_value_t = 4)]
        threads: usize,
    },
}

/// What every run needs to know.
struct Ctx {
    cpus: Cpus,
    server_cpus: String,
    client_cpus: String,
    /// target/release (or target/debug), where the servers and clients were built.
    bin: PathBuf,
    method: Method,
    seconds: f64,
    /// After the client starts, before measuring: its connections made.
    warmup: f64,
    idle_window: Duration,
    idle_limit: Duration,
    quick: bool,
    /// redis-benchmark's requests per test, by pipeline depth, once calibrated.
    redis_n: std::cell::RefCell<std::collections::HashMap<usize, u64>>,
}

impl Ctx {
    fn example(&self, name: &str) -> PathBuf {
        self.bin.join("examples").join(name)
    }
}

/// Sizes redis-benchmark's count for this machine: one short run against
/// the first server of the workload, and a count per test that takes
/// `seconds` for the four tests at that rate, the same for every server.
fn calibrate_redis(ctx: &Ctx, pipeline: usize, launch: &Launch) {
    let nominal = redis_requests(ctx, pipeline);
    let probe = (nominal / 4).max(1000);
    let rate = (|| {
        let server = server::start(launch, &ctx.server_cpus, Duration::from_secs(10)).ok()?;
        let args = words(&format!(
            "-h 127.0.0.1 -p {} -q -t get -c 50 -P {pipeline} -n {probe}",
            server.port
        ));
        let client = Client::spawn(Path::new("redis-benchmark"), &args, &ctx.client_cpus).ok()?;
        let (_, secs) = client
            .finish(Instant::now() + Duration::from_secs(60))
            .ok()?;
        Some(probe as f64 / secs)
    })();
    if let Some(rate) = rate {
        // Half as many again: a run on a machine gone quicker than the
        // probe's still lasts its `seconds`, and the window its length.
        let n = (1.5 * rate * ctx.seconds / 4.0).max(1000.0) as u64;
        println!(
            "redis -P {pipeline}: {} requests per test (a probe ran at {}/s)",
            human(n as f64),
            human(rate)
        );
        ctx.redis_n.borrow_mut().insert(pipeline, n);
    }
}

/// Sleeps `secs`, or less if the client exits first.
fn sleep_while_running(client: &mut Client, secs: f64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end && !client.exited() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ANCHOR: measure
/// One run of a server under a workload: start it, start the client, let
/// it warm up, then measure over a window (to the client's last second, or
/// its end): the CPUs' busy time, the server's own CPU time, its system calls
/// and context switches. Every per-request number divides by the requests
/// of that window (the client's rate times the window's length).
fn measure(ctx: &Ctx, w: Workload, launch: &Launch, row: &mut Row) -> Result<(), String> {
    let server = server::start(launch, &ctx.server_cpus, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let (program, args) = client_cmd(ctx, w, server.port);
    let mut client = Client::spawn(&program, &args, &ctx.client_cpus).map_err(|e| e.to_string())?;
    // redis-benchmark connects anew for each of its four tests: no
    // warm-up makes it faster, and its count of requests ends the window.
    let warmup = if matches!(w, Workload::Redis(_)) {
        0.3
    } else {
        ctx.warmup
    };
    sleep_while_running(&mut client, warmup);
    let counter = (!(launch.thread_per_conn && w.reconnects()))
        .then(|| Counter::attach(ctx.method, server.pid, &ctx.client_cpus));
    let pid = server.pid;
    let (s0, t0) = (Sample::take(), Instant::now());
    let (switches0, cpu0) = (measure::context_switches(pid), measure::cpu_seconds(pid));
    // The window ends a warm-up's length before the client's last second.
    sleep_while_running(&mut client, ctx.seconds - 2.0 * ctx.warmup);
    let (s1, secs) = (Sample::take(), t0.elapsed().as_secs_f64());
    let (switches1, cpu1) = (measure::context_switches(pid), measure::cpu_seconds(pid));
    let syscalls = counter.and_then(Counter::finish);
    // Time-bounded clients end on their own; redis-benchmark's count of
    // requests may take longer on a slow machine.
    let deadline = Instant::now() + Duration::from_secs_f64(ctx.seconds * 10.0 + 30.0);
    let (text, ran) = client.finish(deadline)?;
    drop(server);
    let outcome = match w {
        Workload::Echo(_) => client::parse_echo_load(&text),
        Workload::Http => client::parse_wrk(&text),
        Workload::Redis(p) => client::parse_redis(&text, redis_requests(ctx, p), ran),
        Workload::Accept(_) | Workload::Idle(_) => client::parse_accept(&text),
    }?;
    let rate = outcome.rate();
    row.value = rate;
    (row.p50_us, row.p99_us, row.p999_us) = (outcome.p50, outcome.p99, outcome.p999);
    row.detail = outcome.detail;
    row.window_s = secs;
    if secs < 0.2 {
        return Ok(()); // The client ended before there was a window: rate only.
    }
    let requests = rate * secs;
    let server_busy = s1.busy_since(&s0, &ctx.cpus.server);
    row.server_busy = Some(server_busy);
    row.client_busy = Some(s1.busy_since(&s0, &ctx.cpus.client));
    row.steal = Some(s1.steal_since(&s0, &ctx.cpus.used()));
    row.server_process = Some((cpu1 - cpu0) / secs);
    // Busy CPU-seconds of the server's CPUs, per request.
    row.cpu_per_req_us = Some(server_busy * ctx.cpus.server.len() as f64 * secs / requests * 1e6);
    row.switches_per_req = Some(switches1.saturating_sub(switches0) as f64 / requests);
    if let Some((total, detail)) = syscalls {
        row.syscalls_per_req = Some(total / requests);
        row.syscall_detail = detail
            .iter()
            .filter(|(_, n)| *n > 0.0)
            .map(|(name, n)| format!("{name}={:.3}", n / requests))
            .collect::<Vec<_>>()
            .join(" ");
    }
    Ok(())
}
// ANCHOR_END: measure

/// The idle-connections workload: `conn_cost` starts the echo example
/// itself (pinned to the first server CPU) and measures its memory.
fn measure_idle(ctx: &Ctx, conns: usize, launch: &Launch, row: &mut Row) -> Result<(), String> {
    let backend = launch.args.iter().skip_while(|a| *a != "--backend").nth(1);
    let backend = backend.map_or("epoll", String::as_str);
    let args = words(&format!(
        "--conns {conns} --seconds 1 --runs 1 --no-wait --backends {backend} --server-cpu {}",
        ctx.cpus.server[0]
    ));
    let client = Client::spawn(&ctx.example("conn_cost"), &args, &ctx.client_cpus)
        .map_err(|e| e.to_string())?;
    let (text, _) = client.finish(Instant::now() + Duration::from_secs(180))?;
    row.value = client::parse_conn_cost(&text, backend)?;
    Ok(())
}

fn run(ctx: &Ctx, w: Workload, launch: &Launch, rep: usize) -> Row {
    let mut row = Row {
        workload: w.title(),
        server: launch.name.clone(),
        rep,
        unit: w.unit().into(),
        ..Row::default()
    };
    (row.busy_before, row.idle_before) =
        machine::wait_idle(&ctx.cpus.used(), 0.10, ctx.idle_window, ctx.idle_limit);
    let result = match w {
        Workload::Idle(n) => measure_idle(ctx, n, launch, &mut row),
        _ => measure(ctx, w, launch, &mut row),
    };
    row.error = result.err();
    row
}

/// Builds the servers and clients this driver starts, with the driver's
/// own profile: `cargo run --release` measures release builds, and CI's
/// plain `cargo run` reuses the debug build of its tests step.
fn build(root: &Path, libkqueue: bool) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args([
        "build",
        "-p",
        "evio-rs",
        "-p",
        "evio-peers",
        "--examples",
        "--bins",
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    if libkqueue {
        cmd.args(["--features", "evio-rs/libkqueue"]);
    }
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        other => Err(format!("building the servers failed: {other:?}")),
    }
}

fn main() {
    let flags = Flags::parse();
    if let Some(Cmd::AcceptClient {
        port,
        seconds,
        threads,
    }) = flags.cmd
    {
        client::accept_client(port, seconds, threads);
        return;
    }
    if !flags.quick && !flags.full {
        eprintln!("evio-bench: choose --quick (the smoke test, ~2 min) or --full (~40 min); --help for more");
        std::process::exit(2);
    }
    let quick = flags.quick;
    if !quick && cfg!(debug_assertions) {
        eprintln!("evio-bench: the numbers of a debug build mean nothing: cargo run --release -p evio-bench -- --full");
        std::process::exit(2);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    if !flags.no_build {
        if let Err(e) = build(&root, flags.libkqueue) {
            eprintln!("evio-bench: {e}");
            std::process::exit(1);
        }
    }
    // Quick mode never overwrites the charts the book shows.
    let out = flags.out.clone().unwrap_or_else(|| {
        if quick {
            std::env::temp_dir().join(format!("evio-bench-quick-{}", std::process::id()))
        } else {
            root.join("chapters/bench")
        }
    });
    let cpus = Cpus::split(flags.cores);
    let install = !quick && !flags.no_install;
    for (tool, package) in [
        ("wrk", "wrk"),
        ("redis-benchmark", "redis-tools"),
        ("perf", "linux-perf"),
    ] {
        server::ensure(tool, package, install);
    }
    let seconds = flags.seconds.unwrap_or(if quick { 2.0 } else { 10.0 });
    let ctx = Ctx {
        server_cpus: cpus.list(&cpus.server),
        client_cpus: cpus.list(&cpus.client),
        cpus,
        bin: std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| root.join("target/release")),
        method: Method::detect(),
        seconds,
        warmup: if quick { 0.5 } else { 1.0 },
        idle_window: Duration::from_millis(if quick { 300 } else { 1000 }),
        idle_limit: Duration::from_secs_f64(flags.idle_wait.unwrap_or(if quick {
            1.0
        } else {
            15.0
        })),
        quick,
        redis_n: Default::default(),
    };
    println!("system calls counted with: {:?}", ctx.method);
    let mut env = machine::environment(&ctx.cpus);
    let runs = flags.runs.unwrap_or(if quick { 1 } else { 3 }).max(1);
    let plan = plan::plan(&ctx, install, flags.libkqueue, &flags.only);
    let total: usize = plan.iter().map(|(_, s)| s.len() * runs).sum();
    let started = Instant::now();
    let steal0 = Sample::take();
    let mut rows: Vec<Row> = Vec::new();

    // ANCHOR: interleave
    // Each workload's servers take turns, A B C A B C ...: a slow minute of
    // the machine then falls on every server once, not on all runs of one.
    for (w, servers) in &plan {
        if let (Workload::Redis(p), false, Some(first)) = (w, quick, servers.first()) {
            calibrate_redis(&ctx, *p, first);
        }
        for rep in 1..=runs {
            for launch in servers {
                let row = run(&ctx, *w, launch, rep);
                println!(
                    "[{:>3}/{total}] {:<20} {:<22} run {rep}: {}",
                    rows.len() + 1,
                    row.workload,
                    row.server,
                    match &row.error {
                        Some(e) => format!("FAILED: {e}"),
                        None => format!(
                            "{} {}, server CPU {}, {} syscalls/req{}",
                            human(row.value),
                            row.unit,
                            row.server_busy
                                .map_or("n/a".into(), |b| format!("{:.0} %", b * 100.0)),
                            row.syscalls_per_req.map_or("n/a".into(), human),
                            if row.idle_before {
                                ""
                            } else {
                                " (machine was busy)"
                            }
                        ),
                    }
                );
                rows.push(row);
            }
        }
    }
    // ANCHOR_END: interleave

    let idle = rows.iter().filter(|r| r.idle_before).count();
    let busy_before = spread(rows.iter().map(|r| Some(r.busy_before * 100.0)));
    env.extend([
        (
            "mode".to_string(),
            format!(
                "{}: {runs} run(s) of each server, {seconds} s each, interleaved; {:.0} minutes in all",
                if quick { "--quick" } else { "--full" },
                started.elapsed().as_secs_f64() / 60.0
            ),
        ),
        ("system calls counted with".into(), format!("{:?}", ctx.method)),
        (
            "idle machine before a run".into(),
            format!(
                "{idle} of {} runs (busiest CPU under 10 % over {:?}, waited at most {:?}); busiest CPU before a run: median {:.0} %, max {:.0} %",
                rows.len(),
                ctx.idle_window,
                ctx.idle_limit,
                busy_before.map_or(0.0, |b| b.0),
                busy_before.map_or(0.0, |b| b.2)
            ),
        ),
        (
            "steal time".into(),
            format!("{:.2} % of the benchmark's CPUs' time", Sample::take().steal_since(&steal0, &ctx.cpus.used()) * 100.0),
        ),
        (
            "load average after".into(),
            std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string(),
        ),
    ]);

    if let Err(e) = write_outputs(&out, &env, &plan, &rows) {
        eprintln!("evio-bench: writing {}: {e}", out.display());
        std::process::exit(1);
    }
    println!(
        "\n{}",
        std::fs::read_to_string(out.join("summary.md")).unwrap_or_default()
    );
    println!("wrote {} (runs.csv, summary.md, *.svg)", out.display());
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        eprintln!(
            "evio-bench: {failed} of {} runs failed (listed above)",
            rows.len()
        );
        std::process::exit(1);
    }
}

/// The CSV, the summary and the charts, into `out`.
fn write_outputs(
    out: &Path,
    env: &[(String, String)],
    plan: &[(Workload, Vec<Launch>)],
    rows: &[Row],
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    report::write_csv(&out.join("runs.csv"), rows)?;
    let workloads: Vec<(String, String, Vec<String>)> = plan
        .iter()
        .map(|(w, s)| {
            (
                w.title(),
                w.about(),
                s.iter().map(|l| l.name.clone()).collect(),
            )
        })
        .collect();
    std::fs::write(
        out.join("summary.md"),
        report::summary(env, &workloads, rows),
    )?;

    // One bar per server: the median of `f` over its runs, with min and max.
    let panel = |w: Workload, title: String, unit: &str, f: &dyn Fn(&Row) -> Option<f64>| {
        let servers = &plan.iter().find(|(x, _)| *x == w).unwrap().1;
        charts::Panel {
            title,
            unit: unit.into(),
            bars: servers
                .iter()
                .filter_map(|l| {
                    let (median, min, max) =
                        spread(report::runs(rows, &w.title(), &l.name).iter().map(|r| f(r)))?;
                    Some(charts::Bar {
                        label: l.name.clone(),
                        median,
                        min,
                        max,
                    })
                })
                .collect(),
        }
    };
    let busy: Vec<Workload> = plan
        .iter()
        .map(|(w, _)| *w)
        .filter(|w| !matches!(w, Workload::Idle(_)))
        .collect();
    let idle: Vec<Workload> = plan
        .iter()
        .map(|(w, _)| *w)
        .filter(|w| matches!(w, Workload::Idle(_)))
        .collect();
    let each =
        |ws: &[Workload], unit: &str, f: &dyn Fn(&Row) -> Option<f64>| -> Vec<charts::Panel> {
            ws.iter()
                .map(|w| {
                    panel(
                        *w,
                        w.title(),
                        if unit.is_empty() { w.unit() } else { unit },
                        f,
                    )
                })
                .collect()
        };
    charts::draw(
        &out.join("throughput.svg"),
        "Throughput (longer is better)",
        &each(&busy, "", &|r| Some(r.value)),
    )?;
    charts::draw(
        &out.join("cpu-per-request.svg"),
        "Server CPU time per request, µs (shorter is better)",
        &each(&busy, "µs", &|r| r.cpu_per_req_us),
    )?;
    charts::draw(
        &out.join("syscalls.svg"),
        "System calls per request (shorter is better)",
        &each(&busy, "system calls", &|r| r.syscalls_per_req),
    )?;
    charts::draw(
        &out.join("memory.svg"),
        "Memory per idle connection, KiB (shorter is better)",
        &each(&idle, "", &|r| Some(r.value)),
    )?;
    let mut latency = Vec::new();
    for w in busy
        .iter()
        .filter(|w| matches!(w, Workload::Echo(_) | Workload::Http))
    {
        type Pick = (&'static str, fn(&Row) -> Option<f64>);
        let pick: [Pick; 3] = [
            ("p50", |r| r.p50_us),
            ("p99", |r| r.p99_us),
            ("p99.9", |r| r.p999_us),
        ];
        for (name, f) in pick {
            latency.push(panel(*w, format!("{}: {name}", w.title()), "µs", &f));
        }
    }
    charts::draw(
        &out.join("latency.svg"),
        "Latency percentiles, µs (shorter is better)",
        &latency,
    )?;
    Ok(())
}
