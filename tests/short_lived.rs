//! Processes that live a fraction of an interval — cron jobs, CLIs, test runners — get their
//! rows: under one system-wide `ustat --csv -i 1`, twelve processes (Debian's python3.11,
//! pyenv's 3.12, Node, a JVM; three each), each starting, collecting a known number of times
//! and exiting within about 300 ms, each have rows that sum to exactly their collections, a
//! last row with `exited=1`, and their name in `command`. Most of them start and exit between
//! two of ustat's looks at the host: their rows come from what the kernel recorded at their
//! first probe hit (the runtime binary) and at their exit (the name).
//!
//! ustat attaches system-wide to a runtime binary once a process running it is found, so
//! each binary has one long-lived process running it (an anchor) before the short ones start.
//! Other tests run on the same kernel: only the pids this test started are looked at.

mod support;

use std::{
    collections::HashMap,
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::{
    Driven, Ustat,
    interpreters::{DEBIAN_PYTHON, pyenv_python_if_present},
    poll, read_csv, stop, sum_for,
};

/// What each short-lived process is allowed: the "under 300 ms".
const LIFETIME: Duration = Duration::from_millis(300);

/// Collections each short-lived process does.
const COLLECTIONS: u64 = 3;

/// Processes of each runtime.
const EACH: usize = 3;

/// A Python that collects `COLLECTIONS` times, prints how many collections of each
/// generation CPython counted since it started (`gc.get_stats`, automatic ones too), and
/// exits without the collection of interpreter shutdown (`os._exit`).
const PYTHON_WORK: &str = "import gc, os, sys
for _ in range(int(sys.argv[1])):
    gc.collect()
gc.disable()
stats = gc.get_stats()
sys.stdout.write(' '.join(str(s['collections']) for s in stats) + '\\n')
sys.stdout.flush()
os._exit(0)";

const PYTHON_ANCHOR: &str = "import sys
print('ready', flush=True)
sys.stdin.read()";

/// Node: `COLLECTIONS` full collections (`gc()`), then exit.
const NODE_WORK: &str = "for (let i = 0; i < Number(process.argv[1]); i++) gc();";

const NODE_ANCHOR: &str = "console.log('ready'); process.stdin.resume();";

/// A runtime whose short-lived processes the test runs.
struct Runtime {
    name: &'static str,
    /// The anchor: the same binary, running until the test ends.
    anchor: Command,
    /// One short-lived process, given how many times to collect.
    work: Box<dyn Fn(u64) -> Command>,
    /// What `command` shows for it.
    comm: &'static str,
    /// Which columns must sum to what, given the process's output.
    expect: fn(&str) -> Vec<(&'static str, u64)>,
}

/// Python's rows: its collections per generation as CPython counted them, and their sum.
fn python_expect(output: &str) -> Vec<(&'static str, u64)> {
    let per_generation: Vec<u64> = output
        .split_whitespace()
        .map(|n| n.parse().expect("a count"))
        .collect();
    assert_eq!(per_generation.len(), 3, "gc.get_stats: {output:?}");
    assert!(per_generation[2] >= COLLECTIONS, "gc.get_stats: {output:?}");
    vec![
        ("gc_gen0", per_generation[0]),
        ("gc_gen1", per_generation[1]),
        ("gc_gen2", per_generation[2]),
        ("gc_count", per_generation.iter().sum()),
    ]
}

/// Node and the JVM: each `gc()` or `System.gc()` is one full (major) collection. Node's
/// minor collections come from its own start-up allocation, not counted here.
fn major_expect(_: &str) -> Vec<(&'static str, u64)> {
    vec![("gc_major", COLLECTIONS)]
}

/// The JVM: a heap big enough that only System.gc() collects.
fn jvm_expect(output: &str) -> Vec<(&'static str, u64)> {
    let mut expect = major_expect(output);
    expect.extend([("gc_minor", 0), ("gc_count", COLLECTIONS)]);
    expect
}

fn python(interpreter: &Path, comm: &'static str) -> Runtime {
    let mut anchor = Command::new(interpreter);
    anchor.args(["-c", PYTHON_ANCHOR]);
    let interpreter = interpreter.to_path_buf();
    Runtime {
        name: comm,
        anchor,
        work: Box::new(move |n| {
            let mut command = Command::new(&interpreter);
            command.args(["-c", PYTHON_WORK, &n.to_string()]);
            command
        }),
        comm,
        expect: python_expect,
    }
}

fn node() -> Runtime {
    let mut anchor = Command::new("node");
    anchor.args(["-e", NODE_ANCHOR]);
    Runtime {
        name: "node",
        anchor,
        work: Box::new(|n| {
            let mut command = Command::new("node");
            command.args(["--expose-gc", "-e", NODE_WORK, &n.to_string()]);
            command
        }),
        comm: "node",
        expect: major_expect,
    }
}

/// JVM flags: the serial collector, a heap that start-up does not fill, and a JVM that
/// starts fast (class data sharing, the C1 compiler only, no perf data file).
const JVM_FLAGS: &[&str] = &[
    "-XX:+UseSerialGC",
    "-Xms64m",
    "-Xmx64m",
    "-Xshare:auto",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
];

fn jvm(classes: &Path) -> Runtime {
    let java = support::jvm::java();
    let mut anchor = Command::new(java);
    anchor
        .args(JVM_FLAGS)
        .arg("-cp")
        .arg(classes)
        .arg("ShortLived");
    let classes = classes.to_path_buf();
    Runtime {
        name: "jvm",
        anchor,
        work: Box::new(move |n| {
            let mut command = Command::new(java);
            command
                .args(JVM_FLAGS)
                .arg("-cp")
                .arg(&classes)
                .args(["ShortLived", &n.to_string()]);
            command
        }),
        comm: "java",
        expect: jvm_expect,
    }
}

fn compile_short_lived(dir: &Path) -> PathBuf {
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/jvm/ShortLived.java");
    let out = Command::new("javac")
        .arg("-d")
        .arg(dir)
        .arg(&source)
        .output()
        .expect("run javac (scripts/setup installs openjdk-17-jdk-headless)");
    assert!(
        out.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_path_buf()
}

/// One short-lived process that ran: its pid, runtime, output and how long it lived.
struct Ran {
    pid: u32,
    runtime: usize,
    output: String,
    lived: Duration,
}

#[test]
fn short_lived_processes_get_rows_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut runtimes = vec![python(Path::new(DEBIAN_PYTHON), "python3.11")];
    match pyenv_python_if_present("3.12.1") {
        Some(python312) => runtimes.push(python(&python312, "python3.12")),
        None => eprintln!("skipped: pyenv's CPython 3.12's short-lived processes"),
    }
    runtimes.push(node());
    runtimes.push(jvm(&compile_short_lived(dir.path())));

    let csv = dir.path().join("out.csv");
    let mut ustat = Ustat::spawn(&[
        OsStr::new("--csv"),
        csv.as_os_str(),
        OsStr::new("-i"),
        OsStr::new("1"),
    ]);
    ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
    let anchors: Vec<Driven> = runtimes
        .iter_mut()
        .map(|r| Driven::spawn(&mut r.anchor))
        .collect();
    // Each anchor has a row: its binary is attached, for every process that runs it.
    poll("a row for every anchor", || {
        let rows = if csv.exists() {
            read_csv(&csv)
        } else {
            Vec::new()
        };
        anchors
            .iter()
            .all(|a| rows.iter().any(|r| r["pid"] == a.pid().to_string()))
            .then_some(())
    });

    let mut ran = Vec::new();
    for round in 0..EACH {
        for (index, runtime) in runtimes.iter().enumerate() {
            let started = Instant::now();
            let child = (runtime.work)(COLLECTIONS)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", runtime.name));
            let pid = child.id();
            let out = child.wait_with_output().expect("wait");
            let lived = started.elapsed();
            assert!(
                out.status.success(),
                "{} {pid}: {:?}",
                runtime.name,
                out.status
            );
            eprintln!(
                "round {round}: {} {pid} lived {} ms",
                runtime.name,
                lived.as_millis()
            );
            ran.push(Ran {
                pid,
                runtime: index,
                output: String::from_utf8_lossy(&out.stdout).into_owned(),
                lived,
            });
        }
    }

    // Every process's last row (exited=1) is written within an interval or two.
    let rows = poll("an exited row for every short-lived process", || {
        let rows = read_csv(&csv);
        ran.iter()
            .all(|r| {
                rows.iter()
                    .any(|row| row["pid"] == r.pid.to_string() && row["exited"] == "1")
            })
            .then_some(rows)
    });
    drop(anchors);
    stop(ustat);

    let mut unlisted = 0;
    for process in &ran {
        let runtime = &runtimes[process.runtime];
        let own: Vec<&HashMap<String, String>> = rows
            .iter()
            .filter(|r| r["pid"] == process.pid.to_string())
            .collect();
        let what = format!("{} {} ({} rows)", runtime.name, process.pid, own.len());
        let last = own.last().expect("rows");
        assert_eq!(last["exited"], "1", "{what}: the last row says it exited");
        assert!(
            own[..own.len() - 1].iter().all(|r| r["exited"] == "0"),
            "{what}: only the last row says it exited"
        );
        // Its name, then what it runs where ustat read its command line in time
        // (`python3.11 -c`); a process never listed has its name alone.
        assert!(
            own.iter()
                .all(|r| r["command"].split(' ').next() == Some(runtime.comm)),
            "{what}: command is {:?}",
            last["command"]
        );
        for (column, expected) in (runtime.expect)(&process.output) {
            assert_eq!(
                sum_for(&rows, process.pid, column),
                expected,
                "{what}: {column}"
            );
        }
        let gc_count = sum_for(&rows, process.pid, "gc_count");
        let by_kind: u64 = ["gc_gen0", "gc_gen1", "gc_gen2", "gc_minor", "gc_major"]
            .iter()
            .filter(|c| own.iter().all(|r| !r[**c].is_empty()))
            .map(|c| sum_for(&rows, process.pid, c))
            .sum();
        assert_eq!(
            gc_count, by_kind,
            "{what}: gc_count is the sum of its kinds"
        );
        if own.len() == 1 {
            unlisted += 1;
        }
        for row in &own {
            eprintln!(
                "{what}: {} gc_count={} exited={}",
                row["timestamp"], row["gc_count"], row["exited"]
            );
        }
        if process.lived >= LIFETIME {
            eprintln!("{what} lived {} ms", process.lived.as_millis());
        }
    }
    eprintln!("{unlisted} of {} processes had one row", ran.len());
}
