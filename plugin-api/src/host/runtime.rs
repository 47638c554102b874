//! [`PluginHost`]: the loaded plugins and the hook flow, top to bottom.
//!
//! Hooks run in plugins.toml order.
//!
//! # What is locked when
//!
//! * **Pane hooks** (`pane_create`, `pre_spawn`, `pane_close`) take no lock.
//!   Each reads a snapshot of the active plugins through an `ArcSwap` (no
//!   lock, no reference count in the common case) and holds it while the
//!   hooks run, so hooks of different panes run concurrently, and a reload
//!   neither waits for them nor is waited for: a pane hook that started
//!   before a reload stored its new snapshot finishes on the old one.
//! * **`server_start`, `server_stop` and `reload`** hold the `server` mutex
//!   for their whole call: `server_start` and `server_stop` across every
//!   plugin's hook, `reload` across reading plugins.toml, opening
//!   libraries, every constructor (`Plugin::new`) it runs and the
//!   `on_server_start` of each plugin it turns on. They are serialized with
//!   each other, never with pane hooks: a slow `on_server_start` delays a
//!   reload or a stop, not a pane.
//! * **The `libraries` mutex** is held while one library is looked up or
//!   opened (dlopen and the ABI checks), always inside a `reload` (so under
//!   the `server` mutex, taken in that order), never while a hook runs.
//!
//! A failing `required` plugin fails the operation; any other failure is
//! logged with plugin and hook, and the rest goes on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use abi_stable::std_types::{RErr, ROk, RSlice, RString};

use crate::abi::{
    EnvVar, HookResult, InitArgs, PaneExit, PaneInfo, PluginInstance, PluginMetadata, ServerStart,
    ServerStop,
};
use crate::author::apply_env_edits;
use crate::host::{
    ConfigError, HostError, LoadError, PluginEntry, PluginLibrary, PluginsConfig, StartError,
};
use crate::log_bridge::host_log_sink;
use crate::pane_id::check_pane_id;

/// The plugins of one server, loaded from one plugins.toml.
pub struct PluginHost {
    config_file: PathBuf,
    /// Every library opened so far, by path: abi_stable never unloads one,
    /// so a plugin enabled again reuses it.
    libraries: Mutex<HashMap<PathBuf, Arc<PluginLibrary>>>,
    state: ArcSwap<HostState>,
    /// The running server, told again to a plugin a reload turns on. Its
    /// lock is held for the whole of `server_start`, `server_stop` and
    /// `reload` (hooks and constructors included), which it serializes;
    /// pane hooks never take it. See the module docs.
    server: Mutex<Option<ServerStart>>,
}

struct HostState {
    active: Vec<Arc<ActivePlugin>>,
    statuses: Vec<PluginStatus>,
}

/// One constructed plugin instance.
struct ActivePlugin {
    entry: PluginEntry,
    file: PathBuf,
    library: Arc<PluginLibrary>,
    instance: PluginInstance,
}

// SAFETY: `InstancePtr` is a raw pointer, so the compiler cannot see that
// it may move between threads. `Plugin` requires `Send + Sync`, so the
// plugin value it points to may be used from any thread; the host only
// passes the pointer to the plugin's own `extern "C"` hooks (shared `&self`
// access) and to its `drop` function once, from whichever thread drops the
// last `Arc<ActivePlugin>`.
unsafe impl Send for ActivePlugin {}
// SAFETY: as for `Send`: concurrent hooks only take `&self` of a
// `Sync` plugin.
unsafe impl Sync for ActivePlugin {}

impl Drop for ActivePlugin {
    fn drop(&mut self) {
        (self.instance.drop)(self.instance.state);
    }
}

/// What `host-shim plugins` shows for one plugins.toml entry.
#[derive(Debug, Clone)]
pub struct PluginStatus {
    pub name: String,
    pub file: PathBuf,
    pub enabled: bool,
    pub required: bool,
    pub state: PluginState,
}

#[derive(Debug, Clone)]
pub enum PluginState {
    Disabled,
    Active(PluginMetadata),
    Failed(HostError),
}

impl PluginHost {
    /// Reads `config_file` and loads its enabled plugins. Fails on a bad
    /// file or on a required plugin that cannot be loaded; other plugins
    /// that fail are logged and left out.
    pub fn start(config_file: &Path) -> Result<Self, StartError> {
        let host = Self::empty(config_file);
        host.reload(&[])?;
        Ok(host)
    }

    /// Like [`start`](Self::start), but a plugin that fails to load never
    /// fails the whole: see [`statuses`](Self::statuses) for what happened.
    pub fn inspect(config_file: &Path) -> Result<Self, ConfigError> {
        let host = Self::empty(config_file);
        let config = PluginsConfig::load(&host.config_file)?;
        let (state, _) = host.build_state(&config, &HostState::empty());
        host.state.store(Arc::new(state));
        Ok(host)
    }

    fn empty(config_file: &Path) -> Self {
        PluginHost {
            config_file: std::path::absolute(config_file)
                .unwrap_or_else(|_| config_file.to_path_buf()),
            libraries: Mutex::new(HashMap::new()),
            state: ArcSwap::from_pointee(HostState::empty()),
            server: Mutex::new(None),
        }
    }

    /// Re-reads plugins.toml: plugins turned off get no more hooks, plugins
    /// turned on are loaded (or their library reused) and, if the server is
    /// running, get `on_server_start` with `live_panes`, the server's open
    /// panes. Plugins whose entry did not change keep their instance. On
    /// error nothing changes.
    pub fn reload(&self, live_panes: &[String]) -> Result<(), StartError> {
        let server = lock(&self.server);
        let config = PluginsConfig::load(&self.config_file)?;
        let previous = self.state.load_full();
        let (state, newly_active) = self.build_state(&config, &previous);
        let failed_required = state.statuses.iter().find_map(|s| match &s.state {
            PluginState::Failed(err) if s.required => Some(err.clone()),
            _ => None,
        });
        if let Some(err) = failed_required {
            return Err(err.into());
        }
        for status in &state.statuses {
            if let PluginState::Failed(err) = &status.state {
                tracing::warn!(plugin = %status.name, "{err}; continuing without it");
            }
        }
        if let Some(running) = server.as_ref() {
            let start = ServerStart {
                live_panes: live_panes
                    .iter()
                    .map(|p| RString::from(p.as_str()))
                    .collect(),
                ..running.clone()
            };
            run_hook("on_server_start", &newly_active, true, |p| {
                p.library
                    .hooks
                    .server_start
                    .map(|h| (h.call)(p.instance.state, &start))
            })?;
        }
        self.state.store(Arc::new(state));
        Ok(())
    }

    /// One line of status per plugins.toml entry, in order.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        self.state.load().statuses.clone()
    }

    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    pub fn server_start(&self, event: &ServerStart) -> Result<(), HostError> {
        let mut server = lock(&self.server);
        // Kept for a reload; the live panes are the server's to say then.
        *server = Some(ServerStart {
            server_id: event.server_id.clone(),
            instance_id: event.instance_id.clone(),
            state_dir: event.state_dir.clone(),
            live_panes: Default::default(),
        });
        self.dispatch("on_server_start", false, |p| {
            p.library
                .hooks
                .server_start
                .map(|h| (h.call)(p.instance.state, event))
        })
    }

    pub fn pane_create(&self, pane: &PaneInfo) -> Result<(), HostError> {
        checked_pane(pane)?;
        self.dispatch("on_pane_create", false, |p| {
            p.library
                .hooks
                .pane_create
                .map(|h| (h.call)(p.instance.state, pane))
        })
    }

    /// Lets each plugin edit `env`, in order: a plugin sees the edits of
    /// the plugins before it. The caller spawns the process with the result.
    pub fn pre_spawn(&self, pane: &PaneInfo, env: &mut Vec<EnvVar>) -> Result<(), HostError> {
        checked_pane(pane)?;
        self.dispatch("on_pre_spawn", false, |p| {
            p.library.hooks.pre_spawn.map(|h| {
                let result = (h.call)(p.instance.state, pane, RSlice::from_slice(env));
                if let ROk(reply) = &result {
                    apply_env_edits(env, &reply.env_edits);
                }
                result
            })
        })
    }

    /// Every plugin hears of the close, even after a required one failed.
    pub fn pane_close(&self, pane: &PaneInfo, exit: &PaneExit) -> Result<(), HostError> {
        checked_pane(pane)?;
        self.dispatch("on_pane_close", true, |p| {
            p.library
                .hooks
                .pane_close
                .map(|h| (h.call)(p.instance.state, pane, exit))
        })
    }

    /// Every plugin hears of the stop, even after a required one failed.
    pub fn server_stop(&self, event: &ServerStop) -> Result<(), HostError> {
        let mut server = lock(&self.server);
        *server = None;
        self.dispatch("on_server_stop", true, |p| {
            p.library
                .hooks
                .server_stop
                .map(|h| (h.call)(p.instance.state, event))
        })
    }

    fn dispatch(
        &self,
        hook: &'static str,
        reach_all: bool,
        call: impl FnMut(&ActivePlugin) -> Option<HookResult>,
    ) -> Result<(), HostError> {
        run_hook(hook, &self.state.load().active, reach_all, call)
    }

    /// The state `config` asks for, reusing unchanged plugins of `previous`.
    /// Also returns the plugins it constructed.
    fn build_state(
        &self,
        config: &PluginsConfig,
        previous: &HostState,
    ) -> (HostState, Vec<Arc<ActivePlugin>>) {
        let mut state = HostState::empty();
        let mut constructed = Vec::new();
        for entry in &config.plugins {
            let file = config.library_file(entry);
            let status = |state| PluginStatus {
                name: entry.name.clone(),
                file: file.clone(),
                enabled: entry.enabled,
                required: entry.required,
                state,
            };
            if !entry.enabled {
                state.statuses.push(status(PluginState::Disabled));
                continue;
            }
            let unchanged = previous
                .active
                .iter()
                .find(|p| p.entry == *entry && p.file == file);
            let plugin = match unchanged {
                Some(plugin) => Ok(plugin.clone()),
                None => self
                    .construct(config, entry, &file)
                    .inspect(|plugin| constructed.push(plugin.clone())),
            };
            match plugin {
                Ok(plugin) => {
                    state
                        .statuses
                        .push(status(PluginState::Active(plugin.library.metadata)));
                    state.active.push(plugin);
                }
                Err(err) => state.statuses.push(status(PluginState::Failed(err))),
            }
        }
        (state, constructed)
    }

    fn construct(
        &self,
        config: &PluginsConfig,
        entry: &PluginEntry,
        file: &Path,
    ) -> Result<Arc<ActivePlugin>, HostError> {
        if entry.library.is_some() && !file.is_file() {
            return Err(HostError::Load {
                plugin: entry.name.clone(),
                file: file.to_path_buf(),
                error: LoadError::NotInSearchPath {
                    searched: config.library_search_path(),
                },
            });
        }
        let library = self.library(file).map_err(|error| HostError::Load {
            plugin: entry.name.clone(),
            file: file.to_path_buf(),
            error,
        })?;
        let args = InitArgs {
            plugin_name: RString::from(entry.name.as_str()),
            config_toml: RString::from(entry.config.to_string()),
            config_dir: RString::from(config.dir.to_string_lossy().as_ref()),
            log: host_log_sink(),
        };
        match (library.module.instantiate())(&args) {
            ROk(instance) => Ok(Arc::new(ActivePlugin {
                entry: entry.clone(),
                file: file.to_path_buf(),
                library,
                instance,
            })),
            RErr(error) => Err(HostError::Init {
                plugin: entry.name.clone(),
                file: file.to_path_buf(),
                error,
            }),
        }
    }

    fn library(&self, file: &Path) -> Result<Arc<PluginLibrary>, LoadError> {
        let key = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let mut libraries = lock(&self.libraries);
        if let Some(library) = libraries.get(&key) {
            return Ok(library.clone());
        }
        let library = Arc::new(PluginLibrary::open(file)?);
        libraries.insert(key, library.clone());
        Ok(library)
    }
}

impl HostState {
    fn empty() -> Self {
        HostState {
            active: Vec::new(),
            statuses: Vec::new(),
        }
    }
}

/// Calls one hook on `plugins` in order. `reach_all` keeps calling the rest
/// after a required plugin failed (for close and stop, which clean up).
fn run_hook(
    hook: &'static str,
    plugins: &[Arc<ActivePlugin>],
    reach_all: bool,
    mut call: impl FnMut(&ActivePlugin) -> Option<HookResult>,
) -> Result<(), HostError> {
    let mut first_failure = None;
    for plugin in plugins {
        let Some(RErr(error)) = call(plugin) else {
            continue;
        };
        let err = HostError::Hook {
            plugin: plugin.entry.name.clone(),
            file: plugin.file.clone(),
            hook,
            error,
        };
        if !plugin.entry.required {
            tracing::warn!(plugin = %plugin.entry.name, hook, "{err}; continuing");
        } else if reach_all {
            first_failure.get_or_insert(err);
        } else {
            return Err(err);
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// Plugins build paths from pane ids, so no plugin may see one that is
/// not filesystem-safe, whichever server embeds this runtime.
fn checked_pane(pane: &PaneInfo) -> Result<(), HostError> {
    check_pane_id(&pane.pane_id).map_err(HostError::InvalidPane)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl PluginStatus {
    /// `name version api=X path status`, as `host-shim check` prints it.
    pub fn line(&self) -> String {
        let (version, api, status) = match &self.state {
            PluginState::Disabled => ("-".to_string(), "-".to_string(), "disabled".to_string()),
            PluginState::Active(meta) => (
                meta.version.to_string(),
                meta.api_version.to_string(),
                "ok".to_string(),
            ),
            PluginState::Failed(err) => (
                "-".to_string(),
                "-".to_string(),
                format!("error: {}", err.cause()),
            ),
        };
        format!(
            "{name}\t{version}\tapi {api}\t{file}\t{status}",
            name = self.name,
            file = self.file.display()
        )
    }
}

/// The values a host hands to `on_pre_spawn` for its own environment.
pub fn current_env() -> Vec<EnvVar> {
    std::env::vars()
        .map(|(key, value)| EnvVar {
            key: key.into(),
            value: value.into(),
        })
        .collect()
}
