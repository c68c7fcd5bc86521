//! What sampling Java stacks costs: 1 and 10 HotSpot JVMs (OpenJDK 17, default flags: G1, the
//! JIT) each spinning in one Java method (`assets/bench/JvmBusy.java`), sampled at 99 Hz by
//! ustat (`--sample-hz 99`, the CSV loop), which walks their Java frames in the kernel.
//! async-profiler would stand beside it, but no package registry this machine reaches serves
//! it (PyPI, npm and Debian have no package of it), so its column says so.
//!
//! Measured as the CPython sampling benchmark (`sampling.rs`) measures, and with its helpers:
//! after a warm-up (the JIT has compiled the loop), each sampled window lies between two
//! untraced windows of the same JVMs, and
//! - the JVMs' throughput lost: 1 - (rounds per CPU second while sampled) / (rounds per CPU
//!   second untraced), per CPU second of all their threads, not per wall second, which the
//!   scheduler's share on a shared host moves by more than any sampler does;
//! - ustat's own CPU, as % of one CPU;
//! - ustat's sampling program in the kernel (BPF statistics): ns per run and % of one CPU.
//!   This kernel charges the sampling interrupt, with the program in it, to the interrupted
//!   task, so that cost is also inside the throughput lost.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command},
    thread,
    time::{Duration, Instant},
};

use crate::{
    bench_dir, cpu_ns, cpu_seconds, kill, median, perf_event_programs,
    sampling::{self, Output},
    support::{self, Driven},
};

const COUNTS: [usize; 2] = [1, 10];
const WINDOW: Duration = Duration::from_secs(4);
const RUNS: usize = 3;
/// Untraced windows at most before measuring, while the JVMs warm up: the warm-up ends when
/// two windows in a row agree within `SETTLED` (the JIT has compiled the loop).
const WARM_UP_WINDOWS: usize = 5;
const SETTLED: f64 = 0.03;
/// The registries checked for async-profiler, and what they answered.
const ASYNC_PROFILER: &str = "async-profiler: not measured, no registry this machine reaches \
     serves it (PyPI: no `async-profiler` distribution, nor any package bundling \
     `libasyncProfiler.so`/`asprof` in its package list; npm: `async-profiler` is 404; \
     Debian: `apt-cache search async-profiler` finds nothing).";

/// JVMs spinning in `JvmBusy.round`, and the directory of the compiled class.
struct Busy {
    jvms: Vec<Driven>,
    _classes: tempfile::TempDir,
}

impl Busy {
    fn start(count: usize) -> Self {
        let classes = tempfile::tempdir().unwrap();
        let out = Command::new("javac")
            .arg("-d")
            .arg(classes.path())
            .arg(bench_dir().join("JvmBusy.java"))
            .output()
            .expect("run javac (JDK 17)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let jvms = (0..count)
            .map(|_| {
                Driven::spawn(
                    Command::new("java")
                        .arg("-cp")
                        .arg(classes.path())
                        .arg("JvmBusy"),
                )
            })
            .collect();
        Self {
            jvms,
            _classes: classes,
        }
    }

    fn pids(&self) -> Vec<u32> {
        self.jvms.iter().map(Driven::pid).collect()
    }

    /// Rounds per CPU second of all JVMs together over `WINDOW`: each JVM's rounds between
    /// two answers, over the CPU time all its threads had meanwhile.
    fn throughput(&mut self) -> f64 {
        let mut since = Vec::with_capacity(self.jvms.len());
        for jvm in &mut self.jvms {
            jvm.send("count");
            since.push(cpu_ns(jvm.pid()));
        }
        thread::sleep(WINDOW);
        let (mut rounds, mut cpu) = (0.0, 0.0);
        for (jvm, since) in self.jvms.iter_mut().zip(since) {
            rounds += jvm.send("count").trim().parse::<f64>().expect("a count");
            cpu += (cpu_ns(jvm.pid()) - since) as f64 / 1e9;
        }
        rounds / cpu
    }

    /// Untraced windows until two in a row agree within `SETTLED` (`WARM_UP_WINDOWS` at
    /// most); the last one's throughput.
    fn warm_up(&mut self) -> f64 {
        let mut last = self.throughput();
        for _ in 1..WARM_UP_WINDOWS {
            let next = self.throughput();
            let settled = (next / last - 1.0).abs() < SETTLED;
            last = next;
            if settled {
                break;
            }
        }
        last
    }
}

/// ustat sampling the JVMs, stopped (SIGINT, then waited for) when dropped.
struct Ustat {
    child: Child,
    _output: Output,
    _dir: tempfile::TempDir,
}

impl Ustat {
    fn start(pids: &[u32]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (child, output) = sampling::ustat(dir.path(), pids);
        Self {
            child,
            _output: output,
            _dir: dir,
        }
    }
}

impl Drop for Ustat {
    fn drop(&mut self) {
        if thread::panicking() {
            // A benchmark that fails midway leaves no sampler running.
            let _ = self.child.kill();
            let _ = self.child.wait();
            return;
        }
        kill(&mut self.child, libc::SIGINT);
        support::wait_with_deadline(&mut self.child, "ustat to exit");
    }
}

/// One run's figures.
#[derive(Debug, Clone, Copy)]
struct Run {
    lost_percent: f64,
    cpu_percent: f64,
    /// ns per run of the sampling program and its % of one CPU, where it ran.
    in_kernel: Option<(f64, f64)>,
}

/// Medians of `RUNS` runs of ustat sampling `count` busy JVMs, each run's throughput lost
/// (the spread says how far the median can be trusted), and the load average before and after.
fn cost(count: usize) -> (Run, Vec<f64>, String, String) {
    let load_before = load_average();
    let mut busy = Busy::start(count);
    let mut before = busy.warm_up();
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let ustat = Ustat::start(&busy.pids());
        let cpu_before = cpu_seconds(ustat.child.id());
        let programs_before = perf_event_programs(ustat.child.id());
        let started = Instant::now();
        let traced = busy.throughput();
        let cpu = cpu_seconds(ustat.child.id()) - cpu_before;
        let programs = perf_event_programs(ustat.child.id());
        let elapsed = started.elapsed().as_secs_f64();
        drop(ustat);
        let (ns, samples) = (
            programs.0 - programs_before.0,
            programs.1 - programs_before.1,
        );
        let after = busy.throughput();
        let untraced = (before + after) / 2.0;
        runs.push(Run {
            lost_percent: (1.0 - traced / untraced) * 100.0,
            cpu_percent: cpu / elapsed * 100.0,
            in_kernel: (samples > 0).then(|| {
                (
                    ns as f64 / samples as f64,
                    ns as f64 / 1e9 / elapsed * 100.0,
                )
            }),
        });
        before = after;
    }
    let in_kernel: Vec<(f64, f64)> = runs.iter().filter_map(|r| r.in_kernel).collect();
    let medians = Run {
        lost_percent: median(runs.iter().map(|r| r.lost_percent).collect()),
        cpu_percent: median(runs.iter().map(|r| r.cpu_percent).collect()),
        in_kernel: (!in_kernel.is_empty()).then(|| {
            (
                median(in_kernel.iter().map(|k| k.0).collect()),
                median(in_kernel.iter().map(|k| k.1).collect()),
            )
        }),
    };
    let lost = runs.iter().map(|r| r.lost_percent).collect();
    (medians, lost, load_before, load_average())
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` has them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The table of JVM sampling costs, in Markdown.
pub fn table() -> String {
    // The kernel times BPF programs while this fd is open (and only then).
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).expect("BPF statistics");
    let started = Instant::now();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| measure (OpenJDK 17 spinning in Java, G1, JIT, 99 Hz) | ustat | async-profiler |"
    );
    let _ = writeln!(table, "| --- | --- | --- |");
    let mut loads = Vec::new();
    for count in COUNTS {
        eprintln!("bench: sampling {count} busy JVM(s) ...");
        let (u, lost, load_before, load_after) = cost(count);
        let lost: Vec<String> = lost.iter().map(|l| format!("{l:.1}")).collect();
        let jvms = match count {
            1 => "1 JVM".to_string(),
            n => format!("{n} JVMs"),
        };
        let _ = writeln!(
            table,
            "| {jvms}: throughput lost (% of rounds per CPU second; the runs) | {:.1} ({}) | not served here |",
            u.lost_percent,
            lost.join(", "),
        );
        let _ = writeln!(
            table,
            "| {jvms}: the sampler's CPU (% of one CPU) | {:.1} | not served here |",
            u.cpu_percent,
        );
        let _ = writeln!(
            table,
            "| {jvms}: ustat's sampling program in the kernel (ns per sample; % of one CPU) | {} | - |",
            u.in_kernel
                .map_or("not measured".to_string(), |(ns, cpu)| format!(
                    "{ns:.0} ns; {cpu:.2} %"
                )),
        );
        loads.push(format!("{jvms}: {load_before} before, {load_after} after"));
        // What is measured so far, should a later count not finish.
        eprint!("{table}");
    }
    let java = Command::new("java")
        .arg("-version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let _ = writeln!(
        table,
        "\n{java}; {RUNS} runs of {} s per count, each between two untraced windows, after a \
         warm-up; medians; {} s in all. Load average (1, 5, 15 min): {}.\n\n{ASYNC_PROFILER}",
        WINDOW.as_secs(),
        started.elapsed().as_secs(),
        loads.join("; "),
    );
    table
}

/// Where the JVM sampling table is written beside the main one.
pub fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/benchmarks-jvm-sampling.md")
}
