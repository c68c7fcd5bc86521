//! The CPU sampler in the source: starting it, making each traced CPython process and JVM a
//! target (one that only counts until its layout is found and checked), and each interval
//! turning the kernel's counts into every sampled process's `Sampled`; exited processes'
//! targets and stacks go.

use std::collections::{HashMap, HashSet};

use super::{KernelSource, processes::Tracked};
use crate::{
    binary::Binary,
    discovery::Found,
    process,
    sampling::{BinarySymbols, JvmSampler, PYTHON_SYMBOLS, ProcessSampler, vmstructs},
    sanitize,
    snapshot::Sampled,
};

/// A binary's identity: device and inode.
type BinaryId = ((i32, i32), u64);

/// One sampled process, by the runtime whose frames it walks.
#[derive(Debug)]
enum Sampler {
    Python(Box<ProcessSampler>),
    Jvm(Box<JvmSampler>),
}

impl Sampler {
    fn unreadable(&self) -> Option<&str> {
        match self {
            Sampler::Python(s) => s.unreadable(),
            Sampler::Jvm(s) => s.unreadable(),
        }
    }
}

/// The sampled processes, by (pid, start time), and the rate (0: not sampling).
#[derive(Debug, Default)]
pub(super) struct Samplers {
    hz: u32,
    by_process: HashMap<(u32, u64), Sampler>,
    /// Each runtime binary's symbols, read once, or why they cannot be.
    binaries: HashMap<BinaryId, Result<BinarySymbols, String>>,
    /// What was said about which binary, so each reason is one line, not one per process.
    said: HashSet<(BinaryId, String)>,
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

    /// Samples a newly traced process, if it runs CPython or HotSpot and sampling is on.
    pub(super) fn sample_new(&mut self, found: &Found, version: Option<&str>) {
        let names: &[&'static str] = match found.runtime.name {
            "python" => &PYTHON_SYMBOLS,
            "jvm" => &vmstructs::SYMBOLS,
            _ => return,
        };
        if self.samplers.hz == 0 {
            return;
        }
        let id: BinaryId = (found.binary.dev, found.binary.inode);
        let symbols = self
            .samplers
            .binaries
            .entry(id)
            .or_insert_with(|| {
                // Opened as every mapped binary is; a refusal was already said when attaching.
                let binary = process::uid(found.pid)
                    .map_err(|e| format!("{:#}", anyhow::Error::from(e)))
                    .and_then(|uid| {
                        Binary::open_mapped(found.pid, &found.binary, uid)
                            .map_err(|_| "its runtime binary could not be opened".to_string())
                    })?;
                BinarySymbols::read(&binary, names)
            })
            .clone()
            .and_then(|symbols| symbols.in_process(found));
        let (sampler, target) = if found.runtime.name == "jvm" {
            let mut sampler = JvmSampler::new(found, symbols.and_then(|s| s.hotspot()));
            let target = sampler
                .prepare()
                .unwrap_or_else(|| sampler.counting_target());
            let set = self.tracer.set_hotspot_target(found.pid, &target);
            (Sampler::Jvm(Box::new(sampler)), set)
        } else {
            let mut sampler = ProcessSampler::new(found, symbols.map(|s| s.python()), version);
            let target = sampler
                .prepare()
                .unwrap_or_else(|| sampler.counting_target());
            let set = self.tracer.set_sample_target(found.pid, &target);
            (Sampler::Python(Box::new(sampler)), set)
        };
        if let Some(why) = sampler.unreadable() {
            let line = unreadable_line(found, why);
            if self.samplers.said.insert((id, why.to_string())) {
                self.warnings.push(line);
            }
        }
        if let Err(e) = target {
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
            match sampler {
                Sampler::Python(s) => {
                    if let Some(target) = s.prepare() {
                        self.tracer.set_sample_target(pid, &target)?;
                    }
                }
                Sampler::Jvm(s) => {
                    if let Some(target) = s.prepare() {
                        self.tracer.set_hotspot_target(pid, &target)?;
                    }
                }
            }
            if let (false, Some(why)) = (was_unreadable, sampler.unreadable())
                && let Some(tracked) = self.tracked.get(&pid)
            {
                let id = (tracked.found.binary.dev, tracked.found.binary.inode);
                if self.samplers.said.insert((id, why.to_string())) {
                    self.warnings.push(unreadable_line(&tracked.found, why));
                }
            }
        }
        // Each process's keys, found in one pass over all of them.
        let mut stacks: HashMap<(u32, u64), Vec<_>> = HashMap::new();
        for (key, count) in self.tracer.sample_stacks()? {
            stacks
                .entry((key.pid, key.start))
                .or_default()
                .push((key, count));
        }
        let hz = self.samplers.hz;
        let tracer = &self.tracer;
        for (&process, sampler) in &mut self.samplers.by_process {
            let mine = stacks.get(&process).map_or(&[][..], Vec::as_slice);
            let sampled = match sampler {
                Sampler::Python(s) => s.interval(hz, mine),
                // An unreadable count reads as a new generation: no name is then trusted.
                Sampler::Jvm(s) => {
                    s.interval(hz, mine, || tracer.unloads(process.0).unwrap_or(u32::MAX))
                }
            };
            out.insert(process, sampled);
        }
        let forget: HashSet<(u32, u64)> = ended
            .into_iter()
            .filter(|process| self.samplers.by_process.remove(process).is_some())
            .collect();
        self.tracer.forget_sampled(&forget)?;
        Ok(out)
    }
}

/// The one line that says a process's stacks cannot be read, and why; said once per binary
/// and reason, as every process of that binary has the same.
fn unreadable_line(found: &Found, why: &str) -> String {
    sanitize::text(&format!(
        "process {} ({}): its {} stacks cannot be read: {why}; its samples are counted, not \
         named (said once for this binary)",
        found.pid,
        found.binary.path.display(),
        if found.runtime.name == "jvm" {
            "Java"
        } else {
            "Python"
        },
    ))
}
