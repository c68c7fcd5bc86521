//! Dynamic USDT: probes a process registers at run time, as libstapsdt does (an ELF object
//! with a `.note.stapsdt` written into /tmp and dlopen()ed), listed by `ustat list PID` and
//! traced by `ustat trace PID` when they appear after tracing started.
//!
//! Debian 12 packages no libstapsdt, so the fixture (`tests/fixtures/stapsdt/dynamic.c`)
//! does what it does: writes the object with `mkstemps` into /tmp and dlopens it. The
//! object's bytes come from `probes.c`, built here with `<sys/sdt.h>`.

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use support::{Driven, Ustat, run_ustat};

struct Dynamic {
    dir: tempfile::TempDir,
    program: PathBuf,
    object: PathBuf,
}

fn gcc(args: &[&std::ffi::OsStr]) {
    let out = Command::new("gcc").args(args).output().expect("run gcc");
    assert!(
        out.status.success(),
        "gcc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Dynamic {
    fn build() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-stapsdt-")
            .tempdir()
            .expect("tempdir");
        let source = |name: &str| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/stapsdt")
                .join(name)
        };
        let program = dir.path().join("dynamic");
        let object = dir.path().join("probes.so");
        gcc(&[
            "-O2".as_ref(),
            "-shared".as_ref(),
            "-fPIC".as_ref(),
            "-o".as_ref(),
            object.as_os_str(),
            source("probes.c").as_os_str(),
        ]);
        gcc(&[
            "-O2".as_ref(),
            "-o".as_ref(),
            program.as_os_str(),
            source("dynamic.c").as_os_str(),
            "-ldl".as_ref(),
        ]);
        Self {
            dir,
            program,
            object,
        }
    }

    fn start(&self) -> Driven {
        Driven::spawn(Command::new(&self.program).arg(&self.object))
    }

    /// Runs it as user `nobody`, so the object it writes is that user's, not root's.
    fn start_as_nobody(&self) -> Driven {
        use std::os::unix::fs::PermissionsExt as _;
        let readable = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(self.dir.path(), readable.clone()).unwrap();
        std::fs::set_permissions(&self.object, readable).unwrap();
        Driven::spawn(
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(&self.program)
                .arg(&self.object),
        )
    }
}

/// The object the fixture wrote into /tmp, removed when the test ends (also on failure).
struct Registered(PathBuf);

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn register(app: &mut Driven) -> Registered {
    let answer = app.send("register");
    let path = answer
        .strip_prefix("registered ")
        .unwrap_or_else(|| panic!("register: {answer}"));
    Registered(PathBuf::from(path))
}

const FIRES: usize = 7;

#[test]
fn probes_registered_after_the_trace_started_are_traced() {
    let fixture = Dynamic::build();
    // As an ordinary user: the object is theirs (mkstemps: mode 0600), which ustat trusts
    // for their process.
    let mut app = fixture.start_as_nobody();
    let pid = app.pid().to_string();
    let mut ustat = Ustat::spawn(&["trace", "-p", &pid, "ustatdyn:fire"]);
    let attached = ustat
        .stderr
        .wait_for("ustat to start", |l| l.starts_with("ustat: tracing "));
    assert!(attached.contains("waiting for process"), "{attached}");
    assert_eq!(
        ustat.stdout.next("the header").as_deref(),
        Some("TIME_NS PID TID PROBE ARGS")
    );
    let registered = register(&mut app);
    {
        use std::os::unix::fs::MetadataExt as _;
        let metadata = std::fs::metadata(&registered.0).unwrap();
        assert_eq!((metadata.uid(), metadata.mode() & 0o777), (65534, 0o600));
    }
    let more = ustat.stderr.wait_for("ustat to attach the new probe", |l| {
        l.contains("more probe sites")
    });
    assert!(more.contains(&registered.0.display().to_string()), "{more}");
    assert_eq!(app.send(&format!("fire {FIRES}")), format!("fired {FIRES}"));
    let lines = ustat.stdout.take(FIRES, "a line per fire");
    for (i, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[1], pid, "{line}");
        assert_eq!(fields[3], "ustatdyn:fire", "{line}");
        assert_eq!(fields[4], i.to_string(), "{line}");
    }
    support::stop(ustat);

    // `ustat list PID` shows the registered probe in its /tmp object.
    let (code, out, err) = run_ustat(&["list", &pid]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("{}:", registered.0.display()))
            && out
                .lines()
                .any(|l| l.contains("ustatdyn") && l.contains("fire")),
        "{out}"
    );
}

#[test]
fn a_registered_object_another_user_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let fixture = Dynamic::build();
    let mut app = fixture.start();
    let pid = app.pid().to_string();
    let mut ustat = Ustat::spawn(&["trace", &pid, "ustatdyn:fire"]);
    ustat
        .stderr
        .wait_for("ustat to start", |l| l.starts_with("ustat: tracing "));
    let answer = app.send("write");
    let written = Registered(PathBuf::from(
        answer
            .strip_prefix("written ")
            .unwrap_or_else(|| panic!("write: {answer}")),
    ));
    // Anyone could now rewrite it between ustat's parsing and attaching.
    std::fs::set_permissions(&written.0, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(app.send("load"), "loaded");
    let line = ustat
        .stderr
        .wait_for("ustat to look at the new object", |l| {
            l.contains("more probe sites") || l.contains("skipping")
        });
    assert_eq!(
        line,
        format!(
            "ustat: skipping {} of process {pid}: users other than its owner can write to it (mode 666)",
            written.0.display()
        )
    );
    support::stop(ustat);
}
