//! `process_exit`: on the `sched_process_exit` tracepoint, which runs in every exiting
//! thread. For a process that hit a probe (it is in `PROCS`), the thread's open spans and
//! call stack go at once; when its last thread exits, the process is recorded in `EXITED`
//! (userspace reads its last counts, then deletes its keys) and leaves `PROCS`, so a later
//! process with the same pid gets a new epoch. Other processes cost one lookup.

use aya_ebpf::{
    helpers::generated::bpf_ktime_get_boot_ns, macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use ustat_common::{ProcessKey, SpanThreadKey, category, lost};

use super::{EXITED, OPEN_SPANS, PROCS, count_lost, flow::STACKS, pid_tid};

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn process_exit(ctx: RawTracePointContext) -> u32 {
    let (pid, tid) = pid_tid();
    // SAFETY: copied at once.
    let Some(epoch) = (unsafe { PROCS.get(&pid) }).map(|entry| entry.epoch) else {
        return 0;
    };
    for category in 1..=category::LAST {
        let _ = OPEN_SPANS.remove(&SpanThreadKey { tid, category });
    }
    let _ = STACKS.remove(&tid);
    // TP_PROTO(struct task_struct *p, bool group_dead): the last thread of the process.
    let group_dead: u64 = ctx.arg(1);
    if group_dead & 0xff == 0 {
        return 0;
    }
    // SAFETY: plain helper.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    if EXITED
        .insert(&ProcessKey::new(pid, epoch), &now, 0)
        .is_err()
    {
        count_lost(lost::MAP_FULL);
    }
    let _ = PROCS.remove(&pid);
    0
}
