//! The loaded eBPF object: its programs, its maps, the spec table, and the attachments.

pub mod attach;
mod batch;
mod flow;
mod load;
mod names;
pub mod pid_namespace;
mod sys;
mod totals;

use std::collections::{HashMap, HashSet};
use std::os::fd::BorrowedFd;

pub use attach::{AttachError, Link, ProbePoint, Scope, UprobePmu};
use aya::maps::{Array, MapData, RingBuf};
pub use flow::FlowTotals;
use load::{Loaded, Mode};
pub use totals::{Lost, MapSizes, Totals};

/// Attachments that come and go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Everything the dashboard and CSV need, for as long as ustat runs.
    Main,
    /// The method entry and return probes of a flow being watched.
    Flow,
}
use ustat_common::{ProbeSpec, ProcessKey, maps};

/// The eBPF object built by `build.rs`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ustat"));

/// The programs in the object; see `ustat-ebpf/src/programs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Program {
    /// Sends each hit with its arguments to the `EVENTS` ring buffer.
    Record,
    /// Counts hits per process, category and subkey; sums the value argument.
    Count,
    /// Opens a span on the thread.
    SpanBegin,
    /// Closes the thread's innermost open span of the category and records its duration.
    SpanEnd,
    /// Sets the subkey of the thread's innermost open span of the category.
    SpanSubkey,
    /// Counts hits per process, category and key; sends the key's names once.
    Keyed,
    /// Pushes a call on the thread's shadow stack (and sends it while the flow is watched).
    FlowEntry,
    /// Pops it: duration, self time, per-method and per-path totals.
    FlowReturn,
    /// On `sched_process_exit`: drops a traced thread's per-thread entries, and records a
    /// traced process's exit in `EXITED` (kernels whose tracepoint tells the last thread).
    ProcessExit,
    /// On `sched_process_exit`, older kernels: only the per-thread entries.
    ThreadExit,
    /// On entry to `acct_process` (fentry), older kernels: the last thread's part of
    /// `ProcessExit`.
    LastThreadExit,
}

/// What a program attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProgramKind {
    Uprobe,
    RawTracepoint,
    /// Entry of this kernel function.
    FEntry(&'static str),
}

/// Picks the older kernels' exit hook (`acct-process`) on any kernel, for the tests.
pub const EXIT_HOOK_VARIABLE: &str = "USTAT_EXIT_HOOK";

impl Program {
    /// The program's function name in the object.
    pub fn name(self) -> &'static str {
        match self {
            Self::Record => "record",
            Self::Count => "count",
            Self::SpanBegin => "span_begin",
            Self::SpanEnd => "span_end",
            Self::SpanSubkey => "span_subkey",
            Self::Keyed => "keyed",
            Self::FlowEntry => "flow_entry",
            Self::FlowReturn => "flow_return",
            Self::ProcessExit => "process_exit",
            Self::ThreadExit => "thread_exit",
            Self::LastThreadExit => "last_thread_exit",
        }
    }

    fn kind(self) -> ProgramKind {
        match self {
            Self::ProcessExit | Self::ThreadExit => ProgramKind::RawTracepoint,
            Self::LastThreadExit => ProgramKind::FEntry("acct_process"),
            _ => ProgramKind::Uprobe,
        }
    }

    /// Whether it ends what another program began (a span, a call).
    fn closes(self) -> bool {
        matches!(self, Self::SpanEnd | Self::FlowReturn)
    }
}

/// Why the eBPF object could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    NotPermitted(#[from] crate::capabilities::CapabilityError),
    #[error("this kernel has no uprobe support ({0}); ustat needs CONFIG_UPROBE_EVENTS")]
    NoUprobes(std::io::Error),
    #[error("the kernel refused ustat's eBPF {what}: {detail}")]
    Kernel { what: &'static str, detail: String },
    #[error("{0}")]
    Setting(String),
}

/// An attach failure, with the probe and file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("cannot attach {probe} in {path}")]
pub struct ProbeAttachError {
    pub probe: String,
    pub path: String,
    #[source]
    pub source: AttachError,
}

/// One site to attach: a program at a point, reading its arguments through a spec.
#[derive(Debug, Clone, Copy)]
pub struct Attachment<'a> {
    /// `hotspot:gc__begin` or `gc_collect_main` (for errors).
    pub probe: &'a str,
    pub program: Program,
    pub point: &'a ProbePoint,
    pub spec: &'a ProbeSpec,
}

/// Sites of one program in one file, on entry or on return: one `uprobe_multi` link.
struct Batch<'a> {
    program: Program,
    point: &'a ProbePoint,
    /// Each site with its spec id (the cookie).
    sites: Vec<(Attachment<'a>, u32)>,
}

impl Batch<'_> {
    fn holds(&self, site: &Attachment<'_>) -> bool {
        self.program == site.program
            && self.point.path == site.point.path
            && self.point.retprobe == site.point.retprobe
    }
}

/// Closes links in the reverse order of their attaching: begins (attached after their ends)
/// go first, so no call begins in between that could not end.
fn close_newest_first(links: Vec<(Group, Link)>) {
    for link in links.into_iter().rev() {
        drop(link);
    }
}

pub struct Tracer {
    loaded: Loaded,
    pmu: UprobePmu,
    specs: HashMap<ProbeSpec, u32>,
    links: Vec<(Group, Link)>,
    /// The exit hook's links, once attached (`watch_exits`).
    exit_hooks: Vec<Link>,
    /// Bumped with every flow filter, so the kernel's cached verdicts go stale.
    flow_generation: u32,
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.detach_all();
    }
}

impl Tracer {
    /// Loads the object and creates its maps. Programs are loaded on first use.
    pub fn load() -> Result<Self, LoadError> {
        use crate::capabilities::{self, Capability};
        capabilities::require(&[Capability::Bpf, Capability::Perfmon])?;
        let pmu = UprobePmu::detect().map_err(LoadError::NoUprobes)?;
        let mut loaded = Loaded::new(OBJECT)?;
        pid_namespace::configure(&mut loaded)?;
        Ok(Self {
            loaded,
            pmu,
            specs: HashMap::new(),
            links: Vec::new(),
            exit_hooks: Vec::new(),
            flow_generation: 0,
        })
    }

    /// Loads `program` into the kernel now (it is otherwise loaded on first attach), so a
    /// verifier refusal shows up at start.
    pub fn load_program(&mut self, program: Program) -> Result<(), LoadError> {
        self.loaded.program(program).map(|_| ())
    }

    /// The id of `spec` in the `SPECS` map, adding it if it is new. Identical specs share an id.
    fn spec_id(&mut self, spec: &ProbeSpec) -> Result<u32, LoadError> {
        if let Some(&id) = self.specs.get(spec) {
            return Ok(id);
        }
        let id = self.specs.len() as u32;
        let mut table: Array<&mut MapData, ProbeSpec> = Array::try_from(
            self.loaded
                .map_mut(maps::SPECS)
                .ok_or_else(|| missing_map(maps::SPECS))?,
        )
        .map_err(|e| map_error(maps::SPECS, e))?;
        table.set(id, spec, 0).map_err(|e| LoadError::Kernel {
            what: "spec table",
            detail: format!("entry {id}: {e} (more probe sites than the table holds?)"),
        })?;
        self.specs.insert(*spec, id);
        Ok(id)
    }

    /// Attaches `program` at `point` for `scope`; the program reads its arguments through
    /// `spec`. `probe` names the probe in errors.
    pub fn attach(
        &mut self,
        probe: &str,
        program: Program,
        point: &ProbePoint,
        spec: &ProbeSpec,
        scope: Scope,
    ) -> Result<(), ProbeAttachError> {
        let one = Attachment {
            probe,
            program,
            point,
            spec,
        };
        match self.attach_all(Group::Main, scope, &[one]).pop() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Attaches every site in `group` for `scope`; returns the failures, each naming its
    /// probe, file and reason. Where the kernel has `uprobe_multi`, the sites of one program
    /// in one file share one link.
    pub fn attach_all(
        &mut self,
        group: Group,
        scope: Scope,
        sites: &[Attachment<'_>],
    ) -> Vec<ProbeAttachError> {
        let mut errors = Vec::new();
        let mut batches: Vec<Batch<'_>> = Vec::new();
        for site in sites {
            let id = match self
                .spec_id(site.spec)
                .and_then(|id| self.loaded.program(site.program).map(|_| id))
            {
                Ok(id) => id,
                Err(e) => {
                    errors.push(load_failure(site, e));
                    continue;
                }
            };
            match batches.iter_mut().find(|b| b.holds(site)) {
                Some(batch) => batch.sites.push((*site, id)),
                None => batches.push(Batch {
                    program: site.program,
                    point: site.point,
                    sites: vec![(*site, id)],
                }),
            }
        }
        // Ends first: an end with nothing begun is ignored, but a begin whose end is not yet
        // attached stays open, and a busy thread would pile up calls that never return.
        batches.sort_by_key(|b| !b.program.closes());
        for Batch {
            program,
            point,
            sites: batch,
        } in batches
        {
            if self.loaded.mode() == Some(Mode::Multi) {
                match self.link_multi(program, point, scope, &batch) {
                    Ok(link) => {
                        self.links.push((group, link));
                        continue;
                    }
                    // One site spoils the batch: attach them one by one to tell which.
                    Err(_) if batch.len() > 1 => {}
                    Err(e) => {
                        errors.push(attach_failure(&batch[0].0, e));
                        continue;
                    }
                }
            }
            for one in &batch {
                let result = match self.loaded.mode() {
                    Some(Mode::Multi) => {
                        self.link_multi(program, point, scope, std::slice::from_ref(one))
                    }
                    _ => self.link_perf(program, one, scope),
                };
                match result {
                    Ok(link) => self.links.push((group, link)),
                    Err(e) => errors.push(attach_failure(&one.0, e)),
                }
            }
        }
        errors
    }

    fn link_multi(
        &mut self,
        program: Program,
        point: &ProbePoint,
        scope: Scope,
        batch: &[(Attachment<'_>, u32)],
    ) -> Result<Link, AttachError> {
        let offsets: Vec<u64> = batch.iter().map(|(a, _)| a.point.offset).collect();
        let semaphores: Vec<u64> = batch
            .iter()
            .map(|(a, _)| a.point.semaphore_offset.unwrap_or(0))
            .collect();
        let cookies: Vec<u64> = batch.iter().map(|(_, id)| u64::from(*id)).collect();
        let fd = self.program_fd(program)?;
        attach::attach_multi(fd, point, &offsets, &semaphores, &cookies, scope)
    }

    fn link_perf(
        &mut self,
        program: Program,
        (site, id): &(Attachment<'_>, u32),
        scope: Scope,
    ) -> Result<Link, AttachError> {
        let pmu = self.pmu;
        let fd = self.program_fd(program)?;
        attach::attach(pmu, fd, site.point, scope, u64::from(*id))
    }

    fn program_fd(&mut self, program: Program) -> Result<BorrowedFd<'_>, AttachError> {
        self.loaded.program(program).map_err(|e| AttachError::Os {
            what: "loading the program",
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// Detaches the group's attachments.
    pub fn detach(&mut self, group: Group) -> Result<(), LoadError> {
        let (gone, kept) = std::mem::take(&mut self.links)
            .into_iter()
            .partition(|(g, _)| *g == group);
        self.links = kept;
        close_newest_first(gone);
        // Calls open now will return unseen: their frames would sit under every later call.
        if group == Group::Flow {
            flow::clear_stacks(&mut self.loaded)?;
        }
        Ok(())
    }

    /// Sends flow events (`events`), for methods whose slot-0 and slot-1 names start with
    /// these prefixes (empty: any), or only keeps the statistics.
    pub fn set_flow(
        &mut self,
        events: bool,
        class_prefix: &str,
        method_prefix: &str,
    ) -> Result<(), LoadError> {
        self.flow_generation = self.flow_generation.wrapping_add(1);
        let config = flow::config(events, self.flow_generation, class_prefix, method_prefix);
        let mut array: Array<&mut MapData, ustat_common::FlowConfig> = Array::try_from(
            self.loaded
                .map_mut(maps::FLOW_CONFIG)
                .ok_or_else(|| missing_map(maps::FLOW_CONFIG))?,
        )
        .map_err(|e| map_error(maps::FLOW_CONFIG, e))?;
        array
            .set(0, config, 0)
            .map_err(|e| map_error(maps::FLOW_CONFIG, e))
    }

    /// Per-method timing and call paths, summed over CPUs.
    pub fn flow_totals(&self) -> Result<flow::FlowTotals, LoadError> {
        flow::read(&self.loaded)
    }

    /// Forgets the span and call stacks of threads that are gone.
    pub fn forget_threads(&mut self, alive: impl Fn(u32) -> bool) -> Result<(), LoadError> {
        flow::forget_threads(&mut self.loaded, alive)
    }

    /// How many probe sites are attached.
    /// How the probes were attached, in words.
    pub fn attached_through(&self) -> &'static str {
        match self.loaded.mode() {
            Some(Mode::Multi) => "uprobe_multi links",
            Some(Mode::PerfEvent) | None => "perf events",
        }
    }

    pub fn attached(&self) -> usize {
        self.links.iter().map(|(_, link)| link.sites()).sum()
    }

    /// Detaches everything (also done on drop).
    pub fn detach_all(&mut self) {
        close_newest_first(std::mem::take(&mut self.links));
        self.exit_hooks.clear();
    }

    /// The ring buffer of events. It can be taken once.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, LoadError> {
        let map = self
            .loaded
            .take_map(maps::EVENTS)
            .ok_or_else(|| missing_map(maps::EVENTS))?;
        RingBuf::try_from(map).map_err(|e| map_error(maps::EVENTS, e))
    }

    /// Everything the aggregation maps hold now, summed over CPUs.
    pub fn totals(&self) -> Result<Totals, LoadError> {
        totals::read(&self.loaded)
    }

    /// What could not be recorded so far, summed over CPUs.
    pub fn lost(&self) -> Result<Lost, LoadError> {
        totals::read_lost(&self.loaded)
    }

    /// Asks the kernel to send the names of `keys` again on their next hit; returns how
    /// many it took.
    pub fn request_names(&mut self, keys: &[ustat_common::KeyedKey]) -> Result<usize, LoadError> {
        names::request(&mut self.loaded, keys)
    }

    /// Withdraws name requests (the names arrived, or the process exited).
    pub fn withdraw_name_requests(
        &mut self,
        keys: &[ustat_common::KeyedKey],
    ) -> Result<(), LoadError> {
        names::withdraw(&mut self.loaded, keys)
    }

    /// Whether the `keyed` program should look for name requests on every hit.
    pub fn set_names_wanted(&mut self, wanted: bool) -> Result<(), LoadError> {
        names::set_wanted(&mut self.loaded, wanted)
    }

    /// Attaches the exit hook, so the maps lose every exited process's entries, whether or
    /// not ustat tracked it (`exited`, `forget_processes`).
    /// On kernels whose `sched_process_exit` has no `group_dead` argument yet, the kernel
    /// refuses `process_exit` there, and the last thread is found on entry to `acct_process`.
    pub fn watch_exits(&mut self) -> Result<(), AttachError> {
        let forced = std::env::var_os(EXIT_HOOK_VARIABLE).is_some_and(|v| v == "acct-process");
        let newer = if forced {
            None
        } else {
            let fd = self.program_fd(Program::ProcessExit)?;
            match attach::attach_raw_tracepoint(fd, Some(c"sched_process_exit")) {
                Ok(link) => {
                    self.exit_hooks = vec![link];
                    return Ok(());
                }
                Err(e) => Some(e),
            }
        };
        let older = (|| {
            let fd = self.program_fd(Program::LastThreadExit)?;
            let last = attach::attach_raw_tracepoint(fd, None)?;
            let fd = self.program_fd(Program::ThreadExit)?;
            let threads = attach::attach_raw_tracepoint(fd, Some(c"sched_process_exit"))?;
            Ok(vec![last, threads])
        })();
        match (older, newer) {
            (Ok(links), _) => {
                self.exit_hooks = links;
                Ok(())
            }
            (Err(_), Some(newer)) => Err(newer),
            (Err(older), None) => Err(older),
        }
    }

    /// How many entries each aggregation and per-process map holds, and for which pids.
    pub fn map_sizes(&self) -> Result<MapSizes, LoadError> {
        totals::sizes(&self.loaded)
    }

    /// Whether the exit hook is attached.
    pub fn watches_exits(&self) -> bool {
        !self.exit_hooks.is_empty()
    }

    /// The processes that exited since the last call: their counts are final now.
    pub fn exited(&mut self) -> Result<HashSet<ProcessKey>, LoadError> {
        totals::take_exited(&mut self.loaded)
    }

    /// Removes everything the maps hold about these processes, in one pass over each map.
    pub fn forget_processes(&mut self, gone: &HashSet<ProcessKey>) -> Result<(), LoadError> {
        totals::forget_processes(&mut self.loaded, gone)
    }

    /// Without the exit hook: drops the `PROCS` entries of processes `alive` says are gone,
    /// so it does not fill up with them.
    pub fn forget_dead_processes(&mut self, alive: impl Fn(u32) -> bool) -> Result<(), LoadError> {
        totals::forget_dead_processes(&mut self.loaded, alive)
    }
}

fn load_failure(site: &Attachment<'_>, e: LoadError) -> ProbeAttachError {
    attach_failure(
        site,
        AttachError::Os {
            what: "loading the program",
            source: std::io::Error::other(e.to_string()),
        },
    )
}

fn attach_failure(site: &Attachment<'_>, source: AttachError) -> ProbeAttachError {
    ProbeAttachError {
        probe: site.probe.to_string(),
        path: site.point.path.display().to_string(),
        source,
    }
}

pub(crate) fn missing_map(name: &str) -> LoadError {
    LoadError::Kernel {
        what: "maps",
        detail: format!("map {name} is missing from the object"),
    }
}

pub(crate) fn map_error(name: &str, e: aya::maps::MapError) -> LoadError {
    LoadError::Kernel {
        what: "maps",
        detail: format!("{name}: {e}"),
    }
}
