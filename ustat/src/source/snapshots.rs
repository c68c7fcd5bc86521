//! Turning the kernel's readings into snapshots: each interval reads the exits and the maps,
//! ties new processes to their epochs, measures each process from where its last interval
//! ended (a process reported for the first time from its first hit), reports exited
//! processes once, and forgets them in the maps.

use std::{
    collections::HashSet,
    time::{Instant, SystemTime},
};

use ustat_common::{OfProcess as _, ProcessKey};

use super::{KernelSource, processes::Tracked, sampling::SampledNow};
use crate::{
    bpf::{FlowTotals, Totals},
    process,
    snapshot::{ProcessSnapshot, Snapshot, Source},
    stats::{self, FlowReadings},
};

/// The previous reading, and which processes were reported from it: an interval is measured
/// from there.
#[derive(Debug, Default)]
pub(super) struct Baseline {
    totals: Totals,
    flow: Option<FlowTotals>,
    reported: HashSet<ProcessKey>,
    /// What a process not reported before is measured from.
    nothing: Totals,
}

/// What a process's interval is measured from.
pub(super) struct Start<'a> {
    totals: &'a Totals,
    flow: Option<&'a FlowTotals>,
}

impl Baseline {
    /// The previous reading for a process reported from it. A process not reported from it
    /// is measured from nothing, so its first interval counts everything since its first
    /// hit: a process discovered (or tied to its epoch) after it hit its probes would
    /// otherwise have those hits taken as the previous reading's and never counted.
    pub(super) fn of(&self, process: Option<ProcessKey>) -> Start<'_> {
        match process {
            Some(p) if self.reported.contains(&p) => Start {
                totals: &self.totals,
                flow: self.flow.as_ref(),
            },
            _ => Start {
                totals: &self.nothing,
                flow: None,
            },
        }
    }

    /// Whether the last reading holds hits of `category` by `pid` (so it is traced after
    /// all, whatever the process's settings seemed to say).
    pub(super) fn has_hits(&self, pid: u32, category: u32) -> bool {
        self.totals
            .keyed
            .keys()
            .any(|k| k.pid == pid && k.category == category)
            || self
                .totals
                .counts
                .keys()
                .any(|k| k.pid == pid && k.category == category)
    }

    /// The reading just taken, and the processes reported from it.
    pub(super) fn replace(
        &mut self,
        totals: Totals,
        flow: Option<FlowTotals>,
        reported: HashSet<ProcessKey>,
    ) {
        self.totals = totals;
        if flow.is_some() {
            self.flow = flow;
        }
        self.reported = reported;
    }
}

impl KernelSource {
    fn snapshot_of(
        &self,
        tracked: &Tracked,
        now: &stats::PidTotals,
        exited: bool,
        sampled: &SampledNow,
    ) -> ProcessSnapshot {
        let found = &tracked.found;
        let from = self.baseline.of(tracked.process());
        let computed = stats::compute(
            found.runtime,
            now,
            from.totals,
            &self.names,
            FlowReadings {
                now: self.flow.reading(),
                previous: from.flow,
            },
            self.options.top,
        );
        let threads = if exited {
            Vec::new()
        } else {
            process::threads(found.pid).unwrap_or_default()
        };
        ProcessSnapshot {
            pid: found.pid,
            runtime: found.runtime.name,
            command: tracked.command.clone(),
            exited,
            threads_live: threads.len() as u64,
            threads,
            missing: tracked
                .missing
                .iter()
                .filter(|m| !m.categories.iter().any(|c| computed.seen.contains(c)))
                .cloned()
                .collect(),
            refused: tracked.refused.clone(),
            traced: tracked.traced.clone(),
            sampled: sampled.get(&(found.pid, found.start_time)).cloned(),
            interval: computed.interval,
            total: computed.total,
            pause: computed.pause,
            pause_total: computed.pause_total,
            gc_kinds: computed.gc_kinds,
            collectors: computed.collectors,
            top_methods: computed.top_methods,
            top_allocations: computed.top_allocations,
            top_monitors: computed.top_monitors,
            top_exceptions: computed.top_exceptions,
            pools: computed.pools,
        }
    }
}

impl Source for KernelSource {
    fn poll(&mut self) -> anyhow::Result<Snapshot> {
        // Discovery first: a process it finds gone has been reaped, so the exit hook has
        // already recorded it, and the reading below holds its final counts.
        let mut gone = self.discover();
        // The interval ends when the kernel's counts are read, right after discovery: the
        // timestamp is the end of what the rows count, and interval_s the time since the
        // last reading, however long discovery took on a loaded host. (Between discovery
        // and the stamp, microseconds, a process can start unseen until the next interval.)
        let taken_at = SystemTime::now();
        let now = Instant::now();
        let interval = now - self.last_poll;
        self.last_poll = now;
        let exited = self.tracer.exited()?;
        let totals = self.tracer.totals()?;
        self.read_flow_totals()?;
        self.drain_events();
        self.request_missing_names(&totals)?;

        self.learn_epochs(&totals, &exited, &mut gone);
        // A tracked process whose exit the hook saw is done, also while /proc still lists
        // it (exited, not yet reaped).
        let ended: Vec<u32> = self
            .tracked
            .values()
            .filter(|t| t.process().is_some_and(|p| exited.contains_key(&p)))
            .map(|t| t.found.pid)
            .collect();
        for pid in ended {
            if let Some(tracked) = self.tracked.remove(&pid) {
                self.ended.insert((pid, tracked.found.start_time));
                gone.push(tracked);
            }
        }

        let sampled = self.sample_interval(&gone)?;
        let by_process = stats::by_process(&totals);
        let empty = stats::PidTotals::default();
        let of = |t: &Tracked| {
            t.process()
                .and_then(|p| by_process.get(&p))
                .unwrap_or(&empty)
        };
        let mut processes: Vec<ProcessSnapshot> = self
            .tracked
            .values()
            .map(|t| self.snapshot_of(t, of(t), false, &sampled))
            .collect();
        // A process that exited still reports what it did since the last interval, once.
        for tracked in &gone {
            processes.push(self.snapshot_of(tracked, of(tracked), true, &sampled));
        }
        // A process that hit probes and exited before discovery listed it gets its row
        // from what the kernel recorded at its exit; one that cannot (its runtime binary is
        // not known, or not selected) has its events counted as lost and shown, never
        // dropped in silence.
        let listed: HashSet<ProcessKey> = gone.iter().filter_map(Tracked::process).collect();
        for (&process, record) in exited.iter().filter(|(p, _)| !listed.contains(p)) {
            match self.unlisted(process, record) {
                Some(tracked) => {
                    processes.push(self.snapshot_of(&tracked, of(&tracked), true, &sampled));
                    gone.push(tracked);
                }
                None => {
                    self.unlisted_processes += 1;
                    self.unlisted_events += totals.events_of(process);
                }
            }
        }
        // A process that exited comes before a new one that took its pid.
        processes.sort_by_key(|p| (p.pid, !p.exited));

        // Every exited process's keys go, tracked or not, in one pass over each map.
        let mut forget: HashSet<ProcessKey> = exited.into_keys().collect();
        forget.extend(gone.iter().filter_map(Tracked::process));
        self.tracer.forget_processes(&forget)?;
        if !self.tracer.watches_exits() {
            self.tracer.forget_dead_processes(process_alive)?;
        }
        self.names.retain(|key, _| !forget.contains(&key.process()));
        self.forget_name_requests(&forget)?;
        for tracked in &gone {
            self.flow.forget_process(tracked.found.pid);
        }
        let mut totals = totals;
        totals.forget_processes(&forget);
        let reported = self.tracked.values().filter_map(Tracked::process).collect();
        let flow = self.flow.take_reading();
        self.baseline.replace(totals, flow, reported);
        self.debug_maps();
        let lost = crate::bpf::Lost {
            unlisted_processes: self.unlisted_processes,
            unlisted_events: self.unlisted_events,
            ..self.tracer.lost()?
        };
        let lost_interval = crate::snapshot::lost_since(&self.lost, &lost);
        self.lost = lost;
        Ok(Snapshot {
            taken_at,
            interval,
            processes,
            lost,
            lost_interval,
            warnings: self.warnings.clone(),
            probes_attached: self.tracer.attached() as u64,
        })
    }
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use ustat_common::{CountKey, SpanTotals, category};

    use super::*;

    const JVM: ProcessKey = ProcessKey::new(40, 7);

    /// A reading in which the JVM has had `gcs` collections.
    fn reading(gcs: u64) -> Totals {
        let mut totals = Totals::default();
        totals.spans.insert(
            CountKey {
                pid: JVM.pid,
                category: category::GC,
                subkey: 1,
                epoch: JVM.epoch,
            },
            SpanTotals {
                count: gcs,
                total_ns: gcs * 1_000,
                max_ns: 1_000,
                value_sum: 0,
            },
        );
        totals
    }

    fn interval_gcs(baseline: &Baseline, now: &Totals) -> u64 {
        let from = baseline.of(Some(JVM));
        let runtime = ustat_runtimes::ALL
            .iter()
            .find(|r| r.name == "jvm")
            .expect("the JVM runtime");
        let computed = stats::compute(
            runtime,
            &stats::by_process(now)[&JVM],
            from.totals,
            &stats::Names::new(),
            FlowReadings::default(),
            10,
        );
        computed.interval.gc_count
    }

    #[test]
    fn a_process_first_reported_counts_what_it_did_before_it_was_tracked() {
        // The previous reading already held two of its collections, but it was not tracked
        // then (discovered later, or not yet tied to its epoch): nothing reported them.
        let mut baseline = Baseline::default();
        baseline.replace(reading(2), None, HashSet::new());
        assert_eq!(interval_gcs(&baseline, &reading(4)), 4);
        // Once reported, its next interval starts where that one ended.
        baseline.replace(reading(4), None, HashSet::from([JVM]));
        assert_eq!(interval_gcs(&baseline, &reading(5)), 1);
        // A process without an epoch yet has no keys: nothing to measure from.
        assert!(baseline.of(None).totals.spans.is_empty());
    }
}
