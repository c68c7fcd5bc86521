//! `--samples FILE`: per interval, a row per process and sampled function, with the same
//! CSV safety as the main file (sanitised, never starting a formula).

use std::io::{self, Write};

use serde::Serialize;

use crate::{
    export::timestamp,
    samples::{self, FunctionSamples},
    sanitize,
    snapshot::{FrameKind, Snapshot},
};

/// The header, in order.
pub const COLUMNS: &[&str] = &[
    "timestamp",
    "interval_s",
    "pid",
    "runtime",
    "function",
    "file",
    "line",
    "self_samples",
    "total_samples",
];

/// What samples not in any named stack are called (a layout ustat cannot read, or one not
/// found yet).
pub const UNREADABLE: &str = "(unreadable)";

#[derive(Debug, Serialize)]
struct Row<'a> {
    timestamp: &'a str,
    interval_s: &'a str,
    pid: u32,
    runtime: &'a str,
    function: String,
    file: String,
    /// Empty where unknown.
    line: Option<u32>,
    self_samples: u64,
    total_samples: u64,
}

pub struct SamplesCsvWriter<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> SamplesCsvWriter<W> {
    pub fn new(out: W) -> io::Result<Self> {
        Ok(Self {
            inner: crate::export::with_header(out, COLUMNS)?,
        })
    }

    /// The rows of one interval: every function with samples in it, most self samples
    /// first, and one `(unreadable)` row for samples whose stack could not be named.
    pub fn write(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let timestamp = timestamp(snapshot.taken_at);
        let interval_s = crate::export::interval_cell(snapshot);
        for process in &snapshot.processes {
            let Some(sampled) = &process.sampled else {
                continue;
            };
            let row = |function: String, file: String, line, self_samples, total_samples| Row {
                timestamp: &timestamp,
                interval_s: &interval_s,
                pid: process.pid,
                runtime: process.runtime,
                function,
                file,
                line,
                self_samples,
                total_samples,
            };
            for FunctionSamples {
                frame,
                self_samples,
                total_samples,
            } in samples::functions(sampled)
            {
                let line =
                    (frame.kind == FrameKind::Managed && frame.line > 0).then_some(frame.line);
                self.inner
                    .serialize(row(
                        sanitize::csv_cell(&frame.function),
                        sanitize::csv_cell(&frame.file),
                        line,
                        self_samples,
                        total_samples,
                    ))
                    .map_err(io::Error::other)?;
            }
            let named: u64 = sampled.stacks.iter().map(|s| s.count).sum();
            let unnamed = sampled.samples.saturating_sub(named);
            if unnamed > 0 {
                self.inner
                    .serialize(row(
                        UNREADABLE.into(),
                        String::new(),
                        None,
                        unnamed,
                        unnamed,
                    ))
                    .map_err(io::Error::other)?;
            }
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::snapshot::{ProcessSnapshot, Sampled, SampledFrame, SampledStack};

    fn process(pid: u32, sampled: Option<Sampled>) -> ProcessSnapshot {
        let mut p: ProcessSnapshot = serde_json::from_str(&format!(
            r#"{{"pid": {pid}, "runtime": "python", "command": "python3"}}"#
        ))
        .expect("a minimal process");
        p.sampled = sampled;
        p
    }

    #[test]
    fn rows_per_function_with_unreadable_samples_and_formula_safe_names() {
        let frame = |function: &str, line| SampledFrame {
            function: function.into(),
            file: "=w.py".into(),
            line,
            kind: FrameKind::Managed,
        };
        let sampled = Sampled {
            hz: 99,
            samples: 10,
            stacks: vec![
                SampledStack {
                    frames: vec![frame("main", 1), frame("heavy", 5)],
                    count: 6,
                },
                SampledStack {
                    frames: vec![frame("main", 1), frame("-light", 9)],
                    count: 2,
                },
            ],
            unreadable: None,
        };
        let snapshot = Snapshot {
            taken_at: UNIX_EPOCH + Duration::from_secs(1_764_460_800),
            interval: Duration::from_secs(1),
            processes: vec![process(7, Some(sampled)), process(8, None)],
            lost: Default::default(),
            lost_interval: Default::default(),
            warnings: Vec::new(),
            probes_attached: 0,
        };
        let mut out = Vec::new();
        SamplesCsvWriter::new(&mut out)
            .unwrap()
            .write(&snapshot)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "timestamp,interval_s,pid,runtime,function,file,line,self_samples,total_samples",
                "2025-11-30T00:00:00.000Z,1.000,7,python,heavy,'=w.py,5,6,6",
                "2025-11-30T00:00:00.000Z,1.000,7,python,'-light,'=w.py,9,2,2",
                "2025-11-30T00:00:00.000Z,1.000,7,python,main,'=w.py,1,0,8",
                "2025-11-30T00:00:00.000Z,1.000,7,python,(unreadable),,,2,2",
            ]
        );
    }
}
