//! The USDT engine against the real kernel: a fixture fires each probe a known number of
//! times with known values after `ustat trace` attached, and the values the kernel read must
//! be exactly those. Semaphores must be up while attached and back to 0 however ustat ends.

mod support;

use std::{ffi::OsStr, path::Path};

use support::{Driven, Ustat, fixtures::UsdtFixture, poll, run_ustat};
use ustat::{
    bpf::{AttachError, LinkError, ProbePoint, Program, Scope, Tracer},
    usdt,
};

/// One line of `ustat trace`: `TIME_NS PID TID PROBE ARGS...`.
#[derive(Debug, PartialEq, Eq)]
struct Hit {
    pid: u32,
    probe: String,
    args: String,
}

fn parse_hit(line: &str) -> Hit {
    let fields: Vec<&str> = line.split(' ').collect();
    assert!(fields.len() >= 4, "not a trace line: {line}");
    fields[0]
        .parse::<u64>()
        .unwrap_or_else(|_| panic!("bad timestamp in {line}"));
    Hit {
        pid: fields[1].parse().unwrap(),
        probe: fields[3].to_string(),
        args: fields[4..].join(" "),
    }
}

fn hit(pid: u32, probe: &str, args: &str) -> Hit {
    Hit {
        pid,
        probe: probe.into(),
        args: args.into(),
    }
}

fn semaphore(program: &mut Driven) -> u32 {
    let answer = program.send("sem");
    answer
        .strip_prefix("sem ")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad answer {answer}"))
}

/// The argument specs gcc chose for each probe of the fixture, from `ustat list --format json`.
fn arg_specs(program: &Path) -> Vec<(String, String)> {
    let (code, out, err) = run_ustat(&[
        OsStr::new("list"),
        program.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut specs = Vec::new();
    for probe in json[0]["probes"].as_array().unwrap() {
        for site in probe["sites"].as_array().unwrap() {
            specs.push((
                probe["name"].as_str().unwrap().to_string(),
                site["arguments"].as_str().unwrap().to_string(),
            ));
        }
    }
    specs
}

#[test]
fn the_fixture_covers_every_argument_form() {
    let fixture = UsdtFixture::build();
    let specs = arg_specs(&fixture.program);
    let spec_of = |name: &str| -> Vec<&str> {
        specs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| s.as_str())
            .collect()
    };
    // Registers of every size, signed and unsigned.
    let regs = spec_of("regs")[0];
    for size in ["1@%", "-1@%", "2@%", "-2@%", "4@%", "-4@%", "8@%", "-8@%"] {
        assert!(
            regs.split(' ').any(|a| a.starts_with(size)),
            "{size} in {regs}"
        );
    }
    // Stack memory, OFF(%reg), of every size.
    let stack = spec_of("stack")[0];
    assert_eq!(
        stack
            .split(' ')
            .filter(|a| a.contains("(%rsp)") || a.contains("(%rbp)"))
            .count(),
        8,
        "{stack}"
    );
    // base + index * scale.
    assert!(
        spec_of("indexed")[0].contains(",%"),
        "{:?}",
        spec_of("indexed")
    );
    // Constants.
    assert_eq!(spec_of("consts")[0].matches("@$").count(), 4);
    // Several sites with different specs, no arguments, a semaphore.
    assert_eq!(spec_of("multi").len(), 2);
    assert_ne!(spec_of("multi")[0], spec_of("multi")[1]);
    assert_eq!(spec_of("noargs"), [""]);
}

#[test]
fn every_argument_form_is_read_exactly() {
    every_argument_form_is_read_exactly_when_attached("auto");
}

/// Kernels before 6.6 have no uprobe_multi links; USTAT_ATTACH=perf-event takes their path.
#[test]
fn every_argument_form_is_read_exactly_through_perf_events() {
    every_argument_form_is_read_exactly_when_attached("perf-event");
}

fn every_argument_form_is_read_exactly_when_attached(mode: &str) {
    let fixture = UsdtFixture::build();
    let mut program = fixture.start();
    let pid = program.pid();
    let mut ustat = Ustat::trace_with(&[("USTAT_ATTACH", mode)], &[pid.to_string()]);

    for command in [
        "noargs 3",
        "regs 2",
        "stack 2",
        "indexed 2",
        "consts 2",
        "multi 3",
    ] {
        assert_eq!(program.send(command), "ok");
    }
    let regs =
        "250 -7 65000 -30000 4000000000 -2000000000 18364758544493064720 -9000000000000000000";
    let stack = "200 -100 60000 -20000 3000000000 -1000000000 9223372036854775809 -2";
    let mut expected = Vec::new();
    expected.extend((0..3).map(|_| hit(pid, "ustat_test:noargs", "")));
    expected.extend((0..2).map(|_| hit(pid, "ustat_test:regs", regs)));
    expected.extend((0..2).map(|_| hit(pid, "ustat_test:stack", stack)));
    expected.extend((0..2).map(|_| hit(pid, "ustat_test:indexed", "-33")));
    expected.extend((0..2).map(|_| hit(pid, "ustat_test:consts", "200 -300 -5 -1234567890123")));
    for i in 0..3 {
        expected.push(hit(pid, "ustat_test:multi", &format!("1 {i}")));
        expected.push(hit(pid, "ustat_test:multi", &format!("2 {i}")));
    }
    let hits: Vec<Hit> = ustat
        .stdout
        .take(expected.len(), "the hits")
        .iter()
        .map(|l| parse_hit(l))
        .collect();
    assert_eq!(hits, expected);

    // Nothing more: every probe fired exactly as often as the fixture fired it.
    ustat.signal(libc::SIGINT);
    assert!(ustat.wait().success());
    assert_eq!(ustat.stdout.rest(), Vec::<String>::new());
}

/// Starts tracing the gated probe, checks the semaphore is up and the probe fires, ends
/// ustat with `end`, and checks the semaphore goes back to 0 and the probe stops firing.
fn semaphore_is_released(extra_args: &[&str], end: impl FnOnce(&mut Ustat)) {
    semaphore_is_released_when_attached("auto", extra_args, end);
}

fn semaphore_is_released_when_attached(
    mode: &str,
    extra_args: &[&str],
    end: impl FnOnce(&mut Ustat),
) {
    let fixture = UsdtFixture::build();
    let mut program = fixture.start();
    assert_eq!(semaphore(&mut program), 0, "no tracer yet");
    assert_eq!(program.send("gated 5"), "ok fired=0");

    let mut args = vec![program.pid().to_string(), "gated".to_string()];
    args.extend(extra_args.iter().map(|a| a.to_string()));
    let mut ustat = Ustat::trace_with(&[("USTAT_ATTACH", mode)], &args);
    assert!(
        semaphore(&mut program) >= 1,
        "the kernel raised the semaphore"
    );
    assert_eq!(program.send("gated 5"), "ok fired=5");
    let values: Vec<String> = ustat
        .stdout
        .take(5, "gated hits")
        .iter()
        .map(|l| parse_hit(l).args)
        .collect();
    assert_eq!(values, ["0", "1", "2", "3", "4"]);

    end(&mut ustat);
    poll("the semaphore to drop to 0", || {
        (semaphore(&mut program) == 0).then_some(())
    });
    assert_eq!(program.send("gated 5"), "ok fired=0");
}

#[test]
fn semaphore_is_released_when_ustat_ends_by_itself() {
    semaphore_is_released(&["--max-events", "5"], |ustat| {
        assert!(ustat.wait().success())
    });
}

#[test]
fn semaphore_is_released_through_perf_events() {
    semaphore_is_released_when_attached("perf-event", &[], |ustat| {
        ustat.signal(libc::SIGINT);
        assert!(ustat.wait().success());
    });
}

#[test]
fn semaphore_is_released_on_sigint() {
    semaphore_is_released(&[], |ustat| {
        ustat.signal(libc::SIGINT);
        assert!(ustat.wait().success());
    });
}

#[test]
fn semaphore_is_released_on_sigterm() {
    semaphore_is_released(&[], |ustat| {
        ustat.signal(libc::SIGTERM);
        assert!(ustat.wait().success());
    });
}

#[test]
fn semaphore_is_released_on_sighup() {
    semaphore_is_released(&[], |ustat| {
        ustat.signal(libc::SIGHUP);
        assert!(ustat.wait().success());
    });
}

#[test]
fn semaphore_is_released_after_kill_9() {
    semaphore_is_released(&[], |ustat| {
        ustat.signal(libc::SIGKILL);
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(ustat.wait().signal(), Some(libc::SIGKILL));
    });
}

#[test]
fn a_library_dlopened_after_tracing_started_is_traced_in_processes_started_later() {
    let fixture = UsdtFixture::build();
    // Attach by the library's path before any process maps it, or even exists.
    let mut ustat = Ustat::trace(&[fixture.library.as_os_str()]);
    let mut program = fixture.start();
    assert_eq!(
        program.send(&format!("dlopen {}", fixture.library.display())),
        "ok"
    );
    assert_eq!(program.send("lib 4"), "ok");
    let hits: Vec<Hit> = ustat
        .stdout
        .take(4, "library hits")
        .iter()
        .map(|l| parse_hit(l))
        .collect();
    let expected: Vec<Hit> = (0..4)
        .map(|i| hit(program.pid(), "ustat_lib:hit", &format!("{i} 4660")))
        .collect();
    assert_eq!(hits, expected);
}

#[test]
fn a_library_traced_with_p_is_traced_in_the_given_process_only() {
    let fixture = UsdtFixture::build();
    let mut traced = fixture.start();
    let mut other = fixture.start();
    let pid = traced.pid().to_string();
    // `trace FILE -p PID` wants PID to map FILE already (a typo'd PID is an error, not an
    // empty trace); the other process loads it after tracing started.
    assert_eq!(
        traced.send(&format!("dlopen {}", fixture.library.display())),
        "ok"
    );
    let mut ustat = Ustat::trace(&[
        fixture.library.as_os_str(),
        OsStr::new("-p"),
        OsStr::new(&pid),
    ]);
    assert_eq!(
        other.send(&format!("dlopen {}", fixture.library.display())),
        "ok"
    );
    assert_eq!(other.send("lib 5"), "ok");
    assert_eq!(traced.send("lib 2"), "ok");
    assert_eq!(other.send("lib 5"), "ok");
    let hits: Vec<Hit> = ustat
        .stdout
        .take(2, "library hits")
        .iter()
        .map(|l| parse_hit(l))
        .collect();
    assert_eq!(
        hits,
        [
            hit(traced.pid(), "ustat_lib:hit", "0 4660"),
            hit(traced.pid(), "ustat_lib:hit", "1 4660")
        ]
    );
    ustat.signal(libc::SIGINT);
    assert!(ustat.wait().success());
    assert_eq!(
        ustat.stdout.rest(),
        Vec::<String>::new(),
        "no hits from the other process"
    );
}

#[test]
fn a_site_held_with_another_semaphore_is_named_in_the_error() {
    let fixture = UsdtFixture::build();
    let probes = usdt::probes_in_file(&fixture.program).unwrap();
    let gated = probes.iter().find(|p| p.name == "gated").unwrap();
    let site = gated.sites[0].target.as_ref().unwrap();
    // Another tracer holds the site with a wrong semaphore offset.
    let mut other = Tracer::load().unwrap();
    let wrong = ProbePoint {
        binary: ustat::binary::Binary::open_given(&fixture.program).unwrap(),
        offset: site.offset,
        semaphore_offset: Some(site.semaphore_offset.unwrap() + 2),
        retprobe: false,
    };
    other
        .attach(
            "other:tracer",
            Program::Record,
            &wrong,
            &site.probe_spec(0),
            Scope::AllProcesses,
        )
        .unwrap();

    let (code, out, err) = run_ustat(&[
        OsStr::new("trace"),
        fixture.program.as_os_str(),
        OsStr::new("gated"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("ustat: cannot attach ustat_test:gated in "),
        "{err}"
    );
    assert!(
        err.contains(&fixture.program.display().to_string()),
        "{err}"
    );
    assert!(
        err.contains("another tracer probably holds this site with a different semaphore offset"),
        "{err}"
    );

    // The same conflict through the library names the reason as a type.
    let mut tracer = Tracer::load().unwrap();
    let right = ProbePoint {
        semaphore_offset: site.semaphore_offset,
        ..wrong
    };
    let e = tracer
        .attach(
            "ustat_test:gated",
            Program::Record,
            &right,
            &site.probe_spec(0),
            Scope::AllProcesses,
        )
        .unwrap_err();
    assert!(
        matches!(
            e.source,
            LinkError::Attach {
                source: AttachError::SemaphoreConflict
            }
        ),
        "{e:?}"
    );
}
