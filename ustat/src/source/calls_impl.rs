//! `KernelSource` as a `CallSource`: the flow view's operations, as the flow side of the
//! source (`flow.rs`) provides them.

use super::KernelSource;
use crate::{flow::FlowLine, process, snapshot::CallSource};

impl CallSource for KernelSource {
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
        let command = process::command(pid).unwrap_or_default();
        format!("{command} (PID {pid}, {runtime})")
    }

    fn trace_on_demand(&mut self, pid: u32) -> Vec<&'static str> {
        KernelSource::trace_on_demand(self, pid)
    }
}
