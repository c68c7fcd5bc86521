//! CRuby (MRI), through the `ruby` USDT provider in libruby (or a ruby executable built
//! without a shared library). Every probe is semaphore-gated.
//!
//! Class names reach the probes as fresh temporary strings (`rb_class_path` duplicates the
//! cached name for each event), so they are keyed by their bytes (`Key::CStrText`), not by
//! their pointers. Method names are interned symbols and keep their pointers.
//!
//! The call and object probes are on demand: with their semaphore raised, Ruby builds that
//! class-name string (and looks up the source location) for every method call or object it
//! creates, which roughly doubles the allocations of a busy program and so changes the GCs
//! ustat reports. With the semaphore raised, Ruby 3.1 fires cmethod__entry for every C
//! method, but method__entry/return (Ruby methods, the flow) only while a TracePoint on
//! :call (entry) and :return (return) is enabled: they are fired from the VM's trace
//! instructions, which exist only for the events a TracePoint enables (checked
//! with bpftrace and `ustat trace` against Debian's libruby-3.1).

use std::path::Path;

use ustat_common::category::{EXCEPTION, GC, GC_SWEEP, IMPORT, METHOD_CALL, OBJECT_ALLOC};

use crate::{
    Action, Arg, Feature, Flow, Key, Missing, OnDemand, Point, ProcessFacts, Rule, Runtime,
};

pub static RUBY: Runtime = Runtime {
    name: "ruby",
    binary_hint: "libruby or a ruby executable",
    detect: |file| binary_rank(file.file_name()),
    option_variables: &[],
    features: FEATURES,
    // The mark probes do not say whether a GC is minor or major.
    gc_kind: |_| "other",
    gc_kinds: &[],
    key_label,
    version: |binary, _| version(binary),
    missing,
    flow: Some(Flow {
        entry: Point::Usdt {
            provider: "ruby",
            name: "method__entry",
        },
        exit: Point::Usdt {
            provider: "ruby",
            name: "method__return",
        },
        keys: METHOD_KEYS,
        class_prefix: |prefix| prefix.to_string(),
        slots: ["class", "method"],
        hint: "Ruby fires its method probes for Ruby methods only while a TracePoint on :call \
               and :return is enabled (C methods are counted, not in the flow).",
        feature: "calls",
    }),
};

/// method__entry/return and cmethod__entry/return(classname, methodname, filename, line):
/// a method is its class and name.
const METHOD_KEYS: [Key; 3] = [Key::CStrText(0), Key::CStr(1), Key::None];

/// libruby carries the VM when a process maps it (Debian's /usr/bin/ruby links it);
/// otherwise a statically built ruby executable does.
fn binary_rank(file_name: &str) -> Option<u8> {
    if let Some(rest) = file_name.strip_prefix("libruby") {
        let rest = rest.strip_prefix('-').unwrap_or(rest);
        return (rest.starts_with(".so")
            || (is_version(rest.split(".so").next()?) && rest.contains(".so")))
        .then_some(0);
    }
    let rest = file_name.strip_prefix("ruby")?;
    (rest.is_empty() || is_version(rest)).then_some(1)
}

/// `3.1`, `3.3.0`
fn is_version(text: &str) -> bool {
    !text.is_empty()
        && text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// `3.1` from `libruby-3.1.so.3.1` or `ruby3.1`.
fn version(binary: &Path) -> Option<String> {
    let name = binary.file_name()?.to_str()?;
    let rest = name
        .strip_prefix("libruby-")
        .or_else(|| name.strip_prefix("ruby"))?;
    crate::leading_version(rest)
}

const fn span(begin: &'static str, end: &'static str, category: u32) -> [Rule; 2] {
    [
        Rule::usdt(
            "ruby",
            begin,
            Action::SpanBegin {
                category,
                subkey: Arg::None,
            },
        ),
        Rule::usdt(
            "ruby",
            end,
            Action::SpanEnd {
                category,
                value: Arg::None,
            },
        ),
    ]
}

const GC_SPANS: [Rule; 2] = span("gc__mark__begin", "gc__mark__end", GC);
const SWEEP_SPANS: [Rule; 2] = span("gc__sweep__begin", "gc__sweep__end", GC_SWEEP);

const fn keyed(name: &'static str, category: u32, keys: [Key; 3]) -> Rule {
    Rule::usdt(
        "ruby",
        name,
        Action::Keyed {
            category,
            keys,
            value: Arg::None,
        },
    )
}

/// The line for a feature whose probes this libruby lacks.
macro_rules! unavailable {
    ($what:literal) => {
        concat!(
            $what,
            ": not traced: this Ruby was built without USDT probes (--enable-dtrace)"
        )
    };
}

const COST: &str = "Ruby builds a class-name string for each event while these probes are raised, \
                    which adds an allocation to every method call or object and so changes the \
                    program's GCs";

static FEATURES: &[Feature] = &[
    Feature {
        name: "gc",
        categories: &[GC, GC_SWEEP],
        // A GC is its mark phase (one per GC, the pause ustat reports); Ruby sweeps lazily in
        // steps afterwards, counted as sweep time beside it.
        alternatives: &[&[GC_SPANS[0], GC_SPANS[1], SWEEP_SPANS[0], SWEEP_SPANS[1]]],
        unavailable: unavailable!("GC"),
        on_demand: None,
    },
    Feature {
        name: "requires",
        categories: &[IMPORT],
        // require__entry(required, file, line) .. require__return(required, file, line),
        // also for a file already loaded (require returns false).
        alternatives: &[&span("require__entry", "require__return", IMPORT)],
        unavailable: unavailable!("requires"),
        on_demand: None,
    },
    Feature {
        name: "exceptions",
        categories: &[EXCEPTION],
        // raise(classname, file, line)
        alternatives: &[&[keyed(
            "raise",
            EXCEPTION,
            [Key::CStrText(0), Key::None, Key::None],
        )]],
        unavailable: unavailable!("exceptions"),
        on_demand: None,
    },
    Feature {
        name: "objects",
        categories: &[OBJECT_ALLOC],
        // object__create(classname, file, line): objects made by Class#new and #allocate
        // (not literals: strings, arrays and hashes have probes of their own).
        alternatives: &[&[keyed(
            "object__create",
            OBJECT_ALLOC,
            [Key::CStrText(0), Key::None, Key::None],
        )]],
        unavailable: unavailable!("objects"),
        on_demand: Some(OnDemand {
            line: "objects: not traced by default: Ruby allocates a string per object while its probe is raised",
            risk: COST,
        }),
    },
    Feature {
        name: "calls",
        categories: &[METHOD_CALL],
        alternatives: &[&[
            keyed("method__entry", METHOD_CALL, METHOD_KEYS),
            keyed("cmethod__entry", METHOD_CALL, METHOD_KEYS),
        ]],
        unavailable: unavailable!("method calls"),
        on_demand: Some(OnDemand {
            line: "method calls: not traced by default: Ruby allocates a string per call while its probes are raised",
            risk: COST,
        }),
    },
];

/// Ruby methods' calls need a TracePoint in the program, which ustat cannot see: the line
/// stays while calls are traced (C methods' calls arrive without one).
fn missing(facts: &ProcessFacts) -> Vec<Missing> {
    if !facts.resolved.contains(&"calls") {
        return Vec::new();
    }
    vec![Missing {
        categories: Vec::new(),
        text: "method calls: Ruby fires its probes for Ruby methods (and so the flow) only while \
               a TracePoint on :call and :return is enabled in the program; C methods are counted \
               without"
            .to_string(),
    }]
}

/// `Marker#work`
fn key_label(category: u32, [class, method, _]: [&str; 3], _values: [u64; 3]) -> String {
    match category {
        METHOD_CALL => format!("{class}#{method}"),
        _ => class.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libruby_beats_the_executable() {
        for (name, rank) in [
            ("libruby-3.1.so.3.1", Some(0)),
            ("libruby.so.3.3", Some(0)),
            ("libruby.so", Some(0)),
            ("ruby", Some(1)),
            ("ruby3.1", Some(1)),
            ("rubyx", None),
            ("libruby-static.a", None),
            ("python3", None),
        ] {
            assert_eq!(binary_rank(name), rank, "{name}");
        }
    }

    #[test]
    fn versions_from_file_names() {
        assert_eq!(
            version(Path::new("/usr/lib/libruby-3.1.so.3.1")).as_deref(),
            Some("3.1")
        );
        assert_eq!(
            version(Path::new("/usr/bin/ruby3.1")).as_deref(),
            Some("3.1")
        );
        assert_eq!(version(Path::new("/usr/bin/ruby")), None);
    }

    #[test]
    fn costly_probes_are_on_demand() {
        let on_demand: Vec<&str> = FEATURES
            .iter()
            .filter(|f| f.on_demand.is_some())
            .map(|f| f.name)
            .collect();
        assert_eq!(on_demand, ["objects", "calls"]);
        assert!(RUBY.flow_on_demand().is_some());
    }

    #[test]
    fn labels() {
        assert_eq!(
            key_label(METHOD_CALL, ["Marker", "work", ""], [1, 2, 0]),
            "Marker#work"
        );
        assert_eq!(
            key_label(EXCEPTION, ["MarkerError", "", ""], [1, 0, 0]),
            "MarkerError"
        );
    }
}
