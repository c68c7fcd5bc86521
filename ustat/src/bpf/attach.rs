//! The one place that attaches programs to probe points.
//!
//! aya 0.14 cannot pass a USDT semaphore (`ref_ctr_offset`), so ustat attaches itself, in one
//! of two ways. On kernels with `uprobe_multi` (6.6+), one `BPF_LINK_CREATE` link per program
//! and file carries every site's offset, semaphore offset and cookie (the spec id); it
//! detaches with one RCU grace period. Elsewhere, each site is a uprobe perf event opened with
//! the semaphore's file offset in `config[63:32]`, linked to the program with
//! `BPF_LINK_CREATE` and the cookie.
//! The kernel then raises the semaphore in every process that maps the file (also ones started
//! later) and lowers it when the event is closed, even if ustat is killed: ustat never writes
//! into a traced process.

use std::{
    ffi::CString,
    fs, io,
    os::{
        fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
    sync::Arc,
};

use aya_obj::generated::{bpf_attach_type, bpf_cmd, perf_event_attr};

use super::sys;
use crate::binary::Binary;

/// Which processes an attachment covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every process that maps the file, now or later.
    AllProcesses,
    /// One process (all of its threads).
    Process(u32),
}

/// Where to attach: an instruction in a file, by file offset.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePoint {
    /// The file, open: the kernel attaches to it through `/proc/self/fd/N`, so it attaches
    /// to exactly the file that was parsed. Its shown path is for messages only.
    pub binary: Arc<Binary>,
    pub offset: u64,
    /// File offset of the USDT semaphore; the kernel refuses a wrong one (see `AttachError`).
    pub semaphore_offset: Option<u64>,
    /// Fire when the function returns instead of at the instruction.
    pub retprobe: bool,
}

/// An attached program: one site through a perf event, or several through a `uprobe_multi`
/// link. Dropping it detaches the program and lowers the semaphores.
#[derive(Debug)]
pub struct Link {
    // Field order is drop order: the link goes before the event it holds.
    _link: OwnedFd,
    _event: Option<OwnedFd>,
    sites: usize,
}

impl Link {
    /// How many probe sites it covers.
    pub fn sites(&self) -> usize {
        self.sites
    }
}

/// The kernel's uprobe PMU: its perf type and the config bit that makes a return probe.
#[derive(Debug, Clone, Copy)]
pub struct UprobePmu {
    perf_type: u32,
    retprobe_bit: u32,
}

const PMU_DIR: &str = "/sys/bus/event_source/devices/uprobe";

impl UprobePmu {
    pub fn detect() -> io::Result<Self> {
        let read = |file: &str| fs::read_to_string(Path::new(PMU_DIR).join(file));
        let perf_type = read("type")?
            .trim()
            .parse()
            .map_err(|_| io::Error::other(format!("{PMU_DIR}/type is not a number")))?;
        // "config:0" on every kernel so far; read it rather than assume.
        let retprobe_bit = read("format/retprobe")?
            .trim()
            .strip_prefix("config:")
            .and_then(|bit| bit.parse().ok())
            .unwrap_or(0);
        Ok(Self {
            perf_type,
            retprobe_bit,
        })
    }
}

/// What went wrong, in the words a user needs.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("{0}")]
    Path(String),
    #[error("process {0} does not exist (any more)")]
    NoProcess(u32),
    #[error(
        "the kernel refused a probe here with this semaphore (EINVAL): another tracer probably holds \
         this site with a different semaphore offset"
    )]
    SemaphoreConflict,
    #[error(
        "the kernel refused the probe point (EINVAL): the offset is not an instruction it can probe"
    )]
    BadPoint,
    #[error("not permitted: attaching needs root (CAP_BPF and CAP_PERFMON)")]
    Permission,
    #[error("{what} failed")]
    Os {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Attaches the loaded program `program` at `point`, for `scope`, with `cookie` for
/// `bpf_get_attach_cookie`.
pub fn attach(
    pmu: UprobePmu,
    program: BorrowedFd<'_>,
    point: &ProbePoint,
    scope: Scope,
    cookie: u64,
) -> Result<Link, AttachError> {
    let path = kernel_path(point)?;
    let event = open_uprobe_event(pmu, &path, point, scope)
        .map_err(|e| classify(e, point, scope, point.semaphore_offset.is_some()))?;
    let link = link_create(program, &event, cookie).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => AttachError::Permission,
        _ => AttachError::Os {
            what: "linking the program to the probe (BPF_LINK_CREATE)",
            source: e,
        },
    })?;
    Ok(Link {
        _link: link,
        _event: Some(event),
        sites: 1,
    })
}

/// `union bpf_attr`'s `link_create` member for a `uprobe_multi` link.
#[repr(C)]
struct UprobeMultiAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    path: u64,
    offsets: u64,
    ref_ctr_offsets: u64,
    cookies: u64,
    cnt: u32,
    multi_flags: u32,
    pid: u32,
    _pad: u32,
}

/// `BPF_F_UPROBE_MULTI_RETURN`
const UPROBE_MULTI_RETURN: u32 = 1;

/// Attaches `program` at every offset in `point`'s file, each with its semaphore offset (0 for
/// none) and cookie, in one link (kernel 6.6+). The program must have been loaded for it.
pub fn attach_multi(
    program: BorrowedFd<'_>,
    point: &ProbePoint,
    offsets: &[u64],
    semaphores: &[u64],
    cookies: &[u64],
    scope: Scope,
) -> Result<Link, AttachError> {
    let path = kernel_path(point)?;
    let attr = UprobeMultiAttr {
        prog_fd: program.as_raw_fd() as u32,
        target_fd: 0,
        attach_type: bpf_attach_type::BPF_TRACE_UPROBE_MULTI as u32,
        flags: 0,
        path: path.as_ptr() as u64,
        offsets: offsets.as_ptr() as u64,
        ref_ctr_offsets: semaphores.as_ptr() as u64,
        cookies: cookies.as_ptr() as u64,
        cnt: offsets.len() as u32,
        multi_flags: if point.retprobe {
            UPROBE_MULTI_RETURN
        } else {
            0
        },
        pid: match scope {
            Scope::AllProcesses => 0,
            Scope::Process(pid) => pid,
        },
        _pad: 0,
    };
    // The arrays and the path attr points to outlive the call.
    let link = sys::bpf_fd(bpf_cmd::BPF_LINK_CREATE, &attr).map_err(|e| {
        let semaphore = semaphores.iter().any(|&s| s != 0);
        classify(e, point, scope, semaphore)
    })?;
    Ok(Link {
        _link: link,
        _event: None,
        sites: offsets.len(),
    })
}

/// The path the kernel resolves to the point's open file.
fn kernel_path(point: &ProbePoint) -> Result<CString, AttachError> {
    CString::new(point.binary.kernel_path().as_os_str().as_bytes()).map_err(|_| {
        AttachError::Path(format!(
            "{} contains a NUL byte",
            point.binary.shown().display()
        ))
    })
}

/// The reason for an attach failure, in the user's words.
fn classify(e: io::Error, point: &ProbePoint, scope: Scope, semaphore: bool) -> AttachError {
    match (e.raw_os_error(), scope) {
        (Some(libc::ENOENT), _) => {
            AttachError::Path(format!("{} does not exist", point.binary.shown().display()))
        }
        (Some(libc::ESRCH), Scope::Process(pid)) => AttachError::NoProcess(pid),
        (Some(libc::EINVAL), _) if semaphore => AttachError::SemaphoreConflict,
        (Some(libc::EINVAL), _) => AttachError::BadPoint,
        (Some(libc::EPERM | libc::EACCES), _) => AttachError::Permission,
        _ => AttachError::Os {
            what: "attaching the uprobes (BPF_LINK_CREATE)",
            source: e,
        },
    }
}

fn open_uprobe_event(
    pmu: UprobePmu,
    path: &CString,
    point: &ProbePoint,
    scope: Scope,
) -> io::Result<OwnedFd> {
    // SAFETY: perf_event_attr is plain data; all-zero is its documented default.
    let mut attr: perf_event_attr = unsafe { std::mem::zeroed() };
    attr.size = size_of::<perf_event_attr>() as u32;
    attr.type_ = pmu.perf_type;
    attr.config = point.semaphore_offset.unwrap_or(0) << 32;
    if point.retprobe {
        attr.config |= 1 << pmu.retprobe_bit;
    }
    attr.__bindgen_anon_3.config1 = path.as_ptr() as u64;
    attr.__bindgen_anon_4.config2 = point.offset;
    // A uprobe event for all processes is opened on one CPU; it still fires on every CPU.
    let (pid, cpu) = match scope {
        Scope::AllProcesses => (-1, 0),
        Scope::Process(pid) => (pid as libc::pid_t, -1),
    };
    // SAFETY: attr is initialised and outlives the call, as does the path it points to.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const perf_event_attr,
            pid,
            cpu,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// From `<linux/perf_event.h>`; not in the libc crate.
pub(super) const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// `union bpf_attr`'s `link_create` member, for a perf event target. The kernel wants the
/// bytes it does not know to be zero, and the size we pass covers exactly these fields.
#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    bpf_cookie: u64,
}

pub(super) fn link_create(
    program: BorrowedFd<'_>,
    event: &OwnedFd,
    cookie: u64,
) -> io::Result<OwnedFd> {
    let attr = LinkCreateAttr {
        prog_fd: program.as_raw_fd() as u32,
        target_fd: event.as_raw_fd() as u32,
        attach_type: bpf_attach_type::BPF_PERF_EVENT as u32,
        flags: 0,
        bpf_cookie: cookie,
    };
    sys::bpf_fd(bpf_cmd::BPF_LINK_CREATE, &attr)
}

/// `union bpf_attr`'s `raw_tracepoint` member.
#[repr(C)]
struct RawTracepointAttr {
    name: u64,
    prog_fd: u32,
    _pad: u32,
}

/// Attaches the loaded raw tracepoint program `program` to the kernel tracepoint `name`
/// (`sched_process_exit`), or without a name a tracing program to the kernel function it
/// was loaded for (fentry); it detaches when the link is dropped.
pub fn attach_raw_tracepoint(
    program: BorrowedFd<'_>,
    name: Option<&std::ffi::CStr>,
) -> Result<Link, AttachError> {
    let attr = RawTracepointAttr {
        name: name.map_or(0, |name| name.as_ptr() as u64),
        prog_fd: program.as_raw_fd() as u32,
        _pad: 0,
    };
    let link =
        sys::bpf_fd(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &attr).map_err(|source| AttachError::Os {
            what: "attaching to a kernel tracepoint",
            source,
        })?;
    Ok(Link {
        _link: link,
        _event: None,
        sites: 0,
    })
}
