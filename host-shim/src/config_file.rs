//! Which plugins.toml host-shim reads: `--config`, else `./plugins.toml`,
//! else the installed one in the user's config dir.
//!
//! The file is checked to be a regular file of a sane size before the
//! plugin runtime reads it, so a FIFO or a device planted there gives an
//! error instead of a hang or an endless read.

use std::path::{Path, PathBuf};

use ccmux_plugin_api::host::PluginsConfig;

/// More than any plugins.toml a person writes.
pub const CONFIG_CAP: u64 = 1 << 20;

/// The file name looked up in the current directory and the config dir.
const FILE_NAME: &str = "plugins.toml";

/// The plugins.toml to use, or an error naming every place looked at.
pub fn resolve(given: Option<&Path>) -> Result<PathBuf, String> {
    let file = match given {
        Some(path) => path.to_path_buf(),
        None => {
            let candidates: Vec<PathBuf> = std::iter::once(PathBuf::from(FILE_NAME))
                .chain(installed())
                .collect();
            match candidates.iter().find(|c| c.exists()) {
                Some(found) => found.clone(),
                None => {
                    let looked: Vec<String> =
                        candidates.iter().map(|c| c.display().to_string()).collect();
                    return Err(format!(
                        "no plugins.toml found (looked at {}); pass --config PATH, or install the default one with scripts/install",
                        looked.join(" and ")
                    ));
                }
            }
        }
    };
    check_readable(&file)?;
    Ok(std::path::absolute(&file).unwrap_or(file))
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
        return Err(format!(
            "{}: not a regular file; point --config at a plugins.toml",
            file.display()
        ));
    }
    if meta.len() > CONFIG_CAP {
        return Err(format!(
            "{}: {} bytes, larger than the {CONFIG_CAP} bytes a plugins.toml may have; point --config at a plugins.toml",
            file.display(),
            meta.len()
        ));
    }
    Ok(())
}

/// What `check` and `plugins` print first: the file read and where
/// `library = NAME` entries are looked up.
pub fn describe(file: &Path) -> Vec<String> {
    let mut lines = vec![format!("# config: {}", file.display())];
    // A file that does not parse is reported by the listing itself.
    if let Ok(config) = PluginsConfig::load(file) {
        let dirs: Vec<String> = config
            .library_search_path()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        lines.push(format!("# library search: {}", dirs.join(", ")));
    }
    lines
}
