//! Which plugins.toml host-shim reads, and why: `--config PATH`, else
//! `$CCMUX_PLUGINS_CONFIG`, else the installed one in the user's config
//! dir (`$XDG_CONFIG_HOME/ccmux/plugins.toml`, `~/.config/ccmux/...`).
//!
//! A `plugins.toml` in the current directory is never read unless named:
//! host-shim is started in any project folder (from tmux, say), and a file
//! there names libraries host-shim would load into the user's server.
//!
//! The file is checked to be a regular file of a sane size before the
//! plugin runtime reads it, so a FIFO or a device planted there gives an
//! error instead of a hang or an endless read.

use std::fmt;
use std::path::{Path, PathBuf};

use ccmux_plugin_api::host::PluginsConfig;

/// More than any plugins.toml a person writes.
pub const CONFIG_CAP: u64 = 1 << 20;

/// The environment variable that names the plugins.toml when `--config`
/// is not given.
pub const CONFIG_ENV: &str = "CCMUX_PLUGINS_CONFIG";

/// The file name of the installed config, and the one a current
/// directory may hold (never read unless named).
const FILE_NAME: &str = "plugins.toml";

/// Why a plugins.toml was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--config PATH`.
    Flag,
    /// `$CCMUX_PLUGINS_CONFIG`.
    Env,
    /// The installed file in the user's config dir.
    Installed,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("from --config"),
            Source::Env => write!(f, "from ${CONFIG_ENV}"),
            Source::Installed => {
                f.write_str("the installed one: no --config, no $CCMUX_PLUGINS_CONFIG")
            }
        }
    }
}

/// The plugins.toml host-shim uses, and why.
#[derive(Debug, Clone)]
pub struct ConfigChoice {
    /// Absolute.
    pub file: PathBuf,
    pub source: Source,
}

impl fmt::Display for ConfigChoice {
    /// `PATH (from --config)`: what every message about the config says.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.file.display(), self.source)
    }
}

/// The plugins.toml to use, or an error naming what was looked at.
pub fn resolve(given: Option<&Path>) -> Result<ConfigChoice, String> {
    let env = std::env::var_os(CONFIG_ENV).filter(|value| !value.is_empty());
    resolve_from(given, env.as_deref().map(Path::new), installed())
}

/// [`resolve`] with the environment variable's value and the installed
/// path given, for tests.
fn resolve_from(
    given: Option<&Path>,
    env: Option<&Path>,
    installed: Option<PathBuf>,
) -> Result<ConfigChoice, String> {
    let (file, source) = match (given, env, installed) {
        (Some(path), _, _) => (path.to_path_buf(), Source::Flag),
        (None, Some(path), _) => (path.to_path_buf(), Source::Env),
        (None, None, Some(path)) => {
            if !path.exists() {
                return Err(format!(
                    "no plugins.toml: the installed one, {}, does not exist{}; pass --config PATH (the repository's: --config plugins.toml), set ${CONFIG_ENV}, or install the default one with scripts/install",
                    path.display(),
                    not_read_here()
                ));
            }
            (path, Source::Installed)
        }
        (None, None, None) => {
            return Err(format!(
                "no plugins.toml: the user's config dir is unknown (is HOME set?); pass --config PATH or set ${CONFIG_ENV}{}",
                not_read_here()
            ))
        }
    };
    let file = std::path::absolute(&file).unwrap_or(file);
    let choice = ConfigChoice { file, source };
    if !choice.file.exists() {
        return Err(format!("{choice} does not exist; {}", fix(source)));
    }
    check_readable(&choice.file).map_err(|err| format!("{err} ({source}); {}", fix(source)))?;
    Ok(choice)
}

/// What to do about a config that cannot be used, by where it came from.
fn fix(source: Source) -> String {
    match source {
        Source::Flag => "point --config at a plugins.toml".to_string(),
        Source::Env => format!("point ${CONFIG_ENV} at a plugins.toml, or unset it"),
        Source::Installed => {
            "replace it with a plugins.toml (scripts/install puts the default one there), or pass --config PATH".to_string()
        }
    }
}

/// A note for the error when nothing was found but the current directory
/// holds a plugins.toml: it is never read unless named.
fn not_read_here() -> String {
    if Path::new(FILE_NAME).is_file() {
        format!(" (./{FILE_NAME} is never read unless named: pass --config {FILE_NAME} to use it)")
    } else {
        String::new()
    }
}

/// `$XDG_CONFIG_HOME/ccmux/plugins.toml`, or `~/.config/ccmux/plugins.toml`.
pub fn installed() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("ccmux").join(FILE_NAME))
}

/// Refuses a config file that is not a regular file, or too large to be
/// one a person wrote. A symlink to a regular file is fine (dotfiles
/// managers make them). A missing file is left to the plugin runtime,
/// whose error says what to do.
pub fn check_readable(file: &Path) -> Result<(), String> {
    let meta = match std::fs::metadata(file) {
        Ok(meta) => meta,
        Err(_) => return Ok(()),
    };
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", file.display()));
    }
    if meta.len() > CONFIG_CAP {
        return Err(format!(
            "{}: {} bytes, larger than the {CONFIG_CAP} bytes a plugins.toml may have",
            file.display(),
            meta.len()
        ));
    }
    Ok(())
}

/// What `check` and `plugins` print first: the file read and why, and
/// where `library = NAME` entries are looked up.
pub fn describe(choice: &ConfigChoice) -> Vec<String> {
    let mut lines = vec![format!("# config: {choice}")];
    // A file that does not parse is reported by the listing itself.
    if let Ok(config) = PluginsConfig::load(&choice.file) {
        let dirs: Vec<String> = config
            .library_search_path()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        lines.push(format!("# library search: {}", dirs.join(", ")));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_variable_then_the_installed_file() {
        let temp = tempfile::tempdir().unwrap();
        let [flag, env, installed] = ["flag.toml", "env.toml", "installed.toml"].map(|name| {
            let path = temp.path().join(name);
            std::fs::write(&path, "").unwrap();
            path
        });
        let pick = |given: Option<&Path>, env: Option<&Path>| {
            resolve_from(given, env, Some(installed.clone())).unwrap()
        };
        let choice = pick(Some(&flag), Some(&env));
        assert_eq!(
            (choice.file.as_path(), choice.source),
            (flag.as_path(), Source::Flag)
        );
        assert_eq!(
            choice.to_string(),
            format!("{} (from --config)", flag.display())
        );
        let choice = pick(None, Some(&env));
        assert_eq!(
            (choice.file.as_path(), choice.source),
            (env.as_path(), Source::Env)
        );
        assert!(choice.to_string().ends_with("(from $CCMUX_PLUGINS_CONFIG)"));
        let choice = pick(None, None);
        assert_eq!(
            (choice.file.as_path(), choice.source),
            (installed.as_path(), Source::Installed)
        );
    }

    #[test]
    fn a_missing_file_is_named_with_where_it_came_from_and_what_to_do() {
        let temp = tempfile::tempdir().unwrap();
        let gone = temp.path().join("gone.toml");
        let err = resolve_from(None, Some(&gone), None).unwrap_err();
        assert!(err.contains(&gone.display().to_string()), "{err}");
        assert!(err.contains("from $CCMUX_PLUGINS_CONFIG"), "{err}");
        assert!(err.contains("unset it"), "{err}");
        let err = resolve_from(None, None, Some(gone.clone())).unwrap_err();
        assert!(err.contains("the installed one"), "{err}");
        assert!(err.contains("--config plugins.toml"), "{err}");
        let err = resolve_from(Some(temp.path()), None, None).unwrap_err();
        assert!(err.contains("not a regular file (from --config)"), "{err}");
    }
}
