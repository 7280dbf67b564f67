//! The results: one row per run, written as a CSV, and their medians with
//! min and max, written as the Markdown summary that chapter 14,
//! "Benchmarks", includes.

use std::fmt::Write as _;
use std::path::Path;

/// One run: a server under one workload, once.
#[derive(Clone, Default)]
pub struct Row {
    pub workload: String,
    pub server: String,
    pub rep: usize,
    /// Why the run failed, if it did.
    pub error: Option<String>,
    /// The headline number, in `unit`: the client's rate, or KiB per connection.
    pub value: f64,
    pub unit: String,
    /// Busy fraction of the server's CPUs and of the client's, over the
    /// measurement window (`/proc/stat`).
    pub server_busy: Option<f64>,
    pub client_busy: Option<f64>,
    /// The server process's own CPU time over the window, in CPUs.
    pub server_process: Option<f64>,
    /// Busy CPU time of the server's CPUs per request, in microseconds.
    pub cpu_per_req_us: Option<f64>,
    pub syscalls_per_req: Option<f64>,
    /// The breakdown, `epoll_wait=0.05 recvfrom=1.00 ...`, per request.
    pub syscall_detail: String,
    pub switches_per_req: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub detail: String,
    /// The busiest CPU before the run, and whether that was idle enough.
    pub busy_before: f64,
    pub idle_before: bool,
    /// Steal time on the benchmark's CPUs during the window.
    pub steal: Option<f64>,
    pub window_s: f64,
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.4}"))
}

/// A CSV field: quoted when it holds a comma or a quote.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn write_csv(path: &Path, rows: &[Row]) -> std::io::Result<()> {
    let mut out = String::from(
        "workload,server,rep,ok,error,value,unit,server_busy,client_busy,server_process_cpus,\
         cpu_per_req_us,syscalls_per_req,syscall_detail,switches_per_req,p50_us,p99_us,p999_us,\
         detail,busy_before,idle_before,steal,window_s\n",
    );
    for r in rows {
        let cells = [
            field(&r.workload),
            field(&r.server),
            r.rep.to_string(),
            r.error.is_none().to_string(),
            field(r.error.as_deref().unwrap_or("")),
            format!("{:.3}", r.value),
            field(&r.unit),
            opt(r.server_busy),
            opt(r.client_busy),
            opt(r.server_process),
            opt(r.cpu_per_req_us),
            opt(r.syscalls_per_req),
            field(&r.syscall_detail),
            opt(r.switches_per_req),
            opt(r.p50_us),
            opt(r.p99_us),
            opt(r.p999_us),
            field(&r.detail),
            format!("{:.3}", r.busy_before),
            r.idle_before.to_string(),
            opt(r.steal),
            format!("{:.2}", r.window_s),
        ];
        out += &cells.join(",");
        out.push('\n');
    }
    std::fs::write(path, out)
}

// ANCHOR: median
/// Median, min and max of the values present: with 3 runs, the middle one
/// and the two others. The median of an odd number of runs is a run that
/// happened, not an average of two, and one run disturbed by the machine
/// moves it less than it moves a mean.
pub fn spread(values: impl IntoIterator<Item = Option<f64>>) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values
        .into_iter()
        .flatten()
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some((v[(v.len() - 1) / 2], v[0], v[v.len() - 1]))
}
// ANCHOR_END: median

/// The runs of one (workload, server) that succeeded.
pub fn runs<'a>(rows: &'a [Row], workload: &str, server: &str) -> Vec<&'a Row> {
    rows.iter()
        .filter(|r| r.workload == workload && r.server == server && r.error.is_none())
        .collect()
}

/// `1,234,567`, `12.3`, `0.45`: as many digits as the number deserves.
pub fn human(v: f64) -> String {
    if v >= 1000.0 {
        let s = format!("{:.0}", v);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.2}")
    }
}

fn med(rs: &[&Row], f: impl Fn(&Row) -> Option<f64>) -> Option<f64> {
    spread(rs.iter().map(|r| f(r))).map(|s| s.0)
}

fn cell(v: Option<f64>, unit: &str) -> String {
    v.map_or("n/a".into(), |v| format!("{}{unit}", human(v)))
}

/// The summary: the environment, then one table per workload.
pub fn summary(
    env: &[(String, String)],
    workloads: &[(String, String, Vec<String>)],
    rows: &[Row],
) -> String {
    let mut md = String::new();
    md += "| environment | |\n|---|---|\n";
    for (k, v) in env {
        let _ = writeln!(md, "| {k} | {} |", v.replace('|', "/"));
    }
    for (workload, about, servers) in workloads {
        let unit = rows
            .iter()
            .find(|r| &r.workload == workload)
            .map_or("", |r| r.unit.as_str());
        let _ = write!(md, "\n**{workload}** ({about}):\n\n");
        let memory = unit == "KiB/conn";
        if memory {
            md += "| server | KiB per connection | runs |\n|---|---|---|\n";
        } else {
            md += "| server | ";
            md += unit;
            md += " | server CPU busy | the server process | client CPU busy | server CPU per request | system calls per request | context switches per request | latency p50 / p99 / p99.9 | runs |\n";
            md += "|---|---|---|---|---|---|---|---|---|---|\n";
        }
        for server in servers {
            let rs = runs(rows, workload, server);
            let failed = rows
                .iter()
                .filter(|r| &r.workload == workload && &r.server == server && r.error.is_some())
                .count();
            let n = if failed > 0 {
                format!("{} ({failed} failed)", rs.len())
            } else {
                rs.len().to_string()
            };
            let Some((m, lo, hi)) = spread(rs.iter().map(|r| Some(r.value))) else {
                let _ = writeln!(
                    md,
                    "| {server} | failed | {} |",
                    "| ".repeat(if memory { 0 } else { 7 }) + &n
                );
                continue;
            };
            let value = format!("{} ({}–{})", human(m), human(lo), human(hi));
            if memory {
                let _ = writeln!(md, "| {server} | {value} | {n} |");
                continue;
            }
            let pct = |f: fn(&Row) -> Option<f64>| {
                med(&rs, f).map_or("n/a".into(), |v| format!("{:.0} %", v * 100.0))
            };
            // wrk gives no p99.9.
            let lat = [
                med(&rs, |r| r.p50_us),
                med(&rs, |r| r.p99_us),
                med(&rs, |r| r.p999_us),
            ]
            .into_iter()
            .flatten()
            .map(human)
            .collect::<Vec<_>>();
            let lat = if lat.is_empty() {
                "n/a".into()
            } else {
                format!("{} µs", lat.join(" / "))
            };
            let _ = writeln!(
                md,
                "| {server} | {value} | {} | {} | {} | {} | {} | {} | {lat} | {n} |",
                pct(|r| r.server_busy),
                pct(|r| r.server_process),
                pct(|r| r.client_busy),
                cell(med(&rs, |r| r.cpu_per_req_us), " µs"),
                cell(med(&rs, |r| r.syscalls_per_req), ""),
                cell(med(&rs, |r| r.switches_per_req), ""),
            );
        }
    }
    let failures: Vec<&Row> = rows.iter().filter(|r| r.error.is_some()).collect();
    if !failures.is_empty() {
        md += "\n**Failed runs:**\n\n";
        for r in failures {
            let _ = writeln!(
                md,
                "- {}, {}, run {}: {}",
                r.workload,
                r.server,
                r.rep,
                r.error.as_deref().unwrap_or("").replace('|', "/")
            );
        }
    }
    md
}
