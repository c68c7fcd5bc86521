//! Go functions in `ustat trace`: where a spec's values are (Go's register ABI, typed from
//! DWARF: [`GoAbi`]), and where to probe (the entry, every `RET` instead of a uretprobe, or
//! the copies of an inlined function).

use ustat_common::{ArgSpec, arg_kind};

use super::{
    location::{CallingConvention, LocateError, Located},
    spec::Value,
};
use crate::golang::{GoFunction, GoValue, INT_REGISTERS, InlineArg, InlineSite, Piece};

/// Where a Go function is probed.
#[derive(Debug, Clone, Copy)]
pub enum GoPoint<'a> {
    /// Its first instruction.
    Entry,
    /// One of its `RET` instructions: only the results are known.
    Return,
    /// The first instruction of a copy inlined into another function.
    Inlined(&'a InlineSite),
}

/// Go's register ABI at one point of one function.
pub struct GoAbi<'a> {
    pub function: &'a GoFunction,
    pub point: GoPoint<'a>,
}

fn piece_spec(piece: &Piece) -> ArgSpec {
    ArgSpec {
        val_off: 0,
        reg_off: piece.reg_off,
        index_reg_off: 0,
        kind: arg_kind::REG,
        size: piece.size,
        signed: u8::from(piece.signed),
        scale: 0,
    }
}

/// A value in registers: a Go string is its pointer and length (`%s` prints it exactly);
/// anything else its first register.
fn located(value: &GoValue, pieces: &[Piece]) -> Option<Located> {
    match pieces {
        [ptr, len] if value.is_string => Some(Located::PtrLen {
            ptr: piece_spec(ptr),
            len: piece_spec(len),
        }),
        [first, ..] => Some(Located::One(piece_spec(first))),
        [] => None,
    }
}

impl GoAbi<'_> {
    fn described(&self, value: &GoValue, what: &str) -> String {
        crate::sanitize::text(&format!(
            "{what} of {} ({} {})",
            self.function.name, value.name, value.type_name
        ))
    }

    fn typed(&self, values: &[GoValue], index: usize, what: &str) -> Result<Located, LocateError> {
        let value = &values[index];
        match &value.placement {
            crate::golang::Placement::Registers(pieces) => {
                located(value, pieces).ok_or_else(|| {
                    LocateError::Other(format!(
                        "{} takes no register (it has no size)",
                        self.described(value, what)
                    ))
                })
            }
            other => Err(LocateError::Other(format!(
                "{}: {}",
                self.described(value, what),
                other.unreadable().unwrap_or_default()
            ))),
        }
    }
}

impl CallingConvention for GoAbi<'_> {
    fn locate(&self, value: Value) -> Result<Located, LocateError> {
        let function = self.function;
        match (value, self.point) {
            (Value::Retval, GoPoint::Entry | GoPoint::Inlined(_)) => Err(LocateError::NoRetval),
            (Value::Arg(_), GoPoint::Return) => Err(LocateError::Other(
                "at a return only retval is known (the arguments' registers were reused)".into(),
            )),
            (Value::Retval, GoPoint::Return) if !function.typed => {
                Ok(Located::One(super::location::register(INT_REGISTERS[0].1)))
            }
            (Value::Retval, GoPoint::Return) => {
                if function.results.is_empty() {
                    return Err(LocateError::Other(crate::sanitize::text(&format!(
                        "{} returns nothing",
                        function.name
                    ))));
                }
                self.typed(&function.results, 0, "the first result")
            }
            (Value::Arg(n), GoPoint::Entry) if !function.typed => INT_REGISTERS
                .get(usize::from(n) - 1)
                .map(|&(_, reg_off)| Located::One(super::location::register(reg_off)))
                .ok_or_else(|| LocateError::NoSuchArg {
                    probe: crate::sanitize::text(&function.name),
                    count: INT_REGISTERS.len(),
                    asked: n,
                }),
            (Value::Arg(n), GoPoint::Entry) => {
                let index = usize::from(n) - 1;
                if index >= function.params.len() {
                    return Err(LocateError::NoSuchArg {
                        probe: crate::sanitize::text(&function.name),
                        count: function.params.len(),
                        asked: n,
                    });
                }
                self.typed(&function.params, index, &format!("arg{n}"))
            }
            (Value::Arg(n), GoPoint::Inlined(site)) => {
                let index = usize::from(n) - 1;
                let Some(param) = function.params.get(index) else {
                    return Err(LocateError::NoSuchArg {
                        probe: crate::sanitize::text(&function.name),
                        count: function.params.len(),
                        asked: n,
                    });
                };
                match site.args.get(index) {
                    Some(InlineArg::Registers(pieces)) => located(param, pieces).ok_or_else(|| {
                        LocateError::Other(format!("{}: no register", self.described(param, "arg")))
                    }),
                    _ => Err(LocateError::Other(crate::sanitize::text(&format!(
                        "DWARF does not say where arg{n} ({}) of {} is in the copy inlined into {}",
                        param.name, function.name, site.caller
                    )))),
                }
            }
        }
    }
}

/// Why a Go function cannot be probed as the spec asks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoTraceError {
    #[error(
        "{name} exists only inlined (into {callers}); its returns cannot be probed there. Trace a function it calls instead: {instead}"
    )]
    InlinedOnly {
        name: String,
        callers: String,
        instead: String,
    },
    #[error(
        "{path} was built by {version}, which passes arguments on the stack and keeps no goroutine in R14; ustat traces Go 1.17 and later"
    )]
    StackAbi { path: String, version: String },
}

/// The refusal for a return probe (`r:`, `--latency`) of a function that exists only
/// inlined: its callers, and the functions its inlined code calls.
pub fn inlined_only(callees: Vec<String>, function: &GoFunction) -> GoTraceError {
    let mut callers: Vec<&str> = function.inlined.iter().map(|s| s.caller.as_str()).collect();
    callers.sort_unstable();
    callers.dedup();
    let instead = if callees.is_empty() {
        format!("its callers ({})", callers.join(", "))
    } else {
        callees.join(", ")
    };
    GoTraceError::InlinedOnly {
        name: crate::sanitize::text(&function.name),
        callers: crate::sanitize::text(&callers.join(", ")),
        instead: crate::sanitize::text(&instead),
    }
}

#[cfg(test)]
mod tests {
    use ustat_common::pt_regs;

    use super::*;
    use crate::golang::Placement;

    fn value(name: &str, is_string: bool, registers: &[(&'static str, u16)]) -> GoValue {
        GoValue {
            name: name.into(),
            type_name: if is_string { "string" } else { "*T" }.into(),
            is_string,
            placement: Placement::Registers(
                registers
                    .iter()
                    .map(|&(register, reg_off)| Piece {
                        register,
                        reg_off,
                        size: 8,
                        signed: false,
                    })
                    .collect(),
            ),
        }
    }

    fn client_get() -> GoFunction {
        GoFunction {
            name: "net/http.(*Client).Get".into(),
            code: Some((0x1000, 0x1100)),
            returns: vec![0x1050, 0x10f0],
            entry: Some(0x1006),
            params: vec![
                value("c", false, &[("rax", pt_regs::RAX)]),
                value("url", true, &[("rbx", pt_regs::RBX), ("rcx", pt_regs::RCX)]),
            ],
            results: vec![value("resp", false, &[("rax", pt_regs::RAX)])],
            typed: true,
            inlined: vec![],
        }
    }

    #[test]
    fn a_string_parameter_is_its_pointer_and_length() {
        let f = client_get();
        let entry = GoAbi {
            function: &f,
            point: GoPoint::Entry,
        };
        let Ok(Located::PtrLen { ptr, len }) = entry.locate(Value::Arg(2)) else {
            panic!("url is a pointer and a length")
        };
        assert_eq!((ptr.reg_off, len.reg_off), (pt_regs::RBX, pt_regs::RCX));
        assert!(
            matches!(entry.locate(Value::Arg(1)), Ok(Located::One(a)) if a.reg_off == pt_regs::RAX)
        );
        assert!(matches!(
            entry.locate(Value::Arg(3)),
            Err(LocateError::NoSuchArg { count: 2, .. })
        ));
        assert_eq!(entry.locate(Value::Retval), Err(LocateError::NoRetval));
        let ret = GoAbi {
            function: &f,
            point: GoPoint::Return,
        };
        assert!(
            matches!(ret.locate(Value::Retval), Ok(Located::One(a)) if a.reg_off == pt_regs::RAX)
        );
        assert!(ret.locate(Value::Arg(1)).is_err());
    }

    #[test]
    fn floats_and_untyped_functions() {
        let mut f = client_get();
        f.params[1].placement = Placement::Float;
        let entry = GoAbi {
            function: &f,
            point: GoPoint::Entry,
        };
        let Err(LocateError::Other(why)) = entry.locate(Value::Arg(2)) else {
            panic!("a float is refused")
        };
        assert!(why.contains("floating-point"), "{why}");
        f.typed = false;
        f.params.clear();
        let raw = GoAbi {
            function: &f,
            point: GoPoint::Entry,
        };
        // Without DWARF, argN is the Nth integer register of the ABI.
        assert!(
            matches!(raw.locate(Value::Arg(4)), Ok(Located::One(a)) if a.reg_off == pt_regs::RDI)
        );
    }

    #[test]
    fn an_inlined_only_function_names_its_callers_and_what_to_trace() {
        let site = |caller: &str| InlineSite {
            caller: caller.into(),
            entry: 0x10,
            end: 0x20,
            args: vec![],
        };
        let mut f = client_get();
        f.name = "net/http.Get".into();
        f.code = None;
        f.inlined = vec![site("main.main"), site("main.fetch"), site("main.main")];
        assert_eq!(
            inlined_only(vec!["net/http.(*Client).Get".into()], &f).to_string(),
            "net/http.Get exists only inlined (into main.fetch, main.main); its returns cannot be probed there. Trace a function it calls instead: net/http.(*Client).Get"
        );
    }
}
