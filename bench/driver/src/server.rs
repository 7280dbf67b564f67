//! The servers under test: how each is started (pinned with `taskset`, on a
//! free port), how the driver knows it is ready, and how it is stopped, by
//! its PID. Also the peers from Debian packages (`nginx`, `redis-server`),
//! installed when missing, with a configuration of their own in a temporary
//! folder. Chapter 14, "Benchmarks", explains the choices.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A command's arguments, written as one string: none of ours holds a space.
pub fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// How a server says it is ready.
#[derive(Clone, Copy, PartialEq)]
pub enum Ready {
    /// It prints `NAME server started on port P`, on stdout or stderr: ours,
    /// tokio's, evio's.
    Line,
    /// It prints nothing useful: ready when its port takes a connection
    /// (nginx, redis-server).
    Connect,
}

/// One server to measure: its name in the tables and how to start it.
/// `{port}` and `{dir}` in the arguments and files are replaced by a port
/// checked free (`0` for servers that print the port they bound) and a
/// temporary folder of its own.
#[derive(Clone)]
pub struct Launch {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Files written into `{dir}` before the start: (name, contents).
    pub files: Vec<(String, String)>,
    pub ready: Ready,
    /// A thread per connection (our thread-based variant): `perf stat -p`
    /// does not follow threads born after it attached.
    pub thread_per_conn: bool,
}

impl Launch {
    /// One of our examples (or the tokio peers) with `flags`: `--port 0`,
    /// and the port read from the ready line.
    pub fn ours(name: &str, program: &Path, flags: &str) -> Launch {
        Launch {
            name: name.into(),
            program: program.to_path_buf(),
            args: words(&format!("--port 0 {flags}")),
            env: vec![],
            files: vec![],
            ready: Ready::Line,
            thread_per_conn: flags.contains("threads"),
        }
    }
}

/// A running server. Dropping it stops it.
pub struct Server {
    pub name: String,
    pub pid: u32,
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

/// A TCP port that nothing listens on now: bound, read and let go. (Another
/// process could take it in between; the start then fails and says so.)
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The port in `... started on port P ...`.
fn ready_port(line: &str) -> Option<u16> {
    let rest = line.split("started on port ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

// ANCHOR: start
/// Starts `launch` pinned to `cpus` (a `taskset -c` list) and waits, at most
/// `timeout`, until it is ready.
pub fn start(launch: &Launch, cpus: &str, timeout: Duration) -> std::io::Result<Server> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("evio-bench-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = match launch.ready {
        Ready::Connect => free_port()?,
        Ready::Line if launch.args.iter().any(|a| a.contains("{port}")) => free_port()?,
        Ready::Line => 0,
    };
    let fill = |s: &str| {
        s.replace("{port}", &port.to_string())
            .replace("{dir}", &dir.to_string_lossy())
    };
    for (file, text) in &launch.files {
        std::fs::write(dir.join(file), fill(text))?;
    }
    // taskset execs the server: the child's PID is the server's.
    let mut child = Command::new("taskset")
        .args(["-c", cpus])
        .arg(&launch.program)
        .args(launch.args.iter().map(|a| fill(a)))
        .envs(launch.env.iter().cloned())
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", launch.program.display())))?;
    // Both outputs are read to their end by threads of their own, so that a
    // chatty server never blocks on a full pipe; lines reach us here.
    let (tx, rx) = mpsc::channel::<String>();
    for out in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut server = Server {
        name: launch.name.clone(),
        pid: child.id(),
        port,
        child,
        dir,
    };
    let deadline = Instant::now() + timeout;
    let mut said = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::other(format!(
                "{} was not ready after {timeout:?}; it said: {said:?}",
                launch.name
            )));
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(std::io::Error::other(format!(
                "{} exited ({status}) before it was ready; it said: {said:?}",
                launch.name
            )));
        }
        match launch.ready {
            Ready::Line => match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) => match ready_port(&line) {
                    // evio's Go examples print the port they were given.
                    Some(p) if p != 0 => {
                        server.port = p;
                        return Ok(server);
                    }
                    Some(_) => return Ok(server),
                    None => said.push(line),
                },
                Err(_) => continue,
            },
            Ready::Connect => {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(server);
                }
                said.extend(rx.try_iter());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
// ANCHOR_END: start

// ANCHOR: stop
impl Drop for Server {
    /// Stops the server by its PID: SIGTERM, a grace period of two seconds to
    /// exit, then SIGKILL; and always `wait`, so that no zombie is left.
    fn drop(&mut self) {
        // SAFETY: a plain system call on our own child's PID, which is not
        // reaped yet (we wait for it below), so it cannot be reused.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not exit on SIGTERM: SIGKILL", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
// ANCHOR_END: stop

/// Whether `program` is on the PATH.
pub fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the Debian `packages` with apt-get when their programs are
/// missing; says why not when it cannot. Returns whether they are there.
pub fn ensure(program: &str, package: &str, install: bool) -> bool {
    if installed(program) {
        return true;
    }
    if !install {
        println!("peer {program}: skipped (not installed; the full run installs it)");
        return false;
    }
    println!("peer {program}: not installed: apt-get install -y {package}");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // An old or empty package list fails the first try: update, try again.
    let installed_now = apt(&["install", "-y", "-qq", package])
        || (apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", package]));
    if !installed_now {
        println!(
            "peer {program}: skipped (apt-get install {package} failed: not root, or offline?)"
        );
        return false;
    }
    installed(program)
}

// ANCHOR: nginx
/// nginx as the HTTP peer: one process (no master: `perf stat -p` then sees
/// the one that works), one worker's event loop, no logs, every path in the
/// temporary folder so that it runs without touching `/etc` or `/var`.
/// Keep-alive connections are never closed after N requests (nginx's
/// default closes them every 1,000; wrk would reconnect and our servers
/// never make it do that).
const NGINX_CONF: &str = r#"
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    keepalive_requests 1000000000;
    server {
        listen 127.0.0.1:{port};
        location / {
            default_type text/plain;
            return 200 "Hello World!\r\n";
        }
    }
}
"#;
// ANCHOR_END: nginx

pub fn nginx() -> Launch {
    Launch {
        name: "nginx".into(),
        program: "nginx".into(),
        // -e: the error log before the configuration is read, which would
        // otherwise be /var/log/nginx/error.log.
        args: words("-p {dir} -c {dir}/nginx.conf -e {dir}/error.log"),
        env: vec![],
        files: vec![("nginx.conf".into(), NGINX_CONF.into())],
        ready: Ready::Connect,
        thread_per_conn: false,
    }
}

/// redis-server as the Redis peer: no persistence (neither snapshots nor the
/// append-only log: our redis example has neither), local only.
pub fn redis_server() -> Launch {
    Launch {
        name: "redis-server".into(),
        program: "redis-server".into(),
        args: words("{dir}/redis.conf"),
        env: vec![],
        files: vec![(
            "redis.conf".into(),
            "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {dir}\n".into(),
        )],
        ready: Ready::Connect,
        thread_per_conn: false,
    }
}

/// evio's own example `name` (`echo-server`, `http-server`, `redis-server`)
/// from a folder of binaries built elsewhere, on one loop (`GOMAXPROCS`):
/// the driver never fetches or builds Go code.
pub fn evio_go(dir: &std::path::Path, name: &str, loops: usize) -> Option<Launch> {
    let program = dir.join(name);
    if !program.is_file() {
        println!("peer evio (Go): skipped, no {}", program.display());
        return None;
    }
    Some(Launch {
        name: "evio (Go)".into(),
        program,
        args: words("-port {port}"),
        env: vec![("GOMAXPROCS".into(), loops.to_string())],
        files: vec![],
        ready: Ready::Line,
        thread_per_conn: false,
    })
}
