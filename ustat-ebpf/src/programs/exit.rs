//! The exit hook. In every exiting thread of a process that hit a probe (it is in `PROCS`),
//! the thread's open spans and call stack go at once; when the process's last thread exits,
//! the process is recorded in `EXITED` (userspace reads its last counts, then deletes its
//! keys) and leaves `PROCS`, so a later process with the same pid gets a new epoch. Other
//! processes cost one lookup.
//!
//! `process_exit` does it all on the `sched_process_exit` raw tracepoint, whose `group_dead`
//! argument (recent kernels; 6.18 has it) tells the last thread. Older kernels get
//! `thread_exit` there for the threads, and `last_thread_exit` on entry to `acct_process`
//! (fentry), which `do_exit` calls in the last thread only (before the tracepoint).

use aya_ebpf::{
    helpers::generated::bpf_ktime_get_boot_ns,
    macros::{fentry, raw_tracepoint},
    programs::{FEntryContext, RawTracePointContext},
};
use ustat_common::{ExitRecord, ProcessKey, SpanThreadKey, category, lost};

use super::{EXITED, OPEN_SPANS, PROCS, count_lost, flow::STACKS, name_from_main_thread, pid_tid};

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn process_exit(ctx: RawTracePointContext) -> u32 {
    // TP_PROTO(struct task_struct *p, bool group_dead)
    let group_dead: u64 = ctx.arg(1);
    exiting(group_dead & 0xff != 0);
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn thread_exit(_ctx: RawTracePointContext) -> u32 {
    exiting(false);
    0
}

#[fentry(function = "acct_process")]
pub fn last_thread_exit(_ctx: FEntryContext) -> u32 {
    exiting(true);
    0
}

/// The current thread is exiting; `last` says whether it is its process's last.
#[inline(always)]
fn exiting(last: bool) {
    let Some((pid, tid)) = pid_tid() else {
        return;
    };
    let Some(entry) = PROCS.get_ptr_mut(&pid) else {
        return;
    };
    // SAFETY: the process's entry; its other threads only ever set the same name.
    let entry = unsafe { &mut *entry };
    // The main thread exits before the last one or is the last: either way the process's
    // name is read from it here, if no probe hit of its own gave it.
    if tid == pid {
        name_from_main_thread(entry);
    }
    for category in 1..=category::LAST {
        let _ = OPEN_SPANS.remove(&SpanThreadKey { tid, category });
    }
    let _ = STACKS.remove(&tid);
    if !last {
        return;
    }
    let record = ExitRecord {
        // SAFETY: plain helper.
        exited_ns: unsafe { bpf_ktime_get_boot_ns() },
        process: *entry,
    };
    if EXITED
        .insert(&ProcessKey::new(pid, record.process.epoch), &record, 0)
        .is_err()
    {
        count_lost(lost::MAP_FULL);
    }
    let _ = PROCS.remove(&pid);
}
