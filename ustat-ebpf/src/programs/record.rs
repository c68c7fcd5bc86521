//! `record`: sends every hit with all of its arguments to userspace (`ustat trace`).

use aya_ebpf::{
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns},
    macros::uprobe,
    programs::ProbeContext,
};
use ustat_common::{ArgsEvent, EventHeader, MAX_ARGS, event_kind, lost};

use super::{EVENTS, count_lost, pid_tid, spec_of};
use crate::args;

#[uprobe]
pub fn record(ctx: ProbeContext) -> u32 {
    let Some(spec) = spec_of(&ctx) else { return 0 };
    let Some((pid, tid)) = pid_tid() else {
        return 0;
    };
    let Some(mut entry) = EVENTS.reserve::<ArgsEvent>(0) else {
        count_lost(lost::RING_FULL);
        return 0;
    };
    let mut event = ArgsEvent {
        header: EventHeader {
            kind: event_kind::ARGS,
            pid,
            tid,
            // SAFETY: plain helpers without arguments.
            cpu: unsafe { bpf_get_smp_processor_id() },
            ts_ns: unsafe { bpf_ktime_get_ns() },
        },
        tag: spec.tag,
        nargs: u16::from(spec.nargs),
        failed: 0,
        args: [0; MAX_ARGS],
    };
    // Unrolled: the verifier cannot prune paths inside a loop that is still being explored,
    // and 12 iterations of a 5-way branch exceed its budget. Straight-line copies prune well.
    let nargs = usize::from(spec.nargs);
    macro_rules! read_args {
        ($($i:literal)*) => {
            'all: {
                $(
                    if $i >= nargs {
                        break 'all;
                    }
                    match args::read(&ctx, spec, $i) {
                        Ok(value) => event.args[$i] = value,
                        Err(_) => event.failed |= 1 << $i,
                    }
                )*
            }
        };
    }
    read_args!(0 1 2 3 4 5 6 7 8 9 10 11);
    entry.write(event);
    entry.submit(0);
    0
}
