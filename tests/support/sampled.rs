//! Running ustat as the sampling tests do, and reading what it wrote.

use std::path::Path;

use super::Ustat;

/// Samples a second per CPU: more than the default, so a few seconds of a loaded machine's
/// CPU give enough samples for 5 points.
pub const HZ: &str = "997";

/// ustat sampling `pid` at `HZ` into `ustat.csv`, `samples.csv` and `stacks.folded` in
/// `dir`, attached when this returns.
pub fn sample(dir: &Path, pid: u32) -> Ustat {
    let csv = dir.join("ustat.csv");
    let samples = dir.join("samples.csv");
    let folded = dir.join("stacks.folded");
    let pid = pid.to_string();
    let mut ustat = Ustat::spawn(&[
        "--csv".as_ref(),
        csv.as_os_str(),
        "-i".as_ref(),
        "0.5".as_ref(),
        "-p".as_ref(),
        pid.as_ref(),
        "--sample-hz".as_ref(),
        HZ.as_ref(),
        "--samples".as_ref(),
        samples.as_os_str(),
        "--folded".as_ref(),
        folded.as_os_str(),
    ] as &[&std::ffi::OsStr]);
    ustat
        .stderr
        .wait_for("ustat to attach", |l| l.starts_with("ustat: tracing "));
    ustat
}

/// The frames of each folded line (process first), with its count.
pub fn folded_lines(path: &Path) -> Vec<(Vec<String>, u64)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let (stack, count) = line.rsplit_once(' ').expect("a count");
            (
                stack.split(';').map(str::to_string).collect(),
                count.parse().expect("a number"),
            )
        })
        .collect()
}

/// The function of a folded frame: `leaf (/x/sampled.py:57)` -> `leaf`,
/// `Sampled.c(long, long) (Sampled.java)` -> `Sampled.c(long, long)`.
pub fn function(frame: &str) -> &str {
    frame.split(" (").next().unwrap_or(frame)
}
