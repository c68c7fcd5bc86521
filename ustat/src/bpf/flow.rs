//! The flow maps: per-method timing, call paths, the flow config, the shadow stacks.

use std::collections::{HashMap, HashSet};

use ustat_common::{
    CountKey, FlowConfig, HistKey, MethodTotals, OfProcess as _, PREFIX_LEN, PathTotals,
    ProcessKey, SpanStack, SpanThreadKey, ThreadStack, maps,
};

use super::{
    LoadError,
    load::Loaded,
    maps::{read_per_cpu, remove_per_cpu_where, remove_where},
};

/// Cumulative per-method timing and per-path counts, by key (subkey: method or path hash).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlowTotals {
    pub methods: HashMap<CountKey, MethodTotals>,
    pub paths: HashMap<CountKey, PathTotals>,
    /// Each method's call durations, by (process, method hash): (HdrHistogram bucket, calls),
    /// sorted by bucket. Grouped once per reading, so finding a method's buckets costs a
    /// lookup, not a pass over every method's.
    pub durations: HashMap<(ProcessKey, u64), Vec<(u64, u64)>>,
}

impl FlowTotals {
    /// The method's duration buckets: (bucket, calls), sorted by bucket.
    pub fn durations_of(&self, process: ProcessKey, method: u64) -> &[(u64, u64)] {
        self.durations
            .get(&(process, method))
            .map_or(&[], Vec::as_slice)
    }
}

/// Groups `METHOD_HIST` entries by method, each method's buckets sorted.
pub fn group_durations(
    hist: impl IntoIterator<Item = (HistKey, u64)>,
) -> HashMap<(ProcessKey, u64), Vec<(u64, u64)>> {
    let mut out: HashMap<(ProcessKey, u64), Vec<(u64, u64)>> = HashMap::new();
    for (key, calls) in hist {
        out.entry((key.process(), key.subkey))
            .or_default()
            .push((key.bucket, calls));
    }
    for buckets in out.values_mut() {
        buckets.sort_unstable();
    }
    out
}

/// The config entry; prefixes longer than the kernel compares are cut.
pub(super) fn config(events: bool, generation: u32, class: &str, method: &str) -> FlowConfig {
    let mut config = FlowConfig {
        events: u32::from(events),
        generation,
        class_len: 0,
        method_len: 0,
        class_prefix: [0; PREFIX_LEN],
        method_prefix: [0; PREFIX_LEN],
    };
    let class = &class.as_bytes()[..class.len().min(PREFIX_LEN)];
    let method = &method.as_bytes()[..method.len().min(PREFIX_LEN)];
    config.class_prefix[..class.len()].copy_from_slice(class);
    config.method_prefix[..method.len()].copy_from_slice(method);
    config.class_len = class.len() as u32;
    config.method_len = method.len() as u32;
    config
}

pub(super) fn read(ebpf: &Loaded) -> Result<FlowTotals, LoadError> {
    Ok(FlowTotals {
        methods: read_per_cpu(
            ebpf,
            maps::METHODS,
            |t: &mut MethodTotals, v: &MethodTotals| {
                t.calls += v.calls;
                t.total_ns += v.total_ns;
                t.self_ns += v.self_ns;
                t.sum_ns += v.sum_ns;
            },
        )?,
        paths: read_per_cpu(ebpf, maps::PATHS, |t: &mut PathTotals, v: &PathTotals| {
            t.calls += v.calls;
            t.self_ns += v.self_ns;
            // Every CPU's copy names the same parent and method; take them from any.
            if v.calls > 0 {
                t.parent = v.parent;
                t.method = v.method;
            }
        })?,
        durations: group_durations(read_per_cpu(
            ebpf,
            maps::METHOD_HIST,
            |t: &mut u64, v: &u64| *t += v,
        )?),
    })
}

pub(super) fn forget_processes(
    ebpf: &mut Loaded,
    gone: &HashSet<ProcessKey>,
) -> Result<(), LoadError> {
    let doomed = |k: &CountKey| gone.contains(&k.process());
    remove_per_cpu_where::<CountKey, MethodTotals>(ebpf, maps::METHODS, doomed)?;
    remove_per_cpu_where::<CountKey, PathTotals>(ebpf, maps::PATHS, doomed)?;
    remove_per_cpu_where::<HistKey, u64>(ebpf, maps::METHOD_HIST, |k| gone.contains(&k.process()))
}

pub(super) fn forget_threads(
    ebpf: &mut Loaded,
    alive: impl Fn(u32) -> bool,
) -> Result<(), LoadError> {
    remove_where::<SpanThreadKey, SpanStack>(ebpf, maps::OPEN_SPANS, |k| !alive(k.tid))?;
    remove_where::<u32, ThreadStack>(ebpf, maps::STACKS, |&tid| !alive(tid)).map(drop)
}

/// Empties every thread's call stack.
pub(super) fn clear_stacks(ebpf: &mut Loaded) -> Result<(), LoadError> {
    remove_where::<u32, ThreadStack>(ebpf, maps::STACKS, |_| true).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_copied_and_cut() {
        let c = config(true, 7, "java/util", "");
        assert_eq!(
            (c.events, c.generation, c.class_len, c.method_len),
            (1, 7, 9, 0)
        );
        assert_eq!(&c.class_prefix[..9], b"java/util");
        let long = "x".repeat(100);
        assert_eq!(
            config(false, 0, &long, &long).class_len as usize,
            PREFIX_LEN
        );
    }
}
