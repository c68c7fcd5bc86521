//! Node.js, through uprobes on V8 and libuv functions found by name in the node binary's
//! symbol table (Node has had no USDT since v19, and official builds never had any). A
//! build that still has the old `node` USDT provider (<= 18 with --with-dtrace) uses it
//! for GCs.

use std::path::Path;

use ustat_common::category::{GC, HTTP_PARSED, THREAD_STARTED};

use crate::{Action, Arg, Feature, Missing, ProcessFacts, Rule, Runtime};

pub static NODE: Runtime = Runtime {
    name: "node",
    binary_hint: "node or libnode.so",
    detect: |file| {
        let name = file.file_name();
        (name == "node" || name == "nodejs" || name.starts_with("libnode.so")).then_some(0)
    },
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
/// llhttp calls this for every message it starts parsing; its argument is the parser, whose
/// `type` byte (offset 72) is 1 for a request (server side), 2 for a response.
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
                Rule::function(
                    PERFORM_GC,
                    "8@%rdi 1@%sil",
                    Action::SpanBegin {
                        category: GC,
                        subkey: Arg::N(1),
                    },
                ),
                Rule::function_return(
                    PERFORM_GC,
                    "8@%rax",
                    Action::SpanEnd {
                        category: GC,
                        value: Arg::None,
                    },
                ),
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
        alternatives: &[&[Rule::function(
            "uv_thread_create_ex",
            "8@%rdi",
            Action::Count {
                category: THREAD_STARTED,
                subkey: Arg::None,
                value: Arg::None,
            },
        )]],
        unavailable: "threads: not traced: this node binary has no symbol uv_thread_create_ex",
        on_demand: None,
    },
    Feature {
        name: "http",
        categories: &[HTTP_PARSED],
        alternatives: &[&[Rule::function(
            ON_MESSAGE_BEGIN,
            "1@72(%rdi)",
            Action::Count {
                category: HTTP_PARSED,
                subkey: Arg::N(0),
                value: Arg::None,
            },
        )]],
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

    #[test]
    fn finds_node() {
        use crate::NameOnly;
        assert_eq!((NODE.detect)(&NameOnly("node")), Some(0));
        assert_eq!((NODE.detect)(&NameOnly("libnode.so.108")), Some(0));
        assert_eq!((NODE.detect)(&NameOnly("nodemon")), None);
    }
}
