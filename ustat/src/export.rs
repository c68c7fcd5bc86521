//! CSV: one row per process per interval. The columns are stable and documented (README,
//! "CSV columns"); new ones only ever go at the end.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    time::SystemTime,
};

use serde::Serialize;

use crate::{
    bpf::Lost,
    sanitize,
    snapshot::{ProcessSnapshot, Ranked, Snapshot, Timing},
};

/// The header, in order.
pub const COLUMNS: &[&str] = &[
    "timestamp",
    "interval_s",
    "pid",
    "runtime",
    "command",
    "gc_count",
    "gc_pause_ms_total",
    "gc_pause_ms_p99",
    "gc_pause_ms_max",
    "class_loaded",
    "class_unloaded",
    "threads_started",
    "threads_stopped",
    "threads_live",
    "objects_allocated",
    "bytes_allocated",
    "method_calls",
    "gc_gen0",
    "gc_gen1",
    "gc_gen2",
    "gc_minor",
    "gc_major",
    "monitor_contended",
    "imports",
    "import_ms_total",
    "http_requests",
    "exited",
    "lost_events",
    "exceptions",
    "gc_sweep_ms_total",
    "exceptions_caught",
    "errors",
    "requests",
    "request_ms_total",
    "gc_collections",
    "gc_pauses",
];

/// One row; field order is `COLUMNS` order (checked by a test).
#[derive(Debug, Serialize)]
struct Row {
    timestamp: String,
    interval_s: String,
    pid: u32,
    runtime: String,
    command: String,
    gc_count: Option<u64>,
    gc_pause_ms_total: String,
    gc_pause_ms_p99: String,
    gc_pause_ms_max: String,
    class_loaded: Option<u64>,
    class_unloaded: Option<u64>,
    threads_started: Option<u64>,
    threads_stopped: Option<u64>,
    threads_live: u64,
    objects_allocated: Option<u64>,
    bytes_allocated: Option<u64>,
    method_calls: Option<u64>,
    gc_gen0: Option<u64>,
    gc_gen1: Option<u64>,
    gc_gen2: Option<u64>,
    gc_minor: Option<u64>,
    gc_major: Option<u64>,
    monitor_contended: Option<u64>,
    imports: Option<u64>,
    import_ms_total: String,
    http_requests: Option<u64>,
    exited: u8,
    lost_events: u64,
    exceptions: Option<u64>,
    gc_sweep_ms_total: String,
    exceptions_caught: Option<u64>,
    errors: Option<u64>,
    requests: Option<u64>,
    request_ms_total: String,
    gc_collections: Option<u64>,
    gc_pauses: Option<u64>,
}

/// Nanoseconds as milliseconds with microsecond precision: `12.345`.
pub fn ms(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000_000, (ns / 1_000) % 1_000)
}

/// `2026-11-25T03:30:01.123Z`
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// What could not be recorded, host-wide: events the ring buffer had no room for, hits an
/// aggregation map had no room for, spans nested too deep to time, and events of processes
/// that exited before ustat listed them and whose runtime it could not tell (no row holds
/// them). (Sizes a runtime passed as garbage are not in it: their hits are counted.)
pub fn lost_events(lost: &Lost) -> u64 {
    lost.ring_full + lost.map_full + lost.too_deep + lost.unlisted_events
}

/// One line for stderr when the snapshot's interval lost anything: how much, and what.
pub fn loss_report(snapshot: &Snapshot) -> Option<String> {
    let lost = &snapshot.lost_interval;
    let unlisted = format!(
        "events of {} {} that exited before ustat listed {}",
        lost.unlisted_processes,
        if lost.unlisted_processes == 1 {
            "process"
        } else {
            "processes"
        },
        if lost.unlisted_processes == 1 {
            "it"
        } else {
            "them"
        },
    );
    let parts: Vec<String> = [
        (lost.ring_full, "events the ring buffer had no room for"),
        (lost.map_full, "hits a full kernel map could not count"),
        (lost.too_deep, "calls or spans nested too deep to time"),
        (lost.unlisted_events, unlisted.as_str()),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "ustat: lost in the last interval: {}; {} lost since start (CSV column lost_events)",
            parts.join(", "),
            lost_events(&snapshot.lost)
        )
    })
}

fn row(snapshot: &Snapshot, p: &ProcessSnapshot, lost_in_interval: u64) -> Row {
    let runtime = ustat_runtimes::by_name(p.runtime);
    // A runtime whose GC is not traced (CPython 3.8 without USDT) has empty GC cells.
    let gc_traced = !p.untraced(ustat_common::category::GC);
    let kind = |kind: &str| {
        (gc_traced && runtime.is_some_and(|r| r.gc_kinds.contains(&kind)))
            .then(|| p.gc_of_kind(kind))
    };
    let pause = |f: fn(&crate::snapshot::PauseStats) -> u64| {
        p.pause
            .as_ref()
            .filter(|_| gc_traced)
            .map(|s| ms(f(s)))
            .unwrap_or_default()
    };
    let i = &p.interval;
    // Calls and imports can be off (on demand, or not in the binary): empty, not zero.
    // So can events a process's settings keep off (a line in `missing` says why).
    let traced = |category: u32, value: u64| (!p.untraced(category)).then_some(value);
    let imports = traced(ustat_common::category::IMPORT, i.imports);
    Row {
        timestamp: timestamp(snapshot.taken_at),
        interval_s: interval_cell(snapshot),
        pid: p.pid,
        runtime: sanitize::csv_cell(p.runtime),
        command: sanitize::csv_cell(&p.command),
        gc_count: gc_traced.then_some(i.gc_count),
        gc_pause_ms_total: if gc_traced {
            ms(i.gc_pause_ns)
        } else {
            String::new()
        },
        gc_pause_ms_p99: pause(|s| s.p99_ns),
        gc_pause_ms_max: pause(|s| s.max_ns),
        class_loaded: traced(ustat_common::category::CLASS_LOADED, i.class_loaded),
        class_unloaded: traced(ustat_common::category::CLASS_UNLOADED, i.class_unloaded),
        threads_started: traced(ustat_common::category::THREAD_STARTED, i.threads_started),
        threads_stopped: traced(ustat_common::category::THREAD_STOPPED, i.threads_stopped),
        threads_live: p.threads_live,
        // Allocations can be off (Ruby's are on demand) or absent: empty, not zero.
        objects_allocated: traced(ustat_common::category::OBJECT_ALLOC, i.objects_allocated),
        // Ruby's object probe carries no size: its bytes are empty, not 0.
        // So are sizes a runtime passes that cannot be trusted (OpenJDK 17's).
        bytes_allocated: (!p.bytes_untraced())
            .then_some(i.bytes_allocated)
            .filter(|_| runtime.is_some_and(allocation_sizes)),
        method_calls: traced(ustat_common::category::METHOD_CALL, i.method_calls),
        gc_gen0: kind("gen0"),
        gc_gen1: kind("gen1"),
        gc_gen2: kind("gen2"),
        gc_minor: kind("minor"),
        gc_major: kind("major"),
        monitor_contended: traced(
            ustat_common::category::MONITOR_CONTENDED,
            i.monitor_contended,
        ),
        import_ms_total: traced(ustat_common::category::IMPORT_TIME, i.import_ns)
            .map(ms)
            .unwrap_or_default(),
        imports,
        http_requests: traced(ustat_common::category::HTTP_PARSED, i.http_requests),
        exited: u8::from(p.exited),
        lost_events: lost_in_interval,
        exceptions: traced(ustat_common::category::EXCEPTION, i.exceptions),
        gc_sweep_ms_total: traced(ustat_common::category::GC_SWEEP, i.gc_sweep_ns)
            .map(ms)
            .unwrap_or_default(),
        exceptions_caught: traced(
            ustat_common::category::EXCEPTION_CAUGHT,
            i.exceptions_caught,
        ),
        errors: traced(ustat_common::category::RUNTIME_ERROR, i.errors),
        requests: traced(ustat_common::category::REQUEST, i.requests),
        request_ms_total: traced(ustat_common::category::REQUEST, i.request_ns)
            .map(ms)
            .unwrap_or_default(),
        gc_collections: gc_traced.then_some(p.collections()),
        gc_pauses: gc_traced.then_some(i.gc_count),
    }
}

/// Whether the runtime's allocation probes carry a size (HotSpot's do, Ruby's do not).
fn allocation_sizes(runtime: &ustat_runtimes::Runtime) -> bool {
    use ustat_runtimes::{Action, Arg};
    runtime.rules().any(|rule| {
        matches!(
            rule.action,
            Action::Keyed {
                category: ustat_common::category::OBJECT_ALLOC,
                value: Arg::N(_),
                ..
            }
        )
    })
}

/// Writes the header at once, then rows, flushing after each snapshot so a reader (or a
/// `tail -f`) sees every interval as it ends.
pub struct CsvWriter<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W) -> io::Result<Self> {
        Ok(Self {
            inner: with_header(out, COLUMNS)?,
        })
    }

    pub fn write(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let lost_in_interval = lost_events(&snapshot.lost_interval);
        for process in &snapshot.processes {
            self.inner
                .serialize(row(snapshot, process, lost_in_interval))
                .map_err(io::Error::other)?;
        }
        self.inner.flush()
    }
}

/// The header of the per-method CSV (`--methods`), in order.
pub const METHOD_COLUMNS: &[&str] = &[
    "timestamp",
    "interval_s",
    "pid",
    "runtime",
    "method",
    "calls",
    "returns",
    "total_ms",
    "self_ms",
    "mean_us",
    "p99_us",
];

/// One row; the timing columns are empty unless the method's return probe is attached.
#[derive(Debug, Serialize)]
struct MethodRow<'a> {
    timestamp: &'a str,
    interval_s: &'a str,
    pid: u32,
    runtime: &'a str,
    method: String,
    calls: u64,
    returns: Option<u64>,
    total_ms: Option<String>,
    self_ms: Option<String>,
    mean_us: Option<String>,
    p99_us: Option<String>,
}

/// A CSV writer whose header row, `columns`, is written (and flushed) at once, so a file
/// names its columns even when no row ever follows.
pub fn with_header<W: Write>(out: W, columns: &[&str]) -> io::Result<csv::Writer<W>> {
    let mut inner = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    inner.write_record(columns)?;
    inner.flush()?;
    Ok(inner)
}

/// An interval's length as the `interval_s` cell: seconds with three decimals.
pub fn interval_cell(snapshot: &Snapshot) -> String {
    format!("{:.3}", snapshot.interval.as_secs_f64())
}

/// Nanoseconds as microseconds with nanosecond precision: `12.345`.
pub fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000, ns % 1_000)
}

/// Nanoseconds as milliseconds with nanosecond precision: `12.345678`.
pub fn ms_exact(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000, ns % 1_000_000)
}

/// One row per process and method with calls in the interval.
pub struct MethodsCsvWriter<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> MethodsCsvWriter<W> {
    pub fn new(out: W) -> io::Result<Self> {
        Ok(Self {
            inner: with_header(out, METHOD_COLUMNS)?,
        })
    }

    pub fn write(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let timestamp = timestamp(snapshot.taken_at);
        let interval_s = interval_cell(snapshot);
        for process in &snapshot.processes {
            for (method, merged) in one_row_per_name(
                process
                    .top_methods
                    .iter()
                    .filter(|m| m.interval > 0 || m.timing.is_some_and(|t| t.calls > 0)),
            ) {
                let timing = method.timing;
                let row = MethodRow {
                    timestamp: &timestamp,
                    interval_s: &interval_s,
                    pid: process.pid,
                    runtime: process.runtime,
                    method: sanitize::csv_cell(&method.name),
                    calls: method.interval,
                    returns: timing.map(|t| t.calls),
                    total_ms: timing.map(|t| ms_exact(t.total_ns)),
                    self_ms: timing.map(|t| ms_exact(t.self_ns)),
                    mean_us: timing.map(|t| us(t.mean_ns)),
                    p99_us: timing.filter(|_| !merged).map(|t| us(t.p99_ns)),
                };
                self.inner.serialize(row).map_err(io::Error::other)?;
            }
        }
        self.inner.flush()
    }
}

/// One entry per method name: two keys the kernel keeps apart can carry one name (a class
/// loaded twice, a module reloaded), and a row's method must be its key. Their counts and
/// times add up; a p99 of two histograms is not the p99 of either, so a merged row (`true`)
/// leaves it empty.
fn one_row_per_name<'a>(methods: impl Iterator<Item = &'a Ranked>) -> Vec<(Ranked, bool)> {
    let mut rows: Vec<(Ranked, bool)> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for method in methods {
        let Some(&i) = at.get(method.name.as_str()) else {
            at.insert(&method.name, rows.len());
            rows.push((method.clone(), false));
            continue;
        };
        let (row, merged) = &mut rows[i];
        *merged = true;
        row.interval += method.interval;
        row.timing = match (row.timing, method.timing) {
            (Some(a), Some(b)) => {
                let calls = a.calls + b.calls;
                let total_ns = a.total_ns + b.total_ns;
                Some(Timing {
                    calls,
                    total_ns,
                    self_ns: a.self_ns + b.self_ns,
                    mean_ns: total_ns.checked_div(calls).unwrap_or(0),
                    p99_ns: 0,
                })
            }
            (a, b) => a.or(b),
        };
    }
    rows
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{path} exists; ustat never overwrites a file: give another name or move it away", path = path.display())]
    Exists { path: PathBuf },
    #[error("{path} is a directory; give a file name in it", path = path.display())]
    IsDirectory { path: PathBuf },
    #[error("cannot create {path}: there is no directory {dir}", path = path.display(), dir = dir.display())]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error("cannot create {path}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Creates `path` for writing; an existing file is an error, never truncated.
pub fn create_new(path: &Path) -> Result<File, CreateError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| {
            if path.is_dir() {
                CreateError::IsDirectory {
                    path: path.to_path_buf(),
                }
            } else if source.kind() == io::ErrorKind::AlreadyExists {
                CreateError::Exists {
                    path: path.to_path_buf(),
                }
            } else if source.kind() == io::ErrorKind::NotFound {
                CreateError::NoDirectory {
                    path: path.to_path_buf(),
                    dir: directory_of(path).to_path_buf(),
                }
            } else {
                CreateError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
}

/// The directory a file name is in (`.` for a bare name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Whether two output names are the same file: the same name, or names that reach the
/// same file through their directories (`out.csv`, `./out.csv`, a link to the directory).
pub fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    let resolved = |p: &Path| {
        let dir = directory_of(p).canonicalize().ok()?;
        Some(dir.join(p.file_name()?))
    };
    matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
}

/// A new file in `dir` named `{base}-{time}.{extension}` (`-2`, `-3`, ... before the
/// extension if that exists), created for writing; returns its path.
pub fn new_file(dir: &Path, base: &str, extension: &str) -> Result<(PathBuf, File), CreateError> {
    new_file_at(dir, base, extension, SystemTime::now())
}

fn new_file_at(
    dir: &Path,
    base: &str,
    extension: &str,
    at: SystemTime,
) -> Result<(PathBuf, File), CreateError> {
    let stamp: String = timestamp(at)
        .chars()
        .take(19)
        .filter(char::is_ascii_digit)
        .collect();
    let stem = format!("{base}-{}-{}", &stamp[..8], &stamp[8..]);
    for n in 1.. {
        let name = if n == 1 {
            format!("{stem}.{extension}")
        } else {
            format!("{stem}-{n}.{extension}")
        };
        let path = dir.join(name);
        match create_new(&path) {
            Ok(file) => return Ok((path, file)),
            Err(CreateError::Exists { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("1.. is endless")
}

/// Writes `snapshot` to a new file in `dir` named after its time
/// (`ustat-20261125-033001.csv`, or `...-2.csv` and so on if that exists), and returns its path.
pub fn snapshot_file(dir: &Path, snapshot: &Snapshot) -> Result<PathBuf, CreateError> {
    let (path, file) = new_file_at(dir, "ustat", "csv", snapshot.taken_at)?;
    let io = |source| CreateError::Io {
        path: path.clone(),
        source,
    };
    CsvWriter::new(file)
        .map_err(io)?
        .write(snapshot)
        .map_err(io)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::snapshot::{Counters, GcKind, PauseStats};
    use ustat_common::category;

    fn process(pid: u32, command: &str) -> ProcessSnapshot {
        ProcessSnapshot {
            sampled: None,
            pid,
            runtime: "jvm",
            command: command.to_string(),
            exited: false,
            interval: Counters {
                gc_count: 2,
                gc_pause_ns: 3_456_789,
                class_loaded: 5,
                method_calls: 7,
                ..Counters::default()
            },
            total: Counters::default(),
            pause: Some(PauseStats {
                count: 2,
                p50_ns: 1_000_000,
                p99_ns: 2_456_789,
                max_ns: 2_456_789,
            }),
            pause_total: None,
            gc_kinds: vec![GcKind {
                kind: "major",
                interval: 2,
                total: 9,
                pause_ns_total: 0,
                collected_total: 0,
            }],
            threads_live: 12,
            threads: vec![],
            top_methods: vec![],
            top_allocations: vec![],
            top_monitors: vec![],
            top_exceptions: vec![],
            pools: vec![],
            collectors: vec![],
            missing: vec![],
            refused: vec![],
            traced: vec![
                category::GC,
                category::METHOD_CALL,
                category::CLASS_LOADED,
                category::CLASS_UNLOADED,
                category::THREAD_STARTED,
                category::THREAD_STOPPED,
                category::MONITOR_CONTENDED,
            ],
        }
    }

    fn snapshot(processes: Vec<ProcessSnapshot>) -> Snapshot {
        let mut s = Snapshot::empty(
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_041_401_123),
            Duration::from_millis(1002),
        );
        s.processes = processes;
        s
    }

    fn written(snapshot: &Snapshot) -> String {
        let mut out = Vec::new();
        CsvWriter::new(&mut out).unwrap().write(snapshot).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn header_then_one_row_per_process() {
        let text = written(&snapshot(vec![process(7, "java"), process(8, "java")]));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], COLUMNS.join(","));
        assert_eq!(
            lines[1],
            "2025-11-25T03:30:01.123Z,1.002,7,jvm,java,2,3.456,2.456,2.456,5,0,0,0,12,,,7,,,,0,2,0,,,,0,0,,,,,,,2,2"
        );
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn calls_and_imports_not_traced_are_empty_not_zero() {
        let mut python = process(9, "python3.11");
        python.runtime = "python";
        python.traced = vec![category::GC];
        let text = written(&snapshot(vec![python]));
        let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
        let column = |name: &str| row[COLUMNS.iter().position(|c| *c == name).unwrap()];
        assert_eq!(column("method_calls"), "");
        assert_eq!(column("imports"), "");
        assert_eq!(column("import_ms_total"), "");
        assert_eq!(column("gc_count"), "2");
    }

    #[test]
    fn categories_without_probes_are_empty_not_zero() {
        let mut python = process(9, "python3.11");
        python.runtime = "python";
        python.traced = vec![category::GC];
        let text = written(&snapshot(vec![python]));
        let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
        let column = |name: &str| row[COLUMNS.iter().position(|c| *c == name).unwrap()];
        for name in [
            "class_loaded",
            "class_unloaded",
            "threads_started",
            "threads_stopped",
            "monitor_contended",
            "http_requests",
        ] {
            assert_eq!(column(name), "", "{name}");
        }
    }

    #[test]
    fn a_refused_probe_empties_its_columns() {
        let mut jvm = process(9, "java");
        jvm.refused = vec![crate::snapshot::Missing {
            categories: vec![category::GC],
            text: "cannot attach hotspot:gc__begin in /x/libjvm.so: the kernel refused".into(),
        }];
        let text = written(&snapshot(vec![jvm]));
        let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
        let column = |name: &str| row[COLUMNS.iter().position(|c| *c == name).unwrap()];
        for name in ["gc_count", "gc_pause_ms_total", "gc_minor", "gc_major"] {
            assert_eq!(column(name), "", "{name}");
        }
        assert_eq!(column("method_calls"), "7");
    }

    #[test]
    fn lost_events_are_the_interval_s_host_wide_losses_on_every_row() {
        let mut s = snapshot(vec![process(7, "java"), process(8, "java")]);
        s.lost_interval = Lost {
            ring_full: 5,
            map_full: 2,
            too_deep: 1,
            bad_values: 40,
            ..Lost::default()
        };
        let text = written(&s);
        let at = COLUMNS.iter().position(|c| *c == "lost_events").unwrap();
        let lost: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(at).unwrap())
            .collect();
        assert_eq!(lost, ["8", "8"], "bad sizes are counted hits, not losses");
    }

    #[test]
    fn a_loss_is_reported_in_the_interval_it_grows() {
        let mut s = snapshot(vec![]);
        s.lost = Lost {
            ring_full: 10,
            bad_values: 7,
            ..Lost::default()
        };
        s.lost_interval = Lost {
            ring_full: 3,
            ..Lost::default()
        };
        assert_eq!(
            loss_report(&s).as_deref(),
            Some(
                "ustat: lost in the last interval: 3 events the ring buffer had no room for; \
                 10 lost since start (CSV column lost_events)"
            )
        );
        s.lost_interval = Lost {
            bad_values: 9,
            ..Lost::default()
        };
        assert_eq!(loss_report(&s), None, "nothing new, or only bad sizes");
    }

    /// A process that came and went between two looks at the host has no row: its events
    /// are reported as lost, with how many processes they were.
    #[test]
    fn events_of_processes_never_listed_are_reported_lost() {
        let mut s = snapshot(vec![process(7, "java")]);
        s.lost = Lost {
            unlisted_processes: 4,
            unlisted_events: 12,
            ..Lost::default()
        };
        s.lost_interval = Lost {
            unlisted_processes: 1,
            unlisted_events: 3,
            ..Lost::default()
        };
        assert_eq!(
            loss_report(&s).as_deref(),
            Some(
                "ustat: lost in the last interval: 3 events of 1 process that exited before \
                 ustat listed it; 12 lost since start (CSV column lost_events)"
            )
        );
        let text = written(&s);
        let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
        let lost = COLUMNS.iter().position(|c| *c == "lost_events").unwrap();
        assert_eq!(row[lost], "3", "the interval's lost_events: {row:?}");
    }

    #[test]
    fn the_row_struct_follows_the_documented_columns() {
        let text = written(&snapshot(vec![process(1, "java")]));
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            reader.headers().unwrap().iter().collect::<Vec<_>>(),
            COLUMNS
        );
        assert_eq!(
            reader.records().next().unwrap().unwrap().len(),
            COLUMNS.len()
        );
    }

    #[test]
    fn no_pause_means_empty_percentiles_not_zero() {
        let mut p = process(1, "java");
        p.pause = None;
        let text = written(&snapshot(vec![p]));
        let row = text.lines().nth(1).unwrap();
        assert!(row.contains(",3.456,,,5,"), "{row}");
    }

    #[test]
    fn hostile_commands_are_quoted_and_defused() {
        let text = written(&snapshot(vec![
            process(1, "=cmd|' /C calc'!A0"),
            process(2, "a,\"b\"\nc\x1b[31m"),
        ]));
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let commands: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[4].to_string())
            .collect();
        assert_eq!(commands, ["'=cmd|' /C calc'!A0", "a,\"b\"?c?[31m"]);
        // RFC 4180: the comma and quotes are quoted, not escaped away.
        assert!(text.contains("\"a,\"\"b\"\"?c?[31m\""), "{text}");
    }

    #[test]
    fn method_rows_for_methods_called_in_the_interval() {
        let mut p = process(7, "java");
        let ranked = |name: &str, interval| crate::snapshot::Ranked {
            name: name.into(),
            interval,
            total: 10,
            interval_value: 0,
            total_value: 0,
            timing: None,
            timing_total: None,
        };
        p.top_methods = vec![
            ranked("Workload.marker", 1000),
            ranked("=evil", 2),
            ranked("Idle.run", 0),
        ];
        p.top_methods[0].timing = Some(crate::snapshot::Timing {
            calls: 999,
            total_ns: 2_500_000,
            self_ns: 2_000_000,
            mean_ns: 2_502,
            p99_ns: 10_007,
        });
        let mut out = Vec::new();
        MethodsCsvWriter::new(&mut out)
            .unwrap()
            .write(&snapshot(vec![p]))
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], METHOD_COLUMNS.join(","));
        assert_eq!(
            lines[1],
            "2025-11-25T03:30:01.123Z,1.002,7,jvm,Workload.marker,1000,999,2.500000,2.000000,2.502,10.007"
        );
        assert_eq!(
            lines[2],
            "2025-11-25T03:30:01.123Z,1.002,7,jvm,'=evil,2,,,,,"
        );
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn milliseconds() {
        assert_eq!(ms(0), "0.000");
        assert_eq!(ms(999), "0.000");
        assert_eq!(ms(1_000), "0.001");
        assert_eq!(ms(12_345_678), "12.345");
    }

    #[test]
    fn existing_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "precious").unwrap();
        assert!(matches!(create_new(&path), Err(CreateError::Exists { .. })));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");

        let snap = snapshot(vec![process(1, "java")]);
        let first = snapshot_file(dir.path(), &snap).unwrap();
        let second = snapshot_file(dir.path(), &snap).unwrap();
        assert_eq!(first.file_name().unwrap(), "ustat-20251125-033001.csv");
        assert_eq!(second.file_name().unwrap(), "ustat-20251125-033001-2.csv");
        assert_eq!(
            std::fs::read_to_string(&first).unwrap(),
            std::fs::read_to_string(&second).unwrap()
        );
    }

    #[test]
    fn two_keys_of_one_name_are_one_row() {
        let ranked = |calls, total_ns| Ranked {
            name: "Demo.work(int)".into(),
            interval: calls,
            timing: Some(Timing {
                calls,
                total_ns,
                self_ns: total_ns,
                mean_ns: total_ns / calls,
                p99_ns: total_ns,
            }),
            ..Ranked::default()
        };
        let other = Ranked {
            name: "Demo.rest()".into(),
            interval: 1,
            ..Ranked::default()
        };
        let methods = [ranked(2, 200), other.clone(), ranked(3, 900)];
        let rows = one_row_per_name(methods.iter());
        assert_eq!(rows.len(), 2);
        let (work, merged) = &rows[0];
        assert!(*merged);
        assert_eq!(work.interval, 5);
        let timing = work.timing.unwrap();
        assert_eq!(
            (timing.calls, timing.total_ns, timing.mean_ns),
            (5, 1100, 220)
        );
        assert_eq!(rows[1], (other, false));
    }
}
