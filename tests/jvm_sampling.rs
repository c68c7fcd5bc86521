//! The CPU sampler on HotSpot JVMs started with no flags at all, end to end: a workload
//! spending its CPU 3:1 in two methods too large to inline (`heavy` does three times
//! `light`'s rounds in its own frame) is reported within 5 points of 75/25 self share in the
//! `--samples` CSV, interpreted (`-Xint`), JIT-compiled after a warm-up, under G1, Parallel
//! and ZGC, on JDK 17 and JDK 25; the chain `a -> b -> c` is nested in that order in the
//! `--folded` stacks; a class that is loaded, sampled and unloaded, then another in its
//! place, never lends its name to the other's samples; and a JVM whose layout cannot be
//! read is one stderr line and `(unreadable)` samples, never a wrong name.

mod support;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

use support::{
    Driven,
    jvm::{java, jdk25_java, private_jdk},
    read_csv,
    sampled::{folded_lines, function, sample},
    stop,
};

/// The largest difference allowed, in percentage points.
const POINTS: f64 = 5.0;

/// One workload at a time: busy workloads side by side on few CPUs only slow each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The fixture `tests/fixtures/jvm/sampled`, compiled into a directory of its own: Sampled
/// beside `alpha/Alpha.class` and `beta/Beta.class`.
struct Workload {
    dir: tempfile::TempDir,
}

impl Workload {
    fn compile() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-sampled-")
            .tempdir()
            .unwrap();
        let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/jvm/sampled");
        for (source, into) in [("Sampled", ""), ("Alpha", "alpha"), ("Beta", "beta")] {
            let out = Command::new("javac")
                .arg("-d")
                .arg(dir.path().join(into))
                .arg(sources.join(format!("{source}.java")))
                .output()
                .expect("run javac (scripts/setup installs openjdk-17-jdk-headless)");
            assert!(
                out.status.success(),
                "javac {source}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Self { dir }
    }

    /// The JVM `java` running it with `flags` (only what the test is about: no tracing flag).
    fn start(&self, java: &Path, flags: &[&str]) -> Driven {
        Driven::spawn(
            Command::new(java)
                .args(flags)
                .arg("-cp")
                .arg(self.dir.path())
                .arg("Sampled"),
        )
    }
}

/// Self samples per function of process `pid` in a samples CSV.
fn self_samples(path: &Path, pid: u32) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for row in read_csv(path)
        .iter()
        .filter(|r| r["pid"] == pid.to_string())
    {
        *out.entry(row["function"].clone()).or_default() +=
            row["self_samples"].parse::<u64>().unwrap();
    }
    out
}

const HEAVY: &str = "Sampled.heavy(long, long)";
const LIGHT: &str = "Sampled.light(long, long)";

/// The 3:1 split and the a -> b -> c chain, sampled in a JVM from `java` with `flags` (a
/// collector or `-Xint`); `warm` runs both first, so the JIT has compiled them.
fn split_and_chain(what: &str, java: &Path, flags: &[&str], warm: bool) {
    // A failed test poisons the lock; the next one runs all the same.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let workload = Workload::compile();
    let mut jvm = workload.start(java, flags);
    if warm {
        assert_eq!(jvm.send("split 3"), "ok");
        assert_eq!(jvm.send("chain 2"), "ok");
    }
    let dir = tempfile::tempdir().unwrap();
    let ustat = sample(dir.path(), jvm.pid());
    assert_eq!(jvm.send("split 5"), "ok");
    assert_eq!(jvm.send("chain 3"), "ok");
    stop(ustat);

    let counts = self_samples(&dir.path().join("samples.csv"), jvm.pid());
    let (heavy, light) = (
        counts.get(HEAVY).copied().unwrap_or(0),
        counts.get(LIGHT).copied().unwrap_or(0),
    );
    let both = heavy + light;
    let share = heavy as f64 * 100.0 / both.max(1) as f64;
    eprintln!("{what}: heavy {share:.1}% of {both} samples of heavy and light");
    assert!(both >= 300, "{what}: only {both} samples: {counts:?}");
    assert!(
        (share - 75.0).abs() <= POINTS,
        "{what}: heavy has {share:.1}% of the self samples, not 75 +- {POINTS}: {counts:?}"
    );
    let rows = read_csv(&dir.path().join("samples.csv"));
    let heavy_row = rows.iter().find(|r| r["function"] == HEAVY).unwrap();
    assert_eq!(heavy_row["file"], "Sampled.java", "{what}: {heavy_row:?}");
    // HotSpot frames carry no line: empty, not 0.
    assert_eq!(heavy_row["line"], "", "{what}: {heavy_row:?}");

    // Every sample in c() whose stack was read whole is under b(), under a(), under
    // chain(), in that order. A stack the walk could not finish says so (`(outer frames not
    // sampled)`, never a guessed caller); those are a sliver of the samples.
    let (mut in_c, mut cut_short) = (0, 0);
    for (frames, count) in folded_lines(&dir.path().join("stacks.folded")) {
        let methods: Vec<&str> = frames.iter().map(|f| function(f)).collect();
        if methods.last() != Some(&"Sampled.c(long, long)") {
            continue;
        }
        if methods.contains(&"(outer frames not sampled)") {
            cut_short += count;
            continue;
        }
        let n = methods.len();
        assert!(n >= 5, "{what}: {frames:?}");
        assert_eq!(
            methods[n - 5..],
            [
                "Sampled.main(String[])",
                "Sampled.chain(double)",
                "Sampled.a(long, long)",
                "Sampled.b(long, long)",
                "Sampled.c(long, long)",
            ],
            "{what}"
        );
        in_c += count;
    }
    assert!(in_c >= 200, "{what}: only {in_c} samples in c()");
    assert!(
        cut_short * 50 <= in_c,
        "{what}: {cut_short} of c()'s samples cut short, {in_c} whole"
    );
    assert_eq!(jvm.send("quit"), "ok");
}

#[test]
fn jdk17_interpreted() {
    split_and_chain("JDK 17 -Xint", java(), &["-Xint"], false);
}

#[test]
fn jdk17_compiled_g1() {
    split_and_chain("JDK 17 (G1, compiled)", java(), &[], true);
}

#[test]
fn jdk17_compiled_parallel() {
    split_and_chain(
        "JDK 17 (Parallel, compiled)",
        java(),
        &["-XX:+UseParallelGC"],
        true,
    );
}

#[test]
fn jdk17_compiled_zgc() {
    split_and_chain("JDK 17 (ZGC, compiled)", java(), &["-XX:+UseZGC"], true);
}

#[test]
fn jdk25_compiled_g1() {
    if let Some(java) = jdk25_java() {
        split_and_chain("JDK 25 (G1, compiled)", &java, &[], true);
    }
}

#[test]
fn jdk25_compiled_zgc() {
    if let Some(java) = jdk25_java() {
        split_and_chain("JDK 25 (ZGC, compiled)", &java, &["-XX:+UseZGC"], true);
    }
}

#[test]
fn jdk25_interpreted() {
    if let Some(java) = jdk25_java() {
        split_and_chain("JDK 25 -Xint", &java, &["-Xint"], false);
    }
}

/// Alpha is loaded, sampled and unloaded; then Beta, in a new loader, in memory Alpha's
/// may have left. Alpha's methods are named only in intervals up to the switch, Beta's only
/// from it: a name read for one never labels the other's samples.
#[test]
fn an_unloaded_class_never_lends_its_name() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let workload = Workload::compile();
    let mut jvm = workload.start(java(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let ustat = sample(dir.path(), jvm.pid());
    assert_eq!(jvm.send("unload 2"), "ok");
    stop(ustat);
    let rows = read_csv(&dir.path().join("samples.csv"));
    let when = |class: &str| -> Vec<&str> {
        rows.iter()
            .filter(|r| r["function"].starts_with(class))
            .map(|r| r["timestamp"].as_str())
            .collect()
    };
    let (alpha, beta) = (when("Alpha."), when("Beta."));
    let samples_of = |name: &str| -> u64 {
        rows.iter()
            .filter(|r| r["function"] == name)
            .map(|r| r["self_samples"].parse::<u64>().unwrap())
            .sum()
    };
    assert!(
        samples_of("Alpha.work(long, long)") >= 200,
        "Alpha's work was not named: {rows:?}"
    );
    assert!(
        samples_of("Beta.work(long, long)") >= 200,
        "Beta's work was not named: {rows:?}"
    );
    let last_alpha = alpha.iter().max().unwrap();
    let first_beta = beta.iter().min().unwrap();
    assert!(
        last_alpha <= first_beta,
        "Alpha named at {last_alpha}, after Beta was first named at {first_beta}"
    );
    // The JVM's own count agrees that both classes went.
    let unloaded: u64 = read_csv(&dir.path().join("ustat.csv"))
        .iter()
        .filter(|r| r["pid"] == jvm.pid().to_string())
        .map(|r| r["class_unloaded"].parse::<u64>().unwrap())
        .sum();
    assert!(unloaded >= 2, "{unloaded} classes unloaded");
    assert_eq!(jvm.send("quit"), "ok");
}

/// A copy of JDK 17 whose libjvm.so no longer exports `gHotSpotVMStructs` (its name is
/// changed in the copy's symbol table; the JVM itself never looks it up).
fn jdk_without_vmstructs(dir: &Path) -> PathBuf {
    let java = private_jdk(dir);
    let libjvm = dir.join("jdk/lib/server/libjvm.so");
    let mut bytes = std::fs::read(&libjvm).unwrap();
    let name = b"gHotSpotVMStructs\0";
    let at: Vec<usize> = bytes
        .windows(name.len())
        .enumerate()
        .filter(|(_, w)| w == name)
        .map(|(i, _)| i)
        .collect();
    assert!(!at.is_empty(), "libjvm.so names gHotSpotVMStructs");
    // In every symbol table that names it (.dynsym's strings, and .symtab's if kept).
    for i in at {
        bytes[i + name.len() - 2] = b'Z';
    }
    std::fs::write(&libjvm, bytes).unwrap();
    java
}

#[test]
fn a_jvm_whose_layout_cannot_be_read_is_one_line_and_unreadable_samples() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let jdk = tempfile::tempdir().unwrap();
    let java = jdk_without_vmstructs(jdk.path());
    let workload = Workload::compile();
    let mut jvm = workload.start(&java, &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut ustat = sample(dir.path(), jvm.pid());
    let line = ustat
        .stderr
        .wait_for("the unreadable line", |l| l.contains("cannot be read"));
    assert!(
        line.contains("its Java stacks cannot be read")
            && line.contains("exports no gHotSpotVMStructs"),
        "{line}"
    );
    assert_eq!(jvm.send("split 2"), "ok");
    stop(ustat);
    let rows = read_csv(&dir.path().join("samples.csv"));
    assert!(!rows.is_empty(), "its samples are counted");
    for row in &rows {
        assert_eq!(row["function"], "(unreadable)", "{row:?}");
    }
    let stacks = std::fs::read_to_string(dir.path().join("stacks.folded")).unwrap();
    assert!(!stacks.contains("Sampled."), "{stacks}");
    assert_eq!(jvm.send("quit"), "ok");
}
