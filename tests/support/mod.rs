//! Helpers shared by the end-to-end tests: running the real `ustat` binary, driving fixture
//! programs line by line, and waiting for conditions with deadlines (never fixed sleeps).
//!
//! Every test works on its own processes and its own copies of the fixture binaries (their
//! own inodes), so tests running in parallel on one kernel cannot see each other's probes.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod fixtures;
pub mod interpreters;
pub mod jvm;
pub mod sampled;
pub mod tmux;

use std::{
    io::{BufRead as _, BufReader, Write as _},
    path::Path,
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::mpsc::{Receiver, RecvTimeoutError, channel},
    thread,
    time::{Duration, Instant},
};

/// How long any single wait may take before the test fails. Generous: CI machines are slow
/// and loaded; a passing test never waits this long.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn ustat_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ustat"))
}

/// Lines of a child's output, read by a thread so a test can wait with a deadline.
pub struct Lines {
    rx: Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn spawn(reader: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line, or `None` at end of output.
    pub fn next(&mut self, what: &str) -> Option<String> {
        match self.rx.recv_timeout(DEADLINE) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "no line within {DEADLINE:?} while waiting for {what}; seen: {:#?}",
                    self.seen
                )
            }
        }
    }

    /// Reads lines until one satisfies `pred`, and returns it.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        loop {
            match self.next(what) {
                Some(line) if pred(&line) => return line,
                Some(_) => continue,
                None => panic!(
                    "output ended while waiting for {what}; seen: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// The next `n` lines.
    pub fn take(&mut self, n: usize, what: &str) -> Vec<String> {
        (0..n)
            .map(|i| {
                self.next(what).unwrap_or_else(|| {
                    panic!(
                        "output ended after {i} of {n} lines of {what}; seen: {:#?}",
                        self.seen
                    )
                })
            })
            .collect()
    }

    /// Everything until the end of output.
    pub fn rest(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        while let Some(line) = self.next("the end of output") {
            rest.push(line);
        }
        rest
    }
}

/// A running `ustat`.
pub struct Ustat {
    pub child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Ustat {
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Self {
        Self::spawn_with(&[], args)
    }

    /// Like `spawn`, with these environment variables set.
    pub fn spawn_with<S: AsRef<std::ffi::OsStr>>(env: &[(&str, &str)], args: &[S]) -> Self {
        Self::spawn_command(
            Command::new(ustat_binary())
                .args(args)
                .envs(env.iter().copied()),
        )
    }

    /// ustat started by another program that execs it (`setpriv ... ustat ...`), so the
    /// child is ustat itself.
    pub fn spawn_program<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> Self {
        Self::spawn_command(Command::new(program).args(args))
    }

    fn spawn_command(command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ustat");
        let stdout = Lines::spawn(child.stdout.take().unwrap());
        let stderr = Lines::spawn(child.stderr.take().unwrap());
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// `ustat trace ...`, returned once its probes are attached.
    pub fn trace<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Self {
        Self::trace_with(&[], args)
    }

    /// Like `trace`, with these environment variables set.
    pub fn trace_with<S: AsRef<std::ffi::OsStr>>(env: &[(&str, &str)], args: &[S]) -> Self {
        let mut all: Vec<std::ffi::OsString> = vec!["trace".into()];
        all.extend(args.iter().map(|a| a.as_ref().to_os_string()));
        let mut ustat = Self::spawn_with(env, &all);
        let through = match env.iter().find(|(k, _)| *k == "USTAT_ATTACH") {
            Some((_, "perf-event")) => "through perf events",
            _ => "through uprobe_multi links",
        };
        let attached = ustat
            .stderr
            .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
        assert!(attached.contains(through), "{attached}");
        let header = ustat.stdout.next("the trace header");
        assert_eq!(header.as_deref(), Some("TIME_NS PID TID PROBE ARGS"));
        ustat
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill ustat");
    }

    pub fn wait(&mut self) -> ExitStatus {
        wait_with_deadline(&mut self.child, "ustat to exit")
    }
}

impl Drop for Ustat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_with_deadline(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `f` until it returns `Some`, or fails the test at the deadline.
pub fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `command`. A program a test has just copied can be "busy" (ETXTBSY) for a moment:
/// another test thread forked while the copy was open for writing, and its child holds that
/// descriptor until it execs. That passes within milliseconds, so the start is retried.
pub fn spawn_retrying_busy_text(command: &mut Command) -> Child {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match command.spawn() {
            Ok(child) => return child,
            Err(e)
                if e.raw_os_error() == Some(libc::ETXTBSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("start {command:?}: {e}"),
        }
    }
}

/// A program driven by one-line commands on stdin, each answered by one line on stdout.
pub struct Driven {
    pub child: Child,
    stdin: ChildStdin,
    pub stdout: Lines,
}

impl Driven {
    /// Starts `command` and waits for its first line (`ready ...`).
    pub fn spawn(command: &mut Command) -> Self {
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = spawn_retrying_busy_text(command);
        let stdin = child.stdin.take().unwrap();
        let stdout = Lines::spawn(child.stdout.take().unwrap());
        let mut driven = Self {
            child,
            stdin,
            stdout,
        };
        driven
            .stdout
            .wait_for("the program to be ready", |l| l.starts_with("ready"));
        driven
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command and returns its answer.
    pub fn send(&mut self, command: &str) -> String {
        self.try_send(command)
            .unwrap_or_else(|| panic!("the program exited on `{command}`"))
    }

    /// Sends one command and returns its answer, or `None` if the program ended instead.
    pub fn try_send(&mut self, command: &str) -> Option<String> {
        if writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            return None;
        }
        self.stdout.next(command)
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs ustat to completion and returns (exit code, stdout, stderr).
pub fn run_ustat<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String, String) {
    let out = Command::new(ustat_binary())
        .args(args)
        .output()
        .expect("run ustat");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ustat --csv FILE -i 0.5 ARGS...`, returned once it has attached.
pub fn csv_ustat(csv: &Path, args: &[&std::ffi::OsStr]) -> Ustat {
    let mut all: Vec<&std::ffi::OsStr> = vec![
        "--csv".as_ref(),
        csv.as_os_str(),
        "-i".as_ref(),
        "0.5".as_ref(),
    ];
    all.extend_from_slice(args);
    let mut ustat = Ustat::spawn(&all);
    ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
    ustat
}

/// `csv_ustat` on one process, also writing every method's calls and times to `methods`.
pub fn csv_ustat_with_methods(csv: &Path, pid: u32, methods: &Path) -> Ustat {
    let pid = pid.to_string();
    csv_ustat(
        csv,
        &[
            "-p".as_ref(),
            pid.as_ref(),
            "--methods".as_ref(),
            methods.as_os_str(),
        ],
    )
}

/// Stops ustat with SIGINT (it writes the partial last interval) and checks it exited well.
pub fn stop(mut ustat: Ustat) {
    ustat.signal(libc::SIGINT);
    let status = ustat.wait();
    assert!(
        status.success(),
        "ustat: {status:?}; stderr: {:?}",
        ustat.stderr.rest()
    );
}

/// The rows of a CSV file, each a map from column to cell.
pub fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The sum of a numeric column over the rows of one process.
pub fn sum_for(rows: &[std::collections::HashMap<String, String>], pid: u32, column: &str) -> u64 {
    rows.iter()
        .filter(|r| r["pid"] == pid.to_string())
        .map(|r| {
            r[column]
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{column} = {:?}", r[column]))
        })
        .sum()
}
