//! `span_begin` / `span_end`: time what happens between two probes on one thread (a GC, an
//! import). Each thread keeps a stack of open spans per category, so nested spans pair
//! correctly; an end without a begin (ustat attached mid-span) is ignored. A probe hit costs
//! one lookup of the thread's stack, and the end two per-CPU updates.

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::uprobe, programs::ProbeContext};
use ustat_common::{
    CountKey, HistKey, MAX_SPAN_DEPTH, OpenSpan, SpanStack, SpanThreadKey, SpanTotals, category,
    hist_bucket, lost,
};

use super::{
    EMPTY_SPANS, OPEN_SPANS, SPAN_HIST, SPANS, accumulate, count_lost, current_process,
    get_or_create, pid_tid, spec_of, subkey, summed_value,
};

/// Slot `depth` of a stack. The mask keeps the index in range in a way the verifier sees;
/// the volatile read stops LLVM from proving the mask away.
#[inline(always)]
fn slot(stack: &mut SpanStack, depth: u32) -> &mut OpenSpan {
    // SAFETY: reads a local.
    let depth = unsafe { core::ptr::read_volatile(&depth) };
    &mut stack.spans[(depth & (MAX_SPAN_DEPTH - 1)) as usize]
}

#[uprobe]
pub fn span_begin(ctx: ProbeContext) -> u32 {
    let Some(spec) = spec_of(&ctx) else { return 0 };
    // Registered in PROCS, so the exit hook removes the thread's open spans.
    let Some((_, tid)) = current_process(spec) else {
        return 0;
    };
    let key = SpanThreadKey {
        tid,
        category: spec.tag,
    };
    let Some(stack) = get_or_create(&OPEN_SPANS, &EMPTY_SPANS, &key, |empty| empty.depth = 0)
    else {
        return 0;
    };
    // SAFETY: the thread's own map value; only this thread runs its probes.
    let stack = unsafe { &mut *stack };
    let depth = stack.depth;
    if depth < MAX_SPAN_DEPTH {
        *slot(stack, depth) = OpenSpan {
            // SAFETY: plain helper.
            start_ns: unsafe { bpf_ktime_get_ns() },
            subkey: subkey(&ctx, spec),
        };
    } else {
        count_lost(lost::TOO_DEEP);
    }
    // Deeper spans are not timed but still counted in the depth, so ends pair correctly.
    stack.depth = depth + 1;
    0
}

#[uprobe]
pub fn span_end(ctx: ProbeContext) -> u32 {
    // SAFETY: plain helper, read first so the span does not include this program's work.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(spec) = spec_of(&ctx) else { return 0 };
    let Some((_, tid)) = pid_tid() else {
        return 0;
    };
    let key = SpanThreadKey {
        tid,
        category: spec.tag,
    };
    let Some(stack) = OPEN_SPANS.get_ptr_mut(&key) else {
        return 0;
    };
    let Some((process, _)) = current_process(spec) else {
        return 0;
    };
    // SAFETY: as in span_begin.
    let stack = unsafe { &mut *stack };
    if stack.depth == 0 {
        return 0;
    }
    stack.depth -= 1;
    let depth = stack.depth;
    if depth >= MAX_SPAN_DEPTH {
        return 0;
    }
    let open = *slot(stack, depth);
    let duration = now.saturating_sub(open.start_ns);
    let value = summed_value(&ctx, spec);
    let totals_key = CountKey {
        pid: process.pid,
        category: spec.tag,
        subkey: open.subkey,
        epoch: process.epoch,
    };
    // The histogram before the totals: userspace reads the totals first, so every pause it
    // counts is already in the histogram it reads next (see `bpf::totals::read`).
    // Percentiles are shown for GC pauses only, over all kinds: one histogram per process.
    // A busy CPython's pauses spread over ~12,000 buckets per histogram; keyed by kind too,
    // and for every span category, a few processes filled the map in minutes.
    if spec.tag == category::GC {
        let hist_key = HistKey {
            pid: process.pid,
            category: spec.tag,
            subkey: 0,
            bucket: hist_bucket(duration),
            epoch: process.epoch,
        };
        accumulate(&SPAN_HIST, &hist_key, |n| *n += 1);
    }
    accumulate(&SPANS, &totals_key, |t: &mut SpanTotals| {
        t.count += 1;
        t.total_ns += duration;
        if duration > t.max_ns {
            t.max_ns = duration;
        }
        t.value_sum += value;
    });
    0
}

/// `span_subkey`: sets the subkey of the thread's innermost open span of the category, for a
/// runtime that decides what a span is about only after it began (CPython 3.13 enters its
/// collector with generation -1 for automatic collections and picks the generation inside).
#[uprobe]
pub fn span_subkey(ctx: ProbeContext) -> u32 {
    let Some(spec) = spec_of(&ctx) else { return 0 };
    let Some((_, tid)) = pid_tid() else {
        return 0;
    };
    let key = SpanThreadKey {
        tid,
        category: spec.tag,
    };
    let Some(stack) = OPEN_SPANS.get_ptr_mut(&key) else {
        return 0;
    };
    // SAFETY: as in span_begin.
    let stack = unsafe { &mut *stack };
    let depth = stack.depth;
    if depth == 0 || depth > MAX_SPAN_DEPTH {
        return 0;
    }
    slot(stack, depth - 1).subkey = subkey(&ctx, spec);
    0
}
