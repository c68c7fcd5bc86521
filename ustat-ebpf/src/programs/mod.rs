//! The programs and the maps they share. Each program finds its probe's spec through the
//! attach cookie, which is the spec's index in `SPECS`.

mod record;

use aya_ebpf::{
    EbpfContext as _,
    helpers::generated::bpf_get_attach_cookie,
    macros::map,
    maps::{Array, PerCpuArray, RingBuf},
    programs::ProbeContext,
};
use ustat_common::ProbeSpec;

/// Room for every site of several runtimes (libjvm.so alone has about 500).
const MAX_SPECS: u32 = 16_384;

#[map]
static SPECS: Array<ProbeSpec> = Array::with_max_entries(MAX_SPECS, 0);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The spec of the site that fired.
#[inline(always)]
fn spec_of(ctx: &ProbeContext) -> Option<&'static ProbeSpec> {
    // SAFETY: the helper only reads the cookie stored with the running program's link.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    SPECS.get(cookie as u32)
}

/// Counts an event that did not fit in the ring buffer, so it is reported, not lost silently.
#[inline(always)]
fn count_drop() {
    if let Some(drops) = DROPS.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, so no other program writes it concurrently.
        unsafe { *drops += 1 };
    }
}
