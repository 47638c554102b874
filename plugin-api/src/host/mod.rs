//! The host runtime: reads plugins.toml, loads plugin libraries, and
//! dispatches hooks. The ccmux server and host-shim embed it through
//! [`PluginHost`].

mod config;
mod faults;
mod library;
mod order;
mod printable;
pub(crate) mod runtime;
pub use printable::printable;

use std::path::PathBuf;

pub use config::{OnFault, PluginEntry, PluginsConfig, KEYS, MAX_CONFIG_BYTES};
pub use faults::{FaultPolicy, PluginCounts};
pub use library::{HookTable, PluginLibrary};
#[cfg(feature = "test-host")]
pub use runtime::HookClock;
pub use runtime::{current_env, PluginHost, PluginState, PluginStatus};

use crate::abi::{HookError, HookErrorKind};
use crate::pane_id::InvalidPaneId;

/// plugins.toml could not be used. Nothing is loaded from a bad file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: no such file; create it (see plugins.toml at the repository root) or pass --config PATH", file = .file.display())]
    Missing { file: PathBuf },
    #[error("{file}: cannot read it: {source}", file = .file.display())]
    Unreadable {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: it is {what}, not a regular file; point --config at a plugins.toml file", file = .file.display())]
    NotAFile { file: PathBuf, what: &'static str },
    #[error("{file}: it is larger than {cap} bytes, the most a plugins.toml may be; is it the right file?", file = .file.display(), cap = config::MAX_CONFIG_BYTES)]
    TooLarge { file: PathBuf },
    #[error("{file}:{line}:{column}: invalid TOML: {message}", file = .file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}:{column}: at `{key}`: {message}", file = .file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
    #[error("{file}: [[plugins]] entry {index} (`{name}`): {message}", file = .file.display())]
    Entry {
        file: PathBuf,
        index: usize,
        name: String,
        message: String,
    },
    #[error("{file}: `before`/`after` go round in a cycle, {cycle} (each runs before the next); remove one of them", file = .file.display())]
    OrderCycle { file: PathBuf, cycle: String },
}

/// Why a plugin library could not be used. Shown after the plugin's name
/// and file, so each message says only what is wrong and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("the file does not exist; build the plugin (cargo build) or fix its `path`/`library` in plugins.toml")]
    FileMissing,
    #[error("it is a directory, not a library file; point `path` at the file the plugin crate builds (target/release/{prefix}NAME{suffix})", prefix = std::env::consts::DLL_PREFIX, suffix = std::env::consts::DLL_SUFFIX)]
    IsADirectory,
    #[error("it is {what}, not a regular file, so it cannot be a plugin library; point `path` at the {suffix} file the plugin crate builds", suffix = std::env::consts::DLL_SUFFIX)]
    NotAFile { what: &'static str },
    #[error(
        "cannot read it: {detail}; check its permissions and those of the directories above it"
    )]
    Unreadable { detail: String },
    #[error("no such library in {searched}; build the plugin (cargo build) or add the directory that holds it to `search_dirs` in plugins.toml", searched = display_dirs(.searched))]
    NotInSearchPath { searched: Vec<PathBuf> },
    #[error("not a loadable shared library ({detail}); point plugins.toml at the .so/.dylib/.dll the plugin crate builds")]
    NotALibrary { detail: String },
    #[error("a shared library, but not a ccmux plugin: it exports no plugin root module; a plugin crate must call ccmux_plugin_api::export_plugin!")]
    NoRootModule,
    #[error("built against plugin-api {plugin}, but this host uses plugin-api {host}; rebuild the plugin against plugin-api {host}")]
    ApiVersion { plugin: String, host: &'static str },
    #[error("its ABI does not match this host's plugin-api {host} ({detail}); rebuild the plugin against the plugin-api this host was built with", host = crate::API_VERSION)]
    Layout { detail: String },
    #[error("its `{hook}` hook has a different signature than this host's ({detail}); rebuild the plugin against plugin-api {host}", host = crate::API_VERSION)]
    HookSignature { hook: &'static str, detail: String },
    #[error("{detail}")]
    Other { detail: String },
}

/// Something the host could not do because of a plugin.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    #[error("plugin `{plugin}` ({file}): {error}", file = .file.display())]
    Load {
        plugin: String,
        file: PathBuf,
        error: LoadError,
    },
    #[error("plugin `{plugin}` ({file}) failed to start: {error}{advice}", file = .file.display(), advice = advice(.error))]
    Init {
        plugin: String,
        file: PathBuf,
        error: HookError,
    },
    #[error("plugin `{plugin}` ({file}) failed in {hook}: {error}{advice}", file = .file.display(), advice = advice(.error))]
    Hook {
        plugin: String,
        file: PathBuf,
        hook: &'static str,
        error: HookError,
    },
    /// A plugin refused the pane ([`Plugin::admit_pane`] or
    /// [`SpawnEnv::refuse`]): the pane must not start. Not a failure: the
    /// plugin did what it is for.
    ///
    /// [`Plugin::admit_pane`]: crate::Plugin::admit_pane
    /// [`SpawnEnv::refuse`]: crate::SpawnEnv::refuse
    #[error("plugin `{plugin}` refused the pane in {hook}: {reason}")]
    Refused {
        plugin: String,
        hook: &'static str,
        reason: String,
    },
    /// The server handed a pane hook a pane id that is not filesystem-safe.
    /// Checked before any plugin is called, so no plugin saw it.
    #[error("{0}; no plugin was called")]
    InvalidPane(InvalidPaneId),
}

impl HostError {
    /// The plugins.toml name of the plugin this error is about; `None`
    /// when it is about no plugin (an invalid pane id).
    pub fn plugin(&self) -> Option<&str> {
        match self {
            HostError::Load { plugin, .. }
            | HostError::Init { plugin, .. }
            | HostError::Hook { plugin, .. }
            | HostError::Refused { plugin, .. } => Some(plugin),
            HostError::InvalidPane(_) => None,
        }
    }

    /// What went wrong, without the plugin's name and file.
    pub fn cause(&self) -> String {
        match self {
            HostError::Load { error, .. } => error.to_string(),
            HostError::Init { error, .. } => format!("failed to start: {error}{}", advice(error)),
            HostError::Hook { hook, error, .. } => {
                format!("failed in {hook}: {error}{}", advice(error))
            }
            HostError::Refused { hook, reason, .. } => {
                format!("refused the pane in {hook}: {reason}")
            }
            HostError::InvalidPane(error) => error.to_string(),
        }
    }

    /// Whether a plugin refused the pane (rather than failed).
    pub fn is_refusal(&self) -> bool {
        matches!(self, HostError::Refused { .. })
    }

    /// The kind of a hook or constructor error, if it was one.
    pub fn hook_error_kind(&self) -> Option<HookErrorKind> {
        match self {
            HostError::Init { error, .. } | HostError::Hook { error, .. } => Some(error.kind),
            HostError::Load { .. } | HostError::Refused { .. } | HostError::InvalidPane(_) => None,
        }
    }
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    dirs.join(", ")
}

/// What to do about a hook error, where the error itself cannot say.
fn advice(error: &HookError) -> &'static str {
    match error.kind {
        HookErrorKind::Panic => {
            "; this is a bug in the plugin: report it to its author, or turn the plugin off with `enabled = false` in plugins.toml"
        }
        _ => "",
    }
}

/// Starting the host failed: a bad plugins.toml or a required plugin that
/// could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("required {0}")]
    Plugin(#[from] HostError),
}
