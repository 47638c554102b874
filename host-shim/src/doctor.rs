//! `host-shim doctor`: one command to run when something looks wrong.
//!
//! It looks, and changes nothing: the `claude` on `PATH` (its version,
//! inside the supported range or not), the user's Claude dir and
//! `.claude.json` (valid, size, projects), which login the panes will use,
//! the plugins.toml and its plugins, carry-backs still pending, the pane
//! dirs and what they hold, and entries nobody classifies (in the user's
//! dir and in pane dirs). One line per finding:
//!
//! ```text
//! ok    claude: 2.1.337 at /usr/bin/claude, inside the supported range (2.1.197 to 2.1.337)
//! FIX   .claude.json: /home/me/.claude.json is not valid JSON (line 3 column 1: ...) -> restore it from ...
//! info  pane work-1: kept, last used 2 days ago
//! ```
//!
//! `FIX` lines say what to do; doctor exits 1 if there is one, else 0
//! (2 for bad arguments). It works without Claude installed, and without
//! any plugins.toml.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use ccmux_plugin_api::host::{printable, PluginHost, PluginState, PluginsConfig};

use crate::cli::ConfigArg;
use crate::isolation::{self, Readiness};
use crate::{config_file, exit};

/// The isolation plugin's own table of config-dir entries, so doctor and
/// the plugin agree on what is unknown.
use ccmux_isolation_plugin::classification;

/// The supported Claude Code releases (README, "Supported Claude Code
/// releases"; `.ci/install-claude` installs both ends).
pub const OLDEST: (u32, u32, u32) = (2, 1, 197);
pub const NEWEST: (u32, u32, u32) = (2, 1, 337);

/// How long `claude --version` may take before doctor gives up on it.
const VERSION_WAIT: Duration = Duration::from_secs(30);
/// The largest `.claude.json` doctor parses.
const CLAUDE_JSON_CAP: u64 = 1 << 30;
/// The isolation plugin's default base dir, below the home dir.
const DEFAULT_BASE: &str = ".ccmux/claude";
/// The pending carry-backs in the base dir: those of the usual
/// `~/.claude.json`; every other user file's (a named profile's, a
/// `CLAUDE_CONFIG_DIR`'s) is this name, a dot and a key made from its path.
const PENDING_DIR: &str = ".pending-carry-back";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Info,
    Fix,
}

struct Finding {
    level: Level,
    text: String,
}

#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn ok(&mut self, text: impl Into<String>) {
        self.push(Level::Ok, text.into());
    }
    fn info(&mut self, text: impl Into<String>) {
        self.push(Level::Info, text.into());
    }
    /// A finding that needs action: `what` is wrong, `todo` says what to do.
    fn fix(&mut self, what: impl Into<String>, todo: &str) {
        self.push(Level::Fix, format!("{} -> {todo}", what.into()));
    }
    fn push(&mut self, level: Level, text: String) {
        self.findings.push(Finding { level, text });
    }
}

/// Runs every check, prints one line per finding on stdout.
pub fn doctor(args: &ConfigArg) -> u8 {
    let mut report = Report::default();
    let home = dirs::home_dir().filter(|h| h.is_absolute());
    check_claude(&mut report);
    let isolation = check_config(&mut report, args.config.as_deref());
    let user = UserDir::find(home.as_deref(), isolation.as_ref());
    match &user {
        Some(user) => {
            check_user_dir(&mut report, user);
            if isolation.as_ref().is_some_and(|iso| !iso.share_credentials) {
                report.info("login: `share_credentials = false`: each pane logs in on its own (/login in the pane)");
            } else {
                check_login(&mut report, user);
            }
        }
        None => report.fix(
            "user's Claude dir: no home dir and no CLAUDE_CONFIG_DIR",
            "set HOME (or CLAUDE_CONFIG_DIR) to an absolute path",
        ),
    }
    let base = isolation
        .as_ref()
        .and_then(|iso| iso.base_dir.clone())
        .or_else(|| home.as_ref().map(|h| h.join(DEFAULT_BASE)));
    if let Some(base) = base {
        check_base(&mut report, &base);
    }
    let mut stdout = std::io::stdout().lock();
    for finding in &report.findings {
        let tag = match finding.level {
            Level::Ok => "ok  ",
            Level::Info => "info",
            Level::Fix => "FIX ",
        };
        let _ = std::io::Write::write_fmt(&mut stdout, format_args!("{tag}  {}\n", finding.text));
    }
    let fixes = report
        .findings
        .iter()
        .filter(|f| f.level == Level::Fix)
        .count();
    if fixes > 0 {
        say!("host-shim doctor: {fixes} finding(s) need action (the FIX lines)");
        exit::FAILURE
    } else {
        exit::SUCCESS
    }
}

/// `X.Y.Z` at the start of `text` (`2.1.337 (Claude Code)`).
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let word = text.split_whitespace().next()?;
    let mut parts = word.split('.').map(|p| p.parse::<u32>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

fn show((a, b, c): (u32, u32, u32)) -> String {
    format!("{a}.{b}.{c}")
}

/// The first executable `claude` on `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|file| {
            std::fs::metadata(file)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn check_claude(report: &mut Report) {
    let range = format!("{} to {}", show(OLDEST), show(NEWEST));
    let Some(claude) = find_on_path("claude") else {
        report.fix(
            "claude: not found on PATH",
            &format!("install Claude Code (a release from {range}) or add its directory to PATH; panes that run `claude` fail until then"),
        );
        return;
    };
    let output = match version_of(&claude) {
        Ok(output) => output,
        Err(why) => {
            report.fix(
                format!("claude: {} {why}", claude.display()),
                "run `claude --version` by hand to see why; reinstall Claude Code if it fails",
            );
            return;
        }
    };
    match parse_version(&output) {
        Some(v) if v >= OLDEST && v <= NEWEST => report.ok(format!(
            "claude: {} at {}, inside the supported range ({range})",
            show(v),
            claude.display()
        )),
        Some(v) if v < OLDEST => report.fix(
            format!("claude: {} at {} is older than the supported range ({range})", show(v), claude.display()),
            "update Claude Code (`claude update`, or your package manager)",
        ),
        Some(v) => report.fix(
            format!("claude: {} at {} is newer than the releases ccmux is tested with ({range})", show(v), claude.display()),
            "it probably works; run `host-shim doctor` after using it in a pane to see unknown entries, and report them (or install a release from the range)",
        ),
        None => report.fix(
            format!("claude: {} --version printed {:?}, not a version", claude.display(), output.trim()),
            "check that this `claude` is Claude Code",
        ),
    }
}

/// `claude --version`'s output, waiting at most [`VERSION_WAIT`].
fn version_of(claude: &Path) -> Result<String, String> {
    let mut child = Command::new(claude)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("could not be run: {err}"))?;
    let deadline = Instant::now() + VERSION_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = String::new();
                if let Some(mut stdout) = child.stdout.take() {
                    let _ = stdout.read_to_string(&mut out);
                }
                return if status.success() {
                    Ok(out)
                } else {
                    Err(format!("--version failed ({status})"))
                };
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "--version did not answer within {}s",
                    VERSION_WAIT.as_secs()
                ));
            }
            Err(err) => return Err(format!("could not be waited on: {err}")),
        }
    }
}

/// What doctor needs of the isolation plugin's config.
struct Isolation {
    base_dir: Option<PathBuf>,
    user_config_dir: Option<PathBuf>,
    /// `share_credentials` (default true): panes use the user's login.
    share_credentials: bool,
}

/// `~` is the home dir; relative paths are relative to plugins.toml's dir.
fn config_path(value: &str, config_dir: &Path) -> Option<PathBuf> {
    let path = match value.strip_prefix("~") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            dirs::home_dir()?.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(value),
    };
    Some(if path.is_absolute() {
        path
    } else {
        config_dir.join(path)
    })
}

fn check_config(report: &mut Report, given: Option<&Path>) -> Option<Isolation> {
    let choice = match config_file::resolve(given) {
        Ok(choice) => choice,
        Err(err) => {
            report.info(format!(
                "plugins.toml: {err} (doctor goes on with the isolation plugin's defaults)"
            ));
            return None;
        }
    };
    let config = match PluginsConfig::load(&choice.file) {
        Ok(config) => config,
        Err(err) => {
            report.fix(
                format!("plugins.toml: {choice}: {err}"),
                "fix the file (`host-shim check --config FILE` says the same)",
            );
            return None;
        }
    };
    report.ok(format!("plugins.toml: {choice}"));
    match PluginHost::inspect(&choice.file) {
        Ok(host) => {
            for status in host.statuses() {
                match &status.state {
                    PluginState::Failed(err) => report.fix(
                        format!("plugin {}: does not load: {err}", status.name),
                        "fix its entry or build it (`host-shim check` for details); a required plugin that fails stops every pane",
                    ),
                    PluginState::Disabled => {
                        report.info(format!("plugin {}: disabled", status.name))
                    }
                    PluginState::Active(_) => report.ok(format!("plugin {}: loads", status.name)),
                }
            }
        }
        Err(err) => report.fix(
            format!("plugins: {err}"),
            "fix plugins.toml (`host-shim check`)",
        ),
    }
    let entry = config.plugins.iter().find(|p| isolation::is_isolation(p));
    let Some(entry) = entry else {
        report.info("isolation: no isolation plugin in plugins.toml: panes share ~/.claude.json");
        return None;
    };
    if !entry.enabled {
        report.info("isolation: disabled: panes share ~/.claude.json; run one Claude at a time");
    }
    check_profiles(report, &choice, &config, entry);
    let text = |key: &str| entry.config.get(key).and_then(|v| v.as_str());
    Some(Isolation {
        base_dir: text("base_dir").and_then(|v| config_path(v, &config.dir)),
        user_config_dir: text("user_config_dir").and_then(|v| config_path(v, &config.dir)),
        share_credentials: entry
            .config
            .get("share_credentials")
            .and_then(|v| v.as_bool())
            .unwrap_or(true),
    })
}

/// One line per profile, when plugins.toml names some besides `default`:
/// its dir, its `.claude.json` and its login. One without a login is
/// `info` (`/login` in a pane of it logs it in, and makes a missing dir);
/// one whose dir cannot be made (its parent is missing) is `FIX`. A config the
/// plugin refuses is the plugin's own `FIX` line above.
fn check_profiles(
    report: &mut Report,
    choice: &config_file::ConfigChoice,
    config: &PluginsConfig,
    entry: &ccmux_plugin_api::host::PluginEntry,
) {
    let Ok((profiles, settings)) = isolation::profiles(choice, config, entry) else {
        return;
    };
    if profiles.iter().count() < 2 {
        return;
    }
    for profile in profiles.iter() {
        match isolation::describe_profile(profile, settings.share_credentials) {
            (Readiness::Ready, line) => report.ok(line),
            (Readiness::ToDo, line) => report.info(line),
            (Readiness::Broken(todo), line) => report.fix(line, &todo),
        }
    }
}

/// The user's Claude dir and `.claude.json`, found as the plugin finds
/// them.
struct UserDir {
    dir: PathBuf,
    claude_json: PathBuf,
}

impl UserDir {
    fn find(home: Option<&Path>, isolation: Option<&Isolation>) -> Option<Self> {
        let configured = isolation.and_then(|iso| iso.user_config_dir.clone());
        let from_env = std::env::var_os("CLAUDE_CONFIG_DIR")
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute());
        match configured.or(from_env) {
            Some(dir) => Some(UserDir {
                claude_json: dir.join(".claude.json"),
                dir,
            }),
            None => home.map(|home| UserDir {
                dir: home.join(".claude"),
                claude_json: home.join(".claude.json"),
            }),
        }
    }
}

fn check_user_dir(report: &mut Report, user: &UserDir) {
    match std::fs::symlink_metadata(&user.dir) {
        Ok(meta) if meta.is_dir() || std::fs::metadata(&user.dir).is_ok_and(|m| m.is_dir()) => {
            report.ok(format!("user's Claude dir: {}", user.dir.display()))
        }
        Ok(_) => report.fix(
            format!(
                "user's Claude dir: {} is not a directory",
                user.dir.display()
            ),
            "move it aside; Claude and ccmux need a directory there",
        ),
        Err(_) => report.info(format!(
            "user's Claude dir: {} does not exist yet (Claude and the first pane make it)",
            user.dir.display()
        )),
    }
    check_claude_json(report, &user.claude_json);
    check_user_entries(report, &user.dir);
}

fn check_claude_json(report: &mut Report, file: &Path) {
    let shown = file.display();
    let meta = match std::fs::symlink_metadata(file) {
        Ok(meta) => meta,
        Err(_) => {
            report.info(format!(
                ".claude.json: {shown} does not exist yet (Claude makes it at its first run)"
            ));
            return;
        }
    };
    let link = meta.file_type().is_symlink();
    let meta = match std::fs::metadata(file) {
        Ok(meta) => meta,
        Err(err) => {
            report.fix(
                format!(".claude.json: {shown} cannot be read: {err}"),
                "a link that leads nowhere? make it a regular file",
            );
            return;
        }
    };
    if !meta.is_file() {
        report.fix(
            format!(".claude.json: {shown} is not a regular file"),
            "move it aside; Claude rewrites it as a regular file",
        );
        return;
    }
    if meta.len() > CLAUDE_JSON_CAP {
        report.fix(
            format!(".claude.json: {shown} is {} bytes", meta.len()),
            "trim old projects' `history` (run `claude project purge` in a plain terminal)",
        );
        return;
    }
    let text = match std::fs::read(file) {
        Ok(text) => text,
        Err(err) => {
            report.fix(
                format!(".claude.json: {shown} cannot be read: {err}"),
                "check its owner and mode",
            );
            return;
        }
    };
    let backups = "restore it from the newest good copy in ~/.claude/backups/ or ~/.ccmux/claude/.claude-json-backups/ (Claude otherwise starts over with defaults: no onboarding, no trust, no MCP servers)";
    match serde_json::from_slice::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(map)) => {
            let projects = map
                .get("projects")
                .and_then(|p| p.as_object())
                .map_or(0, |p| p.len());
            report.ok(format!(
                ".claude.json: {shown} is valid, {} bytes, {projects} projects",
                meta.len()
            ));
            if link {
                report.info(format!(
                    ".claude.json: {shown} is a link: ccmux never writes through it, so what panes set up waits in the pending carry-backs until it is a regular file"
                ));
            }
        }
        Ok(_) => report.fix(
            format!(".claude.json: {shown} is JSON but not an object"),
            backups,
        ),
        Err(err) => report.fix(
            format!(".claude.json: {shown} is not valid JSON ({err})"),
            backups,
        ),
    }
}

fn check_login(report: &mut Report, user: &UserDir) {
    let store = std::env::var_os("CLAUDE_SECURESTORAGE_CONFIG_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| user.dir.clone());
    let credentials = store.join(".credentials.json");
    if std::env::var_os("ANTHROPIC_API_KEY").is_some_and(|k| !k.is_empty()) {
        report.ok(
            "login: panes use the API key in ANTHROPIC_API_KEY (inherited from this environment)",
        );
    } else if credentials.is_file() {
        report.ok(format!(
            "login: panes use the user's login in {} (shared by every pane)",
            credentials.display()
        ));
    } else if cfg!(target_os = "macos") {
        report.info("login: panes use the user's Keychain entry (`Claude Code-credentials`), if `claude` was logged in");
    } else {
        report.info(format!(
            "login: none ({} missing): panes will say \"Not logged in\"; run `claude` and /login once, in any pane or terminal",
            credentials.display()
        ));
    }
}

/// Whether a top-level entry name is one the plugin classifies, or one of
/// ccmux's own (its merge lock, a beside copy is reported separately).
fn known(name: &str) -> bool {
    classification::class_of(name).is_some() || name == ".ccmux-claude-json.lock"
}

/// `{stem}.pane-{id}[-n][.ext]`: a pane's copy kept beside the user's.
fn is_beside_copy(name: &str) -> bool {
    name.contains(".pane-")
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn check_user_entries(report: &mut Report, dir: &Path) {
    let names = names_in(dir);
    let beside: Vec<&String> = names.iter().filter(|n| is_beside_copy(n)).collect();
    if !beside.is_empty() {
        report.fix(
            format!(
                "user's Claude dir: {} kept beside the user's own by ccmux: {}",
                beside.len(),
                list(&beside)
            ),
            "each is a pane's copy of an entry the user also had; merge what you need into the user's entry, then delete the copy",
        );
    }
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !known(n) && !is_beside_copy(n))
        .collect();
    if !unknown.is_empty() {
        report.info(format!(
            "user's Claude dir: entries ccmux does not classify: {} (harmless here; in a pane they are kept at its removal)",
            list(&unknown)
        ));
    }
}

fn list(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_base(report: &mut Report, base: &Path) {
    if !base.is_dir() {
        report.info(format!(
            "pane dirs: {} does not exist (no pane has run with isolation yet)",
            base.display()
        ));
        return;
    }
    // The store of ~/.claude.json, then one per other user file
    // (`.pending-carry-back.KEY`): a finding for each that holds any.
    let stores: Vec<String> = names_in(base)
        .into_iter()
        .filter(|n| n == PENDING_DIR || n.starts_with(&format!("{PENDING_DIR}.")))
        .collect();
    let mut none_pending = true;
    for store in stores {
        let pending_dir = base.join(&store);
        let pending: Vec<String> = names_in(&pending_dir)
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect();
        if pending.is_empty() {
            continue;
        }
        none_pending = false;
        // One store per user file; each entry names the file it goes into
        // (entries from before profiles do not: the usual ~/.claude.json).
        let into = pending
            .iter()
            .find_map(|entry| {
                crate::state_file::read(&pending_dir.join(entry).join("target"), 64 * 1024)
                    .ok()
                    .flatten()
            })
            .map(|target| format!(" into {}", printable(&String::from_utf8_lossy(&target))))
            .unwrap_or_default();
        report.fix(
            format!(
                "pending carry-backs{into}: {} in {} ({})",
                pending.len(),
                printable(&pending_dir.to_string_lossy()),
                printable(&pending.join(", "))
            ),
            "what those panes set up (MCP servers, trust, settings) is not in the user's .claude.json yet: fix the .claude.json line above if it has one, then start any host-shim (`host-shim run --config FILE -- true`) to merge them; `host-shim carry-back` lists, applies or drops them",
        );
    }
    if none_pending {
        report.ok("pending carry-backs: none");
    }
    let unowned = names_in(&base.join(".unowned"));
    if !unowned.is_empty() {
        report.fix(
            format!(
                "set-aside dirs: {} in {} ({})",
                unowned.len(),
                base.join(".unowned").display(),
                unowned.join(", ")
            ),
            "dirs without an owner the orphan scan moved aside: take what you need from them, then delete them",
        );
    }
    let panes: Vec<String> = names_in(base)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    if panes.is_empty() {
        report.ok(format!("pane dirs: none in {}", base.display()));
    }
    for pane in panes {
        check_pane(report, &base.join(&pane), &pane);
    }
}

fn check_pane(report: &mut Report, dir: &Path, pane: &str) {
    let metadata = dir.join(".pane-metadata");
    // A pane's files are the pane's: bounded, never through a link, never
    // blocking on a FIFO.
    let json = crate::state_file::read(&metadata, 64 * 1024)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    let field = |key: &str| {
        json.as_ref()
            .and_then(|json| json.get(key))
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    };
    let owner = field("owner");
    // Recorded at the pane's first spawn; absent before it, and in dirs
    // made before profiles.
    let profile = field("profile");
    let Some(owner) = owner else {
        report.fix(
            format!(
                "pane {}: {} is missing or unreadable",
                printable(pane),
                printable(&metadata.to_string_lossy())
            ),
            "its owner is unknown, so no server removes it: look inside config/, keep what you need, then `rm -rf` the dir",
        );
        return;
    };
    let used = ["config/.claude.json", ".pane-metadata", "config", ""]
        .iter()
        .filter_map(|rel| std::fs::metadata(dir.join(rel)).ok()?.modified().ok())
        .max();
    let age = used
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or_else(|| "unknown".to_string(), |d| days(d.as_secs()));
    let short: String = owner.chars().take(8).collect();
    let config = dir.join("config");
    let unknown: Vec<String> = names_in(&config)
        .into_iter()
        .filter(|n| !known(n))
        .collect();
    let mut line = format!(
        "pane {}: server {}…, last used {age}",
        printable(pane),
        printable(&short)
    );
    if let Some(profile) = &profile {
        line.push_str(&format!(", profile {}", printable(profile)));
    }
    if !unknown.is_empty() {
        let home = match field("profile_dir") {
            Some(dir) => format!("its profile's Claude dir {}", printable(&dir)),
            None => "the user's Claude dir".to_string(),
        };
        line.push_str(&format!(
            "; holds entries ccmux does not classify (kept at its removal, moved into {home}): {}",
            printable(&unknown.join(", "))
        ));
    }
    report.info(line);
}

fn days(secs: u64) -> String {
    match secs / 86_400 {
        0 => "today".to_string(),
        1 => "1 day ago".to_string(),
        n => format!("{n} days ago"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_what_claude_prints() {
        assert_eq!(parse_version("2.1.337 (Claude Code)\n"), Some((2, 1, 337)));
        assert_eq!(parse_version("2.1.197"), Some((2, 1, 197)));
        assert_eq!(parse_version("claude 2.1.1"), None);
        assert_eq!(parse_version("2.1"), None);
        assert_eq!(parse_version(""), None);
        assert!(OLDEST < NEWEST);
    }

    #[test]
    fn the_range_is_the_one_ci_installs() {
        let script = include_str!("../../.ci/install-claude");
        assert!(script.contains(&format!("OLDEST=\"{}\"", show(OLDEST))));
        assert!(script.contains(&format!("NEWEST=\"{}\"", show(NEWEST))));
    }
}
