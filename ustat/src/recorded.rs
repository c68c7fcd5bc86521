//! A source that replays recorded intervals and calls, so the real dashboard loop and the
//! real CSV loop run in tests without root or a kernel (the tier between unit tests and the
//! end-to-end tests). Not a user feature: ustat has no `--replay` (see the README, "Tests").
//!
//! The format is JSON lines; each line is one object with one key:
//!
//! ```text
//! {"interval": SNAPSHOT}                      what the next poll() returns
//! {"calls": {"lines": [FLOW_LINE...], "dropped": N}}
//!                                             what the next take_flow() returns while a
//!                                             flow is watched (dropped: lost so far, optional)
//! {"label": {"pid": P, "method": M, "name": "Tree.a"}}
//!                                             a method's name, by its flow hash
//! ```
//!
//! `SNAPSHOT` is `Snapshot` as serde writes it: `taken_at` in RFC 3339, `interval` as
//! humantime (`1s`, `400ms`), every counter optional (0), `traced` optional (every category
//! the runtime has). Lines that are empty or start with `#` are comments.
//! `tests/fixtures/recorded/` has examples.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::{
    flow::{FlowLine, Kind},
    snapshot::{CallSource, Snapshot, Source},
};

/// One line of a recording.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Record {
    Interval(Box<Snapshot>),
    Calls(Calls),
    Label(Label),
}

/// A batch of call lines, as one `take_flow` returns them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calls {
    pub lines: Vec<FlowLine>,
    /// Calls lost so far, as `flow_dropped` reports them after this batch.
    #[serde(default)]
    pub dropped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub pid: u32,
    pub method: u64,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("line {line} of the recording: {source}")]
    Line {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("the recording has no more intervals (after {polled})")]
    Exhausted { polled: usize },
}

/// Recorded intervals and calls, handed out in order.
#[derive(Debug, Default)]
pub struct RecordedSource {
    intervals: VecDeque<Snapshot>,
    calls: VecDeque<Calls>,
    labels: HashMap<(u32, u64), String>,
    polled: usize,
    /// The process whose calls are delivered, and the filter last asked for.
    watched: Option<u32>,
    filter: (String, String),
    dropped: u64,
    /// Every call delivered, per process, for `folded`.
    delivered: HashMap<u32, Vec<FlowLine>>,
    /// The command and runtime of each process seen, for `title`.
    seen: HashMap<u32, (String, &'static str)>,
}

impl RecordedSource {
    /// Reads a recording (JSON lines, see the module's documentation).
    pub fn parse(text: &str) -> Result<Self, RecordingError> {
        let mut source = Self::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let record: Record =
                serde_json::from_str(line).map_err(|source| RecordingError::Line {
                    line: index + 1,
                    source,
                })?;
            source.push(record);
        }
        Ok(source)
    }

    /// Adds a record at the end.
    pub fn push(&mut self, record: Record) {
        match record {
            Record::Interval(mut snapshot) => {
                for process in &mut snapshot.processes {
                    if process.traced.is_empty() {
                        process.traced = runtime_categories(process.runtime);
                    }
                }
                self.intervals.push_back(*snapshot);
            }
            Record::Calls(calls) => self.calls.push_back(calls),
            Record::Label(label) => {
                self.labels.insert((label.pid, label.method), label.name);
            }
        }
    }

    /// Intervals not polled yet.
    pub fn intervals_left(&self) -> usize {
        self.intervals.len()
    }

    /// The flow being watched, and its (class, method) filter.
    pub fn watched(&self) -> Option<(u32, &str, &str)> {
        self.watched
            .map(|pid| (pid, self.filter.0.as_str(), self.filter.1.as_str()))
    }
}

/// Every category the runtime's features fill.
fn runtime_categories(runtime: &str) -> Vec<u32> {
    ustat_runtimes::by_name(runtime)
        .map(|r| {
            r.features
                .iter()
                .flat_map(|f| f.categories.iter().copied())
                .collect()
        })
        .unwrap_or_default()
}

impl Source for RecordedSource {
    fn poll(&mut self) -> anyhow::Result<Snapshot> {
        let snapshot = self
            .intervals
            .pop_front()
            .ok_or(RecordingError::Exhausted {
                polled: self.polled,
            })?;
        self.polled += 1;
        for p in &snapshot.processes {
            self.seen.insert(p.pid, (p.command.clone(), p.runtime));
        }
        Ok(snapshot)
    }
}

impl CallSource for RecordedSource {
    fn watch_flow(&mut self, pid: u32) -> anyhow::Result<()> {
        match self.seen.get(&pid) {
            Some(_) => {
                self.watched = Some(pid);
                Ok(())
            }
            None => anyhow::bail!("process {pid} is not traced"),
        }
    }

    fn unwatch_flow(&mut self) -> anyhow::Result<()> {
        self.watched = None;
        Ok(())
    }

    /// Remembered (see `watched`), not applied: the kernel filters, and a recording holds
    /// what it sent.
    fn filter_flow(&mut self, class: &str, method: &str) -> anyhow::Result<()> {
        self.filter = (class.to_string(), method.to_string());
        Ok(())
    }

    fn take_flow(&mut self) -> Vec<FlowLine> {
        let Some(pid) = self.watched else {
            return Vec::new();
        };
        let Some(calls) = self.calls.pop_front() else {
            return Vec::new();
        };
        self.dropped = self.dropped.max(calls.dropped);
        let lines: Vec<FlowLine> = calls.lines.into_iter().filter(|l| l.pid == pid).collect();
        self.delivered
            .entry(pid)
            .or_default()
            .extend(lines.iter().copied());
        lines
    }

    fn flow_dropped(&self) -> anyhow::Result<u64> {
        Ok(self.dropped)
    }

    fn method_label(&self, pid: u32, method: u64) -> String {
        self.labels
            .get(&(pid, method))
            .cloned()
            .unwrap_or_else(|| "?".to_string())
    }

    /// The call paths of the calls delivered so far, counted by entry.
    fn folded(&mut self, pid: u32) -> anyhow::Result<Vec<String>> {
        let mut stacks: HashMap<u32, Vec<String>> = HashMap::new();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for line in self.delivered.get(&pid).into_iter().flatten() {
            let stack = stacks.entry(line.tid).or_default();
            stack.truncate(line.depth as usize);
            if line.kind == Kind::Entry {
                stack.push(self.method_label(pid, line.method).replace(';', ":"));
                *counts.entry(stack.join(";")).or_default() += 1;
            }
        }
        Ok(counts
            .into_iter()
            .map(|(path, calls)| format!("{path} {calls}"))
            .collect())
    }

    fn title(&self, pid: u32) -> String {
        let (command, runtime) = self
            .seen
            .get(&pid)
            .map_or(("?", "?"), |(c, r)| (c.as_str(), *r));
        format!("{command} (PID {pid}, {runtime})")
    }

    /// A recording has no probes to turn on.
    fn trace_on_demand(&mut self, _pid: u32) -> Vec<&'static str> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::tests::{process, snapshot};

    #[test]
    fn a_written_recording_reads_back_the_same() {
        let mut first = snapshot(vec![process(4242, "jvm", "java", 3, 10)]);
        first.processes[0].missing = vec![crate::snapshot::Missing {
            categories: vec![ustat_common::category::METHOD_CALL],
            text: "method calls: not traced".into(),
        }];
        first.lost.ring_full = 7;
        let text = serde_json::to_string(&Record::Interval(Box::new(first.clone()))).unwrap();
        let mut source = RecordedSource::parse(&text).unwrap();
        assert_eq!(source.poll().unwrap(), first);
        let err = source.poll().unwrap_err();
        assert_eq!(
            err.to_string(),
            "the recording has no more intervals (after 1)"
        );
    }

    #[test]
    fn a_bad_line_names_its_number() {
        let text = "# a comment\n\n{\"interval\": {\"taken_at\": \"x\", \"interval\": \"1s\"}}";
        let err = RecordedSource::parse(text).unwrap_err();
        assert!(
            err.to_string().starts_with("line 3 of the recording:"),
            "{err}"
        );
    }

    #[test]
    fn calls_go_to_the_watched_process_and_fold_into_paths() {
        let text = r#"
{"interval": {"taken_at": "2026-11-30T12:00:01Z", "interval": "1s", "processes": [{"pid": 7, "runtime": "python", "command": "app"}]}}
{"label": {"pid": 7, "method": 1, "name": "main"}}
{"label": {"pid": 7, "method": 2, "name": "work"}}
{"calls": {"lines": [{"seq": 0, "ts_ns": 10, "pid": 7, "tid": 7, "kind": "entry", "depth": 0, "method": 1, "duration_ns": 0},{"seq": 1, "ts_ns": 11, "pid": 7, "tid": 7, "kind": "entry", "depth": 1, "method": 2, "duration_ns": 0},{"seq": 2, "ts_ns": 12, "pid": 7, "tid": 7, "kind": "return", "depth": 1, "method": 2, "duration_ns": 1},{"seq": 3, "ts_ns": 13, "pid": 7, "tid": 7, "kind": "entry", "depth": 1, "method": 2, "duration_ns": 0},{"seq": 4, "ts_ns": 14, "pid": 8, "tid": 8, "kind": "entry", "depth": 0, "method": 2, "duration_ns": 0}], "dropped": 2}}
"#;
        let mut source = RecordedSource::parse(text).unwrap();
        assert!(source.watch_flow(7).is_err(), "not polled yet: not traced");
        let polled = source.poll().unwrap();
        assert_eq!(
            polled.processes[0].traced,
            runtime_categories("python"),
            "traced defaults to the runtime's categories"
        );
        source.watch_flow(7).unwrap();
        assert_eq!(source.title(7), "app (PID 7, python)");
        assert_eq!(source.take_flow().len(), 4);
        assert_eq!(source.flow_dropped().unwrap(), 2);
        assert_eq!(source.folded(7).unwrap(), ["main 1", "main;work 2"]);
    }
}
