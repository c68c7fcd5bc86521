//! `span_begin` / `span_end`: time what happens between two probes on one thread (a GC, an
//! import). Each thread keeps a stack of open spans per category, so nested spans pair
//! correctly; an end without a begin (ustat attached mid-span) is ignored.

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::uprobe, programs::ProbeContext};
use ustat_common::{
    CountKey, HistKey, MAX_SPAN_DEPTH, OpenSpan, OpenSpanKey, SpanThreadKey, SpanTotals,
    hist_bucket, lost,
};

use super::{
    OPEN_SPANS, SPAN_DEPTH, SPAN_HIST, SPANS, accumulate, count_lost, pid_tid, spec_of, subkey,
    summed_value,
};

#[uprobe]
pub fn span_begin(ctx: ProbeContext) -> u32 {
    let Some(spec) = spec_of(&ctx) else { return 0 };
    let (_, tid) = pid_tid();
    let thread = SpanThreadKey {
        tid,
        category: spec.tag,
    };
    // SAFETY: a copy is taken at once; only this thread touches its entry.
    let depth = unsafe { SPAN_DEPTH.get(&thread) }.copied().unwrap_or(0);
    if depth < MAX_SPAN_DEPTH {
        let open = OpenSpan {
            // SAFETY: plain helper.
            start_ns: unsafe { bpf_ktime_get_ns() },
            subkey: subkey(&ctx, spec),
        };
        let key = OpenSpanKey {
            tid,
            category: spec.tag,
            depth,
            _pad: 0,
        };
        if OPEN_SPANS.insert(&key, &open, 0).is_err() {
            count_lost(lost::MAP_FULL);
        }
    } else {
        count_lost(lost::TOO_DEEP);
    }
    // Deeper spans are not timed but still counted in the depth, so ends pair correctly.
    if SPAN_DEPTH.insert(&thread, &(depth + 1), 0).is_err() {
        count_lost(lost::MAP_FULL);
    }
    0
}

#[uprobe]
pub fn span_end(ctx: ProbeContext) -> u32 {
    // SAFETY: plain helper, read first so the span does not include this program's work.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(spec) = spec_of(&ctx) else { return 0 };
    let (pid, tid) = pid_tid();
    let thread = SpanThreadKey {
        tid,
        category: spec.tag,
    };
    // SAFETY: as in span_begin.
    let Some(&depth) = (unsafe { SPAN_DEPTH.get(&thread) }) else {
        return 0;
    };
    if depth == 0 {
        return 0;
    }
    let depth = depth - 1;
    let _ = if depth == 0 {
        SPAN_DEPTH.remove(&thread)
    } else {
        SPAN_DEPTH.insert(&thread, &depth, 0)
    };
    let key = OpenSpanKey {
        tid,
        category: spec.tag,
        depth,
        _pad: 0,
    };
    // SAFETY: copied at once, then removed.
    let Some(open) = (unsafe { OPEN_SPANS.get(&key) }).copied() else {
        return 0;
    };
    let _ = OPEN_SPANS.remove(&key);

    let duration = now.saturating_sub(open.start_ns);
    let value = summed_value(&ctx, spec);
    let totals_key = CountKey {
        pid,
        category: spec.tag,
        subkey: open.subkey,
    };
    let first = SpanTotals {
        count: 1,
        total_ns: duration,
        max_ns: duration,
        value_sum: value,
    };
    accumulate(&SPANS, &totals_key, &first, |t| {
        t.count += 1;
        t.total_ns += duration;
        if duration > t.max_ns {
            t.max_ns = duration;
        }
        t.value_sum += value;
    });
    let hist_key = HistKey {
        pid,
        category: spec.tag,
        subkey: open.subkey,
        bucket: hist_bucket(duration),
    };
    accumulate(&SPAN_HIST, &hist_key, &1, |n| *n += 1);
    0
}
