//! Compiler clones of a function in a symbol table: GCC emits `f.constprop.3` (arguments
//! folded to constants), `f.isra.0` (arguments split or passed by value), `f.part.0` (a
//! piece split off) and `f.cold` (the unlikely half). A binary whose callers call only a
//! clone has no probe-able `f` worth the name: the clone is where the calls go.

/// The suffixes GCC and Clang give to a clone, each followed by `.N` except `cold`, which
/// may stand alone.
const KINDS: &[&str] = &[
    "constprop",
    "isra",
    "part",
    "cold",
    "lto_priv",
    "localalias",
];

/// A symbol name split into the function it was cloned from and the clone kinds, innermost
/// first: `f.constprop.0.isra.1` is `f` with `["constprop", "isra"]`; `f` is `f` with none.
/// A suffix ustat does not know ends the splitting, so the name keeps it and matches nothing.
pub fn split(name: &str) -> (&str, Vec<&str>) {
    let mut base = name;
    let mut kinds = Vec::new();
    loop {
        // Take `.N` (digits) off the end, if there is one.
        let without_number = match base.rsplit_once('.') {
            Some((rest, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => base,
        };
        let Some((rest, kind)) = without_number.rsplit_once('.') else {
            break;
        };
        let numbered = without_number.len() != base.len();
        if !KINDS.contains(&kind) || (!numbered && kind != "cold") || rest.is_empty() {
            break;
        }
        kinds.push(kind);
        base = rest;
    }
    kinds.reverse();
    (base, kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_clone_suffixes() {
        assert_eq!(split("collect"), ("collect", vec![]));
        assert_eq!(split("collect.constprop.0"), ("collect", vec!["constprop"]));
        assert_eq!(
            split(
                "_ZN2v88internal4Heap24PerformGarbageCollectionENS0_16GarbageCollectorENS_15GCCallbackFlagsE.constprop.1307"
            ),
            (
                "_ZN2v88internal4Heap24PerformGarbageCollectionENS0_16GarbageCollectorENS_15GCCallbackFlagsE",
                vec!["constprop"]
            )
        );
        assert_eq!(
            split("f.constprop.0.isra.1"),
            ("f", vec!["constprop", "isra"])
        );
        assert_eq!(split("f.part.0"), ("f", vec!["part"]));
        assert_eq!(split("f.cold"), ("f", vec!["cold"]));
        assert_eq!(split("f.isra.0.cold"), ("f", vec!["isra", "cold"]));
    }

    #[test]
    fn leaves_what_is_not_a_clone() {
        assert_eq!(split("f.unknown.3"), ("f.unknown.3", vec![]));
        assert_eq!(split("f.constprop"), ("f.constprop", vec![]));
        assert_eq!(split(".constprop.0"), (".constprop.0", vec![]));
        assert_eq!(split("f.3"), ("f.3", vec![]));
        assert_eq!(split(""), ("", vec![]));
    }
}
