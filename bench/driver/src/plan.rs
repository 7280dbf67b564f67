//! The plan: the workloads, the servers each one measures, and the client
//! command of each. Chapter 14, "Benchmarks", lists them with the reasons.

use std::path::PathBuf;

use crate::report::human;
use crate::server::{self, words, Launch};
use crate::Ctx;

/// A workload: what the clients do.
#[derive(Clone, Copy, PartialEq)]
pub enum Workload {
    /// echo_load, 50 connections, this many messages in flight on each.
    Echo(usize),
    /// wrk -t1 -c50.
    Http,
    /// redis-benchmark -c 50 -P this.
    Redis(usize),
    /// conn_cost: memory with this many idle connections.
    Idle(usize),
    /// New connections per second, against a server with this many loops.
    Accept(usize),
}

impl Workload {
    /// The name `--only` takes.
    pub fn key(self) -> String {
        match self {
            Workload::Echo(k) => format!("echo{k}"),
            Workload::Http => "http".into(),
            Workload::Redis(p) => format!("redis{p}"),
            Workload::Idle(n) => format!("idle{n}"),
            Workload::Accept(1) => "accept1".into(),
            Workload::Accept(_) => "acceptN".into(),
        }
    }

    pub fn title(self) -> String {
        match self {
            Workload::Echo(k) => format!("echo, {k} in flight"),
            Workload::Http => "http".into(),
            Workload::Redis(p) => format!("redis -P {p}"),
            Workload::Idle(n) => format!("idle connections, {}", human(n as f64)),
            Workload::Accept(1) => "accept, 1 loop".into(),
            Workload::Accept(l) => format!("accept, {l} loops"),
        }
    }

    /// What the client does, for the summary.
    pub fn about(self) -> String {
        match self {
            Workload::Echo(k) => format!(
                "`echo_load`, 50 connections, {k} `PING\\r\\n` in flight on each, every byte checked"
            ),
            Workload::Http => "`wrk -t1 -c50 --latency`, a `Hello World!\\r\\n` response".into(),
            Workload::Redis(p) => format!(
                "`redis-benchmark -q -t ping,set,get -c 50 -P {p}`: the four tests' requests over \
                 their time; each test's own rate is in the CSV"
            ),
            Workload::Idle(n) => format!(
                "`conn_cost --conns {n}`: the server's resident memory with the connections open \
                 (after 1 s of one `PING` in flight on each), less its memory with none, per connection"
            ),
            Workload::Accept(_) => "4 client threads, each connecting, echoing one `PING` and \
                                    closing (with a reset), again and again"
                .into(),
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Workload::Echo(_) => "round trips/s",
            Workload::Http | Workload::Redis(_) => "requests/s",
            Workload::Idle(_) => "KiB/conn",
            Workload::Accept(_) => "connections/s",
        }
    }

    /// Whether its clients open new connections during the measurement:
    /// then the thread-based variant starts threads that `perf stat -p`
    /// never sees, and its system calls are not counted.
    pub fn reconnects(self) -> bool {
        matches!(self, Workload::Redis(_) | Workload::Accept(_))
    }
}

// ANCHOR: plan
/// The servers each workload measures, in the order they take turns.
pub fn plan(
    ctx: &Ctx,
    install: bool,
    kqueue: bool,
    only: &[String],
) -> Vec<(Workload, Vec<Launch>)> {
    let loops = ctx.cpus.server.len();
    let uring = io_uring_serves(ctx);
    // Our server `example` three to five ways: the defaults (the better
    // strategies of chapter 13), evio's own strategies, the thread-based
    // variant (chapter 9), kqueue where it was built (chapter 10), and
    // io_uring where the kernel allows it (chapter 16).
    // Every server listens on 127.0.0.1, as nginx and redis-server are told
    // to (tokio's bind 0.0.0.0: IPv4 too). Our examples' default is one
    // IPv6 socket for both families, through which IPv4 costs the kernel a
    // little more per request (chapter 14 measures it).
    let ours = |example: &str, loops: usize, threads: bool| {
        let bin = ctx.example(example);
        let on = |name: &str, flags: &str| {
            Launch::ours(name, &bin, &format!("--host 127.0.0.1 {flags}"))
        };
        let evio = "--accept every-loop --writes deferred --wakeups every-note --trigger level";
        let mut v = vec![
            on("evio-rs", &format!("--backend epoll --loops {loops}")),
            on(
                "evio-rs, evio's way",
                &format!("--backend epoll --loops {loops} {evio}"),
            ),
        ];
        if threads {
            v.push(on("evio-rs threads", "--backend threads"));
        }
        if kqueue {
            v.push(on(
                "evio-rs kqueue",
                &format!("--backend kqueue --loops {loops}"),
            ));
        }
        if uring {
            v.push(on(
                "evio-rs io_uring",
                &format!("--backend io-uring --loops {loops}"),
            ));
        }
        v
    };
    if !kqueue {
        println!("evio-rs kqueue: skipped (measure it with --libkqueue, chapter 10)");
    }
    let tokio = |name: &str| Launch::ours("tokio", &ctx.bin.join(name), "");
    let nginx = server::ensure("nginx", "nginx", install).then(server::nginx);
    let redis = server::ensure("redis-server", "redis-server", install).then(server::redis_server);
    let go_bin = std::env::var_os("EVIO_GO_BIN").map(PathBuf::from);
    let go = |name: &str| {
        go_bin
            .as_deref()
            .and_then(|d| server::evio_go(d, name, loops))
    };
    // N loops for the accept rate: one per server CPU, and at least two,
    // so that the ways of sharing out connections have something to do.
    let many = loops.max(2);

    let echo = |k| {
        let mut v = ours("echo", loops, true);
        v.push(tokio("tokio_echo"));
        v.extend(go("echo-server"));
        (Workload::Echo(k), v)
    };
    let redis = |p| {
        let mut v = ours("redis", loops, true);
        v.extend(redis.clone());
        v.extend(go("redis-server"));
        (Workload::Redis(p), v)
    };
    let mut http = ours("http", loops, true);
    http.push(tokio("tokio_http"));
    http.extend(nginx);
    http.extend(go("http-server"));
    // conn_cost starts the echo example with a `--backend` of its own:
    // the backends only, not evio's strategies.
    let idle = |n| {
        let mut v = ours("conn_cost", loops, true);
        v.retain(|l| l.name != "evio-rs, evio's way");
        (Workload::Idle(n), v)
    };
    let mut accept1 = ours("echo", 1, true);
    accept1.push(tokio("tokio_echo"));

    let mut all = vec![
        echo(1),
        echo(64),
        (Workload::Http, http),
        redis(1),
        redis(16),
        idle(1000),
        idle(10_000),
        (Workload::Accept(1), accept1),
        (Workload::Accept(many), ours("echo", many, false)),
    ];
    if ctx.quick {
        // The smoke test asks whether every server answers right, not how
        // much memory 10,000 connections take.
        all.retain(|(w, _)| *w != Workload::Idle(10_000));
    }
    if !only.is_empty() {
        all.retain(|(w, _)| only.contains(&w.key()));
    }
    all
}
// ANCHOR_END: plan

/// Whether our io_uring engine serves here: the echo example started with
/// it, once. It fails at bind, saying why, where the kernel is too old or a
/// seccomp profile forbids io_uring (chapter 16); the run goes on without.
fn io_uring_serves(ctx: &Ctx) -> bool {
    let probe = Launch::ours("io_uring probe", &ctx.example("echo"), "--backend io-uring");
    match server::start(&probe, &ctx.server_cpus, std::time::Duration::from_secs(10)) {
        Ok(_server) => true, // dropped: stopped
        Err(e) => {
            println!("evio-rs io_uring: skipped ({e})");
            false
        }
    }
}

// ANCHOR: clients
/// The client of a workload against a server on `port`: program and args.
pub fn client_cmd(ctx: &Ctx, w: Workload, port: u16) -> (PathBuf, Vec<String>) {
    let s = ctx.seconds;
    match w {
        Workload::Echo(k) => (
            ctx.example("echo_load"),
            words(&format!(
                "--addr 127.0.0.1:{port} --conns 50 --inflight {k} --seconds {s} --kv"
            )),
        ),
        Workload::Http => (
            "wrk".into(),
            words(&format!(
                "-t1 -c50 -d{}s --latency http://127.0.0.1:{port}/",
                s.round().max(1.0)
            )),
        ),
        Workload::Redis(p) => (
            "redis-benchmark".into(),
            words(&format!(
                "-h 127.0.0.1 -p {port} -q -t ping,set,get -c 50 -P {p} -n {}",
                redis_requests(ctx, p)
            )),
        ),
        Workload::Accept(_) | Workload::Idle(_) => (
            std::env::current_exe().unwrap_or_else(|_| "evio-bench".into()),
            words(&format!("accept-client --port {port} --seconds {s}")),
        ),
    }
}
// ANCHOR_END: clients

/// redis-benchmark runs a count of requests, not a time. The full run sizes
/// the count on this machine first ([`crate::calibrate_redis`]); until then,
/// a count per test that takes about `seconds` for the four tests on the
/// machine of chapter 12 (90 k/s at -P 1, 1.2 M/s at -P 16). Quick mode asks
/// for a few thousand: it checks answers, not speed.
pub fn redis_requests(ctx: &Ctx, pipeline: usize) -> u64 {
    if let Some(n) = ctx.redis_n.borrow().get(&pipeline) {
        return *n;
    }
    let per_second = match (ctx.quick, pipeline) {
        (true, 1) => 10_000.0,
        (true, _) => 100_000.0,
        (false, 1) => 90_000.0,
        (false, _) => 1_200_000.0,
    };
    (per_second * ctx.seconds / 4.0) as u64
}
