//! CPython end to end, with USDT (Debian's 3.11) and without (pyenv builds, by symbols): a
//! workload with automatic GC off does a known amount of work after ustat attached.

mod support;

use std::{ffi::OsStr, path::Path};

use support::{
    Driven, csv_ustat, csv_ustat_with_methods,
    interpreters::{DEBIAN_PYTHON, pyenv_python, python},
    read_csv, stop, sum_for,
};

const GCS: u64 = 6;
const THREADS: u64 = 4;

/// Runs the GC and thread commands under ustat and checks the sums.
fn gcs_and_threads_are_exact(interpreter: &Path) {
    let mut python: Driven = python(interpreter);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let pid = python.pid().to_string();
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid)]);
    assert_eq!(python.send(&format!("gc {GCS}")), "ok");
    assert_eq!(python.send(&format!("threads {THREADS}")), "ok");
    stop(ustat);
    let rows = read_csv(&csv);
    let pid = python.pid();
    assert!(rows.iter().all(|r| r["runtime"] == "python"), "{rows:?}");
    assert_eq!(
        sum_for(&rows, pid, "gc_count"),
        GCS,
        "{}",
        interpreter.display()
    );
    assert_eq!(
        sum_for(&rows, pid, "gc_gen2"),
        GCS,
        "{}",
        interpreter.display()
    );
    assert_eq!(sum_for(&rows, pid, "gc_gen0"), 0, "automatic GC is off");
    assert_eq!(
        sum_for(&rows, pid, "threads_started"),
        THREADS,
        "{}",
        interpreter.display()
    );
}

#[test]
fn debian_python311_through_usdt() {
    gcs_and_threads_are_exact(Path::new(DEBIAN_PYTHON));
}

#[test]
fn pyenv_python310_through_symbols() {
    gcs_and_threads_are_exact(&pyenv_python("3.10.13"));
}

#[test]
fn pyenv_python312_through_symbols() {
    gcs_and_threads_are_exact(&pyenv_python("3.12.1"));
}

#[test]
fn pyenv_python313_through_symbols() {
    gcs_and_threads_are_exact(&pyenv_python("3.13.0"));
}

#[test]
fn debian_python311_imports_and_profiled_calls() {
    let mut python = python(Path::new(DEBIAN_PYTHON));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let methods = dir.path().join("methods.csv");
    let ustat = csv_ustat_with_methods(&csv, python.pid(), &methods);
    assert_eq!(python.send("tree"), "ok");
    assert_eq!(python.send("import colorsys"), "ok");
    stop(ustat);

    let rows = read_csv(&csv);
    assert_eq!(sum_for(&rows, python.pid(), "imports"), 1);
    assert_eq!(
        sum_for(&rows, python.pid(), "method_calls"),
        10,
        "a, 3 x b, c, 5 x d"
    );
    let mut calls = std::collections::BTreeMap::new();
    for row in read_csv(&methods) {
        let name = row["method"].split(' ').next().unwrap().to_string();
        assert!(row["method"].contains("workload.py:"), "{row:?}");
        *calls.entry(name).or_insert(0u64) += row["calls"].parse::<u64>().unwrap();
    }
    let expected: std::collections::BTreeMap<String, u64> =
        [("a", 1), ("b", 3), ("c", 1), ("d", 5)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    assert_eq!(calls, expected);
}

#[test]
fn without_a_profiler_python311_fires_no_call_probes() {
    let mut python = python(Path::new(DEBIAN_PYTHON));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let pid = python.pid().to_string();
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid)]);
    assert_eq!(python.send("gc 1"), "ok");
    stop(ustat);
    assert_eq!(sum_for(&read_csv(&csv), python.pid(), "method_calls"), 0);
}
