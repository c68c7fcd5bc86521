//! `ustat [-p PID,...] [--csv [FILE]]`: the dashboard, or CSV rows every interval.

use std::{
    fs::File,
    io::{self, Write},
    path::Path,
    time::{Duration, Instant},
};

use crate::{
    cli::WatchArgs,
    exit::UsageError,
    export::{self, CsvWriter, MethodsCsvWriter},
    samples::{self, FoldedStacks},
    samples_csv::SamplesCsvWriter,
    signals::StopFlag,
    snapshot::Source,
    source::{KernelSource, Options, Selection},
};

impl WatchArgs {
    /// What the source traces, keeping `top` entries in each top list.
    pub fn source_options(&self, top: usize) -> Options {
        let selection = if self.pid.is_empty() {
            Selection::All
        } else {
            Selection::Pids(self.pid.clone())
        };
        Options {
            selection,
            runtime: self.runtime.map(|r| r.name),
            top,
            method_times: self.methods.is_some(),
            with: self.on_demand(),
            sample_hz: self.sample_hz,
        }
    }

    /// The on-demand features asked for: `--with`, and calls for `--methods`.
    pub fn on_demand(&self) -> Vec<&'static str> {
        let mut with = self.with.clone();
        if self.methods.is_some() && !with.contains(&"calls") {
            with.push("calls");
        }
        with
    }
}

pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    if let Some(address) = args.prometheus {
        return super::prometheus::run(args, address);
    }
    match &args.csv {
        _ if args.flow => super::flow::run(args),
        Some(path) => run_csv(args, path),
        None if args.folded.is_some() => Err(crate::message::UsageError(
            "--folded writes the call tree with --flow, or the sampled stacks with --csv: give one of them"
                .into(),
        )
        .into()),
        None => super::dashboard::run(args),
    }
}

/// The files beside the main CSV: `--methods`, `--samples`, and the sampled stacks that
/// `--folded` writes at the end.
pub struct Extras<'a, M: Write, S: Write> {
    pub methods: Option<&'a mut MethodsCsvWriter<M>>,
    pub samples: Option<&'a mut SamplesCsvWriter<S>>,
    pub folded: Option<&'a mut FoldedStacks>,
}

impl<M: Write, S: Write> Extras<'_, M, S> {
    fn write(&mut self, snapshot: &crate::snapshot::Snapshot) -> io::Result<()> {
        if let Some(methods) = &mut self.methods {
            methods.write(snapshot)?;
        }
        if let Some(samples) = &mut self.samples {
            samples.write(snapshot)?;
        }
        if let Some(folded) = &mut self.folded {
            for process in &snapshot.processes {
                if let Some(sampled) = &process.sampled {
                    folded.add(
                        &samples::process_label(process.pid, &process.command),
                        sampled,
                    );
                }
            }
        }
        Ok(())
    }
}

/// Writes folded stacks to `file`, a line each.
fn write_folded(file: File, folded: &FoldedStacks) -> io::Result<()> {
    let mut out = io::BufWriter::new(file);
    for line in folded.lines() {
        writeln!(out, "{line}")?;
    }
    out.flush()
}

fn run_csv(args: &WatchArgs, path: &Path) -> anyhow::Result<()> {
    crate::capabilities::require(crate::capabilities::TRACING)?;
    if let Some(methods) = &args.methods
        && export::same_file(path, methods)
    {
        return Err(UsageError(format!(
            "--csv and --methods name the same file ({}): give each its own",
            methods.display()
        ))
        .into());
    }
    // The files are created before anything is attached, so a bad name fails at once; if
    // anything fails before the first row, the files made go again.
    let mut created = CreatedFiles::default();
    let out: Box<dyn Write> = if path == Path::new("-") {
        Box::new(io::stdout())
    } else {
        Box::new(created.create(path)?)
    };
    let mut methods = match &args.methods {
        Some(path) if path == Path::new("-") => Some(MethodsCsvWriter::new(
            Box::new(io::stdout()) as Box<dyn Write>,
        )?),
        Some(path) => Some(MethodsCsvWriter::new(
            Box::new(created.create(path)?) as Box<dyn Write>
        )?),
        None => None,
    };
    let mut samples = match &args.samples {
        Some(path) => Some(SamplesCsvWriter::new(created.create(path)?)?),
        None => None,
    };
    let folded_file = match &args.folded {
        Some(path) => Some(created.create(path)?),
        None => None,
    };
    let mut folded = FoldedStacks::new();
    let stop = StopFlag::install()?;
    // The methods file has every method; the main file needs no top lists at all.
    let top = if methods.is_some() { usize::MAX } else { 0 };
    let mut source = KernelSource::start(args.source_options(top))?;
    created.keep();
    eprintln!(
        "ustat: tracing {}{}; a CSV row per process every {:.3} s to {}; Ctrl-C to stop",
        crate::format::plural(
            source.traced() as u64,
            "runtime process",
            "runtime processes"
        ),
        if args.pid.is_empty() {
            " (and any that start)"
        } else {
            ""
        },
        args.interval.as_secs_f64(),
        if path == Path::new("-") {
            "stdout".to_string()
        } else {
            path.display().to_string()
        },
    );
    let mut writer = CsvWriter::new(out)?;
    let mut next = Instant::now() + args.interval;
    // A signal ends the interval early; its partial counts are still written.
    let wait = |source: &mut KernelSource| {
        let stopping = wait_draining(&stop, source, next);
        next += args.interval;
        stopping
    };
    // Given PIDs, the run is over when they all are.
    let until_all_exited = !args.pid.is_empty();
    let extras = Extras {
        methods: methods.as_mut(),
        samples: samples.as_mut(),
        folded: folded_file.is_some().then_some(&mut folded),
    };
    let result = csv_loop_with(
        &mut source,
        &mut writer,
        extras,
        args.count,
        until_all_exited,
        wait,
    );
    // What was sampled until then is written also when the loop failed.
    if let Some(file) = folded_file {
        write_folded(file, &folded)?;
    }
    result
}

/// Output files this run created; removed on drop unless kept, so a run that fails before
/// its first row leaves nothing behind.
#[derive(Default)]
struct CreatedFiles {
    paths: Vec<std::path::PathBuf>,
}

impl CreatedFiles {
    fn create(&mut self, path: &Path) -> Result<std::fs::File, export::CreateError> {
        let file = export::create_new(path)?;
        self.paths.push(path.to_path_buf());
        Ok(file)
    }

    fn keep(&mut self) {
        self.paths.clear();
    }
}

impl Drop for CreatedFiles {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes a row per process every interval until `count` intervals are written or
/// `wait_interval` (which waits for the interval's end, and may take what the source has
/// meanwhile) says a stop was asked for; the interval a stop cut short is written too, so
/// nothing counted is lost.
pub fn csv_loop<S: Source, W: Write, M: Write>(
    source: &mut S,
    writer: &mut CsvWriter<W>,
    methods: Option<&mut MethodsCsvWriter<M>>,
    count: Option<u64>,
    wait_interval: impl FnMut(&mut S) -> bool,
) -> anyhow::Result<()> {
    let extras = Extras::<M, io::Sink> {
        methods,
        samples: None,
        folded: None,
    };
    csv_loop_with(source, writer, extras, count, false, wait_interval)
}

/// `csv_loop` with every file beside the main CSV; with `until_all_exited` it also ends
/// after the interval in which the last traced process exited (its last rows written).
pub fn csv_loop_with<S: Source, W: Write, M: Write, P: Write>(
    source: &mut S,
    writer: &mut CsvWriter<W>,
    mut extras: Extras<'_, M, P>,
    count: Option<u64>,
    until_all_exited: bool,
    mut wait_interval: impl FnMut(&mut S) -> bool,
) -> anyhow::Result<()> {
    let mut intervals = 0;
    // Warnings accumulate in the snapshots; each goes to stderr once.
    let mut warned = 0;
    loop {
        let stopping = wait_interval(source);
        let snapshot = source.poll()?;
        for warning in snapshot.warnings.iter().skip(warned) {
            eprintln!("ustat: {warning}");
        }
        warned = warned.max(snapshot.warnings.len());
        writer.write(&snapshot)?;
        if let Some(line) = export::loss_report(&snapshot) {
            eprintln!("{line}");
        }
        extras.write(&snapshot)?;
        intervals += 1;
        let all_exited = until_all_exited && snapshot.processes.iter().all(|p| p.exited);
        if all_exited {
            eprintln!("ustat: every traced process has exited");
        }
        if stopping || all_exited || count.is_some_and(|count| intervals >= count) {
            return Ok(());
        }
    }
}

/// How often the wait between intervals takes what the kernel sent: its ring buffer holds
/// about 5,000 names, and a JVM warming up can make that many new methods in far less than
/// an interval.
const DRAIN_EVERY: Duration = Duration::from_millis(10);

/// Sleeps until `deadline` or a signal (returns whether one came), taking the kernel's
/// events meanwhile so names are not lost to a full ring buffer.
pub(super) fn wait_draining(stop: &StopFlag, source: &mut KernelSource, deadline: Instant) -> bool {
    loop {
        let step = (Instant::now() + DRAIN_EVERY).min(deadline);
        if stop.sleep_until(step) {
            return true;
        }
        source.pump();
        if Instant::now() >= deadline {
            return false;
        }
    }
}
