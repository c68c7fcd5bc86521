//! Bad input gets one clear line on stderr and its documented exit code, never a panic.

mod support;

use std::{ffi::OsStr, process::Command};

use support::{fixtures::UsdtFixture, run_ustat, ustat_binary};
use ustat::exit;

/// Runs ustat and checks it failed with `code` and exactly one line that contains `message`.
fn fails_with<S: AsRef<OsStr>>(args: &[S], code: u8, message: &str) {
    let (status, out, err) = run_ustat(args);
    let shown: Vec<&OsStr> = args.iter().map(|a| a.as_ref()).collect();
    assert_eq!(status, i32::from(code), "{shown:?}: {err}");
    assert_eq!(out, "", "{shown:?}");
    assert_eq!(err.lines().count(), 1, "{shown:?}: one line, got:\n{err}");
    assert!(err.starts_with("ustat: "), "{shown:?}: {err}");
    assert!(
        err.contains(message),
        "{shown:?}: expected `{message}` in: {err}"
    );
}

#[test]
fn a_pid_that_does_not_exist() {
    fails_with(
        &["list", "999999999"],
        exit::TARGET,
        "no process with PID 999999999",
    );
    fails_with(
        &["trace", "999999999"],
        exit::TARGET,
        "no process with PID 999999999",
    );
}

#[test]
fn a_path_that_does_not_exist() {
    fails_with(
        &["list", "/no/such/file"],
        exit::TARGET,
        "cannot read /no/such/file: No such file",
    );
}

#[test]
fn a_file_that_is_not_elf() {
    fails_with(
        &["list", "/etc/passwd"],
        exit::TARGET,
        "/etc/passwd: not an ELF file",
    );
    fails_with(
        &["trace", "/etc/passwd"],
        exit::TARGET,
        "/etc/passwd: not an ELF file",
    );
}

#[test]
fn a_directory() {
    fails_with(
        &["list", "/usr"],
        exit::TARGET,
        "/usr: it is not a regular file but a directory",
    );
}

#[test]
fn a_binary_of_another_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("elf32");
    let mut header = vec![0u8; 64];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = 1; // ELFCLASS32
    header[5] = 1;
    std::fs::write(&path, header).unwrap();
    fails_with(
        &[OsStr::new("list"), path.as_os_str()],
        exit::TARGET,
        "a 32-bit ELF file; ustat probes x86-64 executables and shared libraries",
    );
}

#[test]
fn a_binary_without_probes() {
    fails_with(
        &["list", "/bin/true"],
        exit::TARGET,
        "/bin/true has no USDT probes (no .note.stapsdt section)",
    );
    fails_with(
        &["trace", "/bin/true"],
        exit::TARGET,
        "/bin/true has no USDT probes",
    );
}

#[test]
fn a_process_without_probes() {
    let mut child = Command::new("sleep").arg("600").spawn().unwrap();
    let pid = child.id().to_string();
    fails_with(
        &["list", &pid],
        exit::TARGET,
        &format!("process {pid} maps no binary with USDT probes"),
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn malformed_notes() {
    use object::{Object as _, ObjectSection as _};
    let fixture = UsdtFixture::build();
    let mut bytes = std::fs::read(&fixture.program).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let (offset, _) = file
        .section_by_name(".note.stapsdt")
        .unwrap()
        .file_range()
        .unwrap();
    drop(file);
    // The first note's descriptor size (after namesz) shrinks below its three addresses.
    let descsz = offset as usize + 4;
    bytes[descsz..descsz + 4].copy_from_slice(&20u32.to_le_bytes());
    let broken = fixture.dir.path().join("broken");
    std::fs::write(&broken, &bytes).unwrap();
    fails_with(
        &[OsStr::new("list"), broken.as_os_str()],
        exit::TARGET,
        "USDT note 0 is 20 bytes, too short for its three addresses",
    );
}

#[test]
fn a_probe_pattern_that_matches_nothing() {
    fails_with(
        &["trace", "/usr/bin/python3.11", "no_such_probe"],
        exit::USAGE,
        "no probe matches `no_such_probe`",
    );
}

/// A process that lacks the probe asked for is a bad target (4), as everywhere a process has
/// no such probes.
#[test]
fn a_process_without_the_probe_asked_for() {
    let mut child = Command::new("/usr/bin/python3.11")
        .args(["-c", "import time; time.sleep(600)"])
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // Its libpython is mapped once the interpreter runs.
    support::poll("python to map its binary", || {
        std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .ok()?
            .contains("python3.11")
            .then_some(())
    });
    fails_with(
        &["trace", &pid, "no_such_probe"],
        exit::TARGET,
        &format!("process {pid} has no such probes: no probe matches `no_such_probe`"),
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn pid_scope_on_a_pid_target() {
    fails_with(
        &["trace", "1", "-p", "1"],
        exit::USAGE,
        "-p goes with a path target",
    );
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &["list"][..],
        &["list", "/bin/true", "--format", "xml"],
        &["trace", "/bin/true", "-p", "0"],
        &["frobnicate"],
    ] {
        let (status, out, err) = run_ustat(args);
        assert_eq!(status, i32::from(exit::USAGE), "{args:?}: {err}");
        assert_eq!(out, "");
        assert!(err.starts_with("ustat: "), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got:\n{err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn an_interval_with_two_units() {
    fails_with(
        &["--csv", "-", "-i", "1ss"],
        exit::USAGE,
        "`1ss` is not a number of seconds",
    );
}

#[test]
fn long_numbers_in_errors_are_cut() {
    let pid = "1234567890".repeat(4);
    for args in [&["list", &pid][..], &["--csv", "-", "-p", &pid]] {
        let (status, _, err) = run_ustat(args);
        assert_eq!(status, i32::from(exit::USAGE), "{err}");
        assert!(err.contains("12345678… (40 digits)"), "{err}");
        assert!(!err.contains(&pid), "{err}");
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let (status, out, _) = run_ustat(&["--help"]);
    assert_eq!(status, 0);
    assert!(out.contains(exit::TABLE), "{out}");
    let (status, out, _) = run_ustat(&["trace", "--help"]);
    assert_eq!(status, 0);
    assert!(out.contains(exit::TABLE), "{out}");
}

#[test]
fn tracing_without_root() {
    // setpriv drops to nobody; the binary and python3.11 are readable by everyone.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(ustat_binary())
        .args(["trace", "/usr/bin/python3.11"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(i32::from(exit::PRIVILEGE)), "{err}");
    assert!(
        err.trim_end().starts_with(
            "ustat: not permitted: missing CAP_BPF (to load eBPF programs), CAP_PERFMON (to attach uprobes)"
        ),
        "{err}"
    );
}

#[test]
fn an_existing_csv_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("precious.csv");
    std::fs::write(&path, "keep me").unwrap();
    let methods = dir.path().join("methods.csv");
    std::fs::write(&methods, "keep me too").unwrap();
    fails_with(
        &[
            OsStr::new("--csv"),
            path.as_os_str(),
            OsStr::new("-n"),
            OsStr::new("1"),
        ],
        exit::USAGE,
        "precious.csv exists; ustat never overwrites a file",
    );
    fails_with(
        &[
            OsStr::new("--csv"),
            OsStr::new("-"),
            OsStr::new("--methods"),
            methods.as_os_str(),
        ],
        exit::USAGE,
        "methods.csv exists; ustat never overwrites a file",
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    assert_eq!(std::fs::read_to_string(&methods).unwrap(), "keep me too");
}

/// Output names that cannot work are usage errors, caught before anything is traced, and
/// leave no file behind.
#[test]
fn csv_names_that_cannot_work_are_usage_errors_that_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let same = dir.path().join(".").join("out.csv");
    let missing = dir.path().join("no-such-dir").join("m.csv");
    let arg = |p: &std::path::Path| p.as_os_str().to_owned();
    let cases: [(Vec<std::ffi::OsString>, &str); 5] = [
        (
            vec!["--csv".into(), arg(&out), "--methods".into(), arg(&same)],
            "--csv and --methods name the same file",
        ),
        (
            vec!["--csv".into(), "-".into(), "--methods".into(), "-".into()],
            "--csv and --methods name the same file",
        ),
        (
            vec!["--csv".into(), arg(dir.path())],
            "is a directory; give a file name in it",
        ),
        (vec!["--csv".into(), arg(&missing)], "there is no directory"),
        // The first file is made, the second cannot be: the first goes again.
        (
            vec!["--csv".into(), arg(&out), "--methods".into(), arg(&missing)],
            "there is no directory",
        ),
    ];
    for (args, message) in cases {
        fails_with(&args, exit::USAGE, message);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

#[test]
fn tracing_a_process_that_runs_no_runtime() {
    let mut child = Command::new("sleep").arg("600").spawn().unwrap();
    let pid = child.id().to_string();
    fails_with(
        &["--csv", "-", "-p", &pid],
        exit::TARGET,
        &format!("process {pid} runs no runtime ustat traces: it maps none of libjvm.so"),
    );
    fails_with(
        &["--csv", "-", "-p", "999999999"],
        exit::TARGET,
        "no process with PID 999999999",
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_dashboard_needs_a_terminal() {
    fails_with(
        &["-n", "1"],
        exit::USAGE,
        "the dashboard needs a terminal; use --csv",
    );
}

#[test]
fn an_unknown_attach_mode() {
    let out = Command::new(ustat_binary())
        .env("USTAT_ATTACH", "fast")
        .args(["trace", "/usr/bin/python3.11"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE)), "{err}");
    assert_eq!(
        err.trim_end(),
        "ustat: USTAT_ATTACH must be auto, uprobe-multi or perf-event, not `fast`"
    );
}
