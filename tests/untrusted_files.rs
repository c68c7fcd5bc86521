//! Files another user controls cannot steer, hang, crash or bloat root's ustat (issue 17).
//!
//! Each test creates its own unprivileged user (`useradd`, deleted after), runs the attacker's
//! processes as that user from directories it owns, and runs ustat as root system-wide, as
//! on a shared host. The victim is a root-owned binary run by root; its memory is read
//! through `/proc/PID/mem` (read-only) before and after.

mod support;

use std::{
    ffi::OsStr,
    os::unix::{
        fs::{FileExt as _, PermissionsExt as _},
        process::CommandExt as _,
    },
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use support::{DEADLINE, Driven, Ustat, poll};

fn fixture_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/untrusted")
        .join(name)
}

fn gcc(args: &[&OsStr]) {
    let out = Command::new("gcc")
        .args(args)
        .output()
        .expect("run gcc (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "gcc {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// The fixture programs, built into a directory everyone may read and run from.
struct Built {
    _dir: tempfile::TempDir,
    /// A stand-in for libjvm.so with semaphore-gated hotspot thread probes.
    fake_jvm: PathBuf,
    /// Maps a file and plays an attacker's part (see mapper.c).
    mapper: PathBuf,
}

impl Built {
    fn build() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-untrusted-")
            .tempdir()
            .unwrap();
        chmod(dir.path(), 0o755);
        let fake_jvm = dir.path().join("fake_jvm");
        let mapper = dir.path().join("mapper");
        // Bound at load (-z now): lazy binding would write the victim's GOT on its first
        // call of each libc function, a change of its memory no tracer made.
        gcc(&[
            "-O2".as_ref(),
            "-Wl,-z,now".as_ref(),
            "-o".as_ref(),
            fake_jvm.as_os_str(),
            fixture_source("fake_jvm.c").as_os_str(),
        ]);
        gcc(&[
            "-O2".as_ref(),
            "-pthread".as_ref(),
            "-o".as_ref(),
            mapper.as_os_str(),
            fixture_source("mapper.c").as_os_str(),
        ]);
        Self {
            _dir: dir,
            fake_jvm,
            mapper,
        }
    }
}

/// An unprivileged user for one test, deleted when dropped.
struct Attacker {
    name: String,
    uid: u32,
    gid: u32,
}

/// Runs a user-database command, retrying while another test holds the lock on /etc/passwd.
fn user_command(program: &str, args: &[&str]) {
    poll(&format!("{program} {args:?}"), || {
        let out = Command::new(program).args(args).output().expect(program);
        if out.status.success() {
            return Some(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("lock"), "{program} {args:?}: {err}");
        None
    });
}

impl Attacker {
    fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "ustatatk{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        user_command(
            "useradd",
            &[
                "--system",
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ],
        );
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        Self { name, uid, gid }
    }

    /// `program` to be run as this user.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.uid(self.uid).gid(self.gid);
        command
    }

    fn give(&self, path: &Path) {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }

    /// A new directory this user owns.
    fn dir(&self) -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("ustat-attacker-")
            .tempdir()
            .unwrap();
        chmod(dir.path(), 0o755);
        self.give(dir.path());
        dir
    }

    /// A copy of `source` at `path`, owned by this user, mode 0755.
    fn copy(&self, source: &Path, path: &Path) {
        std::fs::copy(source, path).unwrap();
        chmod(path, 0o755);
        self.give(path);
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        // The test's processes of this user are gone by now (Driven kills on drop, and each
        // is declared after the Attacker).
        user_command("userdel", &[&self.name]);
    }
}

/// The bytes of every mapping of `path` in process `pid`, read from its memory.
fn mapped_bytes(pid: u32, path: &Path) -> Vec<(String, Vec<u8>)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let path = path.to_str().unwrap();
    maps.lines()
        .filter(|line| line.ends_with(path))
        .map(|line| {
            let range = line.split_whitespace().next().unwrap();
            let (start, end) = range.split_once('-').unwrap();
            let start = u64::from_str_radix(start, 16).unwrap();
            let end = u64::from_str_radix(end, 16).unwrap();
            let mut bytes = vec![0; (end - start) as usize];
            mem.read_exact_at(&mut bytes, start)
                .unwrap_or_else(|e| panic!("read {line}: {e}"));
            (line.to_string(), bytes)
        })
        .collect()
}

/// Where two readings of the same mappings differ: (mapping, offset, before, after).
fn differences(
    before: &[(String, Vec<u8>)],
    after: &[(String, Vec<u8>)],
) -> Vec<(String, usize, u8, u8)> {
    before
        .iter()
        .zip(after)
        .flat_map(|((line, b), (_, a))| {
            b.iter()
                .zip(a)
                .enumerate()
                .filter(|(_, (x, y))| x != y)
                .map(|(i, (x, y))| (line.clone(), i, *x, *y))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Other programs that attach uprobes running now (ustat from other work trees, bpftrace),
/// to tell in a failure whether one of them, not this test's ustat, was misled.
fn other_tracers(own: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        if pid == own {
            return None;
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        let name = exe.file_name()?.to_str()?;
        (name == "ustat" || name == "bpftrace").then(|| format!("{pid} {}", exe.display()))
    })
    .collect()
}

/// System-wide ustat on JVMs, CSV rows to stdout every half second.
fn system_wide_ustat() -> Ustat {
    let mut ustat = Ustat::spawn(&["--csv", "-", "-i", "0.5", "--runtime", "jvm"]);
    ustat
        .stderr
        .wait_for("ustat to start", |l| l.starts_with("ustat: tracing "));
    ustat
}

/// Waits for ustat's next CSV row about `pid`; returns when it came.
fn next_row_of(ustat: &mut Ustat, pid: u32) -> Instant {
    let pid = pid.to_string();
    ustat
        .stdout
        .wait_for(&format!("a row of process {pid}"), |line| {
            line.split(',').nth(2) == Some(pid.as_str())
        });
    Instant::now()
}

/// Peak resident memory of a process, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Stops ustat with SIGINT and returns its stderr; it must exit 0, not killed.
fn stop_ustat(mut ustat: Ustat) -> Vec<String> {
    ustat.signal(libc::SIGINT);
    let status = ustat.wait();
    let mut stderr = std::mem::take(&mut ustat.stderr.seen);
    stderr.extend(ustat.stderr.rest());
    assert!(status.success(), "ustat: {status:?}; stderr: {stderr:#?}");
    stderr
}

#[test]
fn a_link_swapped_in_never_changes_a_root_owned_victim() {
    let built = Built::build();
    let attacker = Attacker::create();
    let victim_dir = tempfile::Builder::new()
        .prefix("ustat-victim-")
        .tempdir()
        .unwrap();
    chmod(victim_dir.path(), 0o755);
    let victim = victim_dir.path().join("victim");
    std::fs::copy(&built.fake_jvm, &victim).unwrap();
    chmod(&victim, 0o755);
    let mut victim_process = Driven::spawn(&mut Command::new(&victim));
    // Its memory is read once it waits for its next command, in read(2).
    assert_eq!(victim_process.send("0"), "fired");
    poll("the victim to wait in read(2)", || {
        let syscall =
            std::fs::read_to_string(format!("/proc/{}/syscall", victim_process.pid())).ok()?;
        syscall.starts_with("0 ").then_some(())
    });
    let before = mapped_bytes(victim_process.pid(), &victim);
    assert!(before.len() >= 2, "text and data: {before:?}");

    let mut ustat = system_wide_ustat();
    let mut attacker_files = Vec::new();
    for attempt in 0..30 {
        // A copy of the victim's binary named libjvm.so: its probe offsets and semaphores are
        // valid in the victim, so attaching the wrong file would patch the victim.
        let dir = attacker.dir();
        let crafted = dir.path().join("libjvm.so");
        attacker.copy(&built.fake_jvm, &crafted);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        attacker.give(&link);
        let attack = Driven::spawn(attacker.command(&built.mapper).args([
            OsStr::new("swap"),
            crafted.as_os_str(),
            link.as_os_str(),
        ]));
        next_row_of(&mut ustat, attack.pid());
        drop(attack);
        let after = mapped_bytes(victim_process.pid(), &victim);
        assert!(
            after == before,
            "attempt {attempt}: the victim's memory changed: {:?}; tracers on the host: {:?}",
            differences(&before, &after),
            other_tracers(ustat.child.id()),
        );
        attacker_files.push(crafted.display().to_string());
    }
    let stderr = stop_ustat(ustat);
    eprintln!("ustat said: {stderr:#?}");
    let skipped: Vec<&String> = stderr
        .iter()
        .filter(|line| {
            line.starts_with("ustat: skipping ")
                && attacker_files.iter().any(|f| line.contains(f.as_str()))
        })
        .collect();
    assert!(!skipped.is_empty(), "no skip line in {stderr:#?}");
    for line in &skipped {
        assert!(
            line.ends_with(
                ": a symbolic link is on its path, and ustat does not follow links another \
                 user may have made"
            ) || line.contains(": it changed since the process mapped it ("),
            "{line}"
        );
    }
    assert_eq!(mapped_bytes(victim_process.pid(), &victim), before);
}

/// A copy of `fake_jvm` with 100,000 more notes (all distinct probes, one named with
/// 70,000 bytes) besides its own two, at `path`.
fn write_many_notes(fake_jvm: &Path, path: &Path) {
    let probes = ustat::usdt::probes_in_file(fake_jvm).unwrap();
    let mut notes = Vec::new();
    let mut note = |pc: u64, semaphore: u64, name: &str, args: &str| {
        let mut desc = Vec::new();
        for word in [pc, 0, semaphore] {
            desc.extend_from_slice(&word.to_le_bytes());
        }
        for text in ["hotspot", name, args] {
            desc.extend_from_slice(text.as_bytes());
            desc.push(0);
        }
        notes.extend_from_slice(&8u32.to_le_bytes());
        notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        notes.extend_from_slice(&3u32.to_le_bytes());
        notes.extend_from_slice(b"stapsdt\0");
        notes.extend_from_slice(&desc);
        notes.resize(notes.len().next_multiple_of(4), 0);
    };
    for probe in &probes {
        let site = &probe.sites[0];
        note(
            site.address,
            site.semaphore_address.unwrap_or(0),
            &probe.name,
            &site.arg_text,
        );
    }
    let pc = probes[0].sites[0].address;
    for i in 0..100_000 {
        note(pc, 0, &format!("p{i}"), "");
    }
    note(pc, 0, &"n".repeat(70_000), "");
    let notes_file = path.with_extension("notes");
    std::fs::write(&notes_file, &notes).unwrap();
    let out = Command::new("objcopy")
        .arg("--update-section")
        .arg(format!(".note.stapsdt={}", notes_file.display()))
        .arg(fake_jvm)
        .arg(path)
        .output()
        .expect("objcopy");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CPU time a process has used (user and system), from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_command = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_command.split_whitespace().collect();
    // utime and stime are fields 14 and 15; the state (field 3) is the first here.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// Starts `command` (a process mapping a libjvm.so), then checks that ustat took it in its
/// stride: under a second of its CPU time to find, parse and attach it (the machine is shared
/// and loaded, so wall time says little), its first row within 10 s (a hang never comes), the
/// next within 5 intervals.
fn answered_within_interval(ustat: &mut Ustat, mut command: Command, what: &str) -> Driven {
    let ustat_pid = ustat.child.id();
    let cpu_before = cpu_time(ustat_pid);
    let started = Instant::now();
    let process = Driven::spawn(&mut command);
    let first = next_row_of(ustat, process.pid());
    let cpu = cpu_time(ustat_pid) - cpu_before;
    assert!(
        first - started < Duration::from_secs(10),
        "{what}: the first row took {:?}",
        first - started
    );
    assert!(
        cpu < Duration::from_secs(1),
        "{what}: ustat used {cpu:?} of CPU"
    );
    let second = next_row_of(ustat, process.pid());
    assert!(
        second - first < Duration::from_millis(2500),
        "{what}: the next row took {:?}",
        second - first
    );
    eprintln!(
        "{what}: first row after {:?}, ustat used {cpu:?} of CPU",
        first - started
    );
    process
}

#[test]
fn hostile_files_leave_ustat_answering_small_and_alive() {
    let built = Built::build();
    let attacker = Attacker::create();
    let mut ustat = system_wide_ustat();
    let ustat_pid = ustat.child.id();

    // A Java home of the attacker's: <home>/lib/server/libjvm.so and <home>/release.
    let java_home = |libjvm_source: &Path| {
        let dir = attacker.dir();
        let server = dir.path().join("lib/server");
        std::fs::create_dir_all(&server).unwrap();
        for d in [dir.path().join("lib"), server.clone()] {
            attacker.give(&d);
        }
        let libjvm = server.join("libjvm.so");
        attacker.copy(libjvm_source, &libjvm);
        (dir, libjvm)
    };
    let map = |libjvm: &Path| {
        let mut command = attacker.command(&built.mapper);
        command.arg("map").arg(libjvm);
        command
    };

    // `release` is a FIFO: reading it would wait for a writer forever.
    let (home, libjvm) = java_home(&built.fake_jvm);
    let fifo = home.path().join("release");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: c_fifo is a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0);
    attacker.give(&fifo);
    let fifo_process = answered_within_interval(&mut ustat, map(&libjvm), "a FIFO release");

    // `release` is a link to /dev/zero: reading it would never end.
    let (home, libjvm) = java_home(&built.fake_jvm);
    let zero = home.path().join("release");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    attacker.give(&zero);
    let zero_process = answered_within_interval(&mut ustat, map(&libjvm), "release -> /dev/zero");

    // 100,000 notes, and the same file truncated and rewritten while ustat parses it.
    let notes_dir = tempfile::tempdir().unwrap();
    let many = notes_dir.path().join("many");
    write_many_notes(&built.fake_jvm, &many);
    let (_home, libjvm) = java_home(&many);
    let many_process = answered_within_interval(&mut ustat, map(&libjvm), "100,000 notes");
    let (_home, libjvm) = java_home(&many);
    let mut truncating = attacker.command(&built.mapper);
    truncating.arg("truncate").arg(&libjvm);
    let truncating_process =
        answered_within_interval(&mut ustat, truncating, "a file truncated while parsed");

    // A root process mapping a file the attacker owns: root's ustat does not trust it.
    let (_home, planted) = java_home(&built.fake_jvm);
    let mut root_mapper = Command::new(&built.mapper);
    root_mapper.arg("map").arg(&planted);
    let root_process = answered_within_interval(&mut ustat, root_mapper, "a planted libjvm.so");

    let peak = peak_rss(ustat_pid);
    assert!(peak < 100 << 20, "ustat's peak RSS is {} MB", peak >> 20);
    drop((fifo_process, zero_process, many_process, truncating_process));
    let root_pid = root_process.pid();
    drop(root_process);
    let stderr = stop_ustat(ustat);
    eprintln!("peak {} MB; ustat said: {stderr:#?}", peak >> 20);
    let expected = format!(
        "ustat: skipping {} of process {root_pid}: it is owned by user {}, neither root nor \
         the process's user 0",
        planted.display(),
        attacker.uid
    );
    assert!(
        stderr.contains(&expected),
        "{expected:?} not in {stderr:#?}"
    );
}

#[test]
fn list_and_trace_refuse_what_they_cannot_use_at_once() {
    let built = Built::build();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: c_fifo is a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0);

    // ustat's output is read while it runs (a full pipe would stall it), with a deadline.
    let run = |args: &[&OsStr]| {
        let started = Instant::now();
        let mut command = Command::new(support::ustat_binary());
        command.args(args).stdin(std::process::Stdio::null());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(command.output()));
        let output = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("ustat {args:?} did not answer"))
            .unwrap();
        (
            output.status.code(),
            started.elapsed(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    let (code, elapsed, out, err) = run(&["list".as_ref(), fifo.as_os_str()]);
    assert_eq!(code, Some(4), "{err}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!(
            "ustat: {}: it is not a regular file but a FIFO\n",
            fifo.display()
        )
    );

    // 100,002 probes, one with a 70,000-byte name: listed whole, quickly, without a panic.
    let many = dir.path().join("many");
    write_many_notes(&built.fake_jvm, &many);
    let (code, elapsed, out, err) = run(&["list".as_ref(), many.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        elapsed < DEADLINE / 6,
        "listing 100,000 notes took {elapsed:?}"
    );
    eprintln!("listing 100,000 notes took {elapsed:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2 + 100_003, "{:?}", &lines[..3]);
    assert_eq!(
        lines[0],
        format!("{}: 100003 probes, 100003 sites", many.display())
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("  hotspot   {}  ", "n".repeat(70_000))))
    );
    for format in ["csv", "json"] {
        let (code, _, out, err) = run(&[
            "list".as_ref(),
            "--format".as_ref(),
            format.as_ref(),
            many.as_os_str(),
        ]);
        assert_eq!(code, Some(0), "{format}: {err}");
        assert!(out.contains(&"n".repeat(70_000)), "{format}");
    }

    // `trace FILE -p PID` where PID does not map FILE.
    let unrelated = Driven::spawn(Command::new(&built.mapper).args(["map", "/bin/true"]));
    let pid = unrelated.pid().to_string();
    let (code, _, out, err) = run(&[
        "trace".as_ref(),
        built.fake_jvm.as_os_str(),
        "-p".as_ref(),
        pid.as_ref(),
    ]);
    assert_eq!(code, Some(4), "{err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!(
            "ustat: process {pid} does not map {}\n",
            built.fake_jvm.display()
        )
    );
}
