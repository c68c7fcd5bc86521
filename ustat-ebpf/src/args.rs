//! Reading USDT arguments from a probe's spec (see `ustat_common::ArgSpec`).

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_probe_read_kernel, bpf_probe_read_user, generated::bpf_get_func_ip},
    programs::ProbeContext,
};
use ustat_common::{ArgSpec, MAX_ARGS, NO_REG, ProbeSpec, arg_kind, pt_regs};

/// A register saved in `pt_regs`. The offset comes from a map, so it is checked here:
/// the context cannot be indexed by a variable, hence the probe read.
#[inline(always)]
pub fn register(regs: *const u8, reg_off: u16) -> Result<u64, i64> {
    if reg_off > pt_regs::LAST || reg_off % 8 != 0 {
        return Err(-1);
    }
    // SAFETY: `regs` points at the kernel's saved registers and the offset is within them.
    unsafe { bpf_probe_read_kernel(regs.add(usize::from(reg_off)).cast::<u64>()) }
        .map_err(i64::from)
}

/// Reads exactly `size` bytes, so an argument at the very end of a mapping still reads.
#[inline(always)]
fn user_memory(addr: u64, size: u8) -> Result<u64, i64> {
    // SAFETY: bpf_probe_read_user checks the address; a bad one is an error, not a fault.
    unsafe {
        match size {
            1 => bpf_probe_read_user(addr as *const u8).map(u64::from),
            2 => bpf_probe_read_user(addr as *const u16).map(u64::from),
            4 => bpf_probe_read_user(addr as *const u32).map(u64::from),
            _ => bpf_probe_read_user(addr as *const u64),
        }
    }
    .map_err(i64::from)
}

/// Keeps the low `size` bytes of `raw`, sign- or zero-extended to 64 bits.
#[inline(always)]
fn extend(raw: u64, arg: &ArgSpec) -> u64 {
    let shift = match arg.size {
        1 => 56,
        2 => 48,
        4 => 32,
        _ => 0,
    };
    if arg.signed != 0 {
        (((raw << shift) as i64) >> shift) as u64
    } else {
        (raw << shift) >> shift
    }
}

/// The value of argument `n` of the probe that fired.
#[inline(always)]
pub fn read(ctx: &ProbeContext, spec: &ProbeSpec, n: usize) -> Result<u64, i64> {
    // SAFETY: plain helper; for a uprobe it returns the probed address. Asked only for the
    // one kind of argument that needs it.
    let probe = || unsafe { bpf_get_func_ip(ctx.as_ptr()) };
    read_at(ctx.regs.cast(), probe, spec, n)
}

/// The value of argument `n`, with the saved registers at `regs` and `probe` giving the
/// probed address: what `read` does, callable where only those are at hand (a `bpf_loop`
/// callback).
#[inline(always)]
pub fn read_at(
    regs: *const u8,
    probe: impl FnOnce() -> u64,
    spec: &ProbeSpec,
    n: usize,
) -> Result<u64, i64> {
    if n >= MAX_ARGS || n >= usize::from(spec.nargs) {
        return Err(-1);
    }
    let arg = &spec.args[n];
    let raw = match arg.kind {
        arg_kind::CONST => arg.val_off as u64,
        arg_kind::REG => register(regs, arg.reg_off)?,
        arg_kind::MEM => {
            let base = register(regs, arg.reg_off)?;
            user_memory(base.wrapping_add(arg.val_off as u64), arg.size)?
        }
        arg_kind::MEM_INDEXED => {
            let base = match arg.reg_off {
                NO_REG => 0,
                reg_off => register(regs, reg_off)?,
            };
            let index = register(regs, arg.index_reg_off)?;
            let addr = base
                .wrapping_add(index.wrapping_mul(u64::from(arg.scale)))
                .wrapping_add(arg.val_off as u64);
            user_memory(addr, arg.size)?
        }
        arg_kind::MEM_PROBE_RELATIVE => {
            user_memory(probe().wrapping_add(arg.val_off as u64), arg.size)?
        }
        _ => return Err(-1),
    };
    Ok(extend(raw, arg))
}
