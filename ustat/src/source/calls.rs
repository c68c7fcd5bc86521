//! The call stream: watching one process's method calls (entries and returns as the kernel
//! sends them), method labels by flow hash, the flow maps' per-method timing, folded
//! stacks; and `KernelSource` as the flow view's `CallSource`.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use anyhow::Context as _;
use ustat_common::FlowEvent;

use super::KernelSource;
use crate::{
    binary::Binary,
    bpf::{FlowTotals, Group, Program, Scope},
    discovery::Found,
    flow::{self, FlowLine},
    plan, process, sanitize,
    snapshot::CallSource,
};

/// A flow that cannot start: the process has no call probes that can fire.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("the calls of process {pid} cannot be followed: {reason}")]
    NoCallProbes { pid: u32, reason: String },
}

/// Lines kept between two `take_flow` calls; beyond, the oldest go (and are counted).
const MAX_PENDING: usize = 1 << 20;

#[derive(Debug, Default)]
pub(super) struct FlowState {
    /// The process whose calls are being watched.
    watched: Option<u32>,
    pending: VecDeque<FlowLine>,
    seq: u64,
    /// Lines dropped because nobody took them in time.
    overflow: u64,
    /// Method names by (pid, method hash).
    labels: HashMap<(u32, u64), String>,
    /// Whether any flow programs are attached (so the flow maps are worth reading).
    attached: bool,
    /// The flow maps as this interval read them (the previous reading is the baseline's).
    now: Option<FlowTotals>,
}

impl FlowState {
    pub(super) fn receive(&mut self, event: &FlowEvent) {
        let Some(line) = flow::line(event, self.seq) else {
            return;
        };
        if self.watched != Some(line.pid) {
            return;
        }
        self.seq += 1;
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            self.overflow += 1;
        }
        self.pending.push_back(line);
    }

    /// The flow maps as this interval read them, if they were read.
    pub(super) fn reading(&self) -> Option<&FlowTotals> {
        self.now.as_ref()
    }

    /// Takes this interval's reading, to become the next one's baseline.
    pub(super) fn take_reading(&mut self) -> Option<FlowTotals> {
        self.now.take()
    }

    /// A method's label, by flow hash.
    pub(super) fn label(&mut self, pid: u32, hash: u64, label: String) {
        self.labels.insert((pid, hash), label);
    }

    pub(super) fn forget_process(&mut self, pid: u32) {
        self.labels.retain(|(p, _), _| *p != pid);
    }
}

impl KernelSource {
    /// Reads the flow maps, if any flow programs are attached, and forgets the span and
    /// call stacks of threads that are gone.
    pub(super) fn read_flow_totals(&mut self) -> anyhow::Result<()> {
        if self.flow.attached {
            self.flow.now = Some(self.tracer.flow_totals()?);
        }
        let alive = |tid: u32| std::path::Path::new(&format!("/proc/{tid}")).exists();
        self.tracer.forget_threads(alive)?;
        Ok(())
    }

    /// Attaches the flow programs for `found`'s runtime in its opened `binary`; returns how
    /// many sites took.
    pub(super) fn attach_flow(
        &mut self,
        found: &Found,
        binary: &Arc<Binary>,
        group: Group,
        scope: Scope,
    ) -> usize {
        let planned = match plan::plan_flow(found.runtime, binary) {
            Ok(planned) => planned,
            Err(e) => {
                let line = format!("{:#}", anyhow::Error::from(e));
                self.warnings.push(sanitize::text(&line));
                return 0;
            }
        };
        let origin = self.origins.of(found);
        let (attached, _) = self.attach_planned(group, scope, origin, &planned);
        self.flow.attached |= attached > 0;
        attached
    }

    /// Starts sending `pid`'s method entries and returns (see `take_flow`).
    pub fn watch_flow(&mut self, pid: u32) -> anyhow::Result<()> {
        self.unwatch_flow()?;
        let found = self
            .tracked
            .get(&pid)
            .map(|t| t.found.clone())
            .with_context(|| format!("process {pid} is not traced"))?;
        if found.runtime.flow.is_none() {
            return Err(FlowError::NoCallProbes {
                pid,
                reason: format!("{} has no method probes", found.runtime.name),
            }
            .into());
        }
        if let Some(line) = self.calls_not_asked_for(pid) {
            return Err(crate::message::UsageError(line).into());
        }
        if let Some(reason) = self.calls_never_fire(pid) {
            return Err(FlowError::NoCallProbes { pid, reason }.into());
        }
        // With --methods the probes are attached already; twice would push every call twice.
        if !self.options.method_times {
            self.tracer.load_program(Program::FlowEntry)?;
            self.tracer.load_program(Program::FlowReturn)?;
            let attached = match self.open_binary(&found) {
                Some(binary) => self.attach_flow(&found, &binary, Group::Flow, Scope::Process(pid)),
                None => 0,
            };
            if attached == 0 {
                anyhow::bail!("no method probe of process {pid} could be attached");
            }
        }
        self.tracer.set_flow(true, "", "")?;
        self.flow.watched = Some(pid);
        Ok(())
    }

    /// Why `pid`'s call probes cannot fire while it runs, as the detail view says it: its
    /// binary lacks them, or a setting fixed at its start keeps them off. A flow would wait
    /// for calls forever.
    fn calls_never_fire(&self, pid: u32) -> Option<String> {
        use ustat_common::category::METHOD_CALL;
        let tracked = self.tracked.get(&pid)?;
        // A setting ustat did not read (an options file) may have turned them on after all.
        if self.baseline.has_hits(pid, METHOD_CALL) {
            return None;
        }
        let calls = |m: &&ustat_runtimes::Missing| m.categories.contains(&METHOD_CALL);
        tracked
            .unavailable
            .iter()
            .find(calls)
            .or_else(|| tracked.missing.iter().filter(calls).find(|m| m.lasts()))
            .map(|m| m.text.clone())
    }

    /// Sends only calls whose class (or file) and method (or function) start with these.
    pub fn filter_flow(&mut self, class: &str, method: &str) -> anyhow::Result<()> {
        let Some(pid) = self.flow.watched else {
            return Ok(());
        };
        let class = match self.tracked.get(&pid).and_then(|t| t.found.runtime.flow) {
            Some(flow) => (flow.class_prefix)(class),
            None => class.to_string(),
        };
        self.tracer.set_flow(true, &class, method)?;
        Ok(())
    }

    /// Stops watching; the method probes go unless --methods needs them.
    pub fn unwatch_flow(&mut self) -> anyhow::Result<()> {
        if self.flow.watched.take().is_some() {
            self.tracer.set_flow(false, "", "")?;
            if !self.options.method_times {
                self.tracer.detach(Group::Flow)?;
            }
        }
        self.flow.pending.clear();
        Ok(())
    }

    /// Reads what the kernel sent since the last call (names, flow events) without waiting.
    pub fn pump(&mut self) {
        self.drain_events();
    }

    /// The watched process's entries and returns since the last call, in order.
    pub fn take_flow(&mut self) -> Vec<FlowLine> {
        std::mem::take(&mut self.flow.pending).into()
    }

    /// Flow events lost so far: the ring buffer was full, or nobody took them in time.
    pub fn flow_dropped(&self) -> anyhow::Result<u64> {
        Ok(self.tracer.lost()?.ring_full + self.flow.overflow)
    }

    /// A method's name, from its flow hash.
    pub fn method_label(&self, pid: u32, method: u64) -> String {
        self.flow
            .labels
            .get(&(pid, method))
            .cloned()
            .unwrap_or_else(|| "?".to_string())
    }

    /// `pid`'s call tree as folded stacks (`a;b;c calls`).
    pub fn folded(&mut self, pid: u32) -> anyhow::Result<Vec<String>> {
        self.drain_events();
        let totals = self.tracer.flow_totals()?;
        Ok(flow::folded(&totals.paths, pid, |m| {
            self.method_label(pid, m)
        }))
    }
}

impl CallSource for KernelSource {
    fn live_threads(&self, pid: u32) -> Vec<(u32, String)> {
        process::threads_by_start(pid).unwrap_or_default()
    }

    fn watch_flow(&mut self, pid: u32) -> anyhow::Result<()> {
        KernelSource::watch_flow(self, pid)
    }

    fn unwatch_flow(&mut self) -> anyhow::Result<()> {
        KernelSource::unwatch_flow(self)
    }

    fn filter_flow(&mut self, class: &str, method: &str) -> anyhow::Result<()> {
        KernelSource::filter_flow(self, class, method)
    }

    fn take_flow(&mut self) -> Vec<FlowLine> {
        self.pump();
        KernelSource::take_flow(self)
    }

    fn flow_dropped(&self) -> anyhow::Result<u64> {
        KernelSource::flow_dropped(self)
    }

    fn method_label(&self, pid: u32, method: u64) -> String {
        KernelSource::method_label(self, pid, method)
    }

    fn folded(&mut self, pid: u32) -> anyhow::Result<Vec<String>> {
        KernelSource::folded(self, pid)
    }

    fn title(&self, pid: u32) -> String {
        let runtime = self
            .processes()
            .into_iter()
            .find(|(p, _)| *p == pid)
            .map_or("?", |(_, r)| r);
        let command = process::label(pid, runtime).unwrap_or_default();
        format!("{command} (PID {pid}, {runtime})")
    }

    fn trace_on_demand(&mut self, pid: u32) -> Vec<&'static str> {
        KernelSource::trace_on_demand(self, pid)
    }
}
