//! What tracing costs, ustat beside bpftrace (and BCC where it can run), measured in one run
//! on this machine and printed as one table (also written to target/benchmarks.md).
//!
//! Run it with `scripts/bench` (root). It takes a few minutes:
//! 1. start-up: from exec to probes attached and to the first numbers (100 ms interval);
//! 2. cost to the traced program per probe hit: a JVM calling a method in a loop (extended
//!    probes on; both tools count per class and method), and CPython 3.11 collecting in a loop
//!    (both count collections per generation, time each one into a histogram and sum what
//!    it collected, which is what ustat does for every GC);
//! 3. ustat's own CPU time and peak memory at a 1 s refresh, as CSV and as the dashboard,
//!    tracing 1, 10 and 50 processes;
//! 4. flow: method entries and returns per second delivered and dropped, beside bpftrace
//!    printing the same events;
//! 5. sampling stacks: 1, 10 and 50 busy CPython processes at 99 Hz, ustat beside py-spy
//!    (`compare/sampling.rs`; a table of its own, also target/benchmarks-sampling.md);
//! 6. attach speed of `ustat trace` specs: every USDT site of libjvm.so, and 500 functions
//!    matched by one wildcard, beside bpftrace attaching the same;
//! 7. sampling Java stacks: 1 and 10 busy JVMs at 99 Hz, ustat (async-profiler, where a
//!    registry serves it) (`compare/jvm_sampling.rs`; a table of its own, also
//!    target/benchmarks-jvm-sampling.md).
//!
//! `scripts/bench sampling` runs only the sampling part, `scripts/bench jvm-sampling` only the
//! Java one.

#[path = "compare/jvm_sampling.rs"]
mod jvm_sampling;
#[path = "compare/sampling.rs"]
mod sampling;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::{
    ffi::OsStr,
    fmt::Write as _,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc::{Receiver, channel},
    thread,
    time::{Duration, Instant},
};

use support::{Driven, tmux::Tmux, ustat_binary};

const LIBJVM: &str = "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so";
const PYTHON: &str = "/usr/bin/python3.11";
/// The probes ustat attaches for a JVM; bpftrace gets the same ones.
const JVM_PROBES: &[&str] = &[
    "gc__begin",
    "gc__end",
    "mem__pool__gc__begin",
    "mem__pool__gc__end",
    "class__loaded",
    "class__unloaded",
    "thread__start",
    "thread__stop",
    "method__entry",
    "object__alloc",
    "monitor__contended__enter",
];
const METHOD_CALLS: u32 = 200_000;
const COLLECTIONS: u32 = 1_000;
const RUNS: usize = 3;
const FLOW_MS: u64 = 4_000;
const RESOURCE_SECONDS: u64 = 10;

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/bench")
}

/// Lines of a child's output, with the time each arrived.
fn lines(reader: impl std::io::Read + Send + 'static) -> Receiver<(Instant, String)> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line satisfying `pred`; the time it arrived.
fn arrival(rx: &Receiver<(Instant, String)>, what: &str, pred: impl Fn(&str) -> bool) -> Instant {
    loop {
        let (at, line) = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no {what} within 120 s"));
        if pred(&line) {
            return at;
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn kill(child: &mut Child, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

/// The MethodLoop JVM (extended probes on), warmed up.
fn method_loop() -> (tempfile::TempDir, Driven) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("javac")
        .arg("-d")
        .arg(dir.path())
        .arg(bench_dir().join("MethodLoop.java"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jvm = Driven::spawn(
        Command::new("java")
            .args([
                "-XX:+ExtendedDTraceProbes",
                "-XX:+UseSerialGC",
                "-Xmx256m",
                "-cp",
            ])
            .arg(dir.path())
            .arg("MethodLoop"),
    );
    (dir, jvm)
}

fn gc_loop() -> Driven {
    Driven::spawn(Command::new(PYTHON).arg(bench_dir().join("gc_loop.py")))
}

fn bpftrace(pid: u32, program: &str) -> Child {
    Command::new("bpftrace")
        .args(["-p", &pid.to_string(), "-e", program])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bpftrace (scripts/bench installs it)")
}

/// bpftrace prints "Attaching N probes..." before attaching and nothing after; it has
/// attached once its process holds a perf event per probe site (`sites` at least) and no
/// new one for a while. Returns when the last one appeared.
fn wait_bpftrace_attached(child: &Child, sites: usize) -> Instant {
    // None once bpftrace is gone (a program that ends itself may be that quick).
    let held = || {
        std::fs::read_dir(format!("/proc/{}/fd", child.id()))
            .ok()
            .map(|fds| {
                fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                    .filter(|target| target.to_string_lossy().contains("perf_event"))
                    .count()
            })
    };
    let start = Instant::now();
    let (mut last, mut since) = (0, Instant::now());
    while let Some(now) = held() {
        // Fewer than before: bpftrace is exiting (a zombie holds none).
        if now < last {
            break;
        }
        if now > last {
            (last, since) = (now, Instant::now());
        }
        if last >= sites && since.elapsed() > Duration::from_millis(500) {
            return since;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "bpftrace did not attach"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert!(last >= sites, "bpftrace exited before it attached");
    since
}

/// Ends bpftrace with SIGINT, as a user would. A SIGINT that arrives while it is still
/// settling in is sometimes lost, so it is repeated until bpftrace exits.
fn stop_bpftrace(child: &mut Child) {
    for _ in 0..60 {
        kill(child, libc::SIGINT);
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(1) {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("bpftrace did not stop");
}

fn jvm_probes(action: &str) -> String {
    let points: Vec<String> = JVM_PROBES
        .iter()
        .map(|p| format!("usdt:{LIBJVM}:hotspot:{p}"))
        .collect();
    format!("{} {{ {action} }}", points.join(","))
}

struct Row {
    measure: String,
    ustat: String,
    bpftrace: String,
    bcc: String,
    ratio: String,
}

fn row(measure: &str, ustat: String, bpftrace: String, bcc: &str, ratio: String) -> Row {
    Row {
        measure: measure.into(),
        ustat,
        bpftrace,
        bcc: bcc.into(),
        ratio,
    }
}

/// 1. Exec to attached, and to the first numbers of a 100 ms interval.
fn startup(rows: &mut Vec<Row>, bcc: &str) {
    let (_dir, jvm) = method_loop();
    let pid = jvm.pid().to_string();
    let mut ustat_attach = Vec::new();
    let mut ustat_first = Vec::new();
    let mut bpf_attach = Vec::new();
    let mut bpf_first = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut child = Command::new(ustat_binary())
            .args(["--csv", "-", "-i", "0.1", "-n", "1", "-p", &pid])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = lines(child.stderr.take().unwrap());
        let out = lines(child.stdout.take().unwrap());
        ustat_attach.push(
            arrival(&err, "ustat's attach line", |l| {
                l.starts_with("ustat: tracing")
            })
            .duration_since(start)
            .as_secs_f64(),
        );
        arrival(&out, "the CSV header", |l| l.starts_with("timestamp"));
        ustat_first.push(
            arrival(&out, "the first row", |_| true)
                .duration_since(start)
                .as_secs_f64(),
        );
        child.wait().unwrap();

        let start = Instant::now();
        let program = format!(
            "{} interval:ms:100 {{ printf(\"first\\n\"); exit(); }}",
            jvm_probes("@[probe] = count();")
        );
        let mut child = bpftrace(jvm.pid(), &program);
        let out = lines(child.stdout.take().unwrap());
        arrival(&out, "bpftrace's Attaching line", |l| {
            l.starts_with("Attaching")
        });
        let attached = wait_bpftrace_attached(&child, JVM_PROBES.len());
        bpf_attach.push(attached.duration_since(start).as_secs_f64());
        bpf_first.push(
            arrival(&out, "bpftrace's first interval", |l| l == "first")
                .duration_since(start)
                .as_secs_f64(),
        );
        child.wait().unwrap();
    }
    let (ua, uf, ba, bf) = (
        median(ustat_attach),
        median(ustat_first),
        median(bpf_attach),
        median(bpf_first),
    );
    rows.push(row(
        "start-up: exec to 11 JVM probes attached (s)",
        format!("{ua:.3}"),
        format!("{ba:.3}"),
        bcc,
        format!("{:.2} ({:.1}x faster)", ua / ba, ba / ua),
    ));
    rows.push(row(
        "start-up: exec to first numbers, 100 ms interval (s)",
        format!("{uf:.3}"),
        format!("{bf:.3}"),
        bcc,
        format!("{:.2} ({:.1}x faster)", uf / bf, bf / uf),
    ));
}

/// Runs `measure` in the traced program untraced, then under ustat, then under bpftrace.
fn overhead(
    program: &mut Driven,
    ustat_args: &[&str],
    bpftrace_program: &str,
    bpftrace_probes: usize,
    command: &str,
) -> (f64, f64, f64) {
    let measure = |program: &mut Driven| -> f64 {
        let answer = program.send(command);
        answer
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("bad answer {answer}"))
    };
    let untraced = median((0..RUNS).map(|_| measure(program)).collect());

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let pid = program.pid().to_string();
    let mut args: Vec<&OsStr> = vec![
        "--csv".as_ref(),
        csv.as_os_str(),
        "-p".as_ref(),
        OsStr::new(&pid),
    ];
    args.extend(ustat_args.iter().map(OsStr::new));
    let mut ustat = support::Ustat::spawn(&args);
    ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing"));
    let with_ustat = median((0..RUNS).map(|_| measure(program)).collect());
    ustat.signal(libc::SIGINT);
    ustat.wait();

    let mut bpf = bpftrace(program.pid(), bpftrace_program);
    wait_bpftrace_attached(&bpf, bpftrace_probes);
    let with_bpftrace = median((0..RUNS).map(|_| measure(program)).collect());
    stop_bpftrace(&mut bpf);
    (untraced, with_ustat, with_bpftrace)
}

fn overhead_rows(rows: &mut Vec<Row>) {
    let (_dir, mut jvm) = method_loop();
    let (untraced, u, b) = overhead(
        &mut jvm,
        &[],
        &format!(
            "usdt:{LIBJVM}:hotspot:method__entry {{ @[str(arg1, arg2), str(arg3, arg4)] = count(); }}"
        ),
        1,
        &format!("time {METHOD_CALLS}"),
    );
    rows.push(row(
        "JVM method call, untraced (ns per call)",
        format!("{untraced:.0}"),
        format!("{untraced:.0}"),
        "-",
        "-".into(),
    ));
    rows.push(row(
        "JVM method call: ns added per call (counted per class and method)",
        format!("{:.0}", u - untraced),
        format!("{:.0}", b - untraced),
        "cannot run",
        format!("{:.2}", (u - untraced) / (b - untraced)),
    ));

    let mut python = gc_loop();
    let program = format!(
        "usdt:{PYTHON}:python:gc__start {{ @start[arg0] = count(); @begun[tid] = nsecs; }} \
         usdt:{PYTHON}:python:gc__done /@begun[tid]/ {{ @pause = hist(nsecs - @begun[tid]); \
         @collected = sum(arg0); delete(@begun[tid]); }}"
    );
    let (untraced, u, b) = overhead(
        &mut python,
        &[],
        &program,
        2,
        &format!("time {COLLECTIONS}"),
    );
    rows.push(row(
        "CPython gc.collect(0), untraced (ns)",
        format!("{untraced:.0}"),
        format!("{untraced:.0}"),
        "-",
        "-".into(),
    ));
    rows.push(row(
        "CPython GC: ns added per probe hit (gc__start + gc__done; counted, timed, summed)",
        format!("{:.0}", (u - untraced) / 2.0),
        format!("{:.0}", (b - untraced) / 2.0),
        "cannot run",
        format!("{:.2}", (u - untraced) / (b - untraced)),
    ));
}

/// Nanoseconds on a CPU of every thread of `pid` (the scheduler's exact sum, from
/// `/proc/PID/task/*/schedstat`).
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `prog_type` of a perf-event program in fdinfo (uapi `bpf.h`).
const BPF_PROG_TYPE_PERF_EVENT: u64 = 7;

/// Run time (ns) and runs of the perf-event programs process `pid` holds, from the kernel's
/// BPF statistics in its fds' fdinfo (counted only while statistics are on).
fn perf_event_programs(pid: u32) -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return total;
    };
    for fd in fds.filter_map(Result::ok) {
        let Ok(info) = std::fs::read_to_string(fd.path()) else {
            continue;
        };
        let field = |name: &str| -> Option<u64> {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
        };
        if field("prog_type:") == Some(BPF_PROG_TYPE_PERF_EVENT) {
            total.0 += field("run_time_ns:").unwrap_or(0);
            total.1 += field("run_cnt:").unwrap_or(0);
        }
    }
    total
}

/// CPU seconds (user and system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

/// CPU seconds and peak RSS (KiB) of a process, from /proc.
fn cpu_and_peak(pid: u32) -> (f64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (cpu_seconds(pid), peak)
}

fn resources(rows: &mut Vec<Row>) {
    let mut processes: Vec<Driven> = Vec::new();
    for count in [1, 10, 50] {
        while processes.len() < count {
            let mut python = gc_loop();
            assert_eq!(python.send("busy"), "ok");
            processes.push(python);
        }
        let pids: Vec<String> = processes.iter().map(|p| p.pid().to_string()).collect();
        let pids = pids.join(",");

        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("ustat.csv");
        let mut ustat = support::Ustat::spawn(&[
            OsStr::new("--csv"),
            csv.as_os_str(),
            OsStr::new("-p"),
            OsStr::new(&pids),
        ]);
        ustat
            .stderr
            .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing"));
        thread::sleep(Duration::from_secs(RESOURCE_SECONDS));
        let (csv_cpu, csv_peak) = cpu_and_peak(ustat.child.id());
        ustat.signal(libc::SIGINT);
        ustat.wait();

        let command = format!("{} -i 1 -p {pids}", ustat_binary().display());
        let tmux = Tmux::start(dir.path(), 160, 50, &command);
        tmux.wait_for("the dashboard's rows", |s| s.contains("python"));
        let pane: u32 = tmux.pane("#{pane_pid}").parse().unwrap();
        let dashboard = ustat_in(pane);
        thread::sleep(Duration::from_secs(RESOURCE_SECONDS));
        let (tui_cpu, tui_peak) = cpu_and_peak(dashboard);
        drop(tmux);
        let traced = match count {
            1 => "1 traced process".to_string(),
            n => format!("{n} traced processes"),
        };
        rows.push(row(
            &format!("ustat CPU / peak memory, {traced}, {RESOURCE_SECONDS} s at 1 s: CSV"),
            format!("{:.2} s, {:.1} MiB", csv_cpu, csv_peak as f64 / 1024.0),
            "-".into(),
            "-",
            "-".into(),
        ));
        rows.push(row(
            &format!("ustat CPU / peak memory, {traced}, {RESOURCE_SECONDS} s at 1 s: dashboard"),
            format!("{:.2} s, {:.1} MiB", tui_cpu, tui_peak as f64 / 1024.0),
            "-".into(),
            "-",
            "-".into(),
        ));
    }
}

/// ustat in a tmux pane: the pane's process, or its child when a shell runs it.
fn ustat_in(pane: u32) -> u32 {
    let comm = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm(pane).trim() == "ustat" {
        return pane;
    }
    support::poll("ustat under the pane's shell", || {
        let children =
            std::fs::read_to_string(format!("/proc/{pane}/task/{pane}/children")).ok()?;
        children
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .find(|&c| comm(c).trim() == "ustat")
    })
}

/// Lines in a file.
fn count_lines(path: &Path) -> u64 {
    let file = std::fs::File::open(path).unwrap();
    BufReader::new(file).lines().count() as u64
}

fn flow(rows: &mut Vec<Row>) {
    let (dir, mut jvm) = method_loop();
    let seconds = FLOW_MS as f64 / 1000.0;

    let out = dir.path().join("ustat-flow.txt");
    let mut ustat = Command::new(ustat_binary())
        .args(["--flow", "--text", "-p", &jvm.pid().to_string()])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = lines(ustat.stderr.take().unwrap());
    arrival(&err, "the flow to start", |l| {
        l.starts_with("ustat: following")
    });
    let calls: u64 = jvm.send(&format!("spin {FLOW_MS}")).trim().parse().unwrap();
    kill(&mut ustat, libc::SIGINT);
    ustat.wait().unwrap();
    let lost_line = err
        .try_iter()
        .map(|(_, l)| l)
        .find(|l| l.contains("flow events were lost"));
    let ustat_lost: u64 = lost_line
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let ustat_delivered = count_lines(&out);

    let out = dir.path().join("bpftrace-flow.txt");
    let program = format!(
        "usdt:{LIBJVM}:hotspot:method__entry {{ printf(\"%d -> %s.%s\\n\", tid, str(arg1, arg2), str(arg3, arg4)); }} \
         usdt:{LIBJVM}:hotspot:method__return {{ printf(\"%d <- %s.%s\\n\", tid, str(arg1, arg2), str(arg3, arg4)); }}"
    );
    let mut bpf = Command::new("bpftrace")
        .args(["-p", &jvm.pid().to_string(), "-e", &program])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bpf_err = lines(bpf.stderr.take().unwrap());
    wait_bpftrace_attached(&bpf, 2);
    let bpf_calls: u64 = jvm.send(&format!("spin {FLOW_MS}")).trim().parse().unwrap();
    stop_bpftrace(&mut bpf);
    // The reader ends at bpftrace's exit.
    let stderr: Vec<String> = bpf_err.iter().map(|(_, line)| line).collect();
    // bpftrace: "Lost N events"
    let bpf_lost: u64 = stderr
        .iter()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("Lost ")?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    let bpf_delivered = count_lines(&out).saturating_sub(1); // "Attaching 2 probes..."

    let rate = |n: u64| format!("{:.0}k", n as f64 / seconds / 1000.0);
    rows.push(row(
        "flow: method calls made while watched (per s)",
        rate(calls),
        rate(bpf_calls),
        "-",
        format!("{:.2}", calls as f64 / bpf_calls.max(1) as f64),
    ));
    rows.push(row(
        "flow: entry/return events delivered (per s)",
        rate(ustat_delivered),
        rate(bpf_delivered),
        "cannot run",
        format!(
            "{:.2}",
            ustat_delivered as f64 / bpf_delivered.max(1) as f64
        ),
    ));
    rows.push(row(
        "flow: events dropped (per s, counted and reported)",
        rate(ustat_lost),
        rate(bpf_lost),
        "-",
        "-".into(),
    ));
}

/// Whether BCC's javastat runs here, in a few words.
fn bcc_status() -> String {
    let tool = Path::new("/usr/sbin/javastat-bpfcc");
    if !tool.exists() {
        return "not installed".into();
    }
    let out = Command::new("timeout")
        .arg("60")
        .arg(tool)
        .args(["1", "1"])
        .output();
    match out {
        Ok(out) if out.status.success() => "runs".into(),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr);
            if text.contains("Failed to compile BPF module") {
                "cannot run: no kernel headers".into()
            } else {
                format!(
                    "cannot run: {}",
                    text.lines().last().unwrap_or("exit status {}")
                )
            }
        }
        Err(e) => format!("cannot run: {e}"),
    }
}

/// A program with 500 functions `ustat_bench_fn_000` ... `_499`, waiting on stdin.
fn wildcard_program(dir: &Path) -> PathBuf {
    let mut source = String::from("#include <stdio.h>\n");
    for i in 0..500 {
        let _ = writeln!(
            source,
            "__attribute__((noipa)) int ustat_bench_fn_{i:03}(int x) {{ return x + {i}; }}"
        );
    }
    source.push_str(
        "int main(void) { char line[64]; setvbuf(stdout, 0, _IOLBF, 0); printf(\"ready\\n\");\n\
         while (fgets(line, sizeof line, stdin)) printf(\"ok\\n\"); return 0; }\n",
    );
    let c = dir.join("wildcard.c");
    std::fs::write(&c, source).unwrap();
    let program = dir.join("wildcard");
    let out = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&program)
        .arg(&c)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    program
}

/// `ustat trace -p PID SPEC`: (exec to attached, ustat's CPU time planning and attaching)
/// in ms, and how many sites it attached.
fn ustat_attach(pid: u32, spec: &str) -> (f64, f64, usize) {
    let start = Instant::now();
    let mut child = Command::new(ustat_binary())
        .args(["trace", "-p", &pid.to_string(), spec])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = lines(child.stderr.take().unwrap());
    let (at, line) = loop {
        let (at, line) = err
            .recv_timeout(Duration::from_secs(120))
            .expect("ustat's attach line");
        if line.starts_with("ustat: tracing") {
            break (at, line);
        }
        assert!(!line.starts_with("ustat: "), "ustat: {line}");
    };
    let number_after = |marker: &str| -> f64 {
        let rest = &line[line
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} in {line}"))
            + marker.len()..];
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    let own = {
        let marker = " ms of it on ustat's CPU";
        let end = line
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} in {line}"));
        line[..end]
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let sites = number_after("probes at ") as usize;
    kill(&mut child, libc::SIGINT);
    child.wait().unwrap();
    (at.duration_since(start).as_secs_f64() * 1e3, own, sites)
}

/// bpftrace attaching `program` to `pid`: exec to its last probe attached, in ms.
fn bpftrace_attach(pid: u32, program: &str, sites: usize) -> f64 {
    let start = Instant::now();
    // bpftrace makes a program per probe and refuses more than 512 of either unless told.
    let mut child = Command::new("bpftrace")
        .args(["-p", &pid.to_string(), "-e", program])
        .env("BPFTRACE_MAX_BPF_PROGS", "4096")
        .env("BPFTRACE_MAX_PROBES", "4096")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bpftrace (scripts/bench installs it)");
    let attached = wait_bpftrace_attached(&child, sites);
    stop_bpftrace(&mut child);
    attached.duration_since(start).as_secs_f64() * 1e3
}

/// 5. `ustat trace` attach speed: every USDT site of libjvm.so, 500 wildcard-matched functions.
fn attach_speed(rows: &mut Vec<Row>) {
    let (_dir, jvm) = method_loop();
    let dir = tempfile::tempdir().unwrap();
    let wildcard = wildcard_program(dir.path());
    let functions = Driven::spawn(&mut Command::new(&wildcard));
    let cases = [
        (
            "libjvm.so: every USDT site",
            jvm.pid(),
            format!("u:{LIBJVM}:*:*"),
            format!("usdt:{LIBJVM}:*:* {{ }}"),
        ),
        (
            "500 functions matched by a wildcard",
            functions.pid(),
            format!("p:{}:ustat_bench_fn_*", wildcard.display()),
            format!("uprobe:{}:ustat_bench_fn_* {{ }}", wildcard.display()),
        ),
    ];
    for (what, pid, spec, program) in cases {
        let mut exec = Vec::new();
        let mut own = Vec::new();
        let mut bpf = Vec::new();
        let mut sites = 0;
        for _ in 0..RUNS {
            let (e, o, s) = ustat_attach(pid, &spec);
            exec.push(e);
            own.push(o);
            sites = s;
            bpf.push(bpftrace_attach(pid, &program, s));
        }
        let (e, o, b) = (median(exec), median(own), median(bpf));
        rows.push(row(
            &format!("trace attach, {what} ({sites} sites): exec to attached (ms)"),
            format!("{e:.0}"),
            format!("{b:.0}"),
            "–",
            format!("{:.2} ({:.1}x faster)", e / b, b / e),
        ));
        rows.push(row(
            &format!(
                "trace attach, {what}: ustat's own CPU time, planning + programs + links, without creating its maps (ms)"
            ),
            format!("{o:.1}"),
            "–".into(),
            "–",
            "–".into(),
        ));
    }
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the benchmarks load eBPF programs: run them as root"
    );
    // `cargo bench` passes `--bench`; `scripts/bench sampling` adds `sampling`, and
    // `scripts/bench jvm-sampling` adds `jvm-sampling`.
    if std::env::args().any(|a| a == "sampling") {
        let table = sampling::table();
        print!("{table}");
        let _ = std::fs::write(sampling::target(), &table);
        return;
    }
    if std::env::args().any(|a| a == "jvm-sampling") {
        let table = jvm_sampling::table();
        print!("{table}");
        let _ = std::fs::write(jvm_sampling::target(), &table);
        return;
    }
    let started = Instant::now();
    let bcc = bcc_status();
    let mut rows = Vec::new();
    // `USTAT_BENCH_ONLY=attach,flow` runs only those parts (start-up, overhead, flow,
    // resources, attach); the table then has only their rows.
    let only = std::env::var("USTAT_BENCH_ONLY").ok();
    let wanted = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p == part))
    };
    if wanted("startup") {
        eprintln!("bench: start-up ...");
        startup(&mut rows, &bcc);
    }
    if wanted("overhead") {
        eprintln!("bench: cost per probe hit ...");
        overhead_rows(&mut rows);
    }
    if wanted("flow") {
        eprintln!("bench: flow events ...");
        flow(&mut rows);
    }
    if wanted("resources") {
        eprintln!("bench: ustat's CPU and memory ...");
        resources(&mut rows);
    }
    if wanted("attach") {
        eprintln!("bench: attach speed ...");
        attach_speed(&mut rows);
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| measure | ustat | bpftrace 0.17 | BCC (javastat/pythonstat) | ustat / bpftrace |"
    );
    let _ = writeln!(table, "| --- | --- | --- | --- | --- |");
    for r in &rows {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} |",
            r.measure, r.ustat, r.bpftrace, r.bcc, r.ratio
        );
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let _ = writeln!(
        table,
        "\n{cpus} CPUs, kernel {}, {} s in all; BCC: {bcc}.",
        kernel.trim(),
        started.elapsed().as_secs()
    );
    print!("{table}");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/benchmarks.md");
    let _ = std::fs::write(target, &table);

    eprintln!("bench: sampling stacks, beside py-spy ...");
    let sampling = sampling::table();
    print!("\n{sampling}");
    let _ = std::fs::write(sampling::target(), &sampling);

    eprintln!("bench: sampling Java stacks ...");
    let jvm = jvm_sampling::table();
    print!("\n{jvm}");
    let _ = std::fs::write(jvm_sampling::target(), &jvm);
}
