//! The x86-64 USDT argument-spec language (`-4@%eax 8@16(%rbp) 1@$1 ...`), parsed into
//! `Arg`s, and lowered to the `ArgSpec`s the eBPF side reads.

use std::fmt;

use ustat_common::{ArgSpec, MAX_ARGS, arg_kind, pt_regs};

/// One argument of a probe: its width, signedness, and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// Width in bytes: 1, 2, 4 or 8.
    pub size: u8,
    pub signed: bool,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `$IMM`
    Const(i64),
    /// `%reg`
    Reg(Reg),
    /// `OFF(%reg)`
    Mem { base: Reg, offset: i64 },
    /// `OFF(%base,%index,SCALE)`; the base may be absent: `(,%index,8)`.
    MemIndexed {
        base: Option<Reg>,
        index: Reg,
        scale: u8,
        offset: i64,
    },
    /// `sym+OFF(%rip)`: the value is in memory at a symbol's address.
    Symbol { name: String, offset: i64 },
}

/// A general-purpose register, named as in the spec, with its `pt_regs` offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg {
    pub offset: u16,
}

/// Why a spec could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument {index} `{text}`: {reason}")]
pub struct SpecError {
    /// 0-based position of the argument in the spec.
    pub index: usize,
    pub text: String,
    pub reason: String,
}

/// Why parsed arguments cannot be lowered to what the eBPF side reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LowerError {
    #[error("argument {index} refers to symbol `{name}`, which the binary does not define")]
    UndefinedSymbol { index: usize, name: String },
}

/// Every width alias of each register (`rax`, `eax`, `ax`, `al`, ...).
const REGISTERS: &[(&[&str], u16)] = &[
    (&["rip"], pt_regs::IP),
    (&["rax", "eax", "ax", "al"], pt_regs::RAX),
    (&["rbx", "ebx", "bx", "bl"], pt_regs::RBX),
    (&["rcx", "ecx", "cx", "cl"], pt_regs::RCX),
    (&["rdx", "edx", "dx", "dl"], pt_regs::RDX),
    (&["rsi", "esi", "si", "sil"], pt_regs::RSI),
    (&["rdi", "edi", "di", "dil"], pt_regs::RDI),
    (&["rbp", "ebp", "bp", "bpl"], pt_regs::RBP),
    (&["rsp", "esp", "sp", "spl"], pt_regs::SP),
    (&["r8", "r8d", "r8w", "r8b"], pt_regs::R8),
    (&["r9", "r9d", "r9w", "r9b"], pt_regs::R9),
    (&["r10", "r10d", "r10w", "r10b"], pt_regs::R10),
    (&["r11", "r11d", "r11w", "r11b"], pt_regs::R11),
    (&["r12", "r12d", "r12w", "r12b"], pt_regs::R12),
    (&["r13", "r13d", "r13w", "r13b"], pt_regs::R13),
    (&["r14", "r14d", "r14w", "r14b"], pt_regs::R14),
    (&["r15", "r15d", "r15w", "r15b"], pt_regs::R15),
];

fn register(name: &str) -> Result<Reg, String> {
    let bare = name
        .strip_prefix('%')
        .ok_or_else(|| format!("`{name}` is not a register (no `%`)"))?;
    REGISTERS
        .iter()
        .find(|(aliases, _)| aliases.contains(&bare))
        .map(|&(_, offset)| Reg { offset })
        .ok_or_else(|| match bare {
            "ah" | "bh" | "ch" | "dh" => format!("high-byte register `%{bare}` is not supported"),
            _ => format!("unknown register `%{bare}`"),
        })
}

/// Parses a whole argument spec. An empty spec (or one starting with `:`) has no arguments.
pub fn parse(spec: &str) -> Result<Vec<Arg>, SpecError> {
    let spec = spec.trim();
    if spec.is_empty() || spec.starts_with(':') {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    for (index, text) in spec.split_ascii_whitespace().enumerate() {
        let error = |reason: String| SpecError {
            index,
            text: text.to_string(),
            reason,
        };
        if index >= MAX_ARGS {
            return Err(error(format!("more than {MAX_ARGS} arguments")));
        }
        args.push(parse_arg(text).map_err(error)?);
    }
    Ok(args)
}

fn parse_arg(text: &str) -> Result<Arg, String> {
    let (size, location) = text
        .split_once('@')
        .ok_or_else(|| "expected SIZE@LOCATION".to_string())?;
    let (signed, size) = match size.strip_prefix('-') {
        Some(size) => (true, size),
        None => (false, size),
    };
    let size = match size {
        "1" => 1,
        "2" => 2,
        "4" => 4,
        "8" => 8,
        _ => return Err(format!("size `{size}` is not 1, 2, 4 or 8")),
    };
    Ok(Arg {
        size,
        signed,
        location: parse_location(location)?,
    })
}

fn parse_location(text: &str) -> Result<Location, String> {
    if let Some(imm) = text.strip_prefix('$') {
        return parse_int(imm)
            .map(Location::Const)
            .ok_or_else(|| format!("`{imm}` is not an integer constant"));
    }
    if text.starts_with('%') {
        if text.contains(':') {
            return Err("segment-relative addresses are not supported".to_string());
        }
        return register(text).map(Location::Reg);
    }
    let open = text
        .find('(')
        .ok_or_else(|| "expected %reg, $imm or OFF(%reg...)".to_string())?;
    let inner = text[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| "missing `)`".to_string())?;
    let displacement = &text[..open];
    let parts: Vec<&str> = inner.split(',').collect();
    match parts.as_slice() {
        [base] if *base == "%rip" => rip_relative(displacement),
        [base] => Ok(Location::Mem {
            base: register(base)?,
            offset: parse_offset(displacement)?,
        }),
        [base, index] | [base, index, _] => {
            let scale = match parts.get(2) {
                Some(scale) => parse_scale(scale)?,
                None => 1,
            };
            let base = match *base {
                "" => None,
                base => Some(register(base)?),
            };
            let index = register(index)?;
            if index.offset == pt_regs::SP || index.offset == pt_regs::IP {
                return Err("%rsp and %rip cannot be an index".to_string());
            }
            Ok(Location::MemIndexed {
                base,
                index,
                scale,
                offset: parse_offset(displacement)?,
            })
        }
        _ => Err("expected (%base), (%base,%index) or (%base,%index,scale)".to_string()),
    }
}

/// `sym(%rip)`, `sym+8(%rip)`, `sym-8(%rip)`: a symbol's address, resolved per binary.
fn rip_relative(displacement: &str) -> Result<Location, String> {
    let split = displacement
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '+' || c == '-')
        .map(|(i, _)| i);
    let (name, offset) = match split {
        Some(i) => (&displacement[..i], parse_offset(&displacement[i..])?),
        None => (displacement, 0),
    };
    let is_symbol = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$');
    if !is_symbol {
        return Err(format!(
            "`{displacement}(%rip)` is not a symbol reference; a numeric %rip offset cannot be resolved"
        ));
    }
    Ok(Location::Symbol {
        name: name.to_string(),
        offset,
    })
}

fn parse_scale(text: &str) -> Result<u8, String> {
    match text {
        "1" => Ok(1),
        "2" => Ok(2),
        "4" => Ok(4),
        "8" => Ok(8),
        _ => Err(format!("scale `{text}` is not 1, 2, 4 or 8")),
    }
}

fn parse_offset(text: &str) -> Result<i64, String> {
    if text.is_empty() {
        return Ok(0);
    }
    parse_int(text).ok_or_else(|| format!("offset `{text}` is not an integer"))
}

/// Decimal or `0x` hex, with an optional sign. Hex values up to `u64::MAX` wrap, as the
/// assembler's would.
fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<u64>().ok()?,
    };
    Some(if negative {
        (magnitude as i64).wrapping_neg()
    } else {
        magnitude as i64
    })
}

/// What a `Location::Symbol` needs from the binary: the symbol's virtual address.
pub trait SymbolLookup {
    fn address_of(&self, name: &str) -> Option<u64>;
}

/// Lowers parsed arguments to what the eBPF side reads. `pc` is the probe's (adjusted)
/// virtual address: a symbol's address is stored relative to it, because at run time the
/// eBPF side only knows where the probe is mapped.
pub fn lower(
    args: &[Arg],
    pc: u64,
    symbols: &dyn SymbolLookup,
) -> Result<Vec<ArgSpec>, LowerError> {
    args.iter()
        .enumerate()
        .map(|(index, arg)| {
            let mut spec = ArgSpec {
                size: arg.size,
                signed: u8::from(arg.signed),
                ..ArgSpec::default()
            };
            match &arg.location {
                Location::Const(value) => {
                    spec.kind = arg_kind::CONST;
                    spec.val_off = *value;
                }
                Location::Reg(reg) => {
                    spec.kind = arg_kind::REG;
                    spec.reg_off = reg.offset;
                }
                Location::Mem { base, offset } => {
                    spec.kind = arg_kind::MEM;
                    spec.reg_off = base.offset;
                    spec.val_off = *offset;
                }
                Location::MemIndexed {
                    base,
                    index,
                    scale,
                    offset,
                } => {
                    spec.kind = arg_kind::MEM_INDEXED;
                    spec.reg_off = base.map_or(ustat_common::NO_REG, |b| b.offset);
                    spec.index_reg_off = index.offset;
                    spec.scale = *scale;
                    spec.val_off = *offset;
                }
                Location::Symbol { name, offset } => {
                    let address =
                        symbols
                            .address_of(name)
                            .ok_or_else(|| LowerError::UndefinedSymbol {
                                index,
                                name: name.clone(),
                            })?;
                    spec.kind = arg_kind::MEM_PROBE_RELATIVE;
                    spec.val_off = (address as i64)
                        .wrapping_sub(pc as i64)
                        .wrapping_add(*offset);
                }
            }
            Ok(spec)
        })
        .collect()
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.signed { "signed" } else { "unsigned" };
        write!(f, "{sign} {}-byte {:?}", self.size, self.location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Arg {
        let mut args = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(args.len(), 1, "{text}");
        args.remove(0)
    }

    fn reg(offset: u16) -> Reg {
        Reg { offset }
    }

    #[test]
    fn empty_specs_have_no_arguments() {
        assert_eq!(parse(""), Ok(vec![]));
        assert_eq!(parse("   "), Ok(vec![]));
        assert_eq!(parse(":"), Ok(vec![]));
    }

    #[test]
    fn every_width_alias_names_the_same_register() {
        for (aliases, offset) in REGISTERS {
            for alias in *aliases {
                let arg = one(&format!("8@%{alias}"));
                assert_eq!(arg.location, Location::Reg(reg(*offset)), "{alias}");
            }
        }
        assert_eq!(one("-1@%dil").location, Location::Reg(reg(pt_regs::RDI)));
        assert_eq!(one("2@%r8w").location, Location::Reg(reg(pt_regs::R8)));
    }

    #[test]
    fn sizes_and_signs() {
        for (text, size, signed) in [
            ("1@%al", 1, false),
            ("-1@%al", 1, true),
            ("2@%ax", 2, false),
            ("-2@%ax", 2, true),
            ("4@%eax", 4, false),
            ("-4@%eax", 4, true),
            ("8@%rax", 8, false),
            ("-8@%rax", 8, true),
        ] {
            let arg = one(text);
            assert_eq!((arg.size, arg.signed), (size, signed), "{text}");
        }
    }

    #[test]
    fn memory_forms() {
        assert_eq!(
            one("8@152(%rdi)").location,
            Location::Mem {
                base: reg(pt_regs::RDI),
                offset: 152
            }
        );
        assert_eq!(
            one("-4@-112(%rsp)").location,
            Location::Mem {
                base: reg(pt_regs::SP),
                offset: -112
            }
        );
        assert_eq!(
            one("8@(%rbx)").location,
            Location::Mem {
                base: reg(pt_regs::RBX),
                offset: 0
            }
        );
        assert_eq!(
            one("4@0x10(%r12)").location,
            Location::Mem {
                base: reg(pt_regs::R12),
                offset: 16
            }
        );
        assert_eq!(
            one("1@-96(%rbp,%rax,8)").location,
            Location::MemIndexed {
                base: Some(reg(pt_regs::RBP)),
                index: reg(pt_regs::RAX),
                scale: 8,
                offset: -96
            }
        );
        assert_eq!(
            one("8@(%rsp,%rcx)").location,
            Location::MemIndexed {
                base: Some(reg(pt_regs::SP)),
                index: reg(pt_regs::RCX),
                scale: 1,
                offset: 0
            }
        );
        assert_eq!(
            one("8@16(,%rdx,4)").location,
            Location::MemIndexed {
                base: None,
                index: reg(pt_regs::RDX),
                scale: 4,
                offset: 16
            }
        );
    }

    #[test]
    fn constants() {
        assert_eq!(one("1@$1").location, Location::Const(1));
        assert_eq!(one("-4@$-5").location, Location::Const(-5));
        assert_eq!(one("8@$0xff").location, Location::Const(255));
        assert_eq!(one("8@$18446744073709551615").location, Location::Const(-1));
    }

    #[test]
    fn rip_relative_names_a_symbol() {
        assert_eq!(
            one("8@counter(%rip)").location,
            Location::Symbol {
                name: "counter".into(),
                offset: 0
            }
        );
        assert_eq!(
            one("4@table+8(%rip)").location,
            Location::Symbol {
                name: "table".into(),
                offset: 8
            }
        );
        assert_eq!(
            one("4@_ZL5state.lto_priv.0-4(%rip)").location,
            Location::Symbol {
                name: "_ZL5state.lto_priv.0".into(),
                offset: -4
            }
        );
        assert!(
            parse("8@16(%rip)")
                .unwrap_err()
                .reason
                .contains("not a symbol reference")
        );
    }

    #[test]
    fn several_arguments_keep_their_order() {
        let args = parse("-4@%eax 8@%rdx 1@$1 8@8(%rbp)").unwrap();
        assert_eq!(args.len(), 4);
        assert_eq!(args[2].location, Location::Const(1));
    }

    #[test]
    fn real_hotspot_and_cpython_specs() {
        // From libjvm.so (OpenJDK 17) and python3.11 (Debian) notes on this machine kind.
        for spec in [
            "8@%rax 8@%rdx 8@%rcx 8@%rsi 8@%rdi 8@%r8 -4@%r9d",
            "8@%r12 8@%rbx 8@%r13 8@%r14 8@-72(%rbp) 8@-64(%rbp) 1@%r15b",
            "-4@%eax",
            "1@%dil",
            "1@$1",
            "8@%r14 8@%r13 -4@%eax",
        ] {
            parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        }
    }

    #[test]
    fn malformed_specs_say_which_argument_and_why() {
        let cases = [
            ("8", 0, "SIZE@LOCATION"),
            ("3@%rax", 0, "size `3`"),
            ("8@%rax 8@%xyz", 1, "unknown register"),
            ("1@%ah", 0, "high-byte"),
            ("8@8(%rax", 0, "missing `)`"),
            ("8@(%rax,%rbx,3)", 0, "scale `3`"),
            ("8@$nope", 0, "not an integer"),
            ("8@%fs:8", 0, "segment"),
            ("8@(%rax,%rsp)", 0, "cannot be an index"),
            ("8@(%rax,%rbx,1,2)", 0, "expected"),
            ("@%rax", 0, "size ``"),
            ("8@--5(%rax)", 0, "not an integer"),
        ];
        for (spec, index, reason) in cases {
            let err = parse(spec).unwrap_err();
            assert_eq!(err.index, index, "{spec}");
            assert!(err.reason.contains(reason), "{spec}: {}", err.reason);
        }
        let thirteen = vec!["8@%rax"; 13].join(" ");
        assert!(
            parse(&thirteen)
                .unwrap_err()
                .reason
                .contains("more than 12")
        );
    }

    struct Symbols;
    impl SymbolLookup for Symbols {
        fn address_of(&self, name: &str) -> Option<u64> {
            (name == "counter").then_some(0x4000)
        }
    }

    #[test]
    fn lowering_fills_the_kernel_spec() {
        let args = parse("-4@-8(%rbp) 8@(,%rax,8) 1@$7 8@counter+8(%rip)").unwrap();
        let specs = lower(&args, 0x1000, &Symbols).unwrap();
        assert_eq!(specs[0].kind, arg_kind::MEM);
        assert_eq!(
            (specs[0].reg_off, specs[0].val_off, specs[0].signed),
            (pt_regs::RBP, -8, 1)
        );
        assert_eq!(specs[1].kind, arg_kind::MEM_INDEXED);
        assert_eq!(
            (specs[1].reg_off, specs[1].index_reg_off, specs[1].scale),
            (ustat_common::NO_REG, pt_regs::RAX, 8)
        );
        assert_eq!((specs[2].kind, specs[2].val_off), (arg_kind::CONST, 7));
        assert_eq!(
            (specs[3].kind, specs[3].val_off),
            (arg_kind::MEM_PROBE_RELATIVE, 0x3008)
        );

        let missing = parse("8@other(%rip)").unwrap();
        assert_eq!(
            lower(&missing, 0, &Symbols),
            Err(LowerError::UndefinedSymbol {
                index: 0,
                name: "other".into()
            })
        );
    }
}
