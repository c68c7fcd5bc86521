//! Reading the aggregation maps: cumulative totals since attach, summed over CPUs.

use std::{collections::HashMap, os::fd::AsFd as _};

use aya::{
    Pod,
    maps::{MapData, PerCpuArray, PerCpuHashMap},
};
use ustat_common::{CountKey, CountValue, HistKey, KeyedKey, SpanTotals, lost, maps};

use super::{LoadError, load::Loaded, map_error, missing_map};

/// Cumulative totals since attach, per key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub counts: HashMap<CountKey, CountValue>,
    pub spans: HashMap<CountKey, SpanTotals>,
    pub hist: HashMap<HistKey, u64>,
    pub keyed: HashMap<KeyedKey, CountValue>,
}

impl Totals {
    /// Drops everything about `pid` (it exited).
    pub fn forget_process(&mut self, pid: u32) {
        self.counts.retain(|k, _| k.pid != pid);
        self.spans.retain(|k, _| k.pid != pid);
        self.hist.retain(|k, _| k.pid != pid);
        self.keyed.retain(|k, _| k.pid != pid);
    }
}

/// What could not be recorded (see `ustat_common::lost`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    pub ring_full: u64,
    pub map_full: u64,
    pub too_deep: u64,
    pub bad_values: u64,
}

/// Every entry of a per-CPU map, its CPU copies combined by `fold`, read in batches.
pub(super) fn read_per_cpu<K, V>(
    ebpf: &Loaded,
    name: &str,
    fold: impl Fn(&mut V, &V),
) -> Result<HashMap<K, V>, LoadError>
where
    K: Pod + Eq + std::hash::Hash,
    V: Pod + Default,
{
    let Some(aya::maps::Map::PerCpuHashMap(data)) = ebpf.map(name) else {
        return Err(missing_map(name));
    };
    let mut out = HashMap::new();
    super::batch::per_cpu_entries(data.fd().as_fd(), |key: K, per_cpu: &[V]| {
        let mut total = V::default();
        for value in per_cpu {
            fold(&mut total, value);
        }
        out.insert(key, total);
    })
    .map_err(|e| LoadError::Kernel {
        what: "maps",
        detail: format!("{name}: {e}"),
    })?;
    Ok(out)
}

fn add_counts(total: &mut CountValue, v: &CountValue) {
    total.count += v.count;
    total.sum += v.sum;
}

pub(super) fn read(ebpf: &Loaded) -> Result<Totals, LoadError> {
    // Durations before totals: a span ends into SPANS first, then SPAN_HIST, so every
    // duration read has its span in the totals read after it.
    let hist = read_per_cpu(ebpf, maps::SPAN_HIST, |t: &mut u64, v: &u64| *t += v)?;
    Ok(Totals {
        counts: read_per_cpu(ebpf, maps::COUNTS, add_counts)?,
        spans: read_per_cpu(ebpf, maps::SPANS, |t: &mut SpanTotals, v: &SpanTotals| {
            t.count += v.count;
            t.total_ns += v.total_ns;
            t.max_ns = t.max_ns.max(v.max_ns);
            t.value_sum += v.value_sum;
        })?,
        hist,
        keyed: read_per_cpu(ebpf, maps::KEYED, add_counts)?,
    })
}

pub(super) fn read_lost(ebpf: &Loaded) -> Result<Lost, LoadError> {
    let map = ebpf
        .map(maps::LOST)
        .ok_or_else(|| missing_map(maps::LOST))?;
    let array: PerCpuArray<&MapData, u64> =
        PerCpuArray::try_from(map).map_err(|e| map_error(maps::LOST, e))?;
    let slot = |i: u32| -> Result<u64, LoadError> {
        let values = array.get(&i, 0).map_err(|e| map_error(maps::LOST, e))?;
        Ok(values.iter().sum())
    };
    Ok(Lost {
        ring_full: slot(lost::RING_FULL)?,
        map_full: slot(lost::MAP_FULL)?,
        too_deep: slot(lost::TOO_DEEP)?,
        bad_values: slot(lost::BAD_VALUE)?,
    })
}

/// Deletes the keys of `pid` from a per-CPU map.
pub(super) fn forget<K: Pod + Eq + std::hash::Hash, V: Pod>(
    ebpf: &mut Loaded,
    name: &str,
    is_pid: impl Fn(&K) -> bool,
) -> Result<(), LoadError> {
    let map = ebpf.map_mut(name).ok_or_else(|| missing_map(name))?;
    let mut map: PerCpuHashMap<&mut MapData, K, V> =
        PerCpuHashMap::try_from(map).map_err(|e| map_error(name, e))?;
    let doomed: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| is_pid(k))
        .collect();
    for key in doomed {
        let _ = map.remove(&key);
    }
    Ok(())
}

pub(super) fn forget_process(ebpf: &mut Loaded, pid: u32) -> Result<(), LoadError> {
    forget::<CountKey, CountValue>(ebpf, maps::COUNTS, |k| k.pid == pid)?;
    forget::<CountKey, SpanTotals>(ebpf, maps::SPANS, |k| k.pid == pid)?;
    forget::<HistKey, u64>(ebpf, maps::SPAN_HIST, |k| k.pid == pid)?;
    forget::<KeyedKey, CountValue>(ebpf, maps::KEYED, |k| k.pid == pid)?;
    super::flow::forget_process(ebpf, pid)?;
    // Per-thread span state is keyed by thread id; dead threads' entries age out of the LRU
    // map of open spans, and the depth entry goes when a thread's last span ends.
    Ok(())
}
