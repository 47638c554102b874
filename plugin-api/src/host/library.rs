//! Opening one plugin library and checking it against this host's contract.
//!
//! `RootModule::load_from_file` keeps one module per root-module type for
//! the whole process, so a second plugin would silently get the first one.
//! Each library is therefore opened with `lib_header_from_path` and
//! initialised through its own header.

use std::path::{Path, PathBuf};

use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::StableAbi;

use crate::abi::{
    HookEntry, HookSignature, PaneCloseHook, PaneCreateHook, PaneCreateV2Hook, PluginMetadata,
    PluginModuleRef, PreSpawnHook, PreSpawnV2Hook, RefusesPanes, ServerStartHook, ServerStopHook,
};
use crate::host::config::describe_file_type;
use crate::host::LoadError;
use crate::API_VERSION;

/// A plugin library, opened and checked. Libraries are never unloaded.
pub struct PluginLibrary {
    pub path: PathBuf,
    pub module: PluginModuleRef,
    pub metadata: PluginMetadata,
    pub hooks: HookTable,
}

/// The hooks a library implements; `None` is a no-op. Where a plugin has
/// both the 1.0 and the 1.2 entry of a pane hook, the runtime calls the
/// 1.2 one (`*_v2`).
#[derive(Default, Clone, Copy)]
pub struct HookTable {
    pub server_start: Option<&'static ServerStartHook>,
    pub pane_create: Option<&'static PaneCreateHook>,
    pub pane_create_v2: Option<&'static PaneCreateV2Hook>,
    pub pre_spawn: Option<&'static PreSpawnHook>,
    pub pre_spawn_v2: Option<&'static PreSpawnV2Hook>,
    pub pane_close: Option<&'static PaneCloseHook>,
    pub server_stop: Option<&'static ServerStopHook>,
    /// The plugin declares it may refuse panes (`refuses_panes`, 1.3):
    /// see [`Plugin::REFUSES_PANES`](crate::Plugin::REFUSES_PANES).
    pub refuses_panes: bool,
}

impl std::fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("path", &self.path)
            .field("metadata", &self.metadata)
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for HookTable {
    /// Which hooks the plugin has, by name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = [
            (ServerStartHook::NAME, self.server_start.is_some()),
            (PaneCreateHook::NAME, self.pane_create.is_some()),
            (PaneCreateV2Hook::NAME, self.pane_create_v2.is_some()),
            (PreSpawnHook::NAME, self.pre_spawn.is_some()),
            (PreSpawnV2Hook::NAME, self.pre_spawn_v2.is_some()),
            (PaneCloseHook::NAME, self.pane_close.is_some()),
            (ServerStopHook::NAME, self.server_stop.is_some()),
        ];
        let names: Vec<&str> = present
            .iter()
            .filter(|(_, there)| *there)
            .map(|(name, _)| *name)
            .collect();
        f.debug_struct("HookTable")
            .field("hooks", &names)
            .field("refuses_panes", &self.refuses_panes)
            .finish()
    }
}

impl PluginLibrary {
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        check_regular_file(path)?;
        let header = lib_header_from_path(path).map_err(classify)?;
        let module = header
            .init_root_module::<PluginModuleRef>()
            .map_err(classify)?;
        let metadata = (module.metadata())();
        let hooks = HookTable::from_entries(&(module.hooks())())?;
        Ok(PluginLibrary {
            path: path.to_path_buf(),
            module,
            metadata,
            hooks,
        })
    }
}

impl HookTable {
    /// Checks each entry a plugin hands over and keeps the ones this host
    /// knows. An entry of a hook from a newer plugin-api is never called:
    /// its name is unknown here, so it is only logged (at debug level).
    pub(crate) fn from_entries(entries: &[HookEntry]) -> Result<Self, LoadError> {
        let mut table = HookTable::default();
        for entry in entries {
            let name = entry.hook.as_str();
            match name {
                ServerStartHook::NAME => table.server_start = Some(checked(entry)?),
                PaneCreateHook::NAME => table.pane_create = Some(checked(entry)?),
                PaneCreateV2Hook::NAME => table.pane_create_v2 = Some(checked(entry)?),
                PreSpawnHook::NAME => table.pre_spawn = Some(checked(entry)?),
                PreSpawnV2Hook::NAME => table.pre_spawn_v2 = Some(checked(entry)?),
                PaneCloseHook::NAME => table.pane_close = Some(checked(entry)?),
                ServerStopHook::NAME => table.server_stop = Some(checked(entry)?),
                RefusesPanes::NAME => {
                    table.refuses_panes = checked::<RefusesPanes>(entry)?.refuses;
                }
                _ => tracing::debug!(
                    hook = name,
                    "plugin offers a hook this host does not know (from a newer plugin-api); it is never called"
                ),
            }
        }
        Ok(table)
    }
}

/// A plugin file must be a regular file (links are followed): dlopen of a
/// directory or a device says something unhelpful, and of a FIFO it blocks.
fn check_regular_file(path: &Path) -> Result<(), LoadError> {
    let metadata = std::fs::metadata(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => LoadError::FileMissing,
        _ => LoadError::Unreadable {
            detail: err.to_string(),
        },
    })?;
    if metadata.is_dir() {
        return Err(LoadError::IsADirectory);
    }
    if !metadata.is_file() {
        return Err(LoadError::NotAFile {
            what: describe_file_type(&metadata.file_type()),
        });
    }
    Ok(())
}

/// Checks one hook entry's signature against this host's, then hands out
/// the signature struct it points to.
fn checked<S: HookSignature>(entry: &HookEntry) -> Result<&'static S, LoadError> {
    check_layout_compatibility(<S as StableAbi>::LAYOUT, entry.signature).map_err(|err| {
        LoadError::HookSignature {
            hook: S::NAME,
            detail: summarize_layout_error(&err.to_string()),
        }
    })?;
    // SAFETY: the plugin's `entry` says `function` points to a `'static`
    // value whose type has the layout `entry.signature`, and the check
    // above proved that layout compatible with `S`. The value lives in the
    // plugin library, which is never unloaded, so `'static` holds.
    Ok(unsafe { &*(entry.function as *const S) })
}

fn classify(err: LibraryError) -> LoadError {
    match err {
        LibraryError::OpenError { err, .. } => LoadError::NotALibrary {
            detail: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NoRootModule,
        LibraryError::IncompatibleVersionNumber { actual_version, .. } => LoadError::ApiVersion {
            plugin: actual_version.to_string(),
            host: API_VERSION,
        },
        LibraryError::AbiInstability(detail) => LoadError::Layout {
            detail: summarize_layout_error(&detail.to_string()),
        },
        LibraryError::RootModule { err, .. } => LoadError::Other {
            detail: format!(
                "its root module failed to initialise: {err}; rebuild the plugin, or report it to its author"
            ),
        },
        other => LoadError::Other {
            detail: other.to_string(),
        },
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_string()
}

/// abi_stable's report runs to hundreds of lines. Each error in it comes
/// after the path of fields that leads to it (`field_name:` / `type:` pairs)
/// and reads `Error:<what>`, `Expected:` <value>, `Found:` <value>. Keep one
/// line per error: where, what, expected, found.
fn summarize_layout_error(report: &str) -> String {
    let mut path: Vec<(&str, &str)> = Vec::new();
    let mut in_path = false;
    let mut errors: Vec<String> = Vec::new();
    let mut lines = report.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        if line.ends_with("error(s)inside:") {
            path.clear();
            in_path = true;
        } else if line.starts_with("Layout of expected type:") {
            in_path = false;
        } else if let (true, Some(field)) = (in_path, line.strip_prefix("field_name:")) {
            let ty = lines
                .next_if(|l| l.starts_with("type:"))
                .map_or("?", |l| l.trim_start_matches("type:").trim());
            path.push((field.trim_end_matches(','), ty));
        } else if let Some(what) = line.strip_prefix("Error:") {
            let mut value_after = |label: &str| {
                while let Some(l) = lines.next() {
                    if l.starts_with(label) {
                        return lines.next().unwrap_or("?").to_string();
                    }
                }
                "?".to_string()
            };
            let expected = value_after("Expected:");
            let found = value_after("Found:");
            let place = match path.as_slice() {
                [.., (_, container), (field, _)] if field.parse::<u32>().is_err() => {
                    format!("{container}.{field}")
                }
                [.., (_, ty)] => format!("type {ty}"),
                [] => "the root module".to_string(),
            };
            let error = format!("{place}: {what} (expected {expected}, found {found})");
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
    }
    if errors.is_empty() {
        return first_line(report);
    }
    errors.truncate(3);
    errors.join("; ")
}
