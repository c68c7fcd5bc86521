//! Where a spec's values are at a probe: the calling convention (see the module above).

use ustat_common::{ArgSpec, arg_kind, pt_regs};

use super::spec::Value;

/// Where one value is. Most values are one location; a convention that knows a parameter's
/// type (Go's DWARF) may say it is a pointer and a length, which `%s` prints exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    One(ArgSpec),
    PtrLen { ptr: ArgSpec, len: ArgSpec },
}

/// Why a value has no location at a probe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocateError {
    #[error("{probe} has {count} arguments; there is no arg{asked}")]
    NoSuchArg {
        probe: String,
        count: usize,
        asked: u8,
    },
    #[error("retval exists only at a function's return (r:)")]
    NoRetval,
    #[error("{0}")]
    Other(String),
}

/// Where the values of a call are.
pub trait CallingConvention {
    /// The location of `value` at the probe.
    fn locate(&self, value: Value) -> Result<Located, LocateError>;
}

/// A register, 8 bytes, unsigned.
pub const fn register(offset: u16) -> ArgSpec {
    ArgSpec {
        val_off: 0,
        reg_off: offset,
        index_reg_off: 0,
        kind: arg_kind::REG,
        size: 8,
        signed: 0,
        scale: 0,
    }
}

/// The System V x86-64 ABI of C and C++ functions: integer and pointer arguments in rdi,
/// rsi, rdx, rcx, r8, r9, then on the stack (at a function's first instruction, `rsp`
/// points at the return address, so the 7th is at `8(%rsp)`); the result in rax.
#[derive(Debug, Clone, Copy)]
pub struct SysV {
    /// At the return (`r:`): only `retval` means something there.
    pub at_return: bool,
}

const SYSV_REGISTERS: [u16; 6] = [
    pt_regs::RDI,
    pt_regs::RSI,
    pt_regs::RDX,
    pt_regs::RCX,
    pt_regs::R8,
    pt_regs::R9,
];

impl CallingConvention for SysV {
    fn locate(&self, value: Value) -> Result<Located, LocateError> {
        match (value, self.at_return) {
            (Value::Retval, true) => Ok(Located::One(register(pt_regs::RAX))),
            (Value::Retval, false) => Err(LocateError::NoRetval),
            (Value::Arg(_), true) => Err(LocateError::Other(
                "at a return only retval is known (the arguments' registers were reused)".into(),
            )),
            (Value::Arg(n @ 1..=6), false) => {
                Ok(Located::One(register(SYSV_REGISTERS[usize::from(n) - 1])))
            }
            (Value::Arg(n), false) => Ok(Located::One(ArgSpec {
                val_off: 8 * (i64::from(n) - 6),
                kind: arg_kind::MEM,
                ..register(pt_regs::SP)
            })),
        }
    }
}

/// A USDT site: its note's argument specs, already lowered to locations.
#[derive(Debug, Clone)]
pub struct UsdtSite<'a> {
    pub probe: &'a str,
    pub args: &'a [ArgSpec],
}

impl CallingConvention for UsdtSite<'_> {
    fn locate(&self, value: Value) -> Result<Located, LocateError> {
        match value {
            Value::Retval => Err(LocateError::NoRetval),
            Value::Arg(n) => self
                .args
                .get(usize::from(n) - 1)
                .map(|a| Located::One(*a))
                .ok_or_else(|| LocateError::NoSuchArg {
                    probe: self.probe.to_string(),
                    count: self.args.len(),
                    asked: n,
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysv_registers_and_stack() {
        let entry = SysV { at_return: false };
        assert_eq!(
            entry.locate(Value::Arg(1)),
            Ok(Located::One(register(pt_regs::RDI)))
        );
        assert_eq!(
            entry.locate(Value::Arg(6)),
            Ok(Located::One(register(pt_regs::R9)))
        );
        let Ok(Located::One(seventh)) = entry.locate(Value::Arg(7)) else {
            panic!("the 7th argument is on the stack")
        };
        assert_eq!(
            (seventh.kind, seventh.reg_off, seventh.val_off),
            (arg_kind::MEM, pt_regs::SP, 8)
        );
        assert_eq!(entry.locate(Value::Retval), Err(LocateError::NoRetval));
        let exit = SysV { at_return: true };
        assert_eq!(
            exit.locate(Value::Retval),
            Ok(Located::One(register(pt_regs::RAX)))
        );
        assert!(exit.locate(Value::Arg(1)).is_err());
    }
}
