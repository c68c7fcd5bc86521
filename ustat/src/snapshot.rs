//! What every view consumes: one interval's numbers for each traced process. The dashboard,
//! the CSV writer and the tests all read `Snapshot`s, whatever produced them.

use std::time::{Duration, SystemTime};

pub use ustat_runtimes::Missing;

use crate::bpf::Lost;

/// Event counts of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub gc_count: u64,
    pub gc_pause_ns: u64,
    pub class_loaded: u64,
    pub class_unloaded: u64,
    pub threads_started: u64,
    pub threads_stopped: u64,
    pub objects_allocated: u64,
    pub bytes_allocated: u64,
    pub method_calls: u64,
    pub monitor_contended: u64,
    pub imports: u64,
    pub import_ns: u64,
    pub http_requests: u64,
}

/// GC pause percentiles from an HdrHistogram (3 significant digits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PauseStats {
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// GCs of one kind (a generation, minor or major).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcKind {
    /// `gen0`, `gen1`, `gen2`, `minor`, `major`.
    pub kind: &'static str,
    pub interval: u64,
    pub total: u64,
    pub pause_ns_total: u64,
    /// Objects collected, where the runtime says (CPython).
    pub collected_total: u64,
}

/// A named thing with counts (a method, a class), this interval and since attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    pub name: String,
    pub interval: u64,
    pub total: u64,
    /// Summed value (bytes, for allocations).
    pub interval_value: u64,
    pub total_value: u64,
    /// A method's timing this interval, where its entry and return probes are attached.
    pub timing: Option<Timing>,
    /// The same since they were attached.
    pub timing_total: Option<Timing>,
}

/// A method's calls and their times over an interval, from the kernel's shadow stacks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// Calls that returned.
    pub calls: u64,
    /// Inclusive time, recursion counted once.
    pub total_ns: u64,
    /// Exclusive time.
    pub self_ns: u64,
    /// Mean inclusive duration of a call.
    pub mean_ns: u64,
    /// 99th percentile of a call's inclusive duration (HdrHistogram, 3 digits).
    pub p99_ns: u64,
}

/// A memory pool's usage around this interval's GCs (HotSpot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    /// `manager: pool`
    pub name: String,
    /// GCs that touched the pool.
    pub gcs: u64,
    /// Bytes used before those GCs minus bytes used after them (negative when a GC moved
    /// objects into the pool, as promotion does to an old generation).
    pub reclaimed_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSnapshot {
    pub pid: u32,
    /// `jvm`, `python`, `node`.
    pub runtime: &'static str,
    /// The command name, cleaned of control characters.
    pub command: String,
    /// The process exited during the interval; this is its last snapshot.
    pub exited: bool,
    pub interval: Counters,
    pub total: Counters,
    /// This interval's GC pauses; `None` when there was none.
    pub pause: Option<PauseStats>,
    /// Every GC pause since attach.
    pub pause_total: Option<PauseStats>,
    pub gc_kinds: Vec<GcKind>,
    /// OS threads of the process now.
    pub threads_live: u64,
    /// Names of its live threads.
    pub threads: Vec<String>,
    pub top_methods: Vec<Ranked>,
    pub top_allocations: Vec<Ranked>,
    pub top_monitors: Vec<Ranked>,
    pub pools: Vec<PoolUsage>,
    /// What this process's runtime or settings do not let ustat see, each with its line.
    pub missing: Vec<Missing>,
    /// The categories its runtime's binary lets ustat trace (`ustat_common::category`).
    pub traced: Vec<u32>,
}

impl ProcessSnapshot {
    /// Is this category not traced in this process: its runtime has no such events, its
    /// binary lacks the probes, or its settings keep them off?
    pub fn untraced(&self, category: u32) -> bool {
        !self.traced.contains(&category)
            || self
                .missing
                .iter()
                .any(|m| m.categories.contains(&category))
    }

    pub fn gc_of_kind(&self, kind: &str) -> u64 {
        self.gc_kinds
            .iter()
            .filter(|k| k.kind == kind)
            .map(|k| k.interval)
            .sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When the interval ended.
    pub taken_at: SystemTime,
    /// How long the interval really was.
    pub interval: Duration,
    pub processes: Vec<ProcessSnapshot>,
    /// What could not be recorded since ustat started.
    pub lost: Lost,
    /// What could not be recorded in this interval.
    pub lost_interval: Lost,
    /// Problems worth a line in the view (a probe that could not be attached).
    pub warnings: Vec<String>,
}

impl Snapshot {
    pub fn empty(taken_at: SystemTime, interval: Duration) -> Self {
        Self {
            taken_at,
            interval,
            processes: Vec::new(),
            lost: Lost::default(),
            lost_interval: Lost::default(),
            warnings: Vec::new(),
        }
    }
}

/// What was lost between two readings of the kernel's (cumulative) loss counters.
pub fn lost_since(before: &Lost, now: &Lost) -> Lost {
    Lost {
        ring_full: now.ring_full.saturating_sub(before.ring_full),
        map_full: now.map_full.saturating_sub(before.map_full),
        too_deep: now.too_deep.saturating_sub(before.too_deep),
        bad_values: now.bad_values.saturating_sub(before.bad_values),
    }
}

/// Anything that produces snapshots: the kernel, or recorded ones in tests.
pub trait Source {
    /// The numbers for the interval since the previous call.
    fn poll(&mut self) -> anyhow::Result<Snapshot>;
}
