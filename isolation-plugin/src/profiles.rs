//! Profiles: one Claude account each. A profile is a name and the user's
//! Claude dir for that account, the dir `CLAUDE_CONFIG_DIR=DIR claude`
//! uses in a plain terminal; `default` is the dir the plugin uses without
//! profiles (`user_config_dir`, else the server's `CLAUDE_CONFIG_DIR`, else
//! `~/.claude` with `~/.claude.json`).
//!
//! A pane is in exactly one profile, chosen at spawn (`CCMUX_PROFILE`) and
//! kept in its metadata: everything the plugin does for it (share links,
//! shared data, the seed, the login, the carry-back, pending entries)
//! targets that profile's dir and no other.
//!
//! This table is public so a host can check a name before it starts a
//! pane, and list the profiles (`host-shim doctor`, `plugins`); it is not
//! the plugin's state for each profile, which lives with the hooks.

use std::path::{Path, PathBuf};

use ccmux_plugin_api::{HookError, HookErrorKind};

use crate::config::{IsolationConfig, Settings, DEFAULT_PROFILE};
use crate::into_pane::user_claude_dir::{HostEnvironment, UserClaudeDir};

/// The file Claude keeps the login in on Linux (macOS: the Keychain).
const CREDENTIALS_JSON: &str = ".credentials.json";

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `default`, or a name of `[plugins.config.profiles]`.
    pub name: String,
    /// Its Claude dir and `.claude.json`; `None` only for `default` when
    /// the home dir is unknown.
    pub user: Option<UserClaudeDir>,
}

/// Whether a profile has a login, as far as can be told without running
/// Claude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// `.credentials.json` is there (Linux): panes of the profile start
    /// logged in.
    Credentials(PathBuf),
    /// No `.credentials.json` there (Linux): `claude /login` in a pane of
    /// the profile stores one, for every later pane of it.
    NoCredentials(PathBuf),
    /// macOS keeps the login in the Keychain, which is not looked at.
    Keychain,
    /// The home dir is unknown: no dir to look in.
    Unknown,
}

impl Profile {
    /// Whether the profile has a login. Looks at the file's type only,
    /// never reads it.
    pub fn login(&self) -> Login {
        let Some(user) = &self.user else {
            return Login::Unknown;
        };
        if cfg!(target_os = "macos") {
            return Login::Keychain;
        }
        let file = user.dir.join(CREDENTIALS_JSON);
        match std::fs::symlink_metadata(&file) {
            Ok(meta) if meta.is_file() => Login::Credentials(file),
            _ => Login::NoCredentials(file),
        }
    }

    /// Whether this is the profile of panes that name none.
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_PROFILE
    }
}

/// Every profile of one configuration: `default` first, then the named
/// ones by name.
#[derive(Debug, Clone)]
pub struct Profiles {
    list: Vec<Profile>,
}

impl Profiles {
    /// The profiles of the plugin configured by `config` (its
    /// `[plugins.config]` table), relative paths resolved against
    /// `config_dir` (the directory of plugins.toml), `~` and the default
    /// dir against `env`.
    pub fn from_config(
        config: IsolationConfig,
        config_dir: &Path,
        env: &HostEnvironment,
    ) -> Result<Self, HookError> {
        let settings = config.resolve(config_dir, env.home())?;
        Ok(Self::discover(&settings, env))
    }

    pub(crate) fn discover(settings: &Settings, env: &HostEnvironment) -> Self {
        let base = settings.base_dir.as_path();
        let default_env = env.with_user_config_dir(settings.user_config_dir.as_deref());
        let mut list = vec![Profile {
            name: DEFAULT_PROFILE.to_string(),
            user: UserClaudeDir::discover(&default_env, base),
        }];
        for (name, dir) in &settings.profiles {
            // Checked at resolve: absolute, UTF-8 and outside the base dir,
            // so discover takes it as given.
            let env = env.with_user_config_dir(Some(dir));
            list.push(Profile {
                name: name.clone(),
                user: UserClaudeDir::discover(&env, base),
            });
        }
        Profiles { list }
    }

    /// `default`, then the named ones by name.
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.list.iter()
    }

    /// The profile of panes that name none.
    pub fn default_profile(&self) -> &Profile {
        &self.list[0]
    }

    /// The profile called `name` (`""` is `default`), or an error that
    /// lists the known ones.
    pub fn get(&self, name: &str) -> Result<&Profile, HookError> {
        let name = if name.is_empty() {
            DEFAULT_PROFILE
        } else {
            name
        };
        self.list
            .iter()
            .find(|profile| profile.name == name)
            .ok_or_else(|| unknown_profile(name, self.names()))
    }

    /// Every name, `default` first.
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|p| p.name.as_str()).collect()
    }
}

/// The error for a profile name nothing configures.
pub(crate) fn unknown_profile(name: &str, known: Vec<&str>) -> HookError {
    HookError::new(
        HookErrorKind::InvalidInput,
        format!(
            "unknown profile {name:?}: the known ones are {}; add it under [plugins.config.profiles] in plugins.toml (NAME = \"~/.claude-NAME\") or choose one of those",
            known.join(", ")
        ),
    )
}
