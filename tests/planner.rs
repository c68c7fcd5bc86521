//! The planner on this host's real runtime binaries: libjvm.so, Debian's python3.11, pyenv's
//! libpythons, /usr/bin/node. These depend on what is installed, so they live here beside
//! the end-to-end tests rather than in `cargo test --lib`; a missing binary is skipped with
//! a line saying so. No root needed.
use std::path::PathBuf;

use ustat::{
    binary::Binary,
    bpf::Program,
    plan::{Plan, plan, plan_elf},
};
use ustat_common::{KeyArg, arg_kind, category, key_kind, pt_regs};
use ustat_runtimes::{
    Action, Arg, Feature, Missing, Rule, Runtime, jvm::JVM, node::NODE, python::PYTHON,
};

const LIBJVM: &str = "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so";

/// The plan for a binary of this host; `None` (and a line saying so) when it is absent.
fn plan_of(runtime: &'static Runtime, path: &str) -> Option<Plan> {
    let path = host_file(path)?;
    let binary = Binary::open_given(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(plan(runtime, &binary).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn host_file(path: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipped: {} is not installed on this host", path.display());
        None
    }
}

fn pyenv(version: &str, lib: &str) -> String {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    format!("{home}/.pyenv/versions/{version}/lib/{lib}")
}

#[test]
fn every_jvm_feature_resolves_in_libjvm() {
    let Some(plan) = plan_of(&JVM, LIBJVM) else {
        return;
    };
    assert_eq!(
        plan.resolved,
        [
            "gc",
            "classes",
            "threads",
            "calls",
            "allocations",
            "monitors"
        ]
    );
    // OpenJDK 17's object__alloc takes an int size its interpreter never passes: counted,
    // never summed, and one line says so.
    let bytes: Vec<_> = plan
        .unavailable
        .iter()
        .map(|m| m.categories.clone())
        .collect();
    assert_eq!(bytes, [vec![category::ALLOC_BYTES]]);
    let alloc = plan
        .attachments
        .iter()
        .find(|a| a.probe == "hotspot:object__alloc")
        .unwrap();
    assert_eq!(alloc.spec.value_arg, ustat_common::NO_ARG);
    let begin = plan
        .attachments
        .iter()
        .find(|a| a.probe == "hotspot:gc__begin")
        .unwrap();
    assert_eq!(begin.program, Program::SpanBegin);
    assert_eq!((begin.spec.tag, begin.spec.subkey_arg), (category::GC, 0));
    let entry = plan
        .attachments
        .iter()
        .find(|a| a.probe == "hotspot:method__entry")
        .unwrap();
    assert_eq!(entry.program, Program::Keyed);
    assert_eq!(
        entry.spec.keys[1],
        KeyArg {
            kind: key_kind::PTR_LEN,
            arg: 3,
            len_arg: 4,
            _pad: 0
        }
    );
    let alloc = plan
        .attachments
        .iter()
        .find(|a| a.probe == "hotspot:object__alloc")
        .unwrap();
    assert_eq!(alloc.spec.value_max, 1 << 30);
}

#[test]
fn debian_python_uses_its_usdt_probes() {
    let Some(plan) = plan_of(&PYTHON, "/usr/bin/python3.11") else {
        return;
    };
    assert_eq!(plan.resolved, ["gc", "threads", "modules"]);
    // Modules loaded: ModuleType.__init__, static in this stripped executable, through the
    // tp_init slot of PyModule_Type; and the two functions that create C modules.
    let modules: Vec<&str> = plan
        .attachments
        .iter()
        .filter(|a| a.spec.tag == category::IMPORT)
        .map(|a| a.probe.as_str())
        .collect();
    assert_eq!(
        modules,
        [
            "PyModule_Type+0x128",
            "PyModule_Create2",
            "PyModule_FromDefAndSpec2"
        ]
    );
    let on_demand: Vec<&str> = plan.on_demand.iter().map(|o| o.feature.name).collect();
    assert_eq!(
        on_demand,
        ["imports", "calls"],
        "attached only when asked for"
    );
    let calls: Vec<&str> = plan.on_demand[1]
        .attachments
        .iter()
        .map(|a| a.probe.as_str())
        .collect();
    assert_eq!(calls, ["python:function__entry"]);
    assert!(
        plan.attachments
            .iter()
            .all(|a| !a.probe.contains("function__") && !a.probe.contains("import__")),
        "no default attachment raises a probe CPython can fail behind"
    );
    let probes: Vec<&str> = plan.attachments.iter().map(|a| a.probe.as_str()).collect();
    assert!(
        probes.contains(&"python:gc__start") && probes.contains(&"python:gc__done"),
        "{probes:?}"
    );
    assert!(probes.contains(&"PyThread_start_new_thread"), "{probes:?}");
    let start = plan
        .attachments
        .iter()
        .find(|a| a.probe == "python:gc__start")
        .unwrap();
    assert!(
        start.point.semaphore_offset.is_some(),
        "CPython's probes are semaphore-gated"
    );
}

#[test]
fn pyenv_pythons_fall_back_to_symbols() {
    let Some(plan) = plan_of(&PYTHON, &pyenv("3.12.1", "libpython3.12.so.1.0")) else {
        return;
    };
    assert_eq!(plan.resolved, ["gc", "threads", "modules"]);
    assert!(
        plan.attachments
            .iter()
            .any(|a| a.probe == "module___init__" && a.spec.tag == category::IMPORT)
    );
    let entry = plan
        .attachments
        .iter()
        .find(|a| a.probe == "gc_collect_main")
        .unwrap();
    assert!(!entry.point.retprobe);
    assert_eq!(entry.spec.subkey_arg, 0);
    assert_eq!(
        (
            entry.spec.args[0].kind,
            entry.spec.args[0].reg_off,
            entry.spec.args[0].size,
            entry.spec.args[0].signed
        ),
        (arg_kind::REG, pt_regs::RSI, 4, 1),
        "the generation is an int: only %esi counts"
    );
    let ret = plan
        .attachments
        .iter()
        .find(|a| a.probe == "gc_collect_main (return)")
        .unwrap();
    assert!(ret.point.retprobe);
    assert_eq!(ret.point.offset, entry.point.offset);
    assert_eq!(
        (ret.spec.args[0].reg_off, ret.spec.value_arg),
        (pt_regs::RAX, 0)
    );
    let missing: Vec<&str> = plan.unavailable.iter().map(|m| m.text.as_str()).collect();
    assert!(
        missing[0].starts_with("import times: not traced"),
        "{missing:?}"
    );
    assert!(
        missing[1].starts_with("function calls: not traced"),
        "{missing:?}"
    );
    assert_eq!(plan.unavailable[1].categories, [category::METHOD_CALL]);

    let probes = |version: &str, lib: &str| -> Vec<String> {
        plan_of(&PYTHON, &pyenv(version, lib))
            .map(|plan| plan.attachments)
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.probe)
            .collect()
    };
    assert!(
        probes("3.13.0", "libpython3.13.so.1.0")
            .contains(&"PyThread_start_joinable_thread".to_string())
    );
    assert!(probes("3.10.13", "libpython3.10.so.1.0").contains(&"gc_collect_main".to_string()));
    assert!(probes("3.9.18", "libpython3.9.so.1.0").contains(&"collect".to_string()));
    // 3.8: its collector clones, told apart by their code (see below).
    if let Some(old) = plan_of(&PYTHON, &pyenv("3.8.18", "libpython3.8.so.1.0")) {
        assert_eq!(old.resolved, ["gc", "threads", "modules"]);
    }
}

/// Where `collect` takes the generation: %edi before CPython 3.8 (collect(generation, ...)),
/// %esi in 3.9 (collect(tstate, generation, ...)).
#[test]
fn collect_reads_the_generation_where_each_version_passes_it() {
    for (version, lib, register) in [
        ("2.7.18", "libpython2.7.so.1.0", pt_regs::RDI),
        ("3.6.15", "libpython3.6m.so.1.0", pt_regs::RDI),
        ("3.7.16", "libpython3.7m.so.1.0", pt_regs::RDI),
        ("3.9.18", "libpython3.9.so.1.0", pt_regs::RSI),
    ] {
        let Some(plan) = plan_of(&PYTHON, &pyenv(version, lib)) else {
            continue;
        };
        let entries: Vec<_> = plan
            .attachments
            .iter()
            .filter(|a| a.probe == "collect")
            .collect();
        assert_eq!(entries.len(), 1, "{version}: only collect itself, no clone");
        assert_eq!(
            (
                entries[0].spec.args[0].reg_off,
                entries[0].spec.args[0].size
            ),
            (register, 4),
            "{version}"
        );
    }
}

/// CPython 3.8's collector exists only as two `collect.constprop.N` clones; which one takes
/// the generation (`%edi`) and which has it folded in (generation 2) is read from their code.
#[test]
fn cpython_38_collector_clones_are_told_apart_by_their_code() {
    let Some(plan) = plan_of(&PYTHON, &pyenv("3.8.18", "libpython3.8.so.1.0")) else {
        return;
    };
    assert!(plan.resolved.contains(&"gc"), "{:?}", plan.unavailable);
    let entries: Vec<_> = plan
        .attachments
        .iter()
        .filter(|a| a.probe == "collect" && !a.point.retprobe)
        .collect();
    assert_eq!(entries.len(), 2, "one rule per clone");
    let generation: Vec<(u8, u16, i64)> = entries
        .iter()
        .map(|a| {
            let arg = a.spec.args[0];
            (arg.kind, arg.reg_off, arg.val_off)
        })
        .collect();
    assert!(
        generation.contains(&(arg_kind::REG, pt_regs::RDI, 0)),
        "{generation:?}"
    );
    assert!(
        generation
            .iter()
            .any(|&(kind, _, value)| kind == arg_kind::CONST && value == 2),
        "{generation:?}"
    );
    assert_ne!(entries[0].point.offset, entries[1].point.offset);
}

#[test]
fn node_resolves_v8_and_libuv_symbols() {
    let Some(plan) = plan_of(&NODE, "/usr/bin/node") else {
        return;
    };
    assert_eq!(plan.resolved, ["gc", "threads", "http"]);
    let gc = plan
        .attachments
        .iter()
        .find(|a| a.probe == "_ZN2v88internal4Heap24PerformGarbageCollection")
        .unwrap();
    assert_eq!(
        (gc.spec.args[1].reg_off, gc.spec.args[1].size),
        (pt_regs::RSI, 1)
    );
    let http = plan
        .attachments
        .iter()
        .find(|a| a.program == Program::Count && a.spec.tag == category::HTTP_PARSED)
        .unwrap();
    assert_eq!(
        (http.spec.args[0].kind, http.spec.args[0].val_off),
        (arg_kind::MEM, 72)
    );
}

#[test]
fn the_first_alternative_that_resolves_wins() {
    static FEATURES: &[Feature] = &[
        Feature {
            name: "gc",
            categories: &[category::GC],
            alternatives: &[
                &[Rule::usdt(
                    "nope",
                    "gc",
                    Action::SpanBegin {
                        category: category::GC,
                        subkey: Arg::None,
                    },
                )],
                &[Rule::function(
                    "PyGC_Collect",
                    "8@%rdi",
                    Action::SpanBegin {
                        category: category::GC,
                        subkey: Arg::None,
                    },
                )],
            ],
            unavailable: "GC: no",
            on_demand: None,
        },
        Feature {
            name: "other",
            categories: &[category::IMPORT],
            alternatives: &[&[Rule::function(
                "no_such_function",
                "",
                Action::SpanBegin {
                    category: category::IMPORT,
                    subkey: Arg::None,
                },
            )]],
            unavailable: "other: no",
            on_demand: None,
        },
    ];
    let Some(path) = host_file("/usr/bin/python3.11") else {
        return;
    };
    let binary = Binary::open_given(&path).unwrap();
    let data = binary.data();
    let plan = plan_elf(FEATURES, &binary.elf(&data).unwrap(), &binary);
    assert_eq!(plan.resolved, ["gc"]);
    assert_eq!(plan.attachments.len(), 1);
    assert_eq!(plan.attachments[0].probe, "PyGC_Collect");
    assert_eq!(
        plan.unavailable,
        [Missing {
            categories: vec![category::IMPORT],
            text: "other: no".into()
        }]
    );
}

/// The official nodejs.org builds `scripts/setup` downloads: Node 16 and 18 call V8's GC
/// only through a `.constprop` clone, which the plan attaches to beside the function; HTTP
/// comes from llhttp's exported `llhttp__on_message_begin` on every version.
#[test]
fn official_node_builds_resolve_gc_clones_and_llhttp() {
    let cache =
        std::env::var("USTAT_TEST_CACHE").unwrap_or_else(|_| "/var/cache/ustat-test".into());
    for (major, gc_entries) in [(16, 2), (18, 2), (20, 1), (22, 1), (24, 1)] {
        let Some(plan) = plan_of(&NODE, &format!("{cache}/node/v{major}/package/bin/node")) else {
            continue;
        };
        assert_eq!(plan.resolved, ["gc", "threads", "http"], "Node {major}");
        let gc_begins = plan
            .attachments
            .iter()
            .filter(|a| a.program == Program::SpanBegin)
            .count();
        assert_eq!(
            gc_begins, gc_entries,
            "Node {major}: {:#?}",
            plan.attachments
        );
        let http: Vec<_> = plan
            .attachments
            .iter()
            .filter(|a| a.spec.tag == category::HTTP_PARSED)
            .collect();
        assert_eq!(http.len(), 1, "Node {major}");
        assert_eq!(http[0].probe, "llhttp__on_message_begin", "Node {major}");
        eprintln!("{major}: {:?}", http[0]);
    }
}
