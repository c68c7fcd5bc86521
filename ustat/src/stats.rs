//! From two cumulative readings of the kernel maps to one interval's numbers per process.
//! Pure functions over `Totals`, so every rule here is tested without a kernel.

use std::collections::HashMap;

use ustat_common::{
    CountKey, CountValue, HIST_SIGNIFICANT_BITS, HistKey, KeyedKey, MethodTotals, OfProcess as _,
    ProcessKey, SpanTotals, category, hist_bucket,
};
use ustat_runtimes::Runtime;

use crate::{
    bpf::{FlowTotals, Totals},
    category::Category,
    snapshot::{Counters, GcKind, PauseStats, PoolUsage, Ranked, Timing},
};

/// How many entries the top lists keep for the dashboard.
pub const TOP: usize = 100;

/// One process's share of a `Totals` reading.
#[derive(Debug, Default, Clone)]
pub struct PidTotals {
    pub counts: Vec<(CountKey, CountValue)>,
    pub spans: Vec<(CountKey, SpanTotals)>,
    pub hist: Vec<(HistKey, u64)>,
    pub keyed: Vec<(KeyedKey, CountValue)>,
}

/// Splits a reading by process (pid and epoch: a reused pid's processes stay apart).
pub fn by_process(totals: &Totals) -> HashMap<ProcessKey, PidTotals> {
    let mut out: HashMap<ProcessKey, PidTotals> = HashMap::new();
    for (k, v) in &totals.counts {
        out.entry(k.process()).or_default().counts.push((*k, *v));
    }
    for (k, v) in &totals.spans {
        out.entry(k.process()).or_default().spans.push((*k, *v));
    }
    for (k, v) in &totals.hist {
        out.entry(k.process()).or_default().hist.push((*k, *v));
    }
    for (k, v) in &totals.keyed {
        out.entry(k.process()).or_default().keyed.push((*k, *v));
    }
    out
}

/// The strings of each `keyed` key, as the kernel sent them once per key.
pub type Names = HashMap<KeyedKey, [String; 3]>;

/// One process's numbers for an interval and since attach.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Computed {
    pub interval: Counters,
    pub total: Counters,
    pub pause: Option<PauseStats>,
    pub pause_total: Option<PauseStats>,
    pub gc_kinds: Vec<GcKind>,
    pub top_methods: Vec<Ranked>,
    pub top_allocations: Vec<Ranked>,
    pub top_monitors: Vec<Ranked>,
    pub top_exceptions: Vec<Ranked>,
    pub pools: Vec<PoolUsage>,
    pub collectors: Vec<Ranked>,
    /// Categories that had any hit since attach.
    pub seen: Vec<u32>,
}

/// Adds to the counters of the category with this number (`category::Category` says which).
fn add(counters: &mut Counters, number: u32, count: u64, sum: u64) {
    // The kernel only counts under numbers of `ustat_common::category`, all of them known.
    if let Some(category) = Category::from_raw(number) {
        category.add(counters, count, sum);
    }
}

/// Percentiles of a distribution given as (HdrHistogram bucket, count) pairs: what an
/// HdrHistogram (3 significant digits) holding the same counts reports, computed from the
/// occupied buckets alone. Building a histogram per method instead allocated and scanned
/// tens of thousands of empty counters each time, which made a poll with 100k methods take
/// seconds.
pub fn pause_stats(buckets: impl IntoIterator<Item = (u64, u64)>) -> Option<PauseStats> {
    let mut buckets: Vec<(u64, u64)> = buckets
        .into_iter()
        .filter(|&(_, count)| count > 0)
        .map(|(bucket, count)| (hist_bucket(bucket), count))
        .collect();
    buckets.sort_unstable();
    let count: u64 = buckets.iter().map(|&(_, n)| n).sum();
    let &(largest, _) = buckets.last()?;
    let at_quantile = |quantile: f64| {
        // HdrHistogram's rule: the first bucket whose running count reaches
        // ceil(quantile * count), reported as the highest value in that bucket.
        let target = ((quantile * count as f64).ceil() as u64).max(1);
        let mut running = 0;
        for &(bucket, n) in &buckets {
            running += n;
            if running >= target {
                return highest_in_bucket(bucket);
            }
        }
        highest_in_bucket(largest)
    };
    Some(PauseStats {
        count,
        p50_ns: at_quantile(0.5),
        p99_ns: at_quantile(0.99),
        max_ns: highest_in_bucket(largest),
    })
}

/// The highest value of the HdrHistogram bucket that starts at `bucket` (see `hist_bucket`).
fn highest_in_bucket(bucket: u64) -> u64 {
    let bits = 64 - bucket.leading_zeros();
    let width = 1u64 << bits.saturating_sub(HIST_SIGNIFICANT_BITS);
    bucket.saturating_add(width - 1)
}

/// Percentiles no greater than what is known exactly: no pause is longer than the longest
/// since attach (`longest`) nor than all of them together (`total_ns`), so
/// p50 <= p99 <= max <= total always holds.
fn within(stats: PauseStats, total_ns: u64, longest: u64) -> PauseStats {
    let max_ns = stats.max_ns.min(total_ns).min(longest);
    let p99_ns = stats.p99_ns.min(max_ns);
    PauseStats {
        count: stats.count,
        p50_ns: stats.p50_ns.min(p99_ns),
        p99_ns,
        max_ns,
    }
}

/// The exact longest pause where it is known: the kernel keeps the raw maximum since attach
/// (`longest`) beside the histogram, so when it grew in the interval (or the interval is the
/// whole time since attach: `longest_before` 0) it is the interval's longest. Otherwise the
/// histogram's bucket top stands (within 0.1%, and never above the interval's total).
fn exact_max(stats: PauseStats, longest: u64, longest_before: u64) -> PauseStats {
    if longest == 0 || longest <= longest_before {
        return stats;
    }
    PauseStats {
        max_ns: longest,
        p99_ns: stats.p99_ns.min(longest),
        p50_ns: stats.p50_ns.min(longest),
        ..stats
    }
}

/// The statistics of a single pause of `ns`.
fn only_pause(ns: u64) -> PauseStats {
    PauseStats {
        count: 1,
        p50_ns: ns,
        p99_ns: ns,
        max_ns: ns,
    }
}

/// The label of a keyed entry. Where its names have not arrived yet (they were lost and
/// are asked for again), a label that says so and stays unique per key.
fn label(runtime: &Runtime, key: &KeyedKey, names: &Names) -> String {
    match names.get(key) {
        Some([a, b, c]) => (runtime.key_label)(key.category, [a, b, c], key.keys),
        None => pending_label(key),
    }
}

/// `(name pending 0x7f00:0x7f08:0x0)`: the key's values, so two pending keys never share a
/// label.
pub fn pending_label(key: &KeyedKey) -> String {
    let [a, b, c] = key.keys;
    format!("(name pending {a:#x}:{b:#x}:{c:#x})")
}

/// Sorts by this interval, then since attach, then name; keeps the first `limit`.
fn top(mut entries: Vec<Ranked>, limit: usize) -> Vec<Ranked> {
    entries.sort_by(|a, b| {
        b.interval
            .cmp(&a.interval)
            .then(b.total.cmp(&a.total))
            .then(a.name.cmp(&b.name))
    });
    entries.truncate(limit);
    entries
}

/// Method timing from the flow maps: the latest reading and the previous one.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlowReadings<'a> {
    pub now: Option<&'a FlowTotals>,
    pub previous: Option<&'a FlowTotals>,
}

/// A method's timing over the interval and since attach: its `METHODS` entry and duration
/// buckets (`METHOD_HIST`). Costs two lookups per method, whatever the other methods hold.
fn timing(process: ProcessKey, hash: u64, flow: FlowReadings<'_>) -> Option<(Timing, Timing)> {
    let key = CountKey {
        pid: process.pid,
        category: category::METHOD_TIME,
        subkey: hash,
        epoch: process.epoch,
    };
    let now = flow.now?;
    let current = *now.methods.get(&key)?;
    let before = flow
        .previous
        .and_then(|p| p.methods.get(&key))
        .copied()
        .unwrap_or_default();
    let buckets = now.durations_of(process, hash);
    let before_buckets = flow
        .previous
        .map_or(&[][..], |p| p.durations_of(process, hash));
    let p99 = |buckets: &mut dyn Iterator<Item = (u64, u64)>| {
        pause_stats(buckets).map_or(0, |s| s.p99_ns)
    };
    let interval = MethodTotals {
        calls: current.calls.saturating_sub(before.calls),
        total_ns: current.total_ns.saturating_sub(before.total_ns),
        self_ns: current.self_ns.saturating_sub(before.self_ns),
        sum_ns: current.sum_ns.saturating_sub(before.sum_ns),
    };
    let interval_p99 = p99(&mut buckets.iter().map(|&(bucket, calls)| {
        let earlier = before_buckets
            .binary_search_by_key(&bucket, |&(b, _)| b)
            .map_or(0, |i| before_buckets[i].1);
        (bucket, calls.saturating_sub(earlier))
    }));
    let total_p99 = p99(&mut buckets.iter().copied());
    Some((
        timing_of(&interval, interval_p99),
        timing_of(&current, total_p99),
    ))
}

/// A method's timing from its totals. The mean is the inclusive total over the calls that
/// returned, so mean x returns = total, also for a recursive method (whose nested calls add
/// no inclusive time of their own). Exclusive time is bounded by inclusive time: while an
/// outer call of a recursive method is still open, its returned inner calls have added their
/// exclusive time but the outer one has not yet added the inclusive time that holds it.
fn timing_of(totals: &MethodTotals, p99_ns: u64) -> Timing {
    Timing {
        calls: totals.calls,
        total_ns: totals.total_ns,
        self_ns: totals.self_ns.min(totals.total_ns),
        mean_ns: totals.total_ns.checked_div(totals.calls).unwrap_or(0),
        p99_ns,
    }
}

/// The numbers of one process: `now` is its share of the latest reading, `previous` the
/// whole previous reading (empty for the process's first interval, so that interval counts
/// everything since its first hit). The top lists keep `limit` entries each.
pub fn compute(
    runtime: &Runtime,
    now: &PidTotals,
    previous: &Totals,
    names: &Names,
    flow: FlowReadings<'_>,
    limit: usize,
) -> Computed {
    let mut out = Computed::default();
    let mut seen = std::collections::BTreeSet::new();

    for (key, value) in &now.counts {
        // Parsed HTTP messages: requests (llhttp type 1) count; responses do not.
        if key.category == category::HTTP_PARSED {
            seen.insert(key.category);
            if key.subkey & 0xffff_ffff == 1 {
                let before = previous.counts.get(key).map_or(0, |b| b.count);
                Category::HttpParsed.add(&mut out.total, value.count, 0);
                Category::HttpParsed.add(&mut out.interval, value.count.saturating_sub(before), 0);
            }
            continue;
        }
        let before = previous.counts.get(key).copied().unwrap_or_default();
        add(&mut out.total, key.category, value.count, value.sum);
        add(
            &mut out.interval,
            key.category,
            value.count.saturating_sub(before.count),
            value.sum.saturating_sub(before.sum),
        );
        seen.insert(key.category);
    }

    let mut kinds: HashMap<&'static str, GcKind> = HashMap::new();
    for (key, value) in &now.spans {
        let before = previous.spans.get(key).copied().unwrap_or_default();
        let count = value.count.saturating_sub(before.count);
        add(&mut out.total, key.category, value.count, value.total_ns);
        add(
            &mut out.interval,
            key.category,
            count,
            value.total_ns.saturating_sub(before.total_ns),
        );
        seen.insert(key.category);
        if key.category == category::GC {
            let kind = (runtime.gc_kind)(key.subkey);
            let entry = kinds.entry(kind).or_insert(GcKind {
                kind,
                interval: 0,
                total: 0,
                pause_ns_total: 0,
                collected_total: 0,
            });
            entry.interval += count;
            entry.total += value.count;
            entry.pause_ns_total += value.total_ns;
            entry.collected_total += value.value_sum;
        }
    }
    out.gc_kinds = kinds.into_values().collect();
    out.gc_kinds.sort_by_key(|k| k.kind);

    let gc_buckets = || now.hist.iter().filter(|(k, _)| k.category == category::GC);
    out.pause = pause_stats(gc_buckets().map(|(k, n)| {
        (
            k.bucket,
            n.saturating_sub(previous.hist.get(k).copied().unwrap_or(0)),
        )
    }));
    out.pause_total = pause_stats(gc_buckets().map(|(k, n)| (k.bucket, *n)));
    // The histogram's values are the tops of their buckets (up to 0.1% above the pause), and
    // it is read a moment after the totals; the exact totals bound them.
    let longest_of = |spans: &mut dyn Iterator<Item = (&CountKey, &SpanTotals)>| {
        spans
            .filter(|(k, _)| k.category == category::GC)
            .map(|(_, t)| t.max_ns)
            .max()
            .unwrap_or(0)
    };
    let longest = longest_of(&mut now.spans.iter().map(|(k, t)| (k, t)));
    // The previous reading's keys of this process (its spans all share one process key).
    let longest_before = longest_of(
        &mut now
            .spans
            .iter()
            .filter_map(|(k, _)| previous.spans.get_key_value(k)),
    );
    // A GC that ended between the two reads shows in one and not the other: without a GC
    // counted in the interval there are no percentiles to show.
    out.pause = match out.interval.gc_count {
        0 => None,
        // One pause in the interval: its length is the interval's total, exactly (and is
        // known even when its bucket was read in the reading before).
        1 => Some(only_pause(out.interval.gc_pause_ns)),
        _ => out
            .pause
            .map(|p| within(p, out.interval.gc_pause_ns, longest))
            .map(|p| exact_max(p, longest, longest_before)),
    };
    // Since attach, the longest pause is the kernel's raw maximum, exactly.
    out.pause_total = out
        .pause_total
        .map(|p| within(p, out.total.gc_pause_ns, longest))
        .map(|p| exact_max(p, longest, 0));

    let mut ranked: HashMap<u32, Vec<Ranked>> = HashMap::new();
    let mut pools: HashMap<String, (u64, i128)> = HashMap::new();
    // Collections per memory manager: every pool it manages gets one begin per collection.
    let mut collectors: HashMap<String, (u64, u64)> = HashMap::new();
    for (key, value) in &now.keyed {
        let before = previous.keyed.get(key).copied().unwrap_or_default();
        let interval = value.count.saturating_sub(before.count);
        let interval_value = value.sum.saturating_sub(before.sum);
        add(&mut out.total, key.category, value.count, value.sum);
        add(&mut out.interval, key.category, interval, interval_value);
        seen.insert(key.category);
        match key.category {
            category::POOL_GC_BEGIN | category::POOL_GC_END => {
                let name = label(runtime, key, names);
                if key.category == category::POOL_GC_BEGIN
                    && let Some((manager, _)) = name.split_once(": ")
                {
                    let counts = collectors.entry(manager.to_string()).or_default();
                    counts.0 = counts.0.max(interval);
                    counts.1 = counts.1.max(value.count);
                }
                let pool = pools.entry(name).or_default();
                if key.category == category::POOL_GC_BEGIN {
                    pool.0 += interval;
                    pool.1 += i128::from(interval_value);
                } else {
                    pool.1 -= i128::from(interval_value);
                }
            }
            _ => {
                let timing = (key.category == category::METHOD_CALL)
                    .then(|| crate::flow::flow_hash(runtime, key))
                    .flatten()
                    .and_then(|hash| timing(key.process(), hash, flow));
                ranked.entry(key.category).or_default().push(Ranked {
                    name: label(runtime, key, names),
                    interval,
                    total: value.count,
                    interval_value,
                    total_value: value.sum,
                    timing: timing.map(|(interval, _)| interval),
                    timing_total: timing.map(|(_, total)| total),
                })
            }
        }
    }
    let mut take = |category| top(ranked.remove(&category).unwrap_or_default(), limit);
    out.top_methods = take(category::METHOD_CALL);
    out.top_allocations = take(category::OBJECT_ALLOC);
    out.top_monitors = take(category::MONITOR_CONTENDED);
    out.top_exceptions = take(category::EXCEPTION);
    out.pools = pools
        .into_iter()
        .filter(|(_, (gcs, _))| *gcs > 0)
        .map(|(name, (gcs, reclaimed))| PoolUsage {
            name,
            gcs,
            reclaimed_bytes: reclaimed.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
        })
        .collect();
    out.pools.sort_by_key(pool_order);
    if collections_by_manager(runtime) {
        // A pause manager (`ZGC Pauses`) counts pauses, which gc_count has.
        out.collectors = collectors
            .into_iter()
            .filter(|(manager, _)| !manager.ends_with("Pauses"))
            .map(|(name, (interval, total))| Ranked {
                name,
                interval,
                total,
                ..Ranked::default()
            })
            .collect();
        out.collectors.sort_by(|a, b| a.name.cmp(&b.name));
        out.interval.gc_collections = out.collectors.iter().map(|c| c.interval).sum();
        out.total.gc_collections = out.collectors.iter().map(|c| c.total).sum();
    }
    out.seen = seen.into_iter().collect();
    out
}

/// Whether the runtime's collections are counted by its memory managers (HotSpot's pool
/// probes fire once per pool per collection, a ZGC or Shenandoah cycle once however many
/// pauses it makes) rather than one per GC pause.
fn collections_by_manager(runtime: &Runtime) -> bool {
    use ustat_runtimes::Action;
    runtime.rules().any(|rule| {
        matches!(
            rule.action,
            Action::Keyed {
                category: category::POOL_GC_BEGIN,
                ..
            }
        )
    })
}

/// Where a pool comes in the detail view: the pools a GC changed first, young to old (Eden,
/// Survivor, Old Gen), then those it left as they were (code heaps, metaspace), by name.
fn pool_order(pool: &PoolUsage) -> (bool, u8, String) {
    // `manager: pool`; the pool's own name says its generation.
    let name = pool.name.rsplit(": ").next().unwrap_or(&pool.name);
    let generation = if name.contains("Eden") {
        0
    } else if name.contains("Survivor") {
        1
    } else if name.contains("Old") || name.contains("Tenured") {
        2
    } else {
        3
    };
    (pool.reclaimed_bytes == 0, generation, pool.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;
    use ustat_runtimes::jvm::JVM;

    const PID: u32 = 42;

    fn count_key(category: u32, subkey: u64) -> CountKey {
        CountKey {
            pid: PID,
            category,
            subkey,
            epoch: 0,
        }
    }

    fn keyed_key(category: u32, a: u64, b: u64) -> KeyedKey {
        KeyedKey {
            pid: PID,
            category,
            keys: [a, b, 0],
            epoch: 0,
        }
    }

    fn reading(gcs: u64, classes: u64, calls: &[(u64, u64)]) -> Totals {
        let mut totals = Totals::default();
        totals.counts.insert(
            count_key(category::CLASS_LOADED, 0),
            CountValue {
                count: classes,
                sum: 0,
            },
        );
        totals.spans.insert(
            count_key(category::GC, 1),
            SpanTotals {
                count: gcs,
                total_ns: gcs * 1_000_000,
                max_ns: 1_000_000,
                value_sum: 0,
            },
        );
        totals.hist.insert(
            HistKey {
                pid: PID,
                category: category::GC,
                subkey: 1,
                bucket: 999_936,
                epoch: 0,
            },
            gcs,
        );
        for &(method, count) in calls {
            totals.keyed.insert(
                keyed_key(category::METHOD_CALL, 0x10, method),
                CountValue { count, sum: 0 },
            );
        }
        totals
    }

    /// The JVM's interval from `previous` to `now`, with `names()`.
    fn jvm_interval(now: &Totals, previous: &Totals) -> Computed {
        compute(
            &JVM,
            &by_process(now)[&ProcessKey::new(PID, 0)],
            previous,
            &names(),
            FlowReadings::default(),
            TOP,
        )
    }

    fn names() -> Names {
        let mut names = Names::new();
        for (method, name) in [(1, "run"), (2, "hashCode")] {
            names.insert(
                keyed_key(category::METHOD_CALL, 0x10, method),
                ["java/lang/String".into(), name.into(), "()V".into()],
            );
        }
        names
    }

    #[test]
    fn the_first_interval_counts_everything_since_attach() {
        let now = reading(3, 7, &[(1, 5)]);
        let computed = jvm_interval(&now, &Totals::default());
        assert_eq!(computed.interval.gc_count, 3);
        assert_eq!(computed.interval.gc_pause_ns, 3_000_000);
        assert_eq!(computed.interval.class_loaded, 7);
        assert_eq!(computed.interval.method_calls, 5);
        assert_eq!(computed.interval, computed.total);
    }

    #[test]
    fn later_intervals_count_the_difference() {
        let before = reading(3, 7, &[(1, 5)]);
        let now = reading(5, 7, &[(1, 9), (2, 4)]);
        let computed = jvm_interval(&now, &before);
        assert_eq!(computed.interval.gc_count, 2);
        assert_eq!(computed.total.gc_count, 5);
        assert_eq!(computed.interval.class_loaded, 0);
        assert_eq!(computed.interval.method_calls, 8);
        assert_eq!(computed.top_methods.len(), 2);
        assert_eq!(computed.top_methods[0].name, "java.lang.String.run()");
        assert_eq!(
            (
                computed.top_methods[0].interval,
                computed.top_methods[0].total
            ),
            (4, 9)
        );
        assert_eq!(computed.top_methods[1].name, "java.lang.String.hashCode()");
        assert_eq!(
            computed.gc_kinds,
            [GcKind {
                kind: "major",
                interval: 2,
                total: 5,
                pause_ns_total: 5_000_000,
                collected_total: 0
            }]
        );
        let pause = computed.pause.unwrap();
        assert_eq!(pause.count, 2);
        assert_eq!(computed.pause_total.unwrap().count, 5);
    }

    #[test]
    fn counters_never_go_backwards() {
        // A key that shrank (it cannot, but a reused pid could look like it) counts 0.
        let before = reading(9, 9, &[(1, 9)]);
        let now = reading(5, 7, &[(1, 2)]);
        let computed = jvm_interval(&now, &before);
        assert_eq!(computed.interval, Counters::default());
        assert_eq!(computed.pause, None);
    }

    #[test]
    fn entries_without_names_say_their_name_is_pending() {
        let now = reading(0, 0, &[(7, 1), (8, 1)]);
        let computed = jvm_interval(&now, &Totals::default());
        let mut labels: Vec<&str> = computed
            .top_methods
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        labels.sort_unstable();
        assert_eq!(
            labels,
            ["(name pending 0x10:0x7:0x0)", "(name pending 0x10:0x8:0x0)"]
        );
    }

    #[test]
    fn pools_report_reclaimed_bytes_and_are_not_gcs() {
        let mut before = Totals::default();
        let mut now = Totals::default();
        let begin = keyed_key(category::POOL_GC_BEGIN, 1, 2);
        let end = keyed_key(category::POOL_GC_END, 1, 2);
        before
            .keyed
            .insert(begin, CountValue { count: 1, sum: 100 });
        before.keyed.insert(end, CountValue { count: 1, sum: 10 });
        now.keyed.insert(
            begin,
            CountValue {
                count: 3,
                sum: 100 + 500 + 700,
            },
        );
        now.keyed.insert(
            end,
            CountValue {
                count: 3,
                sum: 10 + 50 + 60,
            },
        );
        let mut names = Names::new();
        names.insert(
            begin,
            [
                "G1 Young Generation".into(),
                "G1 Eden Space".into(),
                String::new(),
            ],
        );
        names.insert(
            end,
            [
                "G1 Young Generation".into(),
                "G1 Eden Space".into(),
                String::new(),
            ],
        );
        let computed = compute(
            &JVM,
            &by_process(&now)[&ProcessKey::new(PID, 0)],
            &before,
            &names,
            FlowReadings::default(),
            TOP,
        );
        assert_eq!(computed.interval.gc_count, 0);
        assert_eq!(
            computed.pools,
            [PoolUsage {
                name: "G1 Young Generation: G1 Eden Space".into(),
                gcs: 2,
                reclaimed_bytes: 1200 - 110
            }]
        );
    }

    /// ZGC: its cycle manager's pools each get one begin per cycle, its pause manager's
    /// (when they fire) one per pause. Collections are the cycles, once per manager.
    #[test]
    fn collections_are_counted_once_per_manager_and_pause_managers_are_left_out() {
        let mut now = Totals::default();
        let mut names = Names::new();
        let pools = [
            (1, "ZGC Cycles", "ZHeap", 5),
            (2, "ZGC Cycles", "Metaspace", 5),
            (3, "ZGC Pauses", "ZHeap", 15),
        ];
        for (n, manager, pool, count) in pools {
            let key = keyed_key(category::POOL_GC_BEGIN, n, n + 10);
            now.keyed.insert(key, CountValue { count, sum: 0 });
            names.insert(key, [manager.into(), pool.into(), String::new()]);
        }
        let computed = compute(
            &JVM,
            &by_process(&now)[&ProcessKey::new(PID, 0)],
            &Totals::default(),
            &names,
            FlowReadings::default(),
            TOP,
        );
        assert_eq!(computed.interval.gc_collections, 5);
        assert_eq!(computed.total.gc_collections, 5);
        let managers: Vec<(&str, u64)> = computed
            .collectors
            .iter()
            .map(|c| (c.name.as_str(), c.total))
            .collect();
        assert_eq!(managers, [("ZGC Cycles", 5)]);
    }

    #[test]
    fn pause_percentiles_never_exceed_the_exact_total_or_longest() {
        // One GC of 10_000_001 ns: its bucket's top is 10_006_143 ns, above the pause itself.
        let pause = 10_000_001;
        let mut now = reading(0, 0, &[]);
        now.spans.insert(
            count_key(category::GC, 1),
            SpanTotals {
                count: 1,
                total_ns: pause,
                max_ns: pause,
                value_sum: 0,
            },
        );
        now.hist.clear();
        now.hist.insert(
            HistKey {
                pid: PID,
                category: category::GC,
                subkey: 1,
                bucket: hist_bucket(pause),
                epoch: 0,
            },
            1,
        );
        let computed = jvm_interval(&now, &Totals::default());
        let stats = computed.pause.unwrap();
        assert_eq!((stats.p99_ns, stats.max_ns), (pause, pause));
        assert!(pause_stats([(hist_bucket(pause), 1)]).unwrap().max_ns > pause);
    }

    /// A pause whose bucket was read a reading before its totals (it ended between the two
    /// reads): the interval that counts it still has its exact length as p99 and max.
    #[test]
    fn a_single_pause_is_exact_even_when_its_bucket_came_a_reading_early() {
        let pause = 8_568_123;
        let bucket = HistKey {
            pid: PID,
            category: category::GC,
            subkey: 0,
            bucket: hist_bucket(pause),
            epoch: 0,
        };
        let mut before = reading(0, 0, &[]);
        before.hist.clear();
        before.hist.insert(bucket, 1);
        let mut now = before.clone();
        now.spans.insert(
            count_key(category::GC, 2),
            SpanTotals {
                count: 1,
                total_ns: pause,
                max_ns: pause,
                value_sum: 0,
            },
        );
        let computed = jvm_interval(&now, &before);
        let stats = computed.pause.unwrap();
        assert_eq!(
            (stats.p50_ns, stats.p99_ns, stats.max_ns),
            (pause, pause, pause)
        );
    }

    /// Two GCs in an interval, 1.000 ms and 10_000_001 ns: the histogram's top for the
    /// longer is above it and below the total, so only the kernel's raw maximum makes the
    /// interval's max exact; since attach it is exact too.
    #[test]
    fn the_longest_pause_is_the_kernel_s_raw_maximum() {
        let longest = 10_000_001;
        let mut now = reading(0, 0, &[]);
        now.spans.insert(
            count_key(category::GC, 1),
            SpanTotals {
                count: 2,
                total_ns: longest + 1_000_000,
                max_ns: longest,
                value_sum: 0,
            },
        );
        now.hist.clear();
        for pause in [1_000_000, longest] {
            now.hist.insert(
                HistKey {
                    pid: PID,
                    category: category::GC,
                    subkey: 0,
                    bucket: hist_bucket(pause),
                    epoch: 0,
                },
                1,
            );
        }
        assert!(pause_stats([(hist_bucket(longest), 1)]).unwrap().max_ns > longest);
        let computed = jvm_interval(&now, &Totals::default());
        assert_eq!(computed.pause.unwrap().max_ns, longest);
        assert_eq!(computed.pause_total.unwrap().max_ns, longest);
    }

    /// f() recursing: the outer call 3 ms, the inner ones 2 ms and 1 ms (all returned). The
    /// inclusive total counts the outer call only, so the mean is total / returns.
    #[test]
    fn a_recursive_method_s_mean_is_its_total_over_returns() {
        let totals = MethodTotals {
            calls: 3,
            total_ns: 3_000_000,
            self_ns: 3_000_000,
            sum_ns: 6_000_000,
        };
        let timing = timing_of(&totals, 0);
        assert_eq!(timing.mean_ns, 1_000_000);
        assert_eq!(timing.mean_ns * timing.calls, timing.total_ns);
    }

    /// The outer call still open: the inner calls returned and added their exclusive time,
    /// the outer one has added no inclusive time yet.
    #[test]
    fn self_time_never_exceeds_total_while_an_outer_call_is_open() {
        let totals = MethodTotals {
            calls: 2,
            total_ns: 0,
            self_ns: 3_000_000,
            sum_ns: 3_000_000,
        };
        let timing = timing_of(&totals, 0);
        assert_eq!((timing.total_ns, timing.self_ns), (0, 0));
        let returned = MethodTotals {
            calls: 3,
            total_ns: 6_000_000,
            self_ns: 6_000_000,
            sum_ns: 11_000_000,
        };
        assert_eq!(timing_of(&returned, 0).self_ns, 6_000_000);
    }

    #[test]
    fn durations_without_a_gc_in_the_interval_have_no_percentiles() {
        // The histogram was read before a GC's totals moved to the next interval.
        let before = reading(3, 0, &[]);
        let mut now = reading(3, 0, &[]);
        for n in now.hist.values_mut() {
            *n += 1;
        }
        assert_eq!(jvm_interval(&now, &before).pause, None);
    }

    /// The kernel counts durations per `hist_bucket`; recording those buckets must give the
    /// same percentiles as recording every raw duration.
    #[test]
    fn kernel_buckets_give_the_same_percentiles_as_raw_values() {
        let mut raw = Histogram::<u64>::new(3).unwrap();
        let mut buckets: HashMap<u64, u64> = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..50_000 {
            // xorshift; durations from 1 ns to about 17 minutes, spread over magnitudes
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let value = (x >> (x % 54 + 4)).max(1);
            raw.record(value).unwrap();
            *buckets.entry(hist_bucket(value)).or_default() += 1;
        }
        assert_same_as_hdrhistogram(&raw, buckets);
        for few in [
            &[1_000_000][..],
            &[5, 3_000_001],
            &[10_000_001, 10_000_002, 7],
        ] {
            let mut raw = Histogram::<u64>::new(3).unwrap();
            let mut buckets: HashMap<u64, u64> = HashMap::new();
            for &value in few {
                raw.record(value).unwrap();
                *buckets.entry(hist_bucket(value)).or_default() += 1;
            }
            assert_same_as_hdrhistogram(&raw, buckets);
        }
    }

    fn assert_same_as_hdrhistogram(raw: &Histogram<u64>, buckets: HashMap<u64, u64>) {
        let stats = pause_stats(buckets).unwrap();
        assert_eq!(stats.count, raw.len());
        assert_eq!(stats.p50_ns, raw.value_at_quantile(0.5));
        assert_eq!(stats.p99_ns, raw.value_at_quantile(0.99));
        assert_eq!(stats.max_ns, raw.max());
    }

    #[test]
    fn pools_that_changed_come_first_young_to_old() {
        let pool = |name: &str, reclaimed_bytes| PoolUsage {
            name: name.into(),
            gcs: 1,
            reclaimed_bytes,
        };
        let mut pools = [
            pool("G1 Young Generation: CodeHeap 'non-nmethods'", 0),
            pool("G1 Young Generation: CodeHeap 'profiled nmethods'", 0),
            pool("G1 Young Generation: G1 Old Gen", -1024),
            pool("G1 Young Generation: CodeHeap 'non-profiled nmethods'", 0),
            pool("G1 Young Generation: G1 Survivor Space", -512),
            pool("G1 Young Generation: Metaspace", 0),
            pool("G1 Young Generation: G1 Eden Space", 4096),
        ];
        pools.sort_by_key(pool_order);
        let names: Vec<&str> = pools
            .iter()
            .map(|p| p.name.rsplit(": ").next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "G1 Eden Space",
                "G1 Survivor Space",
                "G1 Old Gen",
                "CodeHeap 'non-nmethods'",
                "CodeHeap 'non-profiled nmethods'",
                "CodeHeap 'profiled nmethods'",
                "Metaspace",
            ]
        );
        // Serial and Parallel GC name their old generation otherwise.
        let mut serial = [
            pool("MarkSweepCompact: Tenured Gen", 10),
            pool("Copy: Eden Space", 5),
        ];
        serial.sort_by_key(pool_order);
        assert_eq!(serial[1].name, "MarkSweepCompact: Tenured Gen");
    }
}
