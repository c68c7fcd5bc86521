//! `trace`, `trace_count`, `trace_entry`, `trace_return`: the generic programs of `ustat
//! trace` specs. The attach cookie's low 32 bits index a site's `ProbeSpec`, which says where
//! its values are — registers, memory, constants, whatever the calling convention put there;
//! its high 32 bits are the probe (the function or USDT probe the event reports). The spec's
//! `tag` indexes the `TraceConfig` that says what to do with the values: a filter table
//! evaluated here, then print (a `TraceEvent` with strings read from user memory), count per
//! value, or time the call. The sites of one spec share one config and, where their
//! locations are equal, one `ProbeSpec`: 500 functions matched by a wildcard are two map
//! entries.

use aya_ebpf::{
    EbpfContext as _,
    bindings::BPF_F_NO_PREALLOC,
    helpers::{
        bpf_get_current_comm, bpf_get_smp_processor_id, bpf_ktime_get_ns,
        generated::{
            bpf_get_attach_cookie, bpf_get_func_ip, bpf_loop, bpf_probe_read_user,
            bpf_probe_read_user_str,
        },
    },
    macros::{map, uprobe},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::ProbeContext,
};
use ustat_common::{
    EventHeader, FILTER_TERMS, FILTER_TEXT_LEN, FilterTerm, HistKey, LatencyThreadKey, MAX_ARGS,
    ProbeSpec, SpanTotals, TRACE_FIELDS, TRACE_STR_LEN, TraceConfig, TraceCountKey, TraceEvent,
    event_kind, field_kind, filter_op, hist_bucket, lost, term_kind,
};

use super::{EVENTS, MAX_SPECS, SPECS, accumulate, count_lost, pid_tid};
use crate::args;

#[map]
static TRACE_CONFIGS: Array<TraceConfig> = Array::with_max_entries(MAX_SPECS, 0);

#[map]
static TRACE_COUNTS: PerCpuHashMap<TraceCountKey, u64> =
    PerCpuHashMap::with_max_entries(65_536, BPF_F_NO_PREALLOC);

#[map]
static TRACE_STARTS: HashMap<LatencyThreadKey, u64> =
    HashMap::with_max_entries(65_536, BPF_F_NO_PREALLOC);

#[map]
static TRACE_HIST: PerCpuHashMap<HistKey, u64> =
    PerCpuHashMap::with_max_entries(65_536, BPF_F_NO_PREALLOC);

#[map]
static TRACE_LATENCY: PerCpuHashMap<u32, SpanTotals> =
    PerCpuHashMap::with_max_entries(16_384, BPF_F_NO_PREALLOC);

/// Where a `--count` key is built (it does not fit on the BPF stack).
#[map]
static COUNT_SCRATCH: PerCpuArray<TraceCountKey> = PerCpuArray::with_max_entries(1, 0);

/// Where an event is built (it does not fit on the BPF stack).
#[map]
static TRACE_SCRATCH: PerCpuArray<TraceEvent> = PerCpuArray::with_max_entries(1, 0);

/// Where a filter's string is read to be compared: the text's words and one more, so the
/// byte after the longest text (the NUL of a C string) fits.
const FILTER_WORDS: usize = FILTER_TEXT_LEN / 8 + 1;
const _: () = assert!(FILTER_TEXT_LEN == 32);
#[map]
static FILTER_SCRATCH: PerCpuArray<[u64; FILTER_WORDS]> = PerCpuArray::with_max_entries(1, 0);

/// Slots are indexed with a mask the verifier can see; the array has room for it.
const SLOTS: usize = 16;
const _: () = assert!(MAX_ARGS <= SLOTS);

/// Every slot's value, and which could not be read. Kept in map memory, not on the stack:
/// the verifier tracks stack constants, and 12 reads that each may fail would make 4096
/// distinct states for everything after them.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Values {
    values: [u64; SLOTS],
    failed: u64,
}

#[map]
static VALUES_SCRATCH: PerCpuArray<Values> = PerCpuArray::with_max_entries(1, 0);

impl Values {
    #[inline(always)]
    fn get(&self, slot: u8) -> u64 {
        self.values[usize::from(slot) & (SLOTS - 1)]
    }

    #[inline(always)]
    fn failed(&self, slot: u8) -> bool {
        self.failed & (1 << (slot & 15)) != 0
    }
}

/// What the `bpf_loop` callback needs to read a site's values: scalars only (the saved
/// registers' address, the probed address, the spec's index).
#[repr(C)]
struct ReadContext {
    regs: u64,
    probe: u64,
    spec: u32,
    _pad: u32,
}

/// Reads every slot of the site's spec into `VALUES_SCRATCH`. Through `bpf_loop`, so the
/// kernel verifies the argument reader once, not once per slot: that was most of the time
/// it took to load this program.
#[inline(always)]
fn read_values(ctx: &ProbeContext, cookie: u32, spec: &ProbeSpec) -> Option<&'static Values> {
    let out = VALUES_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's scratch entry; no other program runs on this CPU meanwhile.
    let out = unsafe { &mut *out };
    out.failed = 0;
    let mut read = ReadContext {
        regs: ctx.regs as u64,
        // SAFETY: plain helper; for a uprobe it returns the probed address.
        probe: unsafe { bpf_get_func_ip(ctx.as_ptr()) },
        spec: cookie,
        _pad: 0,
    };
    // SAFETY: `read_one` has the callback signature bpf_loop expects; `read` outlives the call.
    unsafe {
        bpf_loop(
            u32::from(spec.nargs),
            read_one as *mut core::ffi::c_void,
            (&mut read as *mut ReadContext).cast(),
            0,
        );
    }
    Some(out)
}

/// `bpf_loop` callback: reads slot `index` into `VALUES_SCRATCH`. 0 goes on, 1 stops.
extern "C" fn read_one(index: u64, context: *mut core::ffi::c_void) -> i64 {
    // SAFETY: bpf_loop passes the ReadContext `read_values` gave it.
    let read = unsafe { &*(context as *const ReadContext) };
    let (Some(spec), Some(out)) = (SPECS.get(read.spec), VALUES_SCRATCH.get_ptr_mut(0)) else {
        return 1;
    };
    // SAFETY: this CPU's scratch entry, as in `read_values`.
    let out = unsafe { &mut *out };
    let i = index as usize;
    if i >= MAX_ARGS {
        return 1;
    }
    let probe = read.probe;
    match args::read_at(read.regs as *const u8, || probe, spec, i) {
        Ok(value) => out.values[i & (SLOTS - 1)] = value,
        Err(_) => out.failed |= 1 << (i & (SLOTS - 1)),
    }
    0
}

/// Whether one term holds. A value that cannot be read fails every comparison.
#[inline(always)]
fn term_holds(term: &FilterTerm, values: &Values) -> bool {
    if values.failed(term.slot) {
        return false;
    }
    let value = values.get(term.slot);
    let ordering = match term.kind {
        term_kind::SIGNED => (value as i64).cmp(&term.constant),
        term_kind::UNSIGNED => value.cmp(&(term.constant as u64)),
        term_kind::CSTR | term_kind::PTR_LEN => {
            let equal = text_equals(term, values, value);
            return match term.op {
                filter_op::EQ => equal,
                filter_op::NE => !equal,
                _ => false,
            };
        }
        _ => return false,
    };
    use core::cmp::Ordering::*;
    match term.op {
        filter_op::EQ => ordering == Equal,
        filter_op::NE => ordering != Equal,
        filter_op::LT => ordering == Less,
        filter_op::LE => ordering != Greater,
        filter_op::GT => ordering == Greater,
        filter_op::GE => ordering != Less,
        _ => false,
    }
}

/// Whether the string at `address` is exactly the term's text. The string is read into a
/// zeroed buffer and compared as words with the zero-padded text: no byte loop for the
/// verifier to walk.
#[inline(always)]
fn text_equals(term: &FilterTerm, values: &Values, address: u64) -> bool {
    let Some(buffer) = FILTER_SCRATCH.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: this CPU's scratch entry; no other program runs on this CPU meanwhile.
    let buffer = unsafe { &mut *buffer };
    *buffer = [0; FILTER_WORDS];
    let want = term.constant;
    if !(0..=FILTER_TEXT_LEN as i64).contains(&want) {
        return false;
    }
    let dst = buffer.as_mut_ptr().cast::<core::ffi::c_void>();
    let src = address as *const core::ffi::c_void;
    let len = if term.kind == term_kind::PTR_LEN {
        if values.failed(term.len_slot) || values.get(term.len_slot) as i64 != want {
            return false;
        }
        // SAFETY: the buffer has FILTER_TEXT_LEN + 8 bytes; `want` is at most FILTER_TEXT_LEN;
        // the helper checks the user address.
        if unsafe { bpf_probe_read_user(dst, want as u32, src) } != 0 {
            return false;
        }
        want
    } else {
        // One byte more than any constant, so a longer string cannot look equal.
        // SAFETY: as above; the helper writes at most FILTER_TEXT_LEN + 1 bytes.
        let n = unsafe { bpf_probe_read_user_str(dst, FILTER_TEXT_LEN as u32 + 1, src) };
        if n <= 0 {
            return false;
        }
        i64::from(n) - 1
    };
    if len != want {
        return false;
    }
    // SAFETY: `text` is FILTER_TEXT_LEN bytes at an 8-byte aligned offset of the term.
    let text = unsafe { &*term.text.as_ptr().cast::<[u64; FILTER_TEXT_LEN / 8]>() };
    buffer[0] == text[0] && buffer[1] == text[1] && buffer[2] == text[2] && buffer[3] == text[3]
}

#[inline(always)]
fn passes(config: &TraceConfig, values: &Values) -> bool {
    let n = usize::from(config.nterms);
    for i in 0..FILTER_TERMS {
        if i >= n {
            break;
        }
        if !term_holds(&config.terms[i], values) {
            return false;
        }
    }
    true
}

/// What every `trace` program does first: find the probe, read its values, apply its
/// filter. `None`: the hit is not for this program.
#[inline(always)]
fn hit(ctx: &ProbeContext) -> Option<(u32, &'static TraceConfig, &'static Values, u32, u32)> {
    // SAFETY: the helper only reads the cookie stored with the running program's link.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let spec = SPECS.get(cookie as u32)?;
    let config = TRACE_CONFIGS.get(spec.tag)?;
    let (pid, tid) = pid_tid()?;
    let values = read_values(ctx, cookie as u32, spec)?;
    let probe = (cookie >> 32) as u32;
    passes(config, values).then_some((probe, config, values, pid, tid))
}

/// Each mode is a program of its own, so the kernel verifies only what a trace uses.
#[uprobe]
pub fn trace(ctx: ProbeContext) -> u32 {
    let Some((probe, config, values, pid, tid)) = hit(&ctx) else {
        return 0;
    };
    let Some(event) = TRACE_SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's scratch entry; no other program runs on this CPU meanwhile.
    let event = unsafe { &mut *event };
    fill(event, config, values, probe, pid, tid);
    if EVENTS.output::<TraceEvent>(&*event, 0).is_err() {
        count_lost(lost::RING_FULL);
    }
    0
}

#[uprobe]
pub fn trace_count(ctx: ProbeContext) -> u32 {
    let Some((probe, config, values, pid, tid)) = hit(&ctx) else {
        return 0;
    };
    let (Some(event), Some(key)) = (TRACE_SCRATCH.get_ptr_mut(0), COUNT_SCRATCH.get_ptr_mut(0))
    else {
        return 0;
    };
    // SAFETY: this CPU's scratch entries; no other program runs on this CPU meanwhile.
    let (event, key) = unsafe { (&mut *event, &mut *key) };
    // Zeroed first: a string read stops at its NUL, and the key compares every byte.
    event.strings = [[0; TRACE_STR_LEN]; ustat_common::TRACE_STRINGS];
    fill(event, config, values, probe, pid, tid);
    key.probe = probe;
    key.failed = event.failed;
    key.truncated = event.truncated;
    key.values = event.values;
    key.lens = event.lens;
    key._pad = 0;
    key.strings = event.strings;
    // A string's pointer would split one text into many keys.
    for s in 0..ustat_common::TRACE_STRINGS {
        let string = &config.strings[s];
        if string.kind != field_kind::NONE {
            key.values[usize::from(string.string) & (TRACE_FIELDS - 1)] = 0;
        }
    }
    accumulate(&TRACE_COUNTS, key, |count: &mut u64| *count += 1);
    0
}

#[uprobe]
pub fn trace_entry(ctx: ProbeContext) -> u32 {
    let Some((probe, config, _, pid, tid)) = hit(&ctx) else {
        return 0;
    };
    // SAFETY: plain helper.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(key) = call_key(&ctx, config, pid, tid, probe) else {
        return 0;
    };
    if TRACE_STARTS.insert(&key, &now, 0).is_err() {
        count_lost(lost::MAP_FULL);
    }
    0
}

/// Builds the event: header, each field's value, its strings.
#[inline(always)]
fn fill(
    event: &mut TraceEvent,
    config: &TraceConfig,
    values: &Values,
    probe: u32,
    pid: u32,
    tid: u32,
) {
    event.header = EventHeader {
        kind: event_kind::TRACE,
        pid,
        tid,
        // SAFETY: plain helpers without arguments.
        cpu: unsafe { bpf_get_smp_processor_id() },
        ts_ns: unsafe { bpf_ktime_get_ns() },
    };
    event.probe = probe;
    event.failed = 0;
    event.truncated = 0;
    event.values = [0; TRACE_FIELDS];
    event.lens = [0; ustat_common::TRACE_STRINGS];
    event.comm = bpf_get_current_comm().unwrap_or_default();
    let n = usize::from(config.nfields);
    for i in 0..TRACE_FIELDS {
        if i >= n {
            break;
        }
        let field = &config.fields[i];
        if values.failed(field.slot) {
            event.failed |= 1 << i;
        } else {
            event.values[i] = values.get(field.slot);
        }
    }
    for s in 0..ustat_common::TRACE_STRINGS {
        let string = &config.strings[s];
        let i = usize::from(string.string) & (TRACE_FIELDS - 1);
        let len = match string.kind {
            field_kind::CSTR | field_kind::PTR_LEN if !values.failed(string.slot) => {
                read_string(event, s, string, values)
            }
            field_kind::CSTR | field_kind::PTR_LEN => -1,
            _ => continue,
        };
        if len < 0 {
            event.failed |= 1 << i;
        } else {
            event.lens[s] = len as u16;
        }
    }
}

/// Reads string `s` into the event's buffer; its length, or -1 when unreadable.
#[inline(always)]
fn read_string(
    event: &mut TraceEvent,
    s: usize,
    string: &ustat_common::TraceField,
    values: &Values,
) -> i64 {
    let dst = event.strings[s & 1].as_mut_ptr();
    let src = values.get(string.slot) as *const core::ffi::c_void;
    if string.kind == field_kind::PTR_LEN {
        if values.failed(string.len_slot) {
            return -1;
        }
        let want = values.get(string.len_slot) as i64;
        let len = if want < 0 {
            0
        } else if want > TRACE_STR_LEN as i64 {
            event.truncated |= 1 << s;
            TRACE_STR_LEN as i64
        } else {
            want
        };
        // SAFETY: `dst` is a TRACE_STR_LEN-byte buffer and `len` at most that; the helper
        // checks the user address.
        if unsafe { bpf_probe_read_user(dst.cast(), len as u32, src) } == 0 {
            len
        } else {
            -1
        }
    } else {
        // SAFETY: as above; the helper writes at most TRACE_STR_LEN bytes with the NUL.
        let n = unsafe { bpf_probe_read_user_str(dst.cast(), TRACE_STR_LEN as u32, src) };
        if n as usize == TRACE_STR_LEN {
            event.truncated |= 1 << s;
        }
        if n > 0 { i64::from(n) - 1 } else { -1 }
    }
}

/// Whose call this is: the thread's, or for Go the goroutine's (`g` in R14 under the register
/// ABI), since a goroutine may resume on another thread before it returns.
#[inline(always)]
fn call_key(
    ctx: &ProbeContext,
    config: &TraceConfig,
    pid: u32,
    tid: u32,
    probe: u32,
) -> Option<LatencyThreadKey> {
    let thread = if config.by_goroutine != 0 {
        args::register(ctx.regs.cast(), ustat_common::pt_regs::R14).ok()?
    } else {
        u64::from(tid)
    };
    Some(LatencyThreadKey { thread, probe, pid })
}

#[uprobe]
pub fn trace_return(ctx: ProbeContext) -> u32 {
    // SAFETY: plain helper, read first so the call's time does not include this program's.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: the helper only reads the cookie stored with the running program's link.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let probe = (cookie >> 32) as u32;
    let Some((pid, tid)) = pid_tid() else {
        return 0;
    };
    // The return site shares its entry's spec, so its config says how calls are keyed.
    let Some(spec) = SPECS.get(cookie as u32) else {
        return 0;
    };
    let Some(config) = TRACE_CONFIGS.get(spec.tag) else {
        return 0;
    };
    let Some(key) = call_key(&ctx, config, pid, tid, probe) else {
        return 0;
    };
    // SAFETY: copied at once.
    let Some(start) = (unsafe { TRACE_STARTS.get(&key) }).copied() else {
        return 0;
    };
    let _ = TRACE_STARTS.remove(&key);
    let duration = now.saturating_sub(start);
    let bucket = HistKey {
        pid: 0,
        category: probe,
        subkey: 0,
        bucket: hist_bucket(duration),
        epoch: 0,
    };
    accumulate(&TRACE_HIST, &bucket, |count: &mut u64| *count += 1);
    accumulate(&TRACE_LATENCY, &probe, |totals: &mut SpanTotals| {
        totals.count += 1;
        totals.total_ns += duration;
        if duration > totals.max_ns {
            totals.max_ns = duration;
        }
    });
    0
}
