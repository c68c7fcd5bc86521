//! The JVM end to end: a real JVM does a known amount of work after ustat attached, and
//! the CSV rows for its PID must add up to exactly that.

mod support;

use std::{collections::HashMap, ffi::OsStr};

use support::{
    Ustat, csv_ustat, csv_ustat_with_methods,
    jvm::{Jvm, java, jdk25_java, private_jdk},
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

/// JDK 20 and later reject -XX:+ExtendedDTraceProbes; the specific flags turn the method and
/// allocation probes on. A JDK 25 calls a marker method and allocates a marker class a known
/// number of times: the method's calls (the `--methods` CSV) and the class's allocations (as
/// the kernel read them: `ustat trace`, keyed by the class name HotSpot passes) are exact.
#[test]
fn a_jdk_25_with_method_and_allocation_probes_counts_exactly() {
    const CALLS: u64 = 12_345;
    const ALLOCATIONS: usize = 2_345;
    let Some(java) = jdk25_java() else {
        return;
    };
    eprintln!("JDK 25: {}", java.display());
    let mut jvm = Jvm::start(
        &java,
        &["-XX:+DTraceMethodProbes", "-XX:+DTraceAllocProbes"],
    );
    // Loads the marker class before anything is attached.
    jvm.send("alloc 1");
    let pid = jvm.pid();
    let csv = jvm.dir.path().join("ustat.csv");
    let methods = jvm.dir.path().join("methods.csv");
    let ustat = csv_ustat_with_methods(&csv, pid, &methods);
    let mut trace = Ustat::trace(&[pid.to_string().as_str(), "hotspot:object__alloc"]);
    jvm.send(&format!("calls {CALLS}"));
    jvm.send(&format!("alloc {ALLOCATIONS}"));
    trace.signal(libc::SIGINT);
    assert!(trace.wait().success(), "{:?}", trace.stderr.rest());
    stop(ustat);

    let marker: u64 = read_csv(&methods)
        .iter()
        .filter(|r| r["pid"] == pid.to_string() && r["method"] == "Workload.marker(int)")
        .map(|r| r["calls"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(marker, CALLS, "the marker method's calls");
    let rows = read_csv(&csv);
    assert!(sum_for(&rows, pid, "objects_allocated") >= ALLOCATIONS as u64);

    // object__alloc(thread, class name, its length, size): hits per class name.
    let name = "Workload$Marker";
    let mut per_class: HashMap<(String, String), usize> = HashMap::new();
    for line in trace.stdout.rest() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.get(3), Some(&"hotspot:object__alloc"), "{line}");
        *per_class
            .entry((fields[5].to_string(), fields[6].to_string()))
            .or_default() += 1;
    }
    let markers: Vec<usize> = per_class
        .iter()
        .filter(|((_, len), _)| *len == name.len().to_string())
        .map(|(_, hits)| *hits)
        .collect();
    assert!(
        markers.contains(&ALLOCATIONS),
        "a class named with {} bytes allocated {ALLOCATIONS} times: {markers:?}",
        name.len()
    );
}

/// Bytes of one `Workload.Marker`: a 12-byte header and a long at offset 16.
const MARKER_BYTES: u64 = 24;

/// The marker class's allocations since attach, as ustat's kernel source reports them: the
/// count, and the bytes unless the source says the JVM's sizes cannot be trusted.
fn marker_allocations(source: &mut ustat::source::KernelSource, pid: u32) -> (u64, Option<u64>) {
    use ustat::snapshot::Source as _;
    let snapshot = source.poll().expect("poll");
    let process = snapshot
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .expect("the JVM's snapshot");
    let marker = process
        .top_allocations
        .iter()
        .find(|r| r.name == "Workload$Marker");
    let objects = marker.map_or(0, |m| m.total);
    let bytes = (!process.bytes_untraced()).then(|| marker.map_or(0, |m| m.total_value));
    (objects, bytes)
}

/// A JVM started with `flags` and allocation probes allocates `n` markers while ustat's real
/// kernel source watches it; returns what the source counted for the marker class.
fn markers_counted(java: &std::path::Path, flags: &[&str], n: u64) -> (u64, Option<u64>) {
    let mut all = vec!["-XX:+DTraceAllocProbes"];
    all.extend_from_slice(flags);
    let mut jvm = Jvm::start(java, &all);
    // Loads Marker; in compiled mode, enough iterations for the loop to be compiled.
    jvm.send("alloc 1");
    if !flags.contains(&"-Xint") {
        for _ in 0..20 {
            jvm.send("alloc 200000");
        }
    }
    let pid = jvm.pid();
    let mut source = ustat::source::KernelSource::start(ustat::source::Options {
        selection: ustat::source::Selection::Pids(vec![pid]),
        runtime: None,
        top: 10_000,
        method_times: false,
        with: Vec::new(),
        sample_hz: 0,
    })
    .expect("ustat's kernel source");
    assert_eq!(marker_allocations(&mut source, pid).0, 0);
    jvm.send(&format!("alloc {n}"));
    // Counted once the command answered; the next reading holds them all.
    let counted = marker_allocations(&mut source, pid);
    // And nothing more arrives later.
    assert_eq!(marker_allocations(&mut source, pid), counted);
    counted
}

#[test]
fn jdk17_interpreted_allocations_count_exactly_and_their_bytes_stay_empty() {
    // OpenJDK 17's interpreter passes object__alloc no size: bytes are never believed.
    let (objects, bytes) = markers_counted(java(), &["-Xint"], 4000);
    assert_eq!(objects, 4000);
    assert_eq!(bytes, None);
}

#[test]
fn jdk17_compiled_allocations_count_exactly_and_their_bytes_stay_empty() {
    let (objects, bytes) = markers_counted(java(), &[], 4000);
    assert_eq!(objects, 4000);
    assert_eq!(bytes, None);
}

#[test]
fn jdk25_allocations_count_exactly_with_their_exact_bytes() {
    let Some(java25) = jdk25_java() else {
        return;
    };
    let java25 = java25.as_path();
    for flags in [&["-Xint"][..], &[][..]] {
        let (objects, bytes) = markers_counted(java25, flags, 4000);
        assert_eq!(objects, 4000, "{flags:?}");
        assert_eq!(bytes, Some(4000 * MARKER_BYTES), "{flags:?}");
    }
}

/// A concurrent collector's N System.gc() calls: N collections (its cycles, as its memory
/// manager counts them: `ZGC Cycles`, `Shenandoah Cycles`, `ZGC Major Cycles`), and each with
/// its pauses (HotSpot fires gc__begin/end once per pause: three or more per cycle).
fn collections_and_pauses(java: &std::path::Path, gc: &str) {
    const GCS: u64 = 6;
    let mut jvm = Jvm::start(java, &[gc]);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("out.csv");
    let pid = jvm.pid().to_string();
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid)]);
    jvm.send(&format!("gc {GCS}"));
    let rows = poll("the collections in the CSV", || {
        let rows = read_csv(&csv);
        (sum_for(&rows, jvm.pid(), "gc_collections") >= GCS).then_some(rows)
    });
    stop(ustat);
    let rows_after = read_csv(&csv);
    assert_eq!(
        sum_for(&rows_after, jvm.pid(), "gc_collections"),
        GCS,
        "{gc}"
    );
    let pauses = sum_for(&rows_after, jvm.pid(), "gc_pauses");
    assert!(pauses >= 3 * GCS, "{gc}: {pauses} pauses for {GCS} cycles");
    assert_eq!(pauses, sum_for(&rows_after, jvm.pid(), "gc_count"), "{gc}");
    // The pauses were timed.
    let paused = rows_after
        .iter()
        .filter(|r| r["pid"] == pid)
        .any(|r| r["gc_pause_ms_total"].parse::<f64>().unwrap_or(0.0) > 0.0);
    assert!(paused, "{gc}: {rows:?}");
}

#[test]
fn zgc_cycles_are_collections_and_their_pauses_pauses() {
    collections_and_pauses(java(), "-XX:+UseZGC");
}

#[test]
fn shenandoah_cycles_are_collections_and_their_pauses_pauses() {
    collections_and_pauses(java(), "-XX:+UseShenandoahGC");
}

#[test]
fn generational_zgc_cycles_are_collections_and_their_pauses_pauses() {
    let Some(java25) = jdk25_java() else {
        return;
    };
    let java25 = java25.as_path();
    // JDK 25's ZGC is generational: System.gc() is a major cycle of eight pauses.
    collections_and_pauses(java25, "-XX:+UseZGC");
}
