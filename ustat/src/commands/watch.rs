//! `ustat [-p PID,...] [--csv [FILE]]`: the dashboard, or CSV rows every interval.

use std::{
    io::{self, Write},
    path::Path,
    time::Instant,
};

use crate::{
    cli::WatchArgs,
    export::{self, CsvWriter, MethodsCsvWriter},
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
        }
    }
}

pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    match &args.csv {
        _ if args.flow => super::flow::run(args),
        Some(path) => run_csv(args, path),
        None => crate::tui::run(args),
    }
}

fn run_csv(args: &WatchArgs, path: &Path) -> anyhow::Result<()> {
    crate::bpf::require_root()?;
    // The file is created before anything is attached, so a bad name fails at once.
    let out: Box<dyn Write> = if path == Path::new("-") {
        Box::new(io::stdout())
    } else {
        Box::new(export::create_new(path)?)
    };
    let mut methods = match &args.methods {
        Some(path) => Some(MethodsCsvWriter::new(export::create_new(path)?)?),
        None => None,
    };
    let stop = StopFlag::install()?;
    // The methods file has every method; the main file needs no top lists at all.
    let top = if methods.is_some() { usize::MAX } else { 0 };
    let mut source = KernelSource::start(args.source_options(top))?;
    eprintln!(
        "ustat: tracing {} runtime processes{}; a CSV row per process every {:.3} s to {}; Ctrl-C to stop",
        source.traced(),
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
    let mut intervals = 0;
    // Warnings accumulate in the snapshots; each goes to stderr once.
    let mut warned = 0;
    loop {
        // A signal ends the interval early; its partial counts are still written.
        let stopping = stop.sleep_until(next);
        next += args.interval;
        let snapshot = source.poll()?;
        for warning in snapshot.warnings.iter().skip(warned) {
            eprintln!("ustat: {warning}");
        }
        warned = warned.max(snapshot.warnings.len());
        writer.write(&snapshot)?;
        if let Some(methods) = &mut methods {
            methods.write(&snapshot)?;
        }
        intervals += 1;
        if stopping || args.count.is_some_and(|count| intervals >= count) {
            return Ok(());
        }
    }
}
