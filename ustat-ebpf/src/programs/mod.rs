//! The programs and the maps they share. Each program finds its site's spec through the
//! attach cookie, which is the spec's index in `SPECS`.

mod count;
mod exit;
mod flow;
mod hotspot;
mod keyed;
mod record;
mod sample;
mod span;
mod trace;

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST, bpf_pidns_info},
    helpers::bpf_get_current_comm,
    helpers::generated::{
        bpf_get_attach_cookie, bpf_get_ns_current_pid_tgid, bpf_ktime_get_boot_ns,
        bpf_probe_read_user_str,
    },
    macros::map,
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::ProbeContext,
};
use ustat_common::{
    CountKey, CountValue, ExitRecord, HistKey, KeyArg, KeyedKey, MAX_ARGS, NAME_LEN, NO_ARG,
    PidNamespace, ProbeSpec, ProcessEntry, ProcessKey, SpanStack, SpanThreadKey, SpanTotals,
    TEXT_HASH_SEED, key_kind, lost, process_flags, text_hash_step,
};

use crate::args;

/// Room for every site of several runtimes (libjvm.so alone has about 500).
const MAX_SPECS: u32 = 16_384;

#[map]
static SPECS: Array<ProbeSpec> = Array::with_max_entries(MAX_SPECS, 0);

/// Set by userspace before anything is attached; see `pid_tid`.
#[map]
static PID_NAMESPACE: Array<PidNamespace> = Array::with_max_entries(1, 0);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(lost::SLOTS, 0);

#[map]
static COUNTS: PerCpuHashMap<CountKey, CountValue> =
    PerCpuHashMap::with_max_entries(16_384, BPF_F_NO_PREALLOC);

#[map]
static OPEN_SPANS: HashMap<SpanThreadKey, SpanStack> =
    HashMap::with_max_entries(16_384, BPF_F_NO_PREALLOC);

/// An empty span stack to insert from (it does not fit on the BPF stack).
#[map]
static EMPTY_SPANS: PerCpuArray<SpanStack> = PerCpuArray::with_max_entries(1, 0);

#[map]
static SPANS: PerCpuHashMap<CountKey, SpanTotals> =
    PerCpuHashMap::with_max_entries(16_384, BPF_F_NO_PREALLOC);

/// GC pauses by HdrHistogram bucket: up to ~1,000 buckets per doubling of the pause, so a
/// process whose pauses range from 10 us to 30 ms holds ~12,000. Not preallocated: room for
/// twenty such processes costs only what they use.
#[map]
static SPAN_HIST: PerCpuHashMap<HistKey, u64> =
    PerCpuHashMap::with_max_entries(262_144, BPF_F_NO_PREALLOC);

#[map]
static KEYED: PerCpuHashMap<KeyedKey, CountValue> =
    PerCpuHashMap::with_max_entries(262_144, BPF_F_NO_PREALLOC);

/// Live processes that hit a probe, by tgid: their epoch. The exit hook skips processes not
/// here at the cost of one lookup.
#[map]
static PROCS: HashMap<u32, ProcessEntry> = HashMap::with_max_entries(65_536, BPF_F_NO_PREALLOC);

/// Processes that exited since userspace last looked, with what identifies them (it deletes
/// what it read). Full, an exit is counted as lost (`lost::MAP_FULL`).
#[map]
static EXITED: HashMap<ProcessKey, ExitRecord> =
    HashMap::with_max_entries(65_536, BPF_F_NO_PREALLOC);

/// Keys whose names userspace asks for again (see `ustat_common::maps::NAME_REQUESTS`).
#[map]
static NAME_REQUESTS: HashMap<KeyedKey, u8> = HashMap::with_max_entries(262_144, BPF_F_NO_PREALLOC);

#[map]
static NAMES_WANTED: Array<u32> = Array::with_max_entries(1, 0);

/// Where a `CSTR_TEXT` key's string is read to be hashed.
#[map]
static TEXT_SCRATCH: PerCpuArray<[u8; NAME_LEN]> = PerCpuArray::with_max_entries(1, 0);

/// The spec of the site that fired.
#[inline(always)]
fn spec_of(ctx: &ProbeContext) -> Option<&'static ProbeSpec> {
    // SAFETY: the helper only reads the cookie stored with the running program's link.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    SPECS.get(cookie as u32)
}

/// Counts something that could not be recorded, so it is reported, never lost silently.
#[inline(always)]
fn count_lost(slot: u32) {
    if let Some(counter) = LOST.get_ptr_mut(slot) {
        // SAFETY: a per-CPU slot: no other program runs on this CPU meanwhile.
        unsafe { *counter += 1 };
    }
}

/// The value of the spec's argument `arg`, or 0 when the spec names none (`NO_ARG`) or it
/// cannot be read.
#[inline(always)]
fn optional_arg(ctx: &ProbeContext, spec: &ProbeSpec, arg: u8) -> u64 {
    if arg == NO_ARG || usize::from(arg) >= MAX_ARGS {
        return 0;
    }
    args::read(ctx, spec, usize::from(arg)).unwrap_or(0)
}

/// The value of a key slot: the argument, or for `CSTR_TEXT` the hash of the string it
/// points at (0 when it cannot be read).
#[inline(always)]
fn key_value(ctx: &ProbeContext, spec: &ProbeSpec, k: &KeyArg) -> u64 {
    let arg = optional_arg(ctx, spec, k.arg);
    if k.kind == key_kind::CSTR_TEXT {
        text_hash(arg)
    } else {
        arg
    }
}

/// `ustat_common::text_hash` of the NUL-terminated string at `address`; 0 when it cannot
/// be read.
#[inline(always)]
fn text_hash(address: u64) -> u64 {
    let Some(buffer) = TEXT_SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: `buffer` is this CPU's NAME_LEN-byte scratch entry; the helper checks the user
    // address and writes at most NAME_LEN bytes.
    let read = unsafe {
        bpf_probe_read_user_str(
            buffer.cast(),
            NAME_LEN as u32,
            address as *const core::ffi::c_void,
        )
    };
    if read <= 0 {
        return 0;
    }
    let len = read as usize - 1;
    let mut hash = TEXT_HASH_SEED;
    for i in 0..NAME_LEN {
        if i >= len {
            break;
        }
        // SAFETY: `i < NAME_LEN`, within the scratch entry.
        let byte = unsafe { (*buffer)[i & (NAME_LEN - 1)] };
        hash = text_hash_step(hash, byte);
    }
    hash | 1
}

/// The subkey: the spec's `subkey_arg`, tagged with its `subkey_tag` in the high 32 bits.
#[inline(always)]
fn subkey(ctx: &ProbeContext, spec: &ProbeSpec) -> u64 {
    optional_arg(ctx, spec, spec.subkey_arg) | (u64::from(spec.subkey_tag) << 32)
}

/// The value to sum: the spec's `value_arg`. Summed values are sizes and counts, so a negative
/// one, or one not below the spec's `value_max`, is garbage from the runtime (HotSpot passes
/// such sizes for some allocations): it is not summed, and it is counted as such.
#[inline(always)]
fn summed_value(ctx: &ProbeContext, spec: &ProbeSpec) -> u64 {
    let value = optional_arg(ctx, spec, spec.value_arg);
    let index = usize::from(spec.value_arg);
    let negative = index < MAX_ARGS && spec.args[index].signed != 0 && (value as i64) < 0;
    if negative || (spec.value_max != 0 && value >= spec.value_max) {
        count_lost(lost::BAD_VALUE);
        return 0;
    }
    value
}

/// Adds to a per-CPU aggregate with `add`: in place when the key exists, else by inserting
/// `add` applied to a zero value (so a new key and an old one always get the same fields).
/// Returns whether this call created the key.
#[inline(always)]
fn accumulate<K, V: Copy + Default>(
    map: &PerCpuHashMap<K, V>,
    key: &K,
    add: impl Fn(&mut V),
) -> bool {
    if let Some(value) = map.get_ptr_mut(key) {
        // SAFETY: this CPU's copy of the value; nothing else writes it meanwhile.
        add(unsafe { &mut *value });
        return false;
    }
    let mut first = V::default();
    add(&mut first);
    match map.insert(key, &first, BPF_NOEXIST.into()) {
        Ok(()) => true,
        // Another CPU created the key first: its copy is separate from this CPU's.
        Err(_) => {
            match map.get_ptr_mut(key) {
                // SAFETY: as above.
                Some(value) => add(unsafe { &mut *value }),
                None => count_lost(lost::MAP_FULL),
            }
            false
        }
    }
}

/// The per-thread value at `key`, created on first use from `scratch`, a per-CPU value too
/// big for the BPF stack. Only `init` writes the scratch value (a header), so the rest of a
/// new value is whatever was never written there: zero.
#[inline(always)]
fn get_or_create<K, V>(
    map: &HashMap<K, V>,
    scratch: &PerCpuArray<V>,
    key: &K,
    init: impl FnOnce(&mut V),
) -> Option<*mut V> {
    if let Some(value) = map.get_ptr_mut(key) {
        return Some(value);
    }
    let empty = scratch.get_ptr_mut(0)?;
    // SAFETY: this CPU's scratch value; no other program runs on this CPU meanwhile.
    let empty = unsafe { &mut *empty };
    init(empty);
    if map.insert(key, empty, BPF_NOEXIST.into()).is_err() {
        count_lost(lost::MAP_FULL);
    }
    map.get_ptr_mut(key)
}

/// The current thread's process and tid: (pid, epoch). A process's first hit records its
/// epoch in `PROCS`, with what identifies it: the runtime binary of `spec`, the site it hit,
/// and its name (see `ProcessEntry::comm`). When `PROCS` is full the hit cannot be keyed and
/// is counted as lost.
#[inline(always)]
fn current_process(spec: &ProbeSpec) -> Option<(ProcessKey, u32)> {
    let (pid, tid) = pid_tid()?;
    if let Some(entry) = PROCS.get_ptr_mut(&pid) {
        // SAFETY: the process's entry; a racing writer writes the same fields alike.
        let entry = unsafe { &mut *entry };
        if tid == pid && entry.flags & process_flags::MAIN_COMM == 0 {
            name_from_main_thread(entry);
        }
        return Some((ProcessKey::new(pid, entry.epoch), tid));
    }
    let mut entry = ProcessEntry {
        // SAFETY: plain helper.
        epoch: unsafe { bpf_ktime_get_boot_ns() },
        origin: spec.origin,
        flags: 0,
        comm: bpf_get_current_comm().unwrap_or_default(),
    };
    if tid == pid {
        entry.flags |= process_flags::MAIN_COMM;
    }
    // Another thread of the process may insert first: then its epoch is the one.
    let _ = PROCS.insert(&pid, &entry, BPF_NOEXIST.into());
    // SAFETY: copied at once.
    match unsafe { PROCS.get(&pid) } {
        Some(entry) => Some((ProcessKey::new(pid, entry.epoch), tid)),
        None => {
            count_lost(lost::MAP_FULL);
            None
        }
    }
}

/// Called on the process's main thread: its `comm` is the process's name.
#[inline(always)]
fn name_from_main_thread(entry: &mut ProcessEntry) {
    if let Ok(comm) = bpf_get_current_comm() {
        entry.comm = comm;
        entry.flags |= process_flags::MAIN_COMM;
    }
}

/// (pid, tid) of the current thread as ustat sees them: in ustat's PID namespace (a
/// container, `unshare --pid`), where `/proc` and `-p` use those ids, or the kernel's own in
/// the root namespace. `None` for a thread outside ustat's namespace: ustat cannot see it.
/// Every program gets its ids here.
#[inline(always)]
fn pid_tid() -> Option<(u32, u32)> {
    let namespace = PID_NAMESPACE.get(0)?;
    if namespace.ino == 0 {
        let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
        return Some(((pid_tgid >> 32) as u32, pid_tgid as u32));
    }
    let mut ids = bpf_pidns_info { pid: 0, tgid: 0 };
    // SAFETY: the helper writes exactly size_of::<bpf_pidns_info>() bytes into `ids`.
    let result = unsafe {
        bpf_get_ns_current_pid_tgid(
            namespace.dev,
            namespace.ino,
            &mut ids,
            size_of::<bpf_pidns_info>() as u32,
        )
    };
    (result == 0).then_some((ids.tgid, ids.pid))
}
