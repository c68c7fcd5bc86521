//! What sampling stacks costs, ustat beside py-spy: 1, 10 and 50 CPython processes spinning
//! in pure Python (`assets/bench/busy_loop.py`), sampled at 99 Hz by ustat (`--sample-hz 99`,
//! the CSV loop), by py-spy `--nonblocking` and by py-spy as it runs by default (pausing the
//! process for each sample). Each sampler is measured in a window between two untraced windows
//! of the same processes:
//! - the traced programs' throughput lost: 1 - (rounds per CPU second while sampled) /
//!   (rounds per CPU second untraced). Per CPU second of the programs, not per second of
//!   wall time: on a shared host the scheduler's share moves wall-time throughput by more than
//!   any sampler does, while the work a round takes moves only with what sampling adds to it;
//! - the sampler's own CPU, as % of one CPU (py-spy runs one process per traced process).
//!
//! The kernel runs ustat's sampling program in the interrupt that samples, and this kernel
//! (no IRQ_TIME_ACCOUNTING) charges that time to the interrupted task: its cost shows in the
//! programs' rounds per CPU second, not in ustat's CPU. The time py-spy's default mode keeps
//! a program stopped is not its CPU time, so that cost shows only as wall time, which this
//! table does not measure. What ustat's sampling program costs in the kernel is measured
//! exactly besides: the kernel's own run time and run count of the program (BPF statistics,
//! on while the benchmark runs), per sample and in % of one CPU.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc::Receiver,
    thread,
    time::{Duration, Instant},
};

use crate::{
    PYTHON, bench_dir, cpu_ns, cpu_seconds, kill, lines, median, perf_event_programs,
    support::{self, Driven},
};

/// Where `scripts/setup` installs py-spy from PyPI (`pip install --target`).
pub const PY_SPY: &str = "/var/cache/ustat-test/py-spy/bin/py-spy";
const HZ: &str = "99";
const COUNTS: [usize; 3] = [1, 10, 50];
const WINDOW: Duration = Duration::from_secs(4);
const RUNS: usize = 3;
/// How long a sampler may take to start: ustat prepares each of 50 processes on a host that
/// their spinning (and py-spy's) keeps fully loaded.
const START: Duration = Duration::from_secs(600);

/// The samplers compared, in the table's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sampler {
    Ustat,
    PySpyNonblocking,
    PySpy,
}

impl Sampler {
    const ALL: [Self; 3] = [Self::Ustat, Self::PySpyNonblocking, Self::PySpy];
}

/// One sampler's figures for one count of processes: medians over the runs.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    /// Share of the untraced throughput the programs lost, in %.
    lost_percent: f64,
    /// The sampler's CPU over the window, in % of one CPU.
    cpu_percent: f64,
    /// ustat's sampling program in the kernel: ns per run, and % of one CPU.
    in_kernel: Option<(f64, f64)>,
}

/// Busy CPython processes, spinning.
struct Busy {
    programs: Vec<Driven>,
}

impl Busy {
    fn start(count: usize) -> Self {
        let programs = (0..count)
            .map(|_| {
                let mut python =
                    Driven::spawn(Command::new(PYTHON).arg(bench_dir().join("busy_loop.py")));
                assert_eq!(python.send("start"), "ok");
                python
            })
            .collect();
        Self { programs }
    }

    fn pids(&self) -> Vec<u32> {
        self.programs.iter().map(Driven::pid).collect()
    }

    /// Rounds per CPU second of all programs together over `WINDOW`: each program's rounds
    /// between two answers, over the CPU time its threads had meanwhile.
    fn throughput(&mut self) -> f64 {
        let mut since = Vec::with_capacity(self.programs.len());
        for python in &mut self.programs {
            python.send("count");
            since.push(cpu_ns(python.pid()));
        }
        thread::sleep(WINDOW);
        let (mut rounds, mut cpu) = (0.0, 0.0);
        for (python, since) in self.programs.iter_mut().zip(since) {
            rounds += python.send("count").trim().parse::<f64>().expect("a count");
            cpu += (cpu_ns(python.pid()) - since) as f64 / 1e9;
        }
        rounds / cpu
    }
}

/// Lines a sampler printed, read as they come (kept while it runs, so its pipe never
/// closes under it).
pub type Output = Receiver<(Instant, String)>;

/// A running sampler: its processes, for their CPU time.
struct Running {
    children: Vec<(Child, Output)>,
    _out: tempfile::TempDir,
}

impl Running {
    fn start(sampler: Sampler, pids: &[u32]) -> Self {
        let out = tempfile::tempdir().unwrap();
        let children = match sampler {
            Sampler::Ustat => vec![ustat(out.path(), pids)],
            Sampler::PySpyNonblocking | Sampler::PySpy => pids
                .iter()
                .map(|pid| py_spy(out.path(), *pid, sampler == Sampler::PySpyNonblocking))
                .collect(),
        };
        Self {
            children,
            _out: out,
        }
    }

    fn cpu_seconds(&self) -> f64 {
        self.children.iter().map(|(c, _)| cpu_seconds(c.id())).sum()
    }

    /// Run time (ns) and runs of the perf-event programs the samplers hold (0 for py-spy,
    /// which has none).
    fn perf_event_programs(&self) -> (u64, u64) {
        self.children
            .iter()
            .map(|(child, _)| perf_event_programs(child.id()))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// Ends each sampler with SIGINT (py-spy then writes its file), and waits for it.
    fn stop(mut self) {
        for (child, _) in &mut self.children {
            kill(child, libc::SIGINT);
        }
        for (child, _) in &mut self.children {
            support::wait_with_deadline(child, "the sampler to exit");
        }
    }
}

impl Drop for Running {
    /// A benchmark that fails midway leaves no sampler running.
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `ustat --csv FILE --sample-hz 99 -p PIDS`, returned once it is tracing.
pub fn ustat(dir: &Path, pids: &[u32]) -> (Child, Output) {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let mut child = Command::new(support::ustat_binary())
        .arg("--csv")
        .arg(dir.join("ustat.csv"))
        .args(["--sample-hz", HZ, "-p", &pids.join(",")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ustat");
    let stderr = lines(child.stderr.take().unwrap());
    started(&stderr, "ustat to attach", |l| {
        l.starts_with("ustat: tracing")
    });
    (child, stderr)
}

/// Waits until the sampler prints the line that says it started (`START` at most).
fn started(output: &Output, what: &str, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + START;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match output.recv_timeout(left) {
            Ok((_, line)) if pred(&line) => return,
            Ok(_) => {}
            Err(_) => panic!("no {what} within {} s", START.as_secs()),
        }
    }
}

/// `py-spy record --rate 99 [--nonblocking] -p PID`, returned once it samples.
fn py_spy(dir: &Path, pid: u32, nonblocking: bool) -> (Child, Output) {
    let mut command = Command::new(PY_SPY);
    command.args([
        "record",
        "--rate",
        HZ,
        "--format",
        "raw",
        "-p",
        &pid.to_string(),
    ]);
    if nonblocking {
        command.arg("--nonblocking");
    }
    let mut child = command
        .arg("-o")
        .arg(dir.join(format!("py-spy-{pid}.txt")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {PY_SPY} (scripts/setup installs it): {e}"));
    let stdout = lines(child.stdout.take().unwrap());
    started(&stdout, "py-spy to sample", |l| {
        l.contains("Sampling process")
    });
    (child, stdout)
}

/// Each sampler's cost for `count` busy processes.
fn costs(count: usize) -> Vec<(Sampler, Cost)> {
    let mut busy = Busy::start(count);
    // Let the interpreters settle (imports done, caches warm).
    busy.throughput();
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); Sampler::ALL.len()];
    let mut in_kernel: Vec<(f64, f64)> = Vec::new();
    // Each sampled window lies between two untraced ones and is compared with their mean,
    // so a drift in the host's load moves both sides alike.
    let mut before = busy.throughput();
    for _ in 0..RUNS {
        for (i, sampler) in Sampler::ALL.into_iter().enumerate() {
            let running = Running::start(sampler, &busy.pids());
            let cpu_before = running.cpu_seconds();
            let programs_before = running.perf_event_programs();
            let started = Instant::now();
            let traced = busy.throughput();
            let cpu = running.cpu_seconds() - cpu_before;
            let programs = running.perf_event_programs();
            let elapsed = started.elapsed().as_secs_f64();
            let (ns, count) = (
                programs.0 - programs_before.0,
                programs.1 - programs_before.1,
            );
            if sampler == Sampler::Ustat && count > 0 {
                in_kernel.push((ns as f64 / count as f64, ns as f64 / 1e9 / elapsed * 100.0));
            }
            running.stop();
            let after = busy.throughput();
            let untraced = (before + after) / 2.0;
            runs[i].push(((1.0 - traced / untraced) * 100.0, cpu / elapsed * 100.0));
            before = after;
        }
    }
    Sampler::ALL
        .into_iter()
        .zip(runs)
        .map(|(sampler, runs)| {
            let cost = Cost {
                lost_percent: median(runs.iter().map(|r| r.0).collect()),
                cpu_percent: median(runs.iter().map(|r| r.1).collect()),
                in_kernel: (sampler == Sampler::Ustat && !in_kernel.is_empty()).then(|| {
                    (
                        median(in_kernel.iter().map(|k| k.0).collect()),
                        median(in_kernel.iter().map(|k| k.1).collect()),
                    )
                }),
            };
            (sampler, cost)
        })
        .collect()
}

/// `a / b`, or `-` where b is too close to 0 for a ratio to mean anything.
fn ratio(a: f64, b: f64) -> String {
    if b.abs() < 0.05 {
        "-".into()
    } else {
        format!("{:.2}", a / b)
    }
}

/// The table of sampling costs, in Markdown.
pub fn table() -> String {
    assert!(
        Path::new(PY_SPY).exists(),
        "{PY_SPY} is missing: scripts/setup installs it"
    );
    // The kernel times BPF programs while this fd is open (and only then).
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).expect("BPF statistics");
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| measure (CPython 3.11 spinning, 99 Hz) | ustat | py-spy --nonblocking | py-spy (pauses the process) | ustat / py-spy --nonblocking | ustat / py-spy |"
    );
    let _ = writeln!(table, "| --- | --- | --- | --- | --- | --- |");
    for count in COUNTS {
        eprintln!("bench: sampling {count} busy CPython process(es) ...");
        let costs = costs(count);
        let of = |sampler: Sampler| {
            costs
                .iter()
                .find(|(s, _)| *s == sampler)
                .map_or_else(Cost::default, |(_, c)| *c)
        };
        let (u, nb, b) = (
            of(Sampler::Ustat),
            of(Sampler::PySpyNonblocking),
            of(Sampler::PySpy),
        );
        let processes = match count {
            1 => "1 process".to_string(),
            n => format!("{n} processes"),
        };
        let _ = writeln!(
            table,
            "| {processes}: throughput lost (% of rounds per CPU second) | {:.1} | {:.1} | {:.1} | {} | {} |",
            u.lost_percent,
            nb.lost_percent,
            b.lost_percent,
            ratio(u.lost_percent, nb.lost_percent),
            ratio(u.lost_percent, b.lost_percent),
        );
        let _ = writeln!(
            table,
            "| {processes}: the sampler's CPU (% of one CPU) | {:.1} | {:.1} | {:.1} | {} | {} |",
            u.cpu_percent,
            nb.cpu_percent,
            b.cpu_percent,
            ratio(u.cpu_percent, nb.cpu_percent),
            ratio(u.cpu_percent, b.cpu_percent),
        );
        let _ = writeln!(
            table,
            "| {processes}: ustat's sampling program in the kernel (ns per sample; % of one CPU) | {} | - | - | - | - |",
            u.in_kernel
                .map_or("not measured".to_string(), |(ns, cpu)| format!(
                    "{ns:.0} ns; {cpu:.2} %"
                )),
        );
        // What is measured so far, should a later count not finish.
        eprint!("{table}");
    }
    let version = Command::new(PY_SPY)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let _ = writeln!(
        table,
        "\n{version}; {RUNS} runs of {} s per sampler and count, each between two untraced windows; medians.",
        WINDOW.as_secs()
    );
    table
}

/// Where the sampling table is written beside the main one.
pub fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/benchmarks-sampling.md")
}
