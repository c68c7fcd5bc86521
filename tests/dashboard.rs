//! The dashboard in a real terminal (tmux): it shows the JVM's row, every documented key does
//! what the help says, `q` quits, and afterwards the terminal is back to normal and none of
//! ustat's eBPF programs is still loaded; a sampled CPython shows its CPU% and hot functions,
//! and `x` writes its stacks.

mod support;

use std::{collections::BTreeSet, time::Duration};

use support::{
    jvm::{Jvm, java},
    poll,
    tmux::Tmux,
    ustat_binary,
};

/// The BPF program ids a process holds (from the fdinfo of its program and link fds).
fn bpf_programs_of(pid: u32) -> BTreeSet<u32> {
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let Ok(text) = std::fs::read_to_string(entry.unwrap().path()) else {
            continue;
        };
        for line in text.lines() {
            if let Some(id) = line.strip_prefix("prog_id:") {
                ids.insert(id.trim().parse().unwrap());
            }
        }
    }
    ids
}

/// Moves the selection to `pid`'s row, whichever row it is on. The rows can reorder at
/// every refresh, so each step reads where the marker and the row are now.
fn select(tmux: &Tmux, pid: u32) {
    let pid = pid.to_string();
    // The table's rows in order: (selected, PID).
    let rows = |screen: &str| -> Vec<(bool, String)> {
        screen
            .lines()
            .skip_while(|l| !l.contains("COMMAND"))
            .skip(1)
            .map_while(|l| {
                let selected = l.starts_with('▶');
                let first = l.trim_start_matches('▶').split_whitespace().next()?;
                first
                    .parse::<u32>()
                    .ok()
                    .map(|_| (selected, first.to_string()))
            })
            .collect()
    };
    let selected = |screen: &str| rows(screen).iter().any(|(s, p)| *s && *p == pid);
    for _ in 0..20 {
        let screen = tmux.capture();
        let now = rows(&screen);
        let target = now.iter().position(|(_, p)| *p == pid);
        let current = now.iter().position(|(s, _)| *s);
        let (Some(target), Some(current)) = (target, current) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        if target == current {
            return;
        }
        // j and k, not Down and Up: one byte, so no escape-sequence timing can split them.
        let key = if target > current { "j" } else { "k" };
        for _ in 0..target.abs_diff(current) {
            tmux.send(key);
        }
        if tmux.poll(Duration::from_secs(5), selected).is_some() {
            return;
        }
    }
    panic!("PID {pid} could not be selected:\n{}", tmux.capture());
}

/// Presses `key`, which writes a file, and returns the path the status line gives after
/// `said`.
fn written_file(tmux: &Tmux, key: &str, said: &str) -> String {
    let screen = tmux.press(key, said, |s| s.contains(said));
    screen
        .lines()
        .find_map(|l| l.trim().strip_prefix(said))
        .unwrap()
        .trim()
        .to_string()
}

/// The PID of the ustat the pane's shell runs, and the BPF programs it holds.
fn ustat_in_pane(tmux: &Tmux) -> (u32, BTreeSet<u32>) {
    let shell: u32 = tmux.pane("#{pane_pid}").parse().unwrap();
    let ustat = poll("ustat under the shell", || child_of(shell));
    (ustat, bpf_programs_of(ustat))
}

/// Program ids loaded in the kernel now.
fn loaded_programs() -> BTreeSet<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .map(|p| p.id())
        .collect()
}

fn child_of(parent: u32) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

#[test]
fn the_dashboard_shows_the_jvm_obeys_every_key_and_cleans_up() {
    let mut jvm = Jvm::start(java(), &["-XX:+ExtendedDTraceProbes"]);
    jvm.send("spin");
    let pid = jvm.pid().to_string();
    let command = format!(
        "{} -p {pid} -i 0.5; echo USTAT_EXIT=$?; stty -a; sleep 600",
        ustat_binary().display()
    );
    let tmux = Tmux::start(jvm.dir.path(), 120, 40, &command);
    // A table row starts with its PID (after the selection marker).
    let is_row =
        |line: &str| line.trim_start_matches('▶').split_whitespace().next() == Some(pid.as_str());
    let row = |screen: &str| screen.lines().find(|l| is_row(l)).map(str::to_string);
    // The JVM's row, with its method calls counted.
    tmux.wait_for("the JVM's row with calls", |s| {
        row(s).is_some_and(|r| r.contains("jvm") && !r.trim_end().ends_with(" 0"))
    });

    let (_, programs) = ustat_in_pane(&tmux);
    assert!(
        programs.len() >= 4,
        "count, span_begin, span_end, keyed: {programs:?}"
    );

    tmux.press("?", "the help", |s| {
        s.contains("Keys (Esc closes)") && s.contains("sort by the next column")
    });
    tmux.press("Escape", "the help closed", |s| {
        !s.contains("Keys (Esc closes)")
    });
    tmux.press("s", "sorted by pause", |s| s.contains("sort PAUSE p99 ▼"));
    tmux.press("S", "the order reversed", |s| {
        s.contains("sort PAUSE p99 ▲")
    });
    tmux.press("r", "only JVMs", |s| s.contains("runtime jvm"));
    tmux.press("j", "selection moved", |s| s.contains("▶"));
    tmux.press("k", "selection moved back", |s| s.contains("▶"));
    tmux.press("End", "last row", |s| s.contains("▶"));
    tmux.press("Home", "first row", |s| s.contains("▶"));
    tmux.press("PageDown", "a page down", |s| s.contains("▶"));
    tmux.press("PageUp", "a page up", |s| s.contains("▶"));
    // Select the JVM, whichever row it is on, then open it.
    select(&tmux, jvm.pid());
    let detail = tmux.press("Enter", "the detail view", |s| {
        s.contains("Top methods") && s.contains(&format!("PID {pid}"))
    });
    assert!(
        detail.contains("GC pauses") && detail.contains("Threads ("),
        "{detail}"
    );
    tmux.wait_for("the marker method among the top methods", |s| {
        s.contains("Workload.marker(int)")
    });
    tmux.press("Escape", "back to the table", |s| {
        s.contains("COMMAND") && !s.contains("Top methods")
    });
    tmux.press("l", "the detail view again", |s| s.contains("Top methods"));
    tmux.press("Left", "the table again", |s| !s.contains("Top methods"));
    tmux.press(" ", "paused", |s| s.contains("PAUSED"));
    tmux.press(" ", "resumed", |s| !s.contains("PAUSED"));
    let path = written_file(&tmux, "e", "snapshot written to ");
    let rows = support::read_csv(std::path::Path::new(&path));
    assert!(
        rows.iter()
            .any(|r| r["pid"] == pid && r["runtime"] == "jvm"),
        "{rows:?}"
    );
    tmux.press("F1", "the help", |s| s.contains("Keys (Esc closes)"));
    tmux.press("?", "the help closed", |s| !s.contains("Keys (Esc closes)"));

    let after = tmux.press("q", "ustat's exit", |s| {
        s.contains("USTAT_EXIT=") && s.contains("speed")
    });
    assert!(after.contains("USTAT_EXIT=0"), "{after}");
    // Back to a normal terminal: main screen, line editing and echo on, cursor shown.
    assert_eq!(tmux.pane("#{alternate_on}"), "0");
    assert_eq!(tmux.pane("#{cursor_flag}"), "1");
    let stty: Vec<&str> = after.split_whitespace().collect();
    for setting in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(stty.contains(&setting), "{setting} should be on: {after}");
    }
    // Every program ustat held is gone from the kernel.
    poll("ustat's programs to be unloaded", || {
        let loaded = loaded_programs();
        programs.iter().all(|id| !loaded.contains(id)).then_some(())
    });
}

#[test]
fn sigterm_and_sighup_restore_the_terminal_too() {
    for signal in ["TERM", "HUP"] {
        let dir = tempfile::tempdir().unwrap();
        let command = format!(
            "{} -i 0.5; echo USTAT_EXIT=$?; stty -a; sleep 600",
            ustat_binary().display()
        );
        let tmux = Tmux::start(dir.path(), 100, 30, &command);
        tmux.wait_for("the dashboard", |s| {
            s.contains("ustat ") && s.contains("processes")
        });
        let (ustat, programs) = ustat_in_pane(&tmux);
        let out = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &ustat.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success());
        // `stty -a` prints its flags after its first line: wait for them, not for `speed`.
        let after = tmux.wait_for("ustat's exit and stty's flags", |s| {
            s.contains("USTAT_EXIT=") && s.contains("icanon")
        });
        assert!(after.contains("USTAT_EXIT=0"), "SIG{signal}: {after}");
        assert_eq!(tmux.pane("#{alternate_on}"), "0", "SIG{signal}");
        assert!(
            after.split_whitespace().any(|w| w == "icanon"),
            "SIG{signal}: {after}"
        );
        poll("ustat's programs to be unloaded", || {
            let loaded = loaded_programs();
            programs.iter().all(|id| !loaded.contains(id)).then_some(())
        });
    }
}

/// Each runtime build's gaps are said in one line in the detail view; no empty screen, no error.
#[test]
fn the_views_explain_what_a_runtime_build_lacks() {
    use support::interpreters::{node, pyenv_python, python};
    let modern = python(&pyenv_python("3.12.1"));
    let old = python(&pyenv_python("2.7.18"));
    let node = node();
    let pids = [modern.pid(), old.pid(), node.pid()];
    let dir = tempfile::tempdir().unwrap();
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let command = format!(
        "{} -p {} -i 0.5; sleep 600",
        ustat_binary().display(),
        list.join(",")
    );
    let tmux = Tmux::start(dir.path(), 130, 40, &command);
    tmux.wait_for("all three rows", |s| {
        pids.iter().all(|p| s.contains(&p.to_string()))
    });
    let expectations: [(u32, &[&str]); 3] = [
        (
            modern.pid(),
            &[
                "import times: not traced: this CPython was built without USDT probes",
                "function calls: not traced: this CPython has no function__entry probe",
            ],
        ),
        (
            old.pid(),
            // 2.7 creates modules in C only, by a function ustat does not count.
            &["imports: not traced: this CPython has no symbol for ModuleType.__init__"],
        ),
        (node.pid(), &["not traced: node has no such probes"]),
    ];
    for (pid, lines) in expectations {
        select(&tmux, pid);
        let detail = tmux.press("Enter", "the detail view", |s| {
            s.contains("Top methods") && s.contains(&format!("PID {pid} ·"))
        });
        let flat = detail.split_whitespace().collect::<Vec<_>>().join(" ");
        for line in lines {
            assert!(flat.contains(line), "PID {pid}: `{line}` in:\n{detail}");
        }
        tmux.press("BSpace", "the table", |s| s.contains("COMMAND"));
    }
}

/// `f` follows the selected JVM's calls; the flow view's keys work; Esc goes back.
#[test]
fn the_flow_view_follows_calls_and_obeys_its_keys() {
    let mut jvm = Jvm::start(java(), &["-XX:+ExtendedDTraceProbes"]);
    jvm.send("spin");
    let pid = jvm.pid();
    let command = format!(
        "{} -p {pid} -i 0.5; echo USTAT_EXIT=$?; sleep 600",
        ustat_binary().display()
    );
    let tmux = Tmux::start(jvm.dir.path(), 130, 40, &command);
    tmux.wait_for("the JVM's row", |s| s.contains("jvm"));
    select(&tmux, pid);
    tmux.press("f", "the flow view", |s| {
        s.contains(" flow ") && s.contains("Workload.marker(int)")
    });
    tmux.wait_for("per-method times", |s| {
        s.contains("Per method since the flow first opened") && s.contains("calls    total")
    });
    tmux.press(" ", "paused", |s| s.contains("PAUSED"));
    tmux.press(" ", "resumed", |s| !s.contains("PAUSED"));
    let picker = tmux.press("t", "the thread picker", |s| {
        s.contains("Threads: Enter shows") && s.contains("spinner")
    });
    // Rows: `all threads`, then the live threads, oldest first; move down to `spinner`.
    let rows: Vec<&str> = picker
        .lines()
        .skip_while(|l| !l.contains("all threads"))
        .collect();
    let down = rows.iter().position(|l| l.contains("spinner")).unwrap();
    for _ in 0..down {
        tmux.send("Down");
    }
    tmux.press("Enter", "the spinning thread", |s| {
        s.contains("spinner") && !s.contains("Threads: Enter shows")
    });
    tmux.press("k", "scrolled back", |s| s.contains("scrolled back"));
    tmux.press("G", "following again", |s| {
        s.lines()
            .nth(1)
            .is_some_and(|l| l.trim_end().ends_with(" live"))
    });
    tmux.press("+", "a slower threshold", |s| s.contains("slow ≥ 2.00ms"));
    tmux.press("-", "back to 1ms", |s| s.contains("slow ≥ 1.00ms"));
    tmux.press("m", "the method filter prompt", |s| {
        s.contains("method (or function) prefix:")
    });
    for key in ["s", "l", "e", "e", "p"] {
        tmux.send(key);
    }
    tmux.press("Enter", "the filter applied", |s| {
        s.contains("method sleep*")
    });
    tmux.wait_for("only sleep calls", |s| {
        let calls: Vec<&str> = s
            .lines()
            .filter(|l| l.contains("-> ") || l.contains("<- "))
            .collect();
        !calls.is_empty() && calls.iter().all(|l| l.contains(".sleep"))
    });
    tmux.press("/", "the class filter prompt", |s| {
        s.contains("class (or file) prefix:")
    });
    tmux.press("Escape", "the prompt cancelled", |s| {
        !s.contains("class (or file) prefix:")
    });
    tmux.press(
        "z",
        "the call folded or not (an entry or a return under the cursor)",
        |s| s.contains(" flow "),
    );
    let path = written_file(&tmux, "x", "folded stacks written to ");
    let folded = std::fs::read_to_string(&path).unwrap();
    // spin() was entered before the flow began, so its marker() calls are roots.
    assert!(
        folded
            .lines()
            .any(|l| l.starts_with("Workload.marker(int) ")),
        "{folded}"
    );
    tmux.press("?", "the flow help", |s| {
        s.contains("fold or unfold the call")
    });
    tmux.press("F1", "the help closed", |s| {
        !s.contains("fold or unfold the call")
    });
    tmux.press("BSpace", "back to the detail view", |s| {
        s.contains("Top methods") && !s.contains("Per method since the flow first opened")
    });
    // Closing the flow loses nothing: the entry probes go before the return probes, so no
    // call piles up unreturned on the spinning thread in between. (Events the ring buffer
    // had no room for while the flow ran, on a loaded machine, are shown as such: they are
    // the flow's, not the closing's.)
    std::thread::sleep(Duration::from_millis(1500));
    let closed = tmux.capture();
    let header = closed.lines().next().unwrap_or("");
    if let Some((_, losses)) = header.split_once("lost: ") {
        for loss in losses.trim().split(", ") {
            assert!(loss.ends_with("events dropped"), "{closed}");
        }
    }
    tmux.press("q", "ustat's exit", |s| s.contains("USTAT_EXIT=0"));
}

/// A terminal that hangs up (its tmux killed) ends ustat, and its programs go.
#[test]
fn a_terminal_that_goes_away_ends_ustat() {
    let dir = tempfile::tempdir().unwrap();
    let command = format!("{} -i 0.5; sleep 600", ustat_binary().display());
    let tmux = Tmux::start(dir.path(), 100, 30, &command);
    tmux.wait_for("the dashboard", |s| {
        s.contains("ustat ") && s.contains("processes")
    });
    let (ustat, programs) = ustat_in_pane(&tmux);
    drop(tmux);
    poll("ustat to exit", || {
        (!std::path::Path::new(&format!("/proc/{ustat}")).exists()).then_some(())
    });
    poll("ustat's programs to be unloaded", || {
        let loaded = loaded_programs();
        programs.iter().all(|id| !loaded.contains(id)).then_some(())
    });
}

/// A CPython spinning in one function, sampled at the default 99 Hz: its CPU% in the table,
/// the function on top of "Hot functions (sampled)" with its file and first line, and `x`
/// writes its stacks as folded stacks to a new file in the current directory. With
/// `--sample-hz 0` the same process shows `–` and a line saying sampling is off.
#[test]
fn sampled_stacks_show_in_the_dashboard_and_x_writes_them() {
    use support::{Driven, interpreters::DEBIAN_PYTHON};
    let workload = std::fs::canonicalize(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/bench/busy_loop.py"),
    )
    .unwrap();
    let source = std::fs::read_to_string(&workload).unwrap();
    let work_line = 1 + source
        .lines()
        .position(|l| l.starts_with("def work("))
        .unwrap();
    let work = format!("work ({}:{work_line})", workload.display());
    let mut python = Driven::spawn(std::process::Command::new(DEBIAN_PYTHON).arg(&workload));
    assert_eq!(python.send("start"), "ok");
    let pid = python.pid();
    let is_row = |line: &str| {
        line.trim_start_matches('▶').split_whitespace().next() == Some(&*pid.to_string())
    };
    // PID, COMMAND (words of its own: `python3.11 workload.py`), RUNTIME, CPU%: the word
    // after the runtime's.
    let cpu = move |screen: &str| -> Option<String> {
        let row = screen.lines().find(|l| is_row(l))?;
        let words: Vec<&str> = row.trim_start_matches('▶').split_whitespace().collect();
        let runtime = words.iter().position(|w| *w == "python")?;
        words.get(runtime + 1).map(|w| w.to_string())
    };

    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{} -p {pid} -i 0.5; echo USTAT_EXIT=$?; sleep 600",
        ustat_binary().display()
    );
    let tmux = Tmux::start(dir.path(), 130, 40, &command);
    // One busy thread: more than 0 and at most about one CPU (the host is shared, so less).
    let table = tmux.wait_for("the busy Python's CPU%", |s| {
        cpu(s).is_some_and(|c| c.parse::<f64>().is_ok_and(|c| c > 0.0))
    });
    let percent: f64 = cpu(&table).unwrap().parse().unwrap();
    assert!(percent <= 150.0, "one busy thread: {percent}%\n{table}");

    select(&tmux, pid);
    let detail = tmux.press("Enter", "the hot functions", |s| {
        s.contains("Hot functions (sampled, since attach)") && s.contains("99 Hz")
    });
    let file_line = format!("busy_loop.py:{work_line}");
    let hot = tmux.wait_for("work() on top of the hot functions", |s| {
        s.lines()
            .skip_while(|l| !l.contains("self%  total%"))
            .nth(1)
            .is_some_and(|top| top.contains(" work ") && top.contains(&file_line))
    });
    assert!(!detail.contains("sampling is off"), "{detail}");
    assert!(hot.contains("Top methods"), "beside the call counts: {hot}");

    let path = written_file(
        &tmux,
        "x",
        &format!("PID {pid}: sampled stacks written to "),
    );
    let path = std::path::Path::new(&path);
    assert_eq!(
        path.parent(),
        Some(std::fs::canonicalize(dir.path()).unwrap().as_path())
    );
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with(&format!("ustat-samples-{pid}-")) && name.ends_with(".folded"),
        "{name}"
    );
    let folded = std::fs::read_to_string(path).unwrap();
    let mut counts: Vec<(u64, &str)> = folded
        .lines()
        .map(|l| {
            let (stack, count) = l.rsplit_once(' ').unwrap();
            // The command and what it runs, as in the table: `python3.11_busy_loop.py`.
            assert!(stack.starts_with("python3.11"), "{l}");
            (count.parse().unwrap(), stack)
        })
        .collect();
    counts.sort();
    let (_, busiest) = counts.last().expect("a stack");
    assert!(busiest.ends_with(&format!(";{work}")), "{folded}");
    tmux.press("q", "ustat's exit", |s| s.contains("USTAT_EXIT=0"));
    drop(tmux);

    let command = format!(
        "{} -p {pid} -i 0.5 --sample-hz 0; sleep 600",
        ustat_binary().display()
    );
    let tmux = Tmux::start(dir.path(), 130, 40, &command);
    let table = tmux.wait_for("the Python's row", |s| cpu(s).is_some());
    assert_eq!(cpu(&table).as_deref(), Some("–"), "{table}");
    select(&tmux, pid);
    tmux.press("Enter", "the line that says sampling is off", |s| {
        s.contains("not sampled: sampling is off (--sample-hz 0)")
    });
    tmux.press("x", "the line that says nothing was written", |s| {
        s.contains(&format!(
            "PID {pid}: no sampled stacks to write (it is not sampled)"
        ))
    });
}
