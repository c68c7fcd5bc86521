//! Node.js end to end, through uprobes on V8 and libuv symbols: a workload does a known
//! number of full GCs, worker threads and HTTP requests after ustat attached.

mod support;

use std::ffi::OsStr;

use support::{csv_ustat, interpreters::node, read_csv, stop, sum_for};

#[test]
fn gcs_workers_and_http_requests_are_exact() {
    const GCS: u64 = 5;
    const WORKERS: u64 = 3;
    const REQUESTS: u64 = 7;
    let mut node = node();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let pid = node.pid().to_string();
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid)]);
    assert_eq!(node.send(&format!("gc {GCS}")), "ok");
    assert_eq!(node.send(&format!("workers {WORKERS}")), "ok");
    assert_eq!(node.send(&format!("http {REQUESTS}")), "ok");
    stop(ustat);

    let rows = read_csv(&csv);
    let pid = node.pid();
    assert!(rows.iter().all(|r| r["runtime"] == "node"), "{rows:?}");
    assert_eq!(
        sum_for(&rows, pid, "gc_major"),
        GCS,
        "gc() is a full mark-compact"
    );
    assert_eq!(
        sum_for(&rows, pid, "gc_count"),
        sum_for(&rows, pid, "gc_major") + sum_for(&rows, pid, "gc_minor")
    );
    assert_eq!(sum_for(&rows, pid, "threads_started"), WORKERS);
    assert_eq!(sum_for(&rows, pid, "http_requests"), REQUESTS);
    for row in rows.iter().filter(|r| r["gc_major"] != "0") {
        assert!(
            row["gc_pause_ms_p99"].parse::<f64>().unwrap() > 0.0,
            "{row:?}"
        );
    }
}
