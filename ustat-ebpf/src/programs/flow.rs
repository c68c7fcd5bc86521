//! `flow_entry` / `flow_return`: each thread's shadow stack of method calls, kept in the
//! kernel, gives every call its exact duration and self time (correct under recursion, and
//! under exceptions that unwind frames without a return probe); per-method totals, duration
//! histograms and call-path counts aggregate in maps. While someone watches the flow, entries
//! and returns also go to the ring buffer, filtered here by name prefix so filtered calls
//! cost a map lookup. A full ring buffer is counted, never waited on.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    helpers::{
        bpf_get_smp_processor_id, bpf_ktime_get_ns,
        generated::{bpf_probe_read_user, bpf_probe_read_user_str},
    },
    macros::{map, uprobe},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap},
    programs::ProbeContext,
};
use ustat_common::{
    CountKey, EventHeader, FlowConfig, FlowEvent, Frame, HistKey, KEY_SLOTS, MAX_STACK,
    MethodTotals, PREFIX_LEN, PathTotals, ProbeSpec, ProcessKey, ThreadStack, category, event_kind,
    flow_kind, hist_bucket, key_kind, lost, method_hash, path_hash,
};

use super::{
    EVENTS, accumulate, count_lost, current_process, get_or_create, key_value, optional_arg,
    spec_of,
};

#[map]
pub(super) static STACKS: HashMap<u32, ThreadStack> =
    HashMap::with_max_entries(16_384, BPF_F_NO_PREALLOC);

/// A zeroed stack to insert from (a `ThreadStack` does not fit on the BPF stack).
#[map]
static EMPTY_STACK: PerCpuArray<ThreadStack> = PerCpuArray::with_max_entries(1, 0);

/// Room for the methods of a big JVM (100k and more).
#[map]
static METHODS: PerCpuHashMap<CountKey, MethodTotals> =
    PerCpuHashMap::with_max_entries(262_144, BPF_F_NO_PREALLOC);

/// Method durations: their own map, so methods never crowd GC pauses out of `SPAN_HIST`
/// (nor make reading it slow).
#[map]
static METHOD_HIST: PerCpuHashMap<HistKey, u64> =
    PerCpuHashMap::with_max_entries(1 << 20, BPF_F_NO_PREALLOC);

#[map]
static PATHS: PerCpuHashMap<CountKey, PathTotals> =
    PerCpuHashMap::with_max_entries(262_144, BPF_F_NO_PREALLOC);

#[map]
static FLOW_CONFIG: Array<FlowConfig> = Array::with_max_entries(1, 0);

#[map]
static FLOW_PASS: LruHashMap<CountKey, u32> = LruHashMap::with_max_entries(8_192, 0);

const _: () = assert!(MAX_STACK.is_power_of_two());

/// Frame `index` (< MAX_STACK) of a stack. The mask keeps the index in range in a way the
/// verifier can see; the volatile read stops LLVM from proving the mask away and folding
/// `depth - 1` into a negative offset, which the verifier refuses.
#[inline(always)]
fn frame(stack: &mut ThreadStack, index: usize) -> &mut Frame {
    // SAFETY: reads a local.
    let index = unsafe { core::ptr::read_volatile(&index) };
    &mut stack.frames[index & (MAX_STACK - 1)]
}

/// Frames a return may unwind at once (calls an exception ended without a return probe).
const MAX_UNWIND: usize = 1;

/// The method's identity: the hash of its key values (name pointers, line).
#[inline(always)]
fn method_of(ctx: &ProbeContext, spec: &ProbeSpec) -> u64 {
    let mut keys = [0u64; KEY_SLOTS];
    for slot in 0..KEY_SLOTS {
        let k = &spec.keys[slot];
        if k.kind != key_kind::NONE {
            keys[slot] = key_value(ctx, spec, k);
        }
    }
    method_hash(&keys)
}

/// Does the name in key slot `slot` start with `prefix`?
#[inline(always)]
fn starts_with(
    ctx: &ProbeContext,
    spec: &ProbeSpec,
    slot: usize,
    prefix: &[u8; PREFIX_LEN],
    len: u32,
) -> bool {
    if len == 0 {
        return true;
    }
    let len = if len as usize > PREFIX_LEN {
        PREFIX_LEN
    } else {
        len as usize
    };
    let k = &spec.keys[slot];
    let src = optional_arg(ctx, spec, k.arg) as *const core::ffi::c_void;
    let mut name = [0u8; PREFIX_LEN];
    // SAFETY: the helpers check the user address; `name` is PREFIX_LEN bytes.
    let available = unsafe {
        match k.kind {
            key_kind::PTR_LEN => {
                let have = optional_arg(ctx, spec, k.len_arg) as i64;
                if have < len as i64
                    || bpf_probe_read_user(name.as_mut_ptr().cast(), PREFIX_LEN as u32, src) != 0
                {
                    return false;
                }
                len
            }
            key_kind::CSTR | key_kind::CSTR_TEXT => {
                let n = bpf_probe_read_user_str(name.as_mut_ptr().cast(), PREFIX_LEN as u32, src);
                if n <= 0 {
                    return false;
                }
                n as usize - 1
            }
            _ => return false,
        }
    };
    if available < len {
        return false;
    }
    for i in 0..PREFIX_LEN {
        if i >= len {
            break;
        }
        if name[i] != prefix[i] {
            return false;
        }
    }
    true
}

/// The filter's cached verdict on a method, if it has one for the current filter.
#[inline(always)]
fn cached_pass(config: &FlowConfig, process: ProcessKey, method: u64) -> Option<bool> {
    if config.class_len == 0 && config.method_len == 0 {
        return Some(true);
    }
    let key = CountKey {
        pid: process.pid,
        category: category::METHOD_TIME,
        subkey: method,
        epoch: process.epoch,
    };
    // SAFETY: copied at once.
    let cached = *unsafe { FLOW_PASS.get(&key) }?;
    (cached >> 1 == config.generation).then_some(cached & 1 == 1)
}

/// Whether the method's events go out: the filter result is cached per method and filter
/// generation, so names are read once. `spec` must be the probe of this very method.
#[inline(always)]
fn passes(
    ctx: &ProbeContext,
    spec: &ProbeSpec,
    config: &FlowConfig,
    process: ProcessKey,
    method: u64,
) -> bool {
    if let Some(pass) = cached_pass(config, process, method) {
        return pass;
    }
    let key = CountKey {
        pid: process.pid,
        category: category::METHOD_TIME,
        subkey: method,
        epoch: process.epoch,
    };
    let pass = starts_with(ctx, spec, 0, &config.class_prefix, config.class_len)
        && starts_with(ctx, spec, 1, &config.method_prefix, config.method_len);
    let _ = FLOW_PASS.insert(&key, &((config.generation << 1) | u32::from(pass)), 0);
    pass
}

#[inline(always)]
fn send(kind: u32, pid: u32, tid: u32, now: u64, depth: u32, method: u64, duration_ns: u64) {
    let Some(mut entry) = EVENTS.reserve::<FlowEvent>(0) else {
        count_lost(lost::RING_FULL);
        return;
    };
    entry.write(FlowEvent {
        header: EventHeader {
            kind: event_kind::FLOW,
            pid,
            tid,
            // SAFETY: plain helper.
            cpu: unsafe { bpf_get_smp_processor_id() },
            ts_ns: now,
        },
        kind,
        depth,
        method,
        duration_ns,
    });
    entry.submit(0);
}

#[uprobe]
pub fn flow_entry(ctx: ProbeContext) -> u32 {
    // SAFETY: plain helper.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(spec) = spec_of(&ctx) else { return 0 };
    let Some((process, tid)) = current_process(spec) else {
        return 0;
    };
    let pid = process.pid;
    let method = method_of(&ctx, spec);
    let Some(stack) = get_or_create(&STACKS, &EMPTY_STACK, &tid, |empty| {
        empty.depth = 0;
        empty.pid = pid;
    }) else {
        return 0;
    };
    // SAFETY: the thread's own map value; only this thread runs its probes.
    let stack = unsafe { &mut *stack };
    let depth = stack.depth as usize;
    if depth < MAX_STACK {
        let parent = if depth > 0 {
            frame(stack, depth - 1).path
        } else {
            0
        };
        let mut nested = 0;
        for i in 0..MAX_STACK {
            if i >= depth {
                break;
            }
            if frame(stack, i).method == method {
                nested = 1;
                break;
            }
        }
        *frame(stack, depth) = Frame {
            method,
            start_ns: now,
            child_ns: 0,
            path: path_hash(parent, method),
            nested,
        };
    } else {
        count_lost(lost::TOO_DEEP);
    }
    stack.depth += 1;
    if let Some(config) = FLOW_CONFIG.get(0)
        && config.events != 0
        && passes(&ctx, spec, config, process, method)
    {
        send(flow_kind::ENTRY, pid, tid, now, depth as u32, method, 0);
    }
    0
}

/// Ends the call at `depth` (the top of the stack): its totals, its duration histogram, its
/// path, and its parent's child time.
#[inline(always)]
fn close(stack: &mut ThreadStack, depth: usize, now: u64, process: ProcessKey) -> (u64, u64) {
    if depth >= MAX_STACK {
        return (0, 0);
    }
    let call = *frame(stack, depth);
    let duration = now.saturating_sub(call.start_ns);
    let own = duration.saturating_sub(call.child_ns);
    let mut parent_path = 0;
    if depth > 0 {
        let parent = frame(stack, depth - 1);
        parent.child_ns += duration;
        parent_path = parent.path;
    }
    let total = if call.nested != 0 { 0 } else { duration };
    let key = CountKey {
        pid: process.pid,
        category: category::METHOD_TIME,
        subkey: call.method,
        epoch: process.epoch,
    };
    accumulate(&METHODS, &key, |t: &mut MethodTotals| {
        t.calls += 1;
        t.total_ns += total;
        t.self_ns += own;
        t.sum_ns += duration;
    });
    let hist = HistKey {
        pid: process.pid,
        category: category::METHOD_TIME,
        subkey: call.method,
        bucket: hist_bucket(duration),
        epoch: process.epoch,
    };
    accumulate(&METHOD_HIST, &hist, |n| *n += 1);
    let path = CountKey {
        pid: process.pid,
        category: category::CALL_PATH,
        subkey: call.path,
        epoch: process.epoch,
    };
    accumulate(&PATHS, &path, |p: &mut PathTotals| {
        p.calls += 1;
        p.self_ns += own;
        // Every CPU's copy names the path's parent and method, also when another CPU
        // created the key (this CPU's copy then starts zeroed).
        p.parent = parent_path;
        p.method = call.method;
    });
    (call.method, duration)
}

#[uprobe]
pub fn flow_return(ctx: ProbeContext) -> u32 {
    // SAFETY: plain helper, read first so the call's time does not include this program.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(spec) = spec_of(&ctx) else { return 0 };
    let Some((process, tid)) = current_process(spec) else {
        return 0;
    };
    let pid = process.pid;
    let method = method_of(&ctx, spec);
    let Some(stack) = STACKS.get_ptr_mut(&tid) else {
        return 0;
    };
    // SAFETY: the thread's own map value.
    let stack = unsafe { &mut *stack };
    let depth = stack.depth as usize;
    if depth == 0 {
        return 0; // a call that began before ustat attached
    }
    if depth > MAX_STACK {
        stack.depth -= 1; // an untimed deep call
        return 0;
    }
    // The returning call is on top, unless calls above it ended without a return probe.
    let mut unwind = MAX_UNWIND + 1;
    for i in 0..MAX_UNWIND + 1 {
        if i >= depth {
            break;
        }
        if frame(stack, depth - 1 - i).method == method {
            unwind = i;
            break;
        }
    }
    if unwind > MAX_UNWIND {
        return 0; // a return we never saw enter
    }
    let config = FLOW_CONFIG.get(0);
    let events = config.is_some_and(|c| c.events != 0);
    for i in 0..MAX_UNWIND + 1 {
        if i > unwind {
            break;
        }
        let d = depth - 1 - i;
        let (closed, duration) = close(stack, d, now, process);
        let Some(config) = config.filter(|_| events) else {
            continue;
        };
        // An unwound call's names are not this probe's: only its cached verdict counts.
        let (kind, pass) = if i == unwind {
            (
                flow_kind::RETURN,
                passes(&ctx, spec, config, process, closed),
            )
        } else {
            (
                flow_kind::UNWOUND,
                cached_pass(config, process, closed).unwrap_or(true),
            )
        };
        if pass {
            send(kind, pid, tid, now, d as u32, closed, duration);
        }
    }
    stack.depth = (depth - 1 - unwind) as u32;
    0
}
