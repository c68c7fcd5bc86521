//! ustat: live statistics from language runtimes through USDT probes and uprobes.

pub mod binary;
pub mod bpf;
pub mod candidate;
pub mod capabilities;
pub mod category;
pub mod cli;
pub mod clone_code;
pub mod clone_name;
pub mod command_label;
pub mod commands;
pub mod container;
pub mod discovery;
pub mod elf;
pub mod exit;
pub mod export;
pub mod flow;
pub mod format;
pub mod golang;
#[cfg(test)]
mod layering;
pub mod message;
pub mod metrics;
pub mod plan;
pub mod process;
pub mod recorded;
pub mod samples;
pub mod samples_csv;
pub mod sampling;
pub mod sanitize;
pub mod signals;
pub mod snapshot;
pub mod source;
pub mod stats;
pub mod target;
pub mod trace;
pub mod tui;
pub mod usdt;

use cli::{Cli, Command};

/// Runs what the command line asks for.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::List(args)) => commands::list::run(&args, &mut std::io::stdout().lock()),
        Some(Command::Trace(args)) => commands::trace::run(&args),
        None => commands::watch::run(&cli.watch),
    }
}
