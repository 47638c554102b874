//! UserClaudeDir: where the user's own Claude state lives, the source of
//! everything a pane shares or is seeded with.
//!
//! It is the `CLAUDE_CONFIG_DIR` the ccmux server itself inherited, if the
//! user set one, else `~/.claude`. Claude keeps `.claude.json` inside
//! `CLAUDE_CONFIG_DIR` when that is set, but beside `~/.claude` (as
//! `~/.claude.json`) when it is not; this type knows both.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::seed::CLAUDE_JSON;

/// What the plugin reads from the server's environment. Gathered once, at
/// construction, so that tests (and embedders) can pass their own instead
/// of changing the process environment.
#[derive(Debug, Clone, Default)]
pub struct HostEnvironment {
    /// The user's home dir.
    pub home: Option<PathBuf>,
    /// The server's own `CLAUDE_CONFIG_DIR`, if any.
    pub claude_config_dir: Option<OsString>,
}

impl HostEnvironment {
    /// The environment this process inherited.
    pub fn inherited() -> Self {
        HostEnvironment {
            home: dirs::home_dir(),
            claude_config_dir: std::env::var_os("CLAUDE_CONFIG_DIR"),
        }
    }

    /// The home dir, if it is usable (an absolute path).
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref().filter(|home| home.is_absolute())
    }
}

/// The user's Claude dir and `.claude.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserClaudeDir {
    /// Holds `settings.json`, `CLAUDE.md`, `.credentials.json`, ...
    pub dir: PathBuf,
    /// The user's `.claude.json`.
    pub claude_json: PathBuf,
    /// The user's own `CLAUDE_CONFIG_DIR`, exactly as given, when the dir
    /// came from it: Claude hashes this raw string to name the user's
    /// login on macOS.
    pub config_dir_var: Option<OsString>,
}

impl UserClaudeDir {
    /// Finds the user's Claude dir. `base_dir` is the plugin's own base: a
    /// `CLAUDE_CONFIG_DIR` inside it means this server was started from a
    /// ccmux pane, and that pane's dir is not the user's.
    pub fn discover(env: &HostEnvironment, base_dir: &Path) -> Option<Self> {
        if let Some(var) = env.claude_config_dir.as_deref().filter(|v| !v.is_empty()) {
            let dir = PathBuf::from(var);
            if !dir.is_absolute() {
                tracing::warn!(
                    value = %dir.display(),
                    "ignoring the server's CLAUDE_CONFIG_DIR: it is not an absolute path; using ~/.claude"
                );
            } else if dir.starts_with(base_dir) {
                tracing::warn!(
                    value = %dir.display(),
                    "ignoring the server's CLAUDE_CONFIG_DIR: it is a ccmux pane's dir (was the server started from a pane?); using ~/.claude"
                );
            } else {
                return Some(UserClaudeDir {
                    claude_json: claude_json_in(&dir, dir.join(CLAUDE_JSON)),
                    dir,
                    config_dir_var: Some(var.to_os_string()),
                });
            }
        }
        let Some(home) = env.home() else {
            tracing::warn!(
                "the home directory is unknown: panes get no shared settings, seeded .claude.json or shared login"
            );
            return None;
        };
        let dir = home.join(".claude");
        Some(UserClaudeDir {
            claude_json: claude_json_in(&dir, home.join(CLAUDE_JSON)),
            dir,
            config_dir_var: None,
        })
    }
}

/// Claude's legacy name for its config file: when it exists in the config
/// dir, Claude reads and writes it instead of `.claude.json`.
const LEGACY_CONFIG_JSON: &str = ".config.json";

/// The file Claude uses as the user's `.claude.json`: `usual`, unless the
/// Claude dir holds the legacy `.config.json`.
fn claude_json_in(dir: &Path, usual: PathBuf) -> PathBuf {
    let legacy = dir.join(LEGACY_CONFIG_JSON);
    if std::fs::symlink_metadata(&legacy).is_ok() {
        legacy
    } else {
        usual
    }
}
