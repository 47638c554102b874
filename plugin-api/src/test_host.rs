//! A host for plugin tests (feature `test-host`): the server's own dispatch
//! code ([`PluginHost`]), one plugin, no server process and no PTY.
//!
//! Build it from a plugin type and a `[plugins.config]` table (constructed
//! in this process, as the host would), from a plugin value, or from a
//! built plugin library (loaded and checked as the server loads it). Then
//! call the hooks in the order a server does and read back what the pane's
//! process would get, the errors, and the plugin's log events.
//!
//! ```
//! use ccmux_plugin_api::test_host::TestHost;
//! use ccmux_plugin_api::{HookError, InitContext, NoConfig, PaneExit, PaneInfo, Plugin, SpawnEnv};
//!
//! struct Marker;
//!
//! impl Plugin for Marker {
//!     const NAME: &'static str = "marker";
//!     type Config = NoConfig;
//!     fn new(_: NoConfig, _: &InitContext) -> Result<Self, HookError> {
//!         Ok(Marker)
//!     }
//!     fn on_pre_spawn(&self, pane: &PaneInfo, env: &mut SpawnEnv<'_>) -> Result<(), HookError> {
//!         env.set("MARK", pane.pane_id.as_str());
//!         Ok(())
//!     }
//! }
//!
//! let host = TestHost::build::<Marker>("").unwrap();
//! let pane = PaneInfo::new("main_0_1");
//! let env = host.open_pane(&pane).unwrap();
//! assert_eq!(env.get("MARK"), Some("main_0_1"));
//! host.pane_close(&pane, &PaneExit::exited(0)).unwrap();
//! ```
//!
//! What differs from a server: the plugin is one, and `required` unless
//! [`TestHostOptions::optional`] says otherwise, so a hook's error comes
//! back from the call (an optional plugin's is only logged, as in a
//! server: read it from [`TestHost::counts`] or [`TestHost::logs`]). The
//! environment the hooks start from is empty unless set with
//! [`TestHostOptions::env`]. Log events are captured on the thread calling
//! the hook: events from threads of the plugin's own are not.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use abi_stable::std_types::{RErr, ROk, RStr};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};

use crate::abi::{
    EnvVar, PaneExit, PaneInfo, PluginInstance, PluginMetadata, ServerStart, ServerStop,
};
use crate::author::Plugin;
use crate::export::{construct, hooks, wrap_instance};
use crate::host::runtime::Constructed;
use crate::host::{
    FaultPolicy, HookTable, HostError, LoadError, OnFault, PluginCounts, PluginEntry, PluginHost,
    PluginsConfig,
};

/// A [`PluginHost`] over one plugin, for tests. See the module docs.
pub struct TestHost {
    host: PluginHost,
    name: String,
    base_env: Vec<EnvVar>,
    capture: Dispatch,
    logs: Arc<Mutex<Vec<LogEvent>>>,
}

/// How to set up a [`TestHost`]; [`TestHost::options`] starts one.
#[derive(Debug, Clone)]
pub struct TestHostOptions {
    name: Option<String>,
    required: bool,
    env: Vec<EnvVar>,
    config_dir: Option<PathBuf>,
    faults: FaultPolicy,
    on_fault: Option<OnFault>,
}

/// The environment a pane's process would get.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessEnv {
    vars: Vec<EnvVar>,
}

impl ProcessEnv {
    /// The value of `key`, if the process would have it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|var| var.key == key)
            .map(|var| var.value.as_str())
    }

    /// Every variable, in the order the host would pass them.
    pub fn vars(&self) -> &[EnvVar] {
        &self.vars
    }
}

/// One `tracing` event captured while a hook ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub level: Level,
    /// The plugin's name for an event the plugin emitted; `None` for the
    /// host runtime's own (such as "continuing" after an optional plugin's
    /// error, or a slow-hook warning).
    pub plugin: Option<String>,
    /// The event's target in the code that emitted it (the plugin's module
    /// path, for a plugin's event).
    pub target: String,
    /// The message, then ` key=value` for every other field.
    pub message: String,
}

impl TestHost {
    /// Constructs `P` from `config_toml` (its `[plugins.config]` table as
    /// TOML text, `""` for none) in this process, as a host constructs a
    /// loaded plugin: the config is parsed with the same error messages, and
    /// a panic in `new` is an error. The plugin is named `P::NAME`.
    pub fn build<P: Plugin>(config_toml: &str) -> Result<TestHost, HostError> {
        Self::options().build::<P>(config_toml)
    }

    /// A host over `plugin`, already constructed.
    pub fn with_plugin<P: Plugin>(plugin: P) -> TestHost {
        Self::options().with_plugin(plugin)
    }

    /// Loads the plugin library at `library` (a built cdylib) as the
    /// server does, with `config_toml` as its config table. The plugin is
    /// named after the file (`libhello_plugin.so`: `hello_plugin`). The
    /// library must exist: `cargo test` does not build a crate's cdylib,
    /// so build it first, or use [`build_and_load`](Self::build_and_load),
    /// which does.
    pub fn load(library: impl AsRef<Path>, config_toml: &str) -> Result<TestHost, HostError> {
        Self::options().load(library, config_toml)
    }

    /// Builds the plugin crate at `manifest_dir` as the server loads it (a
    /// cdylib, `cargo build --lib`, in the profile and target dir of the
    /// running test), then [`load`](Self::load)s that library. In a
    /// plugin's own tests:
    ///
    /// ```ignore
    /// let host = TestHost::build_and_load(env!("CARGO_MANIFEST_DIR"), "greeting = \"hi\"")?;
    /// ```
    ///
    /// The plugin is named after the library file, as with `load`. A
    /// failed build is a [`HostError::Load`] carrying cargo's output. See
    /// [`build_cdylib`] for the build alone.
    pub fn build_and_load(
        manifest_dir: impl AsRef<Path>,
        config_toml: &str,
    ) -> Result<TestHost, HostError> {
        Self::options().build_and_load(manifest_dir, config_toml)
    }

    /// Options: name, `required`, `on_fault`, base environment, config
    /// dir, faults.
    pub fn options() -> TestHostOptions {
        TestHostOptions {
            name: None,
            required: true,
            env: Vec::new(),
            config_dir: None,
            faults: FaultPolicy::default(),
            on_fault: None,
        }
    }

    /// `on_server_start`.
    pub fn server_start(&self, event: &ServerStart) -> Result<(), HostError> {
        self.captured(|host| host.server_start(event))
    }

    /// `admit_pane` and `on_pane_create`.
    pub fn pane_create(&self, pane: &PaneInfo) -> Result<(), HostError> {
        self.captured(|host| host.pane_create(pane))
    }

    /// `on_pre_spawn`, from the base environment: the environment the
    /// process would be spawned with.
    pub fn pre_spawn(&self, pane: &PaneInfo) -> Result<ProcessEnv, HostError> {
        let mut vars = self.base_env.clone();
        self.captured(|host| host.pre_spawn(pane, &mut vars))?;
        Ok(ProcessEnv { vars })
    }

    /// What a server does to open a pane: `pane_create`, then `pre_spawn`.
    pub fn open_pane(&self, pane: &PaneInfo) -> Result<ProcessEnv, HostError> {
        self.pane_create(pane)?;
        self.pre_spawn(pane)
    }

    /// `on_pane_close`.
    pub fn pane_close(&self, pane: &PaneInfo, exit: &PaneExit) -> Result<(), HostError> {
        self.captured(|host| host.pane_close(pane, exit))
    }

    /// `on_server_stop`.
    pub fn server_stop(&self, event: &ServerStop) -> Result<(), HostError> {
        self.captured(|host| host.server_stop(event))
    }

    /// Every event captured so far, oldest first.
    pub fn logs(&self) -> Vec<LogEvent> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The events the plugin emitted, oldest first.
    pub fn plugin_logs(&self) -> Vec<LogEvent> {
        self.logs()
            .into_iter()
            .filter(|event| event.plugin.is_some())
            .collect()
    }

    /// Forgets the events captured so far.
    pub fn clear_logs(&self) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.clear();
        }
    }

    /// The plugin's calls, failures, refusals and last error.
    pub fn counts(&self) -> PluginCounts {
        self.host
            .counts()
            .into_iter()
            .next()
            .unwrap_or_else(|| PluginCounts {
                name: self.name.clone(),
                calls: 0,
                failures: 0,
                refusals: 0,
                failures_in_a_row: 0,
                switched_off: false,
                last_error: None,
            })
    }

    /// The plugin's name in this host (errors and log events carry it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The [`PluginHost`] underneath, for anything else.
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    fn captured<R>(&self, call: impl FnOnce(&PluginHost) -> R) -> R {
        tracing::dispatcher::with_default(&self.capture, || call(&self.host))
    }
}

impl TestHostOptions {
    /// The plugin's name in the host, as plugins.toml's `name` would give
    /// it.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Makes the plugin optional (`required = false`): its errors are
    /// logged, not returned, as a server treats them, and repeated failures
    /// switch it off ([`faults`](Self::faults)).
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Adds `key=value` to the environment `on_pre_spawn` starts from.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push(EnvVar {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// The directory plugins.toml would be in: relative paths in the
    /// plugin's config resolve against it [default: the current dir].
    pub fn config_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.config_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// plugins.toml's `[faults]` table.
    pub fn faults(mut self, faults: FaultPolicy) -> Self {
        self.faults = faults;
        self
    }

    /// plugins.toml's `on_fault` for the plugin [default: none, so the
    /// plugin's [`REFUSES_PANES`](crate::Plugin::REFUSES_PANES) decides].
    /// It matters for an [`optional`](Self::optional) plugin.
    pub fn on_fault(mut self, on_fault: OnFault) -> Self {
        self.on_fault = Some(on_fault);
        self
    }

    /// [`TestHost::build_and_load`] with these options.
    pub fn build_and_load(
        self,
        manifest_dir: impl AsRef<Path>,
        config_toml: &str,
    ) -> Result<TestHost, HostError> {
        let manifest_dir = manifest_dir.as_ref();
        match build_cdylib(manifest_dir) {
            Ok(library) => self.load(library, config_toml),
            Err(err) => Err(HostError::Load {
                plugin: self.name.clone().unwrap_or_else(|| "plugin".to_string()),
                file: manifest_dir.join("Cargo.toml"),
                error: LoadError::Other {
                    detail: err.to_string(),
                },
            }),
        }
    }

    /// [`TestHost::build`] with these options.
    pub fn build<P: Plugin>(self, config_toml: &str) -> Result<TestHost, HostError> {
        let name = self.name.clone().unwrap_or_else(|| P::NAME.to_string());
        let (capture, logs) = capture(&name);
        let config_dir = self.resolved_config_dir();
        let instance = tracing::dispatcher::with_default(&capture, || {
            construct::<P>(&name, config_toml, &config_dir.to_string_lossy())
        });
        let instance = match instance {
            ROk(instance) => instance,
            RErr(error) => {
                return Err(HostError::Init {
                    plugin: name,
                    file: PathBuf::from(IN_PROCESS),
                    error,
                })
            }
        };
        Ok(self.in_process::<P>(name, instance, capture, logs))
    }

    /// [`TestHost::with_plugin`] with these options.
    pub fn with_plugin<P: Plugin>(self, plugin: P) -> TestHost {
        let name = self.name.clone().unwrap_or_else(|| P::NAME.to_string());
        let (capture, logs) = capture(&name);
        let instance = wrap_instance(plugin, &name);
        self.in_process::<P>(name, instance, capture, logs)
    }

    /// [`TestHost::load`] with these options.
    pub fn load(self, library: impl AsRef<Path>, config_toml: &str) -> Result<TestHost, HostError> {
        let library = library.as_ref();
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| name_of_library(library));
        let file = std::path::absolute(library).unwrap_or_else(|_| library.to_path_buf());
        let invalid_config = |error: toml::de::Error| HostError::Init {
            plugin: name.clone(),
            file: file.clone(),
            error: crate::HookError::new(
                crate::HookErrorKind::Config,
                format!("plugin `{name}`: the test's config is not valid TOML: {error}"),
            ),
        };
        let config: toml::Table = toml::from_str(config_toml).map_err(invalid_config)?;
        let config_dir = self.resolved_config_dir();
        let plugins = PluginsConfig {
            file: config_dir.join("plugins.toml"),
            dir: config_dir,
            search_dirs: Vec::new(),
            faults: self.faults,
            plugins: vec![PluginEntry {
                name: name.clone(),
                path: Some(file),
                library: None,
                enabled: true,
                required: self.required,
                before: Vec::new(),
                after: Vec::new(),
                on_fault: self.on_fault,
                config,
            }],
        };
        let (capture, logs) = capture(&name);
        let host =
            tracing::dispatcher::with_default(&capture, || PluginHost::from_config(&plugins))?;
        Ok(TestHost {
            host,
            name,
            base_env: self.env,
            capture,
            logs,
        })
    }

    fn in_process<P: Plugin>(
        self,
        name: String,
        instance: PluginInstance,
        capture: Dispatch,
        logs: Arc<Mutex<Vec<LogEvent>>>,
    ) -> TestHost {
        let plugin = Constructed {
            entry: PluginEntry {
                name: name.clone(),
                path: None,
                library: None,
                enabled: true,
                required: self.required,
                before: Vec::new(),
                after: Vec::new(),
                on_fault: self.on_fault,
                config: toml::Table::new(),
            },
            file: PathBuf::from(IN_PROCESS),
            metadata: PluginMetadata {
                name: RStr::from_str(P::NAME),
                version: RStr::from_str(IN_PROCESS),
                api_version: RStr::from_str(crate::API_VERSION),
            },
            // The plugin's own entries cannot fail the checks.
            hooks: HookTable::from_entries(&hooks::<P>()).unwrap_or_default(),
            instance,
        };
        TestHost {
            host: PluginHost::with_constructed(plugin, self.faults),
            name,
            base_env: self.env,
            capture,
            logs,
        }
    }

    fn resolved_config_dir(&self) -> PathBuf {
        self.config_dir
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("base_env", &self.base_env)
            .field("logs", &self.logs.lock().map(|l| l.len()).unwrap_or(0))
            .finish()
    }
}

/// Why [`build_cdylib`] could not build the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// Builds the plugin crate whose `Cargo.toml` is in `manifest_dir` as a
/// cdylib and returns the library's path: `cargo build --lib` (cargo is
/// `$CARGO`, which cargo sets for the tests it runs), into the target dir
/// and profile of the running test binary (`target/debug/deps/...` builds
/// into `target`, profile `debug`), so it reuses what the test's own
/// build compiled. The library's name is `[lib] name`, else the package
/// name with `-` as `_`.
///
/// `TestHost::load(build_cdylib(env!("CARGO_MANIFEST_DIR"))?, config)` is
/// what [`TestHost::build_and_load`] does.
pub fn build_cdylib(manifest_dir: impl AsRef<Path>) -> Result<PathBuf, BuildError> {
    let manifest_dir = manifest_dir.as_ref();
    let manifest = manifest_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|err| {
        BuildError(format!(
            "cannot read {}: {err}; pass the plugin crate's directory (env!(\"CARGO_MANIFEST_DIR\"))",
            manifest.display()
        ))
    })?;
    let lib_name = library_name(&text).ok_or_else(|| {
        BuildError(format!(
            "{}: no [package] name or [lib] name; is it a plugin crate?",
            manifest.display()
        ))
    })?;
    let (target_dir, profile) = test_target(manifest_dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(&cargo);
    command
        .args(["build", "--lib", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    let output = command.output().map_err(|err| {
        BuildError(format!(
            "cannot run {}: {err}; run the tests with cargo, or set CARGO to cargo's path",
            Path::new(&cargo).display()
        ))
    })?;
    if !output.status.success() {
        return Err(BuildError(format!(
            "cargo build --lib --manifest-path {} failed ({}); fix the build errors:\n{}",
            manifest.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    let library = target_dir.join(&profile).join(format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    if !library.is_file() {
        return Err(BuildError(format!(
            "cargo built {} but there is no {}; is the crate's `crate-type` [\"cdylib\"]?",
            manifest.display(),
            library.display()
        )));
    }
    Ok(library)
}

/// `[lib] name`, else the package name with `-` as `_`.
fn library_name(cargo_toml: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(cargo_toml).ok()?;
    let from_lib = table
        .get("lib")
        .and_then(|lib| lib.get("name"))
        .and_then(|name| name.as_str());
    let from_package = table
        .get("package")
        .and_then(|package| package.get("name"))
        .and_then(|name| name.as_str());
    from_lib.or(from_package).map(|name| name.replace('-', "_"))
}

/// The target dir and profile of the running test binary
/// (`{target}/{profile}/deps/{name}-{hash}`); else `$CARGO_TARGET_DIR`
/// or `manifest_dir/target`, and this build's profile.
fn test_target(manifest_dir: &Path) -> (PathBuf, String) {
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .filter(|deps| deps.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent);
    if let Some((dir, target)) = profile_dir.and_then(|dir| dir.parent().map(|t| (dir, t))) {
        if let Some(profile) = dir.file_name() {
            return (target.to_path_buf(), profile.to_string_lossy().into_owned());
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    (target, profile.to_string())
}

/// Where an in-process plugin's "file" is, in errors and statuses.
const IN_PROCESS: &str = "(in process)";

/// `libhello_plugin.so` → `hello_plugin`.
fn name_of_library(library: &Path) -> String {
    let file = library
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_string());
    let file = file
        .strip_prefix(std::env::consts::DLL_PREFIX)
        .unwrap_or(&file);
    file.strip_suffix(std::env::consts::DLL_SUFFIX)
        .unwrap_or(file)
        .to_string()
}

fn capture(plugin: &str) -> (Dispatch, Arc<Mutex<Vec<LogEvent>>>) {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let dispatch = Dispatch::new(Capture {
        plugin: plugin.to_string(),
        logs: logs.clone(),
    });
    (dispatch, logs)
}

/// Records every event of every level.
struct Capture {
    plugin: String,
    logs: Arc<Mutex<Vec<LogEvent>>>,
}

impl Subscriber for Capture {
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut text = EventFields::default();
        event.record(&mut text);
        let mut message = text.message;
        message.push_str(&text.fields);
        let (plugin, target) = if metadata.target() == "ccmux::plugin" {
            // A loaded library's event, re-emitted by the host's log sink.
            (text.plugin, text.origin.unwrap_or_default())
        } else if metadata.target().starts_with("ccmux_plugin_api::host") {
            // The runtime's own: warnings about the plugin, for instance.
            (None, metadata.target().to_string())
        } else {
            // An in-process plugin's own event.
            (Some(self.plugin.clone()), metadata.target().to_string())
        };
        if let Ok(mut logs) = self.logs.lock() {
            logs.push(LogEvent {
                level: *metadata.level(),
                plugin,
                target,
                message,
            });
        }
    }
}

#[derive(Default)]
struct EventFields {
    message: String,
    fields: String,
    plugin: Option<String>,
    origin: Option<String>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "plugin" if self.plugin.is_none() => self.plugin = Some(value.to_string()),
            "origin" if self.origin.is_none() => self.origin = Some(value.to_string()),
            name => {
                let _ = write!(self.fields, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name => {
                let _ = write!(self.fields, " {name}={value:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HookError, HookErrorKind, InitContext, SpawnEnv, Verdict};

    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct GateConfig {
        allowed_root: String,
        fail_close: bool,
    }

    struct Gate {
        config: GateConfig,
    }

    impl Plugin for Gate {
        const NAME: &'static str = "gate";
        type Config = GateConfig;
        fn new(config: GateConfig, _: &InitContext) -> Result<Self, HookError> {
            if config.allowed_root.is_empty() {
                return Err(HookError::new(HookErrorKind::Config, "set `allowed_root`"));
            }
            Ok(Gate { config })
        }
        fn admit_pane(&self, pane: &PaneInfo) -> Result<Verdict, HookError> {
            if pane.cwd.starts_with(self.config.allowed_root.as_str()) {
                Ok(Verdict::Admit)
            } else {
                Ok(Verdict::refuse(format!(
                    "panes run only under {}",
                    self.config.allowed_root
                )))
            }
        }
        fn on_pre_spawn(&self, pane: &PaneInfo, env: &mut SpawnEnv<'_>) -> Result<(), HookError> {
            tracing::info!(pane = %pane.pane_id, "gating");
            if env.get("FORBIDDEN").is_some() {
                env.set("IGNORED", "1");
                env.refuse("FORBIDDEN is set");
            }
            env.set("GATED", "yes");
            Ok(())
        }
        fn on_pane_close(&self, _: &PaneInfo, _: &PaneExit) -> Result<(), HookError> {
            if self.config.fail_close {
                return Err(HookError::new(HookErrorKind::Io, "disk full"));
            }
            Ok(())
        }
    }

    #[test]
    fn builds_from_config_and_runs_the_real_dispatch() {
        let host = TestHost::build::<Gate>("allowed_root = \"/work\"").unwrap();
        let pane = PaneInfo::new("w_0_0").with_cwd("/work/x");
        let env = host.open_pane(&pane).unwrap();
        assert_eq!(env.get("GATED"), Some("yes"));
        let logs = host.plugin_logs();
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert_eq!(logs[0].plugin.as_deref(), Some("gate"));
        assert_eq!(logs[0].level, Level::INFO);
        assert!(logs[0].message.starts_with("gating pane=w_0_0"), "{logs:?}");
        assert_eq!(host.counts().calls, 2);
    }

    #[test]
    fn refusals_and_errors_come_back_as_the_server_sees_them() {
        let host = TestHost::options()
            .env("FORBIDDEN", "1")
            .build::<Gate>("allowed_root = \"/work\"\nfail_close = true")
            .unwrap();
        let outside = PaneInfo::new("w_0_1").with_cwd("/tmp");
        let err = host.pane_create(&outside).unwrap_err();
        assert!(err.is_refusal(), "{err:?}");
        assert_eq!(
            err.to_string(),
            "plugin `gate` refused the pane in on_pane_create: panes run only under /work"
        );
        let inside = PaneInfo::new("w_0_2").with_cwd("/work");
        let err = host.pre_spawn(&inside).unwrap_err();
        assert!(err.to_string().contains("FORBIDDEN is set"), "{err}");
        let err = host.pane_close(&inside, &PaneExit::exited(0)).unwrap_err();
        assert_eq!(err.hook_error_kind(), Some(HookErrorKind::Io));
        let counts = host.counts();
        assert_eq!((counts.calls, counts.refusals, counts.failures), (3, 2, 1));
    }

    #[test]
    fn an_optional_plugin_error_is_logged_not_returned() {
        let host = TestHost::options()
            .optional()
            .build::<Gate>("allowed_root = \"/\"\nfail_close = true")
            .unwrap();
        let pane = PaneInfo::new("w_0_3");
        host.pane_close(&pane, &PaneExit::exited(0)).unwrap();
        let counts = host.counts();
        assert!(
            counts
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("disk full")),
            "{counts:?}"
        );
        assert!(host.logs().iter().any(|e| e.plugin.is_none()
            && e.level == Level::WARN
            && e.message.contains("disk full")));
    }

    #[test]
    fn constructor_and_config_errors_name_the_plugin() {
        let err = TestHost::build::<Gate>("").err().unwrap();
        assert!(err.to_string().contains("set `allowed_root`"), "{err}");
        let err = TestHost::build::<Gate>("allowed = 1").err().unwrap();
        assert!(err.to_string().contains("unknown field `allowed`"), "{err}");
        assert!(err.to_string().contains("`gate`"), "{err}");
    }

    /// Fails every pane hook; declares refusals or not.
    struct Broken<const DECLARES: bool>;

    impl<const DECLARES: bool> Plugin for Broken<DECLARES> {
        const NAME: &'static str = "broken";
        const REFUSES_PANES: bool = DECLARES;
        type Config = crate::NoConfig;
        fn new(_: crate::NoConfig, _: &InitContext) -> Result<Self, HookError> {
            Ok(Broken)
        }
        fn admit_pane(&self, _: &PaneInfo) -> Result<Verdict, HookError> {
            panic!("admit_pane is broken");
        }
        fn on_pre_spawn(&self, _: &PaneInfo, _: &mut SpawnEnv<'_>) -> Result<(), HookError> {
            Err(HookError::new(
                HookErrorKind::Failed,
                "on_pre_spawn is broken",
            ))
        }
    }

    /// What opening a pane comes to: `Ok(true)` admitted, `Ok(false)`
    /// refused.
    fn admitted(host: &TestHost, id: &str) -> bool {
        match host.open_pane(&PaneInfo::new(id)) {
            Ok(_) => true,
            Err(err) if err.is_refusal() => false,
            Err(err) => panic!("neither: {err}"),
        }
    }

    #[test]
    fn an_optional_plugins_panics_and_switch_off_follow_its_declaration_and_on_fault() {
        let faults = FaultPolicy {
            switch_off_after: 2,
            ..FaultPolicy::default()
        };
        let cases = [
            (
                TestHost::options()
                    .optional()
                    .faults(faults)
                    .with_plugin(Broken::<true>),
                false,
            ),
            (
                TestHost::options()
                    .optional()
                    .faults(faults)
                    .with_plugin(Broken::<false>),
                true,
            ),
            (
                TestHost::options()
                    .optional()
                    .faults(faults)
                    .on_fault(OnFault::Admit)
                    .with_plugin(Broken::<true>),
                true,
            ),
            (
                TestHost::options()
                    .optional()
                    .faults(faults)
                    .on_fault(OnFault::Refuse)
                    .with_plugin(Broken::<false>),
                false,
            ),
        ];
        for (i, (host, admits)) in cases.into_iter().enumerate() {
            // Two failures in a row switch it off; the third pane is not
            // asked.
            for pane in ["w_1_0", "w_1_1", "w_1_2"] {
                assert_eq!(admitted(&host, pane), admits, "case {i}, {pane}");
            }
            let counts = host.counts();
            assert!(counts.switched_off, "case {i}: {counts:?}");
            assert_eq!(counts.failures, 2, "case {i}: {counts:?}");
        }
    }

    #[test]
    fn a_refusal_without_the_declaration_is_honoured_and_warned_about_once() {
        let host = TestHost::options()
            .optional()
            .build::<Gate>("allowed_root = \"/work\"")
            .unwrap();
        for id in ["w_2_0", "w_2_1"] {
            let err = host
                .pane_create(&PaneInfo::new(id).with_cwd("/tmp"))
                .unwrap_err();
            assert!(err.is_refusal(), "{err}");
        }
        let warnings: Vec<LogEvent> = host
            .logs()
            .into_iter()
            .filter(|e| e.message.contains("does not declare that it refuses panes"))
            .collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");

        // Required, its faults stop panes anyway: no warning.
        let required = TestHost::build::<Gate>("allowed_root = \"/work\"").unwrap();
        assert!(required
            .pane_create(&PaneInfo::new("w_2_2").with_cwd("/tmp"))
            .unwrap_err()
            .is_refusal());
        assert!(!required
            .logs()
            .iter()
            .any(|e| e.message.contains("does not declare")));
        assert!(
            warnings[0].message.contains("REFUSES_PANES = true"),
            "{warnings:?}"
        );
    }

    #[test]
    fn the_library_name_is_lib_name_else_the_package_name() {
        assert_eq!(
            library_name("[package]\nname = \"hello-plugin\"\n").as_deref(),
            Some("hello_plugin")
        );
        assert_eq!(
            library_name("[package]\nname = \"a\"\n[lib]\nname = \"b_c\"\n").as_deref(),
            Some("b_c")
        );
        assert_eq!(library_name("[workspace]\n"), None);
        let err = build_cdylib("/nonexistent-crate").unwrap_err().to_string();
        assert!(err.contains("/nonexistent-crate/Cargo.toml"), "{err}");
        assert!(err.contains("CARGO_MANIFEST_DIR"), "{err}");
    }

    #[test]
    fn test_hosts_and_their_parts_implement_debug() {
        let host = TestHost::build::<Gate>("allowed_root = \"/\"").unwrap();
        let text = format!("{host:?}");
        assert!(text.contains("TestHost"), "{text}");
        assert!(text.contains("\"gate\""), "{text}");
        assert!(text.contains("PluginHost"), "{text}");
    }

    #[test]
    fn a_plugin_value_works_and_the_library_name_comes_from_the_file() {
        let host = TestHost::with_plugin(Gate {
            config: GateConfig {
                allowed_root: "/".into(),
                fail_close: false,
            },
        });
        host.open_pane(&PaneInfo::new("w_0_4")).unwrap();
        assert_eq!(host.name(), "gate");
        let file = format!(
            "/x/{}hello_plugin{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        assert_eq!(name_of_library(Path::new(&file)), "hello_plugin");
    }
}
