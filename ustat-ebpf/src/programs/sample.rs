//! The CPU sampler: a perf event per CPU (software CPU clock) runs `sample`. When the
//! interrupted thread belongs to a process in `SAMPLE_TARGETS`, it finds the thread's Python
//! thread state (the one whose `thread_id`, `pthread_self()`, is the thread's fs base) and
//! walks its frames, innermost first, and counts the stack in `SAMPLE_STACKS`. It only reads
//! the process's memory (`bpf_probe_read_user`); names are resolved in userspace.
//!
//! Each loop body branches only to leave the loop, so the verifier's walk stays linear in
//! the depth: every frame writes exactly one entry (a code address, or `SAMPLE_NATIVE`).

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    helpers::{bpf_get_current_task, bpf_probe_read_kernel, bpf_probe_read_user},
    macros::{map, perf_event},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::PerfEventContext,
};
use ustat_common::{
    MAX_SAMPLE_DEPTH, MAX_SAMPLE_THREADS, NO_OFFSET, SAMPLE_ENTRY_BIT, SAMPLE_NATIVE, SampleConfig,
    SampleKey, SampleTarget, frame_layout, sample_status,
};

use super::{accumulate, hotspot, pid_tid};

#[map]
static SAMPLE_TARGETS: HashMap<u32, SampleTarget> =
    HashMap::with_max_entries(4_096, BPF_F_NO_PREALLOC);

#[map]
static SAMPLE_STACKS: PerCpuHashMap<SampleKey, u64> =
    PerCpuHashMap::with_max_entries(65_536, BPF_F_NO_PREALLOC);

#[map]
static SAMPLE_CONFIG: Array<SampleConfig> = Array::with_max_entries(1, 0);

/// Where a key is built (it does not fit on the BPF stack).
#[map]
pub(super) static SAMPLE_SCRATCH: PerCpuArray<SampleKey> = PerCpuArray::with_max_entries(1, 0);

#[perf_event]
pub fn sample(ctx: PerfEventContext) -> u32 {
    let Some((pid, _tid)) = pid_tid() else {
        return 0;
    };
    // SAFETY: copied at once.
    let python = unsafe { SAMPLE_TARGETS.get(&pid) }.copied();
    let jvm = if python.is_none() {
        hotspot::target(pid)
    } else {
        None
    };
    let start = match (&python, &jvm) {
        (Some(target), _) => target.start,
        (None, Some(target)) => target.start,
        (None, None) => return 0,
    };
    let Some(key) = SAMPLE_SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's scratch key; no other program runs on this CPU meanwhile.
    let key = unsafe { &mut *key };
    key.pid = pid;
    key.start = start;
    key.generation = 0;
    for i in 0..MAX_SAMPLE_DEPTH {
        key.frames[i] = 0;
    }
    key.depth = 0;
    key.status = match (&python, &jvm) {
        (Some(target), _) => walk(target, key),
        (None, Some(target)) => hotspot::walk(&ctx, target, key),
        (None, None) => return 0,
    };
    accumulate(&SAMPLE_STACKS, key, |count| *count += 1);
    0
}

/// A value of type `T` at `address` in the current process; None when it cannot be read.
#[inline(always)]
pub(super) fn read<T>(address: u64) -> Option<T> {
    // SAFETY: the helper checks the user address and copies size_of::<T>() bytes.
    unsafe { bpf_probe_read_user(address as *const T) }.ok()
}

/// The current thread's fs base: its `pthread_self()`.
#[inline(always)]
pub(super) fn fs_base() -> Option<u64> {
    let offset = SAMPLE_CONFIG.get(0)?.fsbase_offset;
    if offset == 0 {
        return None;
    }
    // SAFETY: the helper returns the current task's address; it is only read through
    // bpf_probe_read_kernel, which checks it.
    let task = unsafe { bpf_get_current_task() };
    // SAFETY: as above; the offset is the field's in the running kernel (its BTF).
    unsafe { bpf_probe_read_kernel((task + offset) as *const u64) }.ok()
}

/// Fills `key.frames` from the thread's innermost frame outwards; returns the status.
#[inline(always)]
fn walk(target: &SampleTarget, key: &mut SampleKey) -> u32 {
    if target.layout == frame_layout::NONE || target.interp == 0 {
        return sample_status::UNREADABLE;
    }
    let Some(thread) = fs_base() else {
        return sample_status::NO_TASK_LAYOUT;
    };
    let Some(mut tstate) = read::<u64>(target.interp + u64::from(target.interp_threads)) else {
        return sample_status::READ_FAILED;
    };
    let mut found = 0u64;
    for _ in 0..MAX_SAMPLE_THREADS {
        if tstate == 0 {
            break;
        }
        let Some(id) = read::<u64>(tstate + u64::from(target.tstate_thread_id)) else {
            return sample_status::READ_FAILED;
        };
        if id == thread {
            found = tstate;
            break;
        }
        let Some(next) = read::<u64>(tstate + u64::from(target.tstate_next)) else {
            return sample_status::READ_FAILED;
        };
        tstate = next;
    }
    if found == 0 {
        return if tstate == 0 {
            sample_status::NO_THREAD_STATE
        } else {
            sample_status::TOO_MANY_THREADS
        };
    }
    let Some(mut frame) = read::<u64>(found + u64::from(target.tstate_frame)) else {
        return sample_status::READ_FAILED;
    };
    if target.cframe_frame != NO_OFFSET && frame != 0 {
        let Some(current) = read::<u64>(frame + u64::from(target.cframe_frame)) else {
            return sample_status::READ_FAILED;
        };
        frame = current;
    }
    if frame == 0 {
        return sample_status::NO_FRAME;
    }
    let layout = target.layout;
    let mut depth = 0usize;
    for i in 0..MAX_SAMPLE_DEPTH {
        if frame == 0 {
            break;
        }
        let Some(code) = read::<u64>(frame + u64::from(target.frame_code)) else {
            return sample_status::READ_FAILED;
        };
        let Some(owner) = read::<u8>(frame + u64::from(target.frame_owner)) else {
            return sample_status::READ_FAILED;
        };
        // Tagged references (3.14's _PyStackRef) carry flags in the low bits.
        let code = code & !7;
        let entry = if layout == frame_layout::OWNER {
            if owner == target.owner_cstack {
                SAMPLE_NATIVE
            } else {
                code
            }
        } else if layout == frame_layout::ENTRY_FLAG && owner != 0 {
            code | SAMPLE_ENTRY_BIT
        } else {
            code
        };
        key.frames[i] = entry;
        depth = i + 1;
        key.depth = depth as u32;
        let Some(previous) = read::<u64>(frame + u64::from(target.frame_previous)) else {
            return sample_status::READ_FAILED;
        };
        frame = previous;
    }
    if frame != 0 && depth == MAX_SAMPLE_DEPTH {
        return sample_status::TRUNCATED;
    }
    sample_status::OK
}
