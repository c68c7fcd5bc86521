//! PHP (the Zend engine), through the `php` USDT provider of the php executable (CLI, CGI,
//! php-fpm) or an embedded libphp. Every probe is semaphore-gated.
//!
//! PHP fires its function and compile probes only when started with `USE_ZEND_DTRACE=1`:
//! only then does it route execution and compilation through its DTrace wrappers. The
//! exception, error and request probes fire without it. Names (function, class, file) are
//! the engine's own strings, which stay put while their code is loaded: keyed by pointer.
//!
//! exception__caught's argument spec in Debian's php8.2 does not point at the class name
//! (bpftrace reads garbage from it), so caught exceptions are counted, not named.

use std::path::Path;

use ustat_common::category::{
    EXCEPTION, EXCEPTION_CAUGHT, IMPORT, METHOD_CALL, REQUEST, RUNTIME_ERROR,
};

use crate::{Action, Arg, Feature, Flow, Key, Missing, Point, ProcessFacts, Rule, Runtime};

pub static PHP: Runtime = Runtime {
    name: "php",
    binary_hint: "php, php-fpm, php-cgi or libphp",
    detect: |file| is_php_binary(file.file_name()).then_some(0),
    option_variables: &["USE_ZEND_DTRACE"],
    features: FEATURES,
    gc_kind: |_| "other",
    gc_kinds: &[],
    key_label,
    version: |binary, _| version(binary),
    missing,
    flow: Some(Flow {
        entry: Point::Usdt {
            provider: "php",
            name: "function__entry",
        },
        exit: Point::Usdt {
            provider: "php",
            name: "function__return",
        },
        keys: FUNCTION_KEYS,
        class_prefix: |prefix| prefix.to_string(),
        slots: ["class", "function"],
        hint: "PHP fires its function probes only when started with USE_ZEND_DTRACE=1.",
        feature: "calls",
    }),
};

/// function__entry/return(function, file, line, class, scope): a function is its class
/// (empty for a plain function) and name.
const FUNCTION_KEYS: [Key; 3] = [Key::CStr(3), Key::CStr(0), Key::None];

/// `php`, `php8.2`, `php-fpm8.2`, `php-cgi`, `libphp.so`, `libphp8.2.so`
fn is_php_binary(file_name: &str) -> bool {
    let version_or_nothing = |rest: &str| rest.chars().all(|c| c.is_ascii_digit() || c == '.');
    if let Some(rest) = file_name.strip_prefix("libphp") {
        return rest
            .split_once(".so")
            .is_some_and(|(version, _)| version_or_nothing(version));
    }
    let Some(rest) = file_name.strip_prefix("php") else {
        return false;
    };
    let rest = rest
        .strip_prefix("-fpm")
        .or_else(|| rest.strip_prefix("-cgi"))
        .unwrap_or(rest);
    version_or_nothing(rest)
}

/// `8.2` from `php8.2`, `php-fpm8.2` or `libphp8.2.so`.
fn version(binary: &Path) -> Option<String> {
    let name = binary.file_name()?.to_str()?;
    let start = name.find(|c: char| c.is_ascii_digit())?;
    crate::leading_version(&name[start..])
}

const fn count(name: &'static str, category: u32) -> Rule {
    Rule::usdt(
        "php",
        name,
        Action::Count {
            category,
            subkey: Arg::None,
            value: Arg::None,
        },
    )
}

const fn span(begin: &'static str, end: &'static str, category: u32) -> [Rule; 2] {
    [
        Rule::usdt(
            "php",
            begin,
            Action::SpanBegin {
                category,
                subkey: Arg::None,
            },
        ),
        Rule::usdt(
            "php",
            end,
            Action::SpanEnd {
                category,
                value: Arg::None,
            },
        ),
    ]
}

macro_rules! unavailable {
    ($what:literal) => {
        concat!(
            $what,
            ": not traced: this PHP was built without USDT probes (--enable-dtrace)"
        )
    };
}

static FEATURES: &[Feature] = &[
    Feature {
        name: "calls",
        categories: &[METHOD_CALL],
        alternatives: &[&[Rule::usdt(
            "php",
            "function__entry",
            Action::Keyed {
                category: METHOD_CALL,
                keys: FUNCTION_KEYS,
                value: Arg::None,
            },
        )]],
        unavailable: unavailable!("function calls"),
        on_demand: None,
    },
    Feature {
        name: "compiles",
        categories: &[IMPORT],
        // compile__file__entry/return(opened path, file): every file compiled (included,
        // required, the script itself), with its time.
        alternatives: &[&span(
            "compile__file__entry",
            "compile__file__return",
            IMPORT,
        )],
        unavailable: unavailable!("compiled files"),
        on_demand: None,
    },
    Feature {
        name: "exceptions",
        categories: &[EXCEPTION, EXCEPTION_CAUGHT],
        // exception__thrown(class); one of its two sites passes no class (0), which the
        // view shows as an empty name.
        alternatives: &[&[
            Rule::usdt(
                "php",
                "exception__thrown",
                Action::Keyed {
                    category: EXCEPTION,
                    keys: [Key::CStr(0), Key::None, Key::None],
                    value: Arg::None,
                },
            ),
            count("exception__caught", EXCEPTION_CAUGHT),
        ]],
        unavailable: unavailable!("exceptions"),
        on_demand: None,
    },
    Feature {
        name: "errors",
        categories: &[RUNTIME_ERROR],
        // error(message, file, line). Debian's php8.2 did not fire it for trigger_error
        // warnings (checked with bpftrace, with and without USE_ZEND_DTRACE=1).
        alternatives: &[&[count("error", RUNTIME_ERROR)]],
        unavailable: unavailable!("errors"),
        on_demand: None,
    },
    Feature {
        name: "requests",
        categories: &[REQUEST],
        // request__startup/shutdown(file, uri, method): a php-fpm request, or a CLI run.
        alternatives: &[&span("request__startup", "request__shutdown", REQUEST)],
        unavailable: unavailable!("requests"),
        on_demand: None,
    },
];

/// `Marker::work`, or `work` for a plain function.
fn key_label(category: u32, [class, name, _]: [&str; 3], _values: [u64; 3]) -> String {
    match category {
        METHOD_CALL if !class.is_empty() => format!("{class}::{name}"),
        METHOD_CALL => name.to_string(),
        _ if class.is_empty() => "(unnamed)".to_string(),
        _ => class.to_string(),
    }
}

fn missing(facts: &ProcessFacts) -> Vec<Missing> {
    let enabled = facts
        .env("USE_ZEND_DTRACE")
        .is_some_and(|v| v.parse::<i64>().is_ok_and(|n| n != 0));
    if enabled {
        return Vec::new();
    }
    let mut categories = Vec::new();
    if facts.resolved.contains(&"calls") {
        categories.push(METHOD_CALL);
    }
    if facts.resolved.contains(&"compiles") {
        categories.push(IMPORT);
    }
    if categories.is_empty() {
        return Vec::new();
    }
    vec![Missing {
        categories,
        text: "function calls and compiled files: not traced; PHP fires these probes only when \
               started with USE_ZEND_DTRACE=1, which cannot be switched on in a running process"
            .to_string(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_php_binaries() {
        for (name, is) in [
            ("php", true),
            ("php8.2", true),
            ("php-fpm8.2", true),
            ("php-fpm", true),
            ("php-cgi8.2", true),
            ("libphp.so", true),
            ("libphp8.2.so", true),
            ("phpize", false),
            ("php-config", false),
            ("libphpx.so", false),
            ("python3", false),
        ] {
            assert_eq!(is_php_binary(name), is, "{name}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(
            version(Path::new("/usr/bin/php8.2")).as_deref(),
            Some("8.2")
        );
        assert_eq!(
            version(Path::new("/usr/sbin/php-fpm8.2")).as_deref(),
            Some("8.2")
        );
        assert_eq!(version(Path::new("/usr/bin/php")), None);
    }

    #[test]
    fn calls_need_use_zend_dtrace() {
        let facts = |env: &[(&str, &str)]| ProcessFacts {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            resolved: vec!["calls", "compiles", "exceptions"],
            ..ProcessFacts::default()
        };
        let lines = missing(&facts(&[]));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].categories, [METHOD_CALL, IMPORT]);
        assert!(lines[0].text.contains("USE_ZEND_DTRACE=1"));
        assert!(missing(&facts(&[("USE_ZEND_DTRACE", "1")])).is_empty());
        assert_eq!(missing(&facts(&[("USE_ZEND_DTRACE", "0")])).len(), 1);
    }

    #[test]
    fn labels() {
        assert_eq!(
            key_label(METHOD_CALL, ["UstatMarker", "marked", ""], [1, 2, 0]),
            "UstatMarker::marked"
        );
        assert_eq!(
            key_label(METHOD_CALL, ["", "ustat_marked", ""], [1, 2, 0]),
            "ustat_marked"
        );
        assert_eq!(key_label(EXCEPTION, ["E", "", ""], [1, 0, 0]), "E");
    }
}
