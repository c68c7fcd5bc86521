//! The method flow: entry and return events as the kernel sent them, method names by hash,
//! and the call tree as folded stacks.

pub mod text;

use std::collections::HashMap;

use ustat_common::{CountKey, FlowEvent, KEY_SLOTS, KeyedKey, PathTotals, flow_kind, method_hash};
use ustat_runtimes::{Key, Runtime};

/// One entry or return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlowLine {
    /// Order of arrival, unique (for folding and selection).
    pub seq: u64,
    /// Kernel timestamp (CLOCK_MONOTONIC), ns.
    pub ts_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub kind: Kind,
    /// Calls open below this one on the thread.
    pub depth: u32,
    pub method: u64,
    /// Inclusive duration, for returns.
    pub duration_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Entry,
    Return,
    /// Ended without a return probe (an exception unwound it).
    Unwound,
}

/// The line of a `FlowEvent` (see `bpf::events`), numbered `seq`; none for a kind this
/// ustat does not know.
pub fn line(event: &FlowEvent, seq: u64) -> Option<FlowLine> {
    let kind = match event.kind {
        flow_kind::ENTRY => Kind::Entry,
        flow_kind::RETURN => Kind::Return,
        flow_kind::UNWOUND => Kind::Unwound,
        _ => return None,
    };
    Some(FlowLine {
        seq,
        ts_ns: event.header.ts_ns,
        pid: event.header.pid,
        tid: event.header.tid,
        kind,
        depth: event.depth,
        method: event.method,
        duration_ns: event.duration_ns,
    })
}

/// The hash the flow programs give a method whose calls-feature key is `key`: the slots the
/// runtime's flow leaves out are zero.
pub fn flow_hash(runtime: &Runtime, key: &KeyedKey) -> Option<u64> {
    let flow = runtime.flow?;
    let mut keys = [0u64; KEY_SLOTS];
    for (slot, k) in flow.keys.iter().enumerate() {
        if *k != Key::None {
            keys[slot] = key.keys[slot];
        }
    }
    Some(method_hash(&keys))
}

/// A method's name as a frame of a folded stack: semicolons separate frames and the last
/// space the count, so neither is in a name (`Demo.work(int, String)` -> `Demo.work(int,String)`).
pub fn folded_frame(label: &str) -> String {
    label
        .replace(';', ":")
        .replace(", ", ",")
        .replace(char::is_whitespace, "_")
}

/// Folded stacks (`a;b;c calls`), one line per call path of `pid`, for flame-graph tools.
/// `label` names a method hash.
pub fn folded(
    paths: &HashMap<CountKey, PathTotals>,
    pid: u32,
    label: impl Fn(u64) -> String,
) -> Vec<String> {
    let of_pid: HashMap<u64, &PathTotals> = paths
        .iter()
        .filter(|(k, _)| k.pid == pid)
        .map(|(k, v)| (k.subkey, v))
        .collect();
    let mut lines: Vec<String> = of_pid
        .iter()
        .filter(|(_, totals)| totals.calls > 0)
        .map(|(_, totals)| {
            let mut frames = Vec::new();
            let mut current = Some(**totals);
            // A path is at most as deep as the kernel's stack; the bound also stops a cycle
            // (which two hashes colliding could make).
            while let Some(step) = current
                && frames.len() < ustat_common::MAX_STACK
            {
                frames.push(folded_frame(&label(step.method)));
                current = match step.parent {
                    0 => None,
                    parent => of_pid.get(&parent).map(|t| **t),
                };
            }
            frames.reverse();
            format!("{} {}", frames.join(";"), totals.calls)
        })
        .collect();
    lines.sort();
    lines
}

#[cfg(test)]
mod tests {
    use ustat_common::{category, path_hash};

    use super::*;

    #[test]
    fn folded_stacks_walk_each_path_to_its_root() {
        // a -> b (3 calls), a -> c, and d -> d -> d
        let (a, b, c, d) = (1, 2, 3, 4);
        let pa = path_hash(0, a);
        let pab = path_hash(pa, b);
        let pac = path_hash(pa, c);
        let pd = path_hash(0, d);
        let pdd = path_hash(pd, d);
        let pddd = path_hash(pdd, d);
        let mut paths = HashMap::new();
        for (hash, parent, method, calls) in [
            (pa, 0, a, 1),
            (pab, pa, b, 3),
            (pac, pa, c, 1),
            (pd, 0, d, 1),
            (pdd, pd, d, 1),
            (pddd, pdd, d, 1),
        ] {
            paths.insert(
                CountKey {
                    pid: 9,
                    category: category::CALL_PATH,
                    subkey: hash,
                    epoch: 0,
                },
                PathTotals {
                    calls,
                    parent,
                    method,
                    self_ns: 0,
                },
            );
        }
        paths.insert(
            CountKey {
                pid: 10,
                category: category::CALL_PATH,
                subkey: 77,
                epoch: 0,
            },
            PathTotals {
                calls: 5,
                parent: 0,
                method: a,
                self_ns: 0,
            },
        );
        let names = |m: u64| ["?", "a", "b", "c", "d;x"][m as usize].to_string();
        assert_eq!(
            folded(&paths, 9, names),
            [
                "a 1",
                "a;b 3",
                "a;c 1",
                "d:x 1",
                "d:x;d:x 1",
                "d:x;d:x;d:x 1"
            ]
        );
    }
}
