//! What the runtime does about slow and failing plugins (plugins.toml
//! `[faults]`), and the counts it keeps per plugin for a server's status
//! view.
//!
//! Counting costs a few atomic operations per hook call; the last error is
//! behind a mutex taken only when a call fails.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

/// plugins.toml's `[faults]` table.
///
/// ```toml
/// [faults]
/// slow_hook_ms = 1000     # a hook slower than this is logged as a WARN; 0: never
/// switch_off_after = 5    # an optional plugin failing this often in a row is switched off; 0: never
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultPolicy {
    /// A hook call that takes longer than this many milliseconds is logged
    /// as a warning naming the plugin, the hook and the time. 0 turns the
    /// warning off.
    pub slow_hook_ms: u64,
    /// An optional (`required = false`) plugin whose hooks fail (or panic)
    /// this many times in a row is switched off for the rest of the run:
    /// it gets no more hooks, and an ERROR says so. A reload switches it on
    /// again. Refusals are not failures. 0 never switches a plugin off.
    pub switch_off_after: u32,
}

impl Default for FaultPolicy {
    fn default() -> Self {
        FaultPolicy {
            slow_hook_ms: 1000,
            switch_off_after: 5,
        }
    }
}

impl FaultPolicy {
    /// The threshold of the slow-hook warning, if it is on.
    pub fn slow_hook(&self) -> Option<Duration> {
        (self.slow_hook_ms > 0).then(|| Duration::from_millis(self.slow_hook_ms))
    }
}

/// One plugin's counts, as [`PluginHost::counts`](crate::host::PluginHost::counts)
/// reports them. They are kept per plugins.toml name for the host's
/// lifetime, across reloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCounts {
    /// The plugin's plugins.toml name.
    pub name: String,
    /// Hook calls made into the plugin.
    pub calls: u64,
    /// Calls that returned an error or panicked.
    pub failures: u64,
    /// Calls that refused a pane.
    pub refusals: u64,
    /// Failures since the last call that did not fail.
    pub failures_in_a_row: u32,
    /// The plugin failed `switch_off_after` times in a row and gets no
    /// hooks until the next reload.
    pub switched_off: bool,
    /// The last failure, as reported (plugin, file, hook, error).
    pub last_error: Option<String>,
}

/// The live counters behind [`PluginCounts`].
#[derive(Debug, Default)]
pub(crate) struct PluginCounters {
    calls: AtomicU64,
    failures: AtomicU64,
    refusals: AtomicU64,
    failures_in_a_row: AtomicU32,
    switched_off: AtomicBool,
    /// Warned once that it refused without declaring `REFUSES_PANES`.
    warned_undeclared: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl PluginCounters {
    pub(crate) fn is_switched_off(&self) -> bool {
        self.switched_off.load(Ordering::Relaxed)
    }

    pub(crate) fn succeeded(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        // Read first: a store on every call would make hooks of different
        // panes fight over the cache line for nothing.
        if self.failures_in_a_row.load(Ordering::Relaxed) != 0 {
            self.failures_in_a_row.store(0, Ordering::Relaxed);
        }
    }

    /// True the first time it is called.
    pub(crate) fn first_undeclared_refusal(&self) -> bool {
        !self.warned_undeclared.swap(true, Ordering::Relaxed)
    }

    pub(crate) fn refused(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.refusals.fetch_add(1, Ordering::Relaxed);
        self.failures_in_a_row.store(0, Ordering::Relaxed);
    }

    /// Counts a failure. True when it switched the plugin off: it was the
    /// `switch_off_after`th in a row of an optional plugin that was on.
    pub(crate) fn failed(&self, error: &str, switch_off_after: Option<u32>) -> bool {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        let in_a_row = self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error.to_string());
        }
        match switch_off_after {
            Some(limit) if limit > 0 && in_a_row >= limit => {
                // Only the call that flips it reports it.
                !self.switched_off.swap(true, Ordering::Relaxed)
            }
            _ => false,
        }
    }

    /// Switches the plugin on again (a reload). True if it was off.
    pub(crate) fn switch_on(&self) -> bool {
        self.failures_in_a_row.store(0, Ordering::Relaxed);
        self.switched_off.swap(false, Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self, name: &str) -> PluginCounts {
        PluginCounts {
            name: name.to_string(),
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            refusals: self.refusals.load(Ordering::Relaxed),
            failures_in_a_row: self.failures_in_a_row.load(Ordering::Relaxed),
            switched_off: self.is_switched_off(),
            last_error: self.last_error.lock().ok().and_then(|last| last.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_failure_in_a_row_switches_off_once_and_a_success_resets_the_run() {
        let counters = PluginCounters::default();
        assert!(!counters.failed("one", Some(3)));
        assert!(!counters.failed("two", Some(3)));
        counters.succeeded();
        assert!(!counters.failed("three", Some(3)));
        assert!(!counters.failed("four", Some(3)));
        assert!(counters.failed("five", Some(3)), "third in a row");
        assert!(!counters.failed("six", Some(3)), "already off");
        let counts = counters.snapshot("p");
        assert_eq!(
            (counts.calls, counts.failures, counts.failures_in_a_row),
            (7, 6, 4)
        );
        assert!(counts.switched_off);
        assert_eq!(counts.last_error.as_deref(), Some("six"));

        assert!(counters.switch_on());
        assert!(!counters.is_switched_off());
        assert!(!counters.switch_on(), "already on");
    }

    #[test]
    fn required_plugins_and_a_zero_limit_are_never_switched_off() {
        let counters = PluginCounters::default();
        for _ in 0..10 {
            assert!(!counters.failed("e", None));
            assert!(!counters.failed("e", Some(0)));
        }
        assert!(!counters.is_switched_off());
    }

    #[test]
    fn refusals_are_counted_apart_and_end_a_run_of_failures() {
        let counters = PluginCounters::default();
        counters.failed("e", Some(2));
        counters.refused();
        assert!(!counters.failed("e", Some(2)));
        let counts = counters.snapshot("p");
        assert_eq!((counts.calls, counts.refusals, counts.failures), (3, 1, 2));
    }
}
