//! Turns a runtime's features into attachments for one binary: for each feature, the first
//! alternative whose every rule resolves (USDT probe present, symbol found), and for each
//! rule, which program, at which file offset, with which spec.

use std::{path::PathBuf, sync::Arc};

use object::ReadRef;
use ustat_common::{KeyArg, NO_ARG, ProbeSpec, key_kind};
use ustat_runtimes::{Action, Arg, Feature, Key, Missing, Point, Rule, Runtime};

use crate::{
    binary::{Binary, OpenError},
    bpf::{Attachment, ProbePoint, Program},
    elf::{Elf, SymbolError},
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
            site: 0,
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
        Action::SpanSubkey { category, subkey } => {
            spec.tag = category;
            spec.subkey_arg = arg_index(subkey);
            Program::SpanSubkey
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
pub fn plan(runtime: &'static Runtime, binary: &Arc<Binary>) -> Result<Plan, OpenError> {
    let data = binary.data();
    let elf = binary.elf(&data)?;
    Ok(plan_elf(runtime.features, &elf, binary))
}

/// Plans `runtime`'s features in `binary`, and a feature the binary links rather than
/// contains (a rule's `library`) in that library: `library` opens the file by that name
/// prefix the process maps, if it maps one (through `binary::Binary`, as every mapped file).
pub fn plan_with_libraries(
    runtime: &'static Runtime,
    binary: &Arc<Binary>,
    library: impl Fn(&str) -> Option<Arc<Binary>>,
) -> Result<Plan, OpenError> {
    let mut plan = plan(runtime, binary)?;
    for feature in runtime.features {
        if plan.resolved.contains(&feature.name)
            || plan
                .on_demand
                .iter()
                .any(|d| d.feature.name == feature.name)
        {
            continue;
        }
        let Some(prefix) = feature
            .alternatives
            .iter()
            .flat_map(|rules| rules.iter())
            .find_map(|rule| rule.library)
        else {
            continue;
        };
        let Some(library) = library(prefix) else {
            continue;
        };
        let data = library.data();
        let Ok(elf) = library.elf(&data) else {
            continue;
        };
        let linked = plan_elf(std::slice::from_ref(feature), &elf, &library);
        if linked.resolved.contains(&feature.name) {
            plan.attachments.extend(linked.attachments);
            plan.warnings.extend(linked.warnings);
            plan.resolved.push(feature.name);
            plan.unavailable
                .retain(|m| m.categories.as_slice() != feature.categories);
        }
    }
    Ok(plan)
}

pub fn plan_elf<'data, R: ReadRef<'data>>(
    features: &'static [Feature],
    elf: &Elf<'data, R>,
    binary: &Arc<Binary>,
) -> Plan {
    let probes = usdt::probes_in(elf).ok().flatten().unwrap_or_default();
    let mut plan = Plan::default();
    for feature in features {
        let chosen = feature.alternatives.iter().find_map(|rules| {
            let mut attachments = Vec::new();
            let mut warnings = Vec::new();
            // Values not summed at some sites (`Rule::value_width`), each with its line.
            let mut distrusted = Vec::new();
            for rule in *rules {
                if let Some((symbol, defined)) = rule.only_if
                    && elf.symbol_address(symbol).is_ok() != defined
                {
                    return None;
                }
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
                    Point::Slot {
                        object,
                        offset,
                        args,
                    } => plan_slot(elf, object, offset, args, rule, binary),
                };
                let planned = planned.ok()?;
                if let Some(width) = rule.value_width
                    && planned.iter().any(|p| p.spec.value_arg == NO_ARG)
                    && !distrusted
                        .iter()
                        .any(|m: &Missing| m.text == width.otherwise)
                {
                    distrusted.push(Missing {
                        categories: vec![width.category],
                        text: width.otherwise.to_string(),
                    });
                }
                attachments.extend(planned);
            }
            Some((attachments, warnings, distrusted))
        });
        match chosen {
            Some((attachments, warnings, distrusted)) if feature.on_demand.is_some() => {
                plan.unavailable.extend(distrusted);
                plan.warnings.extend(warnings);
                plan.on_demand.push(OnDemandPlan {
                    feature,
                    attachments,
                });
            }
            Some((attachments, warnings, distrusted)) => {
                plan.unavailable.extend(distrusted);
                plan.attachments.extend(attachments);
                plan.warnings.extend(warnings);
                plan.resolved.push(feature.name);
            }
            None => plan.unavailable.push(Missing {
                categories: feature.categories.to_vec(),
                text: match only_clones(feature, elf) {
                    // "GC: not traced: <reason>": the feature's own reason replaced.
                    Some(reason) => match feature.unavailable.split_once(": not traced: ") {
                        Some((what, _)) => format!("{what}: not traced: {reason}"),
                        None => format!("{}: {reason}", feature.unavailable),
                    },
                    None => feature.unavailable.to_string(),
                },
            }),
        }
    }
    plan
}

/// Why a rule (or the flow) cannot be planned in a binary.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path} has no USDT probe {probe}", path = path.display())]
    NoProbe { path: PathBuf, probe: String },
    #[error("no site of {probe} can be traced")]
    NoUsableSite { probe: String },
    #[error(transparent)]
    Symbol(#[from] SymbolError),
    #[error("symbol {symbol} at {address:#x} is not in an executable segment")]
    NotCode { symbol: String, address: u64 },
    #[error("{slot} holds no address in the file (the loader writes it)")]
    NoSlot { slot: String },
    #[error("no clone of {symbol} has code that shows {check:?}")]
    NoCloneShows {
        symbol: String,
        check: ustat_runtimes::CloneCheck,
    },
    #[error("the arguments of {symbol}")]
    Spec {
        symbol: String,
        #[source]
        source: spec::SpecError,
    },
    #[error(transparent)]
    Lower(#[from] spec::LowerError),
    #[error("{runtime} has no method probes: its calls cannot be followed")]
    NoFlow { runtime: &'static str },
    #[error(transparent)]
    Open(#[from] OpenError),
}

/// When a feature's function exists only as compiler clones it cannot use, the line that
/// says so (the feature's own line guesses at a stripped build, which it is not).
fn only_clones<'data, R: ReadRef<'data>>(feature: &Feature, elf: &Elf<'data, R>) -> Option<String> {
    let applies = |rule: &Rule| {
        rule.only_if
            .is_none_or(|(symbol, defined)| elf.symbol_address(symbol).is_ok() == defined)
    };
    feature
        .alternatives
        .iter()
        .filter(|rules| rules.iter().all(applies))
        .flat_map(|rules| rules.iter())
        .find_map(|rule| match rule.point {
            Point::Function { symbol, .. } | Point::Return { symbol, .. } => {
                match elf.function_entries(symbol, rule.clones) {
                    Err(e @ crate::elf::SymbolError::OnlyClones { .. }) => Some(e.to_string()),
                    _ => None,
                }
            }
            Point::Usdt { .. } | Point::Slot { .. } => None,
        })
}

/// Every usable site of the probe; `Err` when the binary does not have it or none is usable.
fn plan_usdt(
    probes: &[usdt::Probe],
    provider: &str,
    name: &str,
    rule: &Rule,
    binary: &Arc<Binary>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Planned>, PlanError> {
    let full = format!("{provider}:{name}");
    let probe = probes
        .iter()
        .find(|p| p.provider == provider && p.name == name)
        .ok_or_else(|| PlanError::NoProbe {
            path: binary.shown().to_path_buf(),
            probe: full.clone(),
        })?;
    let mut planned = Vec::new();
    for site in &probe.sites {
        match &site.target {
            Ok(target) => {
                let mut spec = target.probe_spec(0);
                let program = configure(rule, &mut spec);
                distrust_narrow_value(rule, &mut spec);
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
        return Err(PlanError::NoUsableSite { probe: full });
    }
    Ok(planned)
}

/// Leaves the value unsummed where the site passes it narrower than the rule trusts
/// (`Rule::value_width`: a runtime version whose callers do not all pass it).
fn distrust_narrow_value(rule: &Rule, spec: &mut ProbeSpec) {
    let Some(width) = rule.value_width else {
        return;
    };
    let index = usize::from(spec.value_arg);
    if index < spec.args.len() && spec.args[index].size != width.bytes {
        spec.value_arg = NO_ARG;
    }
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
) -> Result<Vec<Planned>, PlanError> {
    let mut addresses = elf.function_entries(symbol, rule.clones)?;
    // Where the rule holds only for clones whose code shows it, the others are left out.
    if let Some(check) = rule.clone_check {
        addresses.retain(|&address| {
            elf.code_at(address, crate::clone_code::CODE_BYTES)
                .is_some_and(|code| crate::clone_code::holds(check, code, address))
        });
        if addresses.is_empty() {
            return Err(PlanError::NoCloneShows {
                symbol: symbol.to_string(),
                check,
            });
        }
    }
    let name = symbol.trim_end_matches('*');
    plan_entries(elf, name, &addresses, args, retprobe, rule, binary)
}

/// The entry of the function `object`'s slot at `offset` points to (see `Point::Slot`).
fn plan_slot<'data, R: ReadRef<'data>>(
    elf: &Elf<'data, R>,
    object: &str,
    offset: u64,
    args: &str,
    rule: &Rule,
    binary: &Arc<Binary>,
) -> Result<Vec<Planned>, PlanError> {
    let slot = elf.symbol_address(object)? + offset;
    let name = format!("{object}+{offset:#x}");
    let address = elf
        .pointer_at(slot)
        .filter(|&address| address != 0)
        .ok_or_else(|| PlanError::NoSlot { slot: name.clone() })?;
    plan_entries(elf, &name, &[address], args, false, rule, binary)
}

/// Entry (or return) probes at these function addresses, reading `args`.
fn plan_entries<'data, R: ReadRef<'data>>(
    elf: &Elf<'data, R>,
    name: &str,
    addresses: &[u64],
    args: &str,
    retprobe: bool,
    rule: &Rule,
    binary: &Arc<Binary>,
) -> Result<Vec<Planned>, PlanError> {
    let symbol = name;
    let parsed = spec::parse(args).map_err(|source| PlanError::Spec {
        symbol: symbol.to_string(),
        source,
    })?;
    let mut planned = Vec::with_capacity(addresses.len());
    // The function and each clone whose arguments the rule vouches for: calls go to one.
    for &address in addresses {
        let offset = elf
            .file_offset(address, true)
            .ok_or_else(|| PlanError::NotCode {
                symbol: symbol.to_string(),
                address,
            })?;
        let lowered = spec::lower(&parsed, address, &NoSymbols)?;
        let mut spec = ProbeSpec::EMPTY;
        spec.args[..lowered.len()].copy_from_slice(&lowered);
        spec.nargs = lowered.len() as u8;
        let program = configure(rule, &mut spec);
        planned.push(Planned {
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
        });
    }
    Ok(planned)
}

/// The flow probes of `runtime` in `binary`: `flow_entry` at every site of its method entry
/// probe, `flow_return` at every site of its return probe.
pub fn plan_flow(runtime: &Runtime, binary: &Arc<Binary>) -> Result<Vec<Planned>, PlanError> {
    let flow = runtime.flow.ok_or(PlanError::NoFlow {
        runtime: runtime.name,
    })?;
    let data = binary.data();
    let elf = binary.elf(&data)?;
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
            Point::Slot {
                object,
                offset,
                args,
            } => plan_slot(&elf, object, offset, args, &rule, binary),
        }?;
        planned.extend(sites.into_iter().map(|p| Planned { program, ..p }));
    }
    Ok(planned)
}
