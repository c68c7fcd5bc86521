//! `ustat trace` specs on Go binaries: functions found by name (symbol table, `.gopclntab`,
//! DWARF for inlined ones), values located by Go's register ABI (`trace::go::GoAbi`), and
//! returns probed at every `RET` — never with a uretprobe, which crashes Go programs when
//! they move a goroutine's stack. Calls are matched to their returns by goroutine.

use std::sync::Arc;

use crate::{
    binary::Binary,
    bpf::{ProbePoint, Program},
    exit::UsageError,
    golang::{self, GoBinary, GoFunction},
    sanitize,
    trace::{
        go::{self as go_trace, GoAbi, GoPoint},
        plan::{self, Compiled, Mode},
        resolve::ResolveError,
        spec::{Kind, Spec, glob},
    },
};

use super::trace_specs::{Configs, Planned, Probe, probe, program};

/// Whether `binary` is a Go program (its `.go.buildinfo`); `Ok(None)` when it is not.
pub fn recognise(binary: &Binary) -> anyhow::Result<Option<GoBinary>> {
    let data = binary.data();
    let elf = binary.elf(&data)?;
    GoBinary::recognise(&elf).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}",
            sanitize::text(&binary.shown().display().to_string()),
            e
        )
    })
}

/// The Go functions `pattern` names: the one named exactly so, or every function the pattern
/// matches, where the `*` of a pointer receiver `(*T)` is no wildcard.
fn matching(names: Vec<String>, pattern: &str) -> Vec<String> {
    // A pointer receiver's `(*` is Go's syntax, never a wildcard: `(*Client).*` is every
    // method of *Client, not also those of *http2Client.
    let receiver = |text: &str| text.replace("(*", "(\u{1}");
    let literal = receiver(pattern);
    if names.iter().any(|n| n == pattern) || !literal.contains('*') {
        return vec![pattern.to_string()];
    }
    let mut found: Vec<String> = names
        .into_iter()
        .filter(|n| glob(&literal, &receiver(n)))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Where planning puts what it finds: the probes, their configs and their sites (the state of
/// `trace_specs`'s planning).
pub struct Plans<'a> {
    pub probes: &'a mut Vec<Probe>,
    pub configs: &'a mut Configs,
    pub planned: &'a mut Vec<Planned>,
}

/// Plans `spec` on the Go functions `pattern` matches in `binary`.
pub fn plan(
    spec: &Spec,
    mode: Mode,
    binary: &Arc<Binary>,
    go: &GoBinary,
    pattern: &str,
    out: Plans<'_>,
) -> anyhow::Result<()> {
    let Plans {
        probes,
        configs,
        planned,
    } = out;
    let shown = sanitize::text(&binary.shown().display().to_string());
    let timed = mode == Mode::Latency;
    let at_return = spec.kind == Kind::Return && !timed;
    if !go.register_abi() && (timed || spec.kind == Kind::Return || !spec.values().is_empty()) {
        return Err(UsageError(
            go_trace::GoTraceError::StackAbi {
                path: shown,
                version: sanitize::text(&go.build.version),
            }
            .to_string(),
        )
        .into());
    }
    if !go.has_dwarf() && !spec.values().is_empty() {
        eprintln!(
            "ustat: {shown} has no DWARF (built with -ldflags=-w, or stripped): arg1, arg2, ... are Go's integer argument registers (rax, rbx, rcx, rdi, rsi, r8-r11) as raw numbers, and a string is two of them (\"%s\", arg2:arg3)"
        );
    }
    let data = binary.data();
    let elf = binary.elf(&data)?;
    let names = matching(golang::function_names(&elf), pattern);
    let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    let found = go
        .functions(&elf, &wanted)
        .map_err(|e| UsageError(format!("{shown}: {}", sanitize::text(&e.to_string()))))?;
    let mut any = false;
    for found in found {
        let function = match found {
            Ok(function) => function,
            Err(golang::GoError::NoFunction { .. }) if pattern.contains('*') => continue,
            Err(golang::GoError::NoFunction { .. }) => break,
            Err(e) => {
                return Err(
                    UsageError(format!("{shown}: {}", sanitize::text(&e.to_string()))).into(),
                );
            }
        };
        any = true;
        if (at_return || timed) && function.code.is_none() {
            let callees: Vec<String> = function
                .inlined
                .iter()
                .flat_map(|site| go.callees_of(&elf, site))
                .fold(Vec::new(), |mut all, name| {
                    if !all.contains(&name) {
                        all.push(name);
                    }
                    all
                });
            return Err(UsageError(go_trace::inlined_only(callees, &function).to_string()).into());
        }
        let out = Plans {
            probes: &mut *probes,
            configs: &mut *configs,
            planned: &mut *planned,
        };
        plan_function(spec, mode, binary, &elf, &function, out)?;
    }
    if !any {
        return Err(ResolveError::NoFunction {
            pattern: sanitize::text(pattern),
            path: binary.shown().to_path_buf(),
        }
        .into());
    }
    Ok(())
}

fn plan_function<'d>(
    spec: &Spec,
    mode: Mode,
    binary: &Arc<Binary>,
    elf: &crate::elf::Elf<'d, &'d crate::elf::FileData<'d>>,
    function: &GoFunction,
    out: Plans<'_>,
) -> anyhow::Result<()> {
    let Plans {
        probes,
        configs,
        planned,
    } = out;
    let name = sanitize::text(&function.name);
    let id = probes.len() as u32;
    let invalid = |e: plan::CompileError| {
        UsageError(format!("`{}` on {name}: {e}", sanitize::text(&spec.text)))
    };
    let offset_of = |address: u64| -> anyhow::Result<u64> {
        elf.file_offset(address, true).ok_or_else(|| {
            anyhow::anyhow!("{name}: address {address:#x} is not in an executable segment")
        })
    };
    let point = |offset| ProbePoint {
        binary: Arc::clone(binary),
        offset,
        semaphore_offset: None,
        // Never a uretprobe on Go: returns are uprobes on RET instructions.
        retprobe: false,
    };
    let timed = mode == Mode::Latency;
    let mut first: Option<Compiled> = None;
    let mut add = |mut compiled: Compiled, program: Program, offset: u64| {
        // Go calls are matched to their returns by goroutine, wherever they resume.
        compiled.config.by_goroutine = 1;
        planned.push(Planned {
            probe_name: name.clone(),
            program,
            point: point(offset),
            spec: compiled.probe_spec(configs.id(&compiled.config)),
            probe: id,
        });
        first.get_or_insert(compiled);
    };
    let returns_needed = spec.kind == Kind::Return || timed;
    if returns_needed && function.returns.is_empty() {
        return Err(UsageError(
            golang::GoError::NoReturns {
                name: function.name.clone(),
            }
            .to_string(),
        )
        .into());
    }
    if spec.kind == Kind::Return && !timed {
        let abi = GoAbi {
            function,
            point: GoPoint::Return,
        };
        let compiled = plan::compile(spec, mode, &abi, &[]).map_err(invalid)?;
        for &ret in &function.returns {
            add(compiled.clone(), program(mode), offset_of(ret)?);
        }
    } else {
        // The entry: the function's own code, and the copies inlined elsewhere (a call
        // through one of those never reaches the out-of-line code).
        if let Some(start) = function.entry {
            let abi = GoAbi {
                function,
                point: GoPoint::Entry,
            };
            let compiled = plan::compile(spec, mode, &abi, &[]).map_err(invalid)?;
            add(compiled.clone(), program(mode), offset_of(start)?);
            if timed {
                for &ret in &function.returns {
                    add(compiled.clone(), Program::TraceReturn, offset_of(ret)?);
                }
            }
        }
        if !timed {
            for site in &function.inlined {
                let abi = GoAbi {
                    function,
                    point: GoPoint::Inlined(site),
                };
                match plan::compile(spec, mode, &abi, &[]) {
                    Ok(compiled) => add(compiled, program(mode), offset_of(site.entry)?),
                    Err(e) => eprintln!(
                        "ustat: skipping the copy of {name} inlined into {} at {:#x}: {}",
                        sanitize::text(&site.caller),
                        site.entry,
                        sanitize::text(&e.to_string())
                    ),
                }
            }
        }
    }
    let Some(compiled) = first else {
        return Err(UsageError(format!(
            "{name}: none of its sites can be traced with `{}`",
            sanitize::text(&spec.text)
        ))
        .into());
    };
    probes.push(probe(spec, name, &compiled));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_exact_go_name_is_not_a_wildcard() {
        let all = names(&[
            "net/http.(*Client).Get",
            "net/http.(*http2Client).Get",
            "net/http.(*Client).Do",
        ]);
        let exact = |pattern: &str| matching(all.clone(), pattern);
        assert_eq!(exact("net/http.(*Client).Get"), ["net/http.(*Client).Get"]);
        assert_eq!(
            exact("net/http.(*Client).*"),
            ["net/http.(*Client).Do", "net/http.(*Client).Get"]
        );
        // Not in the symbol table (inlined everywhere): asked for as named, found in DWARF.
        assert_eq!(exact("net/http.Get"), ["net/http.Get"]);
        assert_eq!(exact("net/http.(*T).Inlined"), ["net/http.(*T).Inlined"]);
    }
}
