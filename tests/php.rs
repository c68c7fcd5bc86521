//! PHP end to end, through the USDT probes of Debian's php8.2 CLI: a workload does a known
//! amount of work after ustat attached, and the CSV, the per-method CSV and the flow must
//! show exactly that. Function and compile probes fire only under `USE_ZEND_DTRACE=1`.

mod support;

use std::{collections::HashMap, ffi::OsStr};

use support::{Ustat, csv_ustat, interpreters::php, read_csv, stop, sum_for};

const CALLS: u64 = 9;
const INCLUDES: u64 = 4;
const THROWS: u64 = 6;

fn column(rows: &[HashMap<String, String>], pid: u32, name: &str) -> Vec<String> {
    rows.iter()
        .filter(|r| r["pid"] == pid.to_string())
        .map(|r| r[name].clone())
        .collect()
}

#[test]
fn php_counts_are_exact_with_use_zend_dtrace() {
    let Some(mut php) = php(true) else { return };
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let methods = dir.path().join("methods.csv");
    let pid = php.pid().to_string();
    let ustat = csv_ustat(
        &csv,
        &[
            OsStr::new("-p"),
            OsStr::new(&pid),
            OsStr::new("--methods"),
            methods.as_os_str(),
        ],
    );
    for command in [
        format!("calls {CALLS}"),
        format!("includes {INCLUDES}"),
        format!("throw {THROWS}"),
    ] {
        assert_eq!(php.send(&command), "ok", "{command}");
    }
    stop(ustat);
    let rows = read_csv(&csv);
    let pid = php.pid();
    assert!(rows.iter().all(|r| r["runtime"] == "php"), "{rows:?}");
    assert_eq!(sum_for(&rows, pid, "imports"), INCLUDES, "files compiled");
    assert_eq!(sum_for(&rows, pid, "exceptions"), THROWS, "thrown");
    assert_eq!(sum_for(&rows, pid, "exceptions_caught"), THROWS, "caught");
    assert_eq!(sum_for(&rows, pid, "errors"), 0);
    // ustat_caller, CALLS x two markers, and each included file's top-level code (`main`).
    assert_eq!(
        sum_for(&rows, pid, "method_calls"),
        1 + 2 * CALLS + INCLUDES,
        "calls"
    );

    let mut calls: HashMap<String, u64> = HashMap::new();
    for row in read_csv(&methods)
        .iter()
        .filter(|r| r["pid"] == pid.to_string())
    {
        *calls.entry(row["method"].clone()).or_default() += row["calls"].parse::<u64>().unwrap();
    }
    assert_eq!(calls.get("ustat_marked"), Some(&CALLS), "{calls:?}");
    assert_eq!(calls.get("UstatMarker::marked"), Some(&CALLS), "{calls:?}");
    assert_eq!(calls.get("ustat_caller"), Some(&1), "{calls:?}");
}

/// Without USE_ZEND_DTRACE, calls and compiled files are empty cells, not zeros, while
/// exceptions still count.
#[test]
fn php_calls_are_empty_without_use_zend_dtrace() {
    let Some(mut php) = php(false) else { return };
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let pid = php.pid().to_string();
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid)]);
    assert_eq!(php.send(&format!("calls {CALLS}")), "ok");
    assert_eq!(php.send(&format!("includes {INCLUDES}")), "ok");
    assert_eq!(php.send(&format!("throw {THROWS}")), "ok");
    stop(ustat);
    let rows = read_csv(&csv);
    let pid = php.pid();
    assert!(!column(&rows, pid, "method_calls").is_empty(), "{rows:?}");
    for name in ["method_calls", "imports", "import_ms_total"] {
        assert!(
            column(&rows, pid, name).iter().all(String::is_empty),
            "{name}: {rows:?}"
        );
    }
    assert_eq!(sum_for(&rows, pid, "exceptions"), THROWS);
}

/// A flow line without its timestamp and duration: (depth, `->`/`<-`, function).
fn step(line: &str) -> (usize, String, String) {
    let rest = line.splitn(4, ' ').nth(3).unwrap();
    let trimmed = rest.trim_start_matches(' ');
    let mut words = trimmed.split(' ');
    (
        (rest.len() - trimmed.len()) / 2,
        words.next().unwrap().to_string(),
        words.next().unwrap().to_string(),
    )
}

#[test]
fn php_flow_is_in_order_and_nested() {
    let Some(mut php) = php(true) else { return };
    let pid = php.pid().to_string();
    let mut flow = Ustat::spawn(&["--flow", "--text", "-p", &pid, "--method", "ustat_"]);
    flow.stderr.wait_for("the flow to start", |l| {
        l.starts_with("ustat: following the method calls")
    });
    assert_eq!(php.send("tree"), "ok");
    let first = flow
        .stdout
        .wait_for("the first call", |l| l.contains("-> ustat_a"));
    let mut expected = vec![(0, "->".to_string(), "ustat_a".to_string())];
    for _ in 0..3 {
        expected.push((1, "->".into(), "ustat_b".into()));
        expected.push((1, "<-".into(), "ustat_b".into()));
    }
    expected.push((1, "->".into(), "ustat_c".into()));
    expected.push((1, "<-".into(), "ustat_c".into()));
    expected.push((0, "<-".into(), "ustat_a".into()));
    for level in 0..5 {
        expected.push((level, "->".into(), "ustat_d".into()));
    }
    for level in (0..5).rev() {
        expected.push((level, "<-".into(), "ustat_d".into()));
    }
    let mut steps = vec![step(&first)];
    steps.extend(
        flow.stdout
            .take(expected.len() - 1, "the flow")
            .iter()
            .map(|l| step(l)),
    );
    assert_eq!(steps, expected);
    flow.signal(libc::SIGINT);
    assert!(flow.wait().success());
}

/// Without USE_ZEND_DTRACE the detail view says in one line why calls are missing.
#[test]
fn php_detail_view_says_why() {
    let Some(mut php) = php(false) else { return };
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{} -p {} -i 0.5; sleep 600",
        support::ustat_binary().display(),
        php.pid()
    );
    let tmux = support::tmux::Tmux::start(dir.path(), 220, 45, &command);
    tmux.wait_for("the row", |s| s.contains(&php.pid().to_string()));
    let detail = tmux.press_until("Enter", "detail view", |s| s.contains("Top methods"));
    let flat = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = "function calls and compiled files: not traced; PHP fires these probes only when \
                started with USE_ZEND_DTRACE=1";
    assert!(flat.contains(line), "`{line}` in:\n{detail}");
    // Exceptions by class, since attach (the warm-up's came before).
    assert_eq!(php.send("throw 6"), "ok");
    tmux.wait_for("the exceptions by class", |s| {
        s.contains("exceptions: 6 since attach (UstatMarkerException 6)")
    });
}
