//! Sampled stacks as the views and files show them: self and total samples per function, and
//! folded stacks (`outer;...;inner count`, the input of flame-graph tools). Pure functions of
//! `Sampled`, shared by the CSV writer, `--folded` and the dashboard.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::{
    sanitize,
    snapshot::{FrameKind, Sampled, SampledFrame},
};

/// One function's samples in one interval (or any span of `Sampled`s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSamples {
    pub frame: SampledFrame,
    /// Samples whose innermost frame is this function (where the CPU was).
    pub self_samples: u64,
    /// Samples with this function anywhere on the stack, counted once per sample however
    /// often it recurses.
    pub total_samples: u64,
}

impl FunctionSamples {
    /// `self_samples` as a percentage of `samples` (0 when there are none).
    pub fn self_percent(&self, samples: u64) -> f64 {
        percent(self.self_samples, samples)
    }

    pub fn total_percent(&self, samples: u64) -> f64 {
        percent(self.total_samples, samples)
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Self and total samples per function, most self samples first (then most total, then by
/// name, so the order is stable). A function is its name, file, first line and kind.
pub fn functions(sampled: &Sampled) -> Vec<FunctionSamples> {
    let mut by_frame: HashMap<&SampledFrame, (u64, u64)> = HashMap::new();
    for stack in &sampled.stacks {
        let mut seen: HashSet<&SampledFrame> = HashSet::new();
        for frame in &stack.frames {
            if seen.insert(frame) {
                by_frame.entry(frame).or_default().1 += stack.count;
            }
        }
        if let Some(inner) = stack.frames.last() {
            by_frame.entry(inner).or_default().0 += stack.count;
        }
    }
    let mut rows: Vec<FunctionSamples> = by_frame
        .into_iter()
        .map(|(frame, (self_samples, total_samples))| FunctionSamples {
            frame: frame.clone(),
            self_samples,
            total_samples,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.self_samples
            .cmp(&a.self_samples)
            .then(b.total_samples.cmp(&a.total_samples))
            .then_with(|| a.frame.function.cmp(&b.frame.function))
            .then_with(|| a.frame.file.cmp(&b.frame.file))
            .then(a.frame.line.cmp(&b.frame.line))
    });
    rows
}

/// A frame as one element of a folded stack: `function (file:line)`, `function (file)` when
/// the line is unknown, `function` alone when the file is; native frames get ` [native]`.
/// Sanitised, and without `;` (the frame separator), which becomes `,`.
pub fn folded_frame(frame: &SampledFrame) -> String {
    let mut text = match (frame.file.is_empty(), frame.line) {
        (true, _) => frame.function.clone(),
        (false, 0) => format!("{} ({})", frame.function, frame.file),
        (false, line) => format!("{} ({}:{line})", frame.function, frame.file),
    };
    if frame.kind == FrameKind::Native {
        text.push_str(" [native]");
    }
    sanitize::text(&text).replace(';', ",")
}

/// Folded stacks summed over any number of intervals and processes. Each line starts with
/// the process (`comm-or-pid`), outermost frame first, and ends with the sample count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoldedStacks {
    counts: BTreeMap<String, u64>,
}

impl FoldedStacks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one interval of one process. `process` is its label (the command name, or the
    /// pid when it has none); samples whose stack could not be read (`unreadable`, or the
    /// part of `samples` not in any stack) are added as `process;(unreadable)`.
    pub fn add(&mut self, process: &str, sampled: &Sampled) {
        let root = sanitize::text(process).replace([';', ' '], "_");
        let mut in_stacks = 0;
        for stack in &sampled.stacks {
            in_stacks += stack.count;
            if stack.count == 0 {
                continue;
            }
            let mut line = root.clone();
            for frame in &stack.frames {
                line.push(';');
                line.push_str(&folded_frame(frame));
            }
            *self.counts.entry(line).or_default() += stack.count;
        }
        let unreadable = sampled.samples.saturating_sub(in_stacks);
        if unreadable > 0 {
            *self
                .counts
                .entry(format!("{root};(unreadable)"))
                .or_default() += unreadable;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The lines, `stack count`, sorted by stack.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.counts
            .iter()
            .map(|(stack, count)| format!("{stack} {count}"))
    }
}

/// The label of a process in folded stacks: its command name, or its pid when it has none.
pub fn process_label(pid: u32, command: &str) -> String {
    if command.is_empty() {
        pid.to_string()
    } else {
        command.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SampledStack;

    fn frame(function: &str, line: u32) -> SampledFrame {
        SampledFrame {
            function: function.into(),
            file: "w.py".into(),
            line,
            kind: FrameKind::Managed,
        }
    }

    fn stack(names: &[(&str, u32)], count: u64) -> SampledStack {
        SampledStack {
            frames: names.iter().map(|&(n, l)| frame(n, l)).collect(),
            count,
        }
    }

    fn sampled(stacks: Vec<SampledStack>, unreadable: u64) -> Sampled {
        let samples = stacks.iter().map(|s| s.count).sum::<u64>() + unreadable;
        Sampled {
            hz: 99,
            samples,
            stacks,
            unreadable: None,
        }
    }

    #[test]
    fn self_is_the_innermost_frame_and_total_counts_a_recursion_once() {
        let s = sampled(
            vec![
                stack(&[("main", 1), ("fib", 5), ("fib", 5), ("fib", 5)], 6),
                stack(&[("main", 1), ("heavy", 9)], 3),
                stack(&[("main", 1)], 1),
            ],
            0,
        );
        let rows = functions(&s);
        let find = |name: &str| rows.iter().find(|r| r.frame.function == name).unwrap();
        assert_eq!(
            (find("fib").self_samples, find("fib").total_samples),
            (6, 6)
        );
        assert_eq!(
            (find("heavy").self_samples, find("heavy").total_samples),
            (3, 3)
        );
        assert_eq!(
            (find("main").self_samples, find("main").total_samples),
            (1, 10)
        );
        assert_eq!(rows[0].frame.function, "fib");
        assert_eq!(find("heavy").self_percent(s.samples), 30.0);
        assert_eq!(find("main").total_percent(s.samples), 100.0);
    }

    #[test]
    fn the_same_name_in_two_files_is_two_functions() {
        let mut other = frame("run", 3);
        other.file = "v.py".into();
        let s = sampled(
            vec![
                stack(&[("run", 3)], 2),
                SampledStack {
                    frames: vec![other],
                    count: 5,
                },
            ],
            0,
        );
        let rows = functions(&s);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].frame.file.as_str(), rows[0].self_samples),
            ("v.py", 5)
        );
    }

    #[test]
    fn folded_lines_sum_over_intervals_and_keep_unreadable_samples() {
        let mut folded = FoldedStacks::new();
        let one = sampled(vec![stack(&[("main", 1), ("f", 4)], 2)], 1);
        folded.add("python3", &one);
        folded.add("python3", &one);
        let lines: Vec<String> = folded.lines().collect();
        assert_eq!(
            lines,
            [
                "python3;(unreadable) 2",
                "python3;main (w.py:1);f (w.py:4) 4",
            ]
        );
    }

    #[test]
    fn folded_frames_cannot_break_the_format() {
        let mut bad = frame("a;b\x1b[2J", 0);
        bad.kind = FrameKind::Native;
        bad.file = String::new();
        assert_eq!(folded_frame(&bad), "a,b?[2J [native]");
        let mut folded = FoldedStacks::new();
        folded.add("my prog;x", &sampled(vec![stack(&[("f", 2)], 1)], 0));
        assert_eq!(
            folded.lines().collect::<Vec<_>>(),
            ["my_prog_x;f (w.py:2) 1"]
        );
        assert_eq!(process_label(42, ""), "42");
    }
}
