//! ustat inside a PID namespace (a container, `unshare --pid`): the workload and ustat share
//! a new PID namespace with its own /proc, and the counts are exact, for one process by its
//! namespace PID and system-wide.

mod support;

use std::process::{Child, Command, Stdio};

use support::{
    Driven, Lines,
    interpreters::{DEBIAN_PYTHON, fixture},
    poll, wait_with_deadline,
};

const GCS: u64 = 7;

/// Debian's python3.11 running the workload as PID 1 of a new PID namespace (with its own
/// /proc), warmed up. Killing `unshare` kills it.
fn python_in_new_namespace() -> (Driven, u32) {
    let mut python = Driven::spawn(
        Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"])
            .arg(DEBIAN_PYTHON)
            .arg(fixture("python/workload.py")),
    );
    let ready = python.stdout.seen[0].clone();
    assert_eq!(ready, "ready 1", "the workload is PID 1 of its namespace");
    assert_eq!(python.send("gc 1"), "ok", "warm-up");
    let host_pid = only_child(python.pid());
    (python, host_pid)
}

/// The one child of `pid` (the process `unshare` or `nsenter` forked into the namespace).
fn only_child(pid: u32) -> u32 {
    poll("the forked child", || {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    })
}

/// `ustat --csv - -i 0.5 ARGS` in the namespace of `host_pid`, with its /proc.
struct UstatInside {
    nsenter: Child,
    ustat_host_pid: u32,
    stdout: Lines,
    stderr: Lines,
}

impl UstatInside {
    fn start(host_pid: u32, args: &[&str]) -> Self {
        let mut nsenter = Command::new("nsenter")
            .arg(format!("--target={host_pid}"))
            .args(["--pid", "--mount", "--"])
            .arg(support::ustat_binary())
            .args(["--csv", "-", "-i", "0.5"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nsenter");
        let stdout = Lines::spawn(nsenter.stdout.take().unwrap());
        let mut stderr = Lines::spawn(nsenter.stderr.take().unwrap());
        stderr.wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
        let ustat_host_pid = only_child(nsenter.id());
        Self {
            nsenter,
            ustat_host_pid,
            stdout,
            stderr,
        }
    }

    /// Stops ustat with SIGINT and returns the CSV it wrote.
    fn stop(mut self) -> Vec<std::collections::HashMap<String, String>> {
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.ustat_host_pid as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0);
        let status = wait_with_deadline(&mut self.nsenter, "ustat in the namespace to exit");
        let text = self.stdout.rest().join("\n");
        assert!(status.success(), "{status:?}: {:?}", self.stderr.rest());
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                headers
                    .iter()
                    .zip(r.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }
}

impl Drop for UstatInside {
    fn drop(&mut self) {
        let _ = self.nsenter.kill();
        let _ = self.nsenter.wait();
    }
}

fn exact_gcs_inside(args: &[&str]) {
    let (mut python, host_pid) = python_in_new_namespace();
    let ustat = UstatInside::start(host_pid, args);
    assert_eq!(python.send(&format!("gc {GCS}")), "ok");
    let rows = ustat.stop();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r["pid"] == "1"),
        "only the namespace's own process: {rows:?}"
    );
    let gcs: u64 = rows
        .iter()
        .map(|r| r["gc_count"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(gcs, GCS, "{rows:?}");
}

#[test]
fn one_process_by_its_namespace_pid() {
    exact_gcs_inside(&["-p", "1"]);
}

#[test]
fn system_wide_inside_the_namespace() {
    exact_gcs_inside(&["--runtime", "python"]);
}

/// A process in a namespace nested inside ustat's cannot be attributed (the kernel's helper
/// gives ids only in ustat's own): asked for by PID, ustat says so and exits with 4, never
/// showing zeros.
#[test]
fn a_process_in_a_nested_namespace_is_refused_not_zero() {
    let (_outer, outer_host_pid) = python_in_new_namespace();
    let mut inner = Driven::spawn(
        Command::new("nsenter")
            .arg(format!("--target={outer_host_pid}"))
            .args(["--pid", "--mount", "--"])
            .args([
                "unshare",
                "--pid",
                "--fork",
                "--mount-proc",
                "--kill-child",
                "--",
            ])
            .arg(DEBIAN_PYTHON)
            .arg(fixture("python/workload.py")),
    );
    assert_eq!(inner.send("gc 1"), "ok");
    // nsenter -> unshare -> python; python's ids: host, outer namespace, inner namespace.
    let inner_host_pid = only_child(only_child(inner.pid()));
    let status = std::fs::read_to_string(format!("/proc/{inner_host_pid}/status")).unwrap();
    let ids: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let out = Command::new("nsenter")
        .arg(format!("--target={outer_host_pid}"))
        .args(["--pid", "--mount", "--"])
        .arg(support::ustat_binary())
        .args(["--csv", "-", "-n", "1", "-p", ids[1]])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "ustat: process {} runs in a PID namespace nested inside ustat's, for which the \
             kernel gives ustat's programs no ids: trace it from its own namespace or from the \
             host",
            ids[1]
        )
    );
}
