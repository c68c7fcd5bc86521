//! Turns a runtime's features into attachments for one binary: for each feature, the first
//! alternative whose every rule resolves (USDT probe present, symbol found), and for each
//! rule, which program, at which file offset, with which spec.

use std::sync::Arc;

use object::ReadRef;
use ustat_common::{KeyArg, NO_ARG, ProbeSpec, key_kind};
use ustat_runtimes::{Action, Arg, Feature, Key, Missing, Point, Rule, Runtime};

use crate::{
    binary::Binary,
    bpf::{Attachment, ProbePoint, Program},
    elf::{Elf, OpenError},
    usdt::{self, spec},
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

impl Planned {
    pub fn attachment(&self) -> Attachment<'_> {
        Attachment {
            probe: &self.probe,
            program: self.program,
            point: &self.point,
            spec: &self.spec,
        }
    }
}

/// What a runtime gets from one binary.
#[derive(Debug, Default)]
pub struct Plan {
    pub attachments: Vec<Planned>,
    /// Features that resolved.
    pub resolved: Vec<&'static str>,
    /// Features that did not, with the line that says why.
    pub unavailable: Vec<Missing>,
    /// Sites that could not be used although their probe resolved (an argument spec ustat
    /// cannot read), one line each.
    pub warnings: Vec<String>,
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
    spec.subkey_tag = rule.subkey_tag;
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

/// Plans `runtime`'s features in `binary` (attachments go to that same open file).
pub fn plan(runtime: &Runtime, binary: &Arc<Binary>) -> Result<Plan, OpenError> {
    let data = binary.data();
    let elf = binary.elf(&data)?;
    Ok(plan_elf(runtime.features, &elf, binary))
}

pub fn plan_elf<'data, R: ReadRef<'data>>(
    features: &[Feature],
    elf: &Elf<'data, R>,
    binary: &Arc<Binary>,
) -> Plan {
    let probes = usdt::probes_in(elf).ok().flatten().unwrap_or_default();
    let mut plan = Plan::default();
    for feature in features {
        let chosen = feature.alternatives.iter().find_map(|rules| {
            let mut attachments = Vec::new();
            let mut warnings = Vec::new();
            for rule in *rules {
                let planned = match rule.point {
                    Point::Usdt { provider, name } => {
                        plan_usdt(&probes, provider, name, rule, binary, &mut warnings)
                    }
                    Point::Function { symbol, args } => {
                        plan_function(elf, symbol, args, false, rule, binary)
                    }
                    Point::Return { symbol, args } => {
                        plan_function(elf, symbol, args, true, rule, binary)
                    }
                };
                attachments.extend(planned.ok()?);
            }
            Some((attachments, warnings))
        });
        match chosen {
            Some((attachments, warnings)) => {
                plan.attachments.extend(attachments);
                plan.warnings.extend(warnings);
                plan.resolved.push(feature.name);
            }
            None => plan.unavailable.push(Missing {
                categories: feature.categories.to_vec(),
                text: feature.unavailable.to_string(),
            }),
        }
    }
    plan
}

/// Every usable site of the probe; `Err` when the binary does not have it or none is usable.
fn plan_usdt(
    probes: &[usdt::Probe],
    provider: &str,
    name: &str,
    rule: &Rule,
    binary: &Arc<Binary>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Planned>, String> {
    let full = format!("{provider}:{name}");
    let probe = probes
        .iter()
        .find(|p| p.provider == provider && p.name == name)
        .ok_or_else(|| format!("{} has no USDT probe {full}", binary.shown().display()))?;
    let mut planned = Vec::new();
    for site in &probe.sites {
        match &site.target {
            Ok(target) => {
                let mut spec = target.probe_spec(0);
                let program = configure(rule, &mut spec);
                planned.push(Planned {
                    probe: full.clone(),
                    program,
                    point: ProbePoint {
                        binary: Arc::clone(binary),
                        offset: target.offset,
                        semaphore_offset: target.semaphore_offset,
                        retprobe: false,
                    },
                    spec,
                });
            }
            Err(reason) => {
                warnings.push(format!("{full} site {:#x} skipped: {reason}", site.address))
            }
        }
    }
    if planned.is_empty() {
        return Err(format!("no site of {full} can be traced"));
    }
    Ok(planned)
}

/// Resolves no symbols: function argument specs only name registers and memory.
struct NoSymbols;

impl spec::SymbolLookup for NoSymbols {
    fn address_of(&self, _: &str) -> Option<u64> {
        None
    }
}

fn plan_function<'data, R: ReadRef<'data>>(
    elf: &Elf<'data, R>,
    symbol: &str,
    args: &str,
    retprobe: bool,
    rule: &Rule,
    binary: &Arc<Binary>,
) -> Result<Vec<Planned>, String> {
    let address = elf.symbol_address(symbol).map_err(|e| e.to_string())?;
    let offset = elf.file_offset(address, true).ok_or_else(|| {
        format!("symbol {symbol} at {address:#x} is not in an executable segment")
    })?;
    let parsed = spec::parse(args).map_err(|e| format!("{symbol}: {e}"))?;
    let lowered = spec::lower(&parsed, address, &NoSymbols)?;
    let mut spec = ProbeSpec::EMPTY;
    spec.args[..lowered.len()].copy_from_slice(&lowered);
    spec.nargs = lowered.len() as u8;
    let program = configure(rule, &mut spec);
    let name = symbol.trim_end_matches('*');
    Ok(vec![Planned {
        probe: if retprobe {
            format!("{name} (return)")
        } else {
            name.to_string()
        },
        program,
        point: ProbePoint {
            binary: Arc::clone(binary),
            offset,
            semaphore_offset: None,
            retprobe,
        },
        spec,
    }])
}

/// The flow probes of `runtime` in `binary`: `flow_entry` at every site of its method entry
/// probe, `flow_return` at every site of its return probe.
pub fn plan_flow(runtime: &Runtime, binary: &Arc<Binary>) -> Result<Vec<Planned>, String> {
    let flow = runtime.flow.ok_or_else(|| {
        format!(
            "{} has no method probes: its calls cannot be followed",
            runtime.name
        )
    })?;
    let data = binary.data();
    let elf = binary
        .elf(&data)
        .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
    let probes = usdt::probes_in(&elf).ok().flatten().unwrap_or_default();
    let mut planned = Vec::new();
    for (point, program) in [
        (flow.entry, Program::FlowEntry),
        (flow.exit, Program::FlowReturn),
    ] {
        let rule = Rule::new(
            point,
            Action::Keyed {
                category: ustat_common::category::METHOD_TIME,
                keys: flow.keys,
                value: Arg::None,
            },
        );
        let mut warnings = Vec::new();
        let sites = match point {
            Point::Usdt { provider, name } => {
                plan_usdt(&probes, provider, name, &rule, binary, &mut warnings)
            }
            Point::Function { symbol, args } => {
                plan_function(&elf, symbol, args, false, &rule, binary)
            }
            Point::Return { symbol, args } => {
                plan_function(&elf, symbol, args, true, &rule, binary)
            }
        }?;
        planned.extend(sites.into_iter().map(|p| Planned { program, ..p }));
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use ustat_common::{arg_kind, category, pt_regs};

    use ustat_runtimes::{jvm::JVM, node::NODE, python::PYTHON};

    use super::*;

    const LIBJVM: &str = "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so";

    fn plan_of(runtime: &Runtime, path: &str) -> Plan {
        let binary = Binary::open_given(Path::new(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        plan(runtime, &binary).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn pyenv(version: &str, lib: &str) -> String {
        format!(
            "{}/.pyenv/versions/{version}/lib/{lib}",
            std::env::var("HOME").unwrap()
        )
    }

    #[test]
    fn every_jvm_feature_resolves_in_libjvm() {
        let plan = plan_of(&JVM, LIBJVM);
        assert_eq!(
            plan.resolved,
            [
                "gc",
                "classes",
                "threads",
                "calls",
                "allocations",
                "monitors"
            ]
        );
        assert!(plan.unavailable.is_empty());
        let begin = plan
            .attachments
            .iter()
            .find(|a| a.probe == "hotspot:gc__begin")
            .unwrap();
        assert_eq!(begin.program, Program::SpanBegin);
        assert_eq!((begin.spec.tag, begin.spec.subkey_arg), (category::GC, 0));
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
        let alloc = plan
            .attachments
            .iter()
            .find(|a| a.probe == "hotspot:object__alloc")
            .unwrap();
        assert_eq!(alloc.spec.value_max, 1 << 30);
    }

    #[test]
    fn debian_python_uses_its_usdt_probes() {
        let plan = plan_of(&PYTHON, "/usr/bin/python3.11");
        assert_eq!(plan.resolved, ["gc", "threads", "imports", "calls"]);
        let probes: Vec<&str> = plan.attachments.iter().map(|a| a.probe.as_str()).collect();
        assert!(
            probes.contains(&"python:gc__start") && probes.contains(&"python:gc__done"),
            "{probes:?}"
        );
        assert!(probes.contains(&"PyThread_start_new_thread"), "{probes:?}");
        let start = plan
            .attachments
            .iter()
            .find(|a| a.probe == "python:gc__start")
            .unwrap();
        assert!(
            start.point.semaphore_offset.is_some(),
            "CPython's probes are semaphore-gated"
        );
    }

    #[test]
    fn pyenv_pythons_fall_back_to_symbols() {
        let plan = plan_of(&PYTHON, &pyenv("3.12.1", "libpython3.12.so.1.0"));
        assert_eq!(plan.resolved, ["gc", "threads"]);
        let entry = plan
            .attachments
            .iter()
            .find(|a| a.probe == "gc_collect_main")
            .unwrap();
        assert!(!entry.point.retprobe);
        assert_eq!(entry.spec.subkey_arg, 1);
        assert_eq!(
            (
                entry.spec.args[1].kind,
                entry.spec.args[1].reg_off,
                entry.spec.args[1].size,
                entry.spec.args[1].signed
            ),
            (arg_kind::REG, pt_regs::RSI, 4, 1),
            "the generation is an int: only %esi counts"
        );
        let ret = plan
            .attachments
            .iter()
            .find(|a| a.probe == "gc_collect_main (return)")
            .unwrap();
        assert!(ret.point.retprobe);
        assert_eq!(ret.point.offset, entry.point.offset);
        assert_eq!(
            (ret.spec.args[0].reg_off, ret.spec.value_arg),
            (pt_regs::RAX, 0)
        );
        let missing: Vec<&str> = plan.unavailable.iter().map(|m| m.text.as_str()).collect();
        assert!(missing[0].starts_with("imports: not traced"), "{missing:?}");
        assert!(
            missing[1].starts_with("function calls: not traced"),
            "{missing:?}"
        );
        assert_eq!(plan.unavailable[1].categories, [category::METHOD_CALL]);

        let probes = |version: &str, lib: &str| -> Vec<String> {
            plan_of(&PYTHON, &pyenv(version, lib))
                .attachments
                .into_iter()
                .map(|a| a.probe)
                .collect()
        };
        assert!(
            probes("3.13.0", "libpython3.13.so.1.0")
                .contains(&"PyThread_start_joinable_thread".to_string())
        );
        assert!(probes("3.10.13", "libpython3.10.so.1.0").contains(&"gc_collect_main".to_string()));
        assert!(probes("3.9.18", "libpython3.9.so.1.0").contains(&"collect".to_string()));
        let old = plan_of(&PYTHON, &pyenv("3.8.18", "libpython3.8.so.1.0"));
        assert_eq!(old.resolved, ["threads"]);
        assert!(old.unavailable[0].text.starts_with("GC: not traced"));
    }

    #[test]
    fn node_resolves_v8_and_libuv_symbols() {
        let plan = plan_of(&NODE, "/usr/bin/node");
        assert_eq!(plan.resolved, ["gc", "threads", "http"]);
        let gc = plan
            .attachments
            .iter()
            .find(|a| a.probe == "_ZN2v88internal4Heap24PerformGarbageCollection")
            .unwrap();
        assert_eq!(
            (gc.spec.args[1].reg_off, gc.spec.args[1].size),
            (pt_regs::RSI, 1)
        );
        let http = plan
            .attachments
            .iter()
            .find(|a| a.program == Program::Count && a.spec.tag == category::HTTP_PARSED)
            .unwrap();
        assert_eq!(
            (http.spec.args[0].kind, http.spec.args[0].val_off),
            (arg_kind::MEM, 72)
        );
    }

    #[test]
    fn the_first_alternative_that_resolves_wins() {
        static FEATURES: &[Feature] = &[
            Feature {
                name: "gc",
                categories: &[category::GC],
                alternatives: &[
                    &[Rule::usdt(
                        "nope",
                        "gc",
                        Action::SpanBegin {
                            category: category::GC,
                            subkey: Arg::None,
                        },
                    )],
                    &[Rule::function(
                        "PyGC_Collect",
                        "8@%rdi",
                        Action::SpanBegin {
                            category: category::GC,
                            subkey: Arg::None,
                        },
                    )],
                ],
                unavailable: "GC: no",
            },
            Feature {
                name: "other",
                categories: &[category::IMPORT],
                alternatives: &[&[Rule::function(
                    "no_such_function",
                    "",
                    Action::SpanBegin {
                        category: category::IMPORT,
                        subkey: Arg::None,
                    },
                )]],
                unavailable: "other: no",
            },
        ];
        let binary = Binary::open_given(Path::new("/usr/bin/python3.11")).unwrap();
        let data = binary.data();
        let plan = plan_elf(FEATURES, &binary.elf(&data).unwrap(), &binary);
        assert_eq!(plan.resolved, ["gc"]);
        assert_eq!(plan.attachments.len(), 1);
        assert_eq!(plan.attachments[0].probe, "PyGC_Collect");
        assert_eq!(
            plan.unavailable,
            [Missing {
                categories: vec![category::IMPORT],
                text: "other: no".into()
            }]
        );
    }
}
