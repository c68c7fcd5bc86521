//! A function's `RET` instructions and the functions it calls, found by decoding its code
//! with a real x86-64 decoder (iced-x86).
//!
//! Go functions are never given uretprobes: a uretprobe replaces the return address on the
//! goroutine's stack, and when Go grows or moves that stack it finds a return address it
//! does not know and crashes the program. An ordinary uprobe on each `RET` sees every return
//! instead. Scanning the bytes for 0xC3 would not do: that byte occurs inside longer
//! instructions (an immediate, a displacement, a ModRM byte), and a probe there would
//! corrupt the instruction.

use iced_x86::{Code, Decoder, DecoderOptions, Mnemonic, Register};

use super::GoError;

/// What decoding a function's code found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decoded {
    /// The address of every `RET`, in order.
    pub returns: Vec<u64>,
    /// The targets of direct calls, in order, without repeats.
    pub calls: Vec<u64>,
    /// The first instruction after the stack check (`cmp 0x10(%r14), %rsp; jbe morestack`),
    /// if the function has one. When the stack must grow, Go calls `morestack` and starts the
    /// function over from its first instruction, so a probe there could fire twice for one
    /// call; past the check it fires once. The check touches no argument register.
    pub body: Option<u64>,
}

/// The stack check's prologue is within the first few instructions.
const PROLOGUE_INSTRUCTIONS: usize = 6;

/// Decodes `code`, the bytes of a function at `address`, to its end. A leading `ENDBR64`
/// (CET builds) is decoded and skipped like any instruction. Bytes that do not decode are an
/// error: past them no instruction boundary can be trusted.
pub fn decode(address: u64, code: &[u8]) -> Result<Decoded, GoError> {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut decoded = Decoded::default();
    let mut seen = 0usize;
    let mut after_stack_compare = false;
    while decoder.can_decode() {
        let instruction = decoder.decode();
        if instruction.is_invalid() {
            return Err(GoError::Undecodable {
                address: instruction.ip(),
            });
        }
        seen += 1;
        if seen <= PROLOGUE_INSTRUCTIONS && decoded.body.is_none() {
            // `cmp 0x10(%r14), REG` (the goroutine's stack guard), then `jbe`/`jb`.
            if after_stack_compare && matches!(instruction.mnemonic(), Mnemonic::Jbe | Mnemonic::Jb)
            {
                decoded.body = Some(instruction.next_ip());
            }
            after_stack_compare = instruction.mnemonic() == Mnemonic::Cmp
                && instruction.memory_base() == Register::R14
                && instruction.memory_displacement64() == 0x10;
        }
        if instruction.code() == Code::Endbr64 {
            continue;
        }
        match instruction.mnemonic() {
            Mnemonic::Ret => decoded.returns.push(instruction.ip()),
            Mnemonic::Call => {
                let target = instruction.near_branch_target();
                if target != 0 && !decoded.calls.contains(&target) {
                    decoded.calls.push(target);
                }
            }
            _ => {}
        }
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_ret_and_never_a_c3_inside_an_instruction() {
        let code = [
            0xf3, 0x0f, 0x1e, 0xfa, // endbr64
            0xb8, 0xc3, 0x00, 0x00, 0x00, // mov eax, 0xc3: a 0xC3 byte that is no RET
            0x48, 0x85, 0xc0, // test rax, rax
            0x74, 0x01, // je +1
            0xc3, // ret
            0x48, 0x8b, 0x83, 0x10, 0x00, 0x00, 0x00, // mov rax, [rbx+0x10]: ModRM 0x83
            0xe8, 0x00, 0x10, 0x00, 0x00, // call +0x1000
            0xc2, 0x08, 0x00, // ret 8
        ];
        let decoded = decode(0x1000, &code).unwrap();
        assert_eq!(decoded.returns, [0x1000 + 14, 0x1000 + 27]);
        assert_eq!(decoded.calls, [0x1000 + 27 + 0x1000]);
    }

    #[test]
    fn the_body_starts_after_the_stack_check() {
        let code = [
            0x49, 0x3b, 0x66, 0x10, // cmp rsp, [r14+0x10]
            0x76, 0x05, // jbe +5 (morestack)
            0x48, 0x83, 0xec, 0x50, // sub rsp, 0x50
            0xc3, // ret
        ];
        let decoded = decode(0x4000, &code).unwrap();
        assert_eq!(decoded.body, Some(0x4006));
        assert_eq!(decoded.returns, [0x400a]);
        // A function without the check (NOSPLIT) has no body start apart from its entry.
        assert_eq!(
            decode(0x4000, &[0x48, 0x89, 0xd8, 0xc3]).unwrap().body,
            None
        );
    }

    #[test]
    fn undecodable_bytes_are_an_error() {
        // 0x0f 0x0b is ud2 (valid); a lone 0x0f at the end is cut short.
        assert!(matches!(
            decode(0x2000, &[0x90, 0x0f]),
            Err(GoError::Undecodable { address: 0x2001 })
        ));
    }
}
