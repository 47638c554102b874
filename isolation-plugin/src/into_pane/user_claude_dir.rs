//! UserClaudeDir: where the user's own Claude state lives, the source of
//! everything a pane shares or is seeded with.
//!
//! It is the `CLAUDE_CONFIG_DIR` the ccmux server itself inherited, if the
//! user set one, else `~/.claude`. Claude keeps `.claude.json` inside
//! `CLAUDE_CONFIG_DIR` when that is set, but beside `~/.claude` (as
//! `~/.claude.json`) when it is not; this type knows both.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::classification::CLAUDE_JSON;
use crate::config::{CCMUX_USER_CLAUDE_CONFIG_DIR, CLAUDE_CONFIG_DIR};
use crate::pane_dirs::metadata::METADATA_FILE;

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
    /// The environment this process inherited. In a ccmux pane (a server
    /// started inside another server's pane), the user's Claude dir is the
    /// one that pane recorded, not the pane's own `CLAUDE_CONFIG_DIR`.
    pub fn inherited() -> Self {
        HostEnvironment {
            home: dirs::home_dir(),
            claude_config_dir: users_config_dir(
                std::env::var_os(CLAUDE_CONFIG_DIR),
                std::env::var_os(CCMUX_USER_CLAUDE_CONFIG_DIR),
            ),
        }
    }

    /// This environment with `user_config_dir` (the plugin's setting of
    /// that name), if given, standing for the server's `CLAUDE_CONFIG_DIR`.
    pub fn with_user_config_dir(&self, user_config_dir: Option<&Path>) -> HostEnvironment {
        match user_config_dir {
            Some(dir) => HostEnvironment {
                home: self.home.clone(),
                claude_config_dir: Some(dir.as_os_str().to_os_string()),
            },
            None => self.clone(),
        }
    }

    /// The home dir, if it is usable (an absolute path).
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref().filter(|home| home.is_absolute())
    }
}

/// The user's `CLAUDE_CONFIG_DIR`, from the process's own and the one a
/// ccmux pane recorded (`recorded`: empty for none). The recorded one
/// counts only where the process's own is a pane's config dir (its parent
/// holds the pane's metadata) or no dir at all (that pane has closed): so
/// a user who sets their own `CLAUDE_CONFIG_DIR` inside a pane is obeyed.
pub(crate) fn users_config_dir(
    own: Option<OsString>,
    recorded: Option<OsString>,
) -> Option<OsString> {
    let (Some(own_dir), Some(recorded)) = (&own, recorded) else {
        return own;
    };
    // A pane's config dir, or one that is gone (the pane closed, and a
    // server started in it lives on): the user's dir is the recorded one.
    let own_dir = Path::new(own_dir);
    let in_a_pane = !own_dir.exists()
        || own_dir
            .parent()
            .is_some_and(|pane| pane.join(METADATA_FILE).is_file());
    if !in_a_pane {
        return own;
    }
    (!recorded.is_empty()).then_some(recorded)
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

#[cfg(test)]
mod tests {
    use super::users_config_dir;
    use std::ffi::OsString;

    #[test]
    fn inside_a_pane_the_user_dir_is_the_one_the_pane_recorded() {
        let root = tempfile::tempdir().unwrap();
        let pane = root.path().join("base/main_0_1");
        std::fs::create_dir_all(pane.join("config")).unwrap();
        std::fs::write(pane.join(".pane-metadata"), "{}").unwrap();
        let own = Some(OsString::from(pane.join("config")));
        // Recorded empty: the user has no CLAUDE_CONFIG_DIR of their own.
        assert_eq!(users_config_dir(own.clone(), Some("".into())), None);
        assert_eq!(
            users_config_dir(own.clone(), Some("/home/u/.claude-work".into())),
            Some("/home/u/.claude-work".into())
        );
        // Not in a pane: the process's own CLAUDE_CONFIG_DIR is obeyed.
        std::fs::create_dir_all(root.path().join("mine")).unwrap();
        let elsewhere = Some(OsString::from(root.path().join("mine")));
        assert_eq!(
            users_config_dir(elsewhere.clone(), Some("".into())),
            elsewhere
        );
        assert_eq!(users_config_dir(own.clone(), None), own);
        // The pane is gone: still not the user's dir.
        let gone = Some(OsString::from(root.path().join("base/closed_0_1/config")));
        assert_eq!(users_config_dir(gone, Some("".into())), None);
    }
}
