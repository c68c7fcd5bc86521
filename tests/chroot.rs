//! `-p PID` on a chrooted process (chroot without pivot_root, in ustat's mount namespace:
//! systemd's `RootDirectory=`, schroot, build sandboxes). The kernel shows such a process's
//! mapped files from ustat's root, not from the process's; ustat finds them there, checks
//! they are the mapped files, and counts the process's work exactly.
//!
//! The root is a temporary directory with `/usr`, `/etc` and `/dev` bound into it read-only
//! (and a fresh `/proc`), so nothing in the chroot can change the host's files, and the
//! mounts are detached before the directory is removed.

mod support;

use std::{
    ffi::{CString, OsStr},
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use support::{Driven, csv_ustat, jvm::BASE_FLAGS, read_csv, stop, sum_for};

/// The system JDK as the chrooted process sees it (under the bound `/usr`).
const JAVA: &str = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java";

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// A root directory with the host's `/usr`, `/etc`, `/dev` bound read-only and its own
/// `/proc`; the mounts are detached when it is dropped, before the directory goes.
struct ChrootDir {
    /// Mount points, in the order they were mounted.
    mounts: Vec<PathBuf>,
    // Dropped after `mounts` are detached (see `Drop`).
    dir: tempfile::TempDir,
}

impl ChrootDir {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-chroot-")
            .tempdir()
            .unwrap();
        let mut root = Self {
            mounts: Vec::new(),
            dir,
        };
        for host in ["/usr", "/etc", "/dev"] {
            root.bind_read_only(Path::new(host));
        }
        let proc_dir = root.path().join("proc");
        std::fs::create_dir(&proc_dir).unwrap();
        root.mount(&proc_dir, Some(c"proc"), c"proc", 0);
        // Debian's /lib, /lib64 and /bin are links into /usr.
        for (link, target) in [
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("bin", "usr/bin"),
        ] {
            std::os::unix::fs::symlink(target, root.path().join(link)).unwrap();
        }
        std::fs::create_dir(root.path().join("tmp")).unwrap();
        root
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn bind_read_only(&mut self, host: &Path) {
        let target = self.path().join(host.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&target).unwrap();
        let source = c_path(host);
        self.mount(&target, Some(&source), c"none", libc::MS_BIND);
        // A bind mount takes read-only only on a remount.
        let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
        // SAFETY: valid C strings; no data argument.
        let remounted = unsafe {
            libc::mount(
                std::ptr::null(),
                c_path(&target).as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            )
        };
        assert_eq!(
            remounted,
            0,
            "remount {} read-only: {}",
            target.display(),
            std::io::Error::last_os_error()
        );
    }

    fn mount(
        &mut self,
        target: &Path,
        source: Option<&std::ffi::CStr>,
        kind: &std::ffi::CStr,
        flags: libc::c_ulong,
    ) {
        let target_c = c_path(target);
        // SAFETY: valid C strings that outlive the call; no data argument.
        let mounted = unsafe {
            libc::mount(
                source.map_or(std::ptr::null(), |s| s.as_ptr()),
                target_c.as_ptr(),
                kind.as_ptr(),
                flags,
                std::ptr::null(),
            )
        };
        assert_eq!(
            mounted,
            0,
            "mount {}: {}",
            target.display(),
            std::io::Error::last_os_error()
        );
        self.mounts.push(target.to_path_buf());
    }
}

impl Drop for ChrootDir {
    fn drop(&mut self) {
        for target in self.mounts.iter().rev() {
            // SAFETY: a valid C string. MNT_DETACH takes the mount out of the tree at once,
            // so removing the directory afterwards cannot reach the host's files.
            let detached = unsafe { libc::umount2(c_path(target).as_ptr(), libc::MNT_DETACH) };
            if detached != 0 {
                // Keep the directory rather than remove anything beneath a mount.
                eprintln!(
                    "could not detach {}: {}; leaving {} in place",
                    target.display(),
                    std::io::Error::last_os_error(),
                    self.dir.path().display()
                );
                let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
                let _ = dir.keep();
                return;
            }
        }
    }
}

#[test]
fn a_chrooted_jvm_under_dash_p_counts_exactly() {
    const GCS: u64 = 5;
    const CLASSES: u64 = 7;
    let root = ChrootDir::new();
    let classes = root.path().join("work");
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/jvm");
    let out = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(sources.join("Workload.java"))
        .arg(sources.join("Payload.java"))
        .output()
        .expect("run javac (scripts/setup installs openjdk-17-jdk-headless)");
    assert!(
        out.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut jvm = Driven::spawn(
        Command::new("chroot")
            .arg(root.path())
            .arg(JAVA)
            .args(BASE_FLAGS)
            .args(["-XX:-UsePerfData", "-cp", "/work", "Workload"]),
    );
    for warmup in ["gc 1", "load 1"] {
        assert_eq!(jvm.send(warmup), "ok", "warm-up {warmup}");
    }
    // The chroot execs java: the pid is the JVM's. Its files are shown from the host.
    let pid = jvm.pid();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let root_text = root.path().to_str().unwrap();
    assert!(
        maps.lines()
            .any(|l| l.ends_with("/libjvm.so") && l.contains(root_text)),
        "the JVM's libjvm.so is shown under {root_text}"
    );

    let csv = root.path().join("ustat.csv");
    let pid_text = pid.to_string();
    let ustat = csv_ustat(&csv, &[OsStr::new("-p"), OsStr::new(&pid_text)]);
    assert_eq!(jvm.send(&format!("gc {GCS}")), "ok");
    assert_eq!(jvm.send(&format!("load {CLASSES}")), "ok");
    stop(ustat);
    drop(jvm);

    let rows = read_csv(&csv);
    assert!(!rows.is_empty(), "ustat wrote no rows");
    assert!(
        rows.iter()
            .all(|r| r["pid"] == pid_text && r["runtime"] == "jvm")
    );
    assert_eq!(sum_for(&rows, pid, "gc_count"), GCS);
    assert_eq!(
        sum_for(&rows, pid, "gc_major"),
        GCS,
        "System.gc() is a full GC"
    );
    assert_eq!(sum_for(&rows, pid, "class_loaded"), CLASSES);
}
