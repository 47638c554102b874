//! `check` and `plugins`: what plugins.toml loads, one line per entry, in
//! the effective order (the order hooks run in, after `before`/`after`);
//! and `run --plugin-counts`: what each plugin did during a run.

use std::io::{self, Write};
use std::path::Path;

use ccmux_plugin_api::host::{PluginCounts, PluginHost, PluginState};

use crate::exit;

/// Prints one status line per plugins.toml entry on stdout. With `strict`
/// (`check`) the result is a failure if any enabled plugin did not load.
pub fn list(config: &Path, strict: bool) -> u8 {
    // inspect, not start: a plugin that fails to load is a line to print,
    // not a reason to stop listing.
    let host = match PluginHost::inspect(config) {
        Ok(host) => host,
        Err(err) => {
            eprintln!("host-shim: {err}");
            return exit::USAGE;
        }
    };
    let statuses = host.statuses();
    let mut stdout = io::stdout().lock();
    for status in &statuses {
        // Best effort: nothing useful to do if stdout is closed.
        let _ = writeln!(stdout, "{}", status.line());
    }
    let _ = stdout.flush();

    let failed = statuses
        .iter()
        .filter(|s| matches!(s.state, PluginState::Failed(_)))
        .count();
    if statuses.is_empty() {
        eprintln!(
            "host-shim: {}: no plugins configured",
            host.config_file().display()
        );
    } else if failed > 0 {
        let enabled = statuses.iter().filter(|s| s.enabled).count();
        eprintln!(
            "host-shim: {failed} of {enabled} enabled plugins failed to load; see their lines above"
        );
    }
    if strict && failed > 0 {
        exit::FAILURE
    } else {
        exit::SUCCESS
    }
}

/// Prints each active plugin's counts on stderr, one line each, in
/// effective order: what `run --plugin-counts` shows at the end of a run.
pub fn print_counts(host: &PluginHost) {
    let mut stderr = io::stderr().lock();
    for counts in host.counts() {
        let _ = writeln!(stderr, "host-shim: {}", counts_line(&counts));
    }
}

/// `plugin NAME: C calls, F failed, R refused[, switched off][; last error: E]`.
fn counts_line(counts: &PluginCounts) -> String {
    let mut line = format!(
        "plugin {}: {} calls, {} failed, {} refused",
        counts.name, counts.calls, counts.failures, counts.refusals
    );
    if counts.switched_off {
        line.push_str(", switched off");
    }
    if let Some(error) = &counts.last_error {
        line.push_str("; last error: ");
        line.push_str(error);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counts_line_says_everything_counted() {
        let mut counts = PluginCounts {
            name: "flaky".into(),
            calls: 7,
            failures: 3,
            refusals: 1,
            failures_in_a_row: 3,
            switched_off: true,
            last_error: Some("plugin `flaky` failed in on_pane_create: [failed] boom".into()),
        };
        assert_eq!(
            counts_line(&counts),
            "plugin flaky: 7 calls, 3 failed, 1 refused, switched off; last error: plugin `flaky` failed in on_pane_create: [failed] boom"
        );
        counts.switched_off = false;
        counts.last_error = None;
        assert_eq!(
            counts_line(&counts),
            "plugin flaky: 7 calls, 3 failed, 1 refused"
        );
    }
}
