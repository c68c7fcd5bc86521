//! ustat with exactly the capabilities the README names, and without each of them: root
//! limited to those capabilities, and a user who is not root but holds them, count exactly;
//! any one missing is exit code 3 with that capability named, whatever the uid.
//!
//! `setpriv --bounding-set` limits what root's ustat gets at exec; for a non-root user the
//! capabilities are passed as ambient ones.

mod support;

use std::{
    ffi::OsString,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use support::{
    Driven, Ustat,
    interpreters::{DEBIAN_PYTHON, fixture},
};
use ustat::exit;

/// What the README says ustat needs, as setpriv spells them.
const NEEDED: &[&str] = &[
    "bpf",
    "perfmon",
    "sys_ptrace",
    "dac_read_search",
    "checkpoint_restore",
];

const GCS: u64 = 5;
const NOBODY: &str = "65534";

/// `+bpf,+perfmon,...` for setpriv.
fn caps(list: &[&str]) -> String {
    list.iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// setpriv arguments that run root with only `list` (as its bounding, so permitted and
/// effective, set).
fn root_with(list: &[&str]) -> Vec<String> {
    let mut bounding = "-all".to_string();
    if !list.is_empty() {
        bounding = format!("-all,{}", caps(list));
    }
    vec![format!("--bounding-set={bounding}"), "--".into()]
}

/// setpriv arguments that run user nobody with `list` as ambient capabilities.
fn nobody_with(list: &[&str]) -> Vec<String> {
    let mut args = vec![
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".into(),
    ];
    if !list.is_empty() {
        let set = caps(list);
        args.push(format!("--inh-caps={set}"));
        args.push(format!("--ambient-caps={set}"));
    }
    args.push("--".into());
    args
}

/// ustat under setpriv, returned once it has attached.
fn ustat_under(setpriv: &[String], pid: u32) -> Ustat {
    let pid = pid.to_string();
    let mut args: Vec<OsString> = setpriv.iter().map(OsString::from).collect();
    args.push(support::ustat_binary().into());
    for arg in ["--csv", "-", "-i", "0.5", "-p", &pid] {
        args.push(arg.into());
    }
    let mut ustat = Ustat::spawn_program("setpriv", &args);
    ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
    ustat
}

/// The CSV ustat wrote to stdout, from its exit: the GCs of `pid`.
fn gcs_in(mut ustat: Ustat, pid: u32) -> u64 {
    let header = ustat.stdout.next("the CSV header").expect("a CSV header");
    ustat.signal(libc::SIGINT);
    let rows = ustat.stdout.rest();
    assert!(ustat.wait().success(), "{:?}", ustat.stderr.rest());
    let text = std::iter::once(header)
        .chain(rows)
        .collect::<Vec<_>>()
        .join("\n");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let column = headers.iter().position(|h| h == "gc_count").unwrap();
    let pid_column = headers.iter().position(|h| h == "pid").unwrap();
    reader
        .records()
        .map(Result::unwrap)
        .filter(|r| r[pid_column] == pid.to_string())
        .map(|r| r[column].parse::<u64>().unwrap())
        .sum()
}

/// The Python workload run by `interpreter`, as `setpriv` makes it (root when empty).
fn workload(interpreter: &Path, setpriv: &[String], script: &Path) -> Driven {
    let mut command = Command::new("setpriv");
    command.args(setpriv).arg(interpreter).arg(script);
    if setpriv.is_empty() {
        command = Command::new(interpreter);
        command.arg(script);
    }
    let mut python = Driven::spawn(&mut command);
    assert_eq!(python.send("gc 1"), "ok", "warm-up");
    python
}

fn counts_exactly(ustat_setpriv: &[String], python: &mut Driven) {
    let pid = python.pid();
    let ustat = ustat_under(ustat_setpriv, pid);
    assert_eq!(python.send(&format!("gc {GCS}")), "ok");
    assert_eq!(gcs_in(ustat, pid), GCS);
}

/// A private copy of Debian's python3.11 and the workload, in a directory only nobody may
/// enter (so only CAP_DAC_READ_SEARCH lets anyone else open them).
struct PrivateCopy {
    _dir: tempfile::TempDir,
    interpreter: PathBuf,
    script: PathBuf,
}

impl PrivateCopy {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-private-")
            .tempdir()
            .unwrap();
        let private = dir.path().join("home");
        std::fs::create_dir(&private).unwrap();
        let interpreter = private.join("python3.11");
        std::fs::copy(DEBIAN_PYTHON, &interpreter).unwrap();
        let script = private.join("workload.py");
        std::fs::copy(fixture("python/workload.py"), &script).unwrap();
        let nobody: u32 = NOBODY.parse().unwrap();
        for path in [&interpreter, &script, &private] {
            std::os::unix::fs::chown(path, Some(nobody), Some(nobody)).unwrap();
        }
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        // The temporary directory itself lets nobody in.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            _dir: dir,
            interpreter,
            script,
        }
    }
}

#[test]
fn root_limited_to_the_named_capabilities_counts_a_root_process_exactly() {
    let mut python = workload(
        Path::new(DEBIAN_PYTHON),
        &[],
        &fixture("python/workload.py"),
    );
    counts_exactly(&root_with(NEEDED), &mut python);
}

#[test]
fn root_limited_to_the_named_capabilities_counts_another_users_private_binary_exactly() {
    let copy = PrivateCopy::new();
    let mut python = workload(&copy.interpreter, &nobody_with(&[]), &copy.script);
    counts_exactly(&root_with(NEEDED), &mut python);
}

#[test]
fn a_replaced_binary_is_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let interpreter = dir.path().join("python3.11");
    std::fs::copy(DEBIAN_PYTHON, &interpreter).unwrap();
    let mut python = workload(&interpreter, &[], &fixture("python/workload.py"));
    // An upgrade replaced it: only /proc/PID/map_files still reaches the mapped file.
    std::fs::remove_file(&interpreter).unwrap();
    counts_exactly(&root_with(NEEDED), &mut python);
}

#[test]
fn a_user_with_the_named_capabilities_counts_exactly() {
    let mut python = workload(
        Path::new(DEBIAN_PYTHON),
        &[],
        &fixture("python/workload.py"),
    );
    counts_exactly(&nobody_with(NEEDED), &mut python);
}

/// Runs `ustat --csv - -n 1` (or `ustat trace`) under setpriv; it must fail at once.
fn refused(setpriv: &[String], args: &[&str]) -> (i32, String) {
    let mut command = Command::new("setpriv");
    command
        .args(setpriv)
        .arg(support::ustat_binary())
        .args(args);
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_missing_capability_is_named_with_exit_code_3() {
    let python = workload(
        Path::new(DEBIAN_PYTHON),
        &[],
        &fixture("python/workload.py"),
    );
    let pid = python.pid().to_string();
    for missing in NEEDED {
        let others: Vec<&str> = NEEDED.iter().copied().filter(|c| c != missing).collect();
        let name = format!("CAP_{}", missing.to_uppercase());
        for setpriv in [root_with(&others), nobody_with(&others)] {
            for args in [
                &["--csv", "-", "-n", "1", "-p", &pid][..],
                &["trace", DEBIAN_PYTHON],
            ] {
                let (status, err) = refused(&setpriv, args);
                assert_eq!(
                    status,
                    i32::from(exit::PRIVILEGE),
                    "{setpriv:?} {args:?}: {err}"
                );
                assert_eq!(err.lines().count(), 1, "{err}");
                assert!(
                    err.starts_with(&format!("ustat: not permitted: missing {name} (")),
                    "{setpriv:?}: {err}"
                );
            }
        }
    }
}

#[test]
fn root_without_capabilities_is_refused_like_anyone() {
    let (status, err) = refused(&root_with(&[]), &["trace", DEBIAN_PYTHON]);
    assert_eq!(status, i32::from(exit::PRIVILEGE), "{err}");
    assert!(
        err.starts_with("ustat: not permitted: missing CAP_BPF ("),
        "{err}"
    );
    assert!(!err.contains("sudo"), "{err}");
}
