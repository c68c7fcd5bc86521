//! The JVM end to end: a real JVM does a known amount of work after ustat attached, and
//! the CSV rows for its PID must add up to exactly that.

mod support;

use std::ffi::OsStr;

use support::{
    csv_ustat, csv_ustat_with_methods,
    jvm::{Jvm, java, private_jdk},
    poll, read_csv, stop, sum_for,
};

#[test]
fn csv_rows_add_up_to_exactly_what_the_jvm_did() {
    const GCS: u64 = 5;
    const CLASSES: u64 = 7;
    const THREADS: u64 = 3;
    const CALLS: u64 = 200_000;
    let mut jvm = Jvm::start(java(), &["-XX:+ExtendedDTraceProbes"]);
    let csv = jvm.dir.path().join("ustat.csv");
    let methods = jvm.dir.path().join("methods.csv");
    let ustat = csv_ustat_with_methods(&csv, jvm.pid(), &methods);

    jvm.send(&format!("gc {GCS}"));
    jvm.send(&format!("load {CLASSES}"));
    jvm.send(&format!("threads {THREADS}"));
    jvm.send(&format!("calls {CALLS}"));
    stop(ustat);

    let rows = read_csv(&csv);
    let pid = jvm.pid();
    assert!(
        rows.iter()
            .all(|r| r["pid"] == pid.to_string() && r["runtime"] == "jvm"),
        "{rows:?}"
    );
    assert_eq!(sum_for(&rows, pid, "gc_count"), GCS);
    assert_eq!(
        sum_for(&rows, pid, "gc_major"),
        GCS,
        "System.gc() is a full GC"
    );
    assert_eq!(sum_for(&rows, pid, "gc_minor"), 0);
    assert_eq!(sum_for(&rows, pid, "class_loaded"), CLASSES);
    assert_eq!(sum_for(&rows, pid, "threads_started"), THREADS);
    assert_eq!(sum_for(&rows, pid, "threads_stopped"), THREADS);
    assert!(sum_for(&rows, pid, "method_calls") >= CALLS);
    let gc_rows: Vec<_> = rows.iter().filter(|r| r["gc_count"] != "0").collect();
    for row in &gc_rows {
        let p99: f64 = row["gc_pause_ms_p99"].parse().unwrap();
        let max: f64 = row["gc_pause_ms_max"].parse().unwrap();
        let total: f64 = row["gc_pause_ms_total"].parse().unwrap();
        assert!(p99 > 0.0 && p99 <= max && max <= total + 0.01, "{row:?}");
    }

    let method_rows = read_csv(&methods);
    let marker: u64 = method_rows
        .iter()
        .filter(|r| r["pid"] == pid.to_string() && r["method"] == "Workload.marker(int)")
        .map(|r| r["calls"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(marker, CALLS, "the marker method's own count");
}

#[test]
fn without_extended_probes_there_are_no_calls_and_counts_stay_exact() {
    let mut jvm = Jvm::start(java(), &[]);
    let pid = jvm.pid().to_string();
    let csv = jvm.dir.path().join("ustat.csv");
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid)]);
    jvm.send("gc 2");
    jvm.send("calls 1000");
    stop(ustat);
    let rows = read_csv(&csv);
    assert_eq!(sum_for(&rows, jvm.pid(), "gc_count"), 2);
    // Not traced without the flag: empty cells (the detail view says why), not zeros.
    assert!(
        rows.iter()
            .filter(|r| r["pid"] == jvm.pid().to_string())
            .all(|r| r["method_calls"].is_empty()),
        "{rows:?}"
    );
}

#[test]
fn a_running_jvm_shows_numbers_in_the_first_interval() {
    let mut jvm = Jvm::start(java(), &["-XX:+ExtendedDTraceProbes"]);
    jvm.send("spin");
    let pid = jvm.pid().to_string();
    let csv = jvm.dir.path().join("ustat.csv");
    let ustat = csv_ustat(
        &csv,
        &[
            OsStr::new("-p"),
            OsStr::new(&pid),
            OsStr::new("-n"),
            OsStr::new("1"),
        ],
    );
    let mut ustat = ustat;
    assert!(ustat.wait().success());
    let rows = read_csv(&csv);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0]["method_calls"].parse::<u64>().unwrap() > 0,
        "{rows:?}"
    );
}

#[test]
fn a_jvm_started_later_shows_up_within_one_interval_and_counts_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    // A JDK of its own, so the libjvm.so attached here is this test's.
    let java = private_jdk(dir.path());
    let _first = Jvm::start(&java, &[]);
    let csv = dir.path().join("ustat.csv");
    // Every JVM on the host; attaching once per libjvm.so covers JVMs started from it later.
    let ustat = csv_ustat(&csv, &[OsStr::new("--runtime"), OsStr::new("jvm")]);
    let mut jvm = Jvm::start(&java, &[]);
    let ready = std::time::SystemTime::now();
    jvm.send("gc 3");
    let pid = jvm.pid().to_string();
    // The first interval that ended after the JVM was ready already has it.
    let first = poll("a row written after the JVM was ready", || {
        read_csv(&csv)
            .into_iter()
            .find(|r| humantime::parse_rfc3339(&r["timestamp"]).unwrap() >= ready)
    });
    let same_interval: Vec<_> = read_csv(&csv)
        .into_iter()
        .filter(|r| r["timestamp"] == first["timestamp"])
        .collect();
    assert!(
        same_interval.iter().any(|r| r["pid"] == pid),
        "{same_interval:?}"
    );
    stop(ustat);
    // Counted from its start: the warm-up GC and the three after; nothing else collected.
    assert_eq!(sum_for(&read_csv(&csv), jvm.pid(), "gc_count"), 4);
}
