//! The command line. Values are checked here, so a bad one is a usage error (exit code 2)
//! before anything is attached.

use std::{
    net::{SocketAddr, ToSocketAddrs as _},
    path::PathBuf,
    time::Duration,
};

use clap::{Parser, Subcommand, ValueEnum};
use ustat_runtimes::Runtime;

use crate::{exit, target::Target};

#[derive(Debug, Parser)]
#[command(
    name = "ustat",
    version,
    about = "Live statistics from language runtimes (JVM, Python, Node.js) through USDT probes and uprobes",
    long_about = "Live statistics from language runtimes (JVM, Python, Node.js) through USDT probes and \
                  uprobes.\n\nWithout a command, ustat shows a dashboard of every runtime process on the \
                  host (or those given with -p), or writes CSV with --csv.",
    after_help = exit::TABLE,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// Options of the dashboard and of CSV output.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Trace only these processes (comma-separated PIDs).
    #[arg(short, long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Vec<u32>,
    /// Seconds between refreshes (0.1 to 3600).
    #[arg(short, long, default_value = "1", value_parser = parse_interval)]
    pub interval: Duration,
    /// Show only processes of this runtime.
    #[arg(long, value_parser = runtime_name)]
    pub runtime: Option<&'static Runtime>,
    /// Write CSV instead of showing the dashboard: to FILE, or to stdout without FILE or with
    /// `-`. An existing FILE is never overwritten.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub csv: Option<PathBuf>,
    /// With --csv: also write every method's calls per interval, as CSV, to FILE. Raises the
    /// runtimes' call probes, also CPython's on-demand ones (see --with).
    #[arg(long, value_name = "FILE", requires = "csv")]
    pub methods: Option<PathBuf>,
    /// Also attach these on-demand features in every traced process: calls, imports,
    /// objects. They are off by default because the runtime's own code behind their probes
    /// can fail on the traced program's data (CPython: names that are not UTF-8,
    /// python/cpython#156118) or costs it much (Ruby: a string allocated per call or object).
    #[arg(long, value_name = "FEATURE", value_delimiter = ',', value_parser = on_demand_feature)]
    pub with: Vec<&'static str>,
    /// Follow the method calls of one process (-p PID): a live call tree, or text lines when
    /// stdout is not a terminal or with --text.
    #[arg(long, requires = "pid", conflicts_with = "csv")]
    pub flow: bool,
    /// With --flow: plain text, one line per entry and return.
    #[arg(long, requires = "flow")]
    pub text: bool,
    /// With --flow: only this thread.
    #[arg(long, requires = "flow", value_parser = clap::value_parser!(u32).range(1..))]
    pub tid: Option<u32>,
    /// With --flow: only calls whose class (JVM, Ruby, PHP) or file (Python) starts with PREFIX.
    #[arg(long, value_name = "PREFIX", requires = "flow")]
    pub class: Option<String>,
    /// With --flow: only calls whose method or function name starts with PREFIX.
    #[arg(long = "method", value_name = "PREFIX", requires = "flow")]
    pub method_prefix: Option<String>,
    /// When it ends, write folded stacks (`a;b;c count`) to FILE: with --flow the call tree,
    /// with --csv the sampled Python stacks of the whole run.
    #[arg(long, value_name = "FILE")]
    pub folded: Option<PathBuf>,
    /// Serve the metrics in the Prometheus text format at http://ADDR/metrics instead of
    /// showing the dashboard: `127.0.0.1:9477`, or `:9477` for every address.
    #[arg(long, value_name = "ADDR", value_parser = listen_address, conflicts_with_all = ["csv", "flow"])]
    pub prometheus: Option<SocketAddr>,
    /// With --prometheus: also a series per method for the N most called methods of each
    /// process (0, the default, for none: every method would be a series).
    #[arg(long, value_name = "N", requires = "prometheus", default_value = "0",
          value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub prometheus_methods: u16,
    /// Stop after COUNT intervals.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Samples per second of every CPU, for Python stacks (0 turns sampling off).
    #[arg(long, value_name = "N", default_value = "99",
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub sample_hz: u32,
    /// With --csv: per interval, a row per process and sampled function to FILE.
    #[arg(long, value_name = "FILE", requires = "csv")]
    pub samples: Option<PathBuf>,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    // One optional unit: `2s` is two seconds, `2ss` is a typo.
    let number = text.strip_suffix('s').unwrap_or(text);
    let seconds: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(0.1..=3600.0).contains(&seconds) {
        return Err(format!(
            "`{text}` is out of range: the interval is 0.1 to 3600 seconds"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `HOST:PORT`, `IP:PORT`, `[IPv6]:PORT`, or `:PORT` for every IPv4 address.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let malformed = || format!("`{text}` is not an address to listen on (HOST:PORT or :PORT)");
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| malformed())?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    // A host name: only with an explicit port, and its first address.
    if !text
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    {
        return Err(malformed());
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut all| all.next())
        .ok_or_else(|| format!("`{text}` names no address to listen on"))
}

fn on_demand_feature(text: &str) -> Result<&'static str, String> {
    let names = ustat_runtimes::on_demand_features();
    names.iter().copied().find(|n| *n == text).ok_or_else(|| {
        format!(
            "`{text}` is not an on-demand feature ({})",
            names.join(", ")
        )
    })
}

fn runtime_name(text: &str) -> Result<&'static Runtime, String> {
    ustat_runtimes::by_name(text).ok_or_else(|| {
        let names: Vec<&str> = ustat_runtimes::ALL.iter().map(|r| r.name).collect();
        format!(
            "`{text}` is not a runtime ustat knows ({})",
            names.join(", ")
        )
    })
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
    /// Probe specs in BCC `trace` syntax: `p:BINARY:FUNCTION [(FILTER)] ["FORMAT", ARG...]`,
    /// `r:BINARY:FUNCTION` (with `retval`), `u:BINARY:[PROVIDER:]NAME` (see the README). Or the
    /// older form: a TARGET (a PID, or the path of an executable or shared library) followed
    /// by USDT probe names (provider:name or name; `*` matches any run of characters; all
    /// probes when none is given).
    #[arg(required = true, value_name = "SPEC|TARGET PROBE")]
    pub items: Vec<String>,
    /// Trace only these processes (with a path target or specs). An empty BINARY in a spec
    /// is their executable, a library name is what they map.
    #[arg(short, long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Vec<u32>,
    /// Stop after this many events.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_events: Option<u64>,
    /// Specs: time each call of the probed functions, in the kernel; print calls, p50, p99,
    /// max and a histogram per function at the end (or every -i).
    #[arg(long, conflicts_with = "count")]
    pub latency: bool,
    /// Specs: count hits per formatted value, in the kernel; print the table at the end (or
    /// every -i).
    #[arg(long)]
    pub count: bool,
    /// Specs: one JSON object per event (and per summary row) instead of text lines.
    #[arg(long)]
    pub json: bool,
    /// With --count or --latency: print the summary every this many seconds too.
    #[arg(short, long, value_parser = parse_interval)]
    pub interval: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_interval("0").unwrap_err().contains("out of range"));
        assert!(parse_interval("soon").unwrap_err().contains("not a number"));
        assert!(parse_interval("1ss").unwrap_err().contains("not a number"));
        assert!(parse_interval("s").unwrap_err().contains("not a number"));
        assert!(parse_interval("NaN").unwrap_err().contains("out of range"));
        assert!(parse_interval("inf").unwrap_err().contains("out of range"));
    }

    #[test]
    fn csv_file_is_optional() {
        let cli = Cli::try_parse_from(["ustat", "--csv"]).unwrap();
        assert_eq!(cli.watch.csv, Some(PathBuf::from("-")));
        let cli = Cli::try_parse_from([
            "ustat", "--csv", "out.csv", "-i", "2", "-n", "3", "-p", "1,2",
        ])
        .unwrap();
        assert_eq!(cli.watch.csv, Some(PathBuf::from("out.csv")));
        assert_eq!(cli.watch.pid, [1, 2]);
        assert_eq!(cli.watch.count, Some(3));
        assert!(Cli::try_parse_from(["ustat", "--runtime", "cobol"]).is_err());
        assert!(Cli::try_parse_from(["ustat", "-p", "1", "list", "/bin/true"]).is_err());
    }

    #[test]
    fn sampling_options() {
        let cli = Cli::try_parse_from(["ustat", "--csv", "a.csv"]).unwrap();
        assert_eq!(cli.watch.sample_hz, 99);
        let cli = Cli::try_parse_from([
            "ustat",
            "--csv",
            "a.csv",
            "--samples",
            "s.csv",
            "--folded",
            "f",
            "--sample-hz",
            "0",
        ])
        .unwrap();
        assert_eq!(cli.watch.sample_hz, 0);
        assert_eq!(cli.watch.samples, Some(PathBuf::from("s.csv")));
        assert!(Cli::try_parse_from(["ustat", "--samples", "s.csv"]).is_err());
        assert!(Cli::try_parse_from(["ustat", "--csv", "--sample-hz", "1001"]).is_err());
        assert!(Cli::try_parse_from(["ustat", "--csv", "--sample-hz", "-1"]).is_err());
    }

    #[test]
    fn prometheus_addresses() {
        assert_eq!(
            listen_address("127.0.0.1:9477"),
            Ok(([127, 0, 0, 1], 9477).into())
        );
        assert_eq!(listen_address(":9477"), Ok(([0, 0, 0, 0], 9477).into()));
        assert_eq!(listen_address("[::1]:80").map(|a| a.port()), Ok(80));
        assert_eq!(listen_address("localhost:9477").map(|a| a.port()), Ok(9477));
        for bad in [
            "9477",
            ":",
            ":99999",
            "127.0.0.1",
            "127.0.0.1:x",
            "host",
            "",
        ] {
            assert!(listen_address(bad).is_err(), "{bad}");
        }
        assert!(Cli::try_parse_from(["ustat", "--prometheus", ":9477", "--csv"]).is_err());
        assert!(Cli::try_parse_from(["ustat", "--prometheus-methods", "5"]).is_err());
        let cli = Cli::try_parse_from(["ustat", "--prometheus", ":1", "--prometheus-methods", "5"])
            .unwrap();
        assert_eq!(cli.watch.prometheus_methods, 5);
    }

    #[test]
    fn on_demand_features_by_name() {
        let cli = Cli::try_parse_from(["ustat", "--with", "calls,imports"]).unwrap();
        assert_eq!(cli.watch.with, ["calls", "imports"]);
        let error = Cli::try_parse_from(["ustat", "--with", "gc"]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`gc` is not an on-demand feature (calls, imports, objects)"),
            "{error}"
        );
    }
}
