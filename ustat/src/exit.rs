//! Exit codes, and which errors map to which. Documented in `ustat --help` and the README.

use crate::{
    binary::OpenError,
    bpf::{AttachError, LinkError, LoadError, ProbeAttachError},
    capabilities::CapabilityError,
    export::CreateError,
    process::ProcessError,
    source::{FlowError, SelectionError},
    target::TargetError,
    trace::resolve::ResolveError,
    usdt::UsdtError,
};

/// Success.
pub const OK: u8 = 0;
/// Something failed at run time (the kernel refused a probe, an output file could not be written).
pub const FAILURE: u8 = 1;
/// The command line is wrong.
pub const USAGE: u8 = 2;
/// Not permitted: ustat lacks a capability it needs (see `capabilities`).
pub const PRIVILEGE: u8 = 3;
/// The target cannot be traced: no such process or file, not an x86-64 ELF binary, no probes.
pub const TARGET: u8 = 4;

/// The text for `--help`.
pub const TABLE: &str = "\
Exit codes:
  0  success
  1  failure at run time (for example the kernel refused a probe)
  2  usage error (bad option or value, an existing output file)
  3  not permitted (ustat lacks a capability it needs: CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE,
     CAP_DAC_READ_SEARCH, CAP_CHECKPOINT_RESTORE; root has them all)
  4  bad target (no such process or file, not an x86-64 ELF binary, no probes)";

pub use crate::message::UsageError;

/// The exit code for an error: that of the first cause in its chain that has one.
pub fn code(error: &anyhow::Error) -> u8 {
    error.chain().find_map(code_of).unwrap_or(FAILURE)
}

fn code_of(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if cause.is::<UsageError>() {
        return Some(USAGE);
    }
    if cause.is::<CapabilityError>() {
        return Some(PRIVILEGE);
    }
    if let Some(e) = cause.downcast_ref::<LoadError>() {
        return match e {
            LoadError::NotPermitted(_) => Some(PRIVILEGE),
            LoadError::Setting(_) => Some(USAGE),
            _ => None,
        };
    }
    if let Some(e) = cause.downcast_ref::<ProbeAttachError>() {
        // A program that did not load is told by its `LoadError`, further down the chain.
        return match &e.source {
            LinkError::Attach {
                source: AttachError::Permission,
            } => Some(PRIVILEGE),
            LinkError::Attach {
                source: AttachError::NoProcess(_),
            } => Some(TARGET),
            _ => None,
        };
    }
    if let Some(e) = cause.downcast_ref::<CreateError>() {
        return match e {
            CreateError::Exists { .. }
            | CreateError::IsDirectory { .. }
            | CreateError::NoDirectory { .. } => Some(USAGE),
            CreateError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Some(PRIVILEGE)
            }
            CreateError::Io { .. } => None,
        };
    }
    if let Some(e) = cause.downcast_ref::<SelectionError>() {
        return Some(match e {
            SelectionError::Process(e) => process_code(e),
            SelectionError::NotARuntime { .. } | SelectionError::NestedNamespace { .. } => TARGET,
        });
    }
    if let Some(e) = cause.downcast_ref::<ResolveError>() {
        return Some(match e {
            ResolveError::Open(e) => open_code(e),
            ResolveError::Process(e) => process_code(e),
            ResolveError::NoProcess { .. } => USAGE,
            _ => TARGET,
        });
    }
    if cause.is::<FlowError>() {
        return Some(TARGET);
    }
    if let Some(e) = cause.downcast_ref::<TargetError>() {
        return Some(target_code(e));
    }
    if let Some(e) = cause.downcast_ref::<UsdtError>() {
        return Some(usdt_code(e));
    }
    if let Some(e) = cause.downcast_ref::<ProcessError>() {
        return Some(process_code(e));
    }
    cause.downcast_ref::<OpenError>().map(open_code)
}

fn target_code(e: &TargetError) -> u8 {
    match e {
        TargetError::Process(e) => process_code(e),
        TargetError::Usdt(e) => usdt_code(e),
        TargetError::NoProbesInProcess(_)
        | TargetError::NoSuchProbe { .. }
        | TargetError::NotMapped { .. } => TARGET,
    }
}

fn usdt_code(e: &UsdtError) -> u8 {
    match e {
        UsdtError::Open(e) => open_code(e),
        UsdtError::NoProbes { .. } | UsdtError::BadNotes { .. } => TARGET,
    }
}

fn process_code(e: &ProcessError) -> u8 {
    match e {
        ProcessError::Permission { .. } => PRIVILEGE,
        _ => TARGET,
    }
}

fn open_code(e: &OpenError) -> u8 {
    match e {
        OpenError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            PRIVILEGE
        }
        _ => TARGET,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_their_documented_codes() {
        let not_permitted = anyhow::Error::from(CapabilityError::Missing {
            missing: vec![crate::capabilities::Capability::Bpf],
        });
        assert_eq!(code(&not_permitted), PRIVILEGE);
        let gone = anyhow::Error::from(ProcessError::NotFound(7)).context("listing probes");
        assert_eq!(code(&gone), TARGET);
        let usage = anyhow::Error::from(UsageError("no probe matches `x`".into()));
        assert_eq!(code(&usage), USAGE);
        let no_probes = anyhow::Error::from(TargetError::Usdt(UsdtError::NoProbes {
            path: "/bin/true".into(),
        }));
        assert_eq!(code(&no_probes), TARGET);
        assert_eq!(code(&anyhow::anyhow!("disk full")), FAILURE);
    }

    #[test]
    fn a_program_that_did_not_load_is_told_by_its_load_error() {
        let attach = |source: LinkError| {
            anyhow::Error::from(ProbeAttachError {
                probe: "hotspot:gc__begin".into(),
                path: "/x/libjvm.so".into(),
                source,
            })
        };
        let not_permitted = attach(
            LoadError::NotPermitted(CapabilityError::Missing {
                missing: vec![crate::capabilities::Capability::Bpf],
            })
            .into(),
        );
        assert_eq!(code(&not_permitted), PRIVILEGE);
        let refused = attach(
            LoadError::Kernel {
                what: "program",
                detail: "span_begin: invalid".into(),
            }
            .into(),
        );
        assert_eq!(code(&refused), FAILURE);
        assert_eq!(
            format!("{refused:#}"),
            "cannot attach hotspot:gc__begin in /x/libjvm.so: loading the program failed: \
             the kernel refused ustat's eBPF program: span_begin: invalid"
        );
        let gone = attach(AttachError::NoProcess(9).into());
        assert_eq!(code(&gone), TARGET);
    }
}
