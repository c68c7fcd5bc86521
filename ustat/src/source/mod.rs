//! The kernel as a `Source`: finds runtime processes, attaches each runtime binary once,
//! reads the aggregation maps every interval, and turns them into snapshots.

mod calls_impl;
mod flow;
mod names;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::{Instant, SystemTime},
};

use aya::maps::{MapData, RingBuf};
use ustat_common::{EventHeader, NameEvent, OfProcess as _, ProcessKey, event_kind};
use ustat_runtimes::{Missing, ProcessFacts};

use crate::{
    bpf::{Group, Program, Scope, Totals, Tracer, pid_namespace},
    discovery::{self, Discovery, Found},
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
    /// On-demand features to attach in every process (`--with`); see `OnDemand`.
    pub with: Vec<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("process {pid} runs no runtime ustat traces: it maps none of {binaries}")]
    NotARuntime { pid: u32, binaries: String },
    #[error("{}", nested_namespace(*pid))]
    NestedNamespace { pid: u32 },
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
    /// The features attached (on-demand ones only when `--with` asked for them).
    resolved: Vec<&'static str>,
    /// The categories of the resolved features.
    traced: Vec<u32>,
    unavailable: Vec<Missing>,
    /// On-demand features the binary has that are not attached: a process can ask for them.
    deferred: Vec<plan::OnDemandPlan>,
}

struct Tracked {
    found: Found,
    command: String,
    facts: ProcessFacts,
    unavailable: Vec<Missing>,
    deferred: Vec<plan::OnDemandPlan>,
    missing: Vec<Missing>,
    traced: Vec<u32>,
    /// Its epoch in the kernel's keys, once it has any (see `epoch_of`).
    epoch: Option<u64>,
}

impl Tracked {
    fn process(&self) -> Option<ProcessKey> {
        self.epoch
            .map(|epoch| ProcessKey::new(self.found.pid, epoch))
    }

    /// Every line that says what is not traced: features the binary lacks, on-demand ones not
    /// asked for (and how to ask), and what the runtime's settings leave out.
    fn missing_lines(&self) -> Vec<Missing> {
        let mut missing = self.unavailable.clone();
        missing.extend(self.deferred.iter().map(|plan| Missing {
            categories: plan.feature.categories.to_vec(),
            text: on_demand_line(plan.feature),
        }));
        missing.extend((self.found.runtime.missing)(&self.facts));
        missing
    }
}

/// The detail view's line for an on-demand feature not attached, with how to attach it.
fn on_demand_line(feature: &ustat_runtimes::Feature) -> String {
    let line = feature.on_demand.map_or("", |o| o.line);
    format!("{line}; `o` or --with {} turns them on", feature.name)
}

pub struct KernelSource {
    tracer: Tracer,
    events: RingBuf<MapData>,
    options: Options,
    discovery: Discovery,
    attached: HashMap<Attached, Coverage>,
    tracked: BTreeMap<u32, Tracked>,
    /// Processes (pid, start time) whose exit was reported while /proc still lists them
    /// (not yet reaped), so discovery does not take them up again.
    ended: HashSet<(u32, u64)>,
    previous: Totals,
    names: Names,
    last_poll: Instant,
    warnings: Vec<String>,
    /// Processes left out because they run in a PID namespace nested in ustat's.
    nested: HashSet<u32>,
    flow: flow::FlowState,
    name_requests: names::NameRequests,
    /// The loss counters at the previous poll.
    lost: crate::bpf::Lost,
}

fn nested_namespace(pid: u32) -> String {
    format!(
        "process {pid} runs in a PID namespace nested inside ustat's, for which the kernel gives \
         ustat's programs no ids: trace it from its own namespace or from the host"
    )
}

/// The categories of the features named `resolved`.
fn categories_of(runtime: &ustat_runtimes::Runtime, resolved: &[&'static str]) -> Vec<u32> {
    runtime
        .features
        .iter()
        .filter(|f| resolved.contains(&f.name))
        .flat_map(|f| f.categories.iter().copied())
        .collect()
}

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
                if pid_namespace::nested(pid) {
                    return Err(SelectionError::NestedNamespace { pid }.into());
                }
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
            ended: HashSet::new(),
            previous: Totals::default(),
            names: Names::new(),
            last_poll: Instant::now(),
            warnings: Vec::new(),
            nested: HashSet::new(),
            flow: flow::FlowState::default(),
            name_requests: names::NameRequests::default(),
            lost: crate::bpf::Lost::default(),
        };
        if let Err(e) = source.tracer.watch_exits() {
            let e = anyhow::Error::from(e);
            source.warnings.push(sanitize::text(&format!(
                "{e:#}: the maps keep exited processes' counts until ustat ends (only traced \
                 processes' are removed)"
            )));
        }
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
        // Said once, and left out: its counts would be zeros that look real.
        found.retain(|f| {
            if !pid_namespace::nested(f.pid) {
                return true;
            }
            if self.nested.insert(f.pid) {
                self.warnings.push(nested_namespace(f.pid));
            }
            false
        });
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
        self.ended.retain(|process| alive.contains(process));
        for found in found {
            if self.tracked.contains_key(&found.pid)
                || self.ended.contains(&(found.pid, found.start_time))
            {
                continue;
            }
            let coverage = self.attach(&found);
            let facts = ProcessFacts {
                args: process::args(found.pid).unwrap_or_default(),
                env: process::env(found.pid, found.runtime.option_variables).unwrap_or_default(),
                version: (found.runtime.version)(&found.binary.host_path),
                resolved: coverage.resolved,
            };
            let mut tracked = Tracked {
                command: process::command(found.pid).unwrap_or_default(),
                facts,
                unavailable: coverage.unavailable,
                deferred: coverage.deferred,
                missing: Vec::new(),
                traced: coverage.traced,
                found,
                epoch: None,
            };
            tracked.missing = tracked.missing_lines();
            self.tracked.insert(tracked.found.pid, tracked);
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
        let coverage = match plan::plan(found.runtime, &found.binary.host_path) {
            Ok(plan) => {
                self.warnings
                    .extend(plan.warnings.iter().map(|w| sanitize::text(w)));
                self.attach_planned(Group::Main, scope, &plan.attachments);
                let mut resolved = plan.resolved;
                let mut deferred = Vec::new();
                for on_demand in plan.on_demand {
                    if self.options.with.contains(&on_demand.feature.name) {
                        self.attach_planned(Group::Main, scope, &on_demand.attachments);
                        resolved.push(on_demand.feature.name);
                    } else {
                        deferred.push(on_demand);
                    }
                }
                let traced = categories_of(found.runtime, &resolved);
                // Per-method times raise the call probes: only where they may be raised.
                let calls_allowed = match found.runtime.flow {
                    Some(flow) => !deferred.iter().any(|d| d.feature.name == flow.feature),
                    None => true,
                };
                if self.options.method_times && calls_allowed {
                    self.attach_flow(found, Group::Main, scope);
                }
                Coverage {
                    resolved,
                    traced,
                    unavailable: plan.unavailable,
                    deferred,
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

    /// Attaches `pid`'s on-demand features (the user asked: a key, a view); returns their
    /// names, none when there are none or they are attached already.
    pub fn trace_on_demand(&mut self, pid: u32) -> Vec<&'static str> {
        let Some(tracked) = self.tracked.get_mut(&pid) else {
            return Vec::new();
        };
        let deferred = std::mem::take(&mut tracked.deferred);
        let runtime = tracked.found.runtime;
        let mut names = Vec::new();
        for on_demand in &deferred {
            if self.attach_planned(Group::Main, Scope::Process(pid), &on_demand.attachments) > 0 {
                names.push(on_demand.feature.name);
            }
        }
        if let Some(tracked) = self.tracked.get_mut(&pid) {
            tracked.facts.resolved.extend(names.iter().copied());
            tracked.traced = categories_of(runtime, &tracked.facts.resolved);
            tracked.missing = tracked.missing_lines();
        }
        names
    }

    /// Whether following `pid`'s calls would raise on-demand probes nobody asked for: the
    /// risk, and how to take it.
    fn calls_not_asked_for(&self, pid: u32) -> Option<String> {
        let tracked = self.tracked.get(&pid)?;
        let flow = tracked.found.runtime.flow?;
        let feature = tracked
            .deferred
            .iter()
            .find(|d| d.feature.name == flow.feature)?
            .feature;
        Some(format!(
            "{} calls are not traced unless asked for: {}; to take that risk, pass --with {} \
             (or press `o` in the dashboard)",
            tracked.found.runtime.name,
            feature.on_demand.map_or("", |o| o.risk),
            feature.name
        ))
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
            top_exceptions: computed.top_exceptions,
            pools: computed.pools,
        }
    }
}

impl Source for KernelSource {
    fn poll(&mut self) -> anyhow::Result<Snapshot> {
        // Discovery first: a process it finds gone has been reaped, so the exit hook has
        // already recorded it, and the reading below holds its final counts.
        let mut gone = self.discover();
        let exited = self.tracer.exited()?;
        let totals = self.tracer.totals()?;
        self.read_flow_totals()?;
        self.drain_events();
        self.request_missing_names(&totals)?;
        let now = Instant::now();
        let interval = now - self.last_poll;
        self.last_poll = now;

        self.learn_epochs(&totals, &exited, &mut gone);
        // A tracked process whose exit the hook saw is done, also while /proc still lists
        // it (exited, not yet reaped).
        let ended: Vec<u32> = self
            .tracked
            .values()
            .filter(|t| t.process().is_some_and(|p| exited.contains(&p)))
            .map(|t| t.found.pid)
            .collect();
        for pid in ended {
            if let Some(tracked) = self.tracked.remove(&pid) {
                self.ended.insert((pid, tracked.found.start_time));
                gone.push(tracked);
            }
        }

        let by_process = stats::by_process(&totals);
        let empty = stats::PidTotals::default();
        let of = |t: &Tracked| {
            t.process()
                .and_then(|p| by_process.get(&p))
                .unwrap_or(&empty)
        };
        let mut processes: Vec<ProcessSnapshot> = self
            .tracked
            .values()
            .map(|t| self.snapshot_of(t, of(t), false))
            .collect();
        // A process that exited still reports what it did since the last interval, once.
        for tracked in &gone {
            processes.push(self.snapshot_of(tracked, of(tracked), true));
        }
        // A process that exited comes before a new one that took its pid.
        processes.sort_by_key(|p| (p.pid, !p.exited));

        // Every exited process's keys go, tracked or not (an untracked one's counts are
        // dropped here), in one pass over each map.
        let mut forget = exited;
        forget.extend(gone.iter().filter_map(Tracked::process));
        self.tracer.forget_processes(&forget)?;
        if !self.tracer.watches_exits() {
            self.tracer.forget_dead_processes(process_alive)?;
        }
        self.names.retain(|key, _| !forget.contains(&key.process()));
        self.forget_name_requests(&forget)?;
        for tracked in &gone {
            self.flow.forget_process(tracked.found.pid);
        }
        let mut totals = totals;
        totals.forget_processes(&forget);
        self.previous = totals;
        self.flow.end_interval();
        self.debug_maps();
        let lost = self.tracer.lost()?;
        let lost_interval = crate::snapshot::lost_since(&self.lost, &lost);
        self.lost = lost;
        Ok(Snapshot {
            taken_at: SystemTime::now(),
            interval,
            processes,
            lost,
            lost_interval,
            warnings: self.warnings.clone(),
        })
    }
}

impl KernelSource {
    /// Ties tracked processes to their epoch when their first keys appear (in the maps, or
    /// as an exit). Processes that just went are looked at too: one that hit its first probe
    /// and exited between two polls is still reported. They go first, so that a process that
    /// took the pid of one that went cannot claim its epoch.
    fn learn_epochs(
        &mut self,
        totals: &Totals,
        exited: &HashSet<ProcessKey>,
        gone: &mut [Tracked],
    ) {
        let mut epochs: HashMap<u32, Vec<Epoch>> = HashMap::new();
        for process in totals.processes().iter().chain(exited) {
            epochs.entry(process.pid).or_default().push(Epoch {
                epoch: process.epoch,
                exited: exited.contains(process),
            });
        }
        let mut claimed: HashSet<ProcessKey> = gone
            .iter()
            .chain(self.tracked.values())
            .filter_map(Tracked::process)
            .collect();
        let candidates = |pid: u32, claimed: &HashSet<ProcessKey>| -> Vec<Epoch> {
            epochs
                .get(&pid)
                .map(|all| {
                    all.iter()
                        .filter(|e| !claimed.contains(&ProcessKey::new(pid, e.epoch)))
                        .copied()
                        .collect()
                })
                .unwrap_or_default()
        };
        // A tracked process with the pid of one that went started after it went.
        let successors: HashMap<u32, u64> = self
            .tracked
            .values()
            .map(|t| (t.found.pid, t.found.start_time))
            .collect();
        for tracked in gone.iter_mut().filter(|t| t.epoch.is_none()) {
            let pid = tracked.found.pid;
            let successor = successors.get(&pid).copied();
            let candidates = candidates(pid, &claimed);
            tracked.epoch = epoch_of(tracked.found.start_time, true, successor, &candidates);
            if let Some(process) = tracked.process() {
                claimed.insert(process);
            }
        }
        for tracked in self.tracked.values_mut().filter(|t| t.epoch.is_none()) {
            let pid = tracked.found.pid;
            let candidates = candidates(pid, &claimed);
            tracked.epoch = epoch_of(tracked.found.start_time, false, None, &candidates);
        }
    }

    /// With `USTAT_DEBUG_MAPS=FILE`, appends the number of entries of each kernel map, the
    /// hits lost to full maps, and the pids with entries to FILE after every poll (the tests
    /// check that the maps return to their size).
    fn debug_maps(&mut self) {
        let Some(path) = std::env::var_os(DEBUG_MAPS_VARIABLE) else {
            return;
        };
        let line = match self.tracer.map_sizes() {
            Ok(sizes) => {
                let mut fields: Vec<String> = sizes
                    .entries
                    .iter()
                    .map(|(name, n)| format!("{name}={n}"))
                    .collect();
                if let Ok(lost) = self.tracer.lost() {
                    fields.push(format!("lost_map_full={}", lost.map_full));
                }
                let pids: Vec<String> = sizes.pids.iter().map(u32::to_string).collect();
                fields.push(format!("pids={}", pids.join(",")));
                fields.join(" ")
            }
            Err(e) => format!("error={e}"),
        };
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| {
                std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes())
            });
        if let Err(e) = written {
            self.warnings
                .push(sanitize::text(&format!("{DEBUG_MAPS_VARIABLE}: {e}")));
        }
    }
}

/// The environment variable naming a file that gets the kernel maps' sizes after each poll.
pub const DEBUG_MAPS_VARIABLE: &str = "USTAT_DEBUG_MAPS";

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Nanoseconds per clock tick of `/proc/PID/stat`'s start time.
fn tick_ns() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        1_000_000_000 / hz as u64
    } else {
        10_000_000
    }
}

/// One epoch seen for a pid, and whether that process exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Epoch {
    epoch: u64,
    exited: bool,
}

/// Which of its pid's epochs (`candidates`, not claimed by another process) belongs to a
/// process that started at `start_ticks` (`/proc/PID/stat`), if one does; `gone` says
/// whether the process has gone. An epoch is the boot-time nanosecond of the process's first
/// probe hit, so it is no earlier than the process's start: epochs before the start tick
/// belong to earlier processes with the pid. Of the rest, the earliest is the process's,
/// except that in the tick a process starts, an earlier one with the pid may have hit a
/// probe and exited: so a running process takes an epoch whose process has not exited
/// first, and a gone one an epoch whose process exited first. A gone process without an
/// exit recorded never hit a probe (or its exit could not be recorded): it takes no epoch
/// from the start of a later process with its pid (`successor_ticks`) on.
fn epoch_of(
    start_ticks: u64,
    gone: bool,
    successor_ticks: Option<u64>,
    candidates: &[Epoch],
) -> Option<u64> {
    let tick = tick_ns();
    let from = start_ticks.saturating_mul(tick);
    let until = successor_ticks.map_or(u64::MAX, |s| s.saturating_mul(tick));
    candidates
        .iter()
        .filter(|e| e.epoch >= from && (!gone || e.exited || e.epoch < until))
        .min_by_key(|e| (e.exited != gone, e.epoch))
        .map(|e| e.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(epoch: u64) -> Epoch {
        Epoch {
            epoch,
            exited: false,
        }
    }

    fn exited(epoch: u64) -> Epoch {
        Epoch {
            epoch,
            exited: true,
        }
    }

    /// Nanoseconds at the start of tick `ticks`.
    fn at(ticks: u64) -> u64 {
        ticks * tick_ns()
    }

    #[test]
    fn epochs_before_the_start_tick_are_an_earlier_process() {
        let earlier = exited(at(100) + 5);
        let own = running(at(200) + 7);
        assert_eq!(epoch_of(200, false, None, &[earlier, own]), Some(own.epoch));
        assert_eq!(epoch_of(200, false, None, &[earlier]), None);
    }

    #[test]
    fn a_running_process_prefers_an_epoch_whose_process_did_not_exit() {
        // The earlier process hit a probe and exited in the tick this one started.
        let earlier = exited(at(200) + 1);
        let own = running(at(200) + 9);
        assert_eq!(epoch_of(200, false, None, &[earlier, own]), Some(own.epoch));
        // Its own exit, recorded before /proc stopped listing it.
        assert_eq!(
            epoch_of(200, false, None, &[own, exited(at(201))]),
            Some(own.epoch)
        );
        assert_eq!(epoch_of(200, false, None, &[earlier]), Some(earlier.epoch));
    }

    #[test]
    fn a_gone_process_takes_its_exit_not_its_successors_epoch() {
        // It hit its first probe in the tick the next process with its pid started.
        let own = exited(at(300) + 2);
        let successor = running(at(300) + 8);
        assert_eq!(
            epoch_of(250, true, Some(300), &[successor, own]),
            Some(own.epoch)
        );
        // It never hit a probe: the successor's epoch is not its.
        assert_eq!(epoch_of(250, true, Some(300), &[successor]), None);
    }
}
