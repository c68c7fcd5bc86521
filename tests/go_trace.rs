//! Go: the analysis of real Go binaries built by Debian's `go` (golang-go 1.19), and
//! `ustat trace` on a Go program calling `(*http.Client).Get` while its goroutine stacks grow
//! and move. Skips, saying why, where `go` is not installed (`scripts/setup` installs it).

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use support::Driven;
use ustat::{binary::Binary, golang::GoBinary};

/// The fixture built with these `-ldflags`, in its own directory.
struct GoFixture {
    _dir: tempfile::TempDir,
    program: PathBuf,
}

fn go() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/go");
    if path.exists() {
        Some(path)
    } else {
        println!("skipped: /usr/bin/go is missing (scripts/setup installs golang-go)");
        None
    }
}

impl GoFixture {
    /// Builds `tests/fixtures/go/httpget.go` offline (GOPATH mode, the standard library
    /// only), with its build cache in the test's own directory.
    fn build(go: &Path, ldflags: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ustat-go-")
            .tempdir()
            .expect("tempdir");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/go/httpget.go");
        let program = dir.path().join("httpget");
        let out = Command::new(go)
            .current_dir(dir.path())
            .env("GOCACHE", dir.path().join("cache"))
            .env("GOPATH", dir.path().join("gopath"))
            .env("GO111MODULE", "off")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "")
            .arg("build")
            .arg(format!("-ldflags={ldflags}"))
            .arg("-o")
            .arg(&program)
            .arg(&source)
            .output()
            .expect("run go build");
        assert!(
            out.status.success(),
            "go build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { _dir: dir, program }
    }

    fn start(&self) -> (Driven, String) {
        let driven = Driven::spawn(&mut Command::new(&self.program));
        let ready = driven.stdout.seen.last().cloned().unwrap_or_default();
        let url = ready
            .strip_prefix("ready ")
            .expect("the fixture says where its server is")
            .to_string();
        (driven, url)
    }
}

type FileElf<'d> = ustat::elf::Elf<'d, &'d ustat::elf::FileData<'d>>;

fn analyse<T>(program: &Path, f: impl for<'d> FnOnce(&GoBinary, &FileElf<'d>) -> T) -> T {
    let binary = Binary::open_given(program).expect("open the fixture");
    let data = binary.data();
    let elf = binary.elf(&data).expect("parse the fixture");
    let go = GoBinary::recognise(&elf)
        .expect("read its build info")
        .expect("recognised as Go");
    f(&go, &elf)
}

#[test]
fn go_binaries_are_analysed_from_build_info_symbols_dwarf_and_code() {
    let Some(go) = go() else { return };
    let fixture = GoFixture::build(&go, "");
    analyse(&fixture.program, |binary, elf| {
        assert!(
            binary.build.version.starts_with("go1."),
            "{:?}",
            binary.build
        );
        assert!(binary.register_abi());
        assert!(binary.has_dwarf());
        let get = binary
            .function(elf, "net/http.(*Client).Get")
            .expect("(*Client).Get");
        let names: Vec<(&str, &str)> = get
            .params
            .iter()
            .map(|p| (p.name.as_str(), p.type_name.as_str()))
            .collect();
        assert_eq!(names, [("c", "*net/http.Client"), ("url", "string")]);
        let registers = |p: &ustat::golang::GoValue| match &p.placement {
            ustat::golang::Placement::Registers(pieces) => {
                pieces.iter().map(|p| p.register).collect::<Vec<_>>()
            }
            other => panic!("{} not in registers: {other:?}", p.name),
        };
        assert_eq!(registers(&get.params[0]), ["rax"]);
        assert_eq!(registers(&get.params[1]), ["rbx", "rcx"]);
        assert!(get.params[1].is_string);
        // Results: (resp *Response, err error): resp in RAX at every RET.
        assert_eq!(registers(&get.results[0]), ["rax"]);
        assert_eq!(registers(&get.results[1]), ["rbx", "rcx"]);
        // Every RET the decoder found is a RET byte; and there is at least one.
        assert!(!get.returns.is_empty());
        let (start, end) = get.code.expect("out-of-line code");
        for &ret in &get.returns {
            assert!((start..end).contains(&ret));
        }
        // The entry probe goes past the stack check (`cmp 0x10(%r14),%rsp; jbe`: 6 bytes),
        // which restarts the function when its goroutine's stack must grow.
        assert_eq!(get.entry, Some(start + 6));
        // `http.Get` exists only inlined into main.main here, with its URL in registers at
        // each copy's entry, and calls (*Client).Get there.
        let inlined = binary
            .function(elf, "net/http.Get")
            .expect("net/http.Get, inlined");
        assert_eq!(inlined.code, None);
        assert!(!inlined.inlined.is_empty());
        for site in &inlined.inlined {
            assert_eq!(site.caller, "main.main");
            assert!(
                matches!(&site.args[0], ustat::golang::InlineArg::Registers(r) if r.len() == 2),
                "{site:?}"
            );
            assert!(
                binary
                    .callees_of(elf, site)
                    .contains(&"net/http.(*Client).Get".to_string()),
                "{:?}",
                binary.callees_of(elf, site)
            );
        }
    });
}

#[test]
fn go_binaries_without_dwarf_or_symbols_still_give_functions_and_returns() {
    let Some(go) = go() else { return };
    for ldflags in ["-w", "-s -w"] {
        let fixture = GoFixture::build(&go, ldflags);
        analyse(&fixture.program, |binary, elf| {
            assert!(!binary.has_dwarf(), "{ldflags}");
            let get = binary
                .function(elf, "net/http.(*Client).Get")
                .unwrap_or_else(|e| panic!("{ldflags}: {e}"));
            assert!(!get.typed);
            assert!(get.params.is_empty());
            assert!(!get.returns.is_empty(), "{ldflags}");
        });
    }
}

/// `ustat trace ARGS...` in spec form, returned once its probes are attached (and, when it
/// prints events, after the header).
fn trace_specs(args: &[&str], prints: bool) -> support::Ustat {
    let mut all = vec!["trace"];
    all.extend_from_slice(args);
    let mut ustat = support::Ustat::spawn(&all);
    ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
    if prints {
        let header = ustat.stdout.next("the trace header");
        assert_eq!(header.as_deref(), Some("TIME PID TID COMM FUNC VALUES"));
    }
    ustat
}

fn done_checksum(answer: &str) -> u64 {
    answer
        .strip_prefix("done ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the fixture answered `{answer}`"))
}

const CALLS: usize = 8;

#[test]
fn client_get_urls_returns_and_latency_while_stacks_move() {
    let Some(go) = go() else { return };
    let fixture = GoFixture::build(&go, "");
    let (mut app, url) = fixture.start();
    let pid = app.pid().to_string();
    let program = fixture.program.display().to_string();
    // The program's own result, untraced.
    let untraced = done_checksum(&app.send(&format!("get {CALLS}")));

    // Entry: the URL, a Go string (pointer and length in rbx, rcx), printed exactly.
    let get = format!("p:{program}:net/http.(*Client).Get \"%s\", arg2");
    let mut ustat = trace_specs(&["-p", &pid, &get], true);
    let traced = done_checksum(&app.send(&format!("get {CALLS}")));
    assert_eq!(
        traced, untraced,
        "the traced program computed something else"
    );
    let lines = ustat.stdout.take(CALLS, "a line per Get");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.ends_with(&format!(" net/http.(*Client).Get {url}/item/{i}")),
            "line {i}: {line}"
        );
        assert!(line.contains(&format!(" {pid} ")), "{line}");
    }
    support::stop(ustat);

    // Returns: `checksum` returns each body's CRC; their sum is the program's answer.
    let ret = format!("r:{program}:main.checksum \"%u\", retval");
    let mut ustat = trace_specs(&["-p", &pid, &ret], true);
    let traced = done_checksum(&app.send(&format!("get {CALLS}")));
    assert_eq!(traced, untraced);
    let sum: u64 = ustat
        .stdout
        .take(CALLS, "a line per return")
        .iter()
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{l}"))
        })
        .sum();
    assert_eq!(
        sum % (1 << 32),
        traced,
        "the returned values are the checksums"
    );
    support::stop(ustat);

    // Latency: every call timed, entry to RET, matched by goroutine.
    let mut ustat = trace_specs(
        &["-p", &pid, "--latency", &get.replace(" \"%s\", arg2", "")],
        false,
    );
    let traced = done_checksum(&app.send(&format!("get {CALLS}")));
    assert_eq!(traced, untraced);
    ustat.signal(libc::SIGINT);
    assert!(ustat.wait().success());
    let out = ustat.stdout.rest();
    assert!(
        out.iter()
            .any(|l| l.starts_with(&format!("net/http.(*Client).Get: {CALLS} calls,"))),
        "{out:?}"
    );
    // The program lived through all of it, and still answers the same.
    assert_eq!(done_checksum(&app.send(&format!("get {CALLS}"))), untraced);
}

#[test]
fn an_inlined_function_is_traced_where_it_was_inlined_and_its_returns_are_refused() {
    let Some(go) = go() else { return };
    let fixture = GoFixture::build(&go, "");
    let (mut app, url) = fixture.start();
    let pid = app.pid().to_string();
    let program = fixture.program.display().to_string();
    let spec = format!("p:{program}:net/http.Get \"%s\", arg1");
    let mut ustat = trace_specs(&["-p", &pid, &spec], true);
    assert_eq!(app.send("inline 3"), "done 600");
    for (i, line) in ustat
        .stdout
        .take(3, "a line per http.Get")
        .iter()
        .enumerate()
    {
        assert!(
            line.ends_with(&format!(" net/http.Get {url}/item/{i}")),
            "{line}"
        );
    }
    support::stop(ustat);
    let (code, _, stderr) =
        support::run_ustat(&["trace", "-p", &pid, &format!("r:{program}:net/http.Get")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("net/http.Get exists only inlined (into main.main)")
            && stderr.contains("net/http.(*Client).Get"),
        "{stderr}"
    );
}

#[test]
fn a_binary_without_dwarf_gives_raw_registers() {
    let Some(go) = go() else { return };
    let fixture = GoFixture::build(&go, "-w");
    let (mut app, url) = fixture.start();
    let pid = app.pid().to_string();
    let program = fixture.program.display().to_string();
    // Without DWARF, the URL's pointer and length are the 2nd and 3rd integer registers.
    let spec = format!("p:{program}:net/http.(*Client).Get \"%s\", arg2:arg3");
    let mut ustat = trace_specs(&["-p", &pid, &spec], true);
    assert!(
        ustat.stderr.seen.iter().any(|l| l.contains("has no DWARF")),
        "{:?}",
        ustat.stderr.seen
    );
    app.send("get 2");
    for (i, line) in ustat.stdout.take(2, "a line per Get").iter().enumerate() {
        assert!(line.ends_with(&format!("{url}/item/{i}")), "{line}");
    }
    support::stop(ustat);
}
