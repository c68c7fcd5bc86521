//! Every exit on a signal is clean and complete. SIGINT, SIGTERM and SIGHUP end ustat promptly
//! with every link closed — no "leaking uprobe" in the kernel log, no breakpoint left in a
//! traced process's code, every USDT semaphore back to 0 — after writing the last, partial CSV
//! interval and a complete `--folded` file. The dashboard ended by a signal or by its terminal
//! going away restores the terminal and closes its links too.
//!
//! The traced processes run their own copies of the runtime binaries (their own inodes), so
//! probes other tests attach by file do not show in them; a tracer attaching to every runtime
//! on the host still can, so the checks wait (with a deadline) for the processes to be clean.

mod support;

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    fs::File,
    os::unix::fs::FileExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant, SystemTime},
};

use support::{
    Driven, Ustat,
    interpreters::{DEBIAN_PYTHON, python},
    jvm::{Jvm, java, private_jdk},
    poll, read_csv, sum_for,
    tmux::Tmux,
    ustat_binary,
};

/// A signal exit takes well under this; it used to take 1.8 s with ten traced processes
/// (links closed one by one), and a 2 s watchdog cut it short under load.
const PROMPT: Duration = Duration::from_secs(2);

/// A runtime binary as its file has it: its bytes and its semaphores' file offsets.
struct Binary {
    path: PathBuf,
    bytes: Vec<u8>,
    semaphores: Vec<u64>,
}

impl Binary {
    fn read(path: &Path) -> Self {
        let semaphores = ustat::usdt::probes_in_file(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .iter()
            .flat_map(|probe| &probe.sites)
            .filter_map(|site| site.target.as_ref().ok()?.semaphore_offset)
            .collect();
        Self {
            path: path.to_path_buf(),
            bytes: std::fs::read(path).unwrap(),
            semaphores,
        }
    }
}

/// One mapping of a file in a process.
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    executable: bool,
}

fn mappings(pid: u32, path: &Path) -> Vec<Mapping> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 6 || Path::new(fields[5]) != path {
                return None;
            }
            let (start, end) = fields[0].split_once('-')?;
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(fields[2], 16).ok()?,
                executable: fields[1].contains('x'),
            })
        })
        .collect()
}

/// What tracing leaves in a process until it is undone: code that differs from the file (a
/// breakpoint, at these file offsets) and raised semaphores (file offset, value).
#[derive(Debug, Default)]
struct Traces {
    breakpoints: Vec<u64>,
    raised: Vec<(u64, u16)>,
}

impl Traces {
    fn clean(&self) -> bool {
        self.breakpoints.is_empty() && self.raised.is_empty()
    }
}

/// Reads (only reads) `pid`'s memory where `binary` is mapped.
fn traces(pid: u32, binary: &Binary) -> Traces {
    let maps = mappings(pid, &binary.path);
    assert!(
        !maps.is_empty(),
        "PID {pid} does not map {}",
        binary.path.display()
    );
    let mem = File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut traces = Traces::default();
    for map in maps.iter().filter(|m| m.executable) {
        let file = &binary.bytes[map.offset as usize..];
        let len = ((map.end - map.start) as usize).min(file.len());
        let mut code = vec![0; len];
        mem.read_exact_at(&mut code, map.start).unwrap();
        // Page by page: slices compare fast, bytes one by one only where a page differs.
        for (page, (code, file)) in code.chunks(4096).zip(file[..len].chunks(4096)).enumerate() {
            if code != file {
                traces.breakpoints.extend(
                    (0..code.len())
                        .filter(|&i| code[i] != file[i])
                        .map(|i| map.offset + (page * 4096 + i) as u64),
                );
            }
        }
    }
    for &offset in &binary.semaphores {
        let map = maps
            .iter()
            .find(|m| m.offset <= offset && offset < m.offset + (m.end - m.start))
            .unwrap_or_else(|| panic!("semaphore at {offset:#x} is not mapped in {pid}"));
        let mut value = [0; 2];
        mem.read_exact_at(&mut value, map.start + offset - map.offset)
            .unwrap();
        let value = u16::from_ne_bytes(value);
        if value != 0 {
            traces.raised.push((offset, value));
        }
    }
    traces
}

/// Pythons (Debian's 3.11, with USDT semaphores) and JVMs, each runtime from a copy of its own.
struct Fleet {
    _dir: tempfile::TempDir,
    pythons: Vec<Driven>,
    jvms: Vec<Jvm>,
    python: Binary,
    libjvm: Binary,
}

impl Fleet {
    fn start(pythons: usize, jvms: usize) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-exits-")
            .tempdir()
            .unwrap();
        let python_path = dir.path().join("python3.11");
        std::fs::copy(DEBIAN_PYTHON, &python_path).unwrap();
        let java = private_jdk(dir.path());
        let libjvm = dir.path().join("jdk/lib/server/libjvm.so");
        let (pythons, jvms) = std::thread::scope(|scope| {
            let jvms: Vec<_> = (0..jvms)
                .map(|_| scope.spawn(|| Jvm::start(&java, &[])))
                .collect();
            let pythons: Vec<Driven> = (0..pythons).map(|_| python(&python_path)).collect();
            let jvms: Vec<Jvm> = jvms.into_iter().map(|j| j.join().unwrap()).collect();
            (pythons, jvms)
        });
        Self {
            python: Binary::read(&python_path),
            libjvm: Binary::read(&libjvm),
            _dir: dir,
            pythons,
            jvms,
        }
    }

    fn pids(&self) -> Vec<u32> {
        let pythons = self.pythons.iter().map(Driven::pid);
        pythons.chain(self.jvms.iter().map(Jvm::pid)).collect()
    }

    /// `-p PID,PID,...`
    fn pid_list(&self) -> String {
        let pids: Vec<String> = self.pids().iter().map(u32::to_string).collect();
        pids.join(",")
    }

    /// Each process with what tracing left in it now.
    fn traces(&self) -> Vec<(u32, Traces)> {
        let pythons = self.pythons.iter().map(|p| (p.pid(), &self.python));
        let jvms = self.jvms.iter().map(|j| (j.pid(), &self.libjvm));
        pythons
            .chain(jvms)
            .map(|(pid, binary)| (pid, traces(pid, binary)))
            .collect()
    }

    /// While ustat traces them: a breakpoint in every process, a semaphore up in every Python
    /// (so the checks after the exit look at something that was there).
    fn assert_traced(&self) {
        let python_pids: Vec<u32> = self.pythons.iter().map(Driven::pid).collect();
        for (pid, traces) in self.traces() {
            assert!(!traces.breakpoints.is_empty(), "no probe in {pid}");
            if python_pids.contains(&pid) {
                assert!(!traces.raised.is_empty(), "no semaphore raised in {pid}");
            }
        }
    }

    /// Waits until no process has a breakpoint or a raised semaphore left.
    fn wait_clean(&self, after: &str) {
        let start = Instant::now();
        loop {
            let left: Vec<(u32, Traces)> = self
                .traces()
                .into_iter()
                .filter(|(_, t)| !t.clean())
                .collect();
            if left.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < support::DEADLINE,
                "after {after}, tracing is still in the processes (file offsets): {left:?}; \
                 tracers running now: {:?}",
                tracers()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The tracers on the host now (PID and command line): one attached to every runtime on the
/// host also shows in these processes.
fn tracers() -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if ["ustat", "bpftrace"].contains(&comm.trim()) {
            let args = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&args).replace('\0', " ")));
        }
    }
    found
}

/// Whether `pid` has exited (gone, or a zombie its parent has not reaped yet: after a hangup
/// its shell is gone too, and whoever inherits it reaps it in its own time).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// A PID allocated now: every thread of a process that has exited before has a lower one
/// (unless PIDs wrapped around in between).
fn pid_now() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// The PIDs (and so thread IDs) a ustat process could have had: from its own to one allocated
/// after it exited.
#[derive(Debug, Clone, Copy)]
struct PidWindow {
    first: u32,
    after: u32,
}

impl PidWindow {
    fn contains(self, tid: u32) -> bool {
        if self.first <= self.after {
            (self.first..self.after).contains(&tid)
        } else {
            tid >= self.first || tid < self.after
        }
    }
}

/// When a kernel log line was written (`[ 2429.309483] ...`: seconds since boot).
fn log_time(line: &str) -> Option<f64> {
    line.strip_prefix('[')?
        .split_once(']')?
        .0
        .trim()
        .parse()
        .ok()
}

/// The time of the kernel log's last line now: lines after it were written after this call.
fn kernel_log_time() -> f64 {
    let out = Command::new("dmesg").output().expect("run dmesg");
    assert!(out.status.success(), "dmesg: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(log_time)
        .unwrap_or(0.0)
}

/// The kernel's "failed to unregister, leaking uprobe" lines written after `since` (see
/// `kernel_log_time`) from a thread of these ustat processes (the kernel names the thread
/// that closed the link: `comm:TID`). Older lines are left out: after PIDs wrapped around, a
/// thread of an earlier ustat could have had one of these TIDs.
fn leak_lines(since: f64, windows: &[PidWindow]) -> Vec<String> {
    let out = Command::new("dmesg").output().expect("run dmesg");
    assert!(out.status.success(), "dmesg: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.contains("leaking uprobe"))
        .filter(|line| log_time(line).is_some_and(|t| t > since))
        .filter(|line| {
            let Some((_, rest)) = line.split_once("uprobe: ") else {
                return false;
            };
            let Some((thread, _)) = rest.split_once(" failed") else {
                return false;
            };
            let Some((comm, tid)) = thread.rsplit_once(':') else {
                return false;
            };
            comm.starts_with("ustat")
                && tid
                    .parse::<u32>()
                    .is_ok_and(|tid| windows.iter().any(|w| w.contains(tid)))
        })
        .map(str::to_string)
        .collect()
}

fn signal_name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Sends `signal` to `ustat` and returns its exit status and how long the exit took.
fn end_with(ustat: &mut Ustat, signal: libc::c_int) -> (std::process::ExitStatus, Duration) {
    let sent = Instant::now();
    ustat.signal(signal);
    let status = ustat.wait();
    (status, sent.elapsed())
}

fn report_times(what: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    eprintln!(
        "{what}: {} exits, min {:?}, median {:?}, max {:?}",
        sorted.len(),
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
}

const PYTHON_GCS: u64 = 2;
const JVM_GCS: u64 = 1;

#[test]
fn twenty_signal_exits_over_ten_processes_close_every_link_and_write_the_last_interval() {
    let log_since = kernel_log_time();
    let mut fleet = Fleet::start(6, 4);
    let pids = fleet.pid_list();
    let csv_dir = tempfile::tempdir().unwrap();
    let mut windows = Vec::new();
    let mut times = Vec::new();
    for round in 0..20 {
        let signal = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP][round % 3];
        // Even rounds end inside the first interval, odd ones after at least one.
        let interval = if round % 2 == 0 { "60" } else { "0.3" };
        let csv = csv_dir.path().join(format!("round-{round}.csv"));
        let mut ustat = Ustat::spawn(&[
            OsStr::new("--csv"),
            csv.as_os_str(),
            OsStr::new("-i"),
            OsStr::new(interval),
            OsStr::new("-p"),
            OsStr::new(&pids),
        ]);
        let first = ustat.child.id();
        ustat.stderr.wait_for("ustat to attach", |l| {
            l.starts_with("ustat: tracing 10 runtime processes")
        });
        fleet.assert_traced();
        if interval != "60" {
            poll("a whole interval", || {
                (read_csv(&csv).len() >= fleet.pids().len()).then_some(())
            });
        }
        for python in &mut fleet.pythons {
            assert_eq!(python.send(&format!("gc {PYTHON_GCS}")), "ok");
        }
        for jvm in &mut fleet.jvms {
            jvm.send(&format!("gc {JVM_GCS}"));
        }
        let signalled = SystemTime::now();
        let (status, took) = end_with(&mut ustat, signal);
        let what = format!("round {round}, {}", signal_name(signal));
        assert!(
            status.success(),
            "{what}: {status:?}; stderr: {:?}",
            ustat.stderr.rest()
        );
        assert!(took < PROMPT, "{what}: the exit took {took:?}");
        times.push(took);
        windows.push(PidWindow {
            first,
            after: pid_now(),
        });
        fleet.wait_clean(&what);

        // The last interval, cut short by the signal, is there with everything it counted.
        let rows = read_csv(&csv);
        for pid in fleet.pids() {
            let last = rows
                .iter()
                .filter(|r| r["pid"] == pid.to_string())
                .map(|r| humantime::parse_rfc3339(&r["timestamp"]).unwrap())
                .max();
            assert!(
                last.is_some_and(|t| t + Duration::from_millis(1) > signalled),
                "{what}: no row for {pid} after the signal: {rows:?}"
            );
        }
        for python in &fleet.pythons {
            assert_eq!(
                sum_for(&rows, python.pid(), "gc_count"),
                PYTHON_GCS,
                "{what}"
            );
        }
        for jvm in &fleet.jvms {
            assert_eq!(sum_for(&rows, jvm.pid(), "gc_count"), JVM_GCS, "{what}");
        }
    }
    report_times("ustat --csv -p (10 processes)", &times);
    let leaks = leak_lines(log_since, &windows);
    assert!(leaks.is_empty(), "the kernel leaked uprobes: {leaks:#?}");
}

/// A flow line's thread, depth, arrow and method: `TIME_NS PID TID <indent>-> Method ...`.
fn flow_step(line: &str) -> Option<(u32, usize, &str, &str)> {
    let mut fields = line.splitn(4, ' ');
    let _time = fields.next()?;
    let _pid = fields.next()?;
    let tid = fields.next()?.parse().ok()?;
    let rest = fields.next()?;
    let call = rest.trim_start_matches(' ');
    let depth = (rest.len() - call.len()) / 2;
    // A name may hold spaces (`Workload.run(String, int)`); a return ends with its time.
    let (arrow, rest) = call.split_once(' ')?;
    let method = match arrow {
        "<-" => rest.trim_end_matches(" (unwound)").rsplit_once(' ')?.0,
        _ => rest,
    };
    Some((tid, depth, arrow, method))
}

/// Returned calls per stack (`a;b;c`), from the flow's text lines (the folded stacks count a
/// call when it returns).
fn stacks_printed(lines: &[String]) -> BTreeMap<String, u64> {
    let mut stacks: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for line in lines {
        let (tid, depth, arrow, method) =
            flow_step(line).unwrap_or_else(|| panic!("not a flow line: {line}"));
        let stack = stacks.entry(tid).or_default();
        stack.truncate(depth);
        if arrow == "->" {
            stack.push(method.replace(", ", ","));
        } else {
            stack.push(method.replace(", ", ","));
            *counts.entry(stack.join(";")).or_default() += 1;
            stack.truncate(depth);
        }
    }
    counts
}

/// Calls per stack from a folded file; every line must be `a;b;c N`.
fn stacks_folded(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .map(|line| {
            let (stack, count) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a folded line: {line:?}"));
            assert!(
                !stack.is_empty() && stack.split(';').all(|f| !f.is_empty() && !f.contains(' ')),
                "not a folded stack: {line:?}"
            );
            let count = count
                .parse()
                .unwrap_or_else(|_| panic!("not a count: {line:?}"));
            (stack.to_string(), count)
        })
        .collect()
}

#[test]
fn a_flow_ended_by_a_signal_writes_the_whole_folded_file() {
    let log_since = kernel_log_time();
    const TREES: u64 = 20;
    const MARKERS: u64 = 5000;
    let mut jvm = Jvm::start(java(), &["-XX:+ExtendedDTraceProbes"]);
    let pid = jvm.pid().to_string();
    let folded = jvm.dir.path().join("calls.folded");
    let mut flow = Ustat::spawn(&[
        OsStr::new("--flow"),
        OsStr::new("--text"),
        OsStr::new("-p"),
        OsStr::new(&pid),
        OsStr::new("--folded"),
        folded.as_os_str(),
    ]);
    flow.stderr.wait_for("the flow to start", |l| {
        l.starts_with("ustat: following the method calls")
    });
    for _ in 0..TREES {
        jvm.send("tree");
    }
    jvm.send(&format!("calls {MARKERS}"));
    // Each command is one call of Workload.run; wait until the last has returned on screen.
    let mut lines = Vec::new();
    let mut runs = 0;
    while runs < TREES + 1 {
        let line = flow.stdout.next("the flow").expect("the flow ended early");
        if line.ends_with("<- Workload.run(String, int)")
            || line.contains("<- Workload.run(String, int) ")
        {
            runs += 1;
        }
        lines.push(line);
    }
    let window = flow.child.id();
    let (status, took) = end_with(&mut flow, libc::SIGTERM);
    let stderr = flow.stderr.rest();
    assert!(status.success(), "{status:?}: {stderr:?}");
    assert!(took < PROMPT, "the exit took {took:?}");
    report_times("ustat --flow --text --folded", &[took]);
    lines.extend(flow.stdout.rest());
    assert!(
        !stderr.iter().any(|l| l.contains("lost")),
        "events were lost, so the text is not every call: {stderr:?}"
    );

    let folded = stacks_folded(&std::fs::read_to_string(&folded).unwrap());
    for (stack, calls) in [
        ("Workload.run(String,int)", TREES + 1),
        ("Workload.run(String,int);Workload.a()", TREES),
        (
            "Workload.run(String,int);Workload.a();Workload.b()",
            3 * TREES,
        ),
        ("Workload.run(String,int);Workload.a();Workload.c()", TREES),
        (
            "Workload.run(String,int);Workload.d(int);Workload.d(int);Workload.d(int);Workload.d(int);Workload.d(int)",
            TREES,
        ),
        ("Workload.run(String,int);Workload.marker(int)", MARKERS),
    ] {
        assert_eq!(folded.get(stack), Some(&calls), "{stack} in {folded:?}");
    }
    // Every call under Workload.run returned before the text showed its last return; what
    // the JVM does after that (answering, reading the next command) may still be running.
    let under_run = |stacks: BTreeMap<String, u64>| -> BTreeMap<String, u64> {
        stacks
            .into_iter()
            .filter(|(stack, _)| stack.split(';').next() == Some("Workload.run(String,int)"))
            .collect()
    };
    assert_eq!(
        under_run(folded),
        under_run(stacks_printed(&lines)),
        "the folded file against the text"
    );
    let leaks = leak_lines(
        log_since,
        &[PidWindow {
            first: window,
            after: pid_now(),
        }],
    );
    assert!(leaks.is_empty(), "the kernel leaked uprobes: {leaks:#?}");
}

/// The first child of `parent` (ustat under the pane's shell).
fn child_of(parent: u32) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

#[test]
fn the_dashboard_ended_by_a_signal_or_a_hangup_closes_every_link() {
    let log_since = kernel_log_time();
    let fleet = Fleet::start(1, 1);
    let mut windows = Vec::new();
    let mut times = Vec::new();
    for end in ["TERM", "HUP", "hangup"] {
        let dir = tempfile::tempdir().unwrap();
        let command = format!(
            "{} -p {} -i 0.5; echo USTAT_EXIT=$?; stty -a; sleep 600",
            ustat_binary().display(),
            fleet.pid_list()
        );
        let tmux = Tmux::start(dir.path(), 120, 30, &command);
        let pids: Vec<String> = fleet.pids().iter().map(u32::to_string).collect();
        tmux.wait_for("both processes' rows", |screen| {
            pids.iter().all(|pid| {
                screen.lines().any(|l| {
                    l.trim_start_matches('▶').split_whitespace().next() == Some(pid.as_str())
                })
            })
        });
        let shell: u32 = tmux.pane("#{pane_pid}").parse().unwrap();
        let ustat = poll("ustat under the shell", || child_of(shell));
        fleet.assert_traced();
        let sent = Instant::now();
        match end {
            "hangup" => drop(tmux),
            signal => {
                let out = Command::new("kill")
                    .args([&format!("-{signal}"), &ustat.to_string()])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                let after = tmux.wait_for("ustat's exit", |s| {
                    s.contains("USTAT_EXIT=") && s.contains("speed")
                });
                assert!(after.contains("USTAT_EXIT=0"), "SIG{signal}: {after}");
                assert_eq!(tmux.pane("#{alternate_on}"), "0", "SIG{signal}");
                assert!(
                    after.split_whitespace().any(|w| w == "icanon"),
                    "SIG{signal}: {after}"
                );
            }
        }
        poll("ustat to exit", || exited(ustat).then_some(()));
        times.push(sent.elapsed());
        windows.push(PidWindow {
            first: ustat,
            after: pid_now(),
        });
        fleet.wait_clean(&format!("the dashboard's end by {end}"));
    }
    report_times("the dashboard (TERM, HUP, hangup)", &times);
    let leaks = leak_lines(log_since, &windows);
    assert!(leaks.is_empty(), "the kernel leaked uprobes: {leaks:#?}");
}
