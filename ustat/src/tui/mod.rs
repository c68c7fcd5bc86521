//! The dashboard: a process table, a detail view per process, a help overlay.

pub mod app;
pub mod format;
pub mod keys;
mod terminal;
pub mod ui;

use std::{
    io::IsTerminal as _,
    time::{Duration, Instant},
};

use crossterm::event::{self, Event, KeyEventKind};

use crate::{
    cli::WatchArgs, exit::UsageError, export, signals::StopFlag, snapshot::Source,
    source::KernelSource, stats,
};
use app::{App, Effect};

/// How often keys are read while waiting for the next interval.
const INPUT_POLL: Duration = Duration::from_millis(100);

pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    crate::bpf::require_root()?;
    if !std::io::stdout().is_terminal() {
        return Err(UsageError(
            "the dashboard needs a terminal; use --csv to write CSV to a file or a pipe".into(),
        )
        .into());
    }
    let stop = StopFlag::install()?;
    // Attach before the screen switches, so an error prints as a normal line.
    let mut source = KernelSource::start(args.source_options(stats::TOP))?;
    let scope = if args.pid.is_empty() {
        "all runtime processes".to_string()
    } else {
        let pids: Vec<String> = args.pid.iter().map(u32::to_string).collect();
        format!("PID {}", pids.join(","))
    };
    let mut app = App::new(args.interval, scope);
    app.runtime = args.runtime.map(|r| r.name);
    let mut guard = terminal::TerminalGuard::enter()?;
    let mut next = Instant::now() + args.interval;
    loop {
        guard.terminal.draw(|frame| ui::draw(frame, &mut app))?;
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(INPUT_POLL);
        if event::poll(wait)?
            && let Event::Key(key) = event::read()?
            && key.kind == KeyEventKind::Press
        {
            match app.update(keys::action(key)) {
                Effect::Quit => return Ok(()),
                Effect::Export => app.exported(export_snapshot(&app)),
                Effect::None => {}
            }
        }
        if stop.is_set() {
            return Ok(());
        }
        if Instant::now() >= next {
            next += args.interval;
            // After a long stall (a suspended terminal), do not try to catch up.
            if next < Instant::now() {
                next = Instant::now() + args.interval;
            }
            app.apply(source.poll()?);
        }
    }
}

/// Writes the snapshot on screen to a new CSV file in the current directory.
fn export_snapshot(app: &App) -> Result<std::path::PathBuf, String> {
    let snapshot = app.snapshot.as_ref().ok_or("no interval has ended yet")?;
    let path =
        export::snapshot_file(std::path::Path::new("."), snapshot).map_err(|e| format!("{e:#}"))?;
    std::fs::canonicalize(&path).map_err(|e| e.to_string())
}
