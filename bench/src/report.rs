//! Printing figures and reading percentiles, shared by every benchmark.

use std::io::Write;

/// Print one line of the report on stdout.
pub fn say(line: impl AsRef<str>) {
    let _ = writeln!(std::io::stdout(), "{}", line.as_ref());
}

/// The `q` quantile (0..=1) of `sorted` (ascending, not empty), nearest rank.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
