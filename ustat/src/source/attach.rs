//! What is attached for each runtime binary (or each process, with `-p`): its plan's
//! features, on-demand ones when asked for, the per-method probes with `--methods`; and the
//! coverage that says what a binary lets ustat see.

use std::sync::Arc;

use ustat_runtimes::Missing;

use super::{KernelSource, Selection};
use crate::{
    binary::{self, Binary, OpenError},
    bpf::{Group, ProbeAttachError, Scope},
    discovery::Found,
    plan, process, sanitize,
};

/// What has been attached, so each binary (or binary and process, when scoped) is attached once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Attached {
    File { dev: (i32, i32), inode: u64 },
    Process { pid: u32, start_time: u64 },
}

/// What a runtime's binary lets ustat see.
#[derive(Debug, Clone, Default)]
pub(super) struct Coverage {
    /// The features attached (on-demand ones only when `--with` asked for them).
    pub(super) resolved: Vec<&'static str>,
    /// The categories of the resolved features.
    pub(super) traced: Vec<u32>,
    pub(super) unavailable: Vec<Missing>,
    /// On-demand features the binary has that are not attached: a process can ask for them.
    pub(super) deferred: Vec<plan::OnDemandPlan>,
    /// Probes the kernel refused, each with the categories it leaves untraced.
    pub(super) refused: Vec<Missing>,
}

/// The categories a planned site counts into: its spec's tag, for the programs that count.
fn category_of(planned: &plan::Planned) -> Option<u32> {
    use crate::bpf::Program;
    matches!(
        planned.program,
        Program::Count
            | Program::SpanBegin
            | Program::SpanEnd
            | Program::SpanSubkey
            | Program::Keyed
    )
    .then_some(planned.spec.tag)
}

/// The refusals among `errors`, one per probe and reason (a probe's sites fail alike): the
/// line that names probe, file and reason, and the categories the probe counts into, which
/// stay untraced — an empty cell, never a 0 that looks real.
fn refusals(planned: &[plan::Planned], errors: &[ProbeAttachError]) -> Vec<Missing> {
    let mut refused: Vec<Missing> = Vec::new();
    for e in errors {
        let text = sanitize::text(&error_chain(e));
        if refused.iter().any(|r| r.text == text) {
            continue;
        }
        let mut categories: Vec<u32> = planned
            .iter()
            .filter(|p| p.probe == e.probe)
            .filter_map(category_of)
            .collect();
        categories.sort_unstable();
        categories.dedup();
        refused.push(Missing { categories, text });
    }
    refused
}

/// `cannot attach P in F: reason: cause`, the error with its sources.
fn error_chain(e: &ProbeAttachError) -> String {
    let mut line = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
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
    /// The file whose name starts with `prefix` that `pid` maps (a library its runtime's
    /// binary links: libuv.so.1), opened as every mapped binary is (see `binary`); a file
    /// ustat will not open is left out, as if not mapped.
    fn open_linked_library(&self, pid: u32, prefix: &str) -> Option<Arc<Binary>> {
        let object = process::mapped_objects(pid).ok()?.into_iter().find(|o| {
            o.path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })?;
        let uid = process::uid(pid).ok()?;
        Binary::open_mapped(pid, &object, uid).ok()
    }

    /// Opens the runtime binary `found` maps (see `binary`); a file ustat will not open, or
    /// cannot, becomes a warning naming it and why.
    pub(super) fn open_binary(&mut self, found: &Found) -> Option<Arc<Binary>> {
        let opened = process::uid(found.pid)
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)))
            .and_then(|uid| {
                Binary::open_mapped(found.pid, &found.binary, uid).map_err(|e| match e {
                    OpenError::Refused { path, reason } => {
                        binary::skip_line(found.pid, &path, &reason)
                    }
                    other => format!("{:#}", anyhow::Error::from(other)),
                })
            });
        match opened {
            Ok(binary) => Some(binary),
            Err(line) => {
                self.warnings.push(sanitize::text(&line));
                None
            }
        }
    }

    /// Attaches the runtime's features in the process's binary, once per binary (per
    /// process when tracing selected processes), and says what the binary covers.
    pub(super) fn attach(&mut self, found: &Found) -> Coverage {
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
        let origin = self.origins.number(found, &key);
        if let Some(coverage) = self.attached.get(&key) {
            return coverage.clone();
        }
        let Some(binary) = self.open_binary(found) else {
            self.attached.insert(key, Coverage::default());
            return Coverage::default();
        };
        // A feature the binary links rather than contains is planned in the library.
        let planned = plan::plan_with_libraries(found.runtime, &binary, |prefix| {
            self.open_linked_library(found.pid, prefix)
        });
        let coverage = match planned {
            Ok(plan) => {
                self.warnings
                    .extend(plan.warnings.iter().map(|w| sanitize::text(w)));
                let (_, mut refused) =
                    self.attach_planned(Group::Main, scope, origin, &plan.attachments);
                let mut resolved = plan.resolved;
                let mut deferred = Vec::new();
                for on_demand in plan.on_demand {
                    if self.options.with.contains(&on_demand.feature.name) {
                        let (_, more) =
                            self.attach_planned(Group::Main, scope, origin, &on_demand.attachments);
                        refused.extend(more);
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
                    self.attach_flow(found, &binary, Group::Main, scope);
                }
                Coverage {
                    resolved,
                    traced,
                    unavailable: plan.unavailable,
                    deferred,
                    refused,
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
        let origin = self.origins.of(&tracked.found);
        let mut names = Vec::new();
        let mut refused = Vec::new();
        for on_demand in &deferred {
            let (attached, more) = self.attach_planned(
                Group::Main,
                Scope::Process(pid),
                origin,
                &on_demand.attachments,
            );
            refused.extend(more);
            if attached > 0 {
                names.push(on_demand.feature.name);
            }
        }
        if let Some(tracked) = self.tracked.get_mut(&pid) {
            tracked.refused.extend(refused);
            tracked.facts.resolved.extend(names.iter().copied());
            tracked.traced = categories_of(runtime, &tracked.facts.resolved);
            tracked.missing = tracked.missing_lines();
        }
        names
    }

    /// Whether following `pid`'s calls would raise on-demand probes nobody asked for: the
    /// risk, and how to take it.
    pub(super) fn calls_not_asked_for(&self, pid: u32) -> Option<String> {
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

    /// Attaches planned sites of the runtime binary numbered `origin` (see `unlisted.rs`); a
    /// probe that fails becomes a warning (once per probe and reason) and a refusal. Returns
    /// how many sites took, and the refusals.
    pub(super) fn attach_planned(
        &mut self,
        group: Group,
        scope: Scope,
        origin: u32,
        planned: &[plan::Planned],
    ) -> (usize, Vec<Missing>) {
        let sites: Vec<_> = planned.iter().map(plan::Planned::attachment).collect();
        let errors = self.tracer.attach_all(group, scope, origin, &sites);
        let attached = sites.len() - errors.len();
        let refused = refusals(planned, &errors);
        for refusal in &refused {
            self.warnings.push(format!(
                "{}; what it counts is not traced (empty CSV cells, – in the dashboard)",
                refusal.text
            ));
        }
        (attached, refused)
    }
}
