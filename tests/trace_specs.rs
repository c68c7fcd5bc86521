//! `ustat trace SPEC...` against the real kernel: a C fixture calls functions a known number
//! of times with known arguments after ustat attached, and the lines (or counts, or call
//! times) must be exactly those. Then Redis's `createStringObject` and HotSpot's
//! `class__loaded`, as the article that started this project shows them.

mod support;

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use support::{Driven, Ustat, fixtures::CProgram, jvm, poll, run_ustat};

/// `ustat trace ARGS...`, returned once its probes are attached.
fn trace(args: &[&str]) -> Ustat {
    let mut all: Vec<OsString> = vec!["trace".into()];
    all.extend(args.iter().map(OsString::from));
    let mut ustat = Ustat::spawn(&all);
    let attached = ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
    assert!(
        attached.contains("through uprobe_multi links"),
        "{attached}"
    );
    ustat
}

/// The VALUES column of each event line: what follows `TIME PID TID COMM FUNC`.
fn values(line: &str) -> (String, String) {
    let fields: Vec<&str> = line.splitn(6, ' ').collect();
    assert!(fields.len() >= 5, "not an event line: {line}");
    assert!(
        fields[0].len() == 15 && fields[0].as_bytes()[2] == b':',
        "not a time: {line}"
    );
    (
        fields[4].to_string(),
        fields.get(5).copied().unwrap_or("").to_string(),
    )
}

/// Runs the workload, quits the fixture (ustat ends when its -p process does), and returns
/// ustat's stdout lines after the header.
fn finish(mut fixture: Driven, mut ustat: Ustat, commands: &[&str]) -> Vec<String> {
    for command in commands {
        assert_eq!(fixture.send(command), "ok", "{command}");
    }
    let _ = fixture.try_send("quit");
    let _ = fixture.child.wait();
    let status = ustat.wait();
    assert!(
        status.success(),
        "ustat: {status:?}, stderr {:?}",
        ustat.stderr.rest()
    );
    ustat.stdout.rest()
}

fn spec(kind: &str, program: &Path, rest: &str) -> String {
    format!("{kind}:{}:{rest}", program.display())
}

#[test]
fn entry_arguments_strings_and_filters() {
    let calls = CProgram::trace_calls();
    let fixture = calls.start();
    let pid = fixture.pid().to_string();
    let greet = spec("p", &calls.program, r#"ustat_greet "%s x%d", arg1, arg2"#);
    let bob = spec(
        "p",
        &calls.program,
        r#"ustat_greet (arg1 == "bob") "only %s", arg1"#,
    );
    let store = spec(
        "p",
        &calls.program,
        r#"ustat_store (arg3 > 100 && arg2 == 4) "%s=%ld", arg1:arg2, arg3"#,
    );
    let ustat = trace(&["-p", &pid, &greet, &bob, &store]);
    let lines = finish(
        fixture,
        ustat,
        &[
            "greet alice 3",
            "greet bob 2",
            "store octi 4",
            "store toolong 4",
        ],
    );
    assert_eq!(lines[0], "TIME PID TID COMM FUNC VALUES");
    let got: Vec<(String, String)> = lines[1..].iter().map(|l| values(l)).collect();
    let expect: Vec<(String, String)> = [
        ("ustat_greet", "alice x0"),
        ("ustat_greet", "alice x1"),
        ("ustat_greet", "alice x2"),
        ("ustat_greet", "bob x0"),
        ("ustat_greet", "only bob"),
        ("ustat_greet", "bob x1"),
        ("ustat_greet", "only bob"),
        ("ustat_store", "octi=101"),
        ("ustat_store", "octi=102"),
    ]
    .iter()
    .map(|(f, v)| (f.to_string(), v.to_string()))
    .collect();
    // Two probes on one function fire in attach order; compare as multisets per call.
    let mut sorted_got = got.clone();
    sorted_got.sort();
    let mut sorted_expect = expect.clone();
    sorted_expect.sort();
    assert_eq!(sorted_got, sorted_expect, "{lines:#?}");
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[3], "trace_calls", "COMM of {line}");
    }
}

#[test]
fn return_values_and_wildcards() {
    let calls = CProgram::trace_calls();
    let fixture = calls.start();
    let pid = fixture.pid().to_string();
    let ret = spec("r", &calls.program, r#"ustat_greet "%d", retval"#);
    let wild = spec("p", &calls.program, r#"ustat_wild_* "%d", arg1"#);
    let ustat = trace(&["-p", &pid, &ret, &wild]);
    let attached = ustat.stderr.seen.last().cloned().unwrap_or_default();
    assert!(
        attached.starts_with("ustat: tracing 4 probes at 4 sites"),
        "{attached}"
    );
    let lines = finish(fixture, ustat, &["greet x 3", "wild 2"]);
    let got: Vec<(String, String)> = lines[1..].iter().map(|l| values(l)).collect();
    let expect: Vec<(String, String)> = [
        ("ustat_greet", "0"),
        ("ustat_greet", "2"),
        ("ustat_greet", "4"),
        ("ustat_wild_a", "0"),
        ("ustat_wild_b", "0"),
        ("ustat_wild_c", "0"),
        ("ustat_wild_a", "1"),
        ("ustat_wild_b", "1"),
        ("ustat_wild_c", "1"),
    ]
    .iter()
    .map(|(f, v)| (f.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, expect, "{lines:#?}");
}

#[test]
fn counts_and_latency_in_the_kernel() {
    let calls = CProgram::trace_calls();
    let fixture = calls.start();
    let pid = fixture.pid().to_string();
    let greet = spec("p", &calls.program, r#"ustat_greet "%s", arg1"#);
    let store = spec("p", &calls.program, r#"ustat_store "%s", arg1:arg2"#);
    let ustat = trace(&["-p", &pid, "--count", &greet, &store]);
    let lines = finish(
        fixture,
        ustat,
        &["greet alice 5", "greet bob 2", "store octi 3"],
    );
    assert_eq!(
        lines,
        vec![
            "COUNT FUNC VALUES",
            "5 ustat_greet alice",
            "3 ustat_store octi",
            "2 ustat_greet bob",
        ]
    );

    let fixture = calls.start();
    let pid = fixture.pid().to_string();
    let sleep = spec("p", &calls.program, "ustat_sleep");
    let ustat = trace(&["-p", &pid, "--latency", &sleep]);
    let lines = finish(fixture, ustat, &["sleep 7 2000"]);
    let summary = &lines[0];
    assert!(
        summary.starts_with("ustat_sleep: 7 calls, p50 "),
        "{lines:#?}"
    );
    // Every call slept at least 2 ms: the histogram's rows hold all 7, none below 1 ms.
    let counted: u64 = lines[2..]
        .iter()
        .map(|l| {
            let (range, rest) = l.split_once(':').unwrap();
            let low: u64 = range.trim().split(' ').next().unwrap().parse().unwrap();
            let count: u64 = rest.trim().split(' ').next().unwrap().parse().unwrap();
            assert!(count == 0 || low >= 1 << 20, "{l}");
            count
        })
        .sum();
    assert_eq!(counted, 7, "{lines:#?}");
}

#[test]
fn json_events_and_summaries() {
    let calls = CProgram::trace_calls();
    let fixture = calls.start();
    let pid = fixture.pid().to_string();
    let greet = spec("p", &calls.program, r#"ustat_greet "%s %d", arg1, arg2"#);
    let ustat = trace(&["-p", &pid, "--json", &greet]);
    let fixture_pid = fixture.pid();
    let lines = finish(fixture, ustat, &["greet carol 2"]);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for (i, line) in lines.iter().enumerate() {
        let event: serde_json::Value = serde_json::from_str(line).expect("a JSON object");
        assert_eq!(event["pid"], fixture_pid);
        assert_eq!(event["tid"], fixture_pid);
        assert_eq!(event["comm"], "trace_calls");
        assert_eq!(event["probe"], "ustat_greet");
        assert_eq!(event["args"], serde_json::json!(["carol", i]));
        assert_eq!(event["text"], format!("carol {i}"));
        assert!(event["time_ns"].as_u64().is_some_and(|t| t > 0));
    }

    let fixture = calls.start();
    let pid = fixture.pid().to_string();
    let sleep = spec("p", &calls.program, "ustat_sleep");
    let ustat = trace(&["-p", &pid, "--json", "--latency", &sleep]);
    let lines = finish(fixture, ustat, &["sleep 3 1000"]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let row: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(row["probe"], "ustat_sleep");
    assert_eq!(row["calls"], 3);
    let max = row["max_ns"].as_u64().unwrap();
    let p99 = row["p99_ns"].as_u64().unwrap();
    assert!(max >= 1_000_000 && p99 <= max && row["total_ns"].as_u64().unwrap() >= 3_000_000);
}

#[test]
fn bad_specs_and_missing_functions() {
    let calls = CProgram::trace_calls();
    let path = calls.program.display().to_string();
    let (code, _, err) = run_ustat(&["trace", &format!(r#"p:{path}:ustat_greet "%d""#)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("ustat: bad probe spec `p:")
            && err.contains("the format has 1 conversions but 0 arguments follow it")
            && err.lines().count() == 1,
        "{err}"
    );
    let (code, _, err) = run_ustat(&["trace", &format!("p:{path}:no_such_function")]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(
        err.trim(),
        format!("ustat: no function matches `no_such_function` in {path}")
    );
    let (code, _, err) = run_ustat(&["trace", "p:nosuchlibrary:f"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no library libnosuchlibrary.so"), "{err}");
    let (code, _, err) = run_ustat(&["trace", "u::gc__begin"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no -p was given"), "{err}");
}

/// Debian's redis-server, copied into the test's directory (its own inode), on a private port.
struct Redis {
    _dir: tempfile::TempDir,
    binary: PathBuf,
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Option<Self> {
        let installed = Path::new("/usr/bin/redis-server");
        if !installed.exists() || !Path::new("/usr/bin/redis-cli").exists() {
            eprintln!(
                "skipping: redis-server or redis-cli is not installed (scripts/setup installs them)"
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("ustat-redis-")
            .tempdir()
            .unwrap();
        let binary = dir.path().join("redis-server");
        std::fs::copy(installed, &binary).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&binary)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--daemonize", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Self {
            _dir: dir,
            binary,
            child,
            port,
        };
        poll("redis to answer PING", || {
            (redis.cli(&["PING"]).trim() == "PONG").then_some(())
        });
        Some(redis)
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn redis_create_string_object_prints_each_argument_exactly() {
    let Some(redis) = Redis::start() else { return };
    let pid = redis.child.id().to_string();
    let spec = format!(
        r#"p:{}:createStringObject "%s", arg1:arg2"#,
        redis.binary.display()
    );
    let mut ustat = trace(&["-p", &pid, &spec]);
    assert_eq!(
        ustat.stdout.next("the header").as_deref(),
        Some("TIME PID TID COMM FUNC VALUES")
    );
    assert_eq!(redis.cli(&["SET", "octi", "fest"]).trim(), "OK");
    assert_eq!(redis.cli(&["GET", "octi"]).trim(), "fest");
    // GET is the last command: its key is the last string we wait for.
    let mut seen = Vec::new();
    let mut octi = 0;
    while octi < 2 {
        let line = ustat
            .stdout
            .next("createStringObject lines")
            .expect("a line");
        let (func, value) = values(&line);
        assert_eq!(func, "createStringObject", "{line}");
        if value == "octi" {
            octi += 1;
        }
        seen.push(value);
    }
    ustat.signal(libc::SIGINT);
    assert!(ustat.wait().success());
    seen.extend(ustat.stdout.rest().iter().map(|l| values(l).1));
    // Each key and value is exactly its bytes, one line per call: no protocol bytes after.
    let with_keys: Vec<&String> = seen
        .iter()
        .filter(|v| v.contains("octi") || v.contains("fest"))
        .collect();
    assert_eq!(with_keys, vec!["octi", "fest", "octi"], "{seen:#?}");
    assert!(
        seen.iter().all(|v| !v.contains('\r') && !v.contains('?')),
        "{seen:#?}"
    );
}

#[test]
fn hotspot_class_loaded_names_as_text() {
    let mut jvm = jvm::Jvm::start(jvm::java(), &[]);
    let pid = jvm.pid().to_string();
    let mut ustat = trace(&[
        "-p",
        &pid,
        r#"u:jvm:hotspot:class__loaded "%s loader %d", arg1:arg2, arg3"#,
    ]);
    assert_eq!(
        ustat.stdout.next("the header").as_deref(),
        Some("TIME PID TID COMM FUNC VALUES")
    );
    jvm.send("load 3");
    let lines = ustat.stdout.take(3, "three class loads");
    for line in &lines {
        let (func, value) = values(line);
        assert_eq!(func, "hotspot:class__loaded", "{line}");
        assert!(value.starts_with("Payload loader "), "{line}");
    }
    ustat.signal(libc::SIGINT);
    assert!(ustat.wait().success());
    let rest = ustat.stdout.rest();
    assert!(
        rest.iter().all(|l| !values(l).1.starts_with("Payload")),
        "more Payload loads than 3: {rest:#?}"
    );
}

#[test]
fn the_older_form_prints_strings_the_runtime_is_known_to_pass() {
    let mut jvm = jvm::Jvm::start(jvm::java(), &[]);
    let pid = jvm.pid().to_string();
    let mut all: Vec<OsString> = vec!["trace".into(), pid.clone().into(), "class__loaded".into()];
    all.push("gc__begin".into());
    let mut ustat = Ustat::spawn(&all);
    ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
    assert_eq!(
        ustat.stdout.next("the header").as_deref(),
        Some("TIME_NS PID TID PROBE ARGS")
    );
    jvm.send("load 2");
    jvm.send("gc 1");
    let lines = ustat.stdout.take(3, "two class loads and a GC");
    for line in &lines[..2] {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[1], pid, "{line}");
        assert_eq!(
            &fields[3..5],
            ["hotspot:class__loaded", "Payload"],
            "{line}"
        );
    }
    // A probe without strings still prints its arguments as numbers.
    let gc: Vec<&str> = lines[2].split(' ').collect();
    assert_eq!(gc[3], "hotspot:gc__begin", "{}", lines[2]);
    assert!(
        gc[4..].iter().all(|a| a.parse::<i64>().is_ok()),
        "{}",
        lines[2]
    );
    ustat.signal(libc::SIGINT);
    assert!(ustat.wait().success());
}
