//! Which PID namespace ustat runs in, for the programs: the kernel reports the root
//! namespace's ids, but inside a container or `unshare --pid` ustat's `/proc`, its `-p` and
//! the processes it finds use the namespace's own. The programs translate with
//! `bpf_get_ns_current_pid_tgid`, given the namespace's device and inode.

use std::{io, os::unix::fs::MetadataExt as _};

use ustat_common::{PidNamespace, maps};

use super::{LoadError, load::Loaded};

/// The inode of the root PID namespace (`PROC_PID_INIT_INO`, fixed in the kernel).
const ROOT_NAMESPACE_INODE: u64 = 0xEFFF_FFFC;

/// ustat's PID namespace, or `None` in the root namespace (no translation needed).
pub fn own() -> io::Result<Option<PidNamespace>> {
    let metadata = std::fs::metadata("/proc/self/ns/pid")?;
    if metadata.ino() == ROOT_NAMESPACE_INODE {
        return Ok(None);
    }
    Ok(Some(PidNamespace {
        dev: kernel_dev(metadata.dev()),
        ino: metadata.ino(),
    }))
}

/// Whether `pid` runs in a PID namespace nested inside ustat's (not the root one): the
/// helper gives ids only in ustat's own, so such a process's events cannot be attributed.
pub fn nested(pid: u32) -> bool {
    let Ok(Some(own)) = own() else {
        return false;
    };
    std::fs::metadata(format!("/proc/{pid}/ns/pid")).is_ok_and(|m| m.ino() != own.ino)
}

/// A device number as stat(2) encodes it, in the kernel's internal encoding
/// (`MKDEV(major, minor)` = major << 20 | minor), which the helper compares.
fn kernel_dev(user: u64) -> u64 {
    let major = u64::from(libc::major(user));
    let minor = u64::from(libc::minor(user));
    (major << 20) | minor
}

/// Tells the programs which namespace's ids to report.
pub fn configure(loaded: &mut Loaded) -> Result<(), LoadError> {
    let Some(namespace) = own().map_err(|e| LoadError::Kernel {
        what: "PID namespace",
        detail: format!("cannot stat /proc/self/ns/pid: {e}"),
    })?
    else {
        return Ok(());
    };
    super::maps::set(loaded, maps::PID_NAMESPACE, 0, namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_in_the_kernels_encoding() {
        assert_eq!(kernel_dev(libc::makedev(0, 4)), 4);
        assert_eq!(kernel_dev(libc::makedev(0, 300)), 300);
        assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
    }

    #[test]
    fn the_tests_run_in_the_root_namespace() {
        assert_eq!(own().unwrap(), None);
    }
}
