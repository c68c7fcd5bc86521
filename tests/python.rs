//! CPython end to end, with USDT (Debian's 3.11) and without (pyenv builds, by symbols): a
//! workload with automatic GC off does a known amount of work after ustat attached.

mod support;

use std::{ffi::OsStr, path::Path, process::Command};

use support::{
    Driven, csv_ustat,
    interpreters::{DEBIAN_PYTHON, fixture, pyenv_python, pyenv_python_if_present, python},
    read_csv, stop, sum_for,
    tmux::Tmux,
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

/// Explicit collections of each generation are counted as that generation, automatic ones
/// as the generation CPython says it collected (gc.get_stats), and every row's gc_count is
/// the sum of its generations. `automatic`: whether to check automatic collections (2.7 has
/// no count of its own to check against).
fn generations_are_exact(version: &str, automatic: Result<(), &str>) {
    const EXPLICIT: [u64; 3] = [3, 2, 4];
    let Some(interpreter) = pyenv_python_if_present(version) else {
        return;
    };
    let mut python: Driven = python(&interpreter);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let pid = python.pid().to_string();
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid)]);
    for (generation, n) in EXPLICIT.iter().enumerate() {
        assert_eq!(python.send(&format!("collect {generation} {n}")), "ok");
    }
    let mut expected = EXPLICIT;
    match automatic {
        Ok(()) => {
            let answer = python.send("auto 30000");
            let counted: Vec<u64> = answer
                .strip_prefix("ok ")
                .unwrap_or_else(|| panic!("{version}: {answer}"))
                .split(' ')
                .map(|n| n.parse().unwrap())
                .collect();
            assert!(
                counted[0] > 0,
                "{version}: no automatic collection: {answer}"
            );
            for (e, c) in expected.iter_mut().zip(&counted) {
                *e += c;
            }
        }
        Err(why) => eprintln!("CPython {version}: automatic collections not checked: {why}"),
    }
    stop(ustat);
    let rows = read_csv(&csv);
    let pid = python.pid();
    for (generation, column) in ["gc_gen0", "gc_gen1", "gc_gen2"].iter().enumerate() {
        assert_eq!(
            sum_for(&rows, pid, column),
            expected[generation],
            "CPython {version}: {column}; {rows:?}"
        );
    }
    for row in &rows {
        let cell = |c: &str| row[c].parse::<u64>().unwrap();
        assert_eq!(
            cell("gc_count"),
            cell("gc_gen0") + cell("gc_gen1") + cell("gc_gen2"),
            "CPython {version}: {row:?}"
        );
    }
}

#[test]
fn generations_of_cpython_27() {
    generations_are_exact("2.7.18", Err("2.7 has no gc.get_stats to check against"));
}

#[test]
fn generations_of_cpython_36() {
    generations_are_exact("3.6.15", Ok(()));
}

#[test]
fn generations_of_cpython_37() {
    generations_are_exact("3.7.16", Ok(()));
}

#[test]
fn generations_of_cpython_39() {
    generations_are_exact("3.9.18", Ok(()));
}

#[test]
fn generations_of_cpython_310() {
    generations_are_exact("3.10.13", Ok(()));
}

#[test]
fn generations_of_cpython_311() {
    generations_are_exact("3.11.7", Ok(()));
}

#[test]
fn generations_of_cpython_312() {
    generations_are_exact("3.12.1", Ok(()));
}

#[test]
fn generations_of_cpython_313() {
    generations_are_exact("3.13.0", Ok(()));
}

/// CPython 3.8's collector exists only as compiler clones ustat does not use: its GC cells
/// are empty, never zeros, and the threads still count.
/// 3.8's collector is two compiler clones, told apart by their code (see `planner.rs`).
#[test]
fn generations_of_cpython_38() {
    generations_are_exact("3.8.18", Ok(()));
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

/// `import x` and `importlib.import_module("x")` each count once per module loaded: 10 of
/// each, of modules never loaded before, are 20 imports. By default (no on-demand probe),
/// with their time not traced (an empty cell, not a zero).
fn imports_count_both_paths(interpreter: &Path) {
    const EACH: u64 = 10;
    let mut python = python(interpreter);
    // The first run imports what writing and finding modules needs.
    assert_eq!(python.send("modules 1"), "ok");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let pid = python.pid().to_string();
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid)]);
    assert_eq!(python.send(&format!("modules {EACH}")), "ok");
    stop(ustat);
    let rows = read_csv(&csv);
    assert_eq!(
        sum_for(&rows, python.pid(), "imports"),
        2 * EACH,
        "{}",
        interpreter.display()
    );
    assert!(
        rows.iter().all(|r| r["import_ms_total"].is_empty()),
        "{rows:?}"
    );
}

#[test]
fn debian_python311_counts_imports_of_both_paths() {
    imports_count_both_paths(Path::new(DEBIAN_PYTHON));
}

#[test]
fn pyenv_pythons_count_imports_of_both_paths() {
    for version in [
        "3.7.16", "3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0",
    ] {
        if let Some(interpreter) = pyenv_python_if_present(version) {
            imports_count_both_paths(&interpreter);
        }
    }
}

#[test]
fn debian_python311_imports_and_profiled_calls() {
    let mut python = python(Path::new(DEBIAN_PYTHON));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let methods = dir.path().join("methods.csv");
    let pid = python.pid().to_string();
    let ustat = csv_ustat(
        &csv,
        &[
            OsStr::new("-p"),
            OsStr::new(&pid),
            OsStr::new("--methods"),
            methods.as_os_str(),
            OsStr::new("--with"),
            OsStr::new("imports"),
        ],
    );
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
    let ustat = csv_ustat(
        &csv,
        &[
            OsStr::new("-p"),
            OsStr::new(&pid),
            OsStr::new("--with"),
            OsStr::new("calls"),
        ],
    );
    assert_eq!(python.send("gc 1"), "ok");
    stop(ustat);
    // No profiler, so no calls: empty cells (the detail view says why), not zeros.
    let rows = read_csv(&csv);
    assert!(
        rows.iter()
            .filter(|r| r["pid"] == python.pid().to_string())
            .all(|r| r["method_calls"].is_empty()),
        "{rows:?}"
    );
}

/// The answer of `non_utf8.py` to `run`, untraced (checked by the first test below).
const NON_UTF8_CHECKSUM: &str = "checksum 8009207";

/// `non_utf8.py` (code whose names are not UTF-8, profiled) run by a private copy of Debian's
/// python3.11: its own inode, so no ustat attached to /usr/bin/python3.11 by file (another
/// test's, an older build's that raises every probe) reaches it. Its traceback, when a test
/// makes it fail on purpose, is not the test's output.
struct NonUtf8Program {
    program: Driven,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for NonUtf8Program {
    type Target = Driven;
    fn deref(&self) -> &Driven {
        &self.program
    }
}

impl std::ops::DerefMut for NonUtf8Program {
    fn deref_mut(&mut self) -> &mut Driven {
        &mut self.program
    }
}

fn non_utf8_program() -> NonUtf8Program {
    let dir = tempfile::tempdir().unwrap();
    let interpreter = dir.path().join("python3.11");
    std::fs::copy(DEBIAN_PYTHON, &interpreter).unwrap();
    let program = Driven::spawn(
        Command::new(&interpreter)
            .arg(fixture("python/non_utf8.py"))
            .stderr(std::process::Stdio::null()),
    );
    NonUtf8Program { program, _dir: dir }
}

#[test]
fn non_utf8_names_run_to_completion_untraced() {
    let mut program = non_utf8_program();
    assert_eq!(program.send("run"), NON_UTF8_CHECKSUM);
    assert_eq!(program.send("run"), NON_UTF8_CHECKSUM);
}

/// Default CSV mode raises no probe whose code in CPython fails on the program's own data:
/// the program runs to the end, and calls and import times are empty cells, not zeros.
#[test]
fn csv_leaves_a_profiled_python311_with_non_utf8_names_unharmed() {
    let mut program = non_utf8_program();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let pid = program.pid().to_string();
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid)]);
    assert_eq!(program.send("run"), NON_UTF8_CHECKSUM);
    assert_eq!(program.send("run"), NON_UTF8_CHECKSUM);
    stop(ustat);
    let rows = read_csv(&csv);
    let mine: Vec<_> = rows.iter().filter(|r| r["pid"] == pid).collect();
    assert!(!mine.is_empty());
    for row in mine {
        assert_eq!(
            row["method_calls"], "",
            "not traced, so not a zero: {row:?}"
        );
        // Imports are counted by plain uprobes (module objects created); their time comes
        // from the import probes, which are on demand.
        assert_eq!(row["import_ms_total"], "", "{row:?}");
    }
}

/// The dashboard too; its detail view says in one line why calls are off and how to turn
/// them on, and `o` does.
#[test]
fn the_dashboard_leaves_it_unharmed_and_says_why_calls_are_off() {
    let mut program = non_utf8_program();
    let pid = program.pid();
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{} -p {pid} -i 0.5; sleep 600",
        support::ustat_binary().display()
    );
    let tmux = Tmux::start(dir.path(), 200, 40, &command);
    tmux.wait_for("the process's row", |s| {
        s.lines()
            .any(|l| l.contains(&pid.to_string()) && l.contains("python3.11"))
    });
    assert_eq!(program.send("run"), NON_UTF8_CHECKSUM);
    let detail = tmux.press("Enter", "the detail view", |s| {
        s.contains("Top methods") && s.contains(&format!("PID {pid} ·"))
    });
    let flat = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    for line in [
        "! function calls: not traced by default: CPython's call probes can end the process on a \
         non-UTF-8 name; `o` or --with calls turns them on",
        "! import times: not traced by default: CPython's import probes can end the process \
         on a non-UTF-8 module name; `o` or --with imports turns them on",
    ] {
        assert!(flat.contains(line), "`{line}` in:\n{detail}");
    }
    assert_eq!(program.send("run"), NON_UTF8_CHECKSUM);
    // The flow needs the call probes, which nobody asked for yet.
    tmux.press("f", "the flow refused", |s| {
        s.contains("cannot follow the calls: python calls are not traced unless asked for")
    });
    tmux.press("o", "the on-demand probes attached", |s| {
        s.contains(&format!("PID {pid}: now tracing imports and calls"))
            && !s.contains("not traced by default")
    });
    tmux.press("f", "the flow view", |s| {
        s.contains(&format!("python3.11 non_utf8.py (PID {pid}, python)"))
    });
}

/// The flow raises CPython's call probes only when asked for (`--with calls`); otherwise
/// it says why in one line and exits with 2, and the program is unharmed.
#[test]
fn the_flow_of_python_calls_needs_them_asked_for() {
    let mut program = non_utf8_program();
    let pid = program.pid().to_string();
    let (status, out, err) = support::run_ustat(&["--flow", "--text", "-p", &pid]);
    assert_eq!(status, 2, "{err}");
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("ustat: python calls are not traced unless asked for: CPython's code ")
            && err.contains("python/cpython#156118")
            && err.contains("pass --with calls"),
        "{err}"
    );
    assert_eq!(program.send("run"), NON_UTF8_CHECKSUM);
}

/// What the README warns about is real: asked for, CPython 3.11's call and import probes
/// end this program. (This is why they are on demand.)
#[test]
fn asking_for_python_calls_takes_the_documented_risk() {
    for feature in ["calls", "imports"] {
        let mut program = non_utf8_program();
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("ustat.csv");
        let pid = program.pid().to_string();
        let ustat = csv_ustat(
            &csv,
            &[
                OsStr::new("-p"),
                OsStr::new(&pid),
                OsStr::new("--with"),
                OsStr::new(feature),
            ],
        );
        assert_eq!(program.try_send("run"), None, "--with {feature}");
        let status = support::wait_with_deadline(&mut program.child, "the program to end");
        assert!(!status.success(), "--with {feature}: {status:?}");
        stop(ustat);
    }
}
