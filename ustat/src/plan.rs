//! Turns a runtime's features into attachments for one binary: for each feature, the first
//! alternative whose every rule resolves (USDT probe present, symbol found), and for each
//! rule, which program, at which file offset, with which spec.

use std::path::Path;

use ustat_common::{KeyArg, NO_ARG, ProbeSpec, key_kind};
use ustat_runtimes::{Action, Arg, Feature, Key, Missing, Point, Rule, Runtime};

use crate::{
    bpf::{Attachment, ProbePoint, Program},
    elf::{Elf, MappedFile, OpenError},
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

/// An on-demand feature that resolved, ready to attach when asked for.
#[derive(Debug, Clone)]
pub struct OnDemandPlan {
    pub feature: &'static Feature,
    pub attachments: Vec<Planned>,
}

/// What a runtime gets from one binary.
#[derive(Debug, Default)]
pub struct Plan {
    pub attachments: Vec<Planned>,
    /// Features that resolved.
    pub resolved: Vec<&'static str>,
    /// Features that did not, with the line that says why.
    pub unavailable: Vec<Missing>,
    /// On-demand features that resolved: attached only when a view asks for them.
    pub on_demand: Vec<OnDemandPlan>,
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
        Key::CStrText(arg) => (key_kind::CSTR_TEXT, arg, NO_ARG),
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

/// Plans `runtime`'s features in the binary at `path` (a path ustat can open; attachments
/// use it too).
pub fn plan(runtime: &'static Runtime, path: &Path) -> Result<Plan, OpenError> {
    let file = MappedFile::open(path)?;
    let elf = file.elf()?;
    Ok(plan_elf(runtime.features, &elf, path))
}

pub fn plan_elf(features: &'static [Feature], elf: &Elf<'_>, path: &Path) -> Plan {
    let probes = usdt::probes_in(elf).ok().flatten().unwrap_or_default();
    let mut plan = Plan::default();
    for feature in features {
        let chosen = feature.alternatives.iter().find_map(|rules| {
            let mut attachments = Vec::new();
            let mut warnings = Vec::new();
            for rule in *rules {
                let planned = match rule.point {
                    Point::Usdt { provider, name } => {
                        plan_usdt(&probes, provider, name, rule, path, &mut warnings)
                    }
                    Point::Function { symbol, args } => {
                        plan_function(elf, symbol, args, false, rule, path)
                    }
                    Point::Return { symbol, args } => {
                        plan_function(elf, symbol, args, true, rule, path)
                    }
                };
                attachments.extend(planned.ok()?);
            }
            Some((attachments, warnings))
        });
        match chosen {
            Some((attachments, warnings)) if feature.on_demand.is_some() => {
                plan.warnings.extend(warnings);
                plan.on_demand.push(OnDemandPlan {
                    feature,
                    attachments,
                });
            }
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
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<Planned>, String> {
    let full = format!("{provider}:{name}");
    let probe = probes
        .iter()
        .find(|p| p.provider == provider && p.name == name)
        .ok_or_else(|| format!("{} has no USDT probe {full}", path.display()))?;
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
                        path: path.to_path_buf(),
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

fn plan_function(
    elf: &Elf<'_>,
    symbol: &str,
    args: &str,
    retprobe: bool,
    rule: &Rule,
    path: &Path,
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
            path: path.to_path_buf(),
            offset,
            semaphore_offset: None,
            retprobe,
        },
        spec,
    }])
}

/// The flow probes of `runtime` in the binary at `path`: `flow_entry` at every site of its
/// method entry probe, `flow_return` at every site of its return probe.
pub fn plan_flow(runtime: &Runtime, path: &Path) -> Result<Vec<Planned>, String> {
    let flow = runtime.flow.ok_or_else(|| {
        format!(
            "{} has no method probes: its calls cannot be followed",
            runtime.name
        )
    })?;
    let file = MappedFile::open(path).map_err(|e| format!("{e:#}"))?;
    let elf = file.elf().map_err(|e| format!("{e:#}"))?;
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
                plan_usdt(&probes, provider, name, &rule, path, &mut warnings)
            }
            Point::Function { symbol, args } => {
                plan_function(&elf, symbol, args, false, &rule, path)
            }
            Point::Return { symbol, args } => plan_function(&elf, symbol, args, true, &rule, path),
        }?;
        planned.extend(sites.into_iter().map(|p| Planned { program, ..p }));
    }
    Ok(planned)
}
