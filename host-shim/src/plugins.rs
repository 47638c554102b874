//! `check` and `plugins`: what plugins.toml loads, one line per entry.

use std::io::{self, Write};
use std::path::Path;

use ccmux_plugin_api::host::{PluginHost, PluginState};

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
