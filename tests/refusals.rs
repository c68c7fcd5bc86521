//! A probe the kernel refuses is visible everywhere, never a 0 that looks real: another tracer
//! holds a USDT site first with another semaphore offset (here none: a plain uprobe, opened
//! with a raw `perf_event_open` as any tracer would), so the kernel refuses ustat's probe there
//! (dmesg: `ref_ctr_offset mismatch`). The CSV leaves the probe's columns empty and stderr
//! says why in one line; the dashboard marks the row and its detail view names probe, file
//! and reason.

mod support;

use std::{
    ffi::CString,
    os::{
        fd::{FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
};

use support::{csv_ustat, fixtures::CProgram, poll, read_csv, tmux::Tmux, ustat_binary};

/// A uprobe on `offset` in `path` for `pid`, without a semaphore (`ref_ctr_offset` 0): what
/// a tracer that ignores USDT semaphores holds. Closed when dropped.
fn hold_site(path: &Path, offset: u64, pid: u32) -> OwnedFd {
    let perf_type: u32 = std::fs::read_to_string("/sys/bus/event_source/devices/uprobe/type")
        .expect("the uprobe PMU")
        .trim()
        .parse()
        .expect("its type");
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // perf_event_attr up to config2 (PERF_ATTR_SIZE_VER1, 72 bytes): type, size, config,
    // sample period, sample type, read format, flags, wakeup events, bp type, config1, config2.
    let mut attr = [0u8; 72];
    attr[0..4].copy_from_slice(&perf_type.to_ne_bytes());
    attr[4..8].copy_from_slice(&72u32.to_ne_bytes());
    // config: no return probe, ref_ctr_offset (config[63:32]) 0.
    attr[56..64].copy_from_slice(&(path.as_ptr() as u64).to_ne_bytes());
    attr[64..72].copy_from_slice(&offset.to_ne_bytes());
    // SAFETY: attr is a valid perf_event_attr of the size it states; it and the path it
    // points to outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            pid as libc::pid_t,
            -1,
            -1,
            8u64, // PERF_FLAG_FD_CLOEXEC
        )
    };
    assert!(
        fd >= 0,
        "perf_event_open: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// The file offset of `name`'s (only) site in `path`.
fn site_offset(path: &Path, name: &str) -> u64 {
    let probes = ustat::usdt::probes_in_file(path).expect("the fixture's probes");
    let probe = probes.iter().find(|p| p.name == name).expect("the probe");
    let target = probe.sites[0].target.as_ref().expect("a traceable site");
    assert!(
        target.semaphore_offset.is_some(),
        "the site has a semaphore"
    );
    target.offset
}

#[test]
fn a_refused_probe_leaves_its_columns_empty_and_says_why() {
    let fixture = CProgram::gated_gc();
    let mut program = fixture.start();
    let pid = program.pid();
    let _held = hold_site(
        &fixture.program,
        site_offset(&fixture.program, "gc__start"),
        pid,
    );

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("out.csv");
    let pid_text = pid.to_string();
    let mut ustat = csv_ustat(&csv, &["-p".as_ref(), pid_text.as_ref()]);
    let refusal = ustat.stderr.wait_for("the refusal on stderr", |l| {
        l.contains("cannot attach python:gc__start")
    });
    let file = fixture.program.display().to_string();
    assert!(
        refusal.starts_with("ustat: ")
            && refusal.contains(&file)
            && refusal.contains("another tracer")
            && refusal.contains("not traced"),
        "{refusal}"
    );
    // The process collects; its rows must not say it did not.
    for _ in 0..3 {
        assert_eq!(program.send("gc 10"), "gc 10");
    }
    poll("three rows of the process", || {
        let rows = read_csv(&csv);
        (rows.iter().filter(|r| r["pid"] == pid_text).count() >= 3).then_some(())
    });
    ustat.signal(libc::SIGINT);
    assert!(ustat.wait().success());
    // The stderr line came once, not once per interval.
    let rest = ustat.stderr.rest();
    assert!(
        !rest.iter().any(|l| l.contains("cannot attach")),
        "{rest:?}"
    );
    let rows = read_csv(&csv);
    let rows: Vec<_> = rows.iter().filter(|r| r["pid"] == pid_text).collect();
    for row in &rows {
        for column in [
            "gc_count",
            "gc_pause_ms_total",
            "gc_pause_ms_p99",
            "gc_pause_ms_max",
            "gc_gen0",
            "gc_gen1",
            "gc_gen2",
        ] {
            assert_eq!(row[column], "", "{column} in {row:?}");
        }
        // What the process's runtime has no probes for is empty too, not 0.
        assert_eq!(row["class_loaded"], "", "{row:?}");
    }
}

#[test]
fn the_dashboard_marks_a_refused_probe_and_names_it() {
    let fixture = CProgram::gated_gc();
    let program = fixture.start();
    let pid = program.pid();
    let _held = hold_site(
        &fixture.program,
        site_offset(&fixture.program, "gc__start"),
        pid,
    );

    let command = format!("{} -p {pid} -i 0.5; sleep 600", ustat_binary().display());
    let tmux = Tmux::start(fixture.dir.path(), 160, 40, &command);
    let marked = format!("{pid}!");
    let screen = tmux.wait_for("the row marked", |s| {
        s.lines()
            .any(|l| l.trim_start_matches('▶').split_whitespace().next() == Some(&marked))
    });
    let row = screen
        .lines()
        .find(|l| l.contains(&marked))
        .unwrap()
        .to_string();
    assert!(row.contains("python"), "{row}");
    let detail = tmux.press("Enter", "the detail view's refusal", |s| {
        s.contains("! refused: cannot attach python:gc__start in")
    });
    // The line names the file and the reason (it wraps at the view's width).
    let flat: String = detail
        .lines()
        .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace()))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(flat.contains("another tracer"), "{detail}");
    assert!(
        flat.contains(
            &fixture
                .program
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string()
        ),
        "{detail}"
    );
}
