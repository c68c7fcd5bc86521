//! The dashboard's event loop, over any source, terminal backend and source of key events:
//! the kernel and a real terminal in `ustat`, a recorded source and ratatui's `TestBackend`
//! with scripted keys in tests.

use std::{
    io,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crossterm::event::{self, Event, KeyEvent, KeyEventKind};
use ratatui::{Terminal, backend::Backend};

use super::{
    app::{App, Effect, View},
    flow::FlowView,
    keys, render,
};
use crate::{
    export,
    snapshot::{CallSource, Source},
};

/// How often keys are read while waiting for the next interval.
const INPUT_POLL: Duration = Duration::from_millis(100);
/// While a flow is watched, how often its calls are taken from the source.
const FLOW_POLL: Duration = Duration::from_millis(20);

/// What happened while the loop waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A key was pressed (or released: only presses act).
    Key(KeyEvent),
    /// An interval ended: time to take a snapshot.
    Interval,
    /// Nothing, within the wait.
    Idle,
}

/// Where the loop's keys and interval ticks come from.
pub trait Events<B: Backend> {
    /// Waits at most `wait` for something to happen. `terminal` shows what is on screen
    /// (what the user sees when they press a key).
    fn next(&mut self, wait: Duration, terminal: &Terminal<B>) -> io::Result<Step>;
}

/// Keys from the real terminal (crossterm), and a tick every `interval`.
pub struct TerminalEvents {
    interval: Duration,
    next: Instant,
}

impl TerminalEvents {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: Instant::now() + interval,
        }
    }
}

impl<B: Backend> Events<B> for TerminalEvents {
    fn next(&mut self, wait: Duration, _terminal: &Terminal<B>) -> io::Result<Step> {
        let wait = self
            .next
            .saturating_duration_since(Instant::now())
            .min(wait);
        if event::poll(wait)?
            && let Event::Key(key) = event::read()?
        {
            return Ok(Step::Key(key));
        }
        let now = Instant::now();
        if now < self.next {
            return Ok(Step::Idle);
        }
        self.next += self.interval;
        // After a long stall (a suspended terminal), do not try to catch up.
        if self.next < now {
            self.next = now + self.interval;
        }
        Ok(Step::Interval)
    }
}

/// Runs the dashboard until the user quits or `stop` says so.
pub fn run<S, B, E>(
    source: &mut S,
    app: &mut App,
    terminal: &mut Terminal<B>,
    events: &mut E,
    stop: &dyn Fn() -> bool,
) -> anyhow::Result<()>
where
    S: Source + CallSource,
    B: Backend,
    B::Error: std::error::Error + Send + Sync + 'static,
    E: Events<B>,
{
    loop {
        // First: after a signal, not even one more draw on a terminal that may be gone.
        if stop() {
            return Ok(());
        }
        if app.flow.is_some() {
            take_flow(source, app)?;
        }
        terminal.draw(|frame| render::draw(frame, app))?;
        let wait = if app.flow.is_some() {
            FLOW_POLL
        } else {
            INPUT_POLL
        };
        match events.next(wait, terminal)? {
            Step::Key(key) if key.kind == KeyEventKind::Press => {
                let effect = app.update(keys::action(key, app.mode()));
                if carry_out(effect, source, app)? {
                    return Ok(());
                }
            }
            Step::Key(_) | Step::Idle => {}
            Step::Interval => app.apply(source.poll()?),
        }
    }
}

/// Moves the watched calls from the source into the flow view, with any names it lacks.
fn take_flow<S: CallSource>(source: &mut S, app: &mut App) -> anyhow::Result<()> {
    let lines = source.take_flow();
    let dropped = source.flow_dropped()?;
    let Some(flow) = &mut app.flow else {
        return Ok(());
    };
    flow.push(lines);
    flow.dropped = dropped;
    // The picker lists the threads alive now.
    if flow.picking.is_some() {
        flow.live_threads = source.live_threads(flow.pid);
    }
    for method in flow.unnamed() {
        let label = source.method_label(flow.pid, method);
        flow.labels.insert(method, label);
    }
    Ok(())
}

/// Does what an action asked of the loop; returns whether to quit.
fn carry_out<S: CallSource>(effect: Effect, source: &mut S, app: &mut App) -> anyhow::Result<bool> {
    match effect {
        Effect::None => {}
        Effect::Quit => return Ok(true),
        Effect::Export => app.exported(export_snapshot(app)),
        Effect::OpenFlow(pid) => {
            let runtime = app
                .selected_process()
                .and_then(|p| ustat_runtimes::by_name(p.runtime));
            let opened = source
                .watch_flow(pid)
                .map(|()| FlowView::new(pid, source.title(pid)).of_runtime(runtime));
            app.flow_opened(opened.map_err(|e| format!("{e:#}")));
        }
        Effect::TraceOnDemand(pid) => {
            let features = source.trace_on_demand(pid);
            app.on_demand_traced(pid, &features);
        }
        Effect::CloseFlow => source.unwatch_flow()?,
        Effect::PickThread => {
            if let Some(flow) = &mut app.flow {
                let live = source.live_threads(flow.pid);
                flow.open_picker(live);
            }
        }
        Effect::FilterFlow { class, method } => source.filter_flow(&class, &method)?,
        Effect::ExportFolded(pid) => {
            let status = match export_folded(source, pid) {
                Ok(path) => format!("folded stacks written to {}", path.display()),
                Err(e) => format!("folded stacks not written: {e:#}"),
            };
            app.flow_status(status);
        }
        Effect::ExportSampled { pid, lines } => {
            app.sampled_written(pid, write_folded(&lines, &format!("ustat-samples-{pid}")));
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
fn export_folded<S: CallSource>(source: &mut S, pid: u32) -> anyhow::Result<PathBuf> {
    let lines = source.folded(pid)?;
    write_folded(&lines, &format!("ustat-flow-{pid}")).map_err(anyhow::Error::msg)
}

/// Writes folded lines to a new file `{base}-{time}.folded` in the current directory (an
/// existing file is never overwritten); its full path.
fn write_folded(lines: &[String], base: &str) -> Result<PathBuf, String> {
    use std::io::Write as _;
    let (path, file) =
        export::new_file(Path::new("."), base, "folded").map_err(|e| format!("{e:#}"))?;
    let mut out = std::io::BufWriter::new(file);
    let written = lines
        .iter()
        .try_for_each(|line| writeln!(out, "{line}"))
        .and_then(|()| out.flush());
    written.map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::canonicalize(&path).map_err(|e| e.to_string())
}
