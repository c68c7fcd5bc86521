//! `trace` / `trace_return`: the generic programs of `ustat trace` specs. A site's
//! `ProbeSpec` (the attach cookie) says where its values are — registers, memory, constants,
//! whatever the calling convention put there — and its probe's `TraceConfig` (the spec's
//! `tag`) what to do with them: a filter table evaluated here, then print (a `TraceEvent`
//! with strings read from user memory), count per value, or time the call.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    helpers::{
        bpf_get_current_comm, bpf_get_smp_processor_id, bpf_ktime_get_ns,
        generated::{bpf_probe_read_user, bpf_probe_read_user_str},
    },
    macros::{map, uprobe},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::ProbeContext,
};
use ustat_common::{
    EventHeader, FILTER_TERMS, FILTER_TEXT_LEN, FilterTerm, HistKey, LatencyThreadKey, MAX_ARGS,
    ProbeSpec, SpanTotals, TEXT_HASH_SEED, TRACE_FIELDS, TRACE_STR_LEN, TraceConfig, TraceCountKey,
    TraceEvent, event_kind, field_kind, filter_op, hist_bucket, lost, term_kind, text_hash_step,
    trace_mode,
};

use super::{EVENTS, MAX_SPECS, accumulate, count_lost, pid_tid, spec_of};
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

#[inline(always)]
fn read_values(ctx: &ProbeContext, spec: &ProbeSpec) -> Option<&'static Values> {
    let out = VALUES_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's scratch entry; no other program runs on this CPU meanwhile.
    let out = unsafe { &mut *out };
    out.failed = 0;
    let nargs = usize::from(spec.nargs);
    // Unrolled, as in `record`: straight-line reads prune well in the verifier.
    macro_rules! read_all {
        ($($i:literal)*) => {
            'all: {
                $(
                    if $i >= nargs {
                        break 'all;
                    }
                    match args::read(ctx, spec, $i) {
                        Ok(value) => out.values[$i] = value,
                        Err(_) => out.failed |= 1 << $i,
                    }
                )*
            }
        };
    }
    read_all!(0 1 2 3 4 5 6 7 8 9 10 11);
    Some(out)
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

#[uprobe]
pub fn trace(ctx: ProbeContext) -> u32 {
    let Some(spec) = spec_of(&ctx) else { return 0 };
    let Some(config) = TRACE_CONFIGS.get(spec.tag) else {
        return 0;
    };
    let Some((pid, tid)) = pid_tid() else {
        return 0;
    };
    let Some(values) = read_values(&ctx, spec) else {
        return 0;
    };
    if !passes(config, values) {
        return 0;
    }
    if config.mode == trace_mode::LATENCY {
        // SAFETY: plain helper.
        let now = unsafe { bpf_ktime_get_ns() };
        let Some(key) = call_key(&ctx, config, pid, tid, spec.tag) else {
            return 0;
        };
        if TRACE_STARTS.insert(&key, &now, 0).is_err() {
            count_lost(lost::MAP_FULL);
        }
        return 0;
    }
    let Some(event) = TRACE_SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's scratch entry; no other program runs on this CPU meanwhile.
    let event = unsafe { &mut *event };
    let counting = config.mode == trace_mode::COUNT;
    fill(event, config, values, spec.tag, pid, tid, counting);
    if counting {
        let key = TraceCountKey {
            probe: spec.tag,
            _pad: 0,
            values: event.values,
        };
        if accumulate(&TRACE_COUNTS, &key, |count: &mut u64| *count += 1) {
            // A new key: send its text once (strings are only hashes in the key).
            event.header.kind = event_kind::TRACE_KEY;
            if EVENTS.output::<TraceEvent>(&*event, 0).is_err() {
                count_lost(lost::RING_FULL);
            }
        }
    } else if EVENTS.output::<TraceEvent>(&*event, 0).is_err() {
        count_lost(lost::RING_FULL);
    }
    0
}

/// Builds the event: header, each field's value, its strings. With `hash_strings`, a
/// string field's value is the hash of its bytes (a `--count` key).
#[inline(always)]
fn fill(
    event: &mut TraceEvent,
    config: &TraceConfig,
    values: &Values,
    probe: u32,
    pid: u32,
    tid: u32,
    hash_strings: bool,
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
    if hash_strings {
        hash_strings_into_values(event, config);
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

/// For a `--count` key: each string field's value becomes the hash of its bytes. Done once
/// per string buffer, outside the loop over fields, so the verifier walks each byte loop once.
#[inline(always)]
fn hash_strings_into_values(event: &mut TraceEvent, config: &TraceConfig) {
    let mut hashes = [0u64; ustat_common::TRACE_STRINGS];
    for s in 0..ustat_common::TRACE_STRINGS {
        let len = usize::from(event.lens[s]);
        let mut hash = TEXT_HASH_SEED;
        for j in 0..TRACE_STR_LEN {
            if j >= len {
                break;
            }
            hash = text_hash_step(hash, event.strings[s][j]);
        }
        hashes[s] = hash | 1;
    }
    for i in 0..TRACE_FIELDS {
        let field = &config.fields[i];
        if i < usize::from(config.nfields)
            && (field.kind == field_kind::CSTR || field.kind == field_kind::PTR_LEN)
            && event.failed & (1 << i) == 0
        {
            event.values[i] = hashes[usize::from(field.string & 1)];
        }
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
        args::register(ctx, ustat_common::pt_regs::R14).ok()?
    } else {
        u64::from(tid)
    };
    Some(LatencyThreadKey { thread, probe, pid })
}

#[uprobe]
pub fn trace_return(_ctx: ProbeContext) -> u32 {
    // SAFETY: plain helper, read first so the call's time does not include this program's.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(spec) = spec_of(&_ctx) else { return 0 };
    let Some((pid, tid)) = pid_tid() else {
        return 0;
    };
    let Some(config) = TRACE_CONFIGS.get(spec.tag) else {
        return 0;
    };
    let Some(key) = call_key(&_ctx, config, pid, tid, spec.tag) else {
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
        category: spec.tag,
        subkey: 0,
        bucket: hist_bucket(duration),
        epoch: 0,
    };
    accumulate(&TRACE_HIST, &bucket, |count: &mut u64| *count += 1);
    accumulate(&TRACE_LATENCY, &spec.tag, |totals: &mut SpanTotals| {
        totals.count += 1;
        totals.total_ns += duration;
        if duration > totals.max_ns {
            totals.max_ns = duration;
        }
    });
    0
}
