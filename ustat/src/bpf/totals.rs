//! Reading the aggregation maps: cumulative totals since attach, summed over CPUs.

use std::collections::{HashMap, HashSet};

use aya::Pod;
use ustat_common::{
    CountKey, CountValue, ExitRecord, HistKey, KeyedKey, OfProcess, ProcessEntry, ProcessKey,
    SpanStack, SpanThreadKey, SpanTotals, category, lost, maps,
};

use super::{
    LoadError,
    load::Loaded,
    maps::{hash_map, keys, per_cpu_sum, read_per_cpu, remove_per_cpu_where, remove_where},
};

/// Cumulative totals since attach, per key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub counts: HashMap<CountKey, CountValue>,
    pub spans: HashMap<CountKey, SpanTotals>,
    pub hist: HashMap<HistKey, u64>,
    pub keyed: HashMap<KeyedKey, CountValue>,
}

impl Totals {
    /// Drops everything about these processes (they exited).
    pub fn forget_processes(&mut self, gone: &HashSet<ProcessKey>) {
        self.counts.retain(|k, _| !gone.contains(&k.process()));
        self.spans.retain(|k, _| !gone.contains(&k.process()));
        self.hist.retain(|k, _| !gone.contains(&k.process()));
        self.keyed.retain(|k, _| !gone.contains(&k.process()));
    }

    /// Every process with a key, and every epoch of each pid.
    /// The events counted for `process` since its first hit: hits, finished spans and keyed
    /// hits (durations are the spans' again, so not added).
    pub fn events_of(&self, process: ProcessKey) -> u64 {
        let counts = self.counts.iter().filter(|(k, _)| k.process() == process);
        let spans = self.spans.iter().filter(|(k, _)| k.process() == process);
        let keyed = self.keyed.iter().filter(|(k, _)| k.process() == process);
        counts.map(|(_, v)| v.count).sum::<u64>()
            + spans.map(|(_, v)| v.count).sum::<u64>()
            + keyed.map(|(_, v)| v.count).sum::<u64>()
    }

    pub fn processes(&self) -> HashSet<ProcessKey> {
        let counts = self.counts.keys().map(OfProcess::process);
        let spans = self.spans.keys().map(OfProcess::process);
        let hist = self.hist.keys().map(OfProcess::process);
        let keyed = self.keyed.keys().map(OfProcess::process);
        counts.chain(spans).chain(hist).chain(keyed).collect()
    }
}

/// What could not be recorded (see `ustat_common::lost`), and what was counted but cannot
/// be shown as a process's row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    pub ring_full: u64,
    pub map_full: u64,
    pub too_deep: u64,
    pub bad_values: u64,
    /// Processes that hit probes and exited before ustat listed them (between two looks at
    /// the host) and whose runtime it could not tell (their first hit was in no binary it
    /// numbered, or not in a selected runtime), so they have no row.
    pub unlisted_processes: u64,
    /// Their events (hits, spans, keyed hits), counted in the kernel but in no row.
    pub unlisted_events: u64,
}

fn add_counts(total: &mut CountValue, v: &CountValue) {
    total.count += v.count;
    total.sum += v.sum;
}

pub(super) fn read(ebpf: &Loaded) -> Result<Totals, LoadError> {
    // Totals before durations: a pause ends into SPAN_HIST first, then SPANS, so every pause
    // counted in the totals read is in the histogram read after it. A pause that ended
    // between the two reads is in the histogram only; it would count in one interval's
    // percentiles and the next one's GCs, so the pair is read again (a few times at most: a
    // full SPANS map can keep them apart for good).
    let mut attempts = 0;
    let (spans, hist) = loop {
        let spans = read_per_cpu(ebpf, maps::SPANS, |t: &mut SpanTotals, v: &SpanTotals| {
            t.count += v.count;
            t.total_ns += v.total_ns;
            t.max_ns = t.max_ns.max(v.max_ns);
            t.value_sum += v.value_sum;
        })?;
        let hist = read_per_cpu(ebpf, maps::SPAN_HIST, |t: &mut u64, v: &u64| *t += v)?;
        attempts += 1;
        if attempts == 3 || !pause_half_recorded(&spans, &hist) {
            break (spans, hist);
        }
    };
    Ok(Totals {
        counts: read_per_cpu(ebpf, maps::COUNTS, add_counts)?,
        spans,
        hist,
        keyed: read_per_cpu(ebpf, maps::KEYED, add_counts)?,
    })
}

/// Whether a process's histogram holds more pauses than its GC totals: one ended between
/// the two reads.
fn pause_half_recorded(
    spans: &HashMap<CountKey, SpanTotals>,
    hist: &HashMap<HistKey, u64>,
) -> bool {
    let mut in_hist: HashMap<ProcessKey, u64> = HashMap::new();
    for (key, n) in hist.iter().filter(|(k, _)| k.category == category::GC) {
        *in_hist.entry(key.process()).or_default() += n;
    }
    for (key, totals) in spans.iter().filter(|(k, _)| k.category == category::GC) {
        if let Some(n) = in_hist.get_mut(&key.process()) {
            *n = n.saturating_sub(totals.count);
        }
    }
    in_hist.values().any(|&n| n > 0)
}

pub(super) fn read_lost(ebpf: &Loaded) -> Result<Lost, LoadError> {
    let slot = |i: u32| per_cpu_sum(ebpf, maps::LOST, i);
    Ok(Lost {
        ring_full: slot(lost::RING_FULL)?,
        map_full: slot(lost::MAP_FULL)?,
        too_deep: slot(lost::TOO_DEEP)?,
        bad_values: slot(lost::BAD_VALUE)?,
        // Counted by the source, which knows which processes it listed.
        unlisted_processes: 0,
        unlisted_events: 0,
    })
}

pub(super) fn forget_processes(
    ebpf: &mut Loaded,
    gone: &HashSet<ProcessKey>,
) -> Result<(), LoadError> {
    if gone.is_empty() {
        return Ok(());
    }
    let doomed = |k: &dyn OfProcess| gone.contains(&k.process());
    remove_per_cpu_where::<CountKey, CountValue>(ebpf, maps::COUNTS, |k| doomed(k))?;
    remove_per_cpu_where::<CountKey, SpanTotals>(ebpf, maps::SPANS, |k| doomed(k))?;
    remove_per_cpu_where::<HistKey, u64>(ebpf, maps::SPAN_HIST, |k| doomed(k))?;
    remove_per_cpu_where::<KeyedKey, CountValue>(ebpf, maps::KEYED, |k| doomed(k))?;
    super::flow::forget_processes(ebpf, gone)
}

/// Takes the exits the hook recorded: reads `EXITED` and deletes what it read (an exit
/// recorded meanwhile stays for the next call).
pub(super) fn take_exited(ebpf: &mut Loaded) -> Result<HashMap<ProcessKey, ExitRecord>, LoadError> {
    let mut map = hash_map::<ProcessKey, ExitRecord>(ebpf, maps::EXITED)?;
    let taken: HashMap<ProcessKey, ExitRecord> = map.iter().filter_map(Result::ok).collect();
    for key in taken.keys() {
        // Deleted meanwhile: gone either way.
        let _ = map.remove(key);
    }
    Ok(taken)
}

pub(super) fn forget_dead_processes(
    ebpf: &mut Loaded,
    alive: impl Fn(u32) -> bool,
) -> Result<(), LoadError> {
    remove_where::<u32, ProcessEntry>(ebpf, maps::PROCS, |&pid| !alive(pid)).map(drop)
}

/// How many entries each aggregation and per-process map holds, and the pids that have any
/// (for `USTAT_DEBUG_MAPS`, which the tests read to check that the maps return to their size).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MapSizes {
    pub entries: Vec<(&'static str, usize)>,
    pub pids: std::collections::BTreeSet<u32>,
}

pub(super) fn sizes(ebpf: &Loaded) -> Result<MapSizes, LoadError> {
    fn per_cpu_keys<K: Pod + Eq + std::hash::Hash, V: Pod + Default>(
        ebpf: &Loaded,
        name: &'static str,
    ) -> Result<Vec<K>, LoadError> {
        Ok(read_per_cpu::<K, V>(ebpf, name, |_, _| {})?
            .into_keys()
            .collect())
    }
    let counts = per_cpu_keys::<CountKey, CountValue>(ebpf, maps::COUNTS)?;
    let spans = per_cpu_keys::<CountKey, SpanTotals>(ebpf, maps::SPANS)?;
    let hist = per_cpu_keys::<HistKey, u64>(ebpf, maps::SPAN_HIST)?;
    let keyed = per_cpu_keys::<KeyedKey, CountValue>(ebpf, maps::KEYED)?;
    let procs = keys::<u32, ProcessEntry>(ebpf, maps::PROCS)?;
    let exited = keys::<ProcessKey, ExitRecord>(ebpf, maps::EXITED)?;
    let open_spans = keys::<SpanThreadKey, SpanStack>(ebpf, maps::OPEN_SPANS)?;
    let sample_targets = keys::<u32, ustat_common::SampleTarget>(ebpf, maps::SAMPLE_TARGETS)?;
    let sample_stacks = per_cpu_keys::<ustat_common::SampleKey, u64>(ebpf, maps::SAMPLE_STACKS)?;
    let mut pids = std::collections::BTreeSet::new();
    pids.extend(sample_targets.iter().copied());
    pids.extend(sample_stacks.iter().map(|k| k.pid));
    pids.extend(counts.iter().chain(&spans).map(|k| k.pid));
    pids.extend(hist.iter().map(|k| k.pid));
    pids.extend(keyed.iter().map(|k| k.pid));
    pids.extend(exited.iter().map(|k| k.pid));
    pids.extend(procs.iter().copied());
    Ok(MapSizes {
        entries: vec![
            (maps::COUNTS, counts.len()),
            (maps::SPANS, spans.len()),
            (maps::SPAN_HIST, hist.len()),
            (maps::KEYED, keyed.len()),
            (maps::PROCS, procs.len()),
            (maps::EXITED, exited.len()),
            (maps::OPEN_SPANS, open_spans.len()),
            (maps::SAMPLE_TARGETS, sample_targets.len()),
            (maps::SAMPLE_STACKS, sample_stacks.len()),
        ],
        pids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(pid: u32, epoch: u64) -> CountKey {
        CountKey {
            pid,
            category: ustat_common::category::GC,
            subkey: 0,
            epoch,
        }
    }

    #[test]
    fn a_reused_pid_is_forgotten_only_for_the_process_that_exited() {
        let mut totals = Totals::default();
        let one = CountValue { count: 1, sum: 0 };
        totals.counts.insert(count(7, 100), one);
        totals.counts.insert(count(7, 200), one);
        totals.spans.insert(count(8, 100), SpanTotals::default());
        assert_eq!(
            totals.processes(),
            HashSet::from([
                ProcessKey::new(7, 100),
                ProcessKey::new(7, 200),
                ProcessKey::new(8, 100)
            ])
        );
        totals.forget_processes(&HashSet::from([ProcessKey::new(7, 100)]));
        assert_eq!(
            totals.processes(),
            HashSet::from([ProcessKey::new(7, 200), ProcessKey::new(8, 100)])
        );
    }
}
