//! The kernel as a `Source` and `CallSource`: `KernelSource` loads the programs and ties
//! together, each in its own file, which processes are traced (`processes.rs`), what is
//! attached for them (`attach.rs`), their epochs (`epochs.rs`), the readings turned into
//! snapshots (`snapshots.rs`), key names (`names.rs`), the call stream (`calls.rs`), and the
//! maps' sizes for the tests (`debug.rs`).

mod attach;
mod calls;
mod debug;
mod epochs;
mod names;
mod processes;
mod sampling;
mod snapshots;
mod unlisted;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Instant,
};

use aya::maps::{MapData, RingBuf};

pub use calls::FlowError;
pub use debug::DEBUG_MAPS_VARIABLE;

use crate::{
    bpf::{Program, Tracer, events::Event, pid_namespace},
    discovery::{self, Discovery},
    process::ProcessError,
    sanitize,
    stats::Names,
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
    /// Samples per second per CPU of CPython stacks; 0: no sampling.
    pub sample_hz: u32,
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

pub struct KernelSource {
    tracer: Tracer,
    events: RingBuf<MapData>,
    options: Options,
    discovery: Discovery,
    attached: HashMap<attach::Attached, attach::Coverage>,
    /// The runtime binaries attached to, numbered for the kernel (see `unlisted.rs`).
    origins: unlisted::Origins,
    tracked: BTreeMap<u32, processes::Tracked>,
    /// Processes (pid, start time) whose exit was reported while /proc still lists them
    /// (not yet reaped), so discovery does not take them up again.
    ended: HashSet<(u32, u64)>,
    /// The previous reading, each process's interval measured from it.
    baseline: snapshots::Baseline,
    names: Names,
    last_poll: Instant,
    warnings: Vec<String>,
    /// Processes left out because they run in a PID namespace nested in ustat's.
    nested: HashSet<u32>,
    flow: calls::FlowState,
    name_requests: names::NameRequests,
    /// The loss counters at the previous poll.
    lost: crate::bpf::Lost,
    /// Processes that exited before discovery listed them and cannot be shown (their runtime
    /// is not known or not selected), and their events, since start.
    unlisted_processes: u64,
    unlisted_events: u64,
    /// The CPU sampler: each sampled process's state, and the rate (0: off).
    samplers: sampling::Samplers,
}

fn nested_namespace(pid: u32) -> String {
    format!(
        "process {pid} runs in a PID namespace nested inside ustat's, for which the kernel gives \
         ustat's programs no ids: trace it from its own namespace or from the host"
    )
}

impl KernelSource {
    /// Loads the programs, finds the selected runtime processes and attaches to them.
    pub fn start(options: Options) -> anyhow::Result<Self> {
        let mut tracer = Tracer::load()?;
        for program in [
            Program::Count,
            Program::SpanBegin,
            Program::SpanEnd,
            Program::SpanSubkey,
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
            origins: unlisted::Origins::default(),
            tracked: BTreeMap::new(),
            ended: HashSet::new(),
            baseline: snapshots::Baseline::default(),
            names: Names::new(),
            last_poll: Instant::now(),
            warnings: Vec::new(),
            nested: HashSet::new(),
            flow: calls::FlowState::default(),
            name_requests: names::NameRequests::default(),
            lost: crate::bpf::Lost::default(),
            unlisted_processes: 0,
            unlisted_events: 0,
            samplers: sampling::Samplers::default(),
        };
        source.start_sampling();
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

    /// The tracer's links, for the watchdog (see `signals`).
    pub fn links(&self) -> crate::bpf::Links {
        self.tracer.links()
    }

    /// Takes what the kernel sent (names of new keys, flow events) without waiting.
    fn drain_events(&mut self) {
        let mut names = Vec::new();
        while let Some(item) = self.events.next() {
            // Records of other kinds, or cut short, carry nothing for the source.
            match Event::decode(&item) {
                Ok(Event::Names(event)) => names.push(event),
                Ok(Event::Flow(event)) => self.flow.receive(&event),
                Ok(Event::Args(_) | Event::Trace(_)) | Err(_) => {}
            }
        }
        for event in &names {
            self.receive_names(event);
        }
    }
}
