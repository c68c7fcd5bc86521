//! The CPU sampler's kernel side, from userspace: a software CPU-clock perf event on every
//! online CPU linked to the `sample` program, the offset of the fs base in the kernel's
//! `task_struct` (from its BTF), the targets map, and reading the counted stacks.

use std::{
    collections::{HashMap, HashSet},
    io,
    os::fd::{FromRawFd as _, OwnedFd},
    path::Path,
};

use aya_obj::generated::{perf_event_attr, perf_sw_ids, perf_type_id};
use ustat_common::{HotspotTarget, SampleConfig, SampleKey, SampleTarget, maps as map_names};

use super::{
    LoadError, Program, Tracer, attach,
    btf::{Btf, BtfError},
    maps,
};

/// Why the sampler could not start.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    #[error("cannot read the kernel's BTF (/sys/kernel/btf/vmlinux) for task_struct's layout")]
    Btf {
        #[source]
        source: BtfError,
    },
    #[error("the kernel's BTF has no {what}")]
    NoField { what: &'static str },
    #[error("cannot list the online CPUs")]
    Cpus {
        #[source]
        source: io::Error,
    },
    #[error("the kernel refused a CPU clock perf event on CPU {cpu}")]
    PerfEvent {
        cpu: u32,
        #[source]
        source: io::Error,
    },
    #[error("linking the sampler to CPU {cpu}'s clock failed")]
    Link {
        cpu: u32,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Byte offset of `thread.fsbase` in `task_struct`, from the kernel's BTF.
pub fn fsbase_offset() -> Result<u64, SamplerError> {
    let btf_error = |source| SamplerError::Btf { source };
    let btf = Btf::from_file(Path::new("/sys/kernel/btf/vmlinux")).map_err(btf_error)?;
    let task = btf
        .struct_by_name("task_struct")
        .map_err(btf_error)?
        .ok_or(SamplerError::NoField {
            what: "task_struct",
        })?;
    let thread = btf
        .member(task, "thread")
        .map_err(btf_error)?
        .ok_or(SamplerError::NoField {
            what: "task_struct.thread",
        })?;
    let fsbase = btf
        .member(thread.type_id, "fsbase")
        .map_err(btf_error)?
        .ok_or(SamplerError::NoField {
            what: "task_struct.thread.fsbase",
        })?;
    Ok((u64::from(thread.bit_offset) + u64::from(fsbase.bit_offset)) / 8)
}

/// The online CPUs, from `/sys/devices/system/cpu/online` (`0-3,5`).
fn online_cpus() -> io::Result<Vec<u32>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "unreadable CPU list");
    let mut cpus = Vec::new();
    for range in text.trim().split(',').filter(|r| !r.is_empty()) {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let first: u32 = first.parse().map_err(|_| bad())?;
        let last: u32 = last.parse().map_err(|_| bad())?;
        cpus.extend(first..=last);
    }
    Ok(cpus)
}

/// A software CPU-clock event on `cpu` for every task, `hz` times a second.
fn open_cpu_clock(cpu: u32, hz: u32) -> io::Result<OwnedFd> {
    // SAFETY: perf_event_attr is plain data; all-zero is its documented default.
    let mut attr: perf_event_attr = unsafe { std::mem::zeroed() };
    attr.size = size_of::<perf_event_attr>() as u32;
    attr.type_ = perf_type_id::PERF_TYPE_SOFTWARE as u32;
    attr.config = perf_sw_ids::PERF_COUNT_SW_CPU_CLOCK as u64;
    attr.__bindgen_anon_1.sample_freq = u64::from(hz);
    attr.set_freq(1);
    // SAFETY: attr is initialised and outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const perf_event_attr,
            -1,
            cpu as libc::c_int,
            -1,
            attach::PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

impl Tracer {
    /// Starts sampling every online CPU `hz` times a second. Nothing is walked until a
    /// process is made a target (`set_sample_target`).
    pub fn start_sampling(&mut self, hz: u32) -> Result<(), SamplerError> {
        let config = SampleConfig {
            fsbase_offset: fsbase_offset()?,
        };
        maps::set(&mut self.loaded, map_names::SAMPLE_CONFIG, 0, config)?;
        let cpus = online_cpus().map_err(|source| SamplerError::Cpus { source })?;
        let mut links = Vec::with_capacity(cpus.len() * 2);
        for cpu in cpus {
            let event = open_cpu_clock(cpu, hz)
                .map_err(|source| SamplerError::PerfEvent { cpu, source })?;
            let program = self.loaded.program(Program::Sample)?;
            let link = attach::link_create(program, &event, 0)
                .map_err(|source| SamplerError::Link { cpu, source })?;
            links.push(link);
            links.push(event);
        }
        self.sample_links = links;
        Ok(())
    }

    /// Makes `pid` (in ustat's PID namespace) a target, or changes its layout.
    pub fn set_sample_target(&mut self, pid: u32, target: &SampleTarget) -> Result<(), LoadError> {
        maps::hash_map::<u32, SampleTarget>(&mut self.loaded, map_names::SAMPLE_TARGETS)?
            .insert(pid, target, 0)
            .map_err(|e| maps::failed(map_names::SAMPLE_TARGETS, e))
    }

    /// Makes the JVM `pid` a target of the sampler's HotSpot walker.
    pub fn set_hotspot_target(
        &mut self,
        pid: u32,
        target: &HotspotTarget,
    ) -> Result<(), LoadError> {
        maps::hash_map::<u32, HotspotTarget>(&mut self.loaded, map_names::HOTSPOT_TARGETS)?
            .insert(pid, target, 0)
            .map_err(|e| maps::failed(map_names::HOTSPOT_TARGETS, e))
    }

    /// How many classes the JVM `pid` unloaded since its first probe hit, as the sampler
    /// tags its samples (`SampleKey::generation`).
    pub fn unloads(&self, pid: u32) -> Result<u32, LoadError> {
        Ok(
            maps::hash_value::<u32, u64>(&self.loaded, map_names::UNLOADS, &pid)?
                .map_or(0, |n| n as u32),
        )
    }

    /// Stops walking each (pid, start) whose target is still that process (a new process
    /// may have its pid by now), and forgets those processes' stacks, in one pass over them.
    pub fn forget_sampled(&mut self, gone: &HashSet<(u32, u64)>) -> Result<(), LoadError> {
        if gone.is_empty() {
            return Ok(());
        }
        let mut targets =
            maps::hash_map::<u32, SampleTarget>(&mut self.loaded, map_names::SAMPLE_TARGETS)?;
        for &(pid, start) in gone {
            if targets.get(&pid, 0).is_ok_and(|t| t.start == start) {
                // Removed meanwhile: gone either way.
                let _ = targets.remove(&pid);
            }
        }
        let mut jvms =
            maps::hash_map::<u32, HotspotTarget>(&mut self.loaded, map_names::HOTSPOT_TARGETS)?;
        let mut unloads = Vec::new();
        for &(pid, start) in gone {
            if jvms.get(&pid, 0).is_ok_and(|t| t.start == start) {
                let _ = jvms.remove(&pid);
                unloads.push(pid);
            }
        }
        let mut unload_counts = maps::hash_map::<u32, u64>(&mut self.loaded, map_names::UNLOADS)?;
        for pid in unloads {
            let _ = unload_counts.remove(&pid);
        }
        maps::remove_per_cpu_where::<SampleKey, u64>(
            &mut self.loaded,
            map_names::SAMPLE_STACKS,
            |key| gone.contains(&(key.pid, key.start)),
        )
    }

    /// Every counted stack, summed over CPUs, since its process became a target.
    pub fn sample_stacks(&self) -> Result<HashMap<SampleKey, u64>, LoadError> {
        maps::read_per_cpu(&self.loaded, map_names::SAMPLE_STACKS, |sum, v| *sum += *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernel_says_where_a_task_keeps_its_fs_base() {
        // task_struct is large; its thread_struct sits near the end, fsbase inside it.
        let offset = fsbase_offset().expect("the kernel's BTF has task_struct.thread.fsbase");
        assert!(offset > 1000 && offset < 16_384, "{offset}");
        // On the kernel this was written on, btf-rs (which this reader replaced) and a
        // separate walk of the raw file both said 3128.
        const MEASURED_ON: &str = "6.18.44-fc-v657";
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("release");
        if release.trim() == MEASURED_ON {
            assert_eq!(offset, 3128);
        } else {
            eprintln!(
                "kernel {} is not {MEASURED_ON}: exact offset not checked",
                release.trim()
            );
        }
        assert!(online_cpus().expect("online CPUs").contains(&0));
    }
}
