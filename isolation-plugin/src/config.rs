//! The plugin's `[plugins.config]` table, and the settings it resolves to.
//!
//! Every key is optional; an absent table gives the defaults below. Values
//! that would undo the isolation (sharing `.claude.json`, overriding
//! `CLAUDE_CONFIG_DIR` through `extra_env`) are refused here, when the
//! plugin loads, rather than discovered later in a broken pane.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use ccmux_plugin_api::{HookError, HookErrorKind};
use serde::Deserialize;

use crate::classification::CLAUDE_JSON;

/// The login; shared through `CLAUDE_SECURESTORAGE_CONFIG_DIR`, never linked.
const CREDENTIALS_JSON: &str = ".credentials.json";

/// Claude's backups of `.claude.json`: per pane, like the file itself.
const BACKUPS_DIR: &str = "backups";

/// The base dir when `base_dir` is not set, relative to the home dir.
pub const DEFAULT_BASE_DIR: &str = ".ccmux/claude";

pub const DEFAULT_GRACE_PERIOD_MS: u64 = 3000;

/// The longest grace period accepted: a day. Longer is a typo, and keeps
/// deadlines far from `Instant` overflow.
pub const MAX_GRACE_PERIOD_MS: u64 = 24 * 60 * 60 * 1000;

/// Entries of the user's Claude dir linked into every pane: configuration
/// the user edits, none of which Claude rewrites while it runs.
pub const DEFAULT_SHARE: &[&str] = &[
    "settings.json",
    "CLAUDE.md",
    "rules",
    "agents",
    "commands",
    "skills",
    "output-styles",
    "workflows",
    "routines",
    "themes",
    "keybindings.json",
    "loop.md",
    "plugins",
];

/// Entries of the user's Claude dir that Claude keeps per session or
/// append-only, linked into every pane (created in the user's dir first if
/// missing): conversations, history and checkpoints outlive the pane and
/// are reachable from everywhere. A trailing `/` marks a directory; a file
/// entry must be an append-only log. See the classification table in the
/// README for why each is here.
pub const DEFAULT_SHARE_DATA: &[&str] = &[
    "projects/",
    "history.jsonl",
    "file-history/",
    "todos/",
    "tasks/",
    "paste-cache/",
    "session-env/",
    "sessions/",
    "teams/",
    "debug/",
    "ide/",
    "state/deleted-transcripts/",
    "memory/",
];

/// Entries each pane keeps its own while it runs, moved into the user's
/// Claude dir before its dir is removed. For data Claude's permission
/// rules only accept at a real path of the pane's own dir (a plan file
/// written through a link asks for permission), but which must not be lost.
pub const DEFAULT_MOVE_HOME: &[&str] = &["plans/"];

/// The user-level keys of `.claude.json` copied into a new pane: who the
/// user is and what they already agreed to, so a new pane neither asks to
/// log in nor replays onboarding. Per-project state and caches stay out.
pub const DEFAULT_SEED_KEYS: &[&str] = &[
    // Who the user is and what they agreed to.
    "hasCompletedOnboarding",
    "lastOnboardingVersion",
    "oauthAccount",
    "primaryApiKey",
    "userID",
    "customApiKeyResponses",
    "hasAvailableSubscription",
    "bypassPermissionsModeAccepted",
    "hasAcknowledgedCostThreshold",
    "firstStartTime",
    // User-scope MCP servers (`claude mcp add --scope user`).
    "mcpServers",
    // What `/config` and `claude config set --global` change: the CLI's own
    // list of global settings, less its counters.
    "apiKeyHelper",
    "autoUpdates",
    "theme",
    "verbose",
    "preferredNotifChannel",
    "shiftEnterKeyBindingInstalled",
    "editorMode",
    "autoCompactEnabled",
    "autoScrollEnabled",
    "showTurnDuration",
    "showMessageTimestamps",
    "diffTool",
    "env",
    "todoFeatureEnabled",
    "showExpandedTodos",
    "briefTranscript",
    "messageIdleNotifThresholdMs",
    "autoConnectIde",
    "autoInstallIdeExtension",
    "fileCheckpointingEnabled",
    "terminalProgressBarEnabled",
    "showStatusInTerminalTab",
    "taskCompleteNotifEnabled",
    "inputNeededNotifEnabled",
    "agentPushNotifEnabled",
    "respectGitignore",
    "claudeInChromeDefaultEnabled",
    "hasCompletedClaudeInChromeOnboarding",
    "lspRecommendationDisabled",
    "lspRecommendationNeverPlugins",
    "copyFullResponse",
    "copyOnSelect",
    "leftArrowOpensAgents",
    "defaultToAgentsView",
    "permissionExplainerEnabled",
    "prStatusFooterEnabled",
    "remoteControlAtStartup",
    "autoUploadSessions",
];

/// The keys of each project (`projects[<path>]` in `.claude.json`) copied
/// into a new pane and carried back: what the user set up for a folder.
/// Never its history, caches or costs.
pub const DEFAULT_PROJECT_KEYS: &[&str] = &[
    "hasTrustDialogAccepted",
    "hasCompletedProjectOnboarding",
    "allowedTools",
    "mcpServers",
    "mcpContextUris",
    "enabledMcpServers",
    "disabledMcpServers",
    // Older names; Claude moves them into the project's
    // .claude/settings.local.json when it starts there.
    "enabledMcpjsonServers",
    "disabledMcpjsonServers",
    "enableAllProjectMcpServers",
    "hasClaudeMdExternalIncludesApproved",
    "hasClaudeMdExternalIncludesWarningShown",
];

/// Per-project keys that are history, caches or costs: refused in
/// `project_keys`, so a pane never carries them in or back.
const NEVER_PROJECT_KEYS: &[&str] = &[
    "history",
    "lastCost",
    "lastAPIDuration",
    "lastDuration",
    "lastLinesAdded",
    "lastLinesRemoved",
    "lastTotalInputTokens",
    "lastTotalOutputTokens",
    "lastTotalCacheCreationInputTokens",
    "lastTotalCacheReadInputTokens",
    "lastSessionId",
    "lastSessionMetrics",
    "lastModelUsage",
    "exampleFiles",
    "exampleFilesGeneratedAt",
];

/// The variables the plugin sets for every pane.
pub const CLAUDE_CONFIG_DIR: &str = "CLAUDE_CONFIG_DIR";
pub const CCMUX_PANE_ID: &str = "CCMUX_PANE_ID";
pub const CCMUX_CLAUDE_SESSION_ID: &str = "CCMUX_CLAUDE_SESSION_ID";
/// Where Claude keeps auto-memory (`projects/<repo>/memory/`), when set.
pub const CLAUDE_CODE_REMOTE_MEMORY_DIR: &str = "CLAUDE_CODE_REMOTE_MEMORY_DIR";
/// The user's own Claude dir as the server that made a pane found it: the
/// user's raw `CLAUDE_CONFIG_DIR`, or empty for `~/.claude`. A server
/// started inside the pane (whose `CLAUDE_CONFIG_DIR` is the pane's) reads
/// it to find the user's dir again.
pub const CCMUX_USER_CLAUDE_CONFIG_DIR: &str = "CCMUX_USER_CLAUDE_CONFIG_DIR";
/// Since 2.1.234: the name of the `projects/` folder of every session,
/// instead of one per working dir, but only while `CLAUDE_CONFIG_DIR` is
/// set. Cleared in panes unless the user's own environment sets
/// `CLAUDE_CONFIG_DIR` too (see `IsolationPlugin::keep_projects_where_the_user_finds_them`).
pub const CLAUDE_CODE_PROJECT_DIR_NAME: &str = "CLAUDE_CODE_PROJECT_DIR_NAME";
/// The profile a pane is in (a name of `profiles`, or `default`): read
/// from the pane's environment at spawn, set there by the host (host-shim
/// `--profile`) or by the user; the plugin sets it to the profile the pane
/// got, so a server started inside the pane stays in it.
pub const CCMUX_PROFILE: &str = "CCMUX_PROFILE";
/// The profile of a pane that names none.
pub const DEFAULT_PROFILE: &str = "default";
/// Where Claude reads `.credentials.json` from, when set.
pub const CLAUDE_SECURESTORAGE_CONFIG_DIR: &str = "CLAUDE_SECURESTORAGE_CONFIG_DIR";

/// With profiles, `extra_env` may not set these either: each names one
/// account's dir, and each profile's panes get their own.
const PER_PROFILE_ENV: &[&str] = &[
    CLAUDE_SECURESTORAGE_CONFIG_DIR,
    CLAUDE_CODE_REMOTE_MEMORY_DIR,
];

/// `extra_env` may not set these: that would undo the isolation.
const RESERVED_ENV: &[&str] = &[
    CLAUDE_CONFIG_DIR,
    CCMUX_PROFILE,
    CCMUX_PANE_ID,
    CCMUX_CLAUDE_SESSION_ID,
    CCMUX_USER_CLAUDE_CONFIG_DIR,
];

/// The `[plugins.config]` table, as written in plugins.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IsolationConfig {
    /// Where pane dirs live. `~` is the home dir; a relative path is
    /// relative to the directory of plugins.toml. Default `~/.ccmux/claude`.
    pub base_dir: Option<PathBuf>,
    /// The user's own Claude dir, as if the server had been started with
    /// `CLAUDE_CONFIG_DIR` set to it. Default: the server's
    /// `CLAUDE_CONFIG_DIR`, else `~/.claude` (with `~/.claude.json`).
    pub user_config_dir: Option<PathBuf>,
    /// How long a closed pane's dir is kept, so re-creating the pane keeps
    /// its Claude state. 0 removes it at once.
    pub grace_period_ms: u64,
    /// Off by default. When set, server start also removes pane dirs of
    /// *other* server identities that are not running and unused for this
    /// long.
    pub max_age_secs: Option<u64>,
    /// Entries of the user's Claude dir symlinked into every pane.
    pub share: Vec<String>,
    /// Entries of the user's Claude dir that every pane shares as data:
    /// created in the user's dir if missing, then linked; anything
    /// pane-local there is moved home before a pane dir is removed.
    pub share_data: Vec<String>,
    /// Entries each pane keeps its own while it runs and that are moved
    /// into the user's Claude dir before its dir is removed.
    pub move_home: Vec<String>,
    /// Top-level keys of the user's `.claude.json` copied into a new pane
    /// and carried back at close.
    pub seed_keys: Vec<String>,
    /// Keys of each project copied into a new pane and carried back.
    pub project_keys: Vec<String>,
    /// Bring what a pane changed in its `.claude.json` (of `seed_keys` and
    /// `project_keys`) back into the user's file before its dir is removed.
    pub carry_back: bool,
    /// Point `CLAUDE_SECURESTORAGE_CONFIG_DIR` at the user's Claude dir, so
    /// every pane uses the user's login.
    pub share_credentials: bool,
    /// Set in every pane's environment, after the plugin's own variables.
    pub extra_env: BTreeMap<String, String>,
    /// Named profiles, one per Claude account: a name (ASCII letters,
    /// digits, `_`, `-`) and the user's Claude dir for that account, as
    /// `CLAUDE_CONFIG_DIR=DIR claude` would use it (`~` is the home dir, a
    /// relative path is relative to plugins.toml's directory). A pane
    /// chooses one with `CCMUX_PROFILE=NAME` in its environment; without
    /// it, the pane is in profile `default`: `user_config_dir`, else the
    /// server's `CLAUDE_CONFIG_DIR`, else `~/.claude`.
    pub profiles: BTreeMap<String, PathBuf>,
}

impl Default for IsolationConfig {
    fn default() -> Self {
        IsolationConfig {
            base_dir: None,
            user_config_dir: None,
            grace_period_ms: DEFAULT_GRACE_PERIOD_MS,
            max_age_secs: None,
            share: DEFAULT_SHARE.iter().map(ToString::to_string).collect(),
            share_data: DEFAULT_SHARE_DATA.iter().map(ToString::to_string).collect(),
            move_home: DEFAULT_MOVE_HOME.iter().map(ToString::to_string).collect(),
            seed_keys: DEFAULT_SEED_KEYS.iter().map(ToString::to_string).collect(),
            project_keys: DEFAULT_PROJECT_KEYS
                .iter()
                .map(ToString::to_string)
                .collect(),
            carry_back: true,
            share_credentials: true,
            extra_env: BTreeMap::new(),
            profiles: BTreeMap::new(),
        }
    }
}

/// One entry of `share_data` or `move_home`: `"projects/"` is a dir,
/// `"history.jsonl"` an append-only file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataEntry {
    pub name: String,
    pub kind: DataKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataKind {
    Dir,
    /// Only ever appended to: a pane-local copy is appended home.
    AppendLog,
}

impl DataEntry {
    /// Parses a config entry; the caller checks the name itself.
    pub(crate) fn parse(entry: &str) -> DataEntry {
        match entry.strip_suffix('/') {
            Some(name) => DataEntry {
                name: name.to_string(),
                kind: DataKind::Dir,
            },
            None => DataEntry {
                name: entry.to_string(),
                kind: DataKind::AppendLog,
            },
        }
    }
}

/// A checked config with every path absolute.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Absolute and valid UTF-8 (it goes into `CLAUDE_CONFIG_DIR`).
    pub base_dir: PathBuf,
    /// Absolute, if set.
    pub user_config_dir: Option<PathBuf>,
    pub grace_period: Duration,
    pub max_age: Option<Duration>,
    pub share: Vec<String>,
    pub share_data: Vec<DataEntry>,
    pub move_home: Vec<DataEntry>,
    pub seed_keys: Vec<String>,
    pub project_keys: Vec<String>,
    pub carry_back: bool,
    pub share_credentials: bool,
    pub extra_env: Vec<(String, String)>,
    /// The named profiles, each dir absolute, by name (never `default`).
    pub profiles: BTreeMap<String, PathBuf>,
}

impl IsolationConfig {
    /// Checks every value and resolves `base_dir` against `config_dir` (the
    /// directory of plugins.toml) and `home`.
    pub(crate) fn resolve(
        self,
        config_dir: &Path,
        home: Option<&Path>,
    ) -> Result<Settings, HookError> {
        let base_dir = resolve_base_dir(self.base_dir.as_deref(), config_dir, home)?;
        let user_config_dir = match self.user_config_dir.as_deref() {
            Some(dir) => Some(resolve_path("user_config_dir", dir, config_dir, home)?),
            None => None,
        };
        if base_dir.to_str().is_none() {
            return Err(config_error(format!(
                "`base_dir` {} is not valid UTF-8, so it cannot be put into CLAUDE_CONFIG_DIR; choose another directory",
                base_dir.display()
            )));
        }
        if self.grace_period_ms > MAX_GRACE_PERIOD_MS {
            return Err(config_error(format!(
                "`grace_period_ms` = {} is more than a day ({MAX_GRACE_PERIOD_MS}); use a smaller value",
                self.grace_period_ms
            )));
        }
        for name in &self.share {
            check_share_name("share", name)?;
        }
        let share_data = check_data_entries("share_data", &self.share_data, &self.share, &[])?;
        let move_home =
            check_data_entries("move_home", &self.move_home, &self.share, &self.share_data)?;
        if self.seed_keys.iter().any(|key| key == "projects") {
            return Err(config_error(
                "`seed_keys` may not contain \"projects\": per-project state belongs to each pane; remove it"
                    .to_string(),
            ));
        }
        if let Some(key) = self
            .project_keys
            .iter()
            .find(|key| NEVER_PROJECT_KEYS.contains(&key.as_str()))
        {
            return Err(config_error(format!(
                "`project_keys` may not contain {key:?}: it is per-project history, cache or cost, which panes never carry; remove it"
            )));
        }
        let mut extra_env = Vec::with_capacity(self.extra_env.len());
        for (key, value) in self.extra_env {
            check_env_entry(&key, &value)?;
            if !self.profiles.is_empty() && PER_PROFILE_ENV.contains(&key.as_str()) {
                return Err(config_error(format!(
                    "`extra_env` may not set {key} while `profiles` are configured: it names one account's dir, and every profile's panes would use it; each profile's panes get their own"
                )));
            }
            extra_env.push((key, value));
        }
        let mut profiles = BTreeMap::new();
        for (name, dir) in &self.profiles {
            check_profile_name(name)?;
            // The name is in file names: one case-insensitive file system
            // (macOS's) would make `Work` and `work` one.
            if let Some(other) = profiles
                .keys()
                .find(|other: &&String| other.eq_ignore_ascii_case(name))
            {
                return Err(config_error(format!(
                    "profiles {other:?} and {name:?} differ only in case; rename one"
                )));
            }
            let key = format!("profiles.{name}");
            let dir = resolve_path(&key, dir, config_dir, home)?;
            if dir.starts_with(&base_dir) {
                return Err(config_error(format!(
                    "`{key}` {} is inside `base_dir`, where pane dirs live; name the account's own Claude dir (such as ~/.claude-{name})",
                    dir.display()
                )));
            }
            if dir.to_str().is_none() {
                return Err(config_error(format!(
                    "`{key}` {} is not valid UTF-8, so it cannot be put into CLAUDE_CONFIG_DIR; choose another directory",
                    dir.display()
                )));
            }
            profiles.insert(name.clone(), dir);
        }
        Ok(Settings {
            base_dir,
            user_config_dir,
            grace_period: Duration::from_millis(self.grace_period_ms),
            max_age: self.max_age_secs.map(Duration::from_secs),
            share: self.share,
            share_data,
            move_home,
            seed_keys: self.seed_keys,
            project_keys: self.project_keys,
            carry_back: self.carry_back,
            share_credentials: self.share_credentials,
            extra_env,
            profiles,
        })
    }
}

fn config_error(message: String) -> HookError {
    HookError::new(
        HookErrorKind::Config,
        format!("isolation plugin config: {message} (in [plugins.config] of plugins.toml)"),
    )
}

/// A path of the config: `~` is the home dir, a relative path is relative
/// to the directory of plugins.toml; absolute, `.` and `..` applied.
fn resolve_path(
    key: &str,
    path: &Path,
    config_dir: &Path,
    home: Option<&Path>,
) -> Result<PathBuf, HookError> {
    if path.as_os_str().is_empty() {
        return Err(config_error(format!(
            "`{key}` is empty; remove it or name a directory"
        )));
    }
    let joined = match path.strip_prefix("~") {
        Ok(rest) => home
            .ok_or_else(|| {
                config_error(format!(
                    "`{key}` starts with `~` but the home directory is unknown; write the full path"
                ))
            })?
            .join(rest),
        Err(_) if path.to_string_lossy().starts_with('~') => {
            return Err(config_error(format!(
                "`{key}` {} uses `~user`, which is not supported; write the full path",
                path.display()
            )))
        }
        Err(_) => config_dir.join(path),
    };
    let absolute = std::path::absolute(&joined).map_err(|err| {
        config_error(format!(
            "cannot make `{key}` {} absolute: {err}",
            joined.display()
        ))
    })?;
    Ok(normalize_lexically(&absolute))
}

fn resolve_base_dir(
    configured: Option<&Path>,
    config_dir: &Path,
    home: Option<&Path>,
) -> Result<PathBuf, HookError> {
    let needs_home = || {
        home.ok_or_else(|| {
            config_error(
                "the home directory is unknown (HOME is unset or not absolute); set `base_dir` to an absolute path"
                    .to_string(),
            )
        })
    };
    let path = match configured {
        None => needs_home()?.join(DEFAULT_BASE_DIR),
        Some(p) if p.as_os_str().is_empty() => {
            return Err(config_error(
                "`base_dir` is empty; remove it or name a directory".to_string(),
            ))
        }
        Some(p) => match p.strip_prefix("~") {
            Ok(rest) => needs_home()?.join(rest),
            // `~user/...` is shell syntax this plugin does not expand; as a
            // relative path it would silently land beside plugins.toml.
            Err(_) if p.to_string_lossy().starts_with('~') => {
                return Err(config_error(format!(
                    "`base_dir` {} uses `~user`, which is not supported; write the full path",
                    p.display()
                )))
            }
            Err(_) => config_dir.join(p),
        },
    };
    let path = std::path::absolute(&path).map_err(|err| {
        config_error(format!(
            "cannot make `base_dir` {} absolute: {err}",
            path.display()
        ))
    })?;
    // `absolute` keeps `..`, and `starts_with` compares components as
    // written: `~/x/..` would pass the check below while naming the home
    // dir itself. Checked and used in its normal form.
    let path = normalize_lexically(&path);
    // The orphan scan deletes directories under the base dir; pointing it at
    // the home dir or one of its ancestors would put the user's own files in
    // its reach.
    if let Some(home) = home {
        if normalize_lexically(home).starts_with(&path) {
            return Err(config_error(format!(
                "`base_dir` {} is the home directory or contains it; use a dedicated directory such as ~/{DEFAULT_BASE_DIR}",
                path.display()
            )));
        }
    }
    if path.parent().is_none() {
        return Err(config_error(
            "`base_dir` is the filesystem root; use a dedicated directory".to_string(),
        ));
    }
    Ok(path)
}

/// `path` with every `.` dropped and every `..` applied to the component
/// before it, without asking the filesystem. Unlike `canonicalize`, it needs no existing path, and it reads
/// `x/link/..` as `x`, the way the user wrote it, whatever `link` points to.
pub(crate) fn normalize_lexically(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match normal.components().next_back() {
                Some(Component::Normal(_)) => {
                    normal.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                // Leading `..`s of a relative path have nothing to apply to.
                Some(Component::ParentDir | Component::CurDir) | None => normal.push(component),
            },
            Component::Prefix(_) | Component::RootDir | Component::Normal(_) => {
                normal.push(component);
            }
        }
    }
    normal
}

fn check_share_name(key: &str, name: &str) -> Result<(), HookError> {
    let mut components = Path::new(name).components();
    let single_name = matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    );
    if !single_name || name.contains('/') {
        return Err(config_error(format!(
            "`{key}` entry {name:?} is not a single file or directory name of the Claude dir; write names such as \"settings.json\" or \"projects/\""
        )));
    }
    if name == CLAUDE_JSON {
        return Err(config_error(format!(
            "`{key}` may not contain {CLAUDE_JSON:?}: sharing it is exactly what corrupts it; its user-level keys are seeded instead (see `seed_keys`)"
        )));
    }
    if name == CREDENTIALS_JSON {
        return Err(config_error(format!(
            "`{key}` may not contain {CREDENTIALS_JSON:?}: Claude replaces it whole at every token refresh, which would turn the link into a pane's own copy; the login is shared through `share_credentials` instead"
        )));
    }
    Ok(())
}

/// A `share_data` or `move_home` name: a single name, or for a directory
/// a path of names below the Claude dir (`state/deleted-transcripts/`),
/// whose parents stay each pane's own.
fn check_data_name(key: &str, data: &DataEntry) -> Result<(), HookError> {
    let Some((parents, last)) = data.name.rsplit_once('/') else {
        return check_share_name(key, &data.name);
    };
    if data.kind != DataKind::Dir {
        return Err(config_error(format!(
            "`{key}` entry {:?} is a path to a file; only directories may be below the Claude dir (end it with `/`), files must be single names",
            data.name
        )));
    }
    for part in parents.split('/').chain([last]) {
        let normal = matches!(
            Path::new(part).components().collect::<Vec<_>>().as_slice(),
            [Component::Normal(_)]
        );
        if !normal || part.is_empty() || part == "." || part == ".." {
            return Err(config_error(format!(
                "`{key}` entry {:?} is not a path of names below the Claude dir; write names such as \"projects/\" or \"state/deleted-transcripts/\"",
                data.name
            )));
        }
    }
    let top = parents.split('/').next().unwrap_or_default();
    if top == CLAUDE_JSON || top == CREDENTIALS_JSON || top == BACKUPS_DIR {
        return Err(config_error(format!(
            "`{key}` entry {:?} is below {top:?}, which each pane keeps its own",
            data.name
        )));
    }
    Ok(())
}

/// Parses and checks the entries of `key` (`share_data` or `move_home`):
/// single names (or dir paths), never what must stay per pane, and in no
/// other list.
fn check_data_entries(
    key: &str,
    entries: &[String],
    share: &[String],
    other: &[String],
) -> Result<Vec<DataEntry>, HookError> {
    let mut checked = Vec::with_capacity(entries.len());
    for name in entries {
        let data = DataEntry::parse(name);
        check_data_name(key, &data)?;
        if data.name == BACKUPS_DIR {
            return Err(config_error(format!(
                "`{key}` may not contain {BACKUPS_DIR:?}: it holds backups of .claude.json, which each pane keeps its own"
            )));
        }
        let elsewhere =
            |list: &[String]| list.iter().any(|n| DataEntry::parse(n).name == data.name);
        let nested = |list: &[String]| {
            list.iter().map(|n| DataEntry::parse(n).name).any(|n| {
                n != data.name
                    && (n.starts_with(&format!("{}/", data.name))
                        || data.name.starts_with(&format!("{n}/")))
            })
        };
        if nested(entries) || nested(other) {
            return Err(config_error(format!(
                "{:?} in `{key}` is inside another entry of `share_data` or `move_home`, or holds one; keep only one of them",
                data.name
            )));
        }
        if elsewhere(share) || elsewhere(other) {
            return Err(config_error(format!(
                "{:?} is in `{key}` and in another of `share`, `share_data` and `move_home`; keep it in one",
                data.name
            )));
        }
        checked.push(data);
    }
    Ok(checked)
}

/// A profile's name goes into file names (`{base}/.pending-carry-back.NAME`)
/// and pane metadata: a pane id's characters, and never `default`, which
/// is always the profile a pane without one is in.
fn check_profile_name(name: &str) -> Result<(), HookError> {
    if name == DEFAULT_PROFILE {
        return Err(config_error(format!(
            "`profiles.{DEFAULT_PROFILE}` is not allowed: `{DEFAULT_PROFILE}` is always the profile of panes that name none (its dir is `user_config_dir`, else the server's CLAUDE_CONFIG_DIR, else ~/.claude); set `user_config_dir` instead"
        )));
    }
    if let Err(err) = ccmux_plugin_api::check_pane_id(name) {
        return Err(config_error(format!(
            "profile name {name:?} is not usable: {err}; use ASCII letters, digits, `_` and `-`"
        )));
    }
    Ok(())
}

fn check_env_entry(key: &str, value: &str) -> Result<(), HookError> {
    if key.is_empty() || key.contains('=') || key.contains('\0') {
        return Err(config_error(format!(
            "`extra_env` key {key:?} is not a valid variable name"
        )));
    }
    if value.contains('\0') {
        return Err(config_error(format!(
            "`extra_env.{key}` contains a NUL byte"
        )));
    }
    if RESERVED_ENV.contains(&key) {
        return Err(config_error(format!(
            "`extra_env` may not set {key}: the plugin sets it for each pane, and overriding it would undo the isolation"
        )));
    }
    Ok(())
}
