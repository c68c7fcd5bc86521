//! Turns a runtime's rules into attachments for one binary: which program, at which file
//! offset, with which spec. Pure apart from reading the binary, so it is tested on real files.

use std::path::Path;

use ustat_common::{ArgSpec, KeyArg, NO_ARG, ProbeSpec, arg_kind, key_kind, pt_regs};
use ustat_runtimes::{Action, Arg, Key, Point, Rule, Runtime};

use crate::{
    bpf::{ProbePoint, Program},
    elf::{Elf, MappedFile, OpenError},
    usdt,
};

/// One attachment to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// `hotspot:gc__begin` or `gc_collect_main` (for errors and listings).
    pub probe: String,
    pub program: Program,
    pub point: ProbePoint,
    pub spec: ProbeSpec,
}

/// The attachments for `runtime` in the binary at `path`, and a line for each required
/// rule the binary cannot satisfy.
#[derive(Debug, Default)]
pub struct Plan {
    pub attachments: Vec<Planned>,
    pub problems: Vec<String>,
}

/// Registers that carry the first six integer arguments (x86-64 System V ABI).
const ABI_ARGS: [u16; 6] = [
    pt_regs::RDI,
    pt_regs::RSI,
    pt_regs::RDX,
    pt_regs::RCX,
    pt_regs::R8,
    pt_regs::R9,
];

fn register_arg(reg_off: u16) -> ArgSpec {
    ArgSpec {
        kind: arg_kind::REG,
        reg_off,
        size: 8,
        ..ArgSpec::default()
    }
}

fn arg_index(arg: Arg) -> u8 {
    match arg {
        Arg::None => NO_ARG,
        Arg::N(n) => n,
    }
}

fn key_arg(key: Key) -> KeyArg {
    let (kind, arg, len_arg) = match key {
        Key::None => (key_kind::NONE, NO_ARG, NO_ARG),
        Key::Value(arg) => (key_kind::VALUE, arg, NO_ARG),
        Key::PtrLen(arg, len) => (key_kind::PTR_LEN, arg, len),
        Key::CStr(arg) => (key_kind::CSTR, arg, NO_ARG),
    };
    KeyArg {
        kind,
        arg,
        len_arg,
        _pad: 0,
    }
}

/// The program for a rule's action, and the spec fields that configure it.
fn configure(rule: &Rule, spec: &mut ProbeSpec) -> Program {
    spec.value_max = rule.value_max;
    match rule.action {
        Action::Count {
            category,
            subkey,
            value,
        } => {
            spec.tag = category;
            spec.subkey_arg = arg_index(subkey);
            spec.value_arg = arg_index(value);
            Program::Count
        }
        Action::SpanBegin { category, subkey } => {
            spec.tag = category;
            spec.subkey_arg = arg_index(subkey);
            Program::SpanBegin
        }
        Action::SpanEnd { category, value } => {
            spec.tag = category;
            spec.value_arg = arg_index(value);
            Program::SpanEnd
        }
        Action::Keyed {
            category,
            keys,
            value,
        } => {
            spec.tag = category;
            spec.keys = keys.map(key_arg);
            spec.value_arg = arg_index(value);
            Program::Keyed
        }
    }
}

/// Plans `runtime`'s rules in the binary at `path` (a path ustat can open; attachments use
/// it too).
pub fn plan(runtime: &Runtime, path: &Path) -> Result<Plan, OpenError> {
    let file = MappedFile::open(path)?;
    let elf = file.elf()?;
    Ok(plan_elf(runtime.rules, &elf, path))
}

pub fn plan_elf(rules: &[Rule], elf: &Elf<'_>, path: &Path) -> Plan {
    let probes = usdt::probes_in(elf).ok().flatten().unwrap_or_default();
    let mut plan = Plan::default();
    for rule in rules {
        let problem = match rule.point {
            Point::Usdt { provider, name } => {
                plan_usdt(&probes, provider, name, rule, path, &mut plan)
            }
            Point::Function { symbol } => plan_function(elf, symbol, false, rule, path, &mut plan),
            Point::Return { symbol } => plan_function(elf, symbol, true, rule, path, &mut plan),
        };
        if let Some(problem) = problem
            && !rule.optional
        {
            plan.problems.push(problem);
        }
    }
    plan
}

fn plan_usdt(
    probes: &[usdt::Probe],
    provider: &str,
    name: &str,
    rule: &Rule,
    path: &Path,
    plan: &mut Plan,
) -> Option<String> {
    let full = format!("{provider}:{name}");
    let Some(probe) = probes
        .iter()
        .find(|p| p.provider == provider && p.name == name)
    else {
        return Some(format!("{} has no USDT probe {full}", path.display()));
    };
    let mut problems = Vec::new();
    for site in &probe.sites {
        match &site.target {
            Ok(target) => {
                let mut spec = target.probe_spec(0);
                let program = configure(rule, &mut spec);
                plan.attachments.push(Planned {
                    probe: full.clone(),
                    program,
                    point: ProbePoint {
                        path: path.to_path_buf(),
                        offset: target.offset,
                        semaphore_offset: target.semaphore_offset,
                        retprobe: false,
                    },
                    spec,
                });
            }
            Err(reason) => problems.push(format!("{full} site {:#x}: {reason}", site.address)),
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn plan_function(
    elf: &Elf<'_>,
    symbol: &str,
    retprobe: bool,
    rule: &Rule,
    path: &Path,
    plan: &mut Plan,
) -> Option<String> {
    let Some(address) = elf.symbol_addresses(&[symbol])[0] else {
        return Some(format!("{} has no symbol {symbol}", path.display()));
    };
    let Some(offset) = elf.file_offset(address, true) else {
        return Some(format!(
            "symbol {symbol} at {address:#x} is not in an executable segment"
        ));
    };
    let mut spec = ProbeSpec::EMPTY;
    if retprobe {
        spec.args[0] = register_arg(pt_regs::RAX);
        spec.nargs = 1;
    } else {
        for (slot, reg) in spec.args.iter_mut().zip(ABI_ARGS) {
            *slot = register_arg(reg);
        }
        spec.nargs = ABI_ARGS.len() as u8;
    }
    let program = configure(rule, &mut spec);
    plan.attachments.push(Planned {
        probe: if retprobe {
            format!("{symbol} (return)")
        } else {
            symbol.to_string()
        },
        program,
        point: ProbePoint {
            path: path.to_path_buf(),
            offset,
            semaphore_offset: None,
            retprobe,
        },
        spec,
    });
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use ustat_common::category;

    const LIBJVM: &str = "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so";

    #[test]
    fn the_jvm_rules_plan_every_probe_of_libjvm() {
        let plan = plan(&ustat_runtimes::jvm::JVM, Path::new(LIBJVM)).unwrap();
        assert_eq!(plan.problems, Vec::<String>::new());
        let gc_begin: Vec<_> = plan
            .attachments
            .iter()
            .filter(|a| a.probe == "hotspot:gc__begin")
            .collect();
        assert!(!gc_begin.is_empty());
        assert_eq!(gc_begin[0].program, Program::SpanBegin);
        assert_eq!(
            (gc_begin[0].spec.tag, gc_begin[0].spec.subkey_arg),
            (category::GC, 0)
        );
        let entry = plan
            .attachments
            .iter()
            .find(|a| a.probe == "hotspot:method__entry")
            .unwrap();
        assert_eq!(entry.program, Program::Keyed);
        assert_eq!(
            entry.spec.keys[1],
            KeyArg {
                kind: key_kind::PTR_LEN,
                arg: 3,
                len_arg: 4,
                _pad: 0
            }
        );
        assert_eq!(entry.spec.nargs, 7);
    }

    #[test]
    fn a_missing_probe_is_a_problem_unless_optional() {
        let rules = [
            Rule::usdt(
                "hotspot",
                "no__such__probe",
                Action::Count {
                    category: 1,
                    subkey: Arg::None,
                    value: Arg::None,
                },
            ),
            Rule::usdt(
                "hotspot",
                "other__missing",
                Action::Count {
                    category: 1,
                    subkey: Arg::None,
                    value: Arg::None,
                },
            )
            .optional(),
        ];
        let file = MappedFile::open(Path::new(LIBJVM)).unwrap();
        let plan = plan_elf(&rules, &file.elf().unwrap(), Path::new(LIBJVM));
        assert!(plan.attachments.is_empty());
        assert_eq!(
            plan.problems,
            [format!(
                "{LIBJVM} has no USDT probe hotspot:no__such__probe"
            )]
        );
    }

    #[test]
    fn functions_are_found_by_symbol_with_abi_arguments() {
        // python3.11 is stripped but exports its API in .dynsym.
        let rules = [
            Rule::new(
                Point::Function {
                    symbol: "PyGC_Collect",
                },
                Action::SpanBegin {
                    category: 1,
                    subkey: Arg::N(1),
                },
            ),
            Rule::new(
                Point::Return {
                    symbol: "PyGC_Collect",
                },
                Action::SpanEnd {
                    category: 1,
                    value: Arg::N(0),
                },
            ),
            Rule::new(
                Point::Function {
                    symbol: "no_such_function",
                },
                Action::SpanBegin {
                    category: 1,
                    subkey: Arg::None,
                },
            ),
        ];
        let path = Path::new("/usr/bin/python3.11");
        let file = MappedFile::open(path).unwrap();
        let plan = plan_elf(&rules, &file.elf().unwrap(), path);
        assert_eq!(plan.attachments.len(), 2);
        let entry = &plan.attachments[0];
        assert!(!entry.point.retprobe);
        assert_eq!(entry.spec.args[1], register_arg(pt_regs::RSI));
        assert_eq!(entry.spec.subkey_arg, 1);
        let ret = &plan.attachments[1];
        assert!(ret.point.retprobe);
        assert_eq!(ret.point.offset, entry.point.offset);
        assert_eq!(
            (ret.spec.nargs, ret.spec.args[0]),
            (1, register_arg(pt_regs::RAX))
        );
        assert_eq!(
            plan.problems,
            ["/usr/bin/python3.11 has no symbol no_such_function"]
        );
    }
}
