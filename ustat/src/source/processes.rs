//! Which processes are traced: discovery's finds, filtered by the options, taken up once
//! (attached through `attach.rs`), dropped when gone; and what each one's detail says is not
//! traced.

use std::collections::HashSet;

use ustat_common::ProcessKey;
use ustat_runtimes::{Missing, ProcessFacts};

use super::{KernelSource, Selection, nested_namespace};
use crate::{binary, bpf::pid_namespace, discovery::Found, plan, process};

/// A process being traced.
pub(super) struct Tracked {
    pub(super) found: Found,
    pub(super) command: String,
    pub(super) facts: ProcessFacts,
    pub(super) unavailable: Vec<Missing>,
    pub(super) deferred: Vec<plan::OnDemandPlan>,
    pub(super) missing: Vec<Missing>,
    /// Probes the kernel refused (see `attach::refusals`).
    pub(super) refused: Vec<Missing>,
    pub(super) traced: Vec<u32>,
    /// Its epoch in the kernel's keys, once it has any (see `epochs.rs`).
    pub(super) epoch: Option<u64>,
}

impl Tracked {
    pub(super) fn process(&self) -> Option<ProcessKey> {
        self.epoch
            .map(|epoch| ProcessKey::new(self.found.pid, epoch))
    }

    /// Every line that says what is not traced: features the binary lacks, on-demand ones not
    /// asked for (and how to ask), and what the runtime's settings leave out.
    pub(super) fn missing_lines(&self) -> Vec<Missing> {
        let mut missing = self.binary_missing_lines();
        missing.extend((self.found.runtime.missing)(&self.facts));
        missing
    }

    /// The lines about its binary: features it lacks, on-demand ones not asked for.
    fn binary_missing_lines(&self) -> Vec<Missing> {
        binary_missing_lines(&self.unavailable, &self.deferred)
    }
}

/// The lines about a binary: the features it lacks (`unavailable`), and the on-demand ones
/// not asked for (`deferred`), with how to ask.
pub(super) fn binary_missing_lines(
    unavailable: &[Missing],
    deferred: &[plan::OnDemandPlan],
) -> Vec<Missing> {
    let mut missing = unavailable.to_vec();
    missing.extend(deferred.iter().map(|plan| Missing {
        categories: plan.feature.categories.to_vec(),
        text: on_demand_line(plan.feature),
    }));
    missing
}

/// The detail view's line for an on-demand feature not attached, with how to attach it.
fn on_demand_line(feature: &ustat_runtimes::Feature) -> String {
    let line = feature.on_demand.map_or("", |o| o.line);
    format!("{line}; `o` or --with {} turns them on", feature.name)
}

impl KernelSource {
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
    pub(super) fn discover(&mut self) -> Vec<Tracked> {
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
            // A process that already exited (a zombie not yet reaped) is not tracked: the
            // kernel recorded its exit, and its row comes from that record, once.
            if !process::running(found.pid) {
                continue;
            }
            let coverage = self.attach(&found);
            let facts = ProcessFacts {
                args: process::args(found.pid).unwrap_or_default(),
                env: process::env(found.pid, found.runtime.option_variables).unwrap_or_default(),
                version: (found.runtime.version)(&found.binary.path, &|path| {
                    binary::read_small_text(found.pid, path).ok()
                }),
                resolved: coverage.resolved,
            };
            let mut tracked = Tracked {
                command: process::label(found.pid, found.runtime.name).unwrap_or_default(),
                facts,
                unavailable: coverage.unavailable,
                deferred: coverage.deferred,
                missing: Vec::new(),
                refused: coverage.refused,
                traced: coverage.traced,
                found,
                epoch: None,
            };
            tracked.missing = tracked.missing_lines();
            let version = tracked.facts.version.clone();
            self.sample_new(&tracked.found, version.as_deref());
            self.tracked.insert(tracked.found.pid, tracked);
        }
        gone
    }
}
