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
        Self::discover(&settings, env)
    }

    /// The profiles of `settings`; refuses two named profiles with one dir
    /// and a named dir that holds the base dir or lies in it through a
    /// link (the lexical cases are refused when the config is read).
    pub(crate) fn discover(settings: &Settings, env: &HostEnvironment) -> Result<Self, HookError> {
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
        let profiles = Profiles { list };
        profiles.check_distinct(base)?;
        Ok(profiles)
    }

    /// Each named profile is its own account: its dir is no other named
    /// profile's, and neither holds the base dir nor lies in it, even
    /// through a link. `default` may share a named profile's dir when it
    /// is the same account (the same `.claude.json`): in a server started
    /// inside a pane of profile `work`, `default` *is* work's dir (the pane
    /// said so), and both names reach one account. `work = "~/.claude"`
    /// beside the usual default (`~/.claude.json`) would be two accounts
    /// in one dir, sharing a login and conversations: refused.
    fn check_distinct(&self, base: &Path) -> Result<(), HookError> {
        let base_real = real(base);
        let known: Vec<(&Profile, PathBuf)> = self
            .list
            .iter()
            .filter_map(|profile| Some((profile, real(&profile.user.as_ref()?.dir))))
            .collect();
        for (i, (profile, dir)) in known.iter().enumerate() {
            let name = profile.name.as_str();
            if !profile.is_default() && (dir.starts_with(&base_real) || base_real.starts_with(dir))
            {
                return Err(profile_error(format!(
                    "`profiles.{name}` {} holds the isolation base dir {} or lies in it; name the account's own Claude dir (such as ~/.claude-{name})",
                    dir.display(),
                    base.display()
                )));
            }
            let Some((other, _)) = known[..i].iter().find(|(_, seen)| seen == dir) else {
                continue;
            };
            let one_account = other.is_default()
                && other.user.as_ref().map(|u| &u.claude_json)
                    == profile.user.as_ref().map(|u| &u.claude_json);
            if !one_account {
                return Err(profile_error(format!(
                    "profiles {:?} and {name:?} have the same Claude dir {}: their panes would share one login and one set of conversations; give each account its own dir",
                    other.name,
                    dir.display()
                )));
            }
        }
        Ok(())
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
        let name = or_default(name);
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

/// `path` with every link resolved as far as it exists: the nearest
/// existing ancestor canonicalized, the rest joined as written. A dir not
/// made yet is compared by where it will be.
fn real(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |real, part| real.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn profile_error(message: String) -> HookError {
    HookError::new(
        HookErrorKind::Config,
        format!("isolation plugin config: {message} (in [plugins.config] of plugins.toml)"),
    )
}

/// `name`, `""` being `default`.
pub(crate) fn or_default(name: &str) -> &str {
    if name.is_empty() {
        DEFAULT_PROFILE
    } else {
        name
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
