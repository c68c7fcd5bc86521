//! Node.js, through uprobes on V8 and libuv functions found by name in the node binary's
//! symbol table (Node has had no USDT since v19, and official builds never had any). A
//! build that still has the old `node` USDT provider (<= 18 with --with-dtrace) uses it
//! for GCs.

use std::path::Path;

use ustat_common::category::{GC, HTTP_PARSED, THREAD_STARTED};

use crate::{Action, Arg, Candidate, Feature, Missing, ProcessFacts, Rule, Runtime};

pub static NODE: Runtime = Runtime {
    name: "node",
    binary_hint: "node or libnode.so",
    detect,
    option_variables: &["NODE_OPTIONS"],
    features: FEATURES,
    gc_kind,
    gc_kinds: &["minor", "major"],
    key_label: |_, [name, _, _], _| name.to_string(),
    version: |_: &Path, _| None,
    missing: |_: &ProcessFacts| Vec::<Missing>::new(),
    // JavaScript runs as JIT code in anonymous memory: no probe sees its calls.
    flow: None,
};

/// A symbol only the file holding the engine defines: Debian's `/usr/bin/node` is a small
/// launcher whose V8 and Node code live in `libnode.so.108`.
const ENGINE: &str = "_ZN2v82V810InitializeEi";

/// A file named like node is node's binary; the one that defines the engine's symbols
/// ranks above one that only launches it (Debian's launcher and libnode).
fn detect(file: &dyn Candidate) -> Option<u8> {
    let name = file.file_name();
    if !(name == "node" || name == "nodejs" || name.starts_with("libnode.so")) {
        return None;
    }
    Some(if file.has_symbol(ENGINE) { 0 } else { 1 })
}

/// Subkeys from the USDT probe (GCType flags) carry this tag; untagged ones are V8's
/// `GarbageCollector` enum from PerformGarbageCollection.
const USDT_TAG: u32 = 1;

fn gc_kind(subkey: u64) -> &'static str {
    let value = subkey & 0xffff_ffff;
    if subkey >> 32 == u64::from(USDT_TAG) {
        // v8::GCType: kGCTypeScavenge = 1, kGCTypeMarkSweepCompact = 2, kGCTypeMinorMarkCompact = 8
        match value {
            1 | 8 => "minor",
            2 => "major",
            _ => "other",
        }
    } else {
        // v8::internal::GarbageCollector: SCAVENGER, MARK_COMPACTOR, MINOR_MARK_COMPACTOR
        match value {
            0 | 2 => "minor",
            1 => "major",
            _ => "other",
        }
    }
}

/// V8 runs each GC pause in Heap::PerformGarbageCollection(this, GarbageCollector, ...).
const PERFORM_GC: &str = "_ZN2v88internal4Heap24PerformGarbageCollection*";
/// llhttp's parser calls this for every message it starts (Node 16 to 24, official and
/// Debian's builds export it); its argument is the parser, whose `type` byte (offset 72) is
/// 1 for a request (server side), 2 for a response.
const LLHTTP_ON_MESSAGE_BEGIN: &str = "llhttp__on_message_begin";
/// Node's own callback behind it, for builds that do not export llhttp's (its class moved to
/// `node::http_parser::Parser` in Node 22).
const ON_MESSAGE_BEGIN: &str = "_ZN4node12_GLOBAL__N_16Parser5ProxyIMS1_FivEXadL_ZNS1_16on_message_beginEvEEE3RawEP18llhttp__internal_s";

static FEATURES: &[Feature] = &[
    Feature {
        name: "gc",
        categories: &[GC],
        alternatives: &[
            &[
                Rule::usdt(
                    "node",
                    "gc__start",
                    Action::SpanBegin {
                        category: GC,
                        subkey: Arg::N(0),
                    },
                )
                .subkey_tag(USDT_TAG),
                Rule::usdt(
                    "node",
                    "gc__done",
                    Action::SpanEnd {
                        category: GC,
                        value: Arg::None,
                    },
                ),
            ],
            &[
                // Node 16 and 18 call only `PerformGarbageCollection(...) [clone
                // .constprop.N]`, which drops the trailing GCCallbackFlags: `this` stays in
                // %rdi and the collector in %esi (checked in both builds' code).
                Rule::function(
                    PERFORM_GC,
                    "8@%rdi 1@%sil",
                    Action::SpanBegin {
                        category: GC,
                        subkey: Arg::N(1),
                    },
                )
                .clones(&["constprop"]),
                Rule::function_return(
                    PERFORM_GC,
                    "8@%rax",
                    Action::SpanEnd {
                        category: GC,
                        value: Arg::None,
                    },
                )
                .clones(&["constprop"]),
            ],
        ],
        unavailable: "GC: not traced: this node binary has no symbol v8::internal::Heap::PerformGarbageCollection \
                      (a stripped build?)",
        on_demand: None,
    },
    Feature {
        name: "threads",
        categories: &[THREAD_STARTED],
        // Every thread node starts (workers, the libuv pool, V8's platform threads).
        // Official builds contain libuv; Debian's libnode links libuv.so.1.
        alternatives: &[&[Rule::function(
            "uv_thread_create_ex",
            "8@%rdi",
            Action::Count {
                category: THREAD_STARTED,
                subkey: Arg::None,
                value: Arg::None,
            },
        )
        .or_in_library("libuv.so")]],
        unavailable: "threads: not traced: neither this node binary nor a libuv.so it maps has \
                      the symbol uv_thread_create_ex",
        on_demand: None,
    },
    Feature {
        name: "http",
        categories: &[HTTP_PARSED],
        alternatives: &[
            &[Rule::function(
                LLHTTP_ON_MESSAGE_BEGIN,
                "1@72(%rdi)",
                Action::Count {
                    category: HTTP_PARSED,
                    subkey: Arg::N(0),
                    value: Arg::None,
                },
            )],
            &[Rule::function(
                ON_MESSAGE_BEGIN,
                "1@72(%rdi)",
                Action::Count {
                    category: HTTP_PARSED,
                    subkey: Arg::N(0),
                    value: Arg::None,
                },
            )],
        ],
        unavailable: "HTTP: not traced: this node binary has no llhttp parser symbols",
        on_demand: None,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_kinds_from_either_encoding() {
        assert_eq!(gc_kind(0), "minor");
        assert_eq!(gc_kind(1), "major");
        assert_eq!(gc_kind(2), "minor");
        assert_eq!(gc_kind((1 << 32) | 1), "minor");
        assert_eq!(gc_kind((1 << 32) | 2), "major");
        assert_eq!(gc_kind((1 << 32) | 4), "other");
    }

    /// A file that defines the given symbols.
    struct Defines(&'static str, &'static [&'static str]);

    impl Candidate for Defines {
        fn file_name(&self) -> &str {
            self.0
        }
        fn elf(&self) -> Option<&crate::ElfFacts> {
            None
        }
        fn has_symbol(&self, name: &str) -> bool {
            self.1.contains(&name)
        }
    }

    #[test]
    fn the_file_with_the_engine_ranks_above_a_launcher() {
        use crate::NameOnly;
        let launcher = Defines("node", &["main"]);
        let libnode = Defines("libnode.so.108", &[ENGINE]);
        let official = Defines("node", &[ENGINE]);
        assert_eq!((NODE.detect)(&launcher), Some(1));
        assert_eq!((NODE.detect)(&libnode), Some(0));
        assert_eq!((NODE.detect)(&official), Some(0));
        assert_eq!((NODE.detect)(&NameOnly("nodemon")), None);
        assert_eq!((NODE.detect)(&Defines("libv8.so", &[ENGINE])), None);
    }
}
