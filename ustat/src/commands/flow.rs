//! `ustat --flow -p PID`: a process's method calls as they happen, as text lines (stdout not
//! a terminal, or --text) or in the dashboard's flow view.

use std::{
    fs::File,
    io::{self, BufWriter, IsTerminal as _, Write as _},
    time::{Duration, Instant},
};

use crate::{
    cli::WatchArgs,
    exit::UsageError,
    export,
    flow::text,
    process,
    signals::StopFlag,
    source::{KernelSource, Options, Selection},
    stats,
};

/// How often the ring buffer is emptied: at two million events a second, 10 ms of events
/// fit in the ring buffer with room to spare.
const PUMP: Duration = Duration::from_millis(10);

/// The one process a flow follows.
fn the_pid(args: &WatchArgs) -> Result<u32, UsageError> {
    match args.pid.as_slice() {
        [pid] => Ok(*pid),
        _ => Err(UsageError(
            "--flow follows one process: give one PID with -p".into(),
        )),
    }
}

/// Starts tracing `pid` and watching its calls, with the filter from the command line.
pub fn start(args: &WatchArgs) -> anyhow::Result<(KernelSource, u32)> {
    crate::capabilities::require(crate::capabilities::TRACING)?;
    let pid = the_pid(args)?;
    let mut source = KernelSource::start(Options {
        selection: Selection::Pids(vec![pid]),
        runtime: None,
        top: stats::TOP,
        method_times: false,
        with: args.on_demand(),
        sample_hz: 0,
    })?;
    source.watch_flow(pid)?;
    let class = args.class.as_deref().unwrap_or("");
    let method = args.method_prefix.as_deref().unwrap_or("");
    if !class.is_empty() || !method.is_empty() {
        source.filter_flow(class, method)?;
    }
    Ok((source, pid))
}

pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    // The folded file is created first, so a bad name fails before anything is attached.
    let folded = match &args.folded {
        Some(path) => Some(export::create_new(path)?),
        None => None,
    };
    if args.text || !io::stdout().is_terminal() {
        run_text(args, folded)
    } else {
        super::dashboard::run_flow(args, folded)
    }
}

fn run_text(args: &WatchArgs, folded: Option<File>) -> anyhow::Result<()> {
    let stop = StopFlag::install()?;
    let (mut source, pid) = start(args)?;
    eprintln!("ustat: following the method calls of PID {pid}; Ctrl-C to stop");
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut checked = Instant::now();
    let printed: io::Result<()> = (|| {
        loop {
            // Read before the pump, so the events sent up to the signal are still printed.
            let stopping = stop.is_set();
            source.pump();
            for line in source.take_flow() {
                if args.tid.is_some_and(|tid| tid != line.tid) {
                    continue;
                }
                writeln!(
                    out,
                    "{}",
                    text::line(&line, &source.method_label(pid, line.method))
                )?;
            }
            out.flush()?;
            if stopping {
                break;
            }
            if checked.elapsed() >= Duration::from_secs(1) {
                checked = Instant::now();
                if !process::running(pid) {
                    eprintln!("ustat: process {pid} exited");
                    break;
                }
            }
            std::thread::sleep(PUMP);
        }
        Ok(())
    })();
    match printed {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    finish(&mut source, pid, folded)
}

/// Reports lost events and writes the folded stacks, if asked.
pub fn finish(source: &mut KernelSource, pid: u32, folded: Option<File>) -> anyhow::Result<()> {
    let dropped = source.flow_dropped()?;
    if dropped > 0 {
        eprintln!(
            "ustat: {dropped} flow events were lost: the ring buffer was full (the traced process was never slowed)"
        );
    }
    if let Some(file) = folded {
        let mut out = BufWriter::new(file);
        for line in source.folded(pid)? {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    Ok(())
}
