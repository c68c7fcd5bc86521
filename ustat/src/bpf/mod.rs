//! The loaded eBPF object: its programs, its maps, the spec table, and the attachments.

pub mod attach;
mod batch;
mod btf;
pub mod events;
mod flow;
mod links;
mod load;
mod maps;
mod names;
pub mod pid_namespace;
pub mod sampling;
mod sys;
mod totals;
mod trace;

use std::collections::{HashMap, HashSet};
use std::os::fd::BorrowedFd;

pub use attach::{AttachError, Link, ProbePoint, Scope, UprobePmu};
use aya::maps::{MapData, RingBuf};
pub use flow::FlowTotals;
pub use links::Links;
use load::{Loaded, Mode};
pub use totals::{Lost, MapSizes, Totals};
pub use trace::Latencies;

/// Attachments that come and go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Everything the dashboard and CSV need, for as long as ustat runs.
    Main,
    /// The method entry and return probes of a flow being watched.
    Flow,
}
use ustat_common::{ExitRecord, ProbeSpec, ProcessKey, maps as map_names};

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
    /// `ustat trace`: reads the values a probe's `TraceConfig` names from the locations its
    /// spec gives, filters, and sends them with their strings.
    Trace,
    /// `ustat trace --count`: the same, counted per value in the kernel.
    TraceCount,
    /// `ustat trace --latency`, at a function's entry: notes when the thread entered.
    TraceEntry,
    /// `ustat trace --latency`, at its return: the call's duration, into a histogram.
    TraceReturn,
    /// On `sched_process_exit`: drops a traced thread's per-thread entries, and records a
    /// traced process's exit in `EXITED` (kernels whose tracepoint tells the last thread).
    ProcessExit,
    /// On `sched_process_exit`, older kernels: only the per-thread entries.
    ThreadExit,
    /// On entry to `acct_process` (fentry), older kernels: the last thread's part of
    /// `ProcessExit`.
    LastThreadExit,
    /// On each CPU's clock (a perf event): walks a sampled process's interpreter stack.
    Sample,
}

/// What a program attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProgramKind {
    Uprobe,
    RawTracepoint,
    /// Entry of this kernel function.
    FEntry(&'static str),
    /// A perf event's overflow (the CPU sampler's clock).
    PerfEvent,
}

/// Picks the older kernels' exit hook (`acct-process`) on any kernel, for the tests.
pub const EXIT_HOOK_VARIABLE: &str = "USTAT_EXIT_HOOK";

impl Program {
    /// Every program.
    pub const ALL: [Self; 16] = [
        Self::Record,
        Self::Trace,
        Self::TraceCount,
        Self::TraceEntry,
        Self::TraceReturn,
        Self::Count,
        Self::SpanBegin,
        Self::SpanEnd,
        Self::SpanSubkey,
        Self::Keyed,
        Self::FlowEntry,
        Self::FlowReturn,
        Self::ProcessExit,
        Self::ThreadExit,
        Self::LastThreadExit,
        Self::Sample,
    ];

    /// The program's function name in the object.
    pub fn name(self) -> &'static str {
        match self {
            Self::Record => "record",
            Self::Trace => "trace",
            Self::TraceCount => "trace_count",
            Self::TraceEntry => "trace_entry",
            Self::TraceReturn => "trace_return",
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
            Self::Sample => "sample",
        }
    }

    fn kind(self) -> ProgramKind {
        match self {
            Self::ProcessExit | Self::ThreadExit => ProgramKind::RawTracepoint,
            Self::LastThreadExit => ProgramKind::FEntry("acct_process"),
            Self::Sample => ProgramKind::PerfEvent,
            _ => ProgramKind::Uprobe,
        }
    }

    /// Whether it calls `bpf_loop` with a callback of its own: the kernel then needs the
    /// object's BTF for its functions.
    fn uses_callbacks(self) -> bool {
        matches!(
            self,
            Self::Trace | Self::TraceCount | Self::TraceEntry | Self::Sample
        )
    }

    /// Whether it ends what another program began (a span, a call).
    fn closes(self) -> bool {
        matches!(self, Self::SpanEnd | Self::FlowReturn | Self::TraceReturn)
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
    pub source: LinkError,
}

/// Why a program could not be linked to its point: the program did not load (the verifier
/// refused it, a capability is missing: kept whole, so the exit code can tell), or the
/// attaching failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("loading the program failed")]
    Load {
        #[source]
        source: LoadError,
    },
    #[error(transparent)]
    Attach {
        #[from]
        source: AttachError,
    },
}

impl From<LoadError> for LinkError {
    fn from(source: LoadError) -> Self {
        Self::Load { source }
    }
}

/// One site to attach: a program at a point, reading its arguments through a spec.
#[derive(Debug, Clone, Copy)]
pub struct Attachment<'a> {
    /// `hotspot:gc__begin` or `gc_collect_main` (for errors).
    pub probe: &'a str,
    pub program: Program,
    pub point: &'a ProbePoint,
    pub spec: &'a ProbeSpec,
    /// Passed to the program in the high 32 bits of the attach cookie (the low 32 are the
    /// spec's id): `ustat trace` tells its probes apart by it, so the sites of one spec can
    /// share one spec entry. 0 for programs that do not read it.
    pub site: u32,
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
            && self.point.binary.identity() == site.point.binary.identity()
            && self.point.retprobe == site.point.retprobe
    }
}

pub struct Tracer {
    loaded: Loaded,
    pmu: UprobePmu,
    specs: HashMap<ProbeSpec, u32>,
    links: Links,
    /// The exit hook's links, once attached (`watch_exits`).
    exit_hooks: Vec<Link>,
    /// Bumped with every flow filter, so the kernel's cached verdicts go stale.
    flow_generation: u32,
    /// The CPU sampler's perf event links, one per CPU, while it samples.
    sample_links: Vec<std::os::fd::OwnedFd>,
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
            links: Links::default(),
            exit_hooks: Vec::new(),
            flow_generation: 0,
            sample_links: Vec::new(),
        })
    }

    /// Loads `program` into the kernel now (it is otherwise loaded on first attach), so a
    /// verifier refusal shows up at start.
    pub fn load_program(&mut self, program: Program) -> Result<(), LoadError> {
        self.loaded.program(program).map(|_| ())
    }

    /// The id of `spec`, for a site in the binary `origin`, in the `SPECS` map, adding it if
    /// it is new. Identical specs of one binary share an id.
    fn spec_id(&mut self, spec: &ProbeSpec, origin: u32) -> Result<u32, LoadError> {
        let spec = &ProbeSpec { origin, ..*spec };
        if let Some(&id) = self.specs.get(spec) {
            return Ok(id);
        }
        let id = self.specs.len() as u32;
        let mut table = maps::array_mut::<ProbeSpec>(&mut self.loaded, map_names::SPECS)?;
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
            site: 0,
        };
        match self.attach_all(Group::Main, scope, 0, &[one]).pop() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Attaches every site in `group` for `scope`; returns the failures, each naming its
    /// probe, file and reason. Where the kernel has `uprobe_multi`, the sites of one program
    /// in one file share one link. `origin` numbers the runtime binary the sites are in
    /// (`ProbeSpec::origin`: a process's first hit ties it to it), 0 for none.
    pub fn attach_all(
        &mut self,
        group: Group,
        scope: Scope,
        origin: u32,
        sites: &[Attachment<'_>],
    ) -> Vec<ProbeAttachError> {
        let mut errors = Vec::new();
        let mut batches: Vec<Batch<'_>> = Vec::new();
        for site in sites {
            let id = match self
                .spec_id(site.spec, origin)
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
        // attached stays open, and a busy thread would pile up calls that never return. For
        // the same reason, begins are closed before ends (links.rs).
        batches.sort_by_key(|b| !b.program.closes());
        // Created under the lock, so the watchdog cannot exit half-way through (see links.rs).
        let links = self.links.clone();
        let mut links = links.lock();
        for Batch {
            program,
            point,
            sites: batch,
        } in batches
        {
            if self.loaded.mode() == Some(Mode::Multi) {
                match self.link_multi(program, point, scope, &batch) {
                    Ok(link) => {
                        links.push(group, program, link);
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
                    Ok(link) => links.push(group, program, link),
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
    ) -> Result<Link, LinkError> {
        let offsets: Vec<u64> = batch.iter().map(|(a, _)| a.point.offset).collect();
        let semaphores: Vec<u64> = batch
            .iter()
            .map(|(a, _)| a.point.semaphore_offset.unwrap_or(0))
            .collect();
        let cookies: Vec<u64> = batch.iter().map(|(a, id)| cookie(a, *id)).collect();
        let fd = self.program_fd(program)?;
        Ok(attach::attach_multi(
            fd,
            point,
            &offsets,
            &semaphores,
            &cookies,
            scope,
        )?)
    }

    fn link_perf(
        &mut self,
        program: Program,
        (site, id): &(Attachment<'_>, u32),
        scope: Scope,
    ) -> Result<Link, LinkError> {
        let pmu = self.pmu;
        let fd = self.program_fd(program)?;
        Ok(attach::attach(
            pmu,
            fd,
            site.point,
            scope,
            cookie(site, *id),
        )?)
    }

    fn program_fd(&mut self, program: Program) -> Result<BorrowedFd<'_>, LinkError> {
        Ok(self.loaded.program(program)?)
    }

    /// Detaches the group's attachments.
    pub fn detach(&mut self, group: Group) -> Result<(), LoadError> {
        self.links.lock().close_group(group);
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
        maps::set(&mut self.loaded, map_names::FLOW_CONFIG, 0, config)
    }

    /// Sets what `ustat trace`'s programs do for probe `probe` (the tag of its sites' specs).
    pub fn set_trace_config(
        &mut self,
        probe: u32,
        config: &ustat_common::TraceConfig,
    ) -> Result<(), LoadError> {
        trace::set_config(&mut self.loaded, probe, config)
    }

    /// `ustat trace --count`'s counts, summed over CPUs.
    pub fn trace_counts(&self) -> Result<Vec<(ustat_common::TraceCountKey, u64)>, LoadError> {
        trace::counts(&self.loaded)
    }

    /// `ustat trace --latency`'s call durations, summed over CPUs.
    pub fn trace_latencies(&self) -> Result<Latencies, LoadError> {
        trace::latencies(&self.loaded)
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
        self.links.lock().sites()
    }

    /// Detaches everything (also done on drop), closing the links concurrently.
    pub fn detach_all(&mut self) {
        self.links.close_all();
        self.exit_hooks.clear();
        self.sample_links.clear();
    }

    /// The links, for whoever may have to close them when the process must end in a hurry
    /// (the watchdog of `signals`).
    pub fn links(&self) -> Links {
        self.links.clone()
    }

    /// The ring buffer of events. It can be taken once.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, LoadError> {
        let map = self
            .loaded
            .take_map(map_names::EVENTS)
            .ok_or_else(|| maps::missing(map_names::EVENTS))?;
        RingBuf::try_from(map).map_err(|e| maps::failed(map_names::EVENTS, e))
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
    pub fn watch_exits(&mut self) -> Result<(), LinkError> {
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
            (Err(_), Some(newer)) => Err(newer.into()),
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

    /// The processes that exited since the last call, with what identifies them: their
    /// counts are final now.
    pub fn exited(&mut self) -> Result<HashMap<ProcessKey, ExitRecord>, LoadError> {
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

/// The attach cookie of a site: its spec's id, and its `site` number above it.
fn cookie(site: &Attachment<'_>, spec_id: u32) -> u64 {
    u64::from(spec_id) | u64::from(site.site) << 32
}

fn load_failure(site: &Attachment<'_>, e: LoadError) -> ProbeAttachError {
    attach_failure(site, e.into())
}

fn attach_failure(site: &Attachment<'_>, source: LinkError) -> ProbeAttachError {
    ProbeAttachError {
        probe: site.probe.to_string(),
        path: site.point.binary.shown().display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The names userspace asks for are the names the built object has: a map or program
    /// renamed on one side fails here, not at load time on a user's host.
    #[test]
    fn map_and_program_names_are_the_built_objects() {
        let object = aya_obj::Object::parse(OBJECT).expect("the built eBPF object parses");
        let in_object: BTreeSet<&str> = object
            .maps
            .keys()
            .map(String::as_str)
            // Global data sections (`.rodata`, `.bss`) are the compiler's, not named maps.
            .filter(|name| !name.starts_with('.'))
            .collect();
        // Scratch space the programs insert from; userspace never opens them.
        const KERNEL_ONLY: &[&str] = &[
            "EMPTY_SPANS",
            "EMPTY_STACK",
            "SAMPLE_SCRATCH",
            "TRACE_SCRATCH",
            "FILTER_SCRATCH",
            "VALUES_SCRATCH",
            "COUNT_SCRATCH",
            "HOTSPOT_WALK",
            "JAVA_THREADS",
        ];
        let named: BTreeSet<&str> = map_names::ALL.iter().chain(KERNEL_ONLY).copied().collect();
        assert_eq!(
            named, in_object,
            "ustat_common::maps::ALL against the object"
        );

        let in_object: BTreeSet<&str> = object.programs.keys().map(String::as_str).collect();
        let named: BTreeSet<&str> = Program::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(named, in_object, "Program::name() against the object");
    }
}
