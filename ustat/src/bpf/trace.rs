//! The maps of `ustat trace`'s programs: the probe configs written before attaching, the
//! counts and call durations read at the end (or every interval).

use std::collections::HashMap;

use ustat_common::{HistKey, SpanTotals, TraceConfig, TraceCountKey, maps};

use super::{
    LoadError,
    load::Loaded,
    maps::{read_per_cpu, set},
};

/// What `--latency` measured, per probe id.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    pub totals: HashMap<u32, SpanTotals>,
    /// (bucket, calls) per probe id, buckets as `hist_bucket` makes them.
    pub buckets: HashMap<u32, Vec<(u64, u64)>>,
}

pub(super) fn set_config(
    ebpf: &mut Loaded,
    probe: u32,
    config: &TraceConfig,
) -> Result<(), LoadError> {
    set(ebpf, maps::TRACE_CONFIGS, probe, *config).map_err(|e| LoadError::Kernel {
        what: "trace config table",
        detail: format!("entry {probe}: {e} (more probes than the table holds?)"),
    })
}

pub(super) fn counts(ebpf: &Loaded) -> Result<Vec<(TraceCountKey, u64)>, LoadError> {
    Ok(
        read_per_cpu(ebpf, maps::TRACE_COUNTS, |t: &mut u64, v: &u64| *t += v)?
            .into_iter()
            .collect(),
    )
}

pub(super) fn latencies(ebpf: &Loaded) -> Result<Latencies, LoadError> {
    let totals = read_per_cpu(
        ebpf,
        maps::TRACE_LATENCY,
        |t: &mut SpanTotals, v: &SpanTotals| {
            t.count += v.count;
            t.total_ns += v.total_ns;
            t.max_ns = t.max_ns.max(v.max_ns);
        },
    )?;
    let mut buckets: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
    let hist: HashMap<HistKey, u64> =
        read_per_cpu(ebpf, maps::TRACE_HIST, |t: &mut u64, v: &u64| *t += v)?;
    for (key, count) in hist {
        buckets
            .entry(key.category)
            .or_default()
            .push((key.bucket, count));
    }
    for list in buckets.values_mut() {
        list.sort_unstable();
    }
    Ok(Latencies { totals, buckets })
}
