//! [`PluginHost`]: the loaded plugins and the hook flow, top to bottom.
//!
//! Hooks run on the plugins in plugins.toml's effective order (declaration
//! order adjusted by `before`/`after`). A failing `required` plugin fails
//! the operation; any other failure is logged with plugin and hook, and
//! the rest goes on. A refusal (plugin-api 1.2 pane hooks) stops the pane
//! whatever `required` says. Each call is counted, timed against
//! `[faults] slow_hook_ms`, and an optional plugin that fails
//! `switch_off_after` times in a row is switched off until a reload.
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
//!   opened (dlopen and the ABI checks), inside `reload` (so under the
//!   `server` mutex, taken in that order) or `inspect`, never while a hook
//!   runs. **The `counters` mutex** is held only to find or add a plugin's
//!   counters while it is constructed.
//! * **Counting** is atomic; a plugin's last error is stored under a mutex
//!   of its own, taken after a failed call returned, never across a call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
#[cfg(not(target_os = "linux"))]
use std::time::Instant;

use arc_swap::ArcSwap;

use abi_stable::std_types::{RErr, ROk, RResult, RSlice, RString};

use crate::abi::{
    EnvVar, HookError, HookReply, InitArgs, PaneExit, PaneInfo, PaneReply, PluginInstance,
    PluginMetadata, ServerStart, ServerStop,
};
use crate::author::apply_env_edits;
use crate::host::faults::{FaultPolicy, PluginCounters, PluginCounts};
use crate::host::printable;
use crate::host::{
    ConfigError, HookTable, HostError, LoadError, OnFault, PluginEntry, PluginLibrary,
    PluginsConfig, StartError,
};
use crate::log_bridge::host_log_sink;
use crate::pane_id::check_pane_id;

/// The plugins of one server, loaded from one plugins.toml.
pub struct PluginHost {
    config_file: PathBuf,
    /// Every library opened so far, by path: abi_stable never unloads one,
    /// so a plugin enabled again reuses it.
    libraries: Mutex<HashMap<PathBuf, Arc<PluginLibrary>>>,
    /// Counts per plugins.toml name, kept across reloads.
    counters: Mutex<HashMap<String, Arc<PluginCounters>>>,
    state: ArcSwap<HostState>,
    /// The running server, told again to a plugin a reload turns on. Its
    /// lock is held for the whole of `server_start`, `server_stop` and
    /// `reload` (hooks and constructors included), which it serializes;
    /// pane hooks never take it. See the module docs.
    server: Mutex<Option<ServerStart>>,
    /// What times hooks against `slow_hook_ms`.
    timer: Timer,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.load();
        f.debug_struct("PluginHost")
            .field("config_file", &self.config_file)
            .field("statuses", &state.statuses)
            .field("faults", &state.faults)
            .finish_non_exhaustive()
    }
}

/// A clock for timing hooks against `[faults] slow_hook_ms`, set with
/// [`PluginHost::set_hook_clock`] (feature `test-host`): a test's own
/// time, so that what it checks of the slow-hook warning does not depend
/// on the machine's clock or load.
#[cfg(feature = "test-host")]
pub trait HookClock: Send + Sync {
    /// The time now, from any fixed origin; never decreasing.
    fn now(&self) -> Duration;
}

/// What times hooks: the coarse clock, or a test's.
enum Timer {
    Coarse,
    #[cfg(feature = "test-host")]
    Custom(Arc<dyn HookClock>),
}

impl Timer {
    #[inline]
    fn now(&self) -> Duration {
        match self {
            Timer::Coarse => CoarseClock::now().0,
            #[cfg(feature = "test-host")]
            Timer::Custom(clock) => clock.now(),
        }
    }
}

struct HostState {
    active: Vec<Arc<ActivePlugin>>,
    statuses: Vec<PluginStatus>,
    faults: FaultPolicy,
    /// Optional plugins that did not load and whose `on_fault` is
    /// `refuse`: while there is one, every pane is refused.
    unloaded_refusing: Vec<Unloaded>,
}

/// An optional plugin that did not load, refusing panes in its stead.
struct Unloaded {
    plugin: String,
    cause: String,
}

/// One constructed plugin instance.
struct ActivePlugin {
    entry: PluginEntry,
    file: PathBuf,
    metadata: PluginMetadata,
    hooks: HookTable,
    instance: PluginInstance,
    counters: Arc<PluginCounters>,
    /// `on_fault` resolved to `refuse`: a pane hook that fails, or the
    /// plugin switched off, refuses the pane.
    fault_refuses: bool,
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
    /// Its plugins.toml name.
    pub name: String,
    /// The library file it names (for `library = NAME`, where it was
    /// found, or the first place looked).
    pub file: PathBuf,
    pub enabled: bool,
    pub required: bool,
    /// What its faults do to panes: `on_fault`, or what the plugin's
    /// declaration makes of it. `None` for a disabled entry (turning a
    /// plugin off is not a fault: panes are admitted without it).
    pub on_fault: Option<OnFault>,
    pub state: PluginState,
}

/// Whether an entry is loaded.
#[derive(Debug, Clone)]
pub enum PluginState {
    /// `enabled = false`: never opened.
    Disabled,
    /// Loaded and constructed: what the library says it is.
    Active(PluginMetadata),
    /// Did not load, or its constructor failed.
    Failed(HostError),
}

/// A plugin built by the caller rather than loaded from plugins.toml (the
/// test host's in-process plugins).
#[cfg(feature = "test-host")]
pub(crate) struct Constructed {
    pub(crate) entry: PluginEntry,
    pub(crate) file: PathBuf,
    pub(crate) metadata: PluginMetadata,
    pub(crate) hooks: HookTable,
    pub(crate) instance: PluginInstance,
}

/// What one plugin's hook call came to.
enum Outcome {
    Done,
    Refused(String),
    Failed(HookError),
}

impl From<RResult<HookReply, HookError>> for Outcome {
    fn from(result: RResult<HookReply, HookError>) -> Self {
        match result {
            ROk(_) => Outcome::Done,
            RErr(error) => Outcome::Failed(printable_error(error)),
        }
    }
}

/// A plugin's error as the host keeps it: its message safe to print.
fn printable_error(error: HookError) -> HookError {
    match printable(&error.message) {
        std::borrow::Cow::Borrowed(_) => error,
        std::borrow::Cow::Owned(message) => HookError::new(error.kind, message),
    }
}

impl From<RResult<PaneReply, HookError>> for Outcome {
    fn from(result: RResult<PaneReply, HookError>) -> Self {
        match result {
            ROk(PaneReply { refusal, .. }) => match refusal.into_option() {
                Some(reason) => Outcome::Refused(printable(&reason).into_owned()),
                None => Outcome::Done,
            },
            RErr(error) => Outcome::Failed(printable_error(error)),
        }
    }
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
            counters: Mutex::new(HashMap::new()),
            state: ArcSwap::from_pointee(HostState::empty()),
            server: Mutex::new(None),
            timer: Timer::Coarse,
        }
    }

    /// Times hooks with `clock` from now on, instead of the system's
    /// coarse monotonic clock: for tests of the slow-hook warning that
    /// must not depend on how fast the machine is.
    #[cfg(feature = "test-host")]
    pub fn set_hook_clock(&mut self, clock: Arc<dyn HookClock>) {
        self.timer = Timer::Custom(clock);
    }

    /// A host over `config`, built in memory rather than read from a file
    /// (the test host). Fails like [`start`](Self::start) would, but for
    /// any plugin that does not load, required or not.
    #[cfg(feature = "test-host")]
    pub(crate) fn from_config(config: &PluginsConfig) -> Result<Self, HostError> {
        let host = Self::empty(&config.file);
        let (state, _) = host.build_state(config, &HostState::empty());
        let failed = state.statuses.iter().find_map(|s| match &s.state {
            PluginState::Failed(err) => Some(err.clone()),
            _ => None,
        });
        if let Some(err) = failed {
            return Err(err);
        }
        host.state.store(Arc::new(state));
        Ok(host)
    }

    /// A host over one plugin the caller constructed (the test host).
    #[cfg(feature = "test-host")]
    pub(crate) fn with_constructed(plugin: Constructed, faults: FaultPolicy) -> Self {
        let host = Self::empty(&plugin.file);
        let counters = host.counters_of(&plugin.entry.name);
        let on_fault = OnFault::resolve(plugin.entry.on_fault, Some(plugin.hooks.refuses_panes));
        let status = PluginStatus {
            name: plugin.entry.name.clone(),
            file: plugin.file.clone(),
            enabled: true,
            required: plugin.entry.required,
            on_fault: Some(on_fault),
            state: PluginState::Active(plugin.metadata),
        };
        let active = Arc::new(ActivePlugin {
            fault_refuses: on_fault == OnFault::Refuse,
            entry: plugin.entry,
            file: plugin.file,
            metadata: plugin.metadata,
            hooks: plugin.hooks,
            instance: plugin.instance,
            counters,
        });
        host.state.store(Arc::new(HostState {
            active: vec![active],
            statuses: vec![status],
            faults,
            unloaded_refusing: Vec::new(),
        }));
        host
    }

    /// Re-reads plugins.toml: plugins turned off get no more hooks, plugins
    /// turned on are loaded (or their library reused) and, if the server is
    /// running, get `on_server_start` with `live_panes`, the server's open
    /// panes. Plugins whose entry did not change keep their instance; a
    /// plugin switched off after repeated failures is switched on again.
    /// On error nothing changes.
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
                match status.on_fault {
                    Some(OnFault::Refuse) => tracing::error!(
                        plugin = %status.name,
                        "{err}; every pane is refused until it loads (on_fault = \"refuse\"): fix it and reload, or set on_fault = \"admit\" or enabled = false on its plugins.toml entry"
                    ),
                    _ => tracing::warn!(
                        plugin = %status.name,
                        "{err}; continuing without it (on_fault = \"admit\")"
                    ),
                }
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
            run_hook(
                "on_server_start",
                &newly_active,
                state.faults,
                &self.timer,
                Step::Start,
                |p| {
                    p.hooks
                        .server_start
                        .map(|h| (h.call)(p.instance.state, &start).into())
                },
            )?;
        }
        for plugin in &state.active {
            if plugin.counters.switch_on() {
                tracing::info!(
                    plugin = %plugin.entry.name,
                    "plugin `{}` is switched on again by the reload",
                    plugin.entry.name
                );
            }
        }
        self.state.store(Arc::new(state));
        Ok(())
    }

    /// One line of status per plugins.toml entry, in effective order.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        self.state.load().statuses.clone()
    }

    /// Calls, failures, refusals and the last error of each active plugin,
    /// in effective order: what a server's status view shows. Counts are
    /// kept per plugins.toml name for the host's lifetime, across reloads.
    pub fn counts(&self) -> Vec<PluginCounts> {
        self.state
            .load()
            .active
            .iter()
            .map(|p| p.counters.snapshot(&p.entry.name))
            .collect()
    }

    /// The `[faults]` policy in force.
    pub fn fault_policy(&self) -> FaultPolicy {
        self.state.load().faults
    }

    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// `on_server_start` on every plugin, in order. A required plugin's
    /// failure stops it there and is returned: the server should not start.
    pub fn server_start(&self, event: &ServerStart) -> Result<(), HostError> {
        let mut server = lock(&self.server);
        // Kept for a reload; the live panes are the server's to say then.
        *server = Some(ServerStart {
            server_id: event.server_id.clone(),
            instance_id: event.instance_id.clone(),
            state_dir: event.state_dir.clone(),
            live_panes: Default::default(),
        });
        self.dispatch("on_server_start", Step::Start, |p| {
            p.hooks
                .server_start
                .map(|h| (h.call)(p.instance.state, event).into())
        })
    }

    /// `on_pane_create` (after `admit_pane`) on every plugin, in order. An
    /// error means the pane must not start: a plugin refused it
    /// ([`HostError::is_refusal`]), a required plugin failed, or the pane
    /// id is not filesystem-safe. The caller then closes the pane
    /// ([`pane_close`](Self::pane_close)) so plugins release what they
    /// prepared.
    pub fn pane_create(&self, pane: &PaneInfo) -> Result<(), HostError> {
        checked_pane(pane)?;
        self.dispatch("on_pane_create", Step::Admission, |p| {
            if let Some(hook) = p.hooks.pane_create_v2 {
                return Some((hook.call)(p.instance.state, pane).into());
            }
            p.hooks
                .pane_create
                .map(|h| (h.call)(p.instance.state, pane).into())
        })
    }

    /// Lets each plugin edit `env`, in order: a plugin sees the edits of
    /// the plugins before it. The caller spawns the process with the
    /// result. An error means the process must not be spawned (as for
    /// [`pane_create`](Self::pane_create)); `env` then holds the edits of
    /// the plugins before the one that stopped it.
    pub fn pre_spawn(&self, pane: &PaneInfo, env: &mut Vec<EnvVar>) -> Result<(), HostError> {
        checked_pane(pane)?;
        self.dispatch("on_pre_spawn", Step::Admission, |p| {
            if let Some(hook) = p.hooks.pre_spawn_v2 {
                let result = (hook.call)(p.instance.state, pane, RSlice::from_slice(env));
                if let ROk(reply) = &result {
                    if reply.refusal.is_none() {
                        apply_env_edits(env, &reply.env_edits);
                    }
                }
                return Some(result.into());
            }
            p.hooks.pre_spawn.map(|h| {
                let result = (h.call)(p.instance.state, pane, RSlice::from_slice(env));
                if let ROk(reply) = &result {
                    apply_env_edits(env, &reply.env_edits);
                }
                result.into()
            })
        })
    }

    /// Every plugin hears of the close, even after a required one failed.
    pub fn pane_close(&self, pane: &PaneInfo, exit: &PaneExit) -> Result<(), HostError> {
        checked_pane(pane)?;
        self.dispatch("on_pane_close", Step::Cleanup, |p| {
            p.hooks
                .pane_close
                .map(|h| (h.call)(p.instance.state, pane, exit).into())
        })
    }

    /// Every plugin hears of the stop, even after a required one failed.
    pub fn server_stop(&self, event: &ServerStop) -> Result<(), HostError> {
        let mut server = lock(&self.server);
        *server = None;
        self.dispatch("on_server_stop", Step::Cleanup, |p| {
            p.hooks
                .server_stop
                .map(|h| (h.call)(p.instance.state, event).into())
        })
    }

    fn dispatch(
        &self,
        hook: &'static str,
        step: Step,
        call: impl FnMut(&ActivePlugin) -> Option<Outcome>,
    ) -> Result<(), HostError> {
        let state = self.state.load();
        if step == Step::Admission {
            // One branch when every plugin loaded.
            if let Some(unloaded) = state.unloaded_refusing.first() {
                return Err(HostError::Refused {
                    plugin: unloaded.plugin.clone(),
                    hook,
                    reason: format!(
                        "it did not load ({}), and its on_fault is \"refuse\"; fix it and reload plugins.toml, or set on_fault = \"admit\" or enabled = false on its entry",
                        unloaded.cause
                    ),
                });
            }
        }
        run_hook(hook, &state.active, state.faults, &self.timer, step, call)
    }

    /// The state `config` asks for, reusing unchanged plugins of `previous`.
    /// Also returns the plugins it constructed.
    fn build_state(
        &self,
        config: &PluginsConfig,
        previous: &HostState,
    ) -> (HostState, Vec<Arc<ActivePlugin>>) {
        let mut state = HostState::empty();
        state.faults = config.faults;
        let mut constructed = Vec::new();
        for entry in &config.plugins {
            let file = config.library_file(entry);
            let status = |state, on_fault| PluginStatus {
                name: entry.name.clone(),
                file: file.clone(),
                enabled: entry.enabled,
                required: entry.required,
                on_fault,
                state,
            };
            if !entry.enabled {
                state.statuses.push(status(PluginState::Disabled, None));
                continue;
            }
            let unchanged = previous
                .active
                .iter()
                .find(|p| p.entry.constructs_like(entry) && p.file == file);
            let plugin = match unchanged {
                Some(plugin) => Ok(plugin.clone()),
                None => self
                    .construct(config, entry, &file)
                    .inspect(|plugin| constructed.push(plugin.clone())),
            };
            match plugin {
                Ok(plugin) => {
                    let on_fault = if plugin.fault_refuses {
                        OnFault::Refuse
                    } else {
                        OnFault::Admit
                    };
                    state
                        .statuses
                        .push(status(PluginState::Active(plugin.metadata), Some(on_fault)));
                    state.active.push(plugin);
                }
                Err((err, refuses_panes)) => {
                    let on_fault = OnFault::resolve(entry.on_fault, refuses_panes);
                    if on_fault == OnFault::Refuse && !entry.required {
                        state.unloaded_refusing.push(Unloaded {
                            plugin: entry.name.clone(),
                            cause: err.cause(),
                        });
                    }
                    state
                        .statuses
                        .push(status(PluginState::Failed(err), Some(on_fault)));
                }
            }
        }
        (state, constructed)
    }

    /// Loads and constructs one entry. On error, also whether the library
    /// declares refusals, when it could be read.
    fn construct(
        &self,
        config: &PluginsConfig,
        entry: &PluginEntry,
        file: &Path,
    ) -> Result<Arc<ActivePlugin>, (HostError, Option<bool>)> {
        if entry.library.is_some() && !file.is_file() {
            return Err((
                HostError::Load {
                    plugin: entry.name.clone(),
                    file: file.to_path_buf(),
                    error: LoadError::NotInSearchPath {
                        searched: config.library_search_path(),
                    },
                },
                None,
            ));
        }
        let library = self.library(file).map_err(|error| {
            (
                HostError::Load {
                    plugin: entry.name.clone(),
                    file: file.to_path_buf(),
                    error,
                },
                None,
            )
        })?;
        let refuses_panes = library.hooks.refuses_panes;
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
                metadata: library.metadata,
                hooks: library.hooks,
                instance,
                counters: self.counters_of(&entry.name),
                fault_refuses: OnFault::resolve(entry.on_fault, Some(refuses_panes))
                    == OnFault::Refuse,
            })),
            RErr(error) => Err((
                HostError::Init {
                    plugin: entry.name.clone(),
                    file: file.to_path_buf(),
                    error: printable_error(error),
                },
                Some(refuses_panes),
            )),
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

    fn counters_of(&self, name: &str) -> Arc<PluginCounters> {
        lock(&self.counters)
            .entry(name.to_string())
            .or_default()
            .clone()
    }
}

impl HostState {
    fn empty() -> Self {
        HostState {
            active: Vec::new(),
            statuses: Vec::new(),
            faults: FaultPolicy::default(),
            unloaded_refusing: Vec::new(),
        }
    }
}

/// Which kind of step a hook is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `on_server_start`: a required failure stops there.
    Start,
    /// `on_pane_create`, `on_pre_spawn`: a required failure stops there,
    /// and a plugin whose `on_fault` is `refuse` refuses the pane when it
    /// fails or is switched off.
    Admission,
    /// `on_pane_close`, `on_server_stop`: every plugin is called, even
    /// after a required one failed.
    Cleanup,
}

/// Calls one hook on `plugins` in order, skipping those switched off.
/// A refusal ends the call there.
fn run_hook(
    hook: &'static str,
    plugins: &[Arc<ActivePlugin>],
    faults: FaultPolicy,
    timer: &Timer,
    step: Step,
    mut call: impl FnMut(&ActivePlugin) -> Option<Outcome>,
) -> Result<(), HostError> {
    let slow = faults.slow_hook();
    let mut first_failure = None;
    for plugin in plugins {
        if plugin.counters.is_switched_off() {
            if plugin.fault_refuses && step == Step::Admission {
                return Err(HostError::Refused {
                    plugin: plugin.entry.name.clone(),
                    hook,
                    reason: format!(
                        "it is switched off after failing {n} times in a row, and its on_fault is \"refuse\"; fix what its errors said and reload plugins.toml, or set on_fault = \"admit\" on its entry",
                        n = faults.switch_off_after
                    ),
                });
            }
            continue;
        }
        let started = slow.map(|_| timer.now());
        let Some(outcome) = call(plugin) else {
            continue;
        };
        if let (Some(slow), Some(started)) = (slow, started) {
            let took = timer.now().saturating_sub(started);
            if took > slow {
                let took_ms = rounded_millis(took);
                if took_ms > faults.slow_hook_ms {
                    warn_slow(plugin, hook, took_ms, faults.slow_hook_ms);
                }
            }
        }
        let error = match outcome {
            Outcome::Done => {
                plugin.counters.succeeded();
                continue;
            }
            Outcome::Refused(reason) => {
                plugin.counters.refused();
                // A required plugin's faults stop panes anyway.
                if !plugin.hooks.refuses_panes
                    && !plugin.entry.required
                    && plugin.entry.on_fault.is_none()
                    && plugin.counters.first_undeclared_refusal()
                {
                    tracing::warn!(
                        plugin = %plugin.entry.name,
                        hook,
                        "plugin `{name}` refused a pane but does not declare that it refuses panes (Plugin::REFUSES_PANES), so while it fails or is switched off panes are admitted; its author should set REFUSES_PANES = true, or set on_fault = \"refuse\" on its plugins.toml entry",
                        name = plugin.entry.name,
                    );
                }
                return Err(HostError::Refused {
                    plugin: plugin.entry.name.clone(),
                    hook,
                    reason,
                });
            }
            Outcome::Failed(error) => error,
        };
        let err = HostError::Hook {
            plugin: plugin.entry.name.clone(),
            file: plugin.file.clone(),
            hook,
            error,
        };
        let limit = (!plugin.entry.required).then_some(faults.switch_off_after);
        let switched_off = plugin.counters.failed(&err.to_string(), limit);
        if !plugin.entry.required && plugin.fault_refuses && step == Step::Admission {
            if switched_off {
                warn_switched_off(plugin, hook, faults);
            }
            return Err(HostError::Refused {
                plugin: plugin.entry.name.clone(),
                hook,
                reason: format!(
                    "it failed ({}), and its on_fault is \"refuse\"",
                    err.cause()
                ),
            });
        }
        if !plugin.entry.required {
            tracing::warn!(plugin = %plugin.entry.name, hook, "{err}; continuing");
            if switched_off {
                warn_switched_off(plugin, hook, faults);
            }
        } else if step == Step::Cleanup {
            first_failure.get_or_insert(err);
        } else {
            return Err(err);
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// `took` in whole milliseconds, to the nearest: the coarse clock's ticks
/// run a few nanoseconds short, and a hook that took 40 ms is not
/// reported as 39.
fn rounded_millis(took: Duration) -> u64 {
    u64::try_from(took.as_micros().saturating_add(500) / 1000).unwrap_or(u64::MAX)
}

/// The clock that times hooks for `slow_hook_ms`. Every hook call reads it
/// twice, so it is the kernel's coarse monotonic clock where there is one
/// (a few nanoseconds, a resolution of a few milliseconds: enough for a
/// threshold in milliseconds), else `Instant`.
#[derive(Clone, Copy)]
struct CoarseClock(Duration);

impl CoarseClock {
    #[cfg(target_os = "linux")]
    #[inline]
    fn now() -> CoarseClock {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE
        // exists on every Linux this builds for, and a failure leaves `ts`
        // at zero, which only makes one hook look fast.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        CoarseClock(Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        ))
    }

    #[cfg(not(target_os = "linux"))]
    fn now() -> CoarseClock {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        CoarseClock(START.get_or_init(Instant::now).elapsed())
    }
}

fn warn_switched_off(plugin: &ActivePlugin, hook: &'static str, faults: FaultPolicy) {
    let panes = if plugin.fault_refuses {
        "every pane is refused while it is off (on_fault = \"refuse\")"
    } else {
        "panes start without it (on_fault = \"admit\")"
    };
    tracing::error!(
        plugin = %plugin.entry.name,
        hook,
        "plugin `{name}` failed {n} times in a row and is switched off for the rest of this run: it gets no more hooks, and {panes}. Fix what its errors above say, then reload plugins.toml (host-shim: SIGHUP) to switch it on again; `switch_off_after` in plugins.toml [faults] sets how many failures are tolerated",
        name = plugin.entry.name,
        n = faults.switch_off_after,
    );
}

fn warn_slow(plugin: &ActivePlugin, hook: &'static str, took_ms: u64, threshold_ms: u64) {
    tracing::warn!(
        plugin = %plugin.entry.name,
        hook,
        took_ms,
        "plugin `{name}` took {took_ms} ms in {hook}, more than slow_hook_ms = {threshold_ms}; the pane waited for it. Report it to the plugin's author, or raise `slow_hook_ms` in plugins.toml [faults]",
        name = plugin.entry.name,
    );
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
    /// `name version api=X path status`, as `host-shim check` prints it:
    /// one line per entry, status `ok`, `disabled` or `error`. For an
    /// error, what went wrong follows on the next line(s), `error: ...`
    /// (see [`detail`](Self::detail)).
    pub fn line(&self) -> String {
        let (version, api, status) = match &self.state {
            PluginState::Disabled => ("-".to_string(), "-".to_string(), "disabled"),
            PluginState::Active(meta) => (
                printable(&meta.version).into_owned(),
                meta.api_version.to_string(),
                "ok",
            ),
            PluginState::Failed(err) => {
                // A plugin of another major version says which it is.
                let api = match err {
                    HostError::Load {
                        error: LoadError::ApiVersion { plugin, .. },
                        ..
                    } => printable(plugin).into_owned(),
                    _ => "-".to_string(),
                };
                ("-".to_string(), api, "error")
            }
        };
        let mut line = format!(
            "{name}\t{version}\tapi {api}\t{file}\t{status}",
            name = self.name,
            file = self.file.display()
        );
        if let Some(detail) = self.detail() {
            line.push('\n');
            line.push_str(&detail);
        }
        line
    }

    /// For an entry that failed: `error: CAUSE`, then what its fault does
    /// to panes. `None` for one that loaded or is disabled.
    pub fn detail(&self) -> Option<String> {
        let PluginState::Failed(err) = &self.state else {
            return None;
        };
        let panes = if self.required {
            "required: the server does not start without it".to_string()
        } else {
            match self.on_fault {
                Some(OnFault::Refuse) => {
                    "optional, on_fault = \"refuse\": every pane is refused until it loads"
                        .to_string()
                }
                _ => "optional, on_fault = \"admit\": panes start without it".to_string(),
            }
        };
        Some(format!("error: {}\n{panes}", err.cause()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_times_are_rounded_to_the_nearest_millisecond() {
        // The coarse clock's 40 ms, a few nanoseconds short.
        assert_eq!(rounded_millis(Duration::from_nanos(39_999_996)), 40);
        assert_eq!(rounded_millis(Duration::from_micros(40_499)), 40);
        assert_eq!(rounded_millis(Duration::from_micros(40_500)), 41);
        assert_eq!(rounded_millis(Duration::ZERO), 0);
        assert_eq!(rounded_millis(Duration::MAX), u64::MAX);
    }
}
