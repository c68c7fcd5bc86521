//! The kernel as a `Source`: finds runtime processes, attaches each runtime binary once,
//! reads the aggregation maps every interval, and turns them into snapshots.

mod flow;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::{Instant, SystemTime},
};

use aya::maps::{MapData, RingBuf};
use ustat_common::{EventHeader, NameEvent, event_kind};
use ustat_runtimes::{Missing, ProcessFacts};

use crate::{
    binary::{self, Binary},
    bpf::{Group, Program, Scope, Totals, Tracer},
    discovery::{self, Discovery, Found},
    elf::OpenError,
    plan,
    process::{self, ProcessError},
    sanitize,
    snapshot::{ProcessSnapshot, Snapshot, Source},
    stats::{self, Names},
};

/// Which processes to trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every runtime process on the host, also ones started later.
    All,
    /// Only these processes.
    Pids(Vec<u32>),
}

/// What to trace and how much to keep.
#[derive(Debug, Clone)]
pub struct Options {
    pub selection: Selection,
    /// Only processes of this runtime (name), when given.
    pub runtime: Option<&'static str>,
    /// Entries kept in each top list (methods, allocations).
    pub top: usize,
    /// Also attach every process's method entry and return probes, for per-method timing.
    pub method_times: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("process {pid} runs no runtime ustat traces: it maps none of {binaries}")]
    NotARuntime { pid: u32, binaries: String },
}

/// What has been attached, so each binary (or binary and process, when scoped) is attached once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Attached {
    File { dev: (i32, i32), inode: u64 },
    Process { pid: u32, start_time: u64 },
}

/// What a runtime's binary lets ustat see.
#[derive(Debug, Clone, Default)]
struct Coverage {
    resolved: Vec<&'static str>,
    /// The categories of the resolved features.
    traced: Vec<u32>,
    unavailable: Vec<Missing>,
}

struct Tracked {
    found: Found,
    command: String,
    missing: Vec<Missing>,
    traced: Vec<u32>,
}

pub struct KernelSource {
    tracer: Tracer,
    events: RingBuf<MapData>,
    options: Options,
    discovery: Discovery,
    attached: HashMap<Attached, Coverage>,
    tracked: BTreeMap<u32, Tracked>,
    previous: Totals,
    names: Names,
    last_poll: Instant,
    warnings: Vec<String>,
    flow: flow::FlowState,
}

/// Environment variables runtimes read options from.
const OPTION_VARIABLES: &[&str] = &[
    "JAVA_TOOL_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "_JAVA_OPTIONS",
    "NODE_OPTIONS",
    "PYTHONOPTIMIZE",
];

impl KernelSource {
    /// Loads the programs, finds the selected runtime processes and attaches to them.
    pub fn start(options: Options) -> anyhow::Result<Self> {
        let mut tracer = Tracer::load()?;
        for program in [
            Program::Count,
            Program::SpanBegin,
            Program::SpanEnd,
            Program::Keyed,
        ] {
            tracer.load_program(program)?;
        }
        if options.method_times {
            tracer.load_program(Program::FlowEntry)?;
            tracer.load_program(Program::FlowReturn)?;
        }
        if let Selection::Pids(pids) = &options.selection {
            for &pid in pids {
                if discovery::runtime_of(pid)
                    .map_err(SelectionError::from)?
                    .is_none()
                {
                    let binaries: Vec<&str> =
                        ustat_runtimes::ALL.iter().map(|r| r.binary_hint).collect();
                    return Err(SelectionError::NotARuntime {
                        pid,
                        binaries: binaries.join(", "),
                    }
                    .into());
                }
            }
        }
        let events = tracer.take_events()?;
        let mut source = Self {
            tracer,
            events,
            options,
            discovery: Discovery::default(),
            attached: HashMap::new(),
            tracked: BTreeMap::new(),
            previous: Totals::default(),
            names: Names::new(),
            last_poll: Instant::now(),
            warnings: Vec::new(),
            flow: flow::FlowState::default(),
        };
        source.discover();
        source.last_poll = Instant::now();
        Ok(source)
    }

    /// How many processes are traced now.
    pub fn traced(&self) -> usize {
        self.tracked.len()
    }

    /// The traced processes: (pid, runtime).
    pub fn processes(&self) -> Vec<(u32, &'static str)> {
        self.tracked
            .values()
            .map(|t| (t.found.pid, t.found.runtime.name))
            .collect()
    }

    /// Finds processes that appeared, attaches what they need, and returns those that are gone.
    fn discover(&mut self) -> Vec<Tracked> {
        let pids = match &self.options.selection {
            Selection::All => None,
            Selection::Pids(pids) => Some(pids.as_slice()),
        };
        let mut found = self.discovery.scan(pids);
        if let Some(runtime) = self.options.runtime {
            found.retain(|f| f.runtime.name == runtime);
        }
        let alive: HashSet<(u32, u64)> = found.iter().map(|f| (f.pid, f.start_time)).collect();
        let gone: Vec<u32> = self
            .tracked
            .values()
            .filter(|t| !alive.contains(&(t.found.pid, t.found.start_time)))
            .map(|t| t.found.pid)
            .collect();
        let gone: Vec<Tracked> = gone
            .iter()
            .filter_map(|pid| self.tracked.remove(pid))
            .collect();
        for found in found {
            if self.tracked.contains_key(&found.pid) {
                continue;
            }
            let coverage = self.attach(&found);
            let facts = ProcessFacts {
                args: process::args(found.pid).unwrap_or_default(),
                env: process::env(found.pid, OPTION_VARIABLES).unwrap_or_default(),
                version: (found.runtime.version)(&found.binary.path, &|path| {
                    binary::read_small_text(found.pid, path).ok()
                }),
                resolved: coverage.resolved,
            };
            let traced = coverage.traced;
            let mut missing = coverage.unavailable;
            missing.extend((found.runtime.missing)(&facts));
            self.tracked.insert(
                found.pid,
                Tracked {
                    command: process::command(found.pid).unwrap_or_default(),
                    missing,
                    traced,
                    found,
                },
            );
        }
        gone
    }

    /// Attaches the runtime's features in the process's binary, once per binary (per
    /// process when tracing selected processes), and says what the binary covers.
    fn attach(&mut self, found: &Found) -> Coverage {
        let (key, scope) = match self.options.selection {
            Selection::All => (
                Attached::File {
                    dev: found.binary.dev,
                    inode: found.binary.inode,
                },
                Scope::AllProcesses,
            ),
            Selection::Pids(_) => (
                Attached::Process {
                    pid: found.pid,
                    start_time: found.start_time,
                },
                Scope::Process(found.pid),
            ),
        };
        if let Some(coverage) = self.attached.get(&key) {
            return coverage.clone();
        }
        let Some(binary) = self.open_binary(found) else {
            self.attached.insert(key, Coverage::default());
            return Coverage::default();
        };
        let coverage = match plan::plan(found.runtime, &binary) {
            Ok(plan) => {
                self.warnings
                    .extend(plan.warnings.iter().map(|w| sanitize::text(w)));
                self.attach_planned(Group::Main, scope, &plan.attachments);
                let traced = found
                    .runtime
                    .features
                    .iter()
                    .filter(|f| plan.resolved.contains(&f.name))
                    .flat_map(|f| f.categories.iter().copied())
                    .collect();
                if self.options.method_times {
                    self.attach_flow(found, &binary, Group::Main, scope);
                }
                Coverage {
                    resolved: plan.resolved,
                    traced,
                    unavailable: plan.unavailable,
                }
            }
            Err(e) => {
                self.warnings.push(sanitize::text(&format!("{e:#}")));
                Coverage::default()
            }
        };
        self.attached.insert(key, coverage.clone());
        coverage
    }

    /// Opens the runtime binary `found` maps (see `binary`); a file ustat will not open, or
    /// cannot, becomes a warning naming it and why.
    fn open_binary(&mut self, found: &Found) -> Option<Arc<Binary>> {
        let opened = process::uid(found.pid)
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)))
            .and_then(|uid| {
                Binary::open_mapped(found.pid, &found.binary, uid).map_err(|e| match e {
                    OpenError::Refused { path, reason } => {
                        binary::skip_line(found.pid, &path, &reason)
                    }
                    other => format!("{:#}", anyhow::Error::from(other)),
                })
            });
        match opened {
            Ok(binary) => Some(binary),
            Err(line) => {
                self.warnings.push(sanitize::text(&line));
                None
            }
        }
    }

    /// Attaches planned sites; a site that fails becomes a warning. Returns how many took.
    fn attach_planned(&mut self, group: Group, scope: Scope, planned: &[plan::Planned]) -> usize {
        let sites: Vec<_> = planned.iter().map(plan::Planned::attachment).collect();
        let errors = self.tracer.attach_all(group, scope, &sites);
        let attached = sites.len() - errors.len();
        for e in errors {
            let message = format!("{:#}", anyhow::Error::from(e));
            self.warnings.push(sanitize::text(&message));
        }
        attached
    }

    /// Takes the names the kernel sent for new keys.
    fn drain_events(&mut self) {
        let mut names = Vec::new();
        while let Some(item) = self.events.next() {
            let bytes: &[u8] = &item;
            if bytes.len() < size_of::<EventHeader>() {
                continue;
            }
            // SAFETY: long enough for a header; read_unaligned copes with any alignment.
            let header: EventHeader = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
            if header.kind == event_kind::NAMES && bytes.len() >= size_of::<NameEvent>() {
                // SAFETY: long enough for the whole event.
                let event: NameEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
                let text: [String; 3] = std::array::from_fn(|slot| {
                    let len = usize::from(event.lens[slot]).min(event.names[slot].len());
                    sanitize::text(&String::from_utf8_lossy(&event.names[slot][..len]))
                });
                names.push((event.key, text));
            } else if header.kind == event_kind::FLOW {
                self.flow.receive(bytes);
            }
        }
        for (key, text) in names {
            self.remember_names(key, text);
        }
    }

    fn snapshot_of(
        &self,
        tracked: &Tracked,
        now: &stats::PidTotals,
        exited: bool,
    ) -> ProcessSnapshot {
        let found = &tracked.found;
        let computed = stats::compute(
            found.runtime,
            now,
            &self.previous,
            &self.names,
            self.flow.readings(),
            self.options.top,
        );
        let threads = if exited {
            Vec::new()
        } else {
            process::threads(found.pid).unwrap_or_default()
        };
        ProcessSnapshot {
            pid: found.pid,
            runtime: found.runtime.name,
            command: tracked.command.clone(),
            exited,
            threads_live: threads.len() as u64,
            threads,
            missing: tracked
                .missing
                .iter()
                .filter(|m| !m.categories.iter().any(|c| computed.seen.contains(c)))
                .cloned()
                .collect(),
            traced: tracked.traced.clone(),
            interval: computed.interval,
            total: computed.total,
            pause: computed.pause,
            pause_total: computed.pause_total,
            gc_kinds: computed.gc_kinds,
            top_methods: computed.top_methods,
            top_allocations: computed.top_allocations,
            top_monitors: computed.top_monitors,
            pools: computed.pools,
        }
    }
}

impl Source for KernelSource {
    fn poll(&mut self) -> anyhow::Result<Snapshot> {
        let gone = self.discover();
        let totals = self.tracer.totals()?;
        self.read_flow_totals()?;
        self.drain_events();
        let now = Instant::now();
        let interval = now - self.last_poll;
        self.last_poll = now;

        let by_pid = stats::by_pid(&totals);
        let empty = stats::PidTotals::default();
        let mut processes: Vec<ProcessSnapshot> = self
            .tracked
            .values()
            .map(|t| self.snapshot_of(t, by_pid.get(&t.found.pid).unwrap_or(&empty), false))
            .collect();
        // A process that exited still reports what it did since the last interval, once.
        for tracked in &gone {
            let pid = tracked.found.pid;
            processes.push(self.snapshot_of(tracked, by_pid.get(&pid).unwrap_or(&empty), true));
        }
        processes.sort_by_key(|p| p.pid);
        let mut totals = totals;
        for tracked in &gone {
            let pid = tracked.found.pid;
            self.tracer.forget_process(pid)?;
            self.names.retain(|key, _| key.pid != pid);
            self.flow.forget_process(pid);
            totals.forget_process(pid);
        }
        self.previous = totals;
        self.flow.end_interval();
        Ok(Snapshot {
            taken_at: SystemTime::now(),
            interval,
            processes,
            lost: self.tracer.lost()?,
            warnings: self.warnings.clone(),
        })
    }
}
