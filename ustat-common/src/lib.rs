//! Types shared by ustat's eBPF programs and its userspace.
//!
//! Everything here crosses the kernel/user boundary, so it is `#[repr(C)]`, built from
//! fixed-width integers with explicit padding, and its size is asserted.
#![no_std]

use core::mem::size_of;

/// Most arguments a USDT probe can have (libbpf's limit too).
pub const MAX_ARGS: usize = 12;

/// Map names, used by the eBPF side (as the static's name) and by userspace to find them.
pub mod maps {
    /// `Array<ProbeSpec>`: how to read each probe's arguments and what to do with them.
    pub const SPECS: &str = "SPECS";
    /// `RingBuf` of events (`EventHeader` first).
    pub const EVENTS: &str = "EVENTS";
    /// `PerCpuArray<u64>` indexed by `lost::*`: what could not be recorded, and why.
    pub const LOST: &str = "LOST";
    /// `PerCpuHashMap<CountKey, CountValue>`: per-process event counts.
    pub const COUNTS: &str = "COUNTS";
    /// `HashMap<SpanThreadKey, SpanStack>`: each thread's open spans, per category.
    pub const OPEN_SPANS: &str = "OPEN_SPANS";
    /// `PerCpuHashMap<CountKey, SpanTotals>`: finished spans per process.
    pub const SPANS: &str = "SPANS";
    /// `PerCpuHashMap<HistKey, u64>`: span durations (GCs, imports), bucketed like
    /// HdrHistogram. Method durations have their own map, so a process with many methods can
    /// neither fill this one nor slow down reading it.
    pub const SPAN_HIST: &str = "SPAN_HIST";
    /// `PerCpuHashMap<HistKey, u64>`: method call durations (category `METHOD_TIME`, subkey
    /// `method_hash`), bucketed like `SPAN_HIST`.
    pub const METHOD_HIST: &str = "METHOD_HIST";
    /// `PerCpuHashMap<KeyedKey, CountValue>`: counts per key (method, class, ...).
    pub const KEYED: &str = "KEYED";
    /// `HashMap<KeyedKey, u8>`: keys whose names userspace never received (the ring buffer
    /// was full when the key was new). `keyed` sends them again on the key's next hit and
    /// removes the request when the send succeeds.
    pub const NAME_REQUESTS: &str = "NAME_REQUESTS";
    /// `Array<u32>` with one entry: nonzero while `NAME_REQUESTS` may hold keys, so hits
    /// skip looking there when no name is missing.
    pub const NAMES_WANTED: &str = "NAMES_WANTED";
    /// `HashMap<u32, ThreadStack>`: each traced thread's shadow stack of method calls.
    pub const STACKS: &str = "STACKS";
    /// `PerCpuHashMap<CountKey, MethodTotals>`: timing per method (subkey: `method_hash`).
    pub const METHODS: &str = "METHODS";
    /// `PerCpuHashMap<CountKey, PathTotals>`: calls per call path (subkey: the path's hash).
    pub const PATHS: &str = "PATHS";
    /// `Array<FlowConfig>` with one entry: whether to send flow events, and the filter.
    pub const FLOW_CONFIG: &str = "FLOW_CONFIG";
    /// `LruHashMap<CountKey, u32>`: per method, the filter generation it passed (subkey:
    /// `method_hash`), so the name is compared once per method and filter.
    pub const FLOW_PASS: &str = "FLOW_PASS";
    /// `HashMap<u32, ProcessEntry>`: by tgid, each process that hit a probe and has not
    /// exited, with its epoch (the second half of every per-process key).
    pub const PROCS: &str = "PROCS";
    /// `HashMap<ProcessKey, ExitRecord>`: processes that exited (when, and what identifies
    /// them), so userspace reads their last counts, also of processes it never listed, and
    /// then deletes their keys.
    pub const EXITED: &str = "EXITED";
    /// `Array<PidNamespace>` with one entry: the PID namespace ustat runs in, whose ids the
    /// programs report (all zero: the root namespace, the kernel's own ids).
    pub const PID_NAMESPACE: &str = "PID_NAMESPACE";
    /// `PerCpuArray<[u8; NAME_LEN]>` with one entry: where a `CSTR_TEXT` key's string is
    /// read to be hashed (it does not fit on the BPF stack).
    pub const TEXT_SCRATCH: &str = "TEXT_SCRATCH";
    /// `HashMap<u32, SampleTarget>`: by pid (in ustat's namespace), the processes the CPU
    /// sampler walks, with their interpreter's layout and addresses (filled by userspace).
    pub const SAMPLE_TARGETS: &str = "SAMPLE_TARGETS";
    /// `PerCpuHashMap<SampleKey, u64>`: samples per process and stack, since the process
    /// became a target.
    pub const SAMPLE_STACKS: &str = "SAMPLE_STACKS";
    /// `Array<SampleConfig>` with one entry: what the sampler needs of the kernel.
    pub const SAMPLE_CONFIG: &str = "SAMPLE_CONFIG";
    /// `HashMap<u32, HotspotTarget>`: by pid, the JVMs the CPU sampler walks, with where
    /// their code lives and how to read it (from their `gHotSpotVMStructs`).
    pub const HOTSPOT_TARGETS: &str = "HOTSPOT_TARGETS";
    /// `HashMap<u32, u64>`: by pid, how many classes a JVM has unloaded since it was first
    /// hit (its `class__unloaded` probe), so a sampled `Method*` is named only while its
    /// memory cannot have been reused (`SampleKey::generation`).
    pub const UNLOADS: &str = "UNLOADS";
    /// `Array<TraceConfig>`, indexed by `ProbeSpec::tag`: what `ustat trace`'s programs do
    /// with the values a site's spec locates (format, filter, mode).
    pub const TRACE_CONFIGS: &str = "TRACE_CONFIGS";
    /// `PerCpuHashMap<TraceCountKey, u64>`: `ustat trace --count`'s counts per value.
    pub const TRACE_COUNTS: &str = "TRACE_COUNTS";
    /// `HashMap<LatencyThreadKey, u64>`: when each thread entered each probed function
    /// (`ustat trace --latency`).
    pub const TRACE_STARTS: &str = "TRACE_STARTS";
    /// `PerCpuHashMap<HistKey, u64>`: call durations per probe (`category` is the probe id,
    /// pid and epoch 0), bucketed like `SPAN_HIST`.
    pub const TRACE_HIST: &str = "TRACE_HIST";
    /// `PerCpuHashMap<u32, SpanTotals>`: calls, total and longest duration per probe id.
    pub const TRACE_LATENCY: &str = "TRACE_LATENCY";

    /// Every map above (userspace checks them against the built object).
    pub const ALL: &[&str] = &[
        SPECS,
        EVENTS,
        LOST,
        COUNTS,
        OPEN_SPANS,
        SPANS,
        SPAN_HIST,
        METHOD_HIST,
        KEYED,
        NAME_REQUESTS,
        NAMES_WANTED,
        STACKS,
        METHODS,
        PATHS,
        FLOW_CONFIG,
        FLOW_PASS,
        PROCS,
        EXITED,
        PID_NAMESPACE,
        TEXT_SCRATCH,
        SAMPLE_TARGETS,
        SAMPLE_STACKS,
        SAMPLE_CONFIG,
        HOTSPOT_TARGETS,
        UNLOADS,
        TRACE_CONFIGS,
        TRACE_COUNTS,
        TRACE_STARTS,
        TRACE_HIST,
        TRACE_LATENCY,
    ];
}

/// Slots of the `LOST` map.
pub mod lost {
    /// Events not sent: the ring buffer was full.
    pub const RING_FULL: u32 = 0;
    /// Hits not counted: an aggregation map (or `PROCS`) was full. Also a process whose exit
    /// could not be recorded because `EXITED` was full (its keys then stay until ustat ends).
    pub const MAP_FULL: u32 = 1;
    /// Spans not timed: a thread nested more than `MAX_SPAN_DEPTH` of one category.
    pub const TOO_DEEP: u32 = 2;
    /// Values not summed: negative, or not below the spec's `value_max` (a runtime passed
    /// garbage; the hit itself is still counted).
    pub const BAD_VALUE: u32 = 3;
    pub const SLOTS: u32 = 4;
}

/// What a runtime event counts as. The kernel only passes these through; userspace gives
/// them meaning.
pub mod category {
    pub const GC: u32 = 1;
    pub const CLASS_LOADED: u32 = 2;
    pub const CLASS_UNLOADED: u32 = 3;
    pub const THREAD_STARTED: u32 = 4;
    pub const THREAD_STOPPED: u32 = 5;
    pub const METHOD_CALL: u32 = 6;
    pub const OBJECT_ALLOC: u32 = 7;
    pub const MONITOR_CONTENDED: u32 = 8;
    /// Memory pool usage when a GC starts (value: bytes used), keyed by manager and pool.
    pub const POOL_GC_BEGIN: u32 = 9;
    /// Memory pool usage when a GC ends (value: bytes used), keyed by manager and pool.
    pub const POOL_GC_END: u32 = 10;
    pub const IMPORT: u32 = 11;
    /// An HTTP message parsed; the subkey is llhttp's type: 1 request, 2 response.
    pub const HTTP_PARSED: u32 = 12;
    /// Method timing (`METHODS`, and durations in `METHOD_HIST`): the subkey is `method_hash`.
    pub const METHOD_TIME: u32 = 13;
    /// Call paths (`PATHS`): the subkey is the path's hash.
    pub const CALL_PATH: u32 = 14;
    /// An exception raised or thrown (Ruby, PHP), keyed by its class.
    pub const EXCEPTION: u32 = 15;
    /// Time in a GC's sweep phase (Ruby sweeps lazily, in steps after the mark): spans
    /// beside the GC's, not GCs of their own.
    pub const GC_SWEEP: u32 = 16;
    /// An exception caught (PHP).
    pub const EXCEPTION_CAUGHT: u32 = 17;
    /// An error the runtime reported (PHP's E_WARNING, E_NOTICE, ...).
    pub const RUNTIME_ERROR: u32 = 18;
    /// A request, from its startup to its shutdown (PHP: php-fpm, mod_php, one per CLI run).
    pub const REQUEST: u32 = 19;
    /// Time in imports, not a count of them: CPython's import probes, which fire on the
    /// `import` statement's path only, where the modules loaded are counted under `IMPORT`
    /// from the module objects the import system creates (every path).
    pub const IMPORT_TIME: u32 = 20;
    /// The highest category: the exit hook clears a thread's open spans of 1..=LAST.
    pub const LAST: u32 = IMPORT_TIME;
    /// Not counted by the kernel: the bytes of `OBJECT_ALLOC`, named in a "not traced" line
    /// where a runtime's sizes cannot be trusted (its counts still are).
    pub const ALLOC_BYTES: u32 = 64;
}

/// Most calls a thread's shadow stack holds; deeper calls are counted (`lost::TOO_DEEP`)
/// and kept in the depth, but not timed.
pub const MAX_STACK: usize = 128;

/// Mixes a method's key values into the hash that identifies it in the stack, timing and
/// path maps (the kernel and userspace compute it alike).
#[inline(always)]
pub fn method_hash(keys: &[u64; KEY_SLOTS]) -> u64 {
    let mut hash: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut i = 0;
    while i < KEY_SLOTS {
        hash = mix(hash ^ keys[i]);
        i += 1;
    }
    hash
}

/// The hash of a call path: its parent path's hash and the method called.
#[inline(always)]
pub fn path_hash(parent: u64, method: u64) -> u64 {
    mix(parent.rotate_left(17) ^ method)
}

/// splitmix64's finalizer.
#[inline(always)]
const fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Most spans of one category a thread can have open at once (nested imports, say).
pub const MAX_SPAN_DEPTH: u32 = 32;

/// Significant bits kept of a span duration: HdrHistogram with 3 significant decimal digits
/// has 2048 sub-buckets, so truncating a duration to its top 11 bits gives the lowest value
/// of the HdrHistogram bucket it falls in. The kernel counts per truncated value; userspace
/// records each into an HdrHistogram and gets exactly the histogram of the raw durations.
pub const HIST_SIGNIFICANT_BITS: u32 = 11;

/// The lowest value of `value`'s HdrHistogram bucket (see `HIST_SIGNIFICANT_BITS`).
#[inline(always)]
pub fn hist_bucket(value: u64) -> u64 {
    let bits = 64 - value.leading_zeros();
    if bits <= HIST_SIGNIFICANT_BITS {
        return value;
    }
    let shift = bits - HIST_SIGNIFICANT_BITS;
    (value >> shift) << shift
}

/// Where a USDT argument lives (`ArgSpec::kind`).
pub mod arg_kind {
    /// `N@$IMM`: the value is `val_off`.
    pub const CONST: u8 = 0;
    /// `N@%reg`: the value is in the register at `reg_off`.
    pub const REG: u8 = 1;
    /// `N@OFF(%reg)`: the value is in user memory at `reg + val_off`.
    pub const MEM: u8 = 2;
    /// `N@OFF(%base,%index,SCALE)`: user memory at `base + index * scale + val_off`
    /// (`reg_off` is `NO_REG` when there is no base).
    pub const MEM_INDEXED: u8 = 3;
    /// `N@sym+OFF(%rip)`: user memory at the probe's run-time address plus `val_off`
    /// (the symbol's distance from the probe), which works wherever the binary is loaded.
    pub const MEM_PROBE_RELATIVE: u8 = 4;
}

/// "No register" in `ArgSpec::reg_off`: a base of zero.
pub const NO_REG: u16 = 0xffff;

/// Byte offsets of the x86-64 registers in the kernel's `struct pt_regs`.
pub mod pt_regs {
    pub const R15: u16 = 0;
    pub const R14: u16 = 8;
    pub const R13: u16 = 16;
    pub const R12: u16 = 24;
    pub const RBP: u16 = 32;
    pub const RBX: u16 = 40;
    pub const R11: u16 = 48;
    pub const R10: u16 = 56;
    pub const R9: u16 = 64;
    pub const R8: u16 = 72;
    pub const RAX: u16 = 80;
    pub const RCX: u16 = 88;
    pub const RDX: u16 = 96;
    pub const RSI: u16 = 104;
    pub const RDI: u16 = 112;
    pub const ORIG_AX: u16 = 120;
    pub const IP: u16 = 128;
    pub const CS: u16 = 136;
    pub const FLAGS: u16 = 144;
    pub const SP: u16 = 152;
    pub const SS: u16 = 160;
    /// The last valid offset; the eBPF side refuses anything beyond.
    pub const LAST: u16 = SS;
}

/// How to read one USDT argument.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ArgSpec {
    /// The constant, or the displacement added to the address.
    pub val_off: i64,
    /// `pt_regs` offset of the register (or of the base register).
    pub reg_off: u16,
    /// `pt_regs` offset of the index register (`MEM_INDEXED` only).
    pub index_reg_off: u16,
    /// One of `arg_kind`.
    pub kind: u8,
    /// Width in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// 1 when the value is signed (sign-extended to 64 bits), else 0 (zero-extended).
    pub signed: u8,
    /// Index scale (`MEM_INDEXED` only): 1, 2, 4 or 8.
    pub scale: u8,
}
const _: () = assert!(size_of::<ArgSpec>() == 16);

/// "No argument" in the argument-index fields of `ProbeSpec`.
pub const NO_ARG: u8 = 0xff;

/// What the `keyed` program does with one argument of the key (`KeyArg::kind`).
pub mod key_kind {
    /// This slot of the key is unused (0).
    pub const NONE: u8 = 0;
    /// The argument's value is the key; it has no name.
    pub const VALUE: u8 = 1;
    /// The argument points at a string whose length is argument `len_arg` (HotSpot's names,
    /// which are not NUL-terminated). The pointer is the key; the string is its name.
    pub const PTR_LEN: u8 = 2;
    /// The argument points at a NUL-terminated string (CPython's, Ruby's names).
    pub const CSTR: u8 = 3;
    /// The argument points at a NUL-terminated string whose pointer is not stable (Ruby
    /// passes class names in fresh temporary strings): the key is a hash of the string's
    /// bytes (`text_hash`), and the string is its name.
    pub const CSTR_TEXT: u8 = 4;
}

/// FNV-1a over a name's bytes: the key of a `CSTR_TEXT` slot (the kernel and userspace
/// compute it alike). Never 0, which stands for "no string".
#[inline(always)]
pub const fn text_hash_step(hash: u64, byte: u8) -> u64 {
    (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3)
}

/// Where `text_hash` starts.
pub const TEXT_HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// The key of a `CSTR_TEXT` slot whose string is `text`.
pub fn text_hash(text: &[u8]) -> u64 {
    let mut hash = TEXT_HASH_SEED;
    let mut i = 0;
    while i < text.len() {
        hash = text_hash_step(hash, text[i]);
        i += 1;
    }
    hash | 1
}

/// One slot of a `keyed` program's key.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyArg {
    pub kind: u8,
    pub arg: u8,
    pub len_arg: u8,
    pub _pad: u8,
}
const _: () = assert!(size_of::<KeyArg>() == 4);

/// Slots in a `keyed` key.
pub const KEY_SLOTS: usize = 3;

/// One entry of the `SPECS` map: a probe site's argument specs and what its program does
/// with them. The attach cookie is the entry's index.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProbeSpec {
    pub args: [ArgSpec; MAX_ARGS],
    pub nargs: u8,
    /// Argument whose value splits a category (a GC generation, a collector kind), or `NO_ARG`.
    pub subkey_arg: u8,
    /// Argument whose value is summed (bytes allocated, objects collected), or `NO_ARG`.
    pub value_arg: u8,
    pub _pad: u8,
    /// The category the program counts into (see `category`), or the site's number for the
    /// `record` program.
    pub tag: u32,
    /// The key of the `keyed` program.
    pub keys: [KeyArg; KEY_SLOTS],
    /// Set in the high 32 bits of the subkey: which rule (and encoding) it came from.
    pub subkey_tag: u32,
    /// Summed values must be below this (0: no limit); others are discarded and counted.
    pub value_max: u64,
    /// Which runtime binary the site is in (userspace's number for it; 0: none), so a
    /// process is tied to its runtime by its first hit (`ProcessEntry::origin`).
    pub origin: u32,
    pub _pad2: u32,
}
const _: () = assert!(size_of::<ProbeSpec>() == 232);

impl ProbeSpec {
    pub const EMPTY: Self = Self {
        args: [ArgSpec {
            val_off: 0,
            reg_off: 0,
            index_reg_off: 0,
            kind: 0,
            size: 0,
            signed: 0,
            scale: 0,
        }; MAX_ARGS],
        nargs: 0,
        subkey_arg: NO_ARG,
        value_arg: NO_ARG,
        _pad: 0,
        tag: 0,
        keys: [KeyArg {
            kind: key_kind::NONE,
            arg: NO_ARG,
            len_arg: NO_ARG,
            _pad: 0,
        }; KEY_SLOTS],
        subkey_tag: 0,
        value_max: 0,
        origin: 0,
        _pad2: 0,
    };
}

/// Kinds of events in the `EVENTS` ring buffer (`EventHeader::kind`).
pub mod event_kind {
    /// An `ArgsEvent`: a probe hit with its arguments.
    pub const ARGS: u32 = 1;
    /// A `NameEvent`: the strings of a new `keyed` key.
    pub const NAMES: u32 = 2;
    /// A `FlowEvent`: a method entered or returned.
    pub const FLOW: u32 = 3;
    /// A `TraceEvent`: a hit of a `ustat trace` probe with its values.
    pub const TRACE: u32 = 4;
}

/// The start of every event in the `EVENTS` ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    pub kind: u32,
    /// Process id (tgid) as the root pid namespace sees it.
    pub pid: u32,
    /// Thread id as the root pid namespace sees it.
    pub tid: u32,
    pub cpu: u32,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC.
    pub ts_ns: u64,
}
const _: () = assert!(size_of::<EventHeader>() == 24);

/// A probe hit and its arguments, as the `record` program reads them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgsEvent {
    pub header: EventHeader,
    /// `ProbeSpec::tag` of the site that fired.
    pub tag: u32,
    pub nargs: u16,
    /// Bit i set: argument i could not be read (its memory was not readable).
    pub failed: u16,
    pub args: [u64; MAX_ARGS],
}
const _: () = assert!(size_of::<ArgsEvent>() == 128);

/// Most values a `ustat trace` probe reads for its format.
pub const TRACE_FIELDS: usize = 6;
/// Most of them that are strings.
pub const TRACE_STRINGS: usize = 2;
/// Bytes of each string an event carries; longer ones are cut (and marked).
pub const TRACE_STR_LEN: usize = 256;
/// Most comparisons in a filter.
pub const FILTER_TERMS: usize = 4;
/// Longest string a filter compares with.
pub const FILTER_TEXT_LEN: usize = 32;

/// What the kernel does with one value of a `ustat trace` format (`TraceField::kind`).
pub mod field_kind {
    /// Unused slot.
    pub const NONE: u8 = 0;
    /// The value itself (userspace formats it: `%d`, `%x`, ...).
    pub const VALUE: u8 = 1;
    /// The value points at a NUL-terminated string: up to `TRACE_STR_LEN` bytes are read.
    pub const CSTR: u8 = 2;
    /// The value points at a string of exactly the `len_slot` value's bytes.
    pub const PTR_LEN: u8 = 3;
}

/// One value of a `ustat trace` format. Slots index the site's `ProbeSpec::args`, which say
/// where each value is (a register, memory, a constant): the calling convention's part.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TraceField {
    /// One of `field_kind`.
    pub kind: u8,
    pub slot: u8,
    /// `PTR_LEN`: the slot of the length.
    pub len_slot: u8,
    /// Strings: which of the event's `TRACE_STRINGS` buffers gets it.
    pub string: u8,
}
const _: () = assert!(size_of::<TraceField>() == 4);

/// How a filter term compares (`FilterTerm::op`).
pub mod filter_op {
    pub const EQ: u8 = 0;
    pub const NE: u8 = 1;
    pub const LT: u8 = 2;
    pub const LE: u8 = 3;
    pub const GT: u8 = 4;
    pub const GE: u8 = 5;
}

/// What a filter term compares (`FilterTerm::kind`).
pub mod term_kind {
    /// The value, as a signed 64-bit integer, with `constant`.
    pub const SIGNED: u8 = 1;
    /// The value, unsigned.
    pub const UNSIGNED: u8 = 2;
    /// The NUL-terminated string the value points at, with `text` (`constant` bytes).
    pub const CSTR: u8 = 3;
    /// The string of `len_slot` bytes the value points at, with `text`.
    pub const PTR_LEN: u8 = 4;
}

/// One comparison of a `ustat trace` filter; a hit passes when all of them hold.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FilterTerm {
    /// The integer compared with, or the length of `text`.
    pub constant: i64,
    pub text: [u8; FILTER_TEXT_LEN],
    /// One of `term_kind`.
    pub kind: u8,
    /// One of `filter_op` (strings: `EQ` or `NE`).
    pub op: u8,
    pub slot: u8,
    pub len_slot: u8,
    pub _pad: u32,
}
const _: () = assert!(size_of::<FilterTerm>() == 48);

/// What a `ustat trace` probe does on a hit (`TraceConfig::mode`).
pub mod trace_mode {
    /// Send a `TraceEvent` (program `trace`).
    pub const PRINT: u8 = 0;
    /// Count per value in `TRACE_COUNTS` (program `trace_count`).
    pub const COUNT: u8 = 1;
    /// Note when the thread entered (program `trace_entry`), for `trace_return` to time the
    /// call.
    pub const LATENCY: u8 = 2;
}

/// An entry of `TRACE_CONFIGS`: one `ustat trace` probe (a function a spec matched, a USDT
/// probe). Every site of the probe has a `ProbeSpec` whose `tag` is this entry's index and
/// whose argument slots locate the values named here.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TraceConfig {
    pub terms: [FilterTerm; FILTER_TERMS],
    pub fields: [TraceField; TRACE_FIELDS],
    /// The string fields again, by string buffer: `kind` `NONE` for an unused buffer, and
    /// `string` here is the field's index. The kernel reads strings in a loop of its own, so
    /// it verifies two string reads, not one per field.
    pub strings: [TraceField; TRACE_STRINGS],
    pub nterms: u8,
    pub nfields: u8,
    /// One of `trace_mode`.
    pub mode: u8,
    /// 1: a call's entry and return are matched by the goroutine (Go's `g`, in R14), not by
    /// the thread: a goroutine can move to another thread inside the call.
    pub by_goroutine: u8,
    pub _pad2: u32,
}
const _: () = assert!(
    size_of::<TraceConfig>() == 48 * FILTER_TERMS + 4 * TRACE_FIELDS + 4 * TRACE_STRINGS + 8
);

/// A hit of a `ustat trace` probe (`event_kind::TRACE`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TraceEvent {
    pub header: EventHeader,
    /// The probe's index in `TRACE_CONFIGS`.
    pub probe: u32,
    /// Bit i set: field i could not be read.
    pub failed: u16,
    /// Bit i set: string i was longer than `TRACE_STR_LEN` and is cut.
    pub truncated: u16,
    /// Each field's value (strings: the pointer; `--count` keys: the hash of their bytes).
    pub values: [u64; TRACE_FIELDS],
    /// Bytes of each string read.
    pub lens: [u16; TRACE_STRINGS],
    pub _pad: u32,
    /// The thread's name (`comm`), NUL-padded.
    pub comm: [u8; 16],
    pub strings: [[u8; TRACE_STR_LEN]; TRACE_STRINGS],
}
const _: () = assert!(
    size_of::<TraceEvent>() == 24 + 8 + 8 * TRACE_FIELDS + 8 + 16 + TRACE_STRINGS * TRACE_STR_LEN
);

/// Key of `TRACE_COUNTS`: a probe and its values, strings by their bytes (zero-padded; a
/// string field's value is 0), so userspace reads each key's text from the key itself.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceCountKey {
    pub probe: u32,
    pub failed: u16,
    pub truncated: u16,
    pub values: [u64; TRACE_FIELDS],
    pub lens: [u16; TRACE_STRINGS],
    pub _pad: u32,
    pub strings: [[u8; TRACE_STR_LEN]; TRACE_STRINGS],
}
const _: () =
    assert!(size_of::<TraceCountKey>() == 8 + 8 * TRACE_FIELDS + 8 + TRACE_STRINGS * TRACE_STR_LEN);

/// Key of `TRACE_STARTS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LatencyThreadKey {
    /// The thread id, or the goroutine (`g`) where `TraceConfig::by_goroutine` says so.
    pub thread: u64,
    pub probe: u32,
    /// The process (a goroutine pointer is unique only within it).
    pub pid: u32,
}
const _: () = assert!(size_of::<LatencyThreadKey>() == 16);

/// Which process a per-process key belongs to: its pid, and its epoch — when the kernel
/// first saw it hit a probe, in boot-time nanoseconds (`PROCS`). A pid used again by a later
/// process gets a later epoch, so the two never share a key. The epoch is never before the
/// process's start time (`/proc/PID/stat` field 22, the same clock in ticks).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessKey {
    pub pid: u32,
    pub _pad: u32,
    pub epoch: u64,
}
const _: () = assert!(size_of::<ProcessKey>() == 16);

impl ProcessKey {
    pub const fn new(pid: u32, epoch: u64) -> Self {
        Self {
            pid,
            _pad: 0,
            epoch,
        }
    }
}

/// Keys that belong to one process.
pub trait OfProcess {
    fn process(&self) -> ProcessKey;
}

macro_rules! of_process {
    ($($key:ty),*) => {
        $(impl OfProcess for $key {
            fn process(&self) -> ProcessKey {
                ProcessKey::new(self.pid, self.epoch)
            }
        })*
    };
}
of_process!(CountKey, HistKey, KeyedKey);

/// Length of a task's `comm` (`TASK_COMM_LEN`), the name `/proc/PID/comm` shows.
pub const COMM_LEN: usize = 16;

/// Value of `PROCS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessEntry {
    /// `bpf_ktime_get_boot_ns()` at the process's first probe hit.
    pub epoch: u64,
    /// `ProbeSpec::origin` of the site it first hit: its runtime binary.
    pub origin: u32,
    /// `process_flags`.
    pub flags: u32,
    /// The process's name: its main thread's `comm` once that thread hit a probe or
    /// exited (what `/proc/PID/comm` shows), until then the first thread's that hit one.
    pub comm: [u8; COMM_LEN],
}
const _: () = assert!(size_of::<ProcessEntry>() == 32);

/// Bits of `ProcessEntry::flags`.
pub mod process_flags {
    /// `comm` is the main thread's (the thread whose id is the pid).
    pub const MAIN_COMM: u32 = 1;
}

/// Value of `EXITED`: a process that exited, and what identifies it when ustat never
/// listed it (it started and exited between two of ustat's looks at the host).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitRecord {
    /// `bpf_ktime_get_boot_ns()` at its last thread's exit.
    pub exited_ns: u64,
    /// As in `PROCS` when it exited.
    pub process: ProcessEntry,
}
const _: () = assert!(size_of::<ExitRecord>() == 40);

/// Key of the per-process aggregation maps (`COUNTS`, `SPANS`, `METHODS`, `PATHS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountKey {
    pub pid: u32,
    pub category: u32,
    /// The value of `ProbeSpec::subkey_arg`, or 0.
    pub subkey: u64,
    /// The process's epoch (see `ProcessKey`).
    pub epoch: u64,
}
const _: () = assert!(size_of::<CountKey>() == 24);

/// Value of the `COUNTS` map (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountValue {
    pub count: u64,
    /// Sum of `ProbeSpec::value_arg` over the hits.
    pub sum: u64,
}
const _: () = assert!(size_of::<CountValue>() == 16);

/// Value of the `SPANS` map (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpanTotals {
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    /// Sum of the end probe's `ProbeSpec::value_arg` (objects collected, say).
    pub value_sum: u64,
}
const _: () = assert!(size_of::<SpanTotals>() == 32);

/// Key of `OPEN_SPANS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SpanThreadKey {
    pub tid: u32,
    pub category: u32,
}
const _: () = assert!(size_of::<SpanThreadKey>() == 8);

/// A span begun and not yet ended.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenSpan {
    pub start_ns: u64,
    pub subkey: u64,
}
const _: () = assert!(size_of::<OpenSpan>() == 16);

/// Value of `OPEN_SPANS`: a thread's open spans of one category, innermost last.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SpanStack {
    /// Spans open now; may exceed `MAX_SPAN_DEPTH` (deeper ones are not timed).
    pub depth: u32,
    pub _pad: u32,
    pub spans: [OpenSpan; MAX_SPAN_DEPTH as usize],
}
const _: () = assert!(size_of::<SpanStack>() == 8 + 16 * MAX_SPAN_DEPTH as usize);
const _: () = assert!(MAX_SPAN_DEPTH.is_power_of_two());

/// Key of `SPAN_HIST`: spans of a process and category whose duration falls in the
/// HdrHistogram bucket starting at `bucket` nanoseconds (see `hist_bucket`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HistKey {
    pub pid: u32,
    pub category: u32,
    pub subkey: u64,
    pub bucket: u64,
    /// The process's epoch (see `ProcessKey`).
    pub epoch: u64,
}
const _: () = assert!(size_of::<HistKey>() == 32);

/// Key of `KEYED`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyedKey {
    pub pid: u32,
    pub category: u32,
    /// The values of the spec's key arguments (pointers for names), 0 for unused slots.
    pub keys: [u64; KEY_SLOTS],
    /// The process's epoch (see `ProcessKey`).
    pub epoch: u64,
}
const _: () = assert!(size_of::<KeyedKey>() == 40);

/// Longest name a `NameEvent` carries; longer ones are cut (and marked by their length).
pub const NAME_LEN: usize = 256;

/// The strings of a new `keyed` key, sent when the key first appears, and again on a later
/// hit if userspace asks for them (`NAME_REQUESTS`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NameEvent {
    pub header: EventHeader,
    pub key: KeyedKey,
    /// Bytes of each name read (at most `NAME_LEN`); 0 for slots without a name.
    pub lens: [u16; KEY_SLOTS],
    /// Bit i set: name i could not be read.
    pub failed: u16,
    pub names: [[u8; NAME_LEN]; KEY_SLOTS],
}
const _: () = assert!(size_of::<NameEvent>() == 24 + 40 + 8 + 3 * NAME_LEN);

/// One call on a thread's shadow stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub method: u64,
    pub start_ns: u64,
    /// Time spent in the calls it made (their whole durations).
    pub child_ns: u64,
    /// Hash of the call path that ends in this call.
    pub path: u64,
    /// 1 when a call of the same method is below it on the stack (recursion): its time is
    /// already in that call's total.
    pub nested: u64,
}
const _: () = assert!(size_of::<Frame>() == 40);

/// A thread's shadow stack.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ThreadStack {
    /// Calls open now; may exceed `MAX_STACK` (deeper frames are not stored).
    pub depth: u32,
    pub pid: u32,
    pub frames: [Frame; MAX_STACK],
}
const _: () = assert!(size_of::<ThreadStack>() == 8 + 40 * MAX_STACK);

/// Value of `METHODS` (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MethodTotals {
    pub calls: u64,
    /// Inclusive time, recursion counted once: only calls not nested in another call of the
    /// same method add to it.
    pub total_ns: u64,
    /// Exclusive time: each call's duration minus its callees'.
    pub self_ns: u64,
    /// Every call's inclusive duration, nested recursive calls too (for the mean).
    pub sum_ns: u64,
}
const _: () = assert!(size_of::<MethodTotals>() == 32);

/// Value of `PATHS` (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathTotals {
    pub calls: u64,
    /// The path this one extends (0 for a root).
    pub parent: u64,
    /// The method it ends in (`method_hash`).
    pub method: u64,
    pub self_ns: u64,
}
const _: () = assert!(size_of::<PathTotals>() == 32);

/// Longest filter prefix.
pub const PREFIX_LEN: usize = 64;

/// The one entry of `FLOW_CONFIG`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// 1: send `FlowEvent`s; 0: keep only the statistics.
    pub events: u32,
    /// Bumped on every filter change, so cached filter results go stale.
    pub generation: u32,
    /// Prefixes that key slot 0 (class, file) and slot 1 (method, function) must start
    /// with; a length of 0 passes everything.
    pub class_len: u32,
    pub method_len: u32,
    pub class_prefix: [u8; PREFIX_LEN],
    pub method_prefix: [u8; PREFIX_LEN],
}
const _: () = assert!(size_of::<FlowConfig>() == 16 + 2 * PREFIX_LEN);

/// What a `FlowEvent` reports (`FlowEvent::kind`).
pub mod flow_kind {
    pub const ENTRY: u32 = 1;
    pub const RETURN: u32 = 2;
    /// A call that ended without its return probe (an exception unwound it); its duration
    /// runs to the return that revealed it.
    pub const UNWOUND: u32 = 3;
}

/// A method entered or returned, in the order the thread did it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowEvent {
    pub header: EventHeader,
    pub kind: u32,
    /// Calls open on the thread below this one (0 for a call with no traced caller).
    pub depth: u32,
    pub method: u64,
    /// Inclusive duration, for returns.
    pub duration_ns: u64,
}
const _: () = assert!(size_of::<FlowEvent>() == 48);

/// The one entry of `PID_NAMESPACE`: the device and inode of ustat's `/proc/self/ns/pid`,
/// the device in the kernel's encoding (major << 20 | minor), as
/// `bpf_get_ns_current_pid_tgid` compares it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PidNamespace {
    pub dev: u64,
    pub ino: u64,
}
const _: () = assert!(size_of::<PidNamespace>() == 16);

/// Most frames of one sampled stack, innermost first; a deeper stack keeps its innermost
/// frames and says it was cut (`sample_status::TRUNCATED`).
pub const MAX_SAMPLE_DEPTH: usize = 64;

/// Most thread states of one interpreter the sampler looks through for the sampled thread's.
pub const MAX_SAMPLE_THREADS: u32 = 128;

/// A frame entry that is not a code object: C code called back into the interpreter here
/// (a CPython 3.12+ shim frame, owned by the C stack).
pub const SAMPLE_NATIVE: u64 = 1;

/// In a 3.11 frame entry, the low bit set on a code address: the frame was entered from C
/// (`is_entry`), so C code lies between it and the frame outside it.
pub const SAMPLE_ENTRY_BIT: u64 = 1;

/// Offsets of 0xffff_ffff are not there (`SampleTarget::cframe_frame`).
pub const NO_OFFSET: u32 = u32::MAX;

/// What became of one sample (`SampleKey::status`).
pub mod sample_status {
    /// The frames were read to the outermost.
    pub const OK: u32 = 0;
    /// Only the innermost `MAX_SAMPLE_DEPTH` frames were read.
    pub const TRUNCATED: u32 = 1;
    /// The thread has no Python thread state (a thread the interpreter does not know).
    pub const NO_THREAD_STATE: u32 = 2;
    /// The thread's state has no frame: it runs C code outside any Python function.
    pub const NO_FRAME: u32 = 3;
    /// A read of the process's memory failed part way.
    pub const READ_FAILED: u32 = 4;
    /// The interpreter has more threads than `MAX_SAMPLE_THREADS` and this one is beyond.
    pub const TOO_MANY_THREADS: u32 = 5;
    /// The process's layout is unknown or failed validation: counted, not walked.
    pub const UNREADABLE: u32 = 6;
    /// The kernel's task layout is unknown (no fsbase offset): counted, not walked.
    pub const NO_TASK_LAYOUT: u32 = 7;
    /// A JVM thread in the JVM's own code with no Java frame (a GC or compiler thread, or
    /// a Java thread before its first or after its last Java call).
    pub const NO_JAVA_FRAME: u32 = 8;
}

/// How a version chains its frames (`SampleTarget::layout`).
pub mod frame_layout {
    /// Nothing to walk: count only.
    pub const NONE: u8 = 0;
    /// `PyFrameObject` (2.7-3.10): `f_code`, `f_back`.
    pub const FRAME_OBJECT: u8 = 1;
    /// `_PyInterpreterFrame` of 3.11: `f_code`, `previous`, and the `is_entry` byte at
    /// `frame_owner`.
    pub const ENTRY_FLAG: u8 = 2;
    /// `_PyInterpreterFrame` of 3.12+: code, `previous`, and the `owner` byte at
    /// `frame_owner`; `owner == owner_cstack` is a shim frame of the C stack.
    pub const OWNER: u8 = 3;
}

/// Value of `SAMPLE_TARGETS`: where a process's interpreter is and how to read its frames.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleTarget {
    /// Identifies the process beside its pid (its start time), copied into its keys so a
    /// reused pid never adds to another process's stacks.
    pub start: u64,
    /// The address of its `PyInterpreterState`.
    pub interp: u64,
    /// Offsets: the interpreter's first thread state; a thread state's next one, its
    /// `thread_id` (`pthread_self()`, which is the thread's fs base on x86-64), its frame
    /// (or its `cframe`, when `cframe_frame` is not `NO_OFFSET`).
    pub interp_threads: u32,
    pub tstate_next: u32,
    pub tstate_thread_id: u32,
    pub tstate_frame: u32,
    pub cframe_frame: u32,
    /// A frame's outer frame, code object, and owner or entry byte.
    pub frame_previous: u32,
    pub frame_code: u32,
    pub frame_owner: u32,
    /// `frame_layout::*`.
    pub layout: u8,
    /// The `owner` value of shim frames (3 in 3.12 and 3.13, 4 from 3.14).
    pub owner_cstack: u8,
    pub _pad: [u8; 6],
}
const _: () = assert!(size_of::<SampleTarget>() == 56);

/// Most code heaps of a JVM's code cache (non-nmethods, profiled and non-profiled nmethods
/// when segmented, one otherwise).
pub const MAX_CODE_HEAPS: usize = 4;

/// A HotSpot frame entry's low bits (a `Method*` is 8-byte aligned): how the method ran.
pub mod hotspot_frame {
    /// The interpreter ran it.
    pub const INTERPRETED: u64 = 0;
    /// JIT-compiled code (an nmethod) ran it.
    pub const COMPILED: u64 = 2;
    /// The bits that tag an entry.
    pub const TAG_MASK: u64 = 7;
}

/// One heap of a JVM's code cache: its reserved range and its segment map (one byte per
/// segment, counting back to the segment a block starts in).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodeHeapRange {
    pub low: u64,
    pub high: u64,
    pub segmap: u64,
    pub log2_segment: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<CodeHeapRange>() == 32);

/// Value of `HOTSPOT_TARGETS`: where a JVM's code is and the offsets its frames are read
/// with (all from its `gHotSpotVMStructs`, checked in userspace before use).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HotspotTarget {
    /// The process's start time, copied into its keys (as `SampleTarget::start`).
    pub start: u64,
    pub heaps: [CodeHeapRange; MAX_CODE_HEAPS],
    /// The template interpreter's code: `[interpreter_low, interpreter_high)`.
    pub interpreter_low: u64,
    pub interpreter_high: u64,
    /// `ThreadsSMRSupport::_java_thread_list`'s address (a `ThreadsList*` lives there).
    pub thread_list: u64,
    pub heap_count: u32,
    /// `sizeof(HeapBlock)`: a code blob starts this far into its block.
    pub heap_block_size: u32,
    /// `CodeBlob`: its name (`const char*`), frame size in words, and where its frame is
    /// complete (an offset from its code).
    pub blob_name: u32,
    pub blob_frame_size: u32,
    pub blob_frame_complete: u32,
    /// Width of `_frame_complete_offset` in bytes (4 before JDK 23, 2 since).
    pub blob_frame_complete_width: u32,
    /// Its code's start: a pointer (`_code_begin`) or, when `blob_code_is_offset`, an
    /// offset from the blob (`_code_offset`, JDK 23+).
    pub blob_code: u32,
    pub blob_code_is_offset: u32,
    /// `nmethod::_method`.
    pub nmethod_method: u32,
    /// `ThreadsList::_length`, `ThreadsList::_threads`.
    pub list_length: u32,
    pub list_threads: u32,
    /// `Thread::_osthread`, `OSThread::_pthread_id` (`pthread_self()`: the thread's fs
    /// base, whatever PID namespace the JVM is in).
    pub thread_osthread: u32,
    pub osthread_pthread_id: u32,
    /// `JavaThread::_anchor` plus `JavaFrameAnchor::_last_Java_sp`, `_pc`, `_fp`.
    pub anchor_sp: u32,
    pub anchor_pc: u32,
    pub anchor_fp: u32,
    /// The same in a `JavaCallWrapper` (`_anchor`): where the Java frames were when the
    /// JVM's native code called Java again (through JNI, reflection, a class initialiser).
    pub wrapper_sp: u32,
    pub wrapper_pc: u32,
    pub wrapper_fp: u32,
    pub _pad: u32,
    /// Where Java code called from native code returns to in the call stub
    /// (`StubRoutines::_call_stub_return_address`); its frame holds the `JavaCallWrapper*`.
    pub call_stub_return: u64,
}
const _: () = assert!(size_of::<HotspotTarget>() == 8 + 32 * MAX_CODE_HEAPS + 32 + 20 * 4);

/// The one entry of `SAMPLE_CONFIG`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleConfig {
    /// Offset of `thread.fsbase` in the kernel's `task_struct` (from its BTF); 0: unknown.
    pub fsbase_offset: u64,
}
const _: () = assert!(size_of::<SampleConfig>() == 8);

/// Key of `SAMPLE_STACKS`: one process's stack, innermost first: code object addresses
/// (CPython) or `Method*`s tagged with `hotspot_frame::*` (HotSpot).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SampleKey {
    pub pid: u32,
    /// `sample_status::*`.
    pub status: u32,
    /// `SampleTarget::start`.
    pub start: u64,
    /// Frames read; the entries after them are 0.
    pub depth: u32,
    /// A JVM's classes unloaded when it was sampled (`UNLOADS`); 0 for CPython.
    pub generation: u32,
    pub frames: [u64; MAX_SAMPLE_DEPTH],
}
const _: () = assert!(size_of::<SampleKey>() == 24 + 8 * MAX_SAMPLE_DEPTH);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are `#[repr(C)]`, made of integers, with no implicit padding
    // (the size assertions above pin the layout), so every bit pattern is valid.
    unsafe impl aya::Pod for super::ProbeSpec {}
    unsafe impl aya::Pod for super::CountKey {}
    unsafe impl aya::Pod for super::CountValue {}
    unsafe impl aya::Pod for super::SpanTotals {}
    unsafe impl aya::Pod for super::HistKey {}
    unsafe impl aya::Pod for super::KeyedKey {}
    unsafe impl aya::Pod for super::MethodTotals {}
    unsafe impl aya::Pod for super::PathTotals {}
    unsafe impl aya::Pod for super::FlowConfig {}
    unsafe impl aya::Pod for super::ThreadStack {}
    unsafe impl aya::Pod for super::SpanStack {}
    unsafe impl aya::Pod for super::SpanThreadKey {}
    unsafe impl aya::Pod for super::ProcessKey {}
    unsafe impl aya::Pod for super::ProcessEntry {}
    unsafe impl aya::Pod for super::ExitRecord {}
    unsafe impl aya::Pod for super::PidNamespace {}
    unsafe impl aya::Pod for super::EventHeader {}
    unsafe impl aya::Pod for super::ArgsEvent {}
    unsafe impl aya::Pod for super::NameEvent {}
    unsafe impl aya::Pod for super::FlowEvent {}
    unsafe impl aya::Pod for super::SampleTarget {}
    unsafe impl aya::Pod for super::SampleConfig {}
    unsafe impl aya::Pod for super::SampleKey {}
    unsafe impl aya::Pod for super::HotspotTarget {}
    unsafe impl aya::Pod for super::TraceConfig {}
    unsafe impl aya::Pod for super::TraceEvent {}
    unsafe impl aya::Pod for super::TraceCountKey {}
    unsafe impl aya::Pod for super::LatencyThreadKey {}
}
