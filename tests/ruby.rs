//! CRuby end to end, through the USDT probes of Debian's libruby-3.1: a workload with
//! automatic GC off does a known amount of work after ustat attached, and the CSV, the
//! per-method CSV and the flow must show exactly that.

mod support;

use std::{collections::HashMap, ffi::OsStr};

use support::{Driven, Ustat, csv_ustat, interpreters::ruby, read_csv, stop, sum_for};

const GCS: u64 = 5;
const OBJECTS: u64 = 7;
const CALLS: u64 = 11;
const REQUIRES: u64 = 4;
const RAISES: u64 = 6;

fn column(rows: &[HashMap<String, String>], pid: u32, name: &str) -> Vec<String> {
    rows.iter()
        .filter(|r| r["pid"] == pid.to_string())
        .map(|r| r[name].clone())
        .collect()
}

#[test]
fn ruby_counts_are_exact() {
    let Some(mut ruby) = ruby() else { return };
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let methods = dir.path().join("methods.csv");
    let pid = ruby.pid().to_string();
    let ustat = csv_ustat(
        &csv,
        &[
            OsStr::new("-p"),
            OsStr::new(&pid),
            OsStr::new("--with"),
            OsStr::new("calls,objects"),
            OsStr::new("--methods"),
            methods.as_os_str(),
        ],
    );
    for command in [
        format!("gc {GCS}"),
        format!("objects {OBJECTS}"),
        format!("calls {CALLS}"),
        format!("requires {REQUIRES}"),
        format!("raise {RAISES}"),
    ] {
        assert_eq!(ruby.send(&command), "ok", "{command}");
    }
    stop(ustat);
    let rows = read_csv(&csv);
    let pid = ruby.pid();
    assert!(rows.iter().all(|r| r["runtime"] == "ruby"), "{rows:?}");
    assert_eq!(sum_for(&rows, pid, "gc_count"), GCS, "a GC is a mark phase");
    assert!(
        column(&rows, pid, "gc_sweep_ms_total")
            .iter()
            .all(|c| !c.is_empty()),
        "sweep time is traced"
    );
    // Each raise makes one exception object (UstatMarkerError.new) besides the markers.
    assert_eq!(
        sum_for(&rows, pid, "objects_allocated"),
        OBJECTS + RAISES,
        "objects"
    );
    assert!(
        column(&rows, pid, "bytes_allocated")
            .iter()
            .all(String::is_empty),
        "Ruby's objects have no sizes"
    );
    assert_eq!(sum_for(&rows, pid, "imports"), REQUIRES, "requires");
    assert_eq!(sum_for(&rows, pid, "exceptions"), RAISES, "raises");
    assert!(sum_for(&rows, pid, "method_calls") >= CALLS);

    let mut calls: HashMap<String, u64> = HashMap::new();
    for row in read_csv(&methods)
        .iter()
        .filter(|r| r["pid"] == pid.to_string())
    {
        *calls.entry(row["method"].clone()).or_default() += row["calls"].parse::<u64>().unwrap();
    }
    assert_eq!(calls.get("UstatWorkload#marked"), Some(&CALLS), "{calls:?}");
    assert_eq!(
        calls.get("UstatWorkload#caller_of_marked"),
        Some(&1),
        "{calls:?}"
    );
    // C methods are counted too: Integer#times ran once in caller_of_marked.
    assert!(
        calls.get("Integer#times").is_some_and(|&n| n >= 1),
        "{calls:?}"
    );
}

/// Without `--with`, the on-demand calls and objects are empty cells, not zeros; what is
/// always on still counts.
#[test]
fn ruby_calls_and_objects_are_empty_unless_asked_for() {
    let Some(mut ruby) = ruby() else { return };
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let pid = ruby.pid().to_string();
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid)]);
    assert_eq!(ruby.send(&format!("calls {CALLS}")), "ok");
    assert_eq!(ruby.send(&format!("raise {RAISES}")), "ok");
    stop(ustat);
    let rows = read_csv(&csv);
    let pid = ruby.pid();
    assert!(!column(&rows, pid, "method_calls").is_empty(), "{rows:?}");
    for name in ["method_calls", "objects_allocated"] {
        assert!(
            column(&rows, pid, name).iter().all(String::is_empty),
            "{name}: {rows:?}"
        );
    }
    assert_eq!(sum_for(&rows, pid, "exceptions"), RAISES);
}

/// A flow line without its timestamp and duration: (depth, `->`/`<-`, method).
fn step(line: &str) -> (usize, String, String) {
    // `TIME_NS PID TID <indent>-> Method` or `... <- Method 1.2ms`
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
fn ruby_flow_is_in_order_and_nested() {
    let Some(mut ruby) = ruby() else { return };
    let pid = ruby.pid().to_string();
    let mut flow = Ustat::spawn(&[
        "--flow",
        "--text",
        "-p",
        &pid,
        "--with",
        "calls",
        "--class",
        "UstatWorkload",
    ]);
    flow.stderr.wait_for("the flow to start", |l| {
        l.starts_with("ustat: following the method calls")
    });
    assert_eq!(ruby.send("tree"), "ok");
    let first = flow
        .stdout
        .wait_for("the first call", |l| l.contains("-> UstatWorkload#outer"));
    let name = |m: &str| format!("UstatWorkload#{m}");
    let mut expected = vec![(0, "->".to_string(), name("outer"))];
    for _ in 0..3 {
        for (depth, arrow, method) in [
            (1, "->", "inner"),
            (2, "->", "leaf"),
            (2, "<-", "leaf"),
            (1, "<-", "inner"),
        ] {
            expected.push((depth, arrow.to_string(), name(method)));
        }
    }
    for (depth, arrow, method) in [(1, "->", "leaf"), (1, "<-", "leaf"), (0, "<-", "outer")] {
        expected.push((depth, arrow.to_string(), name(method)));
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
    drop::<Driven>(ruby);
}

/// With calls asked for, the detail view says in one line why Ruby methods' calls may be
/// missing (a TracePoint); objects, not asked for, are on demand.
#[test]
fn ruby_detail_view_says_why() {
    let Some(mut ruby) = ruby() else { return };
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{} -p {} -i 0.5 --with calls; sleep 600",
        support::ustat_binary().display(),
        ruby.pid()
    );
    let tmux = support::tmux::Tmux::start(dir.path(), 220, 45, &command);
    tmux.wait_for("the row", |s| s.contains(&ruby.pid().to_string()));
    let detail = tmux.press_until("Enter", "detail view", |s| s.contains("Top methods"));
    let flat = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    for line in [
        "method calls: Ruby fires its probes for Ruby methods (and so the flow) only while a \
         TracePoint on :call and :return is enabled",
        "objects: not traced by default: Ruby allocates a string per object",
    ] {
        assert!(flat.contains(line), "`{line}` in:\n{detail}");
    }
    // Exceptions by class, since attach (the warm-up's came before).
    assert_eq!(ruby.send("raise 6"), "ok");
    tmux.wait_for("the exceptions by class", |s| {
        s.contains("exceptions: 6 since attach (UstatMarkerError 6)")
    });
}
