//! CPython, found by the interpreter or libpython a process maps, whatever the command.
//!
//! Builds with USDT (Debian's python3.11, `--with-dtrace`) have the `python` provider, all
//! semaphore-gated: GC, imports, and function calls (which 3.11 fires only under a profiler,
//! and 3.12–3.14 do not have). Builds without (pyenv, most images) keep a full symbol table
//! in libpython: the collector and thread start are uprobed by name.
//!
//! Imports are counted on every build with the functions that create module objects (see
//! `module_created`), on both the `import` statement's path and importlib's.
//!
//! The import and call probes are on demand: with their semaphore raised, CPython converts
//! the module, file or function name to UTF-8 for the probe and does not handle a failure
//! (python/cpython#156118), so a name that is not UTF-8 (a Latin-1 file name, a
//! surrogate-escaped name) leaves an exception behind that ends the traced program.

use std::path::Path;

use ustat_common::category::{GC, IMPORT, IMPORT_TIME, METHOD_CALL, THREAD_STARTED};

use crate::{
    Action, Arg, CloneCheck, Feature, Flow, Key, Missing, OnDemand, Point, ProcessFacts, Rule,
    Runtime,
};

pub static PYTHON: Runtime = Runtime {
    name: "python",
    binary_hint: "libpython or a pythonX.Y interpreter",
    detect: |file| binary_rank(file.file_name()),
    option_variables: &["PYTHONOPTIMIZE"],
    features: FEATURES,
    gc_kind: |generation| match generation {
        0 => "gen0",
        1 => "gen1",
        2 => "gen2",
        _ => "other",
    },
    gc_kinds: &["gen0", "gen1", "gen2"],
    key_label,
    version: |binary, _| version(binary),
    missing,
    // function__return's line is the return's, so a function is its file and name.
    flow: Some(Flow {
        entry: Point::Usdt {
            provider: "python",
            name: "function__entry",
        },
        exit: Point::Usdt {
            provider: "python",
            name: "function__return",
        },
        keys: [Key::CStr(0), Key::CStr(1), Key::None],
        class_prefix: |prefix| prefix.to_string(),
        slots: ["file", "function"],
        hint: "CPython 3.11 fires its call probes only while a profiler is active (sys.setprofile, cProfile).",
        feature: "calls",
    }),
};

/// libpython carries the interpreter when a process maps it (pyenv's python3.12 is a small
/// launcher that links it); otherwise the pythonX.Y executable does (Debian's).
fn binary_rank(file_name: &str) -> Option<u8> {
    if let Some(rest) = file_name.strip_prefix("libpython") {
        return is_version(rest.split(".so").next()?).then_some(0);
    }
    let rest = file_name.strip_prefix("python")?;
    (rest.is_empty() || is_version(rest)).then_some(1)
}

/// `3.12`, `3.6m`, `3.13t`, `2.7`, `3`
fn is_version(text: &str) -> bool {
    let digits = text.trim_end_matches(['m', 'd', 't']);
    !digits.is_empty()
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// `3.12` from `libpython3.12.so.1.0` or `python3.12`.
fn version(binary: &Path) -> Option<String> {
    let name = binary.file_name()?.to_str()?;
    let rest = name
        .strip_prefix("libpython")
        .or_else(|| name.strip_prefix("python"))?;
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let version = version.trim_end_matches('.');
    version.contains('.').then(|| version.to_string())
}

fn minor_version(facts: &ProcessFacts) -> Option<(u32, u32)> {
    let version = facts.version.as_deref()?;
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.split('.').next()?.parse().ok()?))
}

/// What CPython 3.8 added: from then on `collect`'s first argument is the GC state (3.8) or
/// the thread state (3.9), and the generation the second.
const SINCE_3_8: &str = "PyCode_NewWithPosOnlyArgs";

/// What CPython 3.13 added (its threads start there).
const SINCE_3_13: &str = "PyThread_start_joinable_thread";

/// The collector's entry and return: `$generation` is where the generation is, then it
/// returns Py_ssize_t collected. gc_collect_main(tstate, generation, reason) is 3.10 to 3.13;
/// 3.9's is collect(tstate, generation, ...); 2.7 to 3.7's collect(generation, ...).
/// 3.8's exists only as compiler clones (see `COLLECTOR_3_8`).
macro_rules! collector {
    ($symbol:literal, $generation:literal) => {
        collector!($symbol, $generation, None)
    };
    ($symbol:literal, $generation:literal, $only_if:expr) => {
        &[
            Rule {
                only_if: $only_if,
                ..Rule::function(
                    $symbol,
                    $generation,
                    Action::SpanBegin {
                        category: GC,
                        subkey: Arg::N(0),
                    },
                )
            },
            Rule::function_return(
                $symbol,
                "-8@%rax",
                Action::SpanEnd {
                    category: GC,
                    value: Arg::N(0),
                },
            ),
        ]
    };
}

/// CPython 3.8's collector, `collect(state, generation, n_collected, n_uncollectable,
/// nofail)`, exists only as two compiler clones, numbered differently by different builds:
/// one with the GC state folded in, which takes the generation first (`%edi`), for
/// gc.collect() and automatic collections; one with the state and the generation folded in,
/// whose first parameter is the `n_collected` pointer (`%rdi`), for `PyGC_Collect` and
/// `_PyGC_CollectNoFail`, which both collect generation 2 (`NUM_GENERATIONS - 1`). Which is
/// which is read from each clone's code: how it first uses `%rdi` (`CloneCheck`).
const COLLECTOR_3_8: &[Rule] = &[
    Rule::function(
        "collect",
        "-4@%edi",
        Action::SpanBegin {
            category: GC,
            subkey: Arg::N(0),
        },
    )
    .clones_checked(&["constprop"], CloneCheck::FirstArgInt32)
    .if_defined(SINCE_3_8),
    Rule::function_return(
        "collect",
        "-8@%rax",
        Action::SpanEnd {
            category: GC,
            value: Arg::N(0),
        },
    )
    .clones_checked(&["constprop"], CloneCheck::FirstArgInt32),
    Rule::function(
        "collect",
        "-4@$2",
        Action::SpanBegin {
            category: GC,
            subkey: Arg::N(0),
        },
    )
    .clones_checked(&["constprop"], CloneCheck::FirstArgPointer)
    .if_defined(SINCE_3_8),
    Rule::function_return(
        "collect",
        "-8@%rax",
        Action::SpanEnd {
            category: GC,
            value: Arg::N(0),
        },
    )
    .clones_checked(&["constprop"], CloneCheck::FirstArgPointer),
];

const fn thread_start(symbol: &'static str) -> Rule {
    Rule::function(
        symbol,
        "8@%rdi",
        Action::Count {
            category: THREAD_STARTED,
            subkey: Arg::None,
            value: Arg::None,
        },
    )
}

/// A module loaded: one hit per module object the import system creates. `import x` (C:
/// `PyImport_ImportModuleLevelObject`) and `importlib.import_module("x")` (Python:
/// `_gcd_import`) share only Python code, `_bootstrap._find_and_load`, which on a module not
/// yet loaded creates its module object once, in C, by one of three functions:
/// `ModuleType.__init__` (`module___init__`, the `tp_init` of `PyModule_Type`: source,
/// bytecode, frozen and namespace modules, through `_new_module`), `PyModule_Create2` (the
/// init function of a single-phase extension or built-in module) or
/// `PyModule_FromDefAndSpec2` (a multi-phase one). Nothing is read from their arguments.
/// They are plain functions: no USDT semaphore is raised, so none of CPython's probe code
/// (python/cpython#156118) runs, and this is not on demand.
const fn module_created(point: Point) -> Rule {
    Rule::new(
        point,
        Action::Count {
            category: IMPORT,
            subkey: Arg::None,
            value: Arg::None,
        },
    )
}

/// Extension and built-in modules, created by their own init function (exported in every
/// build, stripped or not).
const C_MODULE_CREATED: [Rule; 2] = [
    module_created(Point::Function {
        symbol: "PyModule_Create2",
        args: "",
    }),
    module_created(Point::Function {
        symbol: "PyModule_FromDefAndSpec2",
        args: "",
    }),
];

/// Where `PyTypeObject::tp_init` is: 0x128 bytes into a type object on x86-64, in every
/// CPython 3 (`tp_vectorcall_offset` took `tp_print`'s place in 3.8, at the same size).
const TP_INIT: u64 = 0x128;

static FEATURES: &[Feature] = &[
    Feature {
        name: "gc",
        categories: &[GC],
        alternatives: &[
            // gc__start(generation), gc__done(collected)
            &[
                Rule::usdt(
                    "python",
                    "gc__start",
                    Action::SpanBegin {
                        category: GC,
                        subkey: Arg::N(0),
                    },
                ),
                Rule::usdt(
                    "python",
                    "gc__done",
                    Action::SpanEnd {
                        category: GC,
                        value: Arg::N(0),
                    },
                ),
            ],
            // 3.13: automatic collections enter with generation -1; the collector picks
            // the generation inside and passes it to invoke_gc_callback (phases "start" and
            // "stop"), which re-keys the open span. Its only build is a .isra clone that
            // passes the interpreter for tstate: (interp, phase, generation, ...), with the
            // generation in %edx, checked in 3.13.0's code. Not called at shutdown, whose
            // collection (2) stays -1: "other".
            &[
                Rule::function(
                    "gc_collect_main",
                    "-4@%esi",
                    Action::SpanBegin {
                        category: GC,
                        subkey: Arg::N(0),
                    },
                )
                .if_defined(SINCE_3_13),
                Rule::function_return(
                    "gc_collect_main",
                    "-8@%rax",
                    Action::SpanEnd {
                        category: GC,
                        value: Arg::N(0),
                    },
                ),
                Rule::function(
                    "invoke_gc_callback",
                    "8@%rdi 8@%rsi -4@%edx",
                    Action::SpanSubkey {
                        category: GC,
                        subkey: Arg::N(2),
                    },
                )
                .clones(&["isra"]),
            ],
            collector!("gc_collect_main", "-4@%esi"),
            collector!("collect", "-4@%esi", Some((SINCE_3_8, true))),
            COLLECTOR_3_8,
            collector!("collect", "-4@%edi", Some((SINCE_3_8, false))),
        ],
        unavailable: "GC: not traced: this CPython has neither USDT probes nor a collector function ustat \
                      can read",
        on_demand: None,
    },
    Feature {
        name: "threads",
        categories: &[THREAD_STARTED],
        // 3.13 starts every thread through PyThread_start_joinable_thread (which
        // PyThread_start_new_thread calls); earlier versions through PyThread_start_new_thread.
        alternatives: &[
            &[thread_start("PyThread_start_joinable_thread")],
            &[thread_start("PyThread_start_new_thread")],
        ],
        unavailable: "threads: not traced: this CPython exports no PyThread_start_new_thread",
        on_demand: None,
    },
    Feature {
        name: "modules",
        categories: &[IMPORT],
        alternatives: &[
            // A build with its symbol table (pyenv's libpython).
            &[
                module_created(Point::Function {
                    symbol: "module___init__",
                    args: "",
                }),
                C_MODULE_CREATED[0],
                C_MODULE_CREATED[1],
            ],
            // A stripped executable (Debian's python3.11, not position-independent): the
            // static module___init__ found through the type it is the tp_init of.
            &[
                module_created(Point::Slot {
                    object: "PyModule_Type",
                    offset: TP_INIT,
                    args: "",
                }),
                C_MODULE_CREATED[0],
                C_MODULE_CREATED[1],
            ],
        ],
        unavailable: "imports: not traced: this CPython has no symbol for ModuleType.__init__ \
                      (module___init__) and its PyModule_Type's slot is filled in at load time",
        on_demand: None,
    },
    // The time of imports, from the import probes: `import` statements only (the C path);
    // their count is the modules loaded, above.
    Feature {
        name: "imports",
        categories: &[IMPORT_TIME],
        alternatives: &[&[
            Rule::usdt(
                "python",
                "import__find__load__start",
                Action::SpanBegin {
                    category: IMPORT_TIME,
                    subkey: Arg::None,
                },
            ),
            Rule::usdt(
                "python",
                "import__find__load__done",
                Action::SpanEnd {
                    category: IMPORT_TIME,
                    value: Arg::None,
                },
            ),
        ]],
        unavailable: "import times: not traced: this CPython was built without USDT probes \
                      (--with-dtrace)",
        on_demand: Some(OnDemand {
            line: "import times: not traced by default: CPython's import probes can end the \
                   process on a non-UTF-8 module name",
            risk: "CPython's code behind its import probes fails on a module name that is not UTF-8 \
                   and leaves an exception that ends the process (python/cpython#156118)",
        }),
    },
    Feature {
        name: "calls",
        categories: &[METHOD_CALL],
        // function__entry(filename, funcname, lineno): the strings belong to the code
        // object, so their pointers are a stable key.
        alternatives: &[&[Rule::usdt(
            "python",
            "function__entry",
            Action::Keyed {
                category: METHOD_CALL,
                keys: [Key::CStr(0), Key::CStr(1), Key::Value(2)],
                value: Arg::None,
            },
        )]],
        unavailable: "function calls: not traced: this CPython has no function__entry probe (builds \
                      without --with-dtrace have none, and 3.12 to 3.14 dropped them)",
        on_demand: Some(OnDemand {
            line: "function calls: not traced by default: CPython's call probes can end the process on \
                   a non-UTF-8 name",
            risk: "CPython's code behind its call probes fails on a file or function name that is not \
                   UTF-8 and leaves an exception that ends the process (python/cpython#156118)",
        }),
    },
];

/// `fib (/srv/app.py:12)`
fn key_label(_category: u32, [file, function, _]: [&str; 3], [_, _, line]: [u64; 3]) -> String {
    format!("{function} ({file}:{line})")
}

fn missing(facts: &ProcessFacts) -> Vec<Missing> {
    let profiler_only = matches!(minor_version(facts), Some((3, 11..=14)));
    if profiler_only && facts.resolved.contains(&"calls") {
        return vec![Missing {
            categories: vec![METHOD_CALL],
            text: "function calls: CPython 3.11 fires its call probes only while a profiler is active \
                   (sys.setprofile, cProfile); none was seen yet"
                .to_string(),
        }];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profiler_can_start_any_time() {
        let facts = ProcessFacts {
            args: vec![],
            env: vec![],
            version: Some("3.11".into()),
            resolved: vec!["calls"],
        };
        let lines = missing(&facts);
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].lasts(), "{lines:?}");
    }

    #[test]
    fn libpython_beats_the_executable() {
        for (name, rank) in [
            ("libpython3.12.so.1.0", Some(0)),
            ("libpython3.6m.so.1.0", Some(0)),
            ("libpython2.7.so.1.0", Some(0)),
            ("python3.11", Some(1)),
            ("python3.13t", Some(1)),
            ("python3", Some(1)),
            ("python", Some(1)),
            ("python-config", None),
            ("pythonista", None),
            ("libpythonfoo.so", None),
            ("node", None),
        ] {
            assert_eq!(binary_rank(name), rank, "{name}");
        }
    }

    #[test]
    fn versions_from_file_names() {
        assert_eq!(
            version(Path::new("/usr/bin/python3.11")).as_deref(),
            Some("3.11")
        );
        assert_eq!(
            version(Path::new("/x/lib/libpython3.12.so.1.0")).as_deref(),
            Some("3.12")
        );
        assert_eq!(
            version(Path::new("/x/lib/libpython3.6m.so.1.0")).as_deref(),
            Some("3.6")
        );
        assert_eq!(version(Path::new("/usr/bin/python3")), None);
    }

    #[test]
    fn only_3_11_with_call_probes_needs_a_profiler() {
        let facts = |version: &str, resolved: &[&'static str]| ProcessFacts {
            version: Some(version.into()),
            resolved: resolved.to_vec(),
            ..ProcessFacts::default()
        };
        assert_eq!(missing(&facts("3.11", &["gc", "calls"])).len(), 1);
        assert!(
            missing(&facts("3.11", &["gc"])).is_empty(),
            "the feature's own line covers it"
        );
        assert!(missing(&facts("3.10", &["calls"])).is_empty());
    }

    #[test]
    fn probes_whose_code_in_cpython_can_fail_are_on_demand() {
        let on_demand: Vec<&str> = FEATURES
            .iter()
            .filter(|f| f.on_demand.is_some())
            .map(|f| f.name)
            .collect();
        assert_eq!(on_demand, ["imports", "calls"]);
        assert!(
            PYTHON.flow_on_demand().is_some(),
            "the flow raises the call probes"
        );
        assert!(crate::jvm::JVM.flow_on_demand().is_none());
        assert_eq!(crate::on_demand_features(), ["calls", "imports", "objects"]);
    }

    #[test]
    fn labels() {
        assert_eq!(
            key_label(METHOD_CALL, ["/srv/app.py", "fib", ""], [1, 2, 12]),
            "fib (/srv/app.py:12)"
        );
    }
}
