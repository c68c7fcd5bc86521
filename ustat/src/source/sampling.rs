//! The CPU sampler in the source: starting it, making each traced CPython process a target
//! (one that only counts until its layout is found and checked), and each interval turning
//! the kernel's counts into every sampled process's `Sampled`; exited processes' targets and
//! stacks go.

use std::collections::HashMap;

use super::{KernelSource, processes::Tracked};
use crate::{
    binary::Binary, discovery::Found, process, sampling::ProcessSampler, sanitize,
    snapshot::Sampled,
};

/// The sampled processes, by (pid, start time), and the rate (0: not sampling).
#[derive(Debug, Default)]
pub(super) struct Samplers {
    hz: u32,
    by_process: HashMap<(u32, u64), ProcessSampler>,
}

/// This interval's samples, by (pid, start time).
pub(super) type SampledNow = HashMap<(u32, u64), Sampled>;

impl KernelSource {
    /// Starts the per-CPU clocks when sampling is asked for; a failure is a warning (the
    /// rest of ustat works without it).
    pub(super) fn start_sampling(&mut self) {
        let hz = self.options.sample_hz;
        if hz == 0 {
            return;
        }
        match self.tracer.start_sampling(hz) {
            Ok(()) => self.samplers.hz = hz,
            Err(e) => self.warnings.push(sanitize::text(&format!(
                "CPU sampling is off: {:#}",
                anyhow::Error::from(e)
            ))),
        }
    }

    /// Samples a newly traced process, if it runs CPython and sampling is on.
    pub(super) fn sample_new(&mut self, found: &Found, version: Option<&str>) {
        if self.samplers.hz == 0 || found.runtime.name != "python" {
            return;
        }
        // Opened as every mapped binary is; a refusal was already said when attaching.
        let binary = process::uid(found.pid)
            .ok()
            .and_then(|uid| Binary::open_mapped(found.pid, &found.binary, uid).ok());
        let mut sampler = ProcessSampler::new(found, binary.as_deref(), version);
        // Walked from its first sample when its interpreter is already set up.
        let target = sampler
            .prepare()
            .unwrap_or_else(|| sampler.counting_target());
        if let Some(why) = sampler.unreadable() {
            self.warnings.push(unreadable_line(found.pid, why));
        }
        if let Err(e) = self.tracer.set_sample_target(found.pid, &target) {
            self.warnings.push(sanitize::text(&format!(
                "process {} is not sampled: {:#}",
                found.pid,
                anyhow::Error::from(e)
            )));
            return;
        }
        self.samplers
            .by_process
            .insert((found.pid, found.start_time), sampler);
    }

    /// Finds the layouts not known yet, reads the kernel's counts, and returns this
    /// interval's samples of every sampled process, also of those in `gone` (whose targets
    /// and stacks are removed then).
    pub(super) fn sample_interval(&mut self, gone: &[Tracked]) -> anyhow::Result<SampledNow> {
        let mut out = SampledNow::new();
        if self.samplers.hz == 0 {
            return Ok(out);
        }
        let ended: Vec<(u32, u64)> = gone
            .iter()
            .map(|t| (t.found.pid, t.found.start_time))
            .collect();
        for (&(pid, _), sampler) in &mut self.samplers.by_process {
            let was_unreadable = sampler.unreadable().is_some();
            if let Some(target) = sampler.prepare() {
                self.tracer.set_sample_target(pid, &target)?;
            }
            if let (false, Some(why)) = (was_unreadable, sampler.unreadable()) {
                self.warnings.push(unreadable_line(pid, why));
            }
        }
        let stacks = self.tracer.sample_stacks()?;
        let hz = self.samplers.hz;
        for (&process, sampler) in &mut self.samplers.by_process {
            out.insert(process, sampler.interval(hz, &stacks));
        }
        for (pid, start) in ended {
            if self.samplers.by_process.remove(&(pid, start)).is_some() {
                self.tracer.forget_sampled(pid, start)?;
            }
        }
        Ok(out)
    }
}

/// The one line that says a process's stacks cannot be read, and why.
fn unreadable_line(pid: u32, why: &str) -> String {
    sanitize::text(&format!(
        "process {pid}: its Python stacks cannot be read: {why}; its samples are counted, not named"
    ))
}
