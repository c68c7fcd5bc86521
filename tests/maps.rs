//! The kernel maps stay bounded and honest: every exited process's entries leave them,
//! whether or not ustat tracked it, and a pid used again never merges two processes' counts.
//!
//! The workload is `tests/fixtures/usdt/gc_storm.c` built as `python3.11`: CPython 3.11's
//! `python:gc__start`/`gc__done` USDT probes in a program that starts in about a millisecond.
//! The workload — 200 Python processes a second — is more CPU than this two-core
//! machine has (a CPython start costs ~15 ms), while the stand-in reaches the rate and goes
//! through the same discovery, programs, maps and exit hook as a real CPython. A real CPython
//! then checks that a later process's count is exact.

mod support;

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    ffi::OsStr,
    path::Path,
    process::Command,
};

use support::{
    Driven, Ustat,
    fixtures::CProgram,
    interpreters::{DEBIAN_PYTHON, fixture},
    poll, read_csv, stop, sum_for,
};

/// One line of `USTAT_DEBUG_MAPS`: entries per map, and the pids with any.
struct MapSizes {
    entries: HashMap<String, usize>,
    pids: BTreeSet<u32>,
}

fn map_sizes(path: &Path) -> Vec<MapSizes> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| l.ends_with(|c: char| c.is_ascii_digit() || c == '='))
        .map(|line| {
            let mut sizes = MapSizes {
                entries: HashMap::new(),
                pids: BTreeSet::new(),
            };
            for field in line.split(' ') {
                let (name, value) = field.split_once('=').expect("NAME=VALUE");
                if name == "pids" {
                    sizes.pids = value
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| p.parse().expect("pid"))
                        .collect();
                } else {
                    sizes
                        .entries
                        .insert(name.to_string(), value.parse().expect("size"));
                }
            }
            sizes
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// System-wide ustat on Python processes, a CSV row per process every `interval` seconds,
/// returned once it has attached.
fn system_wide_ustat(csv: &Path, interval: &str, maps: &Path) -> Ustat {
    let args: [&OsStr; 6] = [
        "--csv".as_ref(),
        csv.as_os_str(),
        "-i".as_ref(),
        interval.as_ref(),
        "--runtime".as_ref(),
        "python".as_ref(),
    ];
    let maps = maps.to_str().expect("UTF-8 temp path");
    let mut ustat = Ustat::spawn_with(&[("USTAT_DEBUG_MAPS", maps)], &args);
    ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
    ustat
}

/// Waits until ustat reports `pid` (it found the process and attached its binary).
fn wait_tracked(csv: &Path, pid: u32) {
    poll(&format!("ustat to report process {pid}"), || {
        let rows = read_csv(csv);
        rows.iter()
            .any(|r| r["pid"] == pid.to_string())
            .then_some(())
    });
}

const RATE: u32 = 200;
const SECONDS: u32 = 60;
/// Each child collects generations 0, 1 and 2: three span keys apiece, so 12,000 children
/// leaking their keys would fill SPANS (16,384 entries) three times over.
const CHILD_GCS: u64 = 3;
const LATER_GCS: u64 = 7;

/// 200 processes a second for 60 s, system-wide: afterwards no entry of any of them is
/// left in the maps, no hit was lost to a full map, and a later real python3.11 doing
/// exactly 7 `gc.collect()` reads 7. Any child ustat happened to track reports exactly its
/// 3 GCs.
#[test]
fn a_storm_of_short_processes_leaves_the_maps_as_they_were() {
    let seconds = SECONDS;
    let storm = CProgram::gc_storm();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let maps = dir.path().join("maps.txt");
    let pids_file = dir.path().join("children.txt");
    // Long-lived, so ustat finds the binary at start and attaches it for its children.
    let mut spawner: Driven = storm.start();
    let ustat = system_wide_ustat(&csv, "1", &maps);
    wait_tracked(&csv, spawner.pid());
    assert_eq!(spawner.send("gc 2"), "ok");

    let answer = spawner.send(&format!(
        "storm {RATE} {seconds} {CHILD_GCS} {}",
        pids_file.display()
    ));
    let mut done = answer;
    while done.starts_with("progress") {
        done = spawner
            .stdout
            .next("the storm to go on")
            .expect("the spawner exited");
    }
    let expected = RATE * seconds;
    assert_eq!(
        done,
        format!("done {expected} 0"),
        "every child started and exited 0"
    );
    let children: HashSet<u32> = std::fs::read_to_string(&pids_file)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let polls_before = map_sizes(&maps).len();

    // Every child was reaped: a poll from now on must find none of them in the maps
    // (except a pid that some new process took since).
    let after = poll("the maps to lose every child's entries", || {
        let sizes = map_sizes(&maps);
        sizes.into_iter().skip(polls_before).find(|s| {
            s.pids
                .iter()
                .all(|&pid| !children.contains(&pid) || alive(pid))
        })
    });
    assert_eq!(after.entries["EXITED"], 0);
    assert_eq!(
        after.entries["lost_map_full"], 0,
        "every hit was counted: {:?}",
        after.entries
    );

    let python_dir = tempfile::tempdir().unwrap();
    let python_copy = python_dir.path().join("python3.11");
    std::fs::copy(DEBIAN_PYTHON, &python_copy).unwrap();
    let mut python = Driven::spawn(Command::new(&python_copy).arg(fixture("python/workload.py")));
    wait_tracked(&csv, python.pid());
    assert_eq!(python.send(&format!("gc {LATER_GCS}")), "ok");
    let python_pid = python.pid();
    drop(python);
    poll("the later python's exited row", || {
        let rows = read_csv(&csv);
        rows.iter()
            .any(|r| r["pid"] == python_pid.to_string() && r["exited"] == "1")
            .then_some(())
    });
    let unlisted = stop_reading_unlisted(ustat);

    let rows = read_csv(&csv);
    assert_eq!(
        sum_for(&rows, python_pid, "gc_gen2"),
        LATER_GCS,
        "gc.collect() is a generation-2 collection; automatic GC is off"
    );
    assert_eq!(sum_for(&rows, spawner.pid(), "gc_count"), 2);
    let tracked_children: BTreeSet<u32> = rows
        .iter()
        .map(|r| r["pid"].parse::<u32>().unwrap())
        .filter(|pid| children.contains(pid))
        .collect();
    // Every process that exits gets rows (also one that came and went between two looks),
    // and pids wrap around quickly on a busy host: a pid's rows may be several processes',
    // each ended by its exited row. Each child's run of rows sums to its GCs; another
    // process that took a child's pid (another test's Python) may sum to anything.
    let mut in_rows = 0;
    let mut child_runs = 0u64;
    for &pid in &tracked_children {
        let runs = runs_of(&rows, pid);
        assert!(
            runs.contains(&CHILD_GCS),
            "child {pid}: its processes' GCs {runs:?}"
        );
        let children_here = runs.iter().filter(|&&gcs| gcs == CHILD_GCS).count() as u64;
        child_runs += children_here;
        in_rows += children_here * CHILD_GCS;
    }
    // Every child's GCs are in a row or reported lost (exited before ustat listed it). The
    // report is host-wide, and other tests' processes may add to it: at least, not exactly.
    assert!(
        in_rows + unlisted.events >= u64::from(expected) * CHILD_GCS,
        "{in_rows} GCs in rows and {} reported lost, of {} done",
        unlisted.events,
        u64::from(expected) * CHILD_GCS
    );
    assert!(
        child_runs + unlisted.processes >= u64::from(expected),
        "{child_runs} children in rows and {} reported unlisted, of {expected}",
        unlisted.processes
    );
}

/// The GCs of each process that had `pid`, in order: a process's rows end with its exited
/// row.
fn runs_of(rows: &[HashMap<String, String>], pid: u32) -> Vec<u64> {
    let mut runs = Vec::new();
    let mut current: Option<u64> = None;
    for row in rows.iter().filter(|r| r["pid"] == pid.to_string()) {
        let gcs: u64 = row["gc_count"].parse().unwrap_or(0);
        *current.get_or_insert(0) += gcs;
        if row["exited"] == "1" {
            runs.extend(current.take());
        }
    }
    runs.extend(current);
    runs
}

/// What ustat reported on stderr as lost because the processes exited before it listed them.
#[derive(Debug, Default)]
struct Unlisted {
    events: u64,
    processes: u64,
}

/// Stops ustat (SIGINT) and adds up its stderr lines
/// `... N events of M processes that exited before ustat listed them ...`.
fn stop_reading_unlisted(mut ustat: Ustat) -> Unlisted {
    ustat.signal(libc::SIGINT);
    assert!(ustat.wait().success(), "ustat failed");
    let mut unlisted = Unlisted::default();
    for line in ustat.stderr.rest() {
        let Some(parts) = line
            .strip_prefix("ustat: lost in the last interval: ")
            .and_then(|rest| rest.split("; ").next())
        else {
            continue;
        };
        for part in parts.split(", ") {
            let words: Vec<&str> = part.split(' ').collect();
            if let [_, "events", "of", ..] = words.as_slice()
                && part.contains("exited before ustat listed")
            {
                unlisted.events += words[0].parse::<u64>().unwrap();
                unlisted.processes += words[3].parse::<u64>().unwrap();
            }
        }
    }
    unlisted
}

const FIRST_GCS: u64 = 4;
const SECOND_GCS: u64 = 9;

/// A process exits and the next one gets its pid (set through
/// `/proc/sys/kernel/ns_last_pid`; the kernel keys processes by their pid in the root pid
/// namespace, so the pid is chosen there), and collects garbage before ustat's next poll:
/// each reports its own count, the first on its `exited` row, the second after it.
#[test]
fn a_reused_pid_never_merges_two_processes() {
    let storm = CProgram::gc_storm();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let maps = dir.path().join("maps.txt");
    let mut anchor = storm.start();
    let ustat = system_wide_ustat(&csv, "2", &maps);
    wait_tracked(&csv, anchor.pid());
    // Other processes on the host may take the pid first: then try again.
    for _attempt in 0..20 {
        let mut first = storm.start();
        let pid = first.pid();
        wait_tracked(&csv, pid);
        assert_eq!(first.send(&format!("gc {FIRST_GCS}")), "ok");
        drop(first);
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
            .expect("write ns_last_pid (root)");
        let mut second = storm.start();
        if second.pid() != pid {
            continue;
        }
        assert_eq!(second.send(&format!("gc {SECOND_GCS}")), "ok");
        let exited_rows = |n: usize| {
            let rows = read_csv(&csv);
            let of_pid: Vec<_> = rows
                .into_iter()
                .filter(|r| r["pid"] == pid.to_string())
                .collect();
            (of_pid.iter().filter(|r| r["exited"] == "1").count() >= n).then_some(of_pid)
        };
        poll("the first process's exited row", || exited_rows(1));
        drop(second);
        let rows = poll("the second process's exited row", || exited_rows(2));
        stop(ustat);
        let split = rows.iter().position(|r| r["exited"] == "1").unwrap() + 1;
        let gcs = |rows: &[HashMap<String, String>]| -> u64 {
            rows.iter()
                .map(|r| r["gc_count"].parse::<u64>().unwrap())
                .sum()
        };
        assert_eq!(
            gcs(&rows[..split]),
            FIRST_GCS,
            "the first process: {rows:#?}"
        );
        assert_eq!(
            gcs(&rows[split..]),
            SECOND_GCS,
            "the second process: {rows:#?}"
        );
        assert_eq!(rows.last().unwrap()["exited"], "1");
        assert_eq!(anchor.send("gc 1"), "ok");
        return;
    }
    panic!("no new process got the pid that was set free in 20 attempts");
}
