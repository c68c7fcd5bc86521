//! The flow end to end: a JVM (extended probes on) and CPython 3.11 (under a profiler) run a
//! known call tree — a() calls b() three times and c() once; d() recurses five deep — and the
//! text flow, the call counts, the per-method times and the folded stacks must be exact.

mod support;

use std::{collections::BTreeMap, ffi::OsStr, path::Path};

use support::{
    Driven, Ustat, csv_ustat_with_methods,
    interpreters::{DEBIAN_PYTHON, fixture, python},
    jvm::{Jvm, java},
    read_csv, stop,
};

/// A flow line without its timestamp and duration: (tid, depth, `->`/`<-`, method).
#[derive(Debug, PartialEq, Eq)]
struct Step {
    tid: u32,
    depth: usize,
    arrow: String,
    method: String,
}

fn parse_step(line: &str) -> Step {
    // `TIME_NS PID TID <indent>-> Method` or `... <- Method 1.2ms`
    let mut fields = line.splitn(4, ' ');
    let _ts = fields.next().unwrap();
    let _pid = fields.next().unwrap();
    let tid = fields.next().unwrap().parse().unwrap();
    let rest = fields.next().unwrap();
    let trimmed = rest.trim_start_matches(' ');
    let depth = (rest.len() - trimmed.len()) / 2;
    // A name may hold spaces (`Workload.run(String, int)`); a return ends with its time.
    let (arrow, rest) = trimmed.split_once(' ').unwrap();
    let arrow = arrow.to_string();
    let method = match arrow.as_str() {
        "<-" => {
            rest.trim_end_matches(" (unwound)")
                .rsplit_once(' ')
                .unwrap()
                .0
        }
        _ => rest,
    }
    .to_string();
    Step {
        tid,
        depth,
        arrow,
        method,
    }
}

fn step(tid: u32, depth: usize, arrow: &str, method: &str) -> Step {
    Step {
        tid,
        depth,
        arrow: arrow.into(),
        method: method.into(),
    }
}

/// The steps of the call tree, starting at `depth` (`name` maps a to its label).
fn tree_steps(tid: u32, depth: usize, name: impl Fn(&str) -> String) -> Vec<Step> {
    let mut steps = vec![step(tid, depth, "->", &name("a"))];
    for _ in 0..3 {
        steps.push(step(tid, depth + 1, "->", &name("b")));
        steps.push(step(tid, depth + 1, "<-", &name("b")));
    }
    steps.push(step(tid, depth + 1, "->", &name("c")));
    steps.push(step(tid, depth + 1, "<-", &name("c")));
    steps.push(step(tid, depth, "<-", &name("a")));
    for level in 0..5 {
        steps.push(step(tid, depth + level, "->", &name("d")));
    }
    for level in (0..5).rev() {
        steps.push(step(tid, depth + level, "<-", &name("d")));
    }
    steps
}

/// `ustat --flow --text -p PID ARGS...`, once attached.
fn flow_ustat(pid: u32, args: &[&OsStr]) -> Ustat {
    let pid = pid.to_string();
    let mut all: Vec<&OsStr> = vec![
        "--flow".as_ref(),
        "--text".as_ref(),
        "-p".as_ref(),
        OsStr::new(&pid),
    ];
    all.extend_from_slice(args);
    let mut ustat = Ustat::spawn(&all);
    ustat.stderr.wait_for("the flow to start", |l| {
        l.starts_with("ustat: following the method calls")
    });
    ustat
}

/// Per method (by name before any space): calls, returns, total and self time in ns.
fn method_times(path: &Path, pid: u32) -> BTreeMap<String, [u64; 4]> {
    let ns = |text: &str| -> u64 {
        text.replace('.', "")
            .parse()
            .unwrap_or_else(|_| panic!("{text}"))
    };
    let mut times: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for row in read_csv(path)
        .iter()
        .filter(|r| r["pid"] == pid.to_string())
    {
        let name = row["method"].split(' ').next().unwrap().to_string();
        let entry = times.entry(name).or_default();
        entry[0] += row["calls"].parse::<u64>().unwrap();
        if !row["returns"].is_empty() {
            entry[1] += row["returns"].parse::<u64>().unwrap();
            entry[2] += ns(&row["total_ms"]);
            entry[3] += ns(&row["self_ms"]);
        }
    }
    times
}

/// Calls, and the identities of self and total time: a's self plus its callees' is its total
/// (b and c call nothing), and d's self times add up to the outermost d's total.
fn times_are_consistent(times: &BTreeMap<String, [u64; 4]>, name: impl Fn(&str) -> String) {
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|m| {
        *times
            .get(&name(m))
            .unwrap_or_else(|| panic!("no {} in {times:?}", name(m)))
    });
    assert_eq!([a[0], b[0], c[0], d[0]], [1, 3, 1, 5], "calls: {times:?}");
    assert_eq!([a[1], b[1], c[1], d[1]], [1, 3, 1, 5], "returns: {times:?}");
    assert_eq!(b[2], b[3], "b calls nothing: its self time is its total");
    assert_eq!(
        a[3] + b[3] + c[3],
        a[2],
        "a's self time and its callees' add up to a's total"
    );
    assert!(d[3] > 0, "the recursive method's self time is positive");
    assert_eq!(
        d[3], d[2],
        "d's self times add up to the outermost d's total (recursion counted once)"
    );
}

#[test]
fn jvm_flow_counts_times_and_folded_stacks_are_exact() {
    let mut jvm = Jvm::start(java(), &["-XX:+ExtendedDTraceProbes"]);
    jvm.send("tree");
    jvm.send("throw");
    let pid = jvm.pid();
    let folded = jvm.dir.path().join("tree.folded");
    let mut flow = flow_ustat(
        pid,
        &[
            OsStr::new("--class"),
            OsStr::new("Workload"),
            OsStr::new("--folded"),
            folded.as_os_str(),
        ],
    );
    jvm.send("tree");
    jvm.send("throw");
    jvm.send("tree");

    let java = |m: &str| support::jvm::workload_method(m);
    let first = parse_step(&flow.stdout.wait_for("the first call", |l| {
        l.contains("-> Workload.run(String, int)")
    }));
    let tid = first.tid;
    assert_eq!(first, step(tid, 0, "->", "Workload.run(String, int)"));
    let mut expected = tree_steps(tid, 1, java);
    expected.push(step(tid, 0, "<-", "Workload.run(String, int)"));
    // An exception: f throws and e catches; the return probes fire as it unwinds.
    expected.push(step(tid, 0, "->", "Workload.run(String, int)"));
    expected.extend([
        step(tid, 1, "->", "Workload.e()"),
        step(tid, 2, "->", "Workload.f()"),
        step(tid, 2, "<-", "Workload.f()"),
        step(tid, 1, "<-", "Workload.e()"),
        step(tid, 0, "<-", "Workload.run(String, int)"),
    ]);
    // After the exception the stack is still in step.
    expected.push(step(tid, 0, "->", "Workload.run(String, int)"));
    expected.extend(tree_steps(tid, 1, java));
    expected.push(step(tid, 0, "<-", "Workload.run(String, int)"));
    let steps: Vec<Step> = flow
        .stdout
        .take(expected.len(), "the flow")
        .iter()
        .map(|l| parse_step(l))
        .collect();
    assert_eq!(steps, expected);

    flow.signal(libc::SIGINT);
    assert!(flow.wait().success());
    let lines = std::fs::read_to_string(&folded).unwrap();
    for expected in [
        "Workload.run(String,int);Workload.a() 2",
        "Workload.run(String,int);Workload.a();Workload.b() 6",
        "Workload.run(String,int);Workload.a();Workload.c() 2",
        "Workload.run(String,int);Workload.d(int);Workload.d(int);Workload.d(int);Workload.d(int);Workload.d(int) 2",
        "Workload.run(String,int);Workload.e();Workload.f() 1",
    ] {
        assert!(
            lines.lines().any(|l| l == expected),
            "`{expected}` in:\n{lines}"
        );
    }
}

#[test]
fn jvm_method_times_add_up() {
    let mut jvm = Jvm::start(java(), &["-XX:+ExtendedDTraceProbes"]);
    jvm.send("tree");
    let csv = jvm.dir.path().join("ustat.csv");
    let methods = jvm.dir.path().join("methods.csv");
    let ustat = csv_ustat_with_methods(&csv, jvm.pid(), &methods);
    jvm.send("tree");
    stop(ustat);
    times_are_consistent(&method_times(&methods, jvm.pid()), |m| {
        support::jvm::workload_method(m)
    });
}

fn python_workload() -> (Driven, String) {
    let python = python(Path::new(DEBIAN_PYTHON));
    (python, fixture("python/workload.py").display().to_string())
}

#[test]
fn python_flow_under_a_profiler_is_exact() {
    let (mut python, file) = python_workload();
    let mut flow = flow_ustat(
        python.pid(),
        &[
            OsStr::new("--class"),
            OsStr::new(&file),
            OsStr::new("--with"),
            OsStr::new("calls"),
        ],
    );
    assert_eq!(python.send("tree"), "ok");
    // The profiler is switched on inside run(), so the tree starts at depth 0.
    let first = parse_step(
        &flow
            .stdout
            .wait_for("the first call", |l| l.contains("-> a")),
    );
    let expected = tree_steps(first.tid, 0, |m| m.to_string());
    let mut steps = vec![first];
    steps.extend(
        flow.stdout
            .take(expected.len() - 1, "the flow")
            .iter()
            .map(|l| parse_step(l)),
    );
    // A Python function's label is `name (file:line)`: the name is what the tree names.
    for step in &mut steps {
        step.method = step
            .method
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string();
    }
    assert_eq!(steps, expected);
    flow.signal(libc::SIGINT);
    assert!(flow.wait().success());
}

#[test]
fn python_method_times_add_up() {
    let (mut python, _) = python_workload();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let methods = dir.path().join("methods.csv");
    let ustat = csv_ustat_with_methods(&csv, python.pid(), &methods);
    assert_eq!(python.send("tree"), "ok");
    stop(ustat);
    times_are_consistent(&method_times(&methods, python.pid()), |m| m.to_string());
}
