//! `ustat [-p PID,...] [--csv [FILE]]`: the dashboard, or CSV rows every interval.

use std::{
    io::{self, Write},
    path::Path,
    time::Instant,
};

use crate::{
    cli::WatchArgs,
    export::{self, CsvWriter},
    signals::StopFlag,
    snapshot::{Snapshot, Source},
    source::{KernelSource, Selection},
};

impl WatchArgs {
    pub fn selection(&self) -> Selection {
        if self.pid.is_empty() {
            Selection::All
        } else {
            Selection::Pids(self.pid.clone())
        }
    }

    /// Keeps only the processes of the `--runtime` filter.
    pub fn filter(&self, mut snapshot: Snapshot) -> Snapshot {
        if let Some(runtime) = self.runtime {
            snapshot.processes.retain(|p| p.runtime == runtime.name);
        }
        snapshot
    }
}

pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    match &args.csv {
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
    let stop = StopFlag::install()?;
    let mut source = KernelSource::start(args.selection())?;
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
    loop {
        // A signal ends the interval early; its partial counts are still written.
        let stopping = stop.sleep_until(next);
        next += args.interval;
        let snapshot = args.filter(source.poll()?);
        writer.write(&snapshot)?;
        intervals += 1;
        if stopping || args.count.is_some_and(|count| intervals >= count) {
            return Ok(());
        }
    }
}
