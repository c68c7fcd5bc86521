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
    /// `PerCpuArray<u64>` of events that did not fit in `EVENTS`.
    pub const DROPS: &str = "DROPS";
    /// `PerCpuHashMap<CountKey, CountValue>`: per-process event counts.
    pub const COUNTS: &str = "COUNTS";
    /// `HashMap<OpenSpanKey, OpenSpan>`: spans begun and not yet ended, per thread.
    pub const OPEN_SPANS: &str = "OPEN_SPANS";
    /// `PerCpuHashMap<CountKey, SpanTotals>`: finished spans per process.
    pub const SPANS: &str = "SPANS";
    /// `PerCpuHashMap<HistKey, u64>`: span durations, bucketed like HdrHistogram.
    pub const SPAN_HIST: &str = "SPAN_HIST";
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
    /// The category the program counts into (see `category`), or the probe's number for the
    /// `record` program.
    pub tag: u32,
}
const _: () = assert!(size_of::<ProbeSpec>() == 200);

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
    };
}

/// Kinds of events in the `EVENTS` ring buffer (`EventHeader::kind`).
pub mod event_kind {
    /// An `ArgsEvent`: a probe hit with its arguments.
    pub const ARGS: u32 = 1;
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

/// Key of the per-process aggregation maps (`COUNTS`, `SPANS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountKey {
    pub pid: u32,
    pub category: u32,
    /// The value of `ProbeSpec::subkey_arg`, or 0.
    pub subkey: u64,
}
const _: () = assert!(size_of::<CountKey>() == 16);

/// Value of the `COUNTS` map (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountValue {
    pub count: u64,
    /// Sum of `ProbeSpec::value_arg` over the hits.
    pub sum: u64,
}
const _: () = assert!(size_of::<CountValue>() == 16);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are `#[repr(C)]`, made of integers, with no implicit padding
    // (the size assertions above pin the layout), so every bit pattern is valid.
    unsafe impl aya::Pod for super::ProbeSpec {}
    unsafe impl aya::Pod for super::CountKey {}
    unsafe impl aya::Pod for super::CountValue {}
}
