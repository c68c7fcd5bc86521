//! USDT probes whose arguments include strings, and how the older `ustat trace TARGET PROBE`
//! form prints them: as a `u:` spec's format would (`PTR:LEN` for HotSpot's names, which are
//! not NUL-terminated; `char *` for CPython's). A probe not listed prints its arguments as
//! numbers. These are the runtimes' documented argument lists (HotSpot's `hotspot.d`,
//! CPython's `Include/pydtrace.d`).

/// (provider, name, the spec text after the probe: format and arguments).
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "hotspot",
        "class__loaded",
        r#""%s %llu %d", arg1:arg2, arg3, arg4"#,
    ),
    (
        "hotspot",
        "class__unloaded",
        r#""%s %llu %d", arg1:arg2, arg3, arg4"#,
    ),
    (
        "hotspot",
        "thread__start",
        r#""%s %lld %lld %d", arg1:arg2, arg3, arg4, arg5"#,
    ),
    (
        "hotspot",
        "thread__stop",
        r#""%s %lld %lld %d", arg1:arg2, arg3, arg4, arg5"#,
    ),
    (
        "python",
        "function__entry",
        r#""%s %s %d", arg1, arg2, arg3"#,
    ),
    (
        "python",
        "function__return",
        r#""%s %s %d", arg1, arg2, arg3"#,
    ),
    ("python", "import__find__load__start", r#""%s", arg1"#),
    (
        "python",
        "import__find__load__done",
        r#""%s %d", arg1, arg2"#,
    ),
];

/// The spec that prints `provider:name`'s strings, if it is a known probe.
pub fn spec_for(provider: &str, name: &str) -> Option<super::spec::Spec> {
    let (_, _, rest) = KNOWN
        .iter()
        .find(|(p, n, _)| *p == provider && *n == name)?;
    super::spec::parse(&format!("u::{provider}:{name} {rest}")).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_entry_parses() {
        for (provider, name, _) in super::KNOWN {
            assert!(
                super::spec_for(provider, name).is_some(),
                "{provider}:{name}"
            );
        }
        assert!(super::spec_for("hotspot", "gc__begin").is_none());
    }
}
