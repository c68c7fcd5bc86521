//! What every view consumes: one interval's numbers for each traced process. The dashboard,
//! the CSV writer and the tests all read `Snapshot`s, whatever produced them.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
pub use ustat_runtimes::Missing;

use crate::{bpf::Lost, flow::FlowLine};

/// A name from a table in the code (a runtime's, a GC kind). An alias, because serde would
/// read a literal `&'static str` field as borrowed from the input.
pub type Name = &'static str;

/// Event counts of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Counters {
    /// GC pauses: a JVM's `gc__begin/end` pairs, every GC of the other runtimes.
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
    /// Exceptions raised or thrown (Ruby, PHP).
    pub exceptions: u64,
    /// Sweep steps of GCs and their time (Ruby sweeps lazily, after the mark).
    pub gc_sweeps: u64,
    pub gc_sweep_ns: u64,
    /// Exceptions caught (PHP).
    pub exceptions_caught: u64,
    /// Errors the runtime reported (PHP).
    pub errors: u64,
    /// Requests that ended, and their summed duration (PHP).
    pub requests: u64,
    pub request_ns: u64,
    /// A JVM's GCs as collections, from its memory managers (`ProcessSnapshot::collectors`):
    /// a concurrent collector's cycle once however many pauses it makes. Read it through
    /// `ProcessSnapshot::collections`, which is `gc_count` where the runtime has no managers.
    pub gc_collections: u64,
}

/// GC pause percentiles from an HdrHistogram (3 significant digits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PauseStats {
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// GCs of one kind (a generation, minor or major).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcKind {
    /// `gen0`, `gen1`, `gen2`, `minor`, `major`, `other`.
    #[serde(deserialize_with = "fields::gc_kind")]
    pub kind: Name,
    pub interval: u64,
    pub total: u64,
    pub pause_ns_total: u64,
    /// Objects collected, where the runtime says (CPython).
    pub collected_total: u64,
}

/// A named thing with counts (a method, a class), this interval and since attach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolUsage {
    /// `manager: pool`
    pub name: String,
    /// GCs that touched the pool.
    pub gcs: u64,
    /// Bytes used before those GCs minus bytes used after them (negative when a GC moved
    /// objects into the pool, as promotion does to an old generation).
    pub reclaimed_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSnapshot {
    pub pid: u32,
    /// `jvm`, `python`, `node`.
    #[serde(deserialize_with = "fields::runtime_name")]
    pub runtime: Name,
    /// The command name, cleaned of control characters.
    pub command: String,
    /// The process exited during the interval; this is its last snapshot.
    #[serde(default)]
    pub exited: bool,
    #[serde(default)]
    pub interval: Counters,
    #[serde(default)]
    pub total: Counters,
    /// This interval's GC pauses; `None` when there was none.
    #[serde(default)]
    pub pause: Option<PauseStats>,
    /// Every GC pause since attach.
    #[serde(default)]
    pub pause_total: Option<PauseStats>,
    #[serde(default)]
    pub gc_kinds: Vec<GcKind>,
    /// OS threads of the process now.
    #[serde(default)]
    pub threads_live: u64,
    /// Names of its live threads.
    #[serde(default)]
    pub threads: Vec<String>,
    #[serde(default)]
    pub top_methods: Vec<Ranked>,
    #[serde(default)]
    pub top_allocations: Vec<Ranked>,
    #[serde(default)]
    pub top_monitors: Vec<Ranked>,
    /// Exceptions by class (Ruby, PHP).
    #[serde(default)]
    pub top_exceptions: Vec<Ranked>,
    #[serde(default)]
    pub pools: Vec<PoolUsage>,
    /// A JVM's collections by memory manager (`ZGC Cycles`, `G1 Young Generation`, ...):
    /// interval and since attach.
    #[serde(default)]
    pub collectors: Vec<Ranked>,
    /// What this process's runtime or settings do not let ustat see, each with its line.
    #[serde(default, with = "fields::missing")]
    pub missing: Vec<Missing>,
    /// Probes the kernel refused for this process (another tracer holds the site with
    /// another semaphore offset, ...): each names probe, file and reason, and its categories
    /// are not traced.
    #[serde(default, with = "fields::missing")]
    pub refused: Vec<Missing>,
    /// The categories its runtime's binary lets ustat trace (`ustat_common::category`).
    #[serde(default)]
    pub traced: Vec<u32>,
    /// Stacks sampled on CPU during the interval; `None` when sampling is off or the process
    /// is not one ustat samples.
    #[serde(default)]
    pub sampled: Option<Sampled>,
}

/// What the CPU sampler saw of one process during one interval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampled {
    /// Sampling frequency per CPU, in Hz.
    pub hz: u32,
    /// Samples that interrupted any of the process's threads on a CPU in the interval.
    pub samples: u64,
    /// The distinct stacks among them, with their counts. Their sum is `samples` less the
    /// samples no stack could be named for (a process whose layout is unreadable, or not
    /// found yet: its interpreter was still starting); stacks that could be only partly read
    /// are here, with frames that say so.
    pub stacks: Vec<SampledStack>,
    /// Why the process's frames cannot be read (an unknown or unvalidated layout); its
    /// samples then count, but name nothing.
    #[serde(default)]
    pub unreadable: Option<String>,
}

/// One distinct sampled stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampledStack {
    /// Outermost frame first; the last frame is where the CPU was.
    pub frames: Vec<SampledFrame>,
    pub count: u64,
}

/// One frame of a sampled stack, named once per code object and sanitised.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampledFrame {
    /// Qualified name as the language writes it (`Handler.get`, `java.util.HashMap.get(Object)`).
    pub function: String,
    /// Source file; empty where the runtime does not say.
    #[serde(default)]
    pub file: String,
    /// First line of the function; 0 where unknown.
    #[serde(default)]
    pub line: u32,
    pub kind: FrameKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// Interpreted or compiled code of the language itself.
    Managed,
    /// A native (C) function called from the language, where the frame chain says so.
    Native,
    /// A frame that could not be named (freed code, a failed read): never guessed.
    Unknown,
}

/// Whether the runtime has a feature for import time apart from the imports' count.
fn runtime_times_imports_apart(runtime: &str) -> bool {
    ustat_runtimes::by_name(runtime).is_some_and(|r| {
        r.features
            .iter()
            .any(|f| f.categories.contains(&ustat_common::category::IMPORT_TIME))
    })
}

impl ProcessSnapshot {
    /// Is this category not traced in this process: its runtime has no such events, its
    /// binary lacks the probes, its settings keep them off, or the kernel refused a probe?
    /// Import time comes with the imports (Ruby's requires, PHP's files), except where the
    /// runtime traces it apart (`IMPORT_TIME`: CPython's import probes, on demand).
    pub fn untraced(&self, category: u32) -> bool {
        use ustat_common::category::{IMPORT, IMPORT_TIME};
        if category == IMPORT_TIME && !runtime_times_imports_apart(self.runtime) {
            return self.untraced(IMPORT);
        }
        !self.traced.contains(&category) || self.why_untraced(category).is_some()
    }

    /// Are the bytes of its allocations not traced (no allocations, or sizes it cannot
    /// trust: `category::ALLOC_BYTES`)?
    pub fn bytes_untraced(&self) -> bool {
        use ustat_common::category::{ALLOC_BYTES, OBJECT_ALLOC};
        self.untraced(OBJECT_ALLOC) || self.why_untraced(ALLOC_BYTES).is_some()
    }

    /// The line that says why `category` is not traced, refusals first.
    pub fn why_untraced(&self, category: u32) -> Option<&Missing> {
        self.refused
            .iter()
            .chain(&self.missing)
            .find(|m| m.categories.contains(&category))
    }

    /// Collections in the interval: a JVM's by its memory managers, where they reported any
    /// (a ZGC or Shenandoah cycle once, however many pauses); elsewhere every GC is one pause
    /// and one collection.
    pub fn collections(&self) -> u64 {
        if self.collectors.is_empty() {
            self.interval.gc_count
        } else {
            self.interval.gc_collections
        }
    }

    pub fn gc_of_kind(&self, kind: &str) -> u64 {
        self.gc_kinds
            .iter()
            .filter(|k| k.kind == kind)
            .map(|k| k.interval)
            .sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// When the interval ended.
    #[serde(with = "fields::time")]
    pub taken_at: SystemTime,
    /// How long the interval really was.
    #[serde(with = "fields::duration")]
    pub interval: Duration,
    #[serde(default)]
    pub processes: Vec<ProcessSnapshot>,
    /// What could not be recorded since ustat started.
    #[serde(default, with = "fields::lost")]
    pub lost: Lost,
    /// What could not be recorded in this interval.
    #[serde(default, with = "fields::lost")]
    pub lost_interval: Lost,
    /// Problems worth a line in the view (a probe that could not be attached).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Probe sites attached now (every program, every binary).
    #[serde(default)]
    pub probes_attached: u64,
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
            probes_attached: 0,
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
        unlisted_processes: now
            .unlisted_processes
            .saturating_sub(before.unlisted_processes),
        unlisted_events: now.unlisted_events.saturating_sub(before.unlisted_events),
    }
}

/// Anything that produces snapshots: the kernel, or recorded ones in tests.
pub trait Source {
    /// The numbers for the interval since the previous call.
    fn poll(&mut self) -> anyhow::Result<Snapshot>;
}

/// Following one process's method calls as they happen (the flow view): the kernel, or
/// recorded call lines in tests.
pub trait CallSource {
    /// Starts delivering `pid`'s method entries and returns (see `take_flow`).
    fn watch_flow(&mut self, pid: u32) -> anyhow::Result<()>;
    /// Stops delivering calls.
    fn unwatch_flow(&mut self) -> anyhow::Result<()>;
    /// Delivers only calls whose class (or file) and method (or function) start with these.
    fn filter_flow(&mut self, class: &str, method: &str) -> anyhow::Result<()>;
    /// The watched process's entries and returns since the last call, in order; never waits.
    fn take_flow(&mut self) -> Vec<FlowLine>;
    /// Calls lost so far (never a silent gap).
    fn flow_dropped(&self) -> anyhow::Result<u64>;
    /// A method's name, from its flow hash; `?` where it never arrived.
    fn method_label(&self, pid: u32, method: u64) -> String;
    /// `pid`'s call tree as folded stacks (`a;b;c calls`).
    fn folded(&mut self, pid: u32) -> anyhow::Result<Vec<String>>;
    /// `java (PID 1234, jvm)`, for the flow view's title.
    fn title(&self, pid: u32) -> String;
    /// Attaches `pid`'s on-demand features (probes ustat leaves off by default because the
    /// runtime's code behind them can fail); returns the names of those that took.
    fn trace_on_demand(&mut self, pid: u32) -> Vec<&'static str>;
    /// `pid`'s live threads now, (thread id, name), by id; for the flow's thread picker.
    fn live_threads(&self, _pid: u32) -> Vec<(u32, String)> {
        Vec::new()
    }
}

/// How the snapshot fields that are not plain data are written and read (recordings,
/// `recorded.rs`): times in RFC 3339, durations as humantime, names by their table.
mod fields {
    use serde::{Deserialize, Deserializer};

    /// A runtime's short name, as the `&'static str` the runtime module holds.
    pub fn runtime_name<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
        let name = String::deserialize(d)?;
        ustat_runtimes::by_name(&name)
            .map(|r| r.name)
            .ok_or_else(|| serde::de::Error::custom(format!("no runtime is called {name:?}")))
    }

    /// A GC kind, as the `&'static str` runtimes return.
    pub fn gc_kind<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
        const KINDS: [&str; 6] = ["gen0", "gen1", "gen2", "minor", "major", "other"];
        let kind = String::deserialize(d)?;
        KINDS
            .into_iter()
            .find(|k| *k == kind)
            .ok_or_else(|| serde::de::Error::custom(format!("no GC kind is called {kind:?}")))
    }

    pub mod time {
        use std::time::SystemTime;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&humantime::format_rfc3339_nanos(*at))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
            let text = String::deserialize(d)?;
            humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
        }
    }

    pub mod duration {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&humantime::format_duration(*duration))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            let text = String::deserialize(d)?;
            humantime::parse_duration(&text).map_err(serde::de::Error::custom)
        }
    }

    pub mod lost {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use crate::bpf::Lost;

        #[derive(Serialize, Deserialize, Default)]
        #[serde(default, deny_unknown_fields)]
        struct Recorded {
            ring_full: u64,
            map_full: u64,
            too_deep: u64,
            bad_values: u64,
            unlisted_processes: u64,
            unlisted_events: u64,
        }

        pub fn serialize<S: Serializer>(lost: &Lost, s: S) -> Result<S::Ok, S::Error> {
            Recorded {
                ring_full: lost.ring_full,
                map_full: lost.map_full,
                too_deep: lost.too_deep,
                bad_values: lost.bad_values,
                unlisted_processes: lost.unlisted_processes,
                unlisted_events: lost.unlisted_events,
            }
            .serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Lost, D::Error> {
            let r = Recorded::deserialize(d)?;
            Ok(Lost {
                ring_full: r.ring_full,
                map_full: r.map_full,
                too_deep: r.too_deep,
                bad_values: r.bad_values,
                unlisted_processes: r.unlisted_processes,
                unlisted_events: r.unlisted_events,
            })
        }
    }

    pub mod missing {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use crate::snapshot::Missing;

        #[derive(Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Recorded {
            categories: Vec<u32>,
            text: String,
        }

        pub fn serialize<S: Serializer>(missing: &[Missing], s: S) -> Result<S::Ok, S::Error> {
            let recorded: Vec<Recorded> = missing
                .iter()
                .map(|m| Recorded {
                    categories: m.categories.clone(),
                    text: m.text.clone(),
                })
                .collect();
            recorded.serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Missing>, D::Error> {
            let recorded = Vec::<Recorded>::deserialize(d)?;
            Ok(recorded
                .into_iter()
                .map(|r| Missing {
                    categories: r.categories,
                    text: r.text,
                })
                .collect())
        }
    }
}
