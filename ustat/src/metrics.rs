//! Snapshots as Prometheus metrics (`ustat --prometheus`): counters summed over every interval
//! since ustat started, gauges of the last interval, per process, and ustat's own health.
//! The `prometheus` crate encodes them in the text format; this module only decides what
//! the series are.
//!
//! A category a process's runtime or settings do not let ustat trace has no series at all
//! (never a 0 that looks real). Series of a process that exited stay, with `ustat_up 0` and
//! its final counts, until a scrape has served them, then go: memory and series stay flat
//! however many processes come and go.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use prometheus::proto::{
    Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary,
};

use crate::{
    bpf::Lost,
    category::Category,
    snapshot::{Counters, PauseStats, ProcessSnapshot, Snapshot},
};

/// How long the series of an exited process stay when nobody scrapes: the bound on what
/// exited processes can hold without a Prometheus.
const KEEP_UNSCRAPED: Duration = Duration::from_secs(300);

/// A per-process counter family: one of the snapshot's counters, summed.
struct CounterFamily {
    name: &'static str,
    help: &'static str,
    /// No series where the process does not trace it.
    category: Category,
    value: fn(&Counters) -> u64,
    /// What one unit of the family is in the counter's units (1e9 nanoseconds a second).
    per_unit: f64,
}

/// The family of allocated bytes, absent where the sizes cannot be trusted.
const BYTES_FAMILY: &str = "ustat_allocated_bytes_total";

const fn family(
    name: &'static str,
    help: &'static str,
    category: Category,
    value: fn(&Counters) -> u64,
) -> CounterFamily {
    CounterFamily {
        name,
        help,
        category,
        value,
        per_unit: 1.0,
    }
}

const COUNTERS: [CounterFamily; 11] = [
    family(
        "ustat_classes_loaded_total",
        "Classes loaded since ustat started.",
        Category::ClassLoaded,
        |c| c.class_loaded,
    ),
    family(
        "ustat_classes_unloaded_total",
        "Classes unloaded since ustat started.",
        Category::ClassUnloaded,
        |c| c.class_unloaded,
    ),
    family(
        "ustat_threads_started_total",
        "Threads the runtime started since ustat started.",
        Category::ThreadStarted,
        |c| c.threads_started,
    ),
    family(
        "ustat_threads_stopped_total",
        "Threads the runtime stopped since ustat started.",
        Category::ThreadStopped,
        |c| c.threads_stopped,
    ),
    family(
        "ustat_objects_allocated_total",
        "Objects allocated since ustat started (JVM allocation probes).",
        Category::ObjectAlloc,
        |c| c.objects_allocated,
    ),
    family(
        BYTES_FAMILY,
        "Bytes of the objects allocated since ustat started, as the runtime reports them.",
        Category::ObjectAlloc,
        |c| c.bytes_allocated,
    ),
    family(
        "ustat_method_calls_total",
        "Method calls the runtime's call probes saw since ustat started.",
        Category::MethodCall,
        |c| c.method_calls,
    ),
    family(
        "ustat_monitor_contended_total",
        "Contended monitor enters since ustat started (JVM).",
        Category::MonitorContended,
        |c| c.monitor_contended,
    ),
    family(
        "ustat_imports_total",
        "Imports (find and load) since ustat started (CPython).",
        Category::Import,
        |c| c.imports,
    ),
    CounterFamily {
        per_unit: 1e9,
        ..family(
            "ustat_import_seconds_total",
            "Time spent in imports since ustat started (CPython, on demand).",
            Category::ImportTime,
            |c| c.import_ns,
        )
    },
    family(
        "ustat_http_requests_total",
        "HTTP requests the runtime parsed (server side) since ustat started.",
        Category::HttpParsed,
        |c| c.http_requests,
    ),
];

/// What the metrics show of one process.
#[derive(Debug, Clone)]
struct Series {
    /// `pid`, `runtime`, `command` and, in a container, `container`.
    labels: Vec<LabelPair>,
    /// Every interval's counts summed.
    sums: Counters,
    /// GCs per kind, summed.
    gc_kinds: BTreeMap<&'static str, u64>,
    /// Pause percentiles since attach.
    pause_total: Option<PauseStats>,
    threads_live: u64,
    /// Calls per method since attach, the top ones (only with a method limit).
    methods: Vec<(String, u64)>,
    /// Categories ustat does not trace in this process: no series for them.
    untraced: Vec<Category>,
    /// Its allocation sizes cannot be trusted (`ProcessSnapshot::bytes_untraced`).
    bytes_untraced: bool,
    exit: Option<Exit>,
}

/// Where an exited process's series are on their way out.
#[derive(Debug, Clone, Copy)]
enum Exit {
    /// Its final counts are not published yet.
    Unpublished,
    /// Published when `scrapes` scrapes had been served, at `at`.
    Published { scrapes: u64, at: Instant },
}

/// Everything the exporter shows, updated from each snapshot.
#[derive(Debug, Default)]
pub struct Exporter {
    series: BTreeMap<u64, Series>,
    /// The series id of each live process, by pid.
    live: HashMap<u32, u64>,
    next_id: u64,
    /// Per-method series: this many methods per process, none when 0.
    method_top: usize,
    /// Whether a first poll has been made (until then the probes are being attached).
    ready: bool,
    lost: Lost,
    warnings: u64,
    probes_attached: u64,
}

impl Exporter {
    pub fn new(method_top: usize) -> Self {
        Self {
            method_top,
            ..Self::default()
        }
    }

    /// Takes in one interval. `scrapes` is how many scrapes have been served so far;
    /// `container_of` names the container of a process seen for the first time.
    pub fn update(
        &mut self,
        snapshot: &Snapshot,
        scrapes: u64,
        now: Instant,
        container_of: impl Fn(u32) -> Option<String>,
    ) {
        // Exited processes whose final counts a scrape has had, or that waited long enough.
        self.series.retain(|_, s| match s.exit {
            Some(Exit::Published { scrapes: then, at }) => {
                scrapes <= then && now.duration_since(at) < KEEP_UNSCRAPED
            }
            _ => true,
        });
        for process in &snapshot.processes {
            let id = self.series_of(process, &container_of);
            let Some(series) = self.series.get_mut(&id) else {
                continue;
            };
            series.take(process, self.method_top);
            if process.exited {
                series.exit = Some(Exit::Unpublished);
                self.live.remove(&process.pid);
            }
        }
        self.ready = true;
        self.lost = snapshot.lost;
        self.warnings = snapshot.warnings.len() as u64;
        self.probes_attached = snapshot.probes_attached;
    }

    /// Notes that what `render` returned is now served, after `scrapes` scrapes.
    pub fn published(&mut self, scrapes: u64, now: Instant) {
        for series in self.series.values_mut() {
            if let Some(Exit::Unpublished) = series.exit {
                series.exit = Some(Exit::Published { scrapes, at: now });
            }
        }
    }

    /// The series id of a process, new for one not seen before.
    fn series_of(
        &mut self,
        process: &ProcessSnapshot,
        container_of: &impl Fn(u32) -> Option<String>,
    ) -> u64 {
        if let Some(&id) = self.live.get(&process.pid) {
            return id;
        }
        // A new process with the pid (and so the labels) of one that exited: the old one's
        // series go now, or the two would be one series twice.
        let labels = labels_of(process, container_of(process.pid));
        self.series
            .retain(|_, s| s.exit.is_none() || s.labels != labels);
        let id = self.next_id;
        self.next_id += 1;
        self.series.insert(
            id,
            Series {
                labels,
                sums: Counters::default(),
                gc_kinds: BTreeMap::new(),
                pause_total: None,
                threads_live: 0,
                methods: Vec::new(),
                untraced: Vec::new(),
                bytes_untraced: false,
                exit: None,
            },
        );
        if !process.exited {
            self.live.insert(process.pid, id);
        }
        id
    }

    /// How many processes have series now (live and exited ones not yet dropped).
    pub fn processes(&self) -> usize {
        self.series.len()
    }

    /// The metric families, in a fixed order; families without a series are left out.
    pub fn render(&self) -> Vec<MetricFamily> {
        let mut families = Vec::new();
        let mut add = |name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>| {
            if !metrics.is_empty() {
                let mut family = MetricFamily::default();
                family.set_name(name.to_string());
                family.set_help(help.to_string());
                family.set_field_type(kind);
                family.set_metric(metrics);
                families.push(family);
            }
        };
        let all = || self.series.values();
        add(
            "ustat_up",
            "1 while ustat traces the process, 0 once it exited (its last values; the series go after a scrape).",
            MetricType::GAUGE,
            all()
                .map(|s| gauge(&s.labels, &[], if s.exit.is_some() { 0.0 } else { 1.0 }))
                .collect(),
        );
        add(
            "ustat_gc_total",
            "Garbage collections that ended, by kind (gen0-2, minor, major), since ustat started.",
            MetricType::COUNTER,
            all()
                .filter(|s| s.traces(Category::Gc))
                .flat_map(|s| {
                    s.gc_kinds
                        .iter()
                        .map(|(kind, n)| counter(&s.labels, &[("kind", kind)], *n as f64))
                })
                .collect(),
        );
        add(
            "ustat_gc_pause_seconds",
            "GC pauses: count and sum since ustat started; quantiles (0.5, 0.99, 1 = the longest) since ustat attached to the process, from an HdrHistogram (3 significant digits).",
            MetricType::SUMMARY,
            all()
                .filter(|s| s.traces(Category::Gc))
                .map(pause_summary)
                .collect(),
        );
        for family in COUNTERS {
            add(
                family.name,
                family.help,
                MetricType::COUNTER,
                all()
                    .filter(|s| s.traces(family.category))
                    // Sizes a runtime cannot be trusted with: no byte series at all.
                    .filter(|s| !(family.name == BYTES_FAMILY && s.bytes_untraced))
                    .map(|s| {
                        counter(
                            &s.labels,
                            &[],
                            (family.value)(&s.sums) as f64 / family.per_unit,
                        )
                    })
                    .collect(),
            );
        }
        add(
            "ustat_threads_live",
            "OS threads of the process at the end of the last interval.",
            MetricType::GAUGE,
            all()
                .filter(|s| s.exit.is_none())
                .map(|s| gauge(&s.labels, &[], s.threads_live as f64))
                .collect(),
        );
        add(
            "ustat_method_calls_by_method_total",
            "Calls of each of the process's most called methods since ustat attached (--prometheus-methods N keeps the top N).",
            MetricType::COUNTER,
            all()
                .filter(|s| s.traces(Category::MethodCall))
                .flat_map(|s| {
                    s.methods
                        .iter()
                        .map(|(method, n)| counter(&s.labels, &[("method", method)], *n as f64))
                })
                .collect(),
        );
        self.render_health(&mut add);
        families
    }

    /// ustat's own state: attached yet, processes traced, warnings, what the kernel lost.
    fn render_health(&self, add: &mut impl FnMut(&str, &str, MetricType, Vec<Metric>)) {
        let live = self.series.values().filter(|s| s.exit.is_none()).count();
        add(
            "ustat_ready",
            "1 once ustat has attached its probes and read the kernel once; 0 while it attaches.",
            MetricType::GAUGE,
            vec![gauge(&[], &[], if self.ready { 1.0 } else { 0.0 })],
        );
        add(
            "ustat_processes_traced",
            "Runtime processes ustat traces now.",
            MetricType::GAUGE,
            vec![gauge(&[], &[], live as f64)],
        );
        add(
            "ustat_probes_attached",
            "Probe sites ustat has attached now (USDT sites and function entries and returns, in every binary).",
            MetricType::GAUGE,
            vec![gauge(&[], &[], self.probes_attached as f64)],
        );
        add(
            "ustat_warnings_total",
            "Problems ustat reported since it started: a probe the kernel refused, a binary it could not read, a process it left out.",
            MetricType::COUNTER,
            vec![counter(&[], &[], self.warnings as f64)],
        );
        let lost = &self.lost;
        add(
            "ustat_lost_events_total",
            "Events the kernel could not record since ustat started, or that no process's series holds (processes that exited before ustat listed them, whose runtime it could not tell), for the whole host, by reason.",
            MetricType::COUNTER,
            [
                ("ring_full", lost.ring_full),
                ("map_full", lost.map_full),
                ("too_deep", lost.too_deep),
                ("unlisted", lost.unlisted_events),
            ]
            .into_iter()
            .map(|(reason, n)| counter(&[], &[("reason", reason)], n as f64))
            .collect(),
        );
        add(
            "ustat_bad_values_total",
            "Values a runtime passed that cannot be (an allocation size below 0 or from 1 GiB up); their hits are counted.",
            MetricType::COUNTER,
            vec![counter(&[], &[], lost.bad_values as f64)],
        );
    }
}

impl Series {
    fn traces(&self, category: Category) -> bool {
        !self.untraced.contains(&category)
    }

    /// Adds one interval of `process`.
    fn take(&mut self, process: &ProcessSnapshot, method_top: usize) {
        let i = &process.interval;
        let sums = &mut self.sums;
        sums.gc_count += i.gc_count;
        sums.gc_pause_ns += i.gc_pause_ns;
        sums.class_loaded += i.class_loaded;
        sums.class_unloaded += i.class_unloaded;
        sums.threads_started += i.threads_started;
        sums.threads_stopped += i.threads_stopped;
        sums.objects_allocated += i.objects_allocated;
        sums.bytes_allocated += i.bytes_allocated;
        sums.method_calls += i.method_calls;
        sums.monitor_contended += i.monitor_contended;
        sums.imports += i.imports;
        sums.import_ns += i.import_ns;
        sums.http_requests += i.http_requests;
        for kind in &process.gc_kinds {
            *self.gc_kinds.entry(kind.kind).or_default() += kind.interval;
        }
        if process.pause_total.is_some() {
            self.pause_total = process.pause_total;
        }
        self.threads_live = process.threads_live;
        self.untraced = Category::ALL
            .into_iter()
            .filter(|c| process.untraced(c.raw()))
            .collect();
        self.bytes_untraced = process.bytes_untraced();
        if method_top > 0 {
            let mut methods: Vec<(String, u64)> = process
                .top_methods
                .iter()
                .map(|m| (m.name.clone(), m.total))
                .collect();
            methods.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            methods.truncate(method_top);
            self.methods = methods;
        }
    }
}

fn labels_of(process: &ProcessSnapshot, container: Option<String>) -> Vec<LabelPair> {
    let mut labels = vec![
        label("pid", &process.pid.to_string()),
        label("runtime", process.runtime),
        label("command", &process.command),
    ];
    if let Some(container) = container {
        labels.push(label("container", &container));
    }
    labels
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_string());
    pair.set_value(value.to_string());
    pair
}

fn metric(labels: &[LabelPair], extra: &[(&str, &str)]) -> Metric {
    let mut metric = Metric::default();
    let mut all = labels.to_vec();
    all.extend(extra.iter().map(|(n, v)| label(n, v)));
    metric.set_label(all);
    metric
}

fn counter(labels: &[LabelPair], extra: &[(&str, &str)], value: f64) -> Metric {
    let mut metric = metric(labels, extra);
    let mut counter = Counter::default();
    counter.set_value(value);
    metric.set_counter(counter);
    metric
}

fn gauge(labels: &[LabelPair], extra: &[(&str, &str)], value: f64) -> Metric {
    let mut metric = metric(labels, extra);
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    metric.set_gauge(gauge);
    metric
}

fn pause_summary(series: &Series) -> Metric {
    let mut metric = metric(&series.labels, &[]);
    let mut summary = Summary::default();
    summary.set_sample_count(series.sums.gc_count);
    summary.set_sample_sum(series.sums.gc_pause_ns as f64 / 1e9);
    if let Some(pause) = series.pause_total.filter(|p| p.count > 0) {
        let quantiles = [
            (0.5, pause.p50_ns),
            (0.99, pause.p99_ns),
            (1.0, pause.max_ns),
        ]
        .into_iter()
        .map(|(q, ns)| {
            let mut quantile = Quantile::default();
            quantile.set_quantile(q);
            quantile.set_value(ns as f64 / 1e9);
            quantile
        })
        .collect();
        summary.set_quantile(quantiles);
    }
    metric.set_summary(summary);
    metric
}

/// The families in the Prometheus text format (version 0.0.4).
pub fn encode(families: &[MetricFamily]) -> String {
    // Encoding into a String fails only on a family without a metric or a name, which
    // `render` never makes.
    prometheus::TextEncoder::new()
        .encode_to_string(families)
        .unwrap_or_else(|e| format!("# ustat could not encode its metrics: {e}\n"))
}

/// The `Content-Type` of `encode`'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::snapshot::{GcKind, Ranked};

    fn process(pid: u32, exited: bool) -> ProcessSnapshot {
        ProcessSnapshot {
            sampled: None,
            pid,
            runtime: "python",
            command: "python3.11".into(),
            exited,
            interval: Counters::default(),
            total: Counters::default(),
            pause: None,
            pause_total: None,
            gc_kinds: Vec::new(),
            threads_live: 1,
            threads: Vec::new(),
            top_methods: Vec::new(),
            top_allocations: Vec::new(),
            top_monitors: Vec::new(),
            top_exceptions: Vec::new(),
            pools: Vec::new(),
            collectors: Vec::new(),
            missing: Vec::new(),
            refused: Vec::new(),
            traced: vec![Category::Gc.raw(), Category::ThreadStarted.raw()],
        }
    }

    fn snapshot(processes: Vec<ProcessSnapshot>) -> Snapshot {
        let mut snapshot = Snapshot::empty(SystemTime::UNIX_EPOCH, Duration::from_secs(1));
        snapshot.processes = processes;
        snapshot
    }

    fn text(exporter: &Exporter) -> String {
        encode(&exporter.render())
    }

    fn no_container(_: u32) -> Option<String> {
        None
    }

    fn with_gcs(pid: u32, gen2: u64) -> ProcessSnapshot {
        let mut p = process(pid, false);
        p.interval.gc_count = gen2;
        p.interval.gc_pause_ns = gen2 * 1_500_000;
        p.gc_kinds = vec![GcKind {
            kind: "gen2",
            interval: gen2,
            total: 0,
            pause_ns_total: 0,
            collected_total: 0,
        }];
        p
    }

    #[test]
    fn counters_sum_every_interval_and_untraced_categories_are_absent() {
        let mut exporter = Exporter::new(0);
        let now = Instant::now();
        exporter.update(&snapshot(vec![with_gcs(7, 2)]), 0, now, no_container);
        exporter.update(&snapshot(vec![with_gcs(7, 3)]), 0, now, no_container);
        let text = text(&exporter);
        let labels = r#"pid="7",runtime="python",command="python3.11""#;
        for line in [
            format!("ustat_up{{{labels}}} 1"),
            format!("ustat_gc_total{{{labels},kind=\"gen2\"}} 5"),
            format!("ustat_gc_pause_seconds_count{{{labels}}} 5"),
            format!("ustat_gc_pause_seconds_sum{{{labels}}} 0.0075"),
            // Traced, and none happened: a real zero.
            format!("ustat_threads_started_total{{{labels}}} 0"),
            "ustat_ready 1".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        // Not traced in this process: no series at all, not a 0.
        for absent in [
            "ustat_classes_loaded_total",
            "ustat_imports_total",
            "ustat_method_calls_total",
        ] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
    }

    #[test]
    fn a_category_the_settings_leave_out_is_absent_too() {
        let mut exporter = Exporter::new(0);
        let mut p = with_gcs(7, 1);
        p.missing = vec![crate::snapshot::Missing {
            categories: vec![Category::Gc.raw()],
            text: "off".into(),
        }];
        exporter.update(&snapshot(vec![p]), 0, Instant::now(), no_container);
        assert!(!text(&exporter).contains("ustat_gc"));
    }

    #[test]
    fn exited_processes_go_once_a_scrape_has_served_their_last_values() {
        let mut exporter = Exporter::new(0);
        let now = Instant::now();
        exporter.update(&snapshot(vec![with_gcs(7, 1)]), 0, now, no_container);
        exporter.published(0, now);
        let mut last = with_gcs(7, 1);
        last.exited = true;
        exporter.update(&snapshot(vec![last]), 3, now, no_container);
        exporter.published(3, now);
        let text = text(&exporter);
        assert!(text.contains(r#"ustat_up{pid="7",runtime="python",command="python3.11"} 0"#));
        assert!(text.contains(r#"kind="gen2"} 2"#), "{text}");
        assert!(!text.contains("ustat_threads_live{"), "{text}");
        // No scrape since: they stay.
        exporter.update(&snapshot(vec![]), 3, now, no_container);
        assert_eq!(exporter.processes(), 1);
        // A scrape served them: they go.
        exporter.update(&snapshot(vec![]), 4, now, no_container);
        assert_eq!(exporter.processes(), 0);
        assert!(!super::encode(&exporter.render()).contains("pid="));
        // Nobody scrapes: they go all the same after a while.
        exporter.update(&snapshot(vec![process(8, true)]), 4, now, no_container);
        exporter.published(4, now);
        exporter.update(&snapshot(vec![]), 4, now + KEEP_UNSCRAPED, no_container);
        assert_eq!(exporter.processes(), 0);
    }

    #[test]
    fn a_pid_taken_by_a_new_process_is_one_series() {
        let mut exporter = Exporter::new(0);
        let now = Instant::now();
        exporter.update(&snapshot(vec![with_gcs(7, 4)]), 0, now, no_container);
        // The old process's last row comes first, then the new one with its pid.
        let mut last = with_gcs(7, 1);
        last.exited = true;
        exporter.update(&snapshot(vec![last, with_gcs(7, 1)]), 0, now, no_container);
        let text = text(&exporter);
        let up: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ustat_up{"))
            .collect();
        assert_eq!(
            up,
            [r#"ustat_up{pid="7",runtime="python",command="python3.11"} 1"#]
        );
        assert!(text.contains(r#"kind="gen2"} 1"#), "{text}");
    }

    #[test]
    fn containers_are_a_label_and_methods_only_the_top_n() {
        let mut exporter = Exporter::new(2);
        let mut p = process(9, false);
        p.traced.push(Category::MethodCall.raw());
        p.top_methods = ["a", "b", "c"]
            .iter()
            .zip([5, 30, 20])
            .map(|(name, total)| Ranked {
                name: (*name).into(),
                total,
                ..Ranked::default()
            })
            .collect();
        exporter.update(&snapshot(vec![p]), 0, Instant::now(), |_| {
            Some("3f4e2b1c9a8d".into())
        });
        let text = text(&exporter);
        let labels = r#"pid="9",runtime="python",command="python3.11",container="3f4e2b1c9a8d""#;
        assert!(text.contains(&format!("ustat_up{{{labels}}} 1")), "{text}");
        let methods: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ustat_method_calls_by_method_total{"))
            .collect();
        assert_eq!(
            methods,
            [
                format!("ustat_method_calls_by_method_total{{{labels},method=\"b\"}} 30"),
                format!("ustat_method_calls_by_method_total{{{labels},method=\"c\"}} 20"),
            ]
        );
    }

    #[test]
    fn before_the_first_poll_only_health_is_shown() {
        let text = text(&Exporter::new(0));
        assert!(text.lines().any(|l| l == "ustat_ready 0"), "{text}");
        assert!(!text.contains("pid="));
    }

    #[test]
    fn untrusted_names_are_escaped_in_labels() {
        let mut exporter = Exporter::new(0);
        let mut p = process(5, false);
        p.command = "a\"b\\c\nd".into();
        exporter.update(&snapshot(vec![p]), 0, Instant::now(), no_container);
        assert!(text(&exporter).contains(r#"command="a\"b\\c\nd""#));
    }
}
