//! The `SUMMARY` lines: each row's medians, its baseline's, the ratio and
//! whether the target is met, computed from what criterion measured in
//! this very run.
//!
//! Criterion keeps its results in `{target}/criterion/{group}/{bench}/new/
//! estimates.json`. Only files written since this process started are
//! read, so a bench left out by a filter (or run in test mode, where
//! criterion writes nothing) is reported as not measured instead of with a
//! stale number. The lines are printed and appended to
//! `{target}/criterion/ccmux-summary.txt`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Results of this run, read back from criterion's output.
pub struct Summary {
    criterion_dir: PathBuf,
    started: SystemTime,
}

/// One comparison, as printed.
pub struct Row<'a> {
    /// `row1`, `row3/2-threads`, ...
    pub row: &'a str,
    pub what: &'a str,
    /// The measured value, in the row's unit.
    pub value: f64,
    pub baseline_what: &'a str,
    pub baseline: f64,
    /// `ns`, `ms`, `MiB`, ...
    pub unit: &'a str,
    /// The target, in words.
    pub target: &'a str,
    pub met: bool,
    /// Anything else worth a number (the overhead, a slope, ...).
    pub note: String,
}

impl Summary {
    /// `target_dir` is cargo's target dir; criterion writes under it
    /// unless `CRITERION_HOME` says otherwise.
    pub fn new(target_dir: &Path) -> Summary {
        let criterion_dir = std::env::var_os("CRITERION_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir.join("criterion"));
        Summary {
            criterion_dir,
            // A little slack for filesystems with coarse timestamps.
            started: SystemTime::now() - Duration::from_secs(2),
        }
    }

    /// The median time per iteration, in nanoseconds, of benchmark
    /// `group/bench` measured by this process; `bench` may be
    /// `function/parameter`.
    pub fn median_ns(&self, group: &str, bench: &str) -> Option<f64> {
        let mut path = self.criterion_dir.join(group);
        for part in bench.split('/') {
            path.push(part);
        }
        path.push("new");
        path.push("estimates.json");
        let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
        if modified < self.started {
            return None;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        value["median"]["point_estimate"].as_f64()
    }

    /// Prints `row` (and keeps it in the summary file).
    pub fn print(&self, row: &Row<'_>) {
        let ratio = if row.baseline > 0.0 {
            format!("{:.2}x", row.value / row.baseline)
        } else {
            "-".to_string()
        };
        let mut line = String::new();
        let _ = write!(
            line,
            "SUMMARY {row} | {what}: {value} {unit} | baseline {baseline_what}: {baseline} {unit} | ratio {ratio} | target {target} | {verdict}",
            row = row.row,
            what = row.what,
            value = fmt_value(row.value),
            unit = row.unit,
            baseline_what = row.baseline_what,
            baseline = fmt_value(row.baseline),
            target = row.target,
            verdict = if row.met { "MET" } else { "MISSED" },
        );
        if !row.note.is_empty() {
            let _ = write!(line, " | {}", row.note);
        }
        self.emit(&line);
    }

    /// Prints a line that is not a comparison (a row not measured, a
    /// table of memory readings).
    pub fn note(&self, text: &str) {
        self.emit(&format!("SUMMARY {text}"));
    }

    fn emit(&self, line: &str) {
        println!("{line}");
        let file = self.criterion_dir.join("ccmux-summary.txt");
        if std::fs::create_dir_all(&self.criterion_dir).is_ok() {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
            {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

/// Three significant digits, without scientific notation.
pub fn fmt_value(v: f64) -> String {
    let abs = v.abs();
    if abs >= 100.0 {
        format!("{v:.0}")
    } else if abs >= 10.0 {
        format!("{v:.1}")
    } else if abs >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
