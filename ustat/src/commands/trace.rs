//! `ustat trace TARGET [PROBE...]`: one line per probe hit, with the arguments as the kernel
//! read them. The quickest way to see what a probe carries, and how the tests check the engine.

use std::io::{self, BufWriter, Write as _};

use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};
use ustat_common::ProbeSpec;

use crate::{
    bpf::{Attachment, Group, ProbePoint, Program, Scope, Tracer, events::Event},
    cli::TraceArgs,
    exit::UsageError,
    sanitize,
    target::{self, NewMappings, ProbedBinary, Target},
    trace::{
        location::UsdtSite,
        output::{self, Printed},
        plan,
    },
    usdt::Probe,
};

/// What printing a hit needs to know about the site that fired (its spec's tag).
struct TracedSite {
    probe: String,
    signed: Vec<bool>,
}

/// What the trace has planned so far; grows when a watched process maps new probes.
#[derive(Default)]
struct Traced {
    /// Sites read by the `record` program, each given its index here as its tag.
    sites: Vec<TracedSite>,
    /// Probes whose strings ustat knows print them (through the `trace` program), each with
    /// its id (an index here) in the high half of its sites' cookies.
    with_strings: Vec<Printed>,
    /// The `TraceConfig`s of those probes, each written once, by index.
    configs: Vec<ustat_common::TraceConfig>,
}

/// A site to attach: its probe's name, where, what to read, the program and its probe id.
type PlannedSite = (String, ProbePoint, ProbeSpec, Program, u32);

pub fn run(args: &TraceArgs) -> anyhow::Result<()> {
    let first = args.items.first().map(String::as_str).unwrap_or_default();
    if crate::trace::spec::looks_like_spec(first) {
        return super::trace_specs::run(args);
    }
    if args.latency || args.count || args.json || args.interval.is_some() {
        return Err(UsageError(
            "--latency, --count, --json and -i go with probe specs (p:, r:, u:)".into(),
        )
        .into());
    }
    let mut target: Target = first.parse().map_err(|e: String| {
        UsageError(format!(
            "invalid value '{}' for '<SPEC|TARGET PROBE>': {e}",
            sanitize::text(first)
        ))
    })?;
    let mut probes = &args.items[1..];
    let mut pids = args.pid.as_slice();
    // `ustat trace -p PID PROBE...`: no TARGET (the first item has no `/` and names no file),
    // the probes of that one process, also those it registers later.
    if let ([pid], Target::Path(path)) = (pids, &target)
        && !first.contains('/')
        && !path.exists()
    {
        target = Target::Pid(*pid);
        probes = &args.items[..];
        pids = &[];
    }
    if let Some(spec) = probes
        .iter()
        .find(|p| crate::trace::spec::looks_like_spec(p))
    {
        return Err(UsageError(format!(
            "`{}` is a probe spec: specs come without a TARGET (use -p PID)",
            sanitize::text(spec)
        ))
        .into());
    }
    // Before anything else: without root, nothing below can work.
    crate::capabilities::require(crate::capabilities::TRACING)?;
    let scopes = scopes(&target, pids)?;
    // A process can register probes later (libstapsdt): its maps are watched for them.
    let watched = match target {
        Target::Pid(pid) => Some(NewMappings::new(pid)?),
        Target::Path(_) => None,
    };
    let probed = match target::probed_binaries(&target) {
        Err(target::TargetError::NoProbesInProcess(_)) if watched.is_some() => Default::default(),
        other => other?,
    };
    for line in &probed.skipped {
        eprintln!("ustat: {line}");
    }
    let binaries = probed.binaries;
    // `trace FILE -p PID`: a process that does not map the file would never hit its probes.
    for binary in &binaries {
        target::check_mapped(binary, pids)?;
    }
    let selected = match select(&binaries, probes) {
        // A process with no probes yet may register some (libstapsdt): it is watched.
        Err(unmatched) if watched.is_some() && binaries.is_empty() => {
            eprintln!("ustat: {unmatched}; tracing it when the process maps one");
            select_lenient(&binaries, probes)
        }
        // A process lacking the probe asked for is a bad target, as everywhere a process
        // has no such probes; in a file named on the command line it is a mistyped pattern.
        Err(unmatched) => {
            return Err(match &target {
                Target::Pid(pid) => target::TargetError::NoSuchProbe {
                    pid: *pid,
                    detail: unmatched.0,
                }
                .into(),
                Target::Path(_) => unmatched.into(),
            });
        }
        Ok(selected) => selected,
    };
    let started = std::time::Instant::now();
    let mut tracer = Tracer::load()?;
    let mut traced = Traced::default();
    let planned = plan(selected, &mut traced);
    attach(&mut tracer, &scopes, &traced, &planned)?;
    match (&target, tracer.attached()) {
        (Target::Pid(pid), 0) => eprintln!(
            "ustat: tracing 0 probe sites, waiting for process {pid} to map a binary with matching probes; Ctrl-C to stop"
        ),
        (_, 0) => anyhow::bail!("none of the selected probe sites can be traced"),
        _ => eprintln!(
            "ustat: tracing {} probe sites ({} attachments through {}, attached in {} ms); Ctrl-C to stop",
            planned.len(),
            tracer.attached(),
            tracer.attached_through(),
            started.elapsed().as_millis()
        ),
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let events = tracer.take_events()?;
    let watch = watched.map(|mappings| Watch {
        mappings,
        patterns: probes,
        tracer: &mut tracer,
    });
    let result = runtime.block_on(print_events(events, &mut traced, args.max_events, watch));
    let dropped = tracer.lost()?.ring_full;
    if dropped > 0 {
        eprintln!("ustat: {dropped} events were dropped: the ring buffer was full");
    }
    result
}

/// Where `site` attaches, or `None` after one line saying why it cannot be traced (both
/// forms of `ustat trace` skip such a site and trace the others).
pub(super) fn usable_target<'a>(
    probe_name: &str,
    site: &'a crate::usdt::Site,
) -> Option<&'a crate::usdt::SiteTarget> {
    match &site.target {
        Ok(target) => Some(target),
        Err(reason) => {
            eprintln!(
                "ustat: skipping a site of {probe_name} at {:#x}: {}",
                site.address,
                sanitize::text(&reason.to_string())
            );
            None
        }
    }
}

/// The sites of the selected probes: known probes through the `trace` program, with their
/// strings; the others through `record`.
fn plan(selected: Vec<(&ProbedBinary, &Probe)>, traced: &mut Traced) -> Vec<PlannedSite> {
    let mut planned = Vec::new();
    for (binary, probe) in selected {
        let probe_name = sanitize::text(&probe.full_name());
        let known = crate::trace::known::spec_for(&probe.provider, &probe.name);
        let known_id = traced.with_strings.len() as u32;
        for site in &probe.sites {
            let Some(target) = usable_target(&probe_name, site) else {
                continue;
            };
            let point = ProbePoint {
                binary: std::sync::Arc::clone(&binary.binary),
                offset: target.offset,
                semaphore_offset: target.semaphore_offset,
                retprobe: false,
            };
            let convention = UsdtSite {
                probe: &probe_name,
                args: &target.args,
            };
            let compiled = known
                .as_ref()
                .and_then(|spec| plan::compile(spec, plan::Mode::Print, &convention, &[]).ok());
            if let (Some(spec), Some(compiled)) = (&known, compiled) {
                if traced.with_strings.len() as u32 == known_id {
                    traced.with_strings.push(Printed {
                        name: probe_name.clone(),
                        format: spec.format.clone(),
                        fields: compiled.fields.clone(),
                    });
                }
                let configs = &mut traced.configs;
                let config = match configs.iter().position(|c| *c == compiled.config) {
                    Some(i) => i,
                    None => {
                        configs.push(compiled.config);
                        configs.len() - 1
                    }
                };
                let spec = compiled.probe_spec(config as u32);
                planned.push((probe_name.clone(), point, spec, Program::Trace, known_id));
                continue;
            }
            let spec = target.probe_spec(traced.sites.len() as u32);
            traced.sites.push(TracedSite {
                probe: probe_name.clone(),
                signed: target.signed.clone(),
            });
            planned.push((probe_name.clone(), point, spec, Program::Record, 0));
        }
    }
    planned
}

fn attach(
    tracer: &mut Tracer,
    scopes: &[Scope],
    traced: &Traced,
    planned: &[PlannedSite],
) -> anyhow::Result<()> {
    // Written again when more are planned: the same index always holds the same config.
    for (id, config) in traced.configs.iter().enumerate() {
        tracer.set_trace_config(id as u32, config)?;
    }
    let attachments: Vec<Attachment<'_>> = planned
        .iter()
        .map(|(probe, point, spec, program, site)| Attachment {
            probe,
            program: *program,
            point,
            spec,
            site: *site,
        })
        .collect();
    for &scope in scopes {
        // The first failure ends the trace: a trace that silently misses sites would mislead.
        if let Some(error) = tracer
            .attach_all(Group::Main, scope, 0, &attachments)
            .into_iter()
            .next()
        {
            return Err(error.into());
        }
    }
    Ok(())
}

/// A traced process's new mappings, and what to attach in them.
struct Watch<'a> {
    mappings: NewMappings,
    patterns: &'a [String],
    tracer: &'a mut Tracer,
}

impl Watch<'_> {
    /// Attaches the matching probes of the files mapped since the last look.
    fn poll(&mut self, traced: &mut Traced) -> anyhow::Result<()> {
        let probed = match self.mappings.poll() {
            Ok(probed) => probed,
            // The process is gone: nothing more will appear.
            Err(_) => return Ok(()),
        };
        for line in &probed.skipped {
            eprintln!("ustat: {line}");
        }
        for binary in &probed.binaries {
            let selected = select_lenient(std::slice::from_ref(binary), self.patterns);
            if selected.is_empty() {
                continue;
            }
            let planned = plan(selected, traced);
            let pid = self.mappings.pid();
            attach(self.tracer, &[Scope::Process(pid)], traced, &planned)?;
            eprintln!(
                "ustat: tracing {} more probe sites in {} (mapped by process {pid} after the trace started)",
                planned.len(),
                sanitize::text(&binary.path.display().to_string())
            );
        }
        Ok(())
    }
}

/// The probes the patterns select, where some patterns may select nothing (yet).
fn select_lenient<'a>(
    binaries: &'a [ProbedBinary],
    patterns: &[String],
) -> Vec<(&'a ProbedBinary, &'a Probe)> {
    binaries
        .iter()
        .flat_map(|b| b.probes.iter().map(move |p| (b, p)))
        .filter(|(_, p)| {
            patterns.is_empty() || patterns.iter().any(|pattern| probe_matches(pattern, p))
        })
        .collect()
}

/// A PID target is traced in that process only; a path everywhere, or in the `-p` processes.
fn scopes(target: &Target, pids: &[u32]) -> Result<Vec<Scope>, UsageError> {
    match (target, pids) {
        (Target::Pid(pid), []) => Ok(vec![Scope::Process(*pid)]),
        (Target::Pid(_), _) => Err(UsageError(
            "-p goes with a path target; a PID target is already one process".into(),
        )),
        (Target::Path(_), []) => Ok(vec![Scope::AllProcesses]),
        (Target::Path(_), pids) => Ok(pids.iter().map(|&pid| Scope::Process(pid)).collect()),
    }
}

/// The probes the patterns select (all of them when there are none). A pattern that selects
/// nothing is an error, so a typo is not a silent empty trace.
fn select<'a>(
    binaries: &'a [ProbedBinary],
    patterns: &[String],
) -> Result<Vec<(&'a ProbedBinary, &'a Probe)>, UsageError> {
    let all = binaries
        .iter()
        .flat_map(|b| b.probes.iter().map(move |p| (b, p)));
    if patterns.is_empty() {
        return Ok(all.collect());
    }
    for pattern in patterns {
        if !binaries
            .iter()
            .flat_map(|b| &b.probes)
            .any(|p| probe_matches(pattern, p))
        {
            return Err(UsageError(format!(
                "no probe matches `{}` (`ustat list` shows the probes)",
                sanitize::text(pattern)
            )));
        }
    }
    Ok(all
        .filter(|(_, p)| patterns.iter().any(|pattern| probe_matches(pattern, p)))
        .collect())
}

/// `provider:name`, or `name` for any provider; `*` matches any run of characters.
fn probe_matches(pattern: &str, probe: &Probe) -> bool {
    use crate::trace::spec::glob;
    match pattern.split_once(':') {
        Some((provider, name)) => glob(provider, &probe.provider) && glob(name, &probe.name),
        None => glob(pattern, &probe.name),
    }
}

async fn print_events(
    events: RingBuf<MapData>,
    traced: &mut Traced,
    max_events: Option<u64>,
    mut watch: Option<Watch<'_>>,
) -> anyhow::Result<()> {
    // SAFETY: the ring buffer owns its descriptor and keeps it open while registered.
    let mut events = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut look = tokio::time::interval(std::time::Duration::from_millis(100));
    let result: anyhow::Result<()> = async {
        writeln!(out, "TIME_NS PID TID PROBE ARGS")?;
        out.flush()?;
        loop {
            tokio::select! {
                ready = events.readable_mut() => {
                    let mut guard = ready?;
                    let ring = guard.get_inner_mut();
                    while let Some(item) = ring.next() {
                        if let Some(line) = format_event(&item, &traced.sites, &traced.with_strings) {
                            writeln!(out, "{line}")?;
                            printed += 1;
                            if max_events.is_some_and(|max| printed >= max) {
                                return Ok(out.flush()?);
                            }
                        }
                    }
                    guard.clear_ready();
                    out.flush()?;
                }
                _ = look.tick(), if watch.is_some() => {
                    if let Some(watch) = watch.as_mut() {
                        watch.poll(traced)?;
                    }
                }
                _ = interrupt.recv() => return Ok(out.flush()?),
                _ = terminate.recv() => return Ok(out.flush()?),
                _ = hangup.recv() => return Ok(out.flush()?),
            }
        }
    }
    .await;
    match result {
        // The reader went away (`ustat trace ... | head`): that is how such a pipe ends.
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn format_event(bytes: &[u8], sites: &[TracedSite], with_strings: &[Printed]) -> Option<String> {
    let event = match Event::decode(bytes) {
        Ok(Event::Args(event)) => event,
        Ok(Event::Trace(event)) => {
            let printed = with_strings.get(event.probe as usize)?;
            let (values, _) = output::values(&event, printed);
            let header = event.header;
            return Some(format!(
                "{} {} {} {} {values}",
                header.ts_ns, header.pid, header.tid, printed.name
            ));
        }
        _ => return None,
    };
    let header = event.header;
    let site = sites.get(event.tag as usize)?;
    let mut line = format!(
        "{} {} {} {}",
        header.ts_ns, header.pid, header.tid, site.probe
    );
    for i in 0..usize::from(event.nargs).min(event.args.len()) {
        let value = event.args[i];
        if event.failed & (1 << i) != 0 {
            line.push_str(" ?");
        } else if site.signed.get(i).copied().unwrap_or(false) {
            line.push_str(&format!(" {}", value as i64));
        } else {
            line.push_str(&format!(" {value}"));
        }
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns() {
        use crate::trace::spec::glob;
        assert!(glob("gc__begin", "gc__begin"));
        assert!(!glob("gc__begin", "gc__end"));
        assert!(glob("gc__*", "gc__end"));
        assert!(glob("*", ""));
        assert!(glob("*__begin", "mem__pool__gc__begin"));
        assert!(glob("m*d", "method"));
        assert!(!glob("m*x", "method"));
        assert!(glob("*o*a*", "monitor__wait"));
        assert!(!glob("*o*e*", "monitor__wait"));
    }

    fn probe(provider: &str, name: &str) -> Probe {
        Probe {
            provider: provider.into(),
            name: name.into(),
            sites: vec![],
        }
    }

    #[test]
    fn patterns_name_a_provider_or_not() {
        let p = probe("hotspot", "gc__begin");
        assert!(probe_matches("gc__begin", &p));
        assert!(probe_matches("hotspot:gc__begin", &p));
        assert!(probe_matches("hotspot:*", &p));
        assert!(probe_matches("*:gc__*", &p));
        assert!(!probe_matches("python:gc__begin", &p));
    }
}
