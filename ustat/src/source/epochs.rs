//! Tying each traced process to its epoch, the second half of its keys in the kernel's maps
//! (the boot-time nanosecond of its first probe hit): by pid and start time, so a reused
//! pid's processes never share counts.

use std::collections::{HashMap, HashSet};

use ustat_common::{ExitRecord, ProcessKey};

use super::{KernelSource, processes::Tracked};
use crate::bpf::Totals;

impl KernelSource {
    /// Ties tracked processes to their epoch when their first keys appear (in the maps, or
    /// as an exit). Processes that just went are looked at too: one that hit its first probe
    /// and exited between two polls is still reported. They go first, so that a process that
    /// took the pid of one that went cannot claim its epoch.
    pub(super) fn learn_epochs(
        &mut self,
        totals: &Totals,
        exited: &HashMap<ProcessKey, ExitRecord>,
        gone: &mut [Tracked],
    ) {
        let mut epochs: HashMap<u32, Vec<Epoch>> = HashMap::new();
        for process in totals.processes().iter().chain(exited.keys()) {
            epochs.entry(process.pid).or_default().push(Epoch {
                epoch: process.epoch,
                exited: exited.contains_key(process),
            });
        }
        let mut claimed: HashSet<ProcessKey> = gone
            .iter()
            .chain(self.tracked.values())
            .filter_map(Tracked::process)
            .collect();
        let candidates = |pid: u32, claimed: &HashSet<ProcessKey>| -> Vec<Epoch> {
            epochs
                .get(&pid)
                .map(|all| {
                    all.iter()
                        .filter(|e| !claimed.contains(&ProcessKey::new(pid, e.epoch)))
                        .copied()
                        .collect()
                })
                .unwrap_or_default()
        };
        // A tracked process with the pid of one that went started after it went.
        let successors: HashMap<u32, u64> = self
            .tracked
            .values()
            .map(|t| (t.found.pid, t.found.start_time))
            .collect();
        for tracked in gone.iter_mut().filter(|t| t.epoch.is_none()) {
            let pid = tracked.found.pid;
            let successor = successors.get(&pid).copied();
            let candidates = candidates(pid, &claimed);
            tracked.epoch = epoch_of(tracked.found.start_time, true, successor, &candidates);
            if let Some(process) = tracked.process() {
                claimed.insert(process);
            }
        }
        for tracked in self.tracked.values_mut().filter(|t| t.epoch.is_none()) {
            let pid = tracked.found.pid;
            let candidates = candidates(pid, &claimed);
            tracked.epoch = epoch_of(tracked.found.start_time, false, None, &candidates);
        }
    }
}

/// Nanoseconds per clock tick of `/proc/PID/stat`'s start time.
fn tick_ns() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        1_000_000_000 / hz as u64
    } else {
        10_000_000
    }
}

/// One epoch seen for a pid, and whether that process exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Epoch {
    epoch: u64,
    exited: bool,
}

/// Which of its pid's epochs (`candidates`, not claimed by another process) belongs to a
/// process that started at `start_ticks` (`/proc/PID/stat`), if one does; `gone` says
/// whether the process has gone. An epoch is the boot-time nanosecond of the process's first
/// probe hit, so it is no earlier than the process's start: epochs before the start tick
/// belong to earlier processes with the pid. Of the rest, the earliest is the process's,
/// except that in the tick a process starts, an earlier one with the pid may have hit a
/// probe and exited: so a running process takes an epoch whose process has not exited
/// first, and a gone one an epoch whose process exited first. A gone process without an
/// exit recorded never hit a probe (or its exit could not be recorded): it takes no epoch
/// from the start of a later process with its pid (`successor_ticks`) on.
fn epoch_of(
    start_ticks: u64,
    gone: bool,
    successor_ticks: Option<u64>,
    candidates: &[Epoch],
) -> Option<u64> {
    let tick = tick_ns();
    let from = start_ticks.saturating_mul(tick);
    let until = successor_ticks.map_or(u64::MAX, |s| s.saturating_mul(tick));
    candidates
        .iter()
        .filter(|e| e.epoch >= from && (!gone || e.exited || e.epoch < until))
        .min_by_key(|e| (e.exited != gone, e.epoch))
        .map(|e| e.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(epoch: u64) -> Epoch {
        Epoch {
            epoch,
            exited: false,
        }
    }

    fn exited(epoch: u64) -> Epoch {
        Epoch {
            epoch,
            exited: true,
        }
    }

    /// Nanoseconds at the start of tick `ticks`.
    fn at(ticks: u64) -> u64 {
        ticks * tick_ns()
    }

    #[test]
    fn epochs_before_the_start_tick_are_an_earlier_process() {
        let earlier = exited(at(100) + 5);
        let own = running(at(200) + 7);
        assert_eq!(epoch_of(200, false, None, &[earlier, own]), Some(own.epoch));
        assert_eq!(epoch_of(200, false, None, &[earlier]), None);
    }

    #[test]
    fn a_running_process_prefers_an_epoch_whose_process_did_not_exit() {
        // The earlier process hit a probe and exited in the tick this one started.
        let earlier = exited(at(200) + 1);
        let own = running(at(200) + 9);
        assert_eq!(epoch_of(200, false, None, &[earlier, own]), Some(own.epoch));
        // Its own exit, recorded before /proc stopped listing it.
        assert_eq!(
            epoch_of(200, false, None, &[own, exited(at(201))]),
            Some(own.epoch)
        );
        assert_eq!(epoch_of(200, false, None, &[earlier]), Some(earlier.epoch));
    }

    #[test]
    fn a_gone_process_takes_its_exit_not_its_successors_epoch() {
        // It hit its first probe in the tick the next process with its pid started.
        let own = exited(at(300) + 2);
        let successor = running(at(300) + 8);
        assert_eq!(
            epoch_of(250, true, Some(300), &[successor, own]),
            Some(own.epoch)
        );
        // It never hit a probe: the successor's epoch is not its.
        assert_eq!(epoch_of(250, true, Some(300), &[successor]), None);
    }
}
