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

/// `gc_storm.c` built as `python3.11` in its own directory: CPython's GC probes in a program
/// that starts in a millisecond (see the file).
pub struct GcStorm {
    pub dir: tempfile::TempDir,
    pub program: PathBuf,
}

impl GcStorm {
    pub fn build() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-gc-storm-")
            .tempdir()
            .expect("tempdir");
        let program = dir.path().join("python3.11");
        gcc(&[
            "-O2".as_ref(),
            "-o".as_ref(),
            program.as_os_str(),
            source("gc_storm.c").as_os_str(),
        ]);
        Self { dir, program }
    }

    pub fn start(&self) -> Driven {
        Driven::spawn(&mut Command::new(&self.program))
    }
}

/// `gated_gc.c` built as `python3.11` in its own directory: CPython's GC probes behind
/// USDT semaphores (see the file).
pub struct GatedGc {
    pub dir: tempfile::TempDir,
    pub program: PathBuf,
}

impl GatedGc {
    pub fn build() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-gated-gc-")
            .tempdir()
            .expect("tempdir");
        let program = dir.path().join("python3.11");
        gcc(&[
            "-O2".as_ref(),
            "-o".as_ref(),
            program.as_os_str(),
            source("gated_gc.c").as_os_str(),
        ]);
        Self { dir, program }
    }

    pub fn start(&self) -> Driven {
        Driven::spawn(&mut Command::new(&self.program))
    }
}

/// `tests/fixtures/trace/calls.c`: functions with known arguments, called on command, for
/// the `ustat trace` spec tests.
pub struct TraceCalls {
    pub dir: tempfile::TempDir,
    pub program: PathBuf,
}

impl TraceCalls {
    pub fn build() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-trace-calls-")
            .tempdir()
            .expect("tempdir");
        let program = dir.path().join("trace_calls");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/trace/calls.c");
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
