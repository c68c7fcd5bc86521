//! The CPU sampler end to end, on Debian's python3.11 and every pyenv CPython 3.6-3.13 this
//! machine has: a workload spending its CPU 3:1 in two functions (`heavy` does three times
//! `light`'s work in its own frame) is reported within 5 points of 75/25 self share in the
//! `--samples` CSV, and within 5 points of what py-spy (`record --format raw`) saw of the same
//! run; a recursion five deep is nested exactly so in the `--folded` stacks; coroutines
//! awaiting each other are named, outer to inner. A Python ustat cannot read (2.7, and a
//! binary whose name says another version than it is) is one stderr line and `(unreadable)`
//! samples, never a wrong name.

mod support;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
};

use support::{
    Driven,
    interpreters::{DEBIAN_PYTHON, fixture, pyenv_python_if_present, test_cache},
    read_csv,
    sampled::{folded_lines, function, sample},
    stop, wait_with_deadline,
};

/// Seconds of each phase of the workload.
const SPLIT_S: &str = "5";
const RECURSE_S: &str = "2";
const ASYNC_S: &str = "2";

/// The largest difference allowed, in percentage points.
const POINTS: f64 = 5.0;

fn workload(interpreter: &Path) -> Driven {
    let mut python = Driven::spawn(Command::new(interpreter).arg(fixture("python/sampled.py")));
    // Every function runs once before ustat attaches, so each phase does only its work.
    for warmup in ["split 0.05", "recurse 0.05", "async 0.05"] {
        assert_eq!(python.send(warmup), "ok", "warm-up {warmup}");
    }
    python
}

/// The line of `def NAME` (or `async def NAME`) in the fixture: a code object's first line.
fn def_line(name: &str) -> u32 {
    let text = std::fs::read_to_string(fixture("python/sampled.py")).unwrap();
    let found = text.lines().position(|l| {
        l.starts_with(&format!("def {name}(")) || l.starts_with(&format!("async def {name}("))
    });
    found.expect("the function is in the fixture") as u32 + 1
}

/// py-spy from `scripts/setup`'s cache, if there.
fn py_spy() -> Option<PathBuf> {
    let path = test_cache().join("py-spy/bin/py-spy");
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipped: the py-spy comparison: {} is missing (scripts/setup installs it)",
            path.display()
        );
        None
    }
}

/// Self samples per function name in py-spy's raw output (`frame;frame count`, frames as
/// `function (file:line)`, innermost last).
fn py_spy_self(raw: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for line in raw.lines() {
        let Some((stack, count)) = line.rsplit_once(' ') else {
            continue;
        };
        let count: u64 = count.parse().unwrap_or(0);
        let inner = stack.rsplit(';').next().unwrap_or("");
        let function = inner.split(" (").next().unwrap_or("").to_string();
        *out.entry(function).or_default() += count;
    }
    out
}

/// `heavy`'s share of heavy + light, in percent, and the samples it is from.
fn heavy_share(heavy: u64, light: u64) -> (f64, u64) {
    let both = heavy + light;
    (heavy as f64 * 100.0 / both.max(1) as f64, both)
}

/// The Python functions of a folded stack, without the C code between them (3.11 enters
/// every awaited coroutine through C; 3.12 inlines it).
fn python_functions(frames: &[String]) -> Vec<&str> {
    frames
        .iter()
        .filter(|f| !f.ends_with(" [native]"))
        .map(|f| function(f))
        .collect()
}

/// One workload at a time: on a machine with few CPUs, ten busy workloads at once keep each
/// other off the CPU, and py-spy (which samples wall time, not CPU time) then sees one stack
/// per preemption many times over, so its shares scatter.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs the three phases under ustat (and the split under py-spy) and checks all.
fn sampled_stacks_are_right(interpreter: &Path) {
    // A failed test poisons the lock; the next one runs all the same.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let what = interpreter.display().to_string();
    let mut python = workload(interpreter);
    let dir = tempfile::tempdir().unwrap();
    let ustat = sample(dir.path(), python.pid());

    let raw = dir.path().join("py-spy.txt");
    let spy = py_spy().map(|py_spy| {
        Command::new(py_spy)
            .args([
                "record", "--format", "raw",
                // Blocking (py-spy's default): it reads each sample with the process stopped.
                // Its nonblocking reads of a running interpreter scattered by 5+ points here.
                "-r", "400", "-d", SPLIT_S,
            ])
            .arg("-p")
            .arg(python.pid().to_string())
            .arg("-o")
            .arg(&raw)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start py-spy")
    });
    assert_eq!(python.send(&format!("split {SPLIT_S}")), "ok");
    assert_eq!(python.send(&format!("recurse {RECURSE_S}")), "ok");
    assert_eq!(python.send(&format!("async {ASYNC_S}")), "ok");
    stop(ustat);

    // The 3:1 split, from the samples CSV.
    let rows = read_csv(&dir.path().join("samples.csv"));
    let pid = python.pid().to_string();
    let mine: Vec<&HashMap<String, String>> = rows.iter().filter(|r| r["pid"] == pid).collect();
    assert!(!mine.is_empty(), "{what}: no samples");
    assert!(
        mine.iter().all(|r| r["function"] != "(unreadable)"),
        "{what}: unreadable samples: {mine:?}"
    );
    let self_of = |name: &str| -> u64 {
        mine.iter()
            .filter(|r| r["function"] == name)
            .map(|r| r["self_samples"].parse::<u64>().unwrap())
            .sum()
    };
    for name in ["heavy", "light"] {
        let row = mine
            .iter()
            .find(|r| r["function"] == name)
            .unwrap_or_else(|| panic!("{what}: {name} was never sampled"));
        assert!(row["file"].ends_with("sampled.py"), "{what}: {row:?}");
        assert_eq!(row["line"], def_line(name).to_string(), "{what}: {row:?}");
    }
    let (share, samples) = heavy_share(self_of("heavy"), self_of("light"));
    eprintln!("{what}: heavy {share:.1}% of {samples} samples of heavy and light");
    assert!(samples >= 100, "{what}: only {samples} samples");
    assert!(
        (share - 75.0).abs() <= POINTS,
        "{what}: heavy has {share:.1}% of the self samples, not 75 +- {POINTS}"
    );

    // py-spy, on the same run of the split.
    if let Some(mut spy) = spy {
        let status = wait_with_deadline(&mut spy, "py-spy to finish");
        assert!(status.success(), "{what}: py-spy {status:?}");
        let theirs = py_spy_self(&std::fs::read_to_string(&raw).unwrap());
        let heavy = theirs.get("heavy").copied().unwrap_or(0);
        let light = theirs.get("light").copied().unwrap_or(0);
        let (spy_share, spy_samples) = heavy_share(heavy, light);
        eprintln!("{what}: py-spy: heavy {spy_share:.1}% of {spy_samples}");
        assert!(
            spy_samples >= 100,
            "{what}: py-spy took {spy_samples} samples"
        );
        // Per function: heavy's share and light's (its complement) both within the points.
        assert!(
            (share - spy_share).abs() <= POINTS,
            "{what}: heavy {share:.1}% by ustat, {spy_share:.1}% by py-spy"
        );
    }

    let stacks = folded_lines(&dir.path().join("stacks.folded"));
    // The recursion: every sample in spin() is under exactly five recurse() frames, which
    // are under recursion(); no stack holds more.
    let mut in_spin = 0;
    for (frames, count) in &stacks {
        let names = python_functions(frames);
        assert!(
            names.iter().filter(|n| **n == "recurse").count() <= 5,
            "{what}: {frames:?}"
        );
        if names.last() == Some(&"spin") {
            let n = names.len();
            assert!(n >= 7, "{what}: {frames:?}");
            assert_eq!(
                names[n - 7..],
                [
                    "recursion",
                    "recurse",
                    "recurse",
                    "recurse",
                    "recurse",
                    "recurse",
                    "spin"
                ],
                "{what}"
            );
            in_spin += count;
        }
    }
    assert!(in_spin >= 20, "{what}: only {in_spin} samples in spin()");

    // The coroutines: leaf's samples are under middle, under outer.
    let mut in_leaf = 0;
    for (frames, count) in &stacks {
        let names = python_functions(frames);
        if names.last() == Some(&"leaf") {
            let n = names.len();
            assert_eq!(
                names[n - 3..],
                ["outer", "middle", "leaf"],
                "{what}: {frames:?}"
            );
            in_leaf += count;
        }
    }
    assert!(in_leaf >= 20, "{what}: only {in_leaf} samples in leaf()");
    assert_eq!(python.send("quit"), "ok");
}

#[test]
fn debian_python_3_11() {
    sampled_stacks_are_right(Path::new(DEBIAN_PYTHON));
}

macro_rules! pyenv_tests {
    ($($name:ident => $version:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(interpreter) = pyenv_python_if_present($version) {
                    sampled_stacks_are_right(&interpreter);
                }
            }
        )*
    };
}

pyenv_tests! {
    pyenv_3_6 => "3.6.15",
    pyenv_3_7 => "3.7.16",
    pyenv_3_8 => "3.8.18",
    pyenv_3_9 => "3.9.18",
    pyenv_3_10 => "3.10.13",
    pyenv_3_11 => "3.11.7",
    pyenv_3_12 => "3.12.1",
    pyenv_3_13 => "3.13.0",
}

/// A Python whose stacks ustat cannot read: one line on stderr saying why, its samples in
/// `(unreadable)` rows, and no function named.
fn unreadable(interpreter: &Path, script: &Path, reason: &str) {
    let mut python = Driven::spawn(Command::new(interpreter).arg(script));
    let dir = tempfile::tempdir().unwrap();
    let mut ustat = sample(dir.path(), python.pid());
    let line = ustat
        .stderr
        .wait_for("the unreadable line", |l| l.contains("cannot be read"));
    assert!(line.contains(reason), "{line}");
    assert_eq!(python.send("split 2"), "ok");
    stop(ustat);
    let rows = read_csv(&dir.path().join("samples.csv"));
    assert!(!rows.is_empty(), "its samples are counted");
    for row in &rows {
        assert_eq!(row["function"], "(unreadable)", "{row:?}");
    }
    let stacks = std::fs::read_to_string(dir.path().join("stacks.folded")).unwrap();
    assert!(
        stacks.lines().all(|l| l.contains(";(unreadable) ")),
        "{stacks}"
    );
}

#[test]
fn python_2_7_is_counted_and_said_unreadable() {
    let Some(interpreter) = pyenv_python_if_present("2.7.18") else {
        return;
    };
    // The fixture's split phase in 2.7's syntax.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("split27.py");
    std::fs::write(
        &script,
        "import sys, time\n\
         def heavy():\n    return sum(i * i for i in range(60000))\n\
         def light():\n    return sum(i * i for i in range(20000))\n\
         print('ready'); sys.stdout.flush()\n\
         for line in iter(sys.stdin.readline, ''):\n\
         \x20   end = time.time() + float(line.split()[1])\n\
         \x20   while time.time() < end:\n        heavy(); light()\n\
         \x20   print('ok'); sys.stdout.flush()\n",
    )
    .unwrap();
    unreadable(&interpreter, &script, "CPython 2.7 is not sampled");
}

#[test]
fn a_binary_claiming_another_version_fails_validation() {
    // Debian's 3.11 under the name python3.12: the 3.12 layout is tried, and Py_Version in
    // the running binary refutes it.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("python3.12");
    std::fs::copy(DEBIAN_PYTHON, &fake).unwrap();
    unreadable(
        &fake,
        &fixture("python/sampled.py"),
        "its Py_Version says 3.11, its binary's name 3.12",
    );
}
