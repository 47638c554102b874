//! `check` and `plugins`: what plugins.toml loads, one line per entry, in
//! the effective order (the order hooks run in, after `before`/`after`);
//! and `run --plugin-counts`: what each plugin did during a run.

use std::io::{self, Write};

use ccmux_plugin_api::host::{HostError, PluginCounts, PluginHost, PluginState, PluginsConfig};
use ccmux_plugin_api::HookErrorKind;

use crate::config_file::ConfigChoice;
use crate::exit;
use crate::isolation::{self, Readiness};

/// Prints one status line per plugins.toml entry on stdout (an entry that
/// failed: its error and what it does to panes indented below it; for
/// `plugins`, the isolation plugin's profiles indented below its line). With `strict`
/// (`check`) the result is a failure if any enabled plugin did not load,
/// and a usage error if one did not because its `[plugins.config]` is
/// invalid (a bad plugins.toml).
pub fn list(config: &ConfigChoice, strict: bool) -> u8 {
    // inspect, not start: a plugin that fails to load is a line to print,
    // not a reason to stop listing.
    let host = match PluginHost::inspect(&config.file) {
        Ok(host) => host,
        Err(err) => {
            eprintln!("host-shim: {err}");
            eprintln!("host-shim: config: {config}");
            return exit::USAGE;
        }
    };
    let statuses = host.statuses();
    let profiles = if strict { None } else { profile_lines(config) };
    let mut stdout = io::stdout().lock();
    for status in &statuses {
        // Best effort: nothing useful to do if stdout is closed.
        let _ = writeln!(stdout, "{}", table_line(&status.line()));
        if let Some((entry, lines)) = &profiles {
            if *entry == status.name {
                for line in lines {
                    let _ = writeln!(stdout, "    {line}");
                }
            }
        }
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
    let bad_config = statuses
        .iter()
        .any(|s| matches!(&s.state, PluginState::Failed(err) if is_config_error(err)));
    if strict && bad_config {
        eprintln!("host-shim: {config}: a plugin's [plugins.config] is invalid; fix it as its line above says");
        exit::USAGE
    } else if strict && failed > 0 {
        exit::FAILURE
    } else {
        exit::SUCCESS
    }
}

/// `plugins`: the isolation plugin's entry name and one line per profile
/// (dir, `.claude.json`, login), when plugins.toml names profiles besides
/// `default`; listed under the entry's line.
fn profile_lines(choice: &ConfigChoice) -> Option<(String, Vec<String>)> {
    let config = PluginsConfig::load(&choice.file).ok()?;
    let entry = isolation::find_entry(&config, None).ok()?;
    let (profiles, settings) = isolation::profiles(choice, &config, entry).ok()?;
    if profiles.iter().count() < 2 {
        return None;
    }
    let lines = profiles
        .iter()
        .map(
            |profile| match isolation::describe_profile(profile, settings.share_credentials) {
                (Readiness::Broken(todo), line) => format!("{line}: {todo}"),
                (_, line) => line,
            },
        )
        .collect();
    Some((entry.name.clone(), lines))
}

/// Whether a plugin failed to start because its `[plugins.config]` table
/// is invalid: a bad plugins.toml, as a syntax error is.
pub fn is_config_error(err: &HostError) -> bool {
    matches!(err, HostError::Init { .. }) && err.hook_error_kind() == Some(HookErrorKind::Config)
}

/// One entry's line of the table: the first line of `line` as it is, the
/// rest (a multi-line error) indented below it, so that every line that
/// starts at the margin is an entry.
fn table_line(line: &str) -> String {
    let mut lines = line.lines();
    let mut out = lines.next().unwrap_or_default().to_string();
    for more in lines {
        out.push_str("\n    ");
        out.push_str(more);
    }
    out
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
    fn a_multi_line_error_is_indented_below_its_entry() {
        assert_eq!(table_line("a\tok"), "a\tok");
        assert_eq!(
            table_line("b\t-\terror: bad\nline 2\n\nline 4"),
            "b\t-\terror: bad\n    line 2\n    \n    line 4"
        );
    }

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
