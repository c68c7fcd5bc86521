//! Compiles a parsed spec, at one probe with one calling convention, into what the kernel
//! reads: the argument slots of the site's `ProbeSpec` (locations) and the probe's
//! `TraceConfig` (what to do with the values in those slots).

use ustat_common::{
    ArgSpec, FilterTerm, MAX_ARGS, ProbeSpec, TraceConfig, TraceField, field_kind, filter_op,
    term_kind,
};

use super::{
    location::{CallingConvention, LocateError, Located},
    spec::{Arg, Constant, Conversion, Op, Spec, Value},
};

/// What `ustat trace` does with a probe's hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Print,
    Count,
    /// The entry of a timed call (its return gets `trace_return`).
    Latency,
}

/// How a printed value came out of the kernel: the conversion, and for `%s` whether it is a
/// string at all (a `%s` of a plain number prints the number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldShape {
    pub conversion: Conversion,
    /// The kernel read a string for it (its index in the event's strings).
    pub string: Option<u8>,
    /// The location's value is signed (USDT `-4@...`): `%d` of a 32-bit one sign-extends.
    pub signed: bool,
}

/// One probe compiled: the locations (a site's `ProbeSpec` without its tag) and the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub slots: Vec<ArgSpec>,
    pub config: TraceConfig,
    pub fields: Vec<FieldShape>,
}

impl Compiled {
    /// The `SPECS` entry of a site of probe `probe` (its `TRACE_CONFIGS` index).
    pub fn probe_spec(&self, probe: u32) -> ProbeSpec {
        let mut spec = ProbeSpec::EMPTY;
        spec.args[..self.slots.len()].copy_from_slice(&self.slots);
        spec.nargs = self.slots.len() as u8;
        spec.tag = probe;
        spec
    }
}

/// Where the value of a spec's `Value` went.
#[derive(Debug, Clone, Copy)]
enum Slots {
    One(u8),
    Pair(u8, u8),
}

impl Slots {
    fn first(self) -> u8 {
        match self {
            Self::One(s) | Self::Pair(s, _) => s,
        }
    }
}

/// Why a spec cannot be compiled at a probe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Locate(#[from] LocateError),
    #[error("the spec reads more than {MAX_ARGS} values")]
    TooManyValues,
}

/// Compiles `spec` for `mode` at a probe whose values `convention` locates. Without a format,
/// `default_fields` values are printed (`u:` probes show their arguments).
pub fn compile(
    spec: &Spec,
    mode: Mode,
    convention: &dyn CallingConvention,
    default_fields: &[Value],
) -> Result<Compiled, CompileError> {
    let mut slots: Vec<ArgSpec> = Vec::new();
    let mut placed: Vec<(Value, Slots)> = Vec::new();
    let mut place = |value: Value| -> Result<Slots, CompileError> {
        if let Some((_, s)) = placed.iter().find(|(v, _)| *v == value) {
            return Ok(*s);
        }
        let mut push = |arg: ArgSpec| -> Result<u8, CompileError> {
            if slots.len() >= MAX_ARGS {
                return Err(CompileError::TooManyValues);
            }
            slots.push(arg);
            Ok((slots.len() - 1) as u8)
        };
        let s = match convention.locate(value)? {
            Located::One(arg) => Slots::One(push(arg)?),
            Located::PtrLen { ptr, len } => Slots::Pair(push(ptr)?, push(len)?),
        };
        placed.push((value, s));
        Ok(s)
    };
    let mut fields: Vec<(Conversion, Arg)> = spec.fields().collect();
    if spec.format.is_empty() {
        fields = default_fields
            .iter()
            .map(|v| (Conversion::Signed { wide: true }, Arg::Value(*v)))
            .collect();
    }
    let mut config = TraceConfig {
        mode: match mode {
            Mode::Print => ustat_common::trace_mode::PRINT,
            Mode::Count => ustat_common::trace_mode::COUNT,
            Mode::Latency => ustat_common::trace_mode::LATENCY,
        },
        ..TraceConfig::default()
    };
    let mut shapes = Vec::new();
    let mut strings = 0u8;
    for (i, (conversion, arg)) in fields.iter().enumerate() {
        let (field, string) = match (*conversion, *arg) {
            (Conversion::Str, Arg::PtrLen { ptr, len }) => {
                let (ptr, len) = (place(ptr)?.first(), place(len)?.first());
                (string_field(field_kind::PTR_LEN, ptr, len, strings), true)
            }
            (Conversion::Str, Arg::Value(v)) => match place(v)? {
                Slots::One(s) => (string_field(field_kind::CSTR, s, 0, strings), true),
                Slots::Pair(p, l) => (string_field(field_kind::PTR_LEN, p, l, strings), true),
            },
            (_, Arg::Value(v)) | (_, Arg::PtrLen { ptr: v, .. }) => {
                let s = place(v)?.first();
                (
                    TraceField {
                        kind: field_kind::VALUE,
                        slot: s,
                        ..TraceField::default()
                    },
                    false,
                )
            }
        };
        config.fields[i] = field;
        if string {
            config.strings[usize::from(strings)] = TraceField {
                string: i as u8,
                ..field
            };
        }
        shapes.push(FieldShape {
            conversion: *conversion,
            string: string.then_some(strings),
            // Filled in below, once every slot is placed.
            signed: false,
        });
        if string {
            strings += 1;
        }
    }
    config.nfields = fields.len() as u8;
    for (i, term) in spec.filter.iter().enumerate() {
        let op = match term.op {
            Op::Eq => filter_op::EQ,
            Op::Ne => filter_op::NE,
            Op::Lt => filter_op::LT,
            Op::Le => filter_op::LE,
            Op::Gt => filter_op::GT,
            Op::Ge => filter_op::GE,
        };
        let mut compiled = FilterTerm {
            op,
            ..FilterTerm::default()
        };
        match (&term.constant, term.arg) {
            (Constant::Int(c), Arg::Value(v) | Arg::PtrLen { ptr: v, .. }) => {
                compiled.kind = if *c < 0 {
                    term_kind::SIGNED
                } else {
                    term_kind::UNSIGNED
                };
                compiled.constant = *c;
                compiled.slot = place(v)?.first();
            }
            (Constant::Text(text), arg) => {
                let (kind, slot, len_slot) = match arg {
                    Arg::PtrLen { ptr, len } => {
                        (term_kind::PTR_LEN, place(ptr)?.first(), place(len)?.first())
                    }
                    Arg::Value(v) => match place(v)? {
                        Slots::One(s) => (term_kind::CSTR, s, 0),
                        Slots::Pair(p, l) => (term_kind::PTR_LEN, p, l),
                    },
                };
                compiled.kind = kind;
                compiled.slot = slot;
                compiled.len_slot = len_slot;
                compiled.constant = text.len() as i64;
                compiled.text[..text.len()].copy_from_slice(text);
            }
        }
        config.terms[i] = compiled;
    }
    config.nterms = spec.filter.len() as u8;
    for (shape, field) in shapes.iter_mut().zip(&config.fields) {
        shape.signed = slots
            .get(usize::from(field.slot))
            .is_some_and(|a| a.signed != 0);
    }
    Ok(Compiled {
        slots,
        config,
        fields: shapes,
    })
}

fn string_field(kind: u8, slot: u8, len_slot: u8, string: u8) -> TraceField {
    TraceField {
        kind,
        slot,
        len_slot,
        string,
    }
}

#[cfg(test)]
mod tests {
    use ustat_common::pt_regs;

    use super::*;
    use crate::trace::{location::SysV, spec::parse};

    #[test]
    fn redis_ptr_len_and_a_string_filter() {
        let spec =
            parse(r#"p:/x:createStringObject (arg1 == "octi") "%s %d", arg1:arg2, arg2"#).unwrap();
        let c = compile(&spec, Mode::Print, &SysV { at_return: false }, &[]).unwrap();
        assert_eq!(
            c.slots.iter().map(|a| a.reg_off).collect::<Vec<_>>(),
            vec![pt_regs::RDI, pt_regs::RSI]
        );
        assert_eq!(c.config.nfields, 2);
        assert_eq!(
            c.config.fields[0],
            TraceField {
                kind: field_kind::PTR_LEN,
                slot: 0,
                len_slot: 1,
                string: 0
            }
        );
        assert_eq!(c.config.fields[1].kind, field_kind::VALUE);
        assert_eq!(c.config.fields[1].slot, 1);
        assert_eq!(c.config.nterms, 1);
        let term = c.config.terms[0];
        assert_eq!(
            (term.kind, term.slot, term.constant),
            (term_kind::CSTR, 0, 4)
        );
        assert_eq!(&term.text[..4], b"octi");
        assert_eq!(c.fields[0].string, Some(0));
        assert_eq!(c.fields[1].string, None);
    }

    #[test]
    fn retval_at_return() {
        let spec = parse(r#"r:/x:f (retval < -1) "%d", retval"#).unwrap();
        let c = compile(&spec, Mode::Print, &SysV { at_return: true }, &[]).unwrap();
        assert_eq!(c.slots.len(), 1);
        assert_eq!(c.slots[0].reg_off, pt_regs::RAX);
        assert_eq!(c.config.terms[0].kind, term_kind::SIGNED);
        assert!(compile(&spec, Mode::Print, &SysV { at_return: false }, &[]).is_err());
    }
}
