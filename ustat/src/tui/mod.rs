//! The dashboard: a process table, a detail view per process, a flow view of a process's
//! method calls, a help overlay.

pub mod app;
pub mod flow;
mod flow_ui;
pub mod format;
pub mod keys;
mod terminal;
pub mod ui;

use std::{
    fs::File,
    io::IsTerminal as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crossterm::event::{self, Event, KeyEventKind};

use crate::{
    cli::WatchArgs, commands, exit::UsageError, export, signals::StopFlag, snapshot::Source,
    source::KernelSource, stats,
};
use app::{App, Effect, View};
use flow::FlowView;

/// How often keys are read while waiting for the next interval.
const INPUT_POLL: Duration = Duration::from_millis(100);
/// While a flow is watched, how often its events are taken from the kernel.
const FLOW_POLL: Duration = Duration::from_millis(20);

fn require_terminal() -> Result<(), UsageError> {
    if std::io::stdout().is_terminal() {
        Ok(())
    } else {
        Err(UsageError(
            "the dashboard needs a terminal; use --csv to write CSV to a file or a pipe".into(),
        ))
    }
}

fn scope(args: &WatchArgs) -> String {
    if args.pid.is_empty() {
        "all runtime processes".to_string()
    } else {
        let pids: Vec<String> = args.pid.iter().map(u32::to_string).collect();
        format!("PID {}", pids.join(","))
    }
}

pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    crate::bpf::require_root()?;
    require_terminal()?;
    let stop = StopFlag::install()?;
    // Attach before the screen switches, so an error prints as a normal line.
    let mut source = KernelSource::start(args.source_options(stats::TOP))?;
    let mut app = App::new(args.interval, scope(args));
    app.runtime = args.runtime.map(|r| r.name);
    run_app(&mut source, &mut app, args, &stop)
}

/// The flow view on its own (`ustat --flow -p PID` in a terminal); leaving it quits.
pub fn run_flow(args: &WatchArgs, folded: Option<File>) -> anyhow::Result<()> {
    require_terminal()?;
    let stop = StopFlag::install()?;
    let (mut source, pid) = commands::flow::start(args)?;
    let mut app = App::new(args.interval, scope(args));
    app.flow_only = true;
    app.selected = Some(pid);
    let mut view = FlowView::new(pid, title(&source, pid));
    view.class_prefix = args.class.clone().unwrap_or_default();
    view.method_prefix = args.method_prefix.clone().unwrap_or_default();
    view.thread = args.tid;
    app.flow_opened(Ok(view));
    run_app(&mut source, &mut app, args, &stop)?;
    commands::flow::finish(&mut source, pid, folded)
}

/// `java (PID 1234, jvm)`
fn title(source: &KernelSource, pid: u32) -> String {
    let runtime = source
        .processes()
        .into_iter()
        .find(|(p, _)| *p == pid)
        .map_or("?", |(_, r)| r);
    let command = crate::process::command(pid).unwrap_or_default();
    format!("{command} (PID {pid}, {runtime})")
}

fn run_app(
    source: &mut KernelSource,
    app: &mut App,
    args: &WatchArgs,
    stop: &StopFlag,
) -> anyhow::Result<()> {
    // Armed first, disarmed last: the watchdog covers the terminal until it is restored.
    let _watch = stop.watch_terminal(source.links());
    let ended = show(source, app, args, stop);
    match ended {
        // A terminal that hung up fails the next draw or read; the signal that came with the
        // hangup asked for this end, so it is not an error.
        Err(e) if stop.is_set() && e.downcast_ref::<std::io::Error>().is_some() => Ok(()),
        ended => ended,
    }
}

/// The dashboard in the terminal until `q` or a signal.
fn show(
    source: &mut KernelSource,
    app: &mut App,
    args: &WatchArgs,
    stop: &StopFlag,
) -> anyhow::Result<()> {
    let mut guard = terminal::TerminalGuard::enter()?;
    let mut next = Instant::now() + args.interval;
    loop {
        if stop.is_set() {
            return Ok(());
        }
        if app.flow.is_some() {
            take_flow(source, app)?;
        }
        guard.terminal.draw(|frame| ui::draw(frame, app))?;
        let poll = if app.flow.is_some() {
            FLOW_POLL
        } else {
            INPUT_POLL
        };
        let wait = next.saturating_duration_since(Instant::now()).min(poll);
        if event::poll(wait)?
            && let Event::Key(key) = event::read()?
            && key.kind == KeyEventKind::Press
        {
            let effect = app.update(keys::action(key, app.mode()));
            if carry_out(effect, source, app)? {
                return Ok(());
            }
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

/// Moves the watched calls from the kernel into the flow view, with any names it lacks.
fn take_flow(source: &mut KernelSource, app: &mut App) -> anyhow::Result<()> {
    source.pump();
    let lines = source.take_flow();
    let dropped = source.flow_dropped()?;
    let Some(flow) = &mut app.flow else {
        return Ok(());
    };
    flow.push(lines);
    flow.dropped = dropped;
    for method in flow.unnamed() {
        let label = source.method_label(flow.pid, method);
        flow.labels.insert(method, label);
    }
    Ok(())
}

/// Does what an action asked of the loop; returns whether to quit.
fn carry_out(effect: Effect, source: &mut KernelSource, app: &mut App) -> anyhow::Result<bool> {
    match effect {
        Effect::None => {}
        Effect::Quit => return Ok(true),
        Effect::Export => app.exported(export_snapshot(app)),
        Effect::OpenFlow(pid) => {
            let opened = source
                .watch_flow(pid)
                .map(|()| FlowView::new(pid, title(source, pid)));
            app.flow_opened(opened.map_err(|e| format!("{e:#}")));
        }
        Effect::CloseFlow => source.unwatch_flow()?,
        Effect::FilterFlow { class, method } => source.filter_flow(&class, &method)?,
        Effect::ExportFolded(pid) => {
            let status = match export_folded(source, pid) {
                Ok(path) => format!("folded stacks written to {}", path.display()),
                Err(e) => format!("folded stacks not written: {e:#}"),
            };
            app.flow_status(status);
        }
    }
    if app.view == View::Flow && app.flow.is_none() {
        app.view = View::Table;
    }
    Ok(false)
}

/// Writes the snapshot on screen to a new CSV file in the current directory.
fn export_snapshot(app: &App) -> Result<PathBuf, String> {
    let snapshot = app.snapshot.as_ref().ok_or("no interval has ended yet")?;
    let path = export::snapshot_file(Path::new("."), snapshot).map_err(|e| format!("{e:#}"))?;
    std::fs::canonicalize(&path).map_err(|e| e.to_string())
}

/// Writes `pid`'s call tree as folded stacks to a new file in the current directory.
fn export_folded(source: &mut KernelSource, pid: u32) -> anyhow::Result<PathBuf> {
    use std::io::Write as _;
    let lines = source.folded(pid)?;
    let (path, file) = export::new_file(Path::new("."), &format!("ustat-flow-{pid}"), "folded")?;
    let mut out = std::io::BufWriter::new(file);
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(std::fs::canonicalize(&path)?)
}
