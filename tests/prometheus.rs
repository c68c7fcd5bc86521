//! `ustat --prometheus` end to end: Debian's real Prometheus scrapes ustat every second while
//! a Python and a JVM do a known amount of work, and its own query API must say exactly that
//! much; `promtool` accepts what ustat serves; a thousand short Pythons leave ustat's memory
//! and series where they were. Needs root and the `prometheus` package (scripts/setup).

mod support;

use std::{
    collections::HashSet,
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use support::{
    Ustat,
    interpreters::{DEBIAN_PYTHON, python},
    jvm::{Jvm, java},
    poll, run_ustat,
};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

/// Whether Debian's prometheus package is installed; says why the test skips otherwise.
fn have_prometheus() -> bool {
    let have = Path::new(PROMETHEUS).exists() && Path::new(PROMTOOL).exists();
    if !have {
        eprintln!(
            "skipped: {PROMETHEUS} or {PROMTOOL} missing (scripts/setup installs prometheus)"
        );
    }
    have
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// GET `url`; the body of a 200 answer, `None` for anything else (not up yet).
fn get(url: &str) -> Option<String> {
    let mut response = ureq::get(url).call().ok()?;
    response.body_mut().read_to_string().ok()
}

/// `ustat --prometheus 127.0.0.1:PORT ARGS`, returned once it has attached.
fn ustat_serving(port: u16, args: &[&str]) -> Ustat {
    let address = format!("127.0.0.1:{port}");
    let mut all = vec!["--prometheus", address.as_str()];
    all.extend_from_slice(args);
    let mut ustat = Ustat::spawn(&all);
    ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
    ustat
}

fn scrape(port: u16) -> String {
    poll("a scrape of ustat", || {
        get(&format!("http://127.0.0.1:{port}/metrics"))
    })
}

/// The sample lines of a scrape (no HELP or TYPE).
fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

/// Debian's Prometheus, scraping one target every second, storing in its own directory.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target_port: u16) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-prometheus-")
            .tempdir()
            .unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
                 scrape_configs:\n  - job_name: ustat\n    static_configs:\n      \
                 - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prometheus = Self {
            child,
            port,
            _dir: dir,
        };
        poll("prometheus to be ready", || {
            get(&format!("http://127.0.0.1:{port}/-/ready"))
        });
        prometheus
    }

    /// The value of an instant query that returns one number, `None` while it returns none.
    fn value(&self, query: &str) -> Option<f64> {
        let mut response = ureq::get(&format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .query("query", query)
            .call()
            .ok()?;
        let body: serde_json::Value =
            serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()?;
        assert_eq!(body["status"], "success", "{query}: {body}");
        let result = body["data"]["result"].as_array()?;
        assert!(result.len() <= 1, "{query}: one series expected: {body}");
        result.first()?["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `query` is exactly `expected`, failing at once if it goes past it.
    fn wait_for_exactly(&self, query: &str, expected: f64) {
        poll(&format!("{query} to reach {expected}"), || {
            let value = self.value(query)?;
            assert!(value <= expected, "{query} = {value}, more than {expected}");
            (value == expected).then_some(())
        });
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_queries_show_exactly_the_gcs_and_class_loads_done() {
    if !have_prometheus() {
        return;
    }
    const GCS: u64 = 7;
    const CLASSES: u64 = 9;
    let mut python = python(Path::new(DEBIAN_PYTHON));
    let mut jvm = Jvm::start(java(), &[]);
    let port = free_port();
    let pids = format!("{},{}", python.pid(), jvm.pid());
    let mut ustat = ustat_serving(port, &["-i", "1", "-p", &pids]);
    let prometheus = Prometheus::start(port);
    // Both processes are in Prometheus (at 0: nothing done since ustat attached) before
    // the work starts.
    let python_gcs = format!("ustat_gc_pause_seconds_count{{pid=\"{}\"}}", python.pid());
    let jvm_classes = format!("ustat_classes_loaded_total{{pid=\"{}\"}}", jvm.pid());
    prometheus.wait_for_exactly(&python_gcs, 0.0);
    prometheus.wait_for_exactly(&jvm_classes, 0.0);

    assert_eq!(python.send(&format!("gc {GCS}")), "ok");
    jvm.send(&format!("load {CLASSES}"));

    prometheus.wait_for_exactly(
        &format!("sum(ustat_gc_total{{pid=\"{}\"}})", python.pid()),
        GCS as f64,
    );
    prometheus.wait_for_exactly(
        &format!("ustat_gc_total{{pid=\"{}\",kind=\"gen2\"}}", python.pid()),
        GCS as f64,
    );
    prometheus.wait_for_exactly(&python_gcs, GCS as f64);
    prometheus.wait_for_exactly(&jvm_classes, CLASSES as f64);
    prometheus.wait_for_exactly(
        &format!(
            "ustat_up{{pid=\"{}\",runtime=\"python\",command=\"python3.11 workload.py\"}}",
            python.pid()
        ),
        1.0,
    );
    // A category the runtime does not have is absent, not 0: CPython loads no classes.
    assert_eq!(
        prometheus.value(&format!(
            "ustat_classes_loaded_total{{pid=\"{}\"}}",
            python.pid()
        )),
        None
    );

    // promtool, from the same package, accepts what ustat serves.
    let text = scrape(port);
    // It traces a Python and a JVM: their probe sites are attached.
    let attached: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ustat_probes_attached "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ustat_probes_attached line: {text}"));
    assert!(attached > 0, "no probe site attached: {text}");
    let mut promtool = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // SIGTERM ends it cleanly, as a service manager stops it.
    ustat.signal(libc::SIGTERM);
    let status = ustat.wait();
    assert!(status.success(), "{status:?}: {:?}", ustat.stderr.rest());
}

#[test]
fn scrapes_answer_at_once_also_while_ustat_attaches() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut ustat = Ustat::spawn(&["--prometheus", address.as_str(), "-i", "0.5"]);
    // From the first answer until ustat has read the kernel once, every scrape is quick.
    let url = format!("http://127.0.0.1:{port}/metrics");
    let start = Instant::now();
    loop {
        let asked = Instant::now();
        if let Some(text) = get(&url) {
            assert!(
                asked.elapsed() < Duration::from_millis(500),
                "a scrape took {:?}",
                asked.elapsed()
            );
            if text.lines().any(|l| l == "ustat_ready 1") {
                break;
            }
            assert!(text.lines().any(|l| l == "ustat_ready 0"), "{text}");
        }
        assert!(start.elapsed() < support::DEADLINE, "ustat never got ready");
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(get(&format!("http://127.0.0.1:{port}/other")), None);
    ustat.signal(libc::SIGTERM);
    assert!(ustat.wait().success());
}

#[test]
fn an_address_in_use_or_malformed_is_one_line_and_exit_2() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (code, stdout, stderr) = run_ustat(&["--prometheus", address.as_str()]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("ustat: cannot listen on {address}: Address already in use (os error 98)\n")
    );
    for bad in ["9477", "127.0.0.1:port", "::"] {
        let (code, _, stderr) = run_ustat(&["--prometheus", bad]);
        assert_eq!(code, 2, "{bad}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{bad}: {stderr}");
        assert!(stderr.starts_with("ustat: invalid value"), "{stderr}");
    }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Runs `count` short Pythons, `parallel` at a time, each collecting once and living long
/// enough (0.2 s) for ustat's discovery (every 0.1 s) to see most of them. Returns their pids.
fn short_pythons(count: usize, parallel: usize) -> Vec<u32> {
    let mut pids = Vec::with_capacity(count);
    let mut running: Vec<Child> = Vec::new();
    while pids.len() < count || !running.is_empty() {
        running.retain_mut(|c| c.try_wait().ok().flatten().is_none());
        while running.len() < parallel && pids.len() < count {
            let child = Command::new(DEBIAN_PYTHON)
                .args([
                    "-S",
                    "-E",
                    "-c",
                    "import gc, time; gc.collect(); time.sleep(0.2)",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("start python3.11");
            pids.push(child.id());
            running.push(child);
        }
        thread::sleep(Duration::from_millis(5));
    }
    pids
}

/// The pids in the `pid` labels of a scrape.
fn pids_in(text: &str) -> HashSet<u32> {
    text.lines()
        .filter_map(|l| l.split("pid=\"").nth(1)?.split('"').next()?.parse().ok())
        .collect()
}

#[test]
fn a_thousand_short_pythons_leave_memory_and_series_where_they_were() {
    let port = free_port();
    // System-wide (short processes are attached by file) and quick to see them.
    let ustat = ustat_serving(port, &["-i", "0.1", "--runtime", "python"]);
    let ustat_pid = ustat.child.id();
    // A scraper, as Prometheus would be (exited processes' series go once scraped), that
    // also notes which pids it saw.
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut seen = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                seen.extend(pids_in(&scrape(port)));
                thread::sleep(Duration::from_millis(100));
            }
            seen
        })
    };
    // A first round grows what grows once (hash tables, allocator arenas); the baseline is
    // taken after it, when its processes' series are gone.
    let warmup = short_pythons(200, 10);
    let ours = |text: &str, pids: &[u32]| {
        let mine: HashSet<u32> = pids.iter().copied().collect();
        pids_in(text).intersection(&mine).count()
    };
    poll("the warm-up's series to go", || {
        (ours(&scrape(port), &warmup) == 0).then_some(())
    });
    let health_lines = |text: &str| samples(text).iter().filter(|l| !l.contains("pid=")).count();
    let before_text = scrape(port);
    let rss_before = rss_kib(ustat_pid);

    let churn = short_pythons(1000, 10);
    poll("the churn's series to go", || {
        (ours(&scrape(port), &churn) == 0).then_some(())
    });
    let after_text = scrape(port);
    let rss_after = rss_kib(ustat_pid);
    stop.store(true, Ordering::Relaxed);
    let seen = scraper.join().unwrap();

    // ustat did see them: most lived two of its intervals.
    let seen_ours = churn.iter().filter(|p| seen.contains(p)).count();
    assert!(seen_ours >= 500, "only {seen_ours} of 1000 had series");
    assert_eq!(health_lines(&after_text), health_lines(&before_text));
    // Other tests' Pythons may come and go meanwhile; none of ours is left.
    assert_eq!(ours(&after_text, &churn), 0);
    // 2 MiB of slack for the allocator: glibc's malloc keeps freed chunks in per-thread
    // arenas and gives pages back only from the top of a heap, so the same live data sits on
    // more or fewer resident pages from one moment to the next (about 1 MiB here, after the
    // warm-up). What ustat keeps per process (its series; the source's record of it: command,
    // arguments, the lines of what is not traced, names) is a few KiB, so keeping the 1,000
    // processes' would pass it; their series are checked one by one above.
    assert!(
        rss_after <= rss_before + 2048,
        "ustat's memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    eprintln!("ustat RSS {rss_before} KiB -> {rss_after} KiB; {seen_ours} of 1000 seen");
    support::stop(ustat);
}

/// The systemd unit in assets/: the value of its `key=` line.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("assets/ustat.service has no {key}="))
        .to_string()
}

#[test]
fn the_service_unit_runs_ustat_with_only_its_capabilities() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/ustat.service"),
    )
    .unwrap();
    // systemd's own check of the unit, with ExecStart pointing at this build.
    let dir = tempfile::tempdir().unwrap();
    let checked_unit = dir.path().join("ustat.service");
    std::fs::write(
        &checked_unit,
        unit.replace(
            "/usr/local/bin/ustat",
            &support::ustat_binary().display().to_string(),
        ),
    )
    .unwrap();
    if Path::new("/usr/bin/systemd-analyze").exists() {
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&checked_unit)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Its command line, on a free port, as root limited to its capability bounding set.
    let bounding: Vec<String> = unit_value(&unit, "CapabilityBoundingSet")
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let exec = unit_value(&unit, "ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/ustat"));
    let port = free_port();
    let mut args = vec![
        format!("--bounding-set=-all,{}", bounding.join(",")),
        "--".to_string(),
        support::ustat_binary().display().to_string(),
    ];
    args.extend(words.map(|w| {
        if w.starts_with("127.0.0.1:") {
            format!("127.0.0.1:{port}")
        } else if w == "15" {
            "0.5".to_string() // the interval, shorter for the test
        } else {
            w.to_string()
        }
    }));
    let mut python = python(Path::new(DEBIAN_PYTHON));
    let mut ustat = Ustat::spawn_program("setpriv", &args);
    ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
    let up = format!(
        "ustat_up{{pid=\"{}\",runtime=\"python\",command=\"python3.11 workload.py\"}} 1",
        python.pid()
    );
    poll("the python in the metrics", || {
        scrape(port).lines().any(|l| l == up).then_some(())
    });
    assert_eq!(python.send("gc 2"), "ok");
    let gcs = format!(
        "ustat_gc_total{{pid=\"{}\",runtime=\"python\",command=\"python3.11 workload.py\",kind=\"gen2\"}} 2",
        python.pid()
    );
    poll("2 GCs in the metrics", || {
        scrape(port).lines().any(|l| l == gcs).then_some(())
    });
    // systemctl stop sends SIGTERM (KillSignal=).
    assert_eq!(unit_value(&unit, "KillSignal"), "SIGTERM");
    ustat.signal(libc::SIGTERM);
    let status = ustat.wait();
    assert!(status.success(), "{status:?}: {:?}", ustat.stderr.rest());
}

/// A cgroup named as Docker names a container's (cgroup v1 `pids`, `/docker/<id>`), removed
/// when dropped; `None` where this host has no such hierarchy to write.
struct DockerLikeCgroup {
    path: std::path::PathBuf,
}

impl DockerLikeCgroup {
    fn create(id: &str) -> Option<Self> {
        let parent = Path::new("/sys/fs/cgroup/pids/docker");
        let path = parent.join(id);
        std::fs::create_dir_all(&path).ok()?;
        Some(Self { path })
    }

    fn enter(&self, pid: u32) {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for DockerLikeCgroup {
    fn drop(&mut self) {
        // Its process has been killed by now; an empty cgroup can be removed.
        // Polled without panicking: this may run while a failed test unwinds.
        let start = Instant::now();
        while std::fs::remove_dir(&self.path).is_err() && start.elapsed() < support::DEADLINE {
            thread::sleep(Duration::from_millis(10));
        }
        // The parent too, unless something else uses it.
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[test]
fn a_process_in_a_container_cgroup_is_labelled_with_the_container() {
    let id = format!("{:0>64}", format!("{:x}", std::process::id()) + "c0ffee");
    let Some(cgroup) = DockerLikeCgroup::create(&id) else {
        eprintln!("skipped: cannot create a cgroup under /sys/fs/cgroup/pids/docker here");
        return;
    };
    let mut python = python(Path::new(DEBIAN_PYTHON));
    cgroup.enter(python.pid());
    let port = free_port();
    let pid = python.pid().to_string();
    let ustat = ustat_serving(port, &["-i", "0.5", "-p", &pid]);
    assert_eq!(python.send("gc 1"), "ok");
    let line = format!(
        "ustat_gc_total{{pid=\"{pid}\",runtime=\"python\",command=\"python3.11 workload.py\",container=\"{}\",kind=\"gen2\"}} 1",
        &id[..12]
    );
    poll("the GC with its container label", || {
        scrape(port).lines().any(|l| l == line).then_some(())
    });
    support::stop(ustat);
    drop(python);
    drop(cgroup);
}
