//! What each category means, in one place: the number `ustat-common` gives it (kernel and
//! userspace share those), the counters it adds to, its CSV columns, its column in the
//! dashboard's table and who fills it. Every match here is exhaustive, so a new category
//! cannot be half-added: the compiler asks for each of these.

use ustat_common::category as raw;

use crate::snapshot::Counters;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Gc,
    ClassLoaded,
    ClassUnloaded,
    ThreadStarted,
    ThreadStopped,
    MethodCall,
    ObjectAlloc,
    MonitorContended,
    PoolGcBegin,
    PoolGcEnd,
    Import,
    HttpParsed,
    MethodTime,
    CallPath,
    Exception,
    GcSweep,
    ExceptionCaught,
    RuntimeError,
    Request,
    ImportTime,
}

/// Who makes the kernel count a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilledBy {
    /// A runtime's features (`ustat_runtimes::Feature::categories`): where the runtime or
    /// its binary has no such probe, the view shows `–` and says why.
    Runtime,
    /// The flow programs on a runtime's method entry and return probes.
    FlowPrograms,
}

impl Category {
    pub const ALL: [Self; 20] = [
        Self::Gc,
        Self::ClassLoaded,
        Self::ClassUnloaded,
        Self::ThreadStarted,
        Self::ThreadStopped,
        Self::MethodCall,
        Self::ObjectAlloc,
        Self::MonitorContended,
        Self::PoolGcBegin,
        Self::PoolGcEnd,
        Self::Import,
        Self::HttpParsed,
        Self::MethodTime,
        Self::CallPath,
        Self::Exception,
        Self::GcSweep,
        Self::ExceptionCaught,
        Self::RuntimeError,
        Self::Request,
        Self::ImportTime,
    ];

    /// Its number in the kernel's keys.
    pub const fn raw(self) -> u32 {
        match self {
            Self::Gc => raw::GC,
            Self::ClassLoaded => raw::CLASS_LOADED,
            Self::ClassUnloaded => raw::CLASS_UNLOADED,
            Self::ThreadStarted => raw::THREAD_STARTED,
            Self::ThreadStopped => raw::THREAD_STOPPED,
            Self::MethodCall => raw::METHOD_CALL,
            Self::ObjectAlloc => raw::OBJECT_ALLOC,
            Self::MonitorContended => raw::MONITOR_CONTENDED,
            Self::PoolGcBegin => raw::POOL_GC_BEGIN,
            Self::PoolGcEnd => raw::POOL_GC_END,
            Self::Import => raw::IMPORT,
            Self::HttpParsed => raw::HTTP_PARSED,
            Self::MethodTime => raw::METHOD_TIME,
            Self::CallPath => raw::CALL_PATH,
            Self::Exception => raw::EXCEPTION,
            Self::GcSweep => raw::GC_SWEEP,
            Self::ExceptionCaught => raw::EXCEPTION_CAUGHT,
            Self::RuntimeError => raw::RUNTIME_ERROR,
            Self::Request => raw::REQUEST,
            Self::ImportTime => raw::IMPORT_TIME,
        }
    }

    /// The category with this number; `None` for a number no category has.
    pub fn from_raw(number: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.raw() == number)
    }

    /// Adds `count` events whose values summed to `sum` (nanoseconds for spans, bytes for
    /// allocations) to the counters this category fills.
    pub fn add(self, counters: &mut Counters, count: u64, sum: u64) {
        match self {
            Self::Gc => {
                counters.gc_count += count;
                counters.gc_pause_ns += sum;
            }
            Self::ClassLoaded => counters.class_loaded += count,
            Self::ClassUnloaded => counters.class_unloaded += count,
            Self::ThreadStarted => counters.threads_started += count,
            Self::ThreadStopped => counters.threads_stopped += count,
            Self::MethodCall => counters.method_calls += count,
            Self::ObjectAlloc => {
                counters.objects_allocated += count;
                counters.bytes_allocated += sum;
            }
            Self::MonitorContended => counters.monitor_contended += count,
            Self::Import => {
                counters.imports += count;
                counters.import_ns += sum;
            }
            Self::HttpParsed => counters.http_requests += count,
            Self::Exception => counters.exceptions += count,
            Self::GcSweep => {
                counters.gc_sweeps += count;
                counters.gc_sweep_ns += sum;
            }
            Self::ExceptionCaught => counters.exceptions_caught += count,
            Self::RuntimeError => counters.errors += count,
            Self::Request => {
                counters.requests += count;
                counters.request_ns += sum;
            }
            // Counted by `Import` (the module loads); only the time is added here.
            Self::ImportTime => counters.import_ns += sum,
            // Pools become `PoolUsage`, method times `Timing`, paths folded stacks: no counter.
            Self::PoolGcBegin | Self::PoolGcEnd | Self::MethodTime | Self::CallPath => {}
        }
    }

    /// The count of events the views show for it (the table's rate, the charts); `None`
    /// for categories that are not a count.
    pub fn count(self, counters: &Counters) -> Option<u64> {
        match self {
            Self::Gc => Some(counters.gc_count),
            Self::ClassLoaded => Some(counters.class_loaded),
            Self::ClassUnloaded => Some(counters.class_unloaded),
            Self::ThreadStarted => Some(counters.threads_started),
            Self::ThreadStopped => Some(counters.threads_stopped),
            Self::MethodCall => Some(counters.method_calls),
            Self::ObjectAlloc => Some(counters.objects_allocated),
            Self::MonitorContended => Some(counters.monitor_contended),
            Self::Import => Some(counters.imports),
            Self::HttpParsed => Some(counters.http_requests),
            Self::Exception => Some(counters.exceptions),
            Self::GcSweep => Some(counters.gc_sweeps),
            Self::ExceptionCaught => Some(counters.exceptions_caught),
            Self::RuntimeError => Some(counters.errors),
            Self::Request => Some(counters.requests),
            Self::ImportTime => None,
            Self::PoolGcBegin | Self::PoolGcEnd | Self::MethodTime | Self::CallPath => None,
        }
    }

    /// Its columns in the main CSV (`export::COLUMNS`); the GC kinds' columns come from the
    /// runtime (`gc_kinds`).
    pub const fn csv_columns(self) -> &'static [&'static str] {
        match self {
            Self::Gc => &[
                "gc_count",
                "gc_pause_ms_total",
                "gc_pause_ms_p99",
                "gc_pause_ms_max",
                "gc_collections",
                "gc_pauses",
            ],
            Self::ClassLoaded => &["class_loaded"],
            Self::ClassUnloaded => &["class_unloaded"],
            Self::ThreadStarted => &["threads_started"],
            Self::ThreadStopped => &["threads_stopped"],
            Self::MethodCall => &["method_calls"],
            Self::ObjectAlloc => &["objects_allocated", "bytes_allocated"],
            Self::MonitorContended => &["monitor_contended"],
            Self::Import => &["imports", "import_ms_total"],
            Self::HttpParsed => &["http_requests"],
            Self::Exception => &["exceptions"],
            Self::GcSweep => &["gc_sweep_ms_total"],
            Self::ExceptionCaught => &["exceptions_caught"],
            Self::RuntimeError => &["errors"],
            Self::Request => &["requests", "request_ms_total"],
            // `import_ms_total`, claimed by `Import` (see `export`).
            Self::ImportTime => &[],
            // In the --methods CSV (MethodTime), or not in a CSV.
            Self::PoolGcBegin | Self::PoolGcEnd | Self::MethodTime | Self::CallPath => &[],
        }
    }

    /// Its rate column in the dashboard's table, if it has one: title and width.
    pub const fn table_column(self) -> Option<(&'static str, u16)> {
        match self {
            Self::Gc => Some(("GC/s", 7)),
            Self::ClassLoaded => Some(("CLASS/s", 8)),
            Self::ThreadStarted => Some(("THREAD/s", 9)),
            Self::ObjectAlloc => Some(("ALLOC/s", 8)),
            Self::MethodCall => Some(("CALLS/s", 9)),
            Self::ClassUnloaded
            | Self::ThreadStopped
            | Self::MonitorContended
            | Self::PoolGcBegin
            | Self::PoolGcEnd
            | Self::Import
            | Self::HttpParsed
            | Self::MethodTime
            | Self::CallPath
            | Self::Exception
            | Self::GcSweep
            | Self::ExceptionCaught
            | Self::RuntimeError
            | Self::Request
            | Self::ImportTime => None,
        }
    }

    /// Its series in the detail view's charts (oldest to newest interval), if it has one.
    pub const fn chart_label(self) -> Option<&'static str> {
        match self {
            Self::Gc => Some("GC"),
            Self::ObjectAlloc => Some("alloc"),
            Self::MethodCall => Some("calls"),
            Self::ClassLoaded => Some("classes"),
            Self::ThreadStarted => Some("threads"),
            Self::ClassUnloaded
            | Self::ThreadStopped
            | Self::MonitorContended
            | Self::PoolGcBegin
            | Self::PoolGcEnd
            | Self::Import
            | Self::HttpParsed
            | Self::MethodTime
            | Self::CallPath
            | Self::Exception
            | Self::GcSweep
            | Self::ExceptionCaught
            | Self::RuntimeError
            | Self::Request
            | Self::ImportTime => None,
        }
    }

    pub const fn filled_by(self) -> FilledBy {
        match self {
            Self::MethodTime | Self::CallPath => FilledBy::FlowPrograms,
            Self::Gc
            | Self::ClassLoaded
            | Self::ClassUnloaded
            | Self::ThreadStarted
            | Self::ThreadStopped
            | Self::MethodCall
            | Self::ObjectAlloc
            | Self::MonitorContended
            | Self::PoolGcBegin
            | Self::PoolGcEnd
            | Self::Import
            | Self::HttpParsed
            | Self::Exception
            | Self::GcSweep
            | Self::ExceptionCaught
            | Self::RuntimeError
            | Self::Request
            | Self::ImportTime => FilledBy::Runtime,
        }
    }
}

/// The detail view's chart series, top to bottom.
pub const CHARTED: [Category; 5] = [
    Category::Gc,
    Category::ObjectAlloc,
    Category::MethodCall,
    Category::ClassLoaded,
    Category::ThreadStarted,
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn numbers_are_distinct_and_round_trip() {
        let numbers: HashSet<u32> = Category::ALL.iter().map(|c| c.raw()).collect();
        assert_eq!(numbers.len(), Category::ALL.len());
        for category in Category::ALL {
            assert_eq!(Category::from_raw(category.raw()), Some(category));
        }
        assert_eq!(Category::from_raw(0), None);
    }

    /// Every CSV column a category claims is in the header, once; the header's other
    /// columns are the process's identity, GC kinds, live threads, losses and exit.
    #[test]
    fn csv_columns_are_the_documented_ones() {
        let claimed: Vec<&str> = Category::ALL
            .iter()
            .flat_map(|c| c.csv_columns().iter().copied())
            .collect();
        let unique: HashSet<&str> = claimed.iter().copied().collect();
        assert_eq!(unique.len(), claimed.len(), "a column claimed twice");
        let others = [
            "timestamp",
            "interval_s",
            "pid",
            "runtime",
            "command",
            "threads_live",
            "gc_gen0",
            "gc_gen1",
            "gc_gen2",
            "gc_minor",
            "gc_major",
            "exited",
            // Events the host lost in the interval (not a category's).
            "lost_events",
        ];
        for column in crate::export::COLUMNS {
            assert!(
                unique.contains(column) || others.contains(column),
                "{column}: no category claims it"
            );
        }
        for column in &claimed {
            assert!(crate::export::COLUMNS.contains(column), "{column}");
        }
    }

    /// What a runtime can declare is what `FilledBy::Runtime` says.
    #[test]
    fn runtimes_declare_only_their_categories() {
        for runtime in ustat_runtimes::ALL {
            for feature in runtime.features {
                for &number in feature.categories {
                    let category = Category::from_raw(number).expect("a known category");
                    assert_eq!(category.filled_by(), FilledBy::Runtime, "{category:?}");
                }
            }
        }
    }

    #[test]
    fn counts_read_back_what_add_added() {
        for category in Category::ALL {
            let mut counters = Counters::default();
            category.add(&mut counters, 3, 1000);
            assert_eq!(
                category.count(&counters),
                category.count(&Counters::default()).map(|_| 3),
                "{category:?}"
            );
        }
    }
}
