//! The CPU sampler's HotSpot walker: from the interrupted registers (or, when the thread is
//! in the JVM's own code or the kernel, from its `JavaFrameAnchor`, the last Java frame the
//! JVM recorded), it unwinds interpreted and JIT-compiled frames, innermost first, recording
//! each frame's `Method*`. Code is found through the code cache's segment maps; compiled
//! frames are unwound by the frame size their code blob records, interpreted ones by the
//! frame pointer the interpreter always keeps. The walk stops where Java frames end (native
//! code outside the code cache). It only reads the process's memory.
//!
//! The frames are walked through `bpf_loop`, so the verifier checks one frame's code once.
//! The layout (`HotspotTarget`) comes from the JVM's own `gHotSpotVMStructs`, checked in
//! userspace; every value read here is bounded before it is used.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST},
    helpers::generated::bpf_loop,
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray},
    programs::PerfEventContext,
};
use ustat_common::{
    HotspotTarget, MAX_CODE_HEAPS, MAX_SAMPLE_DEPTH, SAMPLE_NATIVE, SampleKey, hotspot_frame,
    sample_status,
};

use super::sample::{SAMPLE_SCRATCH, fs_base, read};

#[map]
static HOTSPOT_TARGETS: HashMap<u32, HotspotTarget> =
    HashMap::with_max_entries(1_024, BPF_F_NO_PREALLOC);

#[map]
static UNLOADS: HashMap<u32, u64> = HashMap::with_max_entries(4_096, BPF_F_NO_PREALLOC);

/// Each sampled thread's `JavaThread*` (by tid), found once by a walk of the JVM's thread
/// list and checked against the thread's fs base before each use.
#[map]
static JAVA_THREADS: LruHashMap<u32, u64> = LruHashMap::with_max_entries(16_384, 0);

/// Where an entry frame (the call stub's) keeps its `JavaCallWrapper*`: six words below its
/// frame pointer (`entry_frame_call_wrapper_offset` in HotSpot's frame_x86.hpp, -6 since
/// JDK 7).
const ENTRY_FRAME_CALL_WRAPPER: u64 = 6 * 8;

/// Words above a compiled frame searched for its return address when the frame size does
/// not lead to it (async-profiler looks as far).
const RETURN_ADDRESS_SEARCH: usize = 7;

/// Bytes of a code blob's header read at once: every field the walk uses lies within.
const BLOB_READ: usize = 128;

/// Most segment-map steps back to a blob's first segment (the longest seen is 9).
const SEGMAP_STEPS: u32 = 16;

/// Most threads of one JVM looked through for the sampled thread's `JavaThread`.
const MAX_JAVA_THREADS: u32 = 512;

/// The first four bytes of the names of the code blobs that are Java methods: compiled
/// ("nmethod") and native wrappers ("native nmethod"), little-endian.
const NMETHOD: u32 = u32::from_le_bytes(*b"nmet");
const NATIVE_NMETHOD: u32 = u32::from_le_bytes(*b"nati");

/// One walk's state, per CPU (too big for the BPF stack).
#[repr(C)]
pub(super) struct Walk {
    pc: u64,
    sp: u64,
    fp: u64,
    /// 1 while the next frame is the innermost one, at the interrupted registers (not at an
    /// anchor): only that frame can be caught in its prologue or epilogue.
    top: u32,
    status: u32,
    blob: [u8; BLOB_READ],
}

#[map]
static HOTSPOT_WALK: PerCpuArray<Walk> = PerCpuArray::with_max_entries(1, 0);

/// The JVM `pid`'s target, when it is one: a reference into the map, not a copy of its
/// 224 bytes on every sample.
#[inline(always)]
pub(super) fn target(pid: u32) -> Option<&'static HotspotTarget> {
    // SAFETY: a map value; userspace replaces a target whole, and only while the process
    // is prepared, so a walk reads one layout or the next, each checked.
    unsafe { HOTSPOT_TARGETS.get(&pid) }
}

/// Counts one class unloaded by process `pid` (its `class__unloaded` probe fired). Two
/// CPUs unloading at once may add one between them: the count is a generation, and what
/// matters is that it changes.
#[inline(always)]
pub(super) fn count_unload(pid: u32) {
    if let Some(count) = UNLOADS.get_ptr_mut(&pid) {
        // SAFETY: the map's value, written in place.
        unsafe { *count += 1 };
        return;
    }
    if UNLOADS.insert(&pid, &1, BPF_NOEXIST.into()).is_err()
        && let Some(count) = UNLOADS.get_ptr_mut(&pid)
    {
        // SAFETY: as above (another CPU created the entry first).
        unsafe { *count += 1 };
    }
}

/// Fills `key` with the JVM thread's Java frames; returns the status.
#[inline(always)]
pub(super) fn walk(ctx: &PerfEventContext, target: &HotspotTarget, key: &mut SampleKey) -> u32 {
    // SAFETY: UNLOADS' value, copied at once.
    key.generation = unsafe { UNLOADS.get(&key.pid) }.map_or(0, |n| *n as u32);
    if target.heap_count == 0 {
        // Its layout is not known (yet): counted, not walked.
        return sample_status::UNREADABLE;
    }
    let Some(w) = HOTSPOT_WALK.get_ptr_mut(0) else {
        return sample_status::READ_FAILED;
    };
    // SAFETY: this CPU's scratch walk; no other program runs on this CPU meanwhile.
    let w = unsafe { &mut *w };
    w.status = sample_status::OK;
    // SAFETY: the perf event's context: the registers at the interrupt.
    let regs = unsafe { &(*ctx.ctx).regs };
    let in_user = regs.cs & 3 == 3;
    w.pc = if in_user { regs.rip } else { 0 };
    w.sp = regs.rsp;
    w.fp = regs.rbp;
    w.top = 1;
    if !in_java_code(target, w.pc) {
        // In the JVM's own code, native code or the kernel: Java frames resume where the
        // thread's anchor says, if it has one.
        let Some(thread) = java_thread(target) else {
            return sample_status::NO_JAVA_FRAME;
        };
        let (Some(sp), Some(pc), Some(fp)) = (
            read::<u64>(thread + u64::from(target.anchor_sp)),
            read::<u64>(thread + u64::from(target.anchor_pc)),
            read::<u64>(thread + u64::from(target.anchor_fp)),
        ) else {
            return sample_status::READ_FAILED;
        };
        if sp == 0 {
            return sample_status::NO_JAVA_FRAME;
        }
        // Without a recorded pc, the last Java frame's return address is just below sp.
        let pc = if pc == 0 {
            let Some(pc) = read::<u64>(sp - 8) else {
                return sample_status::READ_FAILED;
            };
            pc
        } else {
            pc
        };
        w.pc = pc;
        w.sp = sp;
        w.fp = fp;
        w.top = 0;
        key.frames[0] = SAMPLE_NATIVE;
        key.depth = 1;
    }
    let remaining = MAX_SAMPLE_DEPTH as u32 - key.depth;
    // SAFETY: `one_frame` has the callback signature bpf_loop expects; it takes its state
    // from the per-CPU scratch maps, so the context pointer is unused.
    unsafe {
        bpf_loop(
            remaining,
            one_frame as *mut core::ffi::c_void,
            core::ptr::null_mut(),
            0,
        );
    }
    if w.status == sample_status::OK && w.pc != 0 && key.depth as usize == MAX_SAMPLE_DEPTH {
        return sample_status::TRUNCATED;
    }
    if key.depth == 0 {
        return sample_status::NO_JAVA_FRAME;
    }
    w.status
}

/// `bpf_loop` callback: unwinds one frame. 0 goes on, 1 stops.
extern "C" fn one_frame(_index: u64, _context: *mut core::ffi::c_void) -> i64 {
    let (Some(w), Some(key)) = (HOTSPOT_WALK.get_ptr_mut(0), SAMPLE_SCRATCH.get_ptr_mut(0)) else {
        return 1;
    };
    // SAFETY: this CPU's scratch entries, as in `walk`.
    let (w, key) = unsafe { (&mut *w, &mut *key) };
    let Some(target) = target(key.pid) else {
        return 1;
    };
    let top = w.top == 1;
    w.top = 0;
    let pc = w.pc;
    if pc == 0 {
        return 1;
    }
    if pc == target.call_stub_return {
        return through_native_code(target, w, key);
    }
    if pc >= target.interpreter_low && pc < target.interpreter_high {
        return interpreted(w, key);
    }
    let Some(blob) = code_blob(target, pc) else {
        // Out of the code cache: Java frames are called only from Java code or the call
        // stub, so the frame before was unwound wrong.
        w.status = sample_status::READ_FAILED;
        return 1;
    };
    if blob == 0 {
        w.status = sample_status::READ_FAILED;
        return 1;
    }
    compiled(target, w, key, blob, top)
}

/// The call stub's frame, where the JVM's native code called Java: the Java frames that
/// called that native code resume where the stub's `JavaCallWrapper` saved the thread's
/// anchor (none: this is the thread's first Java call).
#[inline(always)]
fn through_native_code(t: &HotspotTarget, w: &mut Walk, key: &mut SampleKey) -> i64 {
    let Some(wrapper) = read::<u64>(w.fp.wrapping_sub(ENTRY_FRAME_CALL_WRAPPER)) else {
        w.status = sample_status::READ_FAILED;
        return 1;
    };
    let (Some(sp), Some(pc), Some(fp)) = (
        read::<u64>(wrapper + u64::from(t.wrapper_sp)),
        read::<u64>(wrapper + u64::from(t.wrapper_pc)),
        read::<u64>(wrapper + u64::from(t.wrapper_fp)),
    ) else {
        w.status = sample_status::READ_FAILED;
        return 1;
    };
    if sp == 0 {
        w.pc = 0;
        return 1;
    }
    let pc = if pc == 0 {
        match read::<u64>(sp - 8) {
            Some(pc) => pc,
            None => {
                w.status = sample_status::READ_FAILED;
                return 1;
            }
        }
    } else {
        pc
    };
    if !push(key, SAMPLE_NATIVE) {
        return 1;
    }
    w.sp = sp;
    w.pc = pc;
    w.fp = fp;
    0
}

/// An interpreted frame: the interpreter keeps `rbp` as its frame pointer, with the
/// `Method*` three words below it and the caller's sp one word below.
#[inline(always)]
fn interpreted(w: &mut Walk, key: &mut SampleKey) -> i64 {
    let fp = w.fp;
    // A frame pointer far from sp is not this frame's (the frame is being built).
    if fp < w.sp || fp - w.sp >= 0x10000 {
        w.status = sample_status::READ_FAILED;
        return 1;
    }
    let Some(frame) = read::<[u64; 5]>(fp - 24) else {
        w.status = sample_status::READ_FAILED;
        return 1;
    };
    let [method, _, sender_sp, saved_fp, return_pc] = frame;
    if !push(key, method | hotspot_frame::INTERPRETED) {
        return 1;
    }
    w.sp = sender_sp;
    w.fp = saved_fp;
    w.pc = return_pc;
    0
}

/// A frame in a code blob: a Java method's (compiled or a native wrapper: recorded) or a
/// stub's (unwound, not recorded).
#[inline(always)]
fn compiled(t: &HotspotTarget, w: &mut Walk, key: &mut SampleKey, blob: u64, top: bool) -> i64 {
    // SAFETY: the helper checks the user address; it writes at most BLOB_READ bytes.
    if unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user(
            w.blob.as_mut_ptr().cast(),
            BLOB_READ as u32,
            blob as *const core::ffi::c_void,
        )
    } != 0
    {
        w.status = sample_status::READ_FAILED;
        return 1;
    }
    let (Some(name), Some(frame_words)) = (
        field::<u64>(&w.blob, t.blob_name),
        field::<u32>(&w.blob, t.blob_frame_size),
    ) else {
        w.status = sample_status::READ_FAILED;
        return 1;
    };
    let frame_complete = if t.blob_frame_complete_width == 2 {
        field::<u16>(&w.blob, t.blob_frame_complete).map(u64::from)
    } else {
        field::<u32>(&w.blob, t.blob_frame_complete).map(u64::from)
    };
    let code = if t.blob_code_is_offset != 0 {
        field::<u32>(&w.blob, t.blob_code).map(|offset| blob + u64::from(offset))
    } else {
        field::<u64>(&w.blob, t.blob_code)
    };
    let (Some(frame_complete), Some(code), Some(kind)) = (frame_complete, code, read::<u32>(name))
    else {
        w.status = sample_status::READ_FAILED;
        return 1;
    };
    let frame_size = u64::from(frame_words) * 8;
    if kind == NMETHOD || kind == NATIVE_NMETHOD {
        let Some(method) = field::<u64>(&w.blob, t.nmethod_method) else {
            w.status = sample_status::READ_FAILED;
            return 1;
        };
        if !push(key, method | hotspot_frame::COMPILED) {
            return 1;
        }
        if top && w.pc < code + frame_complete {
            // Interrupted in its prologue: the return address is on the stack, and then
            // perhaps the caller's rbp, but not the whole frame yet.
            return from_partial_frame(t, w);
        }
    } else if frame_size == 0 {
        // A stub that keeps a frame pointer (the call stub, among others).
        let fp = w.fp;
        return match read::<[u64; 2]>(fp) {
            Some([saved_fp, return_pc]) => {
                w.sp = fp + 16;
                w.fp = saved_fp;
                w.pc = return_pc;
                0
            }
            None => 1,
        };
    }
    // The frame's size counts the return address and the saved rbp just below the
    // caller's sp.
    let sender_sp = w.sp + frame_size;
    match read::<[u64; 2]>(sender_sp - 16) {
        Some([saved_fp, return_pc]) if returns_to_java(t, return_pc) => {
            w.sp = sender_sp;
            w.fp = saved_fp;
            w.pc = return_pc;
            0
        }
        // The innermost frame may be in its epilogue, its frame already popped, or in code
        // that pushed more below it (a GC barrier's slow path).
        _ if top => {
            if from_partial_frame(t, w) == 0 {
                return 0;
            }
            w.status = sample_status::OK;
            from_return_address_above(t, w, sender_sp)
        }
        _ => {
            w.status = sample_status::READ_FAILED;
            1
        }
    }
}

/// Unwinds an innermost compiled frame interrupted while it was being built or taken down:
/// the return address is at sp (before `push rbp`, after `pop rbp`) or one word above it
/// (the caller's rbp below it). The first that returns into Java code is taken; if neither
/// does, the walk says so rather than guess.
#[inline(always)]
fn from_partial_frame(t: &HotspotTarget, w: &mut Walk) -> i64 {
    let Some([first, second]) = read::<[u64; 2]>(w.sp) else {
        w.status = sample_status::READ_FAILED;
        return 1;
    };
    if returns_to_java(t, first) {
        w.sp += 8;
        w.pc = first;
        return 0;
    }
    if returns_to_java(t, second) {
        w.fp = first;
        w.sp += 16;
        w.pc = second;
        return 0;
    }
    w.status = sample_status::READ_FAILED;
    1
}

/// Unwinds an innermost compiled frame whose code pushed words below its frame (x86 code
/// can, beyond the frame size its blob records): the return address is then one of the few
/// words above where the frame size puts it, the caller's rbp just below it. The first that
/// returns into Java code is taken (async-profiler and the OpenTelemetry profiler do the
/// same); if none does, the walk says so.
#[inline(always)]
fn from_return_address_above(t: &HotspotTarget, w: &mut Walk, sender_sp: u64) -> i64 {
    let Some(words) = read::<[u64; RETURN_ADDRESS_SEARCH + 1]>(sender_sp - 16) else {
        w.status = sample_status::READ_FAILED;
        return 1;
    };
    // words[0] is where the caller's rbp would be, words[1] the return address: both
    // were checked already. Each next pair is one more pushed word.
    for i in 2..=RETURN_ADDRESS_SEARCH {
        if returns_to_java(t, words[i]) {
            w.fp = words[i - 1];
            w.sp = sender_sp + 8 * (i as u64 - 1);
            w.pc = words[i];
            return 0;
        }
    }
    w.status = sample_status::READ_FAILED;
    1
}

/// Whether a Java frame's return address is plausible: Java frames are called from Java code
/// or from the call stub.
#[inline(always)]
fn returns_to_java(t: &HotspotTarget, pc: u64) -> bool {
    pc == t.call_stub_return || in_java_code(t, pc)
}

/// Records one frame; false when the key is full.
#[inline(always)]
fn push(key: &mut SampleKey, entry: u64) -> bool {
    let depth = key.depth as usize;
    if depth >= MAX_SAMPLE_DEPTH {
        return false;
    }
    key.frames[depth] = entry;
    key.depth += 1;
    true
}

/// A field of the blob header read into `blob`, at a bounded offset.
#[inline(always)]
fn field<T: Copy>(blob: &[u8; BLOB_READ], offset: u32) -> Option<T> {
    let offset = offset as usize;
    if offset > BLOB_READ - core::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: in bounds (checked above); an unaligned read of plain bytes.
    Some(unsafe { core::ptr::read_unaligned(blob.as_ptr().add(offset).cast::<T>()) })
}

/// Whether `pc` is in the JVM's generated code: the interpreter or a code heap.
#[inline(always)]
fn in_java_code(t: &HotspotTarget, pc: u64) -> bool {
    if pc == 0 {
        return false;
    }
    if pc >= t.interpreter_low && pc < t.interpreter_high {
        return true;
    }
    for i in 0..MAX_CODE_HEAPS {
        let heap = &t.heaps[i];
        if (i as u32) < t.heap_count && pc >= heap.low && pc < heap.high {
            return true;
        }
    }
    false
}

/// The code blob holding `pc`: None when `pc` is in no code heap, Some(0) when its heap's
/// segment map cannot be read or says the segment is free.
#[inline(always)]
fn code_blob(t: &HotspotTarget, pc: u64) -> Option<u64> {
    let mut found = None;
    for i in 0..MAX_CODE_HEAPS {
        let heap = &t.heaps[i];
        if (i as u32) < t.heap_count && pc >= heap.low && pc < heap.high {
            found = Some(*heap);
        }
    }
    let heap = found?;
    let shift = heap.log2_segment & 31;
    let mut segment = (pc - heap.low) >> shift;
    // Each byte of the map counts back towards the segment the block starts in: 0 there,
    // 0xff for a free segment.
    for _ in 0..SEGMAP_STEPS {
        let Some(tag) = read::<u8>(heap.segmap + segment) else {
            return Some(0);
        };
        if tag == 0 {
            return Some(heap.low + (segment << shift) + u64::from(t.heap_block_size));
        }
        if tag == 0xff || u64::from(tag) > segment {
            return Some(0);
        }
        segment -= u64::from(tag);
    }
    Some(0)
}

/// The sampled thread's `JavaThread*`: cached by tid, checked by its pthread id (the
/// thread's fs base), else found in the JVM's thread list.
#[inline(always)]
fn java_thread(t: &HotspotTarget) -> Option<u64> {
    let self_id = fs_base()?;
    let tid = aya_ebpf::helpers::bpf_get_current_pid_tgid() as u32;
    let pthread_of = |thread: u64| -> Option<u64> {
        let osthread = read::<u64>(thread + u64::from(t.thread_osthread))?;
        read::<u64>(osthread + u64::from(t.osthread_pthread_id))
    };
    // SAFETY: copied at once.
    if let Some(&thread) = unsafe { JAVA_THREADS.get(&tid) }
        && pthread_of(thread) == Some(self_id)
    {
        return Some(thread);
    }
    let list = read::<u64>(t.thread_list)?;
    let length = read::<u32>(list + u64::from(t.list_length))?;
    let threads = read::<u64>(list + u64::from(t.list_threads))?;
    for i in 0..MAX_JAVA_THREADS {
        if i >= length {
            break;
        }
        let Some(thread) = read::<u64>(threads + u64::from(i) * 8) else {
            break;
        };
        if pthread_of(thread) == Some(self_id) {
            let _ = JAVA_THREADS.insert(&tid, &thread, 0);
            return Some(thread);
        }
    }
    None
}
