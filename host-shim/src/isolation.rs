//! The isolation plugin as plugins.toml configures it: its entry, its
//! `[plugins.config]` table and the profiles that table names. Shared by
//! `run` and `attach` (which check a profile before any pane starts),
//! `doctor`, `plugins` and `carry-back`.
//!
//! host-shim links the plugin's crate for its public tables only
//! (`profiles`, `review`, `classification`, `config`); the plugin itself
//! is loaded from plugins.toml like any other.

use ccmux_isolation_plugin::config::{CCMUX_PROFILE, DEFAULT_PROFILE};
use ccmux_isolation_plugin::profiles::{Login, Profile, Profiles};
use ccmux_isolation_plugin::{HostEnvironment, IsolationConfig};
use ccmux_plugin_api::host::{printable, PluginEntry, PluginsConfig};

use crate::config_file::ConfigChoice;

/// The library name of the isolation plugin.
pub const ISOLATION_LIBRARY: &str = "ccmux_isolation_plugin";

/// Whether `entry` loads the isolation plugin: by its library name or a
/// path to that library. Not by its name alone: an entry called
/// `isolation` may load anything, and a profile checked against another
/// plugin's table would be a pane started in the server's own account.
pub fn is_isolation(entry: &PluginEntry) -> bool {
    entry.library.as_deref() == Some(ISOLATION_LIBRARY)
        || entry.path.as_ref().is_some_and(|path| {
            path.file_stem()
                .is_some_and(|stem| stem.to_string_lossy().contains(ISOLATION_LIBRARY))
        })
}

/// The isolation plugin's entry, enabled or not: the one called `name` if
/// given, else the first that loads it.
pub fn find_entry<'a>(
    config: &'a PluginsConfig,
    name: Option<&str>,
) -> Result<&'a PluginEntry, String> {
    // The enabled one first: what a server started now would load.
    let found = match name {
        Some(name) => config.plugins.iter().find(|entry| entry.name == name),
        None => config
            .plugins
            .iter()
            .find(|entry| entry.enabled && is_isolation(entry))
            .or_else(|| config.plugins.iter().find(|entry| is_isolation(entry))),
    };
    found.ok_or_else(|| match name {
        Some(name) => format!(
            "{}: no plugin is called {name:?}; the names are: {}",
            config.file.display(),
            config
                .plugins
                .iter()
                .map(|entry| entry.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!(
            "{}: no entry loads the isolation plugin ({ISOLATION_LIBRARY}); name its entry with --plugin NAME",
            config.file.display()
        ),
    })
}

/// The entry's `[plugins.config]` table, read as the isolation plugin
/// reads it.
pub fn plugin_config(
    choice: &ConfigChoice,
    entry: &PluginEntry,
) -> Result<IsolationConfig, String> {
    toml::Value::Table(entry.config.clone())
        .try_into()
        .map_err(|err| {
            format!(
                "{choice}: the [plugins.config] of plugin {:?} is not the isolation plugin's: {err}",
                entry.name
            )
        })
}

/// The profiles of the isolation plugin configured by `entry`, with its
/// dirs found as a server started here would find them.
pub fn profiles(
    choice: &ConfigChoice,
    config: &PluginsConfig,
    entry: &PluginEntry,
) -> Result<(Profiles, IsolationConfig), String> {
    let isolation = plugin_config(choice, entry)?;
    let profiles = Profiles::from_config(
        isolation.clone(),
        &config.dir,
        &HostEnvironment::inherited(),
    )
    .map_err(|err| format!("{choice}: {}", err.message))?;
    Ok((profiles, isolation))
}

/// One use of a profile name by a pane, and where the name came from,
/// for the messages that refuse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileUse {
    pub name: String,
    /// `--profile`, `--pane-id ID@NAME`, `CCMUX_PROFILE (inherited from this
    /// environment)`, `pane ID saved in FILE`.
    pub from: String,
}

/// Checks that every profile in `uses` is one plugins.toml configures,
/// before any pane starts: an unknown name, or a profile other than
/// `default` with no enabled isolation plugin to put the pane in it, is
/// the error returned. `default` is always valid: it is the user's own
/// Claude dir, used with or without the plugin.
pub fn check_profiles(choice: &ConfigChoice, uses: &[ProfileUse]) -> Result<(), String> {
    let named: Vec<&ProfileUse> = uses
        .iter()
        .filter(|used| used.name != DEFAULT_PROFILE)
        .collect();
    let Some(first) = named.first() else {
        return Ok(());
    };
    let config = PluginsConfig::load(&choice.file)
        .map_err(|err| format!("{err}\nhost-shim: config: {choice}"))?;
    let entry = config
        .plugins
        .iter()
        .find(|entry| entry.enabled && is_isolation(entry));
    let Some(entry) = entry else {
        return Err(format!(
            "{}: profile {:?} needs the isolation plugin, which puts each pane in its profile's Claude dir, and {choice} has no enabled entry that loads it ({ISOLATION_LIBRARY}); enable it there, or {}",
            first.from,
            first.name,
            leave_out(first)
        ));
    };
    let (profiles, _) = profiles(choice, &config, entry)?;
    for used in named {
        if let Err(err) = profiles.get(&used.name) {
            let or_unset = if used.from.starts_with(CCMUX_PROFILE) {
                ", or unset CCMUX_PROFILE"
            } else {
                ""
            };
            return Err(format!(
                "{}: {}{or_unset}\nhost-shim: config: {choice}",
                used.from, err.message
            ));
        }
    }
    Ok(())
}

/// How to do without the profile `used` names.
fn leave_out(used: &ProfileUse) -> &'static str {
    if used.from.starts_with(CCMUX_PROFILE) {
        "unset CCMUX_PROFILE (`env -u CCMUX_PROFILE host-shim ...`)"
    } else if used.from.starts_with("pane ") {
        "add the profile back: a saved pane stays in its account"
    } else {
        "leave out the profile"
    }
}

/// How ready a profile is, as [`describe_profile`] tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Logged in (its dir is there, or made when first written).
    Ready,
    /// Usable, with something to do first (`/login`), or not known.
    ToDo,
    /// Its first pane cannot start: its dir is missing and so is the dir
    /// it would be made in. What to do.
    Broken(String),
}

/// One line about `profile`: its dir, its `.claude.json` and its login,
/// and how ready it is.
pub fn describe_profile(profile: &Profile, share_credentials: bool) -> (Readiness, String) {
    let name = printable(&profile.name).into_owned();
    let Some(user) = &profile.user else {
        return (
            Readiness::ToDo,
            format!("profile {name}: no Claude dir (the home dir is unknown: set HOME)"),
        );
    };
    let dir = printable(&user.dir.to_string_lossy()).into_owned();
    let claude_json = printable(&user.claude_json.to_string_lossy()).into_owned();
    let exists = std::fs::metadata(&user.dir).is_ok_and(|meta| meta.is_dir());
    let missing_parent = user.dir.parent().filter(|parent| !parent.is_dir());
    if let (false, false, Some(parent)) = (exists, profile.is_default(), missing_parent) {
        // The plugin makes a named profile's dir, never its parents: a
        // typo in plugins.toml is not turned into a tree of dirs.
        let parent = printable(&parent.to_string_lossy()).into_owned();
        return (
            Readiness::Broken(format!(
                "create {parent}, or fix `profiles.{name}` in [plugins.config] of plugins.toml"
            )),
            format!("profile {name}: {dir} does not exist, nor does {parent}, so no pane can start in it"),
        );
    }
    let where_ = if exists {
        format!("{dir}, .claude.json {claude_json}")
    } else {
        // As Claude would in a plain terminal: made when it is first
        // written (a /login, say), or when a pane's data moves home.
        format!("{dir} (does not exist yet: made when a pane of the profile first keeps Claude data or logs in), .claude.json {claude_json}")
    };
    let (logged_in, login) = if !share_credentials {
        (
            true,
            "each pane logs in on its own (`share_credentials = false`)".to_string(),
        )
    } else {
        match profile.login() {
            Login::Credentials(file) => (
                true,
                format!("logged in ({})", printable(&file.to_string_lossy())),
            ),
            Login::NoCredentials(_) => (false, login_hint(profile)),
            Login::Keychain => (true, "login in the Keychain".to_string()),
            Login::Unknown => (false, "login unknown".to_string()),
        }
    };
    let readiness = if logged_in {
        Readiness::Ready
    } else {
        Readiness::ToDo
    };
    (readiness, format!("profile {name}: {where_}; {login}"))
}

/// What a profile without a login needs.
fn login_hint(profile: &Profile) -> String {
    if profile.is_default() {
        return "not logged in: run `claude /login` in any pane without --profile (`host-shim attach -- claude`)".to_string();
    }
    let name = printable(&profile.name);
    format!("not logged in: run `claude /login` in a pane with --profile {name} (`host-shim attach --profile {name} -- claude`)")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// One plugins.toml entry.
    fn entry(name: &str, library: Option<&str>, path: Option<&Path>) -> PluginEntry {
        let text = format!(
            "[[plugins]]\nname = {name:?}\n{}{}",
            library
                .map(|l| format!("library = {l:?}\n"))
                .unwrap_or_default(),
            path.map(|p| format!("path = {:?}\n", p.display().to_string()))
                .unwrap_or_default()
        );
        PluginsConfig::parse(&text, Path::new("/x/plugins.toml"))
            .expect("a valid entry")
            .plugins
            .remove(0)
    }

    #[test]
    fn the_isolation_plugin_is_found_by_its_library_or_path_never_its_name_alone() {
        assert!(is_isolation(&entry("iso", Some(ISOLATION_LIBRARY), None)));
        assert!(is_isolation(&entry(
            "iso",
            None,
            Some(Path::new("lib/libccmux_isolation_plugin.so"))
        )));
        // Named `isolation`, loading something else: not it.
        assert!(!is_isolation(&entry("isolation", Some("other"), None)));
        assert!(!is_isolation(&entry(
            "probe",
            Some("ccmux_probe_plugin"),
            None
        )));
    }
}
