//! HotSpot JVMs, through the `hotspot` USDT provider in `libjvm.so` (no semaphores).
//!
//! Strings are (pointer, length) pairs, not NUL-terminated; class names use `/`. Method,
//! allocation and monitor probes fire only when the JVM was started with the flags that
//! enable them; `missing` says which.

use std::path::Path;

use ustat_common::category::{
    ALLOC_BYTES, CLASS_LOADED, CLASS_UNLOADED, GC, METHOD_CALL, MONITOR_CONTENDED, OBJECT_ALLOC,
    POOL_GC_BEGIN, POOL_GC_END, THREAD_STARTED, THREAD_STOPPED,
};

use crate::{
    Action, Arg, Feature, Flow, Key, Missing, Point, ProcessFacts, Rule, Runtime, ValueWidth,
};

pub static JVM: Runtime = Runtime {
    name: "jvm",
    binary_hint: "libjvm.so",
    detect: |file| (file.file_name() == "libjvm.so").then_some(0),
    // HotSpot reads JAVA_TOOL_OPTIONS, then the command line (the launcher puts
    // JDK_JAVA_OPTIONS in front of it), then _JAVA_OPTIONS; the last setting wins.
    option_variables: &["JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"],
    features: FEATURES,
    // gc__begin's argument is "is this a full GC".
    gc_kind: |is_full| if is_full != 0 { "major" } else { "minor" },
    gc_kinds: &["minor", "major"],
    key_label,
    version,
    missing,
    flow: Some(Flow {
        entry: Point::Usdt {
            provider: "hotspot",
            name: "method__entry",
        },
        exit: Point::Usdt {
            provider: "hotspot",
            name: "method__return",
        },
        keys: METHOD_KEYS,
        class_prefix: |prefix| prefix.replace('.', "/"),
        slots: ["class", "method"],
        hint: "A JVM fires its method probes only when started with -XX:+ExtendedDTraceProbes (JDK 19 and older) or -XX:+DTraceMethodProbes.",
        feature: "calls",
    }),
};

/// method__entry/return(thread, class, len, method, len, signature, len): a method is its
/// three name pointers, which stay put while the class is loaded.
const METHOD_KEYS: [Key; 3] = [Key::PtrLen(1, 2), Key::PtrLen(3, 4), Key::PtrLen(5, 6)];

const fn count(category: u32) -> Action {
    Action::Count {
        category,
        subkey: Arg::None,
        value: Arg::None,
    }
}

/// A feature that is a fixed set of hotspot probes (every libjvm.so has them all); `what`
/// starts its "not traced" line.
macro_rules! hotspot {
    ($name:literal, $what:literal, $categories:expr, $rules:expr $(,)?) => {
        Feature {
            name: $name,
            categories: $categories,
            alternatives: $rules,
            unavailable: concat!(
                $what,
                ": not traced: this libjvm.so lacks the hotspot USDT probes (a build without DTrace support)"
            ),
            on_demand: None,
        }
    };
}

static FEATURES: &[Feature] = &[
    hotspot!(
        "gc",
        "GC",
        &[GC],
        &[&[
            // gc__begin(is_full) and gc__end() wrap each GC pause, on the VM thread.
            Rule::usdt(
                "hotspot",
                "gc__begin",
                Action::SpanBegin {
                    category: GC,
                    subkey: Arg::N(0),
                },
            ),
            Rule::usdt(
                "hotspot",
                "gc__end",
                Action::SpanEnd {
                    category: GC,
                    value: Arg::None,
                },
            ),
            // Once per memory pool per GC (manager, pool, init, used, committed, max): pool
            // usage before and after, never extra GCs.
            Rule::usdt(
                "hotspot",
                "mem__pool__gc__begin",
                Action::Keyed {
                    category: POOL_GC_BEGIN,
                    keys: [Key::PtrLen(0, 1), Key::PtrLen(2, 3), Key::None],
                    value: Arg::N(5),
                },
            ),
            Rule::usdt(
                "hotspot",
                "mem__pool__gc__end",
                Action::Keyed {
                    category: POOL_GC_END,
                    keys: [Key::PtrLen(0, 1), Key::PtrLen(2, 3), Key::None],
                    value: Arg::N(5),
                },
            ),
        ]],
    ),
    hotspot!(
        "classes",
        "classes",
        &[CLASS_LOADED, CLASS_UNLOADED],
        &[&[
            Rule::usdt("hotspot", "class__loaded", count(CLASS_LOADED)),
            Rule::usdt("hotspot", "class__unloaded", count(CLASS_UNLOADED)),
        ]],
    ),
    hotspot!(
        "threads",
        "threads",
        &[THREAD_STARTED, THREAD_STOPPED],
        &[&[
            Rule::usdt("hotspot", "thread__start", count(THREAD_STARTED)),
            Rule::usdt("hotspot", "thread__stop", count(THREAD_STOPPED)),
        ]],
    ),
    hotspot!(
        "calls",
        "method calls",
        &[METHOD_CALL],
        &[&[Rule::usdt(
            "hotspot",
            "method__entry",
            Action::Keyed {
                category: METHOD_CALL,
                keys: METHOD_KEYS,
                value: Arg::None,
            },
        )]],
    ),
    // object__alloc(thread, class, len, size). In OpenJDK 17 the probe's function takes the
    // size as an `int` that the interpreter and C1 never pass (they call it with the object
    // only), so their allocations carry a stray register (seen: 0, about 2^31, negative, and
    // values that add up to GB/s from a 64 MB heap): no size from such a libjvm.so is summed.
    // Later HotSpots compute the size from the object itself and pass it as a `size_t`.
    hotspot!(
        "allocations",
        "allocations",
        &[OBJECT_ALLOC],
        &[&[Rule::usdt(
            "hotspot",
            "object__alloc",
            Action::Keyed {
                category: OBJECT_ALLOC,
                keys: [Key::PtrLen(1, 2), Key::None, Key::None],
                value: Arg::N(3),
            },
        )
        .values_below(1 << 30)
        .values_only_if(ValueWidth {
            bytes: 8,
            category: ALLOC_BYTES,
            otherwise: "allocated bytes: not traced: this HotSpot's object__alloc probe gets no \
                        size from interpreted and C1-compiled code (OpenJDK 17 and older; counts \
                        are exact)",
        })]],
    ),
    // monitor__contended__enter(thread, monitor, class, len)
    hotspot!(
        "monitors",
        "monitor contention",
        &[MONITOR_CONTENDED],
        &[&[Rule::usdt(
            "hotspot",
            "monitor__contended__enter",
            Action::Keyed {
                category: MONITOR_CONTENDED,
                keys: [Key::PtrLen(2, 3), Key::None, Key::None],
                value: Arg::None,
            },
        )]],
    ),
];

/// A class name as Java source writes it: `java/lang/String` -> `java.lang.String`, and an
/// array class's descriptor -> its element type with `[]` per dimension (`[B` -> `byte[]`,
/// `[[Ljava/lang/String;` -> `java.lang.String[][]`).
fn class_name(class: &str) -> String {
    if !class.starts_with('[') {
        return class.replace('/', ".");
    }
    let mut rest = class;
    match field_type(&mut rest, false) {
        Some(name) if rest.is_empty() => name,
        // Not a descriptor HotSpot would pass: shown as it came, dotted.
        _ => class.replace('/', "."),
    }
}

/// One field type of a descriptor, taken from the front of `rest`: `I` -> `int`,
/// `Ljava/lang/String;` -> `java.lang.String` (or `String` when `simple`), `[I` -> `int[]`.
fn field_type(rest: &mut &str, simple: bool) -> Option<String> {
    let mut dimensions = 0;
    while let Some(after) = rest.strip_prefix('[') {
        dimensions += 1;
        *rest = after;
    }
    let mut chars = rest.chars();
    let base = match chars.next()? {
        'B' => "byte".to_string(),
        'C' => "char".to_string(),
        'D' => "double".to_string(),
        'F' => "float".to_string(),
        'I' => "int".to_string(),
        'J' => "long".to_string(),
        'S' => "short".to_string(),
        'Z' => "boolean".to_string(),
        'V' => "void".to_string(),
        'L' => {
            let (class, after) = chars.as_str().split_once(';')?;
            *rest = after;
            let name = if simple {
                class.rsplit('/').next().unwrap_or(class)
            } else {
                class
            };
            return Some(format!(
                "{}{}",
                name.replace('/', "."),
                "[]".repeat(dimensions)
            ));
        }
        _ => return None,
    };
    *rest = chars.as_str();
    Some(format!("{base}{}", "[]".repeat(dimensions)))
}

/// A method descriptor's parameters as Java source lists them, with simple class names:
/// `(ILjava/lang/String;[J)V` -> `(int, String, long[])`. `None` when it is not a
/// descriptor.
fn parameters(descriptor: &str) -> Option<String> {
    let (inside, _return) = descriptor.strip_prefix('(')?.split_once(')')?;
    let mut rest = inside;
    let mut types = Vec::new();
    while !rest.is_empty() {
        types.push(field_type(&mut rest, true)?);
    }
    Some(format!("({})", types.join(", ")))
}

/// A method as Java source names it, from its class (`java/util/HashMap`), name and
/// descriptor: `java.util.HashMap.get(Object)`. Overloads differ only by their parameters,
/// so they are part of the name.
pub fn method_label(class: &str, method: &str, descriptor: &str) -> String {
    let signature = parameters(descriptor).unwrap_or_else(|| descriptor.to_string());
    format!("{}.{method}{signature}", class_name(class))
}

fn key_label(category: u32, [first, second, third]: [&str; 3], _values: [u64; 3]) -> String {
    match category {
        METHOD_CALL => method_label(first, second, third),
        POOL_GC_BEGIN | POOL_GC_END => format!("{first}: {second}"),
        _ => class_name(first),
    }
}

/// The JVM's major version: `17` from `17.0.15`, `8` from `1.8.0_392`.
pub fn major_version(version: &str) -> Option<u32> {
    let mut parts = version.split(['.', '_', '-', '+']);
    match parts.next()?.parse().ok()? {
        1 => parts.next()?.parse().ok(),
        major => Some(major),
    }
}

/// The JDK version from the `release` file of the Java home that holds `libjvm`
/// (`<home>/lib/server/libjvm.so`, or `<home>/jre/lib/amd64/server/libjvm.so` for JDK 8).
pub fn version(libjvm: &Path, read: crate::ReadText<'_>) -> Option<String> {
    libjvm.ancestors().skip(1).take(5).find_map(|dir| {
        let release = read(&dir.join("release"))?;
        release.lines().find_map(|line| {
            let value = line.strip_prefix("JAVA_VERSION=")?;
            Some(value.trim_matches('"').to_string())
        })
    })
}

/// The last setting of a boolean `-XX:` flag on the command line or in the option
/// variables the JVM reads.
fn flag(facts: &ProcessFacts, name: &str) -> Option<bool> {
    let on = format!("-XX:+{name}");
    let off = format!("-XX:-{name}");
    // In the order HotSpot reads them (see `option_variables`).
    let from_env = ["JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS"]
        .iter()
        .filter_map(|var| facts.env(var))
        .flat_map(str::split_whitespace);
    let args = facts.args.iter().map(String::as_str);
    let overrides = facts
        .env("_JAVA_OPTIONS")
        .into_iter()
        .flat_map(str::split_whitespace);
    let settings: Vec<bool> = from_env
        .chain(args)
        .chain(overrides)
        .filter_map(|arg| {
            if arg == on {
                Some(true)
            } else if arg == off {
                Some(false)
            } else {
                None
            }
        })
        .collect();
    settings.last().copied()
}

fn missing(facts: &ProcessFacts) -> Vec<Missing> {
    let major = facts.version.as_deref().and_then(major_version);
    // JDK 20 made ExtendedDTraceProbes a no-op; the three specific flags work everywhere.
    let extended_works = major.is_none_or(|m| m <= 19);
    let extended = extended_works && flag(facts, "ExtendedDTraceProbes") == Some(true);
    let mut lines = Vec::new();
    for (category, what, specific) in [
        (METHOD_CALL, "method calls", "DTraceMethodProbes"),
        (OBJECT_ALLOC, "allocations", "DTraceAllocProbes"),
        (
            MONITOR_CONTENDED,
            "monitor contention",
            "DTraceMonitorProbes",
        ),
    ] {
        if extended || flag(facts, specific) == Some(true) {
            continue;
        }
        let how = if extended_works {
            format!("-XX:+ExtendedDTraceProbes (or -XX:+{specific})")
        } else {
            format!("-XX:+{specific}")
        };
        lines.push(Missing {
            categories: vec![category],
            text: format!(
                "{what}: not traced; HotSpot fires these probes only when started with {how}, \
                 which cannot be switched on in a running JVM"
            ),
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(args: &[&str], env: &[(&str, &str)], version: &str) -> ProcessFacts {
        ProcessFacts {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            version: Some(version.to_string()),
            resolved: vec!["calls", "allocations", "monitors"],
        }
    }

    #[test]
    fn finds_libjvm_only() {
        use crate::NameOnly;
        assert_eq!((JVM.detect)(&NameOnly("libjvm.so")), Some(0));
        assert_eq!((JVM.detect)(&NameOnly("libjava.so")), None);
        assert_eq!((JVM.detect)(&NameOnly("java")), None);
    }

    #[test]
    fn versions() {
        assert_eq!(major_version("17.0.15"), Some(17));
        assert_eq!(major_version("1.8.0_392"), Some(8));
        assert_eq!(major_version("25"), Some(25));
        assert_eq!(major_version("21-ea"), Some(21));
        assert_eq!(major_version("x"), None);
    }

    #[test]
    fn without_flags_everything_optional_is_missing_and_the_flag_is_named() {
        let lines: Vec<String> = missing(&facts(&["java", "-jar", "app.jar"], &[], "17.0.15"))
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("method calls: not traced"),
            "{lines:?}"
        );
        assert!(lines[0].contains("-XX:+ExtendedDTraceProbes"), "{lines:?}");
        // A flag is fixed when the JVM starts: the flow refuses at once.
        assert!(
            missing(&facts(&["java"], &[], "17"))
                .iter()
                .all(Missing::lasts)
        );
        let lines = missing(&facts(&["java"], &[], "21.0.2"));
        assert_eq!(lines[0].categories, [METHOD_CALL]);
        assert!(
            lines[0].text.contains("-XX:+DTraceMethodProbes"),
            "{lines:?}"
        );
        assert!(!lines[0].text.contains("Extended"), "{lines:?}");
    }

    #[test]
    fn extended_probes_enable_all_up_to_jdk_19() {
        assert!(
            missing(&facts(
                &["java", "-XX:+ExtendedDTraceProbes"],
                &[],
                "17.0.15"
            ))
            .is_empty()
        );
        assert_eq!(
            missing(&facts(&["java", "-XX:+ExtendedDTraceProbes"], &[], "21")).len(),
            3
        );
        let later_off = facts(
            &[
                "java",
                "-XX:+ExtendedDTraceProbes",
                "-XX:-ExtendedDTraceProbes",
            ],
            &[],
            "17",
        );
        assert_eq!(missing(&later_off).len(), 3);
    }

    #[test]
    fn specific_flags_and_option_variables() {
        let lines = missing(&facts(&["java", "-XX:+DTraceMethodProbes"], &[], "21"));
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.categories != [METHOD_CALL]));
        let env = facts(
            &["java"],
            &[("JAVA_TOOL_OPTIONS", "-Xmx1g -XX:+ExtendedDTraceProbes")],
            "17",
        );
        assert!(missing(&env).is_empty());
        let overridden = facts(
            &["java", "-XX:+ExtendedDTraceProbes"],
            &[("_JAVA_OPTIONS", "-XX:-ExtendedDTraceProbes")],
            "17",
        );
        assert_eq!(missing(&overridden).len(), 3);
    }

    #[test]
    fn labels() {
        assert_eq!(
            key_label(
                METHOD_CALL,
                ["java/lang/String", "hashCode", "()I"],
                [1, 2, 3]
            ),
            "java.lang.String.hashCode()"
        );
        assert_eq!(
            key_label(OBJECT_ALLOC, ["[Ljava/lang/Object;", "", ""], [1, 0, 0]),
            "java.lang.Object[]"
        );
        assert_eq!(
            key_label(
                POOL_GC_END,
                ["G1 Young Generation", "G1 Eden Space", ""],
                [1, 2, 0]
            ),
            "G1 Young Generation: G1 Eden Space"
        );
    }

    #[test]
    fn array_classes_read_as_java_source_writes_them() {
        let alloc = |class| key_label(OBJECT_ALLOC, [class, "", ""], [1, 0, 0]);
        assert_eq!(alloc("[B"), "byte[]");
        assert_eq!(alloc("[[I"), "int[][]");
        assert_eq!(alloc("[Ljava/lang/String;"), "java.lang.String[]");
        assert_eq!(alloc("[[[Ljava/util/Map;"), "java.util.Map[][][]");
        assert_eq!(alloc("java/util/HashMap$Node"), "java.util.HashMap$Node");
        // Not a descriptor: as it came, never a panic.
        assert_eq!(alloc("[Q"), "[Q");
        assert_eq!(alloc("[Ljava/lang/String"), "[Ljava.lang.String");
        assert_eq!(alloc("[B;"), "[B;");
    }

    #[test]
    fn overloads_are_told_apart_by_their_parameters() {
        let call = |signature| key_label(METHOD_CALL, ["Demo", "work", signature], [1, 2, 3]);
        assert_eq!(call("()V"), "Demo.work()");
        assert_eq!(call("(I)V"), "Demo.work(int)");
        assert_eq!(call("(ILjava/lang/String;)J"), "Demo.work(int, String)");
        assert_eq!(
            call("([B[[Ljava/lang/Object;ZD)V"),
            "Demo.work(byte[], Object[][], boolean, double)"
        );
        assert_ne!(call("(I)V"), call("(J)V"));
        // A signature that does not parse is kept, so overloads still differ.
        assert_eq!(call("(X)V"), "Demo.work(X)V");
    }
}
