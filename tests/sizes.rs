//! What users asked of the dashboard and the flow (issue 10, item 5), in a real terminal at
//! 80x24 and at 200x50: every column header, footer key and badge whole, text that is cut
//! ending in `…`; COMMAND telling processes apart; Java names as Java writes them; pools in
//! the order GCs change them; the flow's calls, picker, scrolling, prompts and Esc.

mod support;

use std::{ffi::OsStr, path::Path, time::Duration};

use support::{
    Ustat,
    interpreters::{DEBIAN_PYTHON, node, python},
    jvm::{Jvm, java},
    poll, read_csv,
    tmux::Tmux,
    ustat_binary,
};

/// The two sizes every screen is checked at.
const SIZES: [(u16, u16); 2] = [(80, 24), (200, 50)];

const HEADERS: [&str; 9] = [
    "PID",
    "COMMAND",
    "RUNTIME",
    "GC/s",
    "PAUSE p99",
    "CLASS/s",
    "THREAD/s",
    "ALLOC/s",
    "CALLS/s",
];

/// The table's row of `pid` (its first word is the PID, after the selection marker).
fn row(screen: &str, pid: u32) -> Option<String> {
    let pid = pid.to_string();
    screen
        .lines()
        .find(|l| l.trim_start_matches('▶').split_whitespace().next() == Some(pid.as_str()))
        .map(str::to_string)
}

/// Every line of the screen fits the width (tmux pads nothing past it).
fn fits(screen: &str, width: u16) -> bool {
    screen
        .lines()
        .all(|l| l.chars().count() <= usize::from(width))
}

#[test]
fn the_table_tells_processes_apart_and_fits_80_columns() {
    let jvm = Jvm::start(java(), &[]);
    let py = python(Path::new(DEBIAN_PYTHON));
    let js = node();
    let pids = [jvm.pid(), py.pid(), js.pid()];
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    for (width, height) in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let command = format!(
            "{} -p {} -i 0.5; sleep 600",
            ustat_binary().display(),
            list.join(",")
        );
        let tmux = Tmux::start(dir.path(), width, height, &command);
        let screen = tmux.wait_for("the three rows", |s| {
            pids.iter().all(|p| row(s, *p).is_some())
        });
        let size = format!("{width}x{height}");
        assert!(fits(&screen, width), "{size}:\n{screen}");
        // Every column header, whole.
        let header = screen
            .lines()
            .find(|l| l.contains("COMMAND"))
            .unwrap_or_else(|| panic!("{size}: no header:\n{screen}"));
        for title in HEADERS {
            assert!(header.contains(title), "{size}: `{title}` in `{header}`");
        }
        // The badge, the header's facts, every footer key.
        assert!(screen.starts_with(" ustat "), "{size}:\n{screen}");
        assert!(screen.contains("3 processes"), "{size}:\n{screen}");
        let footer: Vec<&str> = screen.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(
            footer,
            [
                "q", "quit", "?", "help", "↑↓", "select", "⏎", "details", "s", "sort", "r",
                "runtime", "e", "export", "f", "flow", "␣", "pause"
            ],
            "{size}:\n{screen}"
        );
        // COMMAND: what each runs, from its command line; cut with `…` where narrow.
        let jvm_row = row(&screen, jvm.pid()).unwrap();
        assert!(jvm_row.contains("java Workload"), "{size}: {jvm_row}");
        let py_row = row(&screen, py.pid()).unwrap();
        let js_row = row(&screen, js.pid()).unwrap();
        if width >= 200 {
            assert!(
                py_row.contains("python3.11 workload.py"),
                "{size}: {py_row}"
            );
            assert!(js_row.contains("node workload.js"), "{size}: {js_row}");
        } else {
            assert!(py_row.contains("python3.11 wo…"), "{size}: {py_row}");
            assert!(js_row.contains("node workload…"), "{size}: {js_row}");
        }
        // One process alone: singular.
        tmux.press("r", "only JVMs", |s| s.contains("1 process ·"));
    }
}

#[test]
fn java_names_overloads_and_pools_in_the_detail_view() {
    let mut jvm = Jvm::start(java(), &["-XX:+ExtendedDTraceProbes"]);
    let pid = jvm.pid();
    for (width, height) in SIZES {
        let size = format!("{width}x{height}");
        let command = format!("{} -p {pid} -i 0.5; sleep 600", ustat_binary().display());
        let tmux = Tmux::start(jvm.dir.path(), width, height, &command);
        tmux.wait_for("the JVM's row", |s| row(s, pid).is_some());
        tmux.press_until("Enter", "the detail view", |s| s.contains("Top methods"));
        // Calls of both overloads, arrays allocated, and GCs to change the pools.
        jvm.send("overloads 20000");
        jvm.send("load 50");
        jvm.send("gc 2");
        let screen = tmux.wait_for("both overloads and byte[]", |s| {
            s.contains("Workload.over(int)")
                && s.contains("Workload.over(String)")
                && s.contains("byte[]")
        });
        assert!(fits(&screen, width), "{size}:\n{screen}");
        assert!(
            !screen.contains("[B"),
            "{size}: a descriptor on screen:\n{screen}"
        );
        assert!(
            screen.contains(&format!("PID {pid} · jvm · ")),
            "{size}: the title's facts:\n{screen}"
        );
        // The pools a GC changed come first: Eden, not a CodeHeap. They show in the
        // interval of the GC.
        let pool_lines = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.contains(" freed"))
                .map(str::to_string)
                .collect()
        };
        let screen = poll("pool lines", || {
            jvm.send("gc 1");
            tmux.poll(Duration::from_secs(3), |s| !pool_lines(s).is_empty())
        });
        let pools = pool_lines(&screen);
        assert!(
            pools[0].contains("Eden"),
            "{size}: Eden first: {pools:#?}\n{screen}"
        );
        assert!(!pools[0].contains("CodeHeap"), "{size}: {pools:#?}");
        assert!(fits(&screen, width), "{size}:\n{screen}");
        tmux.send("q");
    }
}

#[test]
fn the_flow_counts_calls_picks_threads_holds_still_and_clears_prompts() {
    let mut jvm = Jvm::start(java(), &["-XX:+ExtendedDTraceProbes"]);
    jvm.send("spin");
    let pid = jvm.pid();
    for (width, height) in SIZES {
        let size = format!("{width}x{height}");
        let command = format!(
            "{} --flow -p {pid}; echo USTAT_EXIT=$?; sleep 600",
            ustat_binary().display()
        );
        let tmux = Tmux::start(jvm.dir.path(), width, height, &command);
        // A whole frame: tmux may capture one the terminal is still drawing.
        let screen = tmux.wait_for("calls", |s| {
            s.contains("-> Workload.marker(int)")
                && s.contains("Per method since the flow first opened")
                && s.lines()
                    .any(|l| l.trim_start().starts_with('?') && l.contains("help"))
        });
        assert!(fits(&screen, width), "{size}:\n{screen}");
        assert!(screen.contains(" flow "), "{size}: the badge:\n{screen}");
        assert!(
            screen.contains("Per method since the flow first opened"),
            "{size}:\n{screen}"
        );
        // A standalone flow: Esc quits, and the footer says so, whole.
        let footer: Vec<&str> = screen.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(
            footer.join(" "),
            "? help Esc quit ↑↓ End live z fold t thread / m filter x save ␣ pause",
            "{size}:\n{screen}"
        );
        // The header counts calls: entries, about half the lines.
        let calls: u64 = screen
            .lines()
            .find_map(|l| {
                let (before, _) = l.split_once(" calls ·")?;
                before
                    .rsplit(' ')
                    .next()?
                    .replace(['k', 'M', '.'], "")
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{size}: no call count:\n{screen}"));
        assert!(calls > 0, "{size}");

        // The picker lists the live threads by name, oldest first; the spinning thread,
        // `spinner`, is the newest: the last row.
        tmux.press("t", "the thread picker", |s| {
            s.contains("Threads: Enter shows") && s.contains("all threads")
        });
        tmux.send("End");
        let shown = tmux.press("Enter", "spinner alone", |s| {
            s.contains(" spinner") && !s.contains("Threads: Enter")
        });
        // Its calls only: one thread id on every line.
        let tids: std::collections::BTreeSet<&str> = shown
            .lines()
            .filter(|l| l.contains("-> ") || l.contains("<- "))
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert_eq!(tids.len(), 1, "{size}:\n{shown}");
        assert!(fits(&shown, width), "{size}:\n{shown}");

        // Scrolled back, the calls stand still while the thread keeps calling.
        tmux.press("k", "scrolled back", |s| s.contains("scrolled back"));
        let calls_of = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.contains("-> ") || l.contains("<- "))
                .map(str::to_string)
                .collect()
        };
        let screen = tmux.capture();
        let before = calls_of(&screen);
        let status = |s: &str| s.lines().nth(1).map(str::to_string);
        poll("more calls counted", || {
            (status(&tmux.capture()) != status(&screen)).then_some(())
        });
        std::thread::sleep(Duration::from_millis(300));
        let after = calls_of(&tmux.capture());
        assert_eq!(before, after, "{size}: the view moved while scrolled back");
        tmux.press("End", "following again", |s| {
            s.lines()
                .nth(1)
                .is_some_and(|l| l.trim_end().ends_with(" live"))
        });

        // Ctrl-U clears what was typed in a prompt.
        tmux.press("/", "the class prompt", |s| {
            s.contains("class (or file) prefix:")
        });
        for key in ["a", "b", "c"] {
            tmux.send(key);
        }
        tmux.wait_for("abc typed", |s| s.contains("prefix: abc█"));
        tmux.press("C-u", "the prompt cleared", |s| s.contains("prefix: █"));
        tmux.press("Escape", "the prompt closed", |s| !s.contains("prefix:"));
        // Esc quits the standalone flow, with code 0.
        tmux.press("Escape", "ustat's exit", |s| s.contains("USTAT_EXIT=0"));
    }
}

/// A flow on a process whose call probes cannot fire (a JVM without the flag) is refused at
/// once with the detail view's reason, exit code 4.
#[test]
fn a_flow_without_call_probes_is_refused_at_once() {
    let jvm = Jvm::start(java(), &[]);
    let pid = jvm.pid().to_string();
    let mut ustat = Ustat::spawn(&["--flow", "--text", "-p", &pid]);
    let status = ustat.wait();
    let err = ustat.stderr.rest().join("\n");
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(
        err.contains(&format!("the calls of process {pid} cannot be followed: method calls: not traced; HotSpot fires these probes only when started with -XX:+ExtendedDTraceProbes")),
        "{err}"
    );
}

/// `-p` runs end by themselves, with code 0, once the process they trace has exited: the CSV
/// with its `exited` row, and the text flow.
#[test]
fn pid_runs_end_when_their_processes_have() {
    let dir = tempfile::tempdir().unwrap();
    let mut py = python(Path::new(DEBIAN_PYTHON));
    let csv = dir.path().join("out.csv");
    let mut ustat = Ustat::spawn(&[
        OsStr::new("--csv"),
        csv.as_os_str(),
        OsStr::new("-i"),
        OsStr::new("0.3"),
        OsStr::new("-p"),
        OsStr::new(&py.pid().to_string()),
    ]);
    ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
    py.send("gc 1");
    let _ = py.try_send("quit");
    let status = ustat.wait();
    assert!(status.success(), "{status:?}");
    let rows = read_csv(&csv);
    assert_eq!(
        rows.last().map(|r| r["exited"].as_str()),
        Some("1"),
        "{rows:?}"
    );
    // Timestamps end the intervals they count: consecutive ones differ by interval_s.
    let times: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| {
            let t = &r["timestamp"];
            let seconds: f64 = t[17..23].parse().unwrap();
            let minutes: f64 = t[14..16].parse().unwrap();
            (minutes * 60.0 + seconds, r["interval_s"].parse().unwrap())
        })
        .collect();
    for pair in times.windows(2) {
        let (t0, _) = pair[0];
        let (t1, interval) = pair[1];
        let gap = (t1 - t0).rem_euclid(3600.0);
        assert!(
            (gap - interval).abs() < 0.0025,
            "{gap} vs {interval}: {rows:?}"
        );
    }

    let mut jvm = Jvm::start(java(), &["-XX:+ExtendedDTraceProbes"]);
    let pid = jvm.pid().to_string();
    let mut flow = Ustat::spawn(&["--flow", "--text", "-p", &pid]);
    flow.stderr
        .wait_for("the flow", |l| l.starts_with("ustat: following"));
    jvm.send("calls 10");
    let _ = jvm.process.try_send("quit");
    let status = flow.wait();
    assert!(status.success(), "{status:?}");
}
