//! What a compiler clone's code says about its parameters. A clone's name says which
//! transformation made it (`f.constprop.1`: arguments folded to constants), not which
//! arguments went, and builds number their clones differently. The first use a function
//! makes of an argument register tells what the argument is: a function that first reads
//! `%edi` takes a 32-bit value first; one that first reads `%rdi` whole, a pointer. ustat
//! reads that from the clone's first instructions with a real x86-64 decoder (iced-x86).

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use ustat_runtimes::CloneCheck;

/// Instructions looked at, at most: a prologue saves registers and sets up the frame first.
const WINDOW: usize = 48;

/// Bytes of code decoded, at most (`WINDOW` instructions of up to 15 bytes fit).
pub const CODE_BYTES: usize = WINDOW * 15;

/// How a function first uses `%rdi` (its first integer argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstUse {
    /// Reads its low 32 bits (`%edi`).
    Int32,
    /// Reads all 64 bits (`%rdi`, or as a memory address).
    Whole,
    /// Anything else, or nothing seen before a branch or the end of the window: unknown.
    Unknown,
}

/// Whether the function whose code starts at `code` (loaded at `address`) shows `check`.
pub fn holds(check: CloneCheck, code: &[u8], address: u64) -> bool {
    let first = first_use_of_rdi(code, address);
    match check {
        CloneCheck::FirstArgInt32 => first == FirstUse::Int32,
        CloneCheck::FirstArgPointer => first == FirstUse::Whole,
    }
}

fn first_use_of_rdi(code: &[u8], address: u64) -> FirstUse {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut instruction = Instruction::default();
    for _ in 0..WINDOW {
        if !decoder.can_decode() {
            break;
        }
        decoder.decode_out(&mut instruction);
        if instruction.is_invalid() {
            return FirstUse::Unknown;
        }
        if let Some(first) = use_in(&instruction) {
            return first;
        }
        // Past a branch or call, %rdi may hold anything: stop at the first one.
        if leaves_the_straight_line(&instruction) {
            break;
        }
    }
    FirstUse::Unknown
}

/// How `instruction` uses `%rdi`, if it does.
fn use_in(instruction: &Instruction) -> Option<FirstUse> {
    for operand in 0..instruction.op_count() {
        match instruction.op_kind(operand) {
            OpKind::Register => {
                let register = instruction.op_register(operand);
                let width = match register {
                    Register::EDI => FirstUse::Int32,
                    Register::RDI => FirstUse::Whole,
                    Register::DI | Register::DIL => FirstUse::Unknown,
                    _ => continue,
                };
                // A destination that is only written (mov, lea, movsxd, movzx, pop, xor
                // with itself) says nothing about the argument.
                if operand == 0 && only_writes_first_operand(instruction) {
                    return Some(FirstUse::Unknown);
                }
                return Some(width);
            }
            OpKind::Memory
                if instruction.memory_base() == Register::RDI
                    || instruction.memory_index() == Register::RDI =>
            {
                return Some(FirstUse::Whole);
            }
            _ => {}
        }
    }
    None
}

/// A jump, call, return or trap: what follows may not run next (the decoder alone, without
/// iced's instruction-info tables, knows these by mnemonic).
fn leaves_the_straight_line(instruction: &Instruction) -> bool {
    use Mnemonic::{Ja, Jae, Jb, Jbe, Je, Jg, Jge, Jl, Jle, Jne, Jno, Jnp, Jns, Jo, Jp, Js};
    matches!(
        instruction.mnemonic(),
        Ja | Jae | Jb | Jbe | Je | Jg | Jge | Jl | Jle | Jne | Jno | Jnp | Jns | Jo | Jp | Js
    ) || matches!(
        instruction.mnemonic(),
        Mnemonic::Call
            | Mnemonic::Jmp
            | Mnemonic::Jrcxz
            | Mnemonic::Jecxz
            | Mnemonic::Loop
            | Mnemonic::Loope
            | Mnemonic::Loopne
            | Mnemonic::Ret
            | Mnemonic::Retf
            | Mnemonic::Iretq
            | Mnemonic::Syscall
            | Mnemonic::Int
            | Mnemonic::Int3
            | Mnemonic::Ud2
            | Mnemonic::Hlt
    )
}

fn only_writes_first_operand(instruction: &Instruction) -> bool {
    use iced_x86::Mnemonic::{Lea, Mov, Movsx, Movsxd, Movzx, Pop, Xor};
    match instruction.mnemonic() {
        Mov | Lea | Movsx | Movsxd | Movzx | Pop => true,
        // `xor %edi,%edi` zeroes it.
        Xor => {
            instruction.op_count() == 2
                && instruction.op_kind(1) == OpKind::Register
                && instruction.op_register(0) == instruction.op_register(1)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPython 3.8.18's (pyenv) `collect.constprop.1`: pushes, `sub $0xd8,%rsp`,
    /// `mov 0x146890(%rip),%rbp`, then `mov %edi,0x24(%rsp)` — the generation.
    const KEEPS_GENERATION: &[u8] = &[
        0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0x41, 0x54, 0x55, 0x53, // push r15..rbx
        0x48, 0x81, 0xec, 0xd8, 0x00, 0x00, 0x00, // sub $0xd8,%rsp
        0x48, 0x8b, 0x2d, 0x90, 0x68, 0x14, 0x00, // mov 0x146890(%rip),%rbp
        0x89, 0x7c, 0x24, 0x24, // mov %edi,0x24(%rsp)
    ];

    /// Its `collect.constprop.0`: the same prologue, then `mov %rdi,0x10(%rsp)` — the
    /// `n_collected` pointer (the generation folded in).
    const FOLDS_GENERATION: &[u8] = &[
        0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0x41, 0x54, 0x55, 0x53, // push r15..rbx
        0x48, 0x81, 0xec, 0xc8, 0x00, 0x00, 0x00, // sub $0xc8,%rsp
        0x48, 0x8b, 0x1d, 0x70, 0x59, 0x14, 0x00, // mov 0x145970(%rip),%rbx
        0x48, 0x89, 0x7c, 0x24, 0x10, // mov %rdi,0x10(%rsp)
    ];

    #[test]
    fn an_int_first_argument_and_a_pointer_are_told_apart() {
        assert!(holds(CloneCheck::FirstArgInt32, KEEPS_GENERATION, 0x1d43d0));
        assert!(!holds(
            CloneCheck::FirstArgPointer,
            KEEPS_GENERATION,
            0x1d43d0
        ));
        assert!(holds(
            CloneCheck::FirstArgPointer,
            FOLDS_GENERATION,
            0x1d52f0
        ));
        assert!(!holds(
            CloneCheck::FirstArgInt32,
            FOLDS_GENERATION,
            0x1d52f0
        ));
    }

    #[test]
    fn a_register_written_first_or_never_used_proves_nothing() {
        // xor %edi,%edi; ret
        assert!(!holds(CloneCheck::FirstArgInt32, &[0x31, 0xff, 0xc3], 0));
        assert!(!holds(CloneCheck::FirstArgPointer, &[0x31, 0xff, 0xc3], 0));
        // lea 0x10(%rsp),%rdi
        let lea = [0x48, 0x8d, 0x7c, 0x24, 0x10];
        assert!(!holds(CloneCheck::FirstArgPointer, &lea, 0));
        // call somewhere, then mov %edi,%eax: past a call %rdi is not the argument.
        let call_then_read = [0xe8, 0x00, 0x00, 0x00, 0x00, 0x89, 0xf8];
        assert!(!holds(CloneCheck::FirstArgInt32, &call_then_read, 0));
        // Cut-off or garbage code.
        assert!(!holds(CloneCheck::FirstArgInt32, &[0x0f], 0));
        assert!(!holds(CloneCheck::FirstArgInt32, &[], 0));
    }

    #[test]
    fn a_memory_operand_based_on_rdi_is_a_pointer() {
        // mov 0x8(%rdi),%rax
        let load = [0x48, 0x8b, 0x47, 0x08];
        assert!(holds(CloneCheck::FirstArgPointer, &load, 0));
    }
}
