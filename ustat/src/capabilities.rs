//! What ustat may do: the capabilities in its effective set (CapEff in /proc/self/status),
//! checked before anything is loaded, so a missing one is named in one line (exit code 3)
//! instead of surfacing as a kernel error, or as processes that silently read zero.
//!
//! Whether ustat runs as uid 0 does not matter: root limited to the capabilities below works,
//! root without them does not, and neither does any user without them.

use std::fmt;

/// A capability ustat needs, with what it is needed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Creating maps and loading the eBPF programs.
    Bpf,
    /// Loading tracing programs that read user memory, and opening uprobes.
    Perfmon,
    /// Reading another user's process (`/proc/PID/maps`, `root`, `environ`), and a root
    /// process when ustat's own permitted set is smaller than the target's.
    SysPtrace,
    /// Opening a runtime's binary under a directory only its owner may search.
    DacReadSearch,
    /// Opening a binary deleted or replaced since the process mapped it (an upgrade while the
    /// service runs), through `/proc/PID/map_files`.
    CheckpointRestore,
}

/// Every capability the tracing commands (dashboard, CSV, flow, `trace`) need.
pub const TRACING: &[Capability] = &[
    Capability::Bpf,
    Capability::Perfmon,
    Capability::SysPtrace,
    Capability::DacReadSearch,
    Capability::CheckpointRestore,
];

const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
const CAP_CHECKPOINT_RESTORE: u32 = 40;

impl Capability {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bpf => "CAP_BPF",
            Self::Perfmon => "CAP_PERFMON",
            Self::SysPtrace => "CAP_SYS_PTRACE",
            Self::DacReadSearch => "CAP_DAC_READ_SEARCH",
            Self::CheckpointRestore => "CAP_CHECKPOINT_RESTORE",
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            Self::Bpf => "to load eBPF programs",
            Self::Perfmon => "to attach uprobes",
            Self::SysPtrace => "to read other users' processes",
            Self::DacReadSearch => "to open binaries in private directories",
            Self::CheckpointRestore => "to open binaries replaced since they were mapped",
        }
    }

    /// The capability bits that grant it: its own, and the older, broader one the kernel
    /// also accepts (CAP_SYS_ADMIN before CAP_BPF and CAP_PERFMON existed; CAP_DAC_OVERRIDE
    /// includes reading and searching).
    fn granted_by(self) -> &'static [u32] {
        match self {
            Self::Bpf => &[CAP_BPF, CAP_SYS_ADMIN],
            Self::Perfmon => &[CAP_PERFMON, CAP_SYS_ADMIN],
            Self::SysPtrace => &[CAP_SYS_PTRACE],
            Self::DacReadSearch => &[CAP_DAC_READ_SEARCH, CAP_DAC_OVERRIDE],
            Self::CheckpointRestore => &[CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN],
        }
    }

    fn held_in(self, effective: u64) -> bool {
        self.granted_by()
            .iter()
            .any(|&bit| effective & (1u64 << bit) != 0)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error(
        "not permitted: missing {}; run ustat as root, or grant it {}",
        describe(missing),
        names(TRACING)
    )]
    Missing { missing: Vec<Capability> },
    #[error("cannot read ustat's own capabilities from /proc/self/status")]
    Unreadable {
        #[source]
        source: procfs::ProcError,
    },
}

/// `CAP_BPF (to load eBPF programs) and CAP_PERFMON (to attach uprobes)`
fn describe(missing: &[Capability]) -> String {
    let parts: Vec<String> = missing
        .iter()
        .map(|c| format!("{} ({})", c.name(), c.purpose()))
        .collect();
    join(&parts)
}

/// `CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE`
fn names(capabilities: &[Capability]) -> String {
    let parts: Vec<String> = capabilities.iter().map(|c| c.name().to_string()).collect();
    join(&parts)
}

fn join(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The effective capability set of this process.
pub fn effective() -> Result<u64, CapabilityError> {
    procfs::process::Process::myself()
        .and_then(|me| me.status())
        .map(|status| status.capeff)
        .map_err(|source| CapabilityError::Unreadable { source })
}

/// Whether this process holds `capability` (or one that includes it).
pub fn holds(capability: Capability) -> bool {
    effective().is_ok_and(|set| capability.held_in(set))
}

/// Fails, naming every missing capability, unless this process holds all of `needed`.
pub fn require(needed: &[Capability]) -> Result<(), CapabilityError> {
    check(effective()?, needed)
}

fn check(effective: u64, needed: &[Capability]) -> Result<(), CapabilityError> {
    let missing: Vec<Capability> = needed
        .iter()
        .copied()
        .filter(|c| !c.held_in(effective))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CapabilityError::Missing { missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn bits(list: &[u32]) -> u64 {
        let mut set = 0;
        let mut i = 0;
        while i < list.len() {
            set |= 1 << list[i];
            i += 1;
        }
        set
    }

    #[test]
    fn the_five_capabilities_are_enough() {
        let set = bits(&[
            CAP_BPF,
            CAP_PERFMON,
            CAP_SYS_PTRACE,
            CAP_DAC_READ_SEARCH,
            CAP_CHECKPOINT_RESTORE,
        ]);
        assert!(check(set, TRACING).is_ok());
    }

    #[test]
    fn older_broader_capabilities_count() {
        let set = bits(&[CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_DAC_OVERRIDE]);
        assert!(
            check(set, TRACING).is_ok(),
            "CAP_SYS_ADMIN includes CAP_CHECKPOINT_RESTORE"
        );
        assert!(check(set, TRACING).is_ok());
    }

    #[test]
    fn every_missing_capability_is_named() {
        let error = check(
            bits(&[CAP_BPF, CAP_DAC_READ_SEARCH, CAP_CHECKPOINT_RESTORE]),
            TRACING,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "not permitted: missing CAP_PERFMON (to attach uprobes) and CAP_SYS_PTRACE (to read other \
             users' processes); run ustat as root, or grant it CAP_BPF, CAP_PERFMON, \
             CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH and CAP_CHECKPOINT_RESTORE"
        );
        let error = check(0, &[Capability::Bpf]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("not permitted: missing CAP_BPF (to load eBPF programs); ")
        );
    }

    #[test]
    fn this_process_has_a_readable_set() {
        assert!(effective().is_ok());
    }
}
