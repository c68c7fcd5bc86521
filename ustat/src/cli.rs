//! The command line. Values are checked here, so a bad one is a usage error (exit code 2)
//! before anything is attached.

use clap::{Parser, Subcommand, ValueEnum};

use crate::{exit, target::Target};

#[derive(Debug, Parser)]
#[command(
    name = "ustat",
    version,
    about = "Live statistics from language runtimes (JVM, Python, Node.js) through USDT probes and uprobes",
    after_help = exit::TABLE
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the USDT probes of a binary, or of every binary a process maps.
    #[command(after_help = exit::TABLE)]
    List(ListArgs),
    /// Print each hit of USDT probes with its arguments, as the kernel read them.
    #[command(after_help = exit::TABLE)]
    Trace(TraceArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// A PID, or the path of an executable or shared library.
    pub target: Target,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// A PID (trace that process), or the path of an executable or shared library (trace every
    /// process that maps it, also ones started later, unless -p is given).
    pub target: Target,
    /// Probes to trace, as provider:name or name; `*` matches any run of characters.
    /// All probes when none is given.
    pub probes: Vec<String>,
    /// With a path target: trace only these processes.
    #[arg(short, long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Vec<u32>,
    /// Stop after this many events.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_events: Option<u64>,
}
