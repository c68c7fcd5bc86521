//! The loaded eBPF object: its programs, its maps, the spec table, and the attachments.

pub mod attach;
mod flow;
mod totals;

use std::{
    collections::HashMap,
    os::fd::{AsFd as _, BorrowedFd},
};

pub use attach::{AttachError, Link, ProbePoint, Scope, UprobePmu};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData, RingBuf},
    programs::UProbe,
};
pub use flow::FlowTotals;
pub use totals::{Lost, Totals};

/// Attachments that come and go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Everything the dashboard and CSV need, for as long as ustat runs.
    Main,
    /// The method entry and return probes of a flow being watched.
    Flow,
}
use ustat_common::{ProbeSpec, maps};

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
    /// Counts hits per process, category and key; sends the key's names once.
    Keyed,
    /// Pushes a call on the thread's shadow stack (and sends it while the flow is watched).
    FlowEntry,
    /// Pops it: duration, self time, per-method and per-path totals.
    FlowReturn,
}

impl Program {
    fn name(self) -> &'static str {
        match self {
            Self::Record => "record",
            Self::Count => "count",
            Self::SpanBegin => "span_begin",
            Self::SpanEnd => "span_end",
            Self::Keyed => "keyed",
            Self::FlowEntry => "flow_entry",
            Self::FlowReturn => "flow_return",
        }
    }
}

/// Why the eBPF object could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("ustat needs root to load eBPF programs (CAP_BPF and CAP_PERFMON); run it with sudo")]
    NotRoot,
    #[error("this kernel has no uprobe support ({0}); ustat needs CONFIG_UPROBE_EVENTS")]
    NoUprobes(std::io::Error),
    #[error("the kernel refused ustat's eBPF {what}: {detail}")]
    Kernel { what: &'static str, detail: String },
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

/// Loading eBPF programs and opening uprobe events needs root.
pub fn require_root() -> Result<(), LoadError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LoadError::NotRoot);
    }
    Ok(())
}

pub struct Tracer {
    ebpf: Ebpf,
    pmu: UprobePmu,
    specs: HashMap<ProbeSpec, u32>,
    links: Vec<(Group, Link)>,
    /// Bumped with every flow filter, so the kernel's cached verdicts go stale.
    flow_generation: u32,
}

impl Tracer {
    /// Loads the object and creates its maps. Programs are loaded on first use.
    pub fn load() -> Result<Self, LoadError> {
        require_root()?;
        let pmu = UprobePmu::detect().map_err(LoadError::NoUprobes)?;
        let ebpf = EbpfLoader::new()
            .load(OBJECT)
            .map_err(|e| LoadError::Kernel {
                what: "maps",
                detail: format!("{e:#}"),
            })?;
        Ok(Self {
            ebpf,
            pmu,
            specs: HashMap::new(),
            links: Vec::new(),
            flow_generation: 0,
        })
    }

    fn program_fd(ebpf: &mut Ebpf, program: Program) -> Result<BorrowedFd<'_>, LoadError> {
        let kernel = |detail: String| LoadError::Kernel {
            what: "program",
            detail,
        };
        let uprobe: &mut UProbe = ebpf
            .program_mut(program.name())
            .ok_or_else(|| kernel(format!("{} is missing from the object", program.name())))?
            .try_into()
            .map_err(|e| kernel(format!("{}: {e}", program.name())))?;
        if uprobe.fd().is_err() {
            uprobe
                .load()
                .map_err(|e| kernel(verifier_message(program, &e)))?;
        }
        let fd = uprobe
            .fd()
            .map_err(|e| kernel(format!("{}: {e}", program.name())))?;
        Ok(fd.as_fd())
    }

    /// Loads `program` into the kernel now (it is otherwise loaded on first attach), so a
    /// verifier refusal shows up at start.
    pub fn load_program(&mut self, program: Program) -> Result<(), LoadError> {
        Self::program_fd(&mut self.ebpf, program).map(|_| ())
    }

    /// The id of `spec` in the `SPECS` map, adding it if it is new. Identical specs share an id.
    fn spec_id(&mut self, spec: &ProbeSpec) -> Result<u32, LoadError> {
        if let Some(&id) = self.specs.get(spec) {
            return Ok(id);
        }
        let id = self.specs.len() as u32;
        let mut table: Array<&mut MapData, ProbeSpec> = Array::try_from(
            self.ebpf
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
        self.attach_in(Group::Main, probe, program, point, spec, scope)
    }

    /// Attaches as `attach` does, in a group that can be detached on its own.
    pub fn attach_in(
        &mut self,
        group: Group,
        probe: &str,
        program: Program,
        point: &ProbePoint,
        spec: &ProbeSpec,
        scope: Scope,
    ) -> Result<(), ProbeAttachError> {
        let error = |source| ProbeAttachError {
            probe: probe.to_string(),
            path: point.path.display().to_string(),
            source,
        };
        let load = |e: LoadError| {
            error(AttachError::Os {
                what: "loading the program",
                source: std::io::Error::other(e.to_string()),
            })
        };
        let id = self.spec_id(spec).map_err(load)?;
        let pmu = self.pmu;
        let fd = Self::program_fd(&mut self.ebpf, program).map_err(load)?;
        let link = attach::attach(pmu, fd, point, scope, u64::from(id)).map_err(error)?;
        self.links.push((group, link));
        Ok(())
    }

    /// Detaches the group's attachments.
    pub fn detach(&mut self, group: Group) {
        self.links.retain(|(g, _)| *g != group);
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
            self.ebpf
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
        flow::read(&self.ebpf)
    }

    /// Forgets the shadow stacks of threads that are gone.
    pub fn forget_threads(&mut self, alive: impl Fn(u32) -> bool) -> Result<(), LoadError> {
        flow::forget_threads(&mut self.ebpf, alive)
    }

    /// How many probe points are attached.
    pub fn attached(&self) -> usize {
        self.links.len()
    }

    /// How many probe points of a group are attached.
    pub fn attached_in(&self, group: Group) -> usize {
        self.links.iter().filter(|(g, _)| *g == group).count()
    }

    /// Detaches everything (also done on drop).
    pub fn detach_all(&mut self) {
        self.links.clear();
    }

    /// The ring buffer of events. It can be taken once.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, LoadError> {
        let map = self
            .ebpf
            .take_map(maps::EVENTS)
            .ok_or_else(|| missing_map(maps::EVENTS))?;
        RingBuf::try_from(map).map_err(|e| map_error(maps::EVENTS, e))
    }

    /// Everything the aggregation maps hold now, summed over CPUs.
    pub fn totals(&self) -> Result<Totals, LoadError> {
        totals::read(&self.ebpf)
    }

    /// What could not be recorded so far, summed over CPUs.
    pub fn lost(&self) -> Result<Lost, LoadError> {
        totals::read_lost(&self.ebpf)
    }

    /// Removes everything the maps hold about `pid` (it exited).
    pub fn forget_process(&mut self, pid: u32) -> Result<(), LoadError> {
        totals::forget_process(&mut self.ebpf, pid)
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

/// The verifier's log is long; its last lines say what it refused.
fn verifier_message(program: Program, error: &aya::programs::ProgramError) -> String {
    let text = format!("{error:#}");
    let tail: Vec<&str> = text.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!("{}: {}", program.name(), tail.join("\n"))
}
