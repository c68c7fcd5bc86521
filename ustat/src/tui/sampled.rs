//! Each process's sampled stacks since the dashboard first saw it: the intervals' stacks
//! added up, so the detail view's "Hot functions" and the folded-stacks key show more than one
//! interval's few samples, and a quiet interval does not blank them. What they say per
//! function and as folded lines is `crate::samples`'s.

use std::{collections::HashMap, time::Duration};

use crate::snapshot::{Sampled, SampledFrame, SampledStack};

/// The share of one CPU a process used in an interval, from its samples: 100 is one CPU
/// busy the whole interval; a process with several busy threads goes above 100, as in `top`.
/// `None` where nothing says how many samples a busy CPU would have given.
pub fn cpu_percent(sampled: &Sampled, interval: Duration) -> Option<f64> {
    let possible = f64::from(sampled.hz) * interval.as_secs_f64();
    (possible > 0.0).then(|| sampled.samples as f64 / possible * 100.0)
}

/// Distinct stacks kept per process. A process that keeps making new ones (generated code,
/// deep recursion at many depths) stops adding stacks here; its samples still count in
/// `samples`, and `samples_not_kept` says how many are in no kept stack.
pub const MAX_STACKS: usize = 20_000;

/// One process's samples since the dashboard first saw it sampled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampledSince {
    /// The rate of the newest interval.
    pub hz: u32,
    /// Every sample taken of the process, also those of stacks not kept.
    pub samples: u64,
    /// Intervals that were sampled.
    pub intervals: u64,
    stacks: HashMap<Vec<SampledFrame>, u64>,
    /// Samples of stacks beyond `MAX_STACKS`: counted in `samples`, named nowhere.
    pub samples_not_kept: u64,
    /// Why the newest interval's frames could not be read, if they could not.
    pub unreadable: Option<String>,
}

impl SampledSince {
    pub fn add(&mut self, interval: &Sampled) {
        self.hz = interval.hz;
        self.samples += interval.samples;
        self.intervals += 1;
        self.unreadable.clone_from(&interval.unreadable);
        for stack in &interval.stacks {
            let kept = self.stacks.len() < MAX_STACKS || self.stacks.contains_key(&stack.frames);
            if kept {
                *self.stacks.entry(stack.frames.clone()).or_default() += stack.count;
            } else {
                self.samples_not_kept += stack.count;
            }
        }
    }

    /// The kept stacks as one `Sampled` (what `samples::functions` and `FoldedStacks` take):
    /// the samples not kept are left out, so they are not mistaken for unreadable ones.
    pub fn as_sampled(&self) -> Sampled {
        Sampled {
            hz: self.hz,
            samples: self.samples - self.samples_not_kept,
            stacks: self.stacks(),
            unreadable: self.unreadable.clone(),
        }
    }

    /// The kept stacks, most samples first (ties by frames, so the order is stable).
    fn stacks(&self) -> Vec<SampledStack> {
        let mut stacks: Vec<SampledStack> = self
            .stacks
            .iter()
            .map(|(frames, count)| SampledStack {
                frames: frames.clone(),
                count: *count,
            })
            .collect();
        stacks.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| frame_names(&a.frames).cmp(&frame_names(&b.frames)))
        });
        stacks
    }
}

fn frame_names(frames: &[SampledFrame]) -> Vec<&str> {
    frames.iter().map(|f| f.function.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::FrameKind;

    fn frame(function: &str) -> SampledFrame {
        SampledFrame {
            function: function.into(),
            file: "w.py".into(),
            line: 1,
            kind: FrameKind::Managed,
        }
    }

    fn interval(stacks: &[(&[&str], u64)]) -> Sampled {
        let stacks: Vec<SampledStack> = stacks
            .iter()
            .map(|(names, count)| SampledStack {
                frames: names.iter().map(|n| frame(n)).collect(),
                count: *count,
            })
            .collect();
        Sampled {
            hz: 99,
            samples: stacks.iter().map(|s| s.count).sum(),
            stacks,
            unreadable: None,
        }
    }

    #[test]
    fn cpu_percent_is_samples_over_what_one_busy_cpu_gives() {
        let mut sampled = interval(&[(&["a"], 198)]);
        assert_eq!(cpu_percent(&sampled, Duration::from_secs(2)), Some(100.0));
        assert_eq!(cpu_percent(&sampled, Duration::from_secs(1)), Some(200.0));
        sampled.hz = 0;
        assert_eq!(cpu_percent(&sampled, Duration::from_secs(1)), None);
    }

    #[test]
    fn intervals_add_up_per_stack() {
        let mut since = SampledSince::default();
        since.add(&interval(&[(&["main", "a"], 3), (&["main", "b"], 1)]));
        since.add(&interval(&[]));
        since.add(&interval(&[(&["main", "a"], 2)]));
        assert_eq!(since.samples, 6);
        assert_eq!(since.intervals, 3);
        let stacks = since.stacks();
        assert_eq!(stacks.len(), 2);
        assert_eq!(stacks[0].count, 5);
        assert_eq!(frame_names(&stacks[0].frames), ["main", "a"]);
        assert_eq!(stacks[1].count, 1);
    }

    #[test]
    fn stacks_beyond_the_bound_count_but_are_not_kept() {
        let mut since = SampledSince::default();
        let names: Vec<String> = (0..=MAX_STACKS).map(|i| format!("f{i}")).collect();
        let many = Sampled {
            hz: 99,
            samples: names.len() as u64,
            stacks: names
                .iter()
                .map(|n| SampledStack {
                    frames: vec![frame(n)],
                    count: 1,
                })
                .collect(),
            unreadable: None,
        };
        since.add(&many);
        assert_eq!(since.samples, MAX_STACKS as u64 + 1);
        assert_eq!(since.stacks().len(), MAX_STACKS);
        assert_eq!(since.samples_not_kept, 1);
        // A stack already kept still grows.
        since.add(&interval(&[(&["f0"], 4)]));
        assert_eq!(since.samples_not_kept, 1);
        assert_eq!(since.samples, MAX_STACKS as u64 + 5);
    }
}
