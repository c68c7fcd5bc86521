//! The C fixture programs of `tests/fixtures/usdt`, built by each test into its own
//! directory, so every test has its own binaries (own inodes, own probes).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::Driven;

fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/usdt")
        .join(name)
}

fn gcc(args: &[&std::ffi::OsStr]) {
    let out = Command::new("gcc")
        .args(args)
        .output()
        .expect("run gcc (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "gcc {args:?} failed (is systemtap-sdt-dev installed? scripts/setup installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The USDT fixture: an executable with every argument form, and a library for dlopen.
pub struct UsdtFixture {
    pub dir: tempfile::TempDir,
    pub program: PathBuf,
    pub library: PathBuf,
}

impl UsdtFixture {
    pub fn build() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-usdt-")
            .tempdir()
            .expect("tempdir");
        let program = dir.path().join("usdt_fixture");
        let library = dir.path().join("libusdt_fixture.so");
        gcc(&[
            "-O2".as_ref(),
            "-g".as_ref(),
            "-o".as_ref(),
            program.as_os_str(),
            source("fixture.c").as_os_str(),
            source("gated.c").as_os_str(),
            "-ldl".as_ref(),
        ]);
        gcc(&[
            "-O2".as_ref(),
            "-shared".as_ref(),
            "-fPIC".as_ref(),
            "-o".as_ref(),
            library.as_os_str(),
            source("lib.c").as_os_str(),
        ]);
        Self {
            dir,
            program,
            library,
        }
    }

    pub fn start(&self) -> Driven {
        Driven::spawn(&mut Command::new(&self.program))
    }
}

/// A C fixture built with `gcc -O2` into its own directory, started as a `Driven` program.
pub struct CProgram {
    pub dir: tempfile::TempDir,
    pub program: PathBuf,
}

impl CProgram {
    /// `gc_storm.c` built as `python3.11`: CPython's GC probes in a program that starts in a
    /// millisecond (see the file).
    pub fn gc_storm() -> Self {
        Self::build("ustat-gc-storm-", "python3.11", &source("gc_storm.c"))
    }

    /// `gated_gc.c` built as `python3.11`: CPython's GC probes behind USDT semaphores (see
    /// the file).
    pub fn gated_gc() -> Self {
        Self::build("ustat-gated-gc-", "python3.11", &source("gated_gc.c"))
    }

    /// `tests/fixtures/trace/calls.c`: functions with known arguments, called on command, for
    /// the `ustat trace` spec tests.
    pub fn trace_calls() -> Self {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/trace/calls.c");
        Self::build("ustat-trace-calls-", "trace_calls", &source)
    }

    fn build(prefix: &str, name: &str, source: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir");
        let program = dir.path().join(name);
        gcc(&[
            "-O2".as_ref(),
            "-o".as_ref(),
            program.as_os_str(),
            source.as_os_str(),
        ]);
        Self { dir, program }
    }

    pub fn start(&self) -> Driven {
        Driven::spawn(&mut Command::new(&self.program))
    }
}
