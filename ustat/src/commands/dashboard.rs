//! `ustat` in a terminal: the dashboard, and `ustat --flow -p PID`'s flow view on its own.
//! Everything around the loop happens here: the privilege check, the signal handlers, the
//! source, the terminal; `tui::run` is the loop.

use std::{fs::File, io::IsTerminal as _, time::Duration};

use super::terminal::TerminalGuard;
use crate::{
    bpf::Links,
    cli::WatchArgs,
    exit::UsageError,
    signals::StopFlag,
    snapshot::{CallSource, Source},
    source::KernelSource,
    stats,
    tui::{self, TerminalEvents, app::App, flow::FlowView},
};

fn require_terminal() -> Result<(), UsageError> {
    if std::io::stdout().is_terminal() {
        Ok(())
    } else {
        Err(UsageError(
            "the dashboard needs a terminal; use --csv to write CSV to a file or a pipe".into(),
        ))
    }
}

/// What is traced, for the header: `all runtime processes` or `PID 1234,5678`.
fn scope(args: &WatchArgs) -> String {
    if args.pid.is_empty() {
        "all runtime processes".to_string()
    } else {
        let pids: Vec<String> = args.pid.iter().map(u32::to_string).collect();
        format!("PID {}", pids.join(","))
    }
}

pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    crate::capabilities::require(crate::capabilities::TRACING)?;
    require_terminal()?;
    let stop = StopFlag::install()?;
    // Attach before the screen switches, so an error prints as a normal line.
    let mut source = KernelSource::start(args.source_options(stats::TOP))?;
    let mut app = App::new(args.interval, scope(args));
    app.runtime = args.runtime.map(|r| r.name);
    let links = source.links();
    in_terminal(&mut source, &mut app, args.interval, &stop, links)
}

/// The flow view on its own (`ustat --flow -p PID` in a terminal); leaving it quits.
pub fn run_flow(args: &WatchArgs, folded: Option<File>) -> anyhow::Result<()> {
    require_terminal()?;
    let stop = StopFlag::install()?;
    let (mut source, pid) = super::flow::start(args)?;
    let mut app = App::new(args.interval, scope(args));
    app.flow_only = true;
    app.selected = Some(pid);
    let runtime = source
        .processes()
        .into_iter()
        .find(|(p, _)| *p == pid)
        .and_then(|(_, name)| ustat_runtimes::by_name(name));
    let mut view = FlowView::new(pid, source.title(pid)).of_runtime(runtime);
    view.class_prefix = args.class.clone().unwrap_or_default();
    view.method_prefix = args.method_prefix.clone().unwrap_or_default();
    view.thread = args.tid;
    app.flow_opened(Ok(view));
    let links = source.links();
    in_terminal(&mut source, &mut app, args.interval, &stop, links)?;
    // The terminal is restored by now, so these lines print normally.
    super::flow::finish(&mut source, pid, folded)
}

/// Runs the loop on the real terminal, restored on every way out. While the terminal is
/// held, the watchdog covers a terminal that hangs the clean path: it closes `links` itself.
fn in_terminal<S: Source + CallSource>(
    source: &mut S,
    app: &mut App,
    interval: Duration,
    stop: &StopFlag,
    links: Links,
) -> anyhow::Result<()> {
    // Armed first, disarmed last (locals drop in reverse): the watchdog covers the terminal
    // until it is restored.
    let _watch = stop.watch_terminal(links);
    let mut guard = TerminalGuard::enter()?;
    let mut events = TerminalEvents::new(interval);
    let ended = tui::run(source, app, &mut guard.terminal, &mut events, &|| {
        stop.is_set()
    });
    match ended {
        // A terminal that hung up fails the next draw or read; the signal that came with the
        // hangup asked for this end, so it is not an error.
        Err(e) if stop.is_set() && e.downcast_ref::<std::io::Error>().is_some() => Ok(()),
        ended => ended,
    }
}
