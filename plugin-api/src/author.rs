//! The plugin author's side: a plain-Rust trait with no-op defaults.
//!
//! A plugin is a struct, an `impl Plugin` and one
//! [`export_plugin!`](crate::export_plugin) line. Nothing here is FFI: the
//! macro wraps these methods in `extern "C"` functions that catch panics.

use std::path::PathBuf;

use abi_stable::std_types::{RNone, RSome, RString};
use serde::de::DeserializeOwned;

use crate::abi::{
    EnvEdit, EnvVar, HookError, HookErrorKind, PaneExit, PaneInfo, ServerStart, ServerStop,
};

/// A ccmux plugin: a type the host constructs from its `[plugins.config]`
/// table and whose hooks it calls around each pane's life.
///
/// Every hook has a no-op default: implement only those you need. Rules
/// that hold for all of them:
///
/// * **Threads.** Hooks of different panes run at the same time, on the
///   server's pane threads, so state behind `&self` needs its own
///   synchronisation (`Mutex`, atomics). Hooks of one pane run one after
///   the other, in the order below.
/// * **Order between plugins.** Each hook runs on one plugin after the
///   other in the *effective order*: plugins.toml's declaration order,
///   adjusted by each entry's `before`/`after` lists (`host-shim plugins`
///   prints it).
/// * **Errors.** A returned error (or a panic, which the host catches and
///   turns into an error of kind [`HookErrorKind::Panic`]) is reported with
///   the plugin's plugins.toml name and the hook. What else it does
///   depends on the entry's `required`: see each hook. An optional plugin
///   that fails `switch_off_after` times in a row (plugins.toml `[faults]`,
///   default 5) gets no more hooks until plugins.toml is reloaded.
/// * **Refusals** are not errors: [`admit_pane`](Self::admit_pane) and
///   [`SpawnEnv::refuse`] stop a pane from starting whatever `required`
///   says, and the user is told the plugin's name and reason.
///   A plugin that refuses panes sets
///   [`REFUSES_PANES`](Self::REFUSES_PANES): then, by default, a host
///   refuses every pane while it cannot ask the plugin (it failed, panicked
///   or was switched off), instead of admitting them unchecked.
/// * **Time.** A hook slower than `slow_hook_ms` (plugins.toml `[faults]`,
///   default 1000) is logged as a warning; a pane waits for its hooks, so
///   do slow work on a thread of your own.
/// * **Logging.** Use `tracing` (re-exported as
///   [`ccmux_plugin_api::tracing`](crate::tracing)); events reach the
///   host's log under target `ccmux::plugin` with the plugin's name. Hosts
///   show warnings and errors by default; `info!` and below only when
///   asked (host-shim: `RUST_LOG=ccmux::plugin=info`). Spans are not
///   forwarded: an event inside a span arrives without the span's fields,
///   so put what matters in the event itself.
/// * **Environment.** Never call `std::env::set_var`: a plugin library has
///   its own copy of std, and the host's environment is not the pane's.
///   Edit the pane's environment through [`SpawnEnv`].
pub trait Plugin: Send + Sync + Sized + 'static {
    /// The plugin's own name, reported by `host-shim check` next to the
    /// name plugins.toml gives it.
    const NAME: &'static str;

    /// Whether this plugin may refuse panes ([`admit_pane`](Self::admit_pane),
    /// [`SpawnEnv::refuse`]): a policy plugin. Default `false` (plugin-api
    /// 1.3; older plugins declare nothing, which reads as `false`).
    ///
    /// It sets what a host does with panes while it cannot ask the plugin:
    /// when an optional plugin's pane hook fails or panics, after `[faults]
    /// switch_off_after` switched it off, or when its constructor failed.
    /// `true`: every pane is refused (fail closed); `false`: panes are
    /// admitted without it (fail open). plugins.toml's `on_fault`
    /// (`"refuse"` or `"admit"`) overrides it per entry. A plugin that
    /// refuses without declaring it still stops the pane, and the host
    /// warns once (for an optional entry without `on_fault`) that its
    /// faults admit panes.
    const REFUSES_PANES: bool = false;

    /// The plugin's `[plugins.config]` table. An absent table deserializes
    /// as an empty one, so give fields `#[serde(default)]`; use
    /// `#[serde(deny_unknown_fields)]` so typos are reported. With only
    /// this crate as a dependency, derive through the re-export:
    /// `#[derive(ccmux_plugin_api::serde::Deserialize)]` and
    /// `#[serde(crate = "ccmux_plugin_api::serde")]`. A bad value is
    /// reported naming the plugin and the key path, as a constructor error.
    type Config: DeserializeOwned;

    /// Builds the plugin from its config.
    ///
    /// **When:** once per instance: when the server starts, for each
    /// enabled entry in effective order, and when a reload turns the plugin
    /// on or changes its entry (the new instance is built while the old one
    /// still runs; the old one is dropped once no hook runs on it).
    /// **Thread:** the one starting the server or reloading, never at the
    /// same time as another constructor, `on_server_start` or
    /// `on_server_stop` of this host.
    /// **Error:** `required = true`: the server does not start (a reload
    /// fails and changes nothing). `required = false`: the plugin is left
    /// out and the reason logged; `host-shim check` shows it.
    fn new(config: Self::Config, ctx: &InitContext) -> Result<Self, HookError>;

    /// The server is up.
    ///
    /// **When:** once per server run, after the constructors and before
    /// any pane hook of the run; and to a plugin a reload turns on, with
    /// the panes open at that moment. [`ServerStart::live_panes`] lists the
    /// panes restored from the last run (or open at the reload): anything
    /// else an earlier run left is no longer in use, so clean it here.
    /// **Thread:** the server's, never at the same time as a constructor,
    /// another `on_server_start` or `on_server_stop`; when a reload calls
    /// it, pane hooks of open panes may run meanwhile.
    /// **Error:** `required = true`: the server does not start and later
    /// plugins are not called (a reload fails and changes nothing).
    /// `required = false`: logged, and the plugin keeps getting hooks.
    fn on_server_start(&self, _event: &ServerStart) -> Result<(), HookError> {
        Ok(())
    }

    /// May this pane start? Return [`Verdict::Refuse`] with a reason to
    /// veto it: the policy point of a plugin (plugin-api 1.2).
    ///
    /// **When:** at the start of the `on_pane_create` step of every new or
    /// restored pane, right before this plugin's own
    /// [`on_pane_create`](Self::on_pane_create), which is skipped when it
    /// refuses. Plugins are asked in effective order.
    /// **Thread:** the pane's; hooks of other panes run meanwhile.
    /// **Refusal:** whatever `required` says, the pane does not start:
    /// later plugins are not called, the process is not spawned, the user
    /// sees `plugin `NAME` refused the pane in on_pane_create: REASON`, and
    /// the server closes the pane (every plugin gets
    /// [`on_pane_close`](Self::on_pane_close) with [`ExitKind::Unknown`]),
    /// unless it keeps a restored pane for a later restore.
    /// A refusal is not a failure: it does not count towards
    /// `switch_off_after`.
    /// **Error:** as for `on_pane_create`.
    /// **Older hosts** (before plugin-api 1.2) cannot tell a refusal from a
    /// failure: they get an error of kind [`HookErrorKind::Failed`] whose
    /// message carries the reason, which stops the pane only when the entry
    /// is `required = true`. See [`versioning`](crate::versioning).
    ///
    /// [`ExitKind::Unknown`]: crate::ExitKind::Unknown
    fn admit_pane(&self, _pane: &PaneInfo) -> Result<Verdict, HookError> {
        Ok(Verdict::Admit)
    }

    /// A pane exists; its process is not spawned yet.
    ///
    /// **When:** once per new or restored pane, after this plugin admitted
    /// it ([`admit_pane`](Self::admit_pane)), before any `on_pre_spawn` of
    /// the pane; plugins in effective order.
    /// **Thread:** the pane's; hooks of other panes run meanwhile.
    /// **May:** prepare what the pane needs (directories, files); the pane
    /// waits for it.
    /// **Error:** `required = true`: the pane fails: later plugins are not
    /// called, the process is not spawned, and the server closes the pane
    /// (every plugin gets `on_pane_close` with [`ExitKind::Unknown`]) unless
    /// it keeps a restored pane for a later restore.
    /// `required = false`: logged, and the pane goes on.
    ///
    /// [`ExitKind::Unknown`]: crate::ExitKind::Unknown
    fn on_pane_create(&self, _pane: &PaneInfo) -> Result<(), HookError> {
        Ok(())
    }

    /// Edit `env`, the environment the pane's process will get.
    ///
    /// **When:** once per pane, after every plugin's `on_pane_create`,
    /// right before the process is spawned (again at a respawn); plugins
    /// in effective order, each seeing (through [`SpawnEnv::get`]) the
    /// environment the host starts the pane with (the server's, plus the
    /// variables it sets for this pane, such as host-shim's
    /// `CCMUX_PROFILE`) with the edits of the plugins before it. This is
    /// the one hook that knows the pane's own variables.
    /// **Thread:** the pane's; hooks of other panes run meanwhile.
    /// **May:** [`SpawnEnv::set`] and [`SpawnEnv::unset`] variables;
    /// [`SpawnEnv::refuse`] the pane (plugin-api 1.2; see
    /// [`admit_pane`](Self::admit_pane) for what a refusal does and what
    /// older hosts make of it); write the pane's own files (the isolation
    /// plugin fills the pane's dir here, once the environment says which
    /// account it is for). Never `std::env::set_var`.
    /// **Discarded:** all of this call's edits when it returns an error or
    /// refuses; files it wrote are not (make them so that a refused pane
    /// leaves nothing wrong behind, and a respawn finds them made).
    /// **Error:** `required = true`: the pane fails: later plugins are not
    /// called, the process is not spawned, the server closes the pane (or
    /// keeps a restored one for a later restore).
    /// `required = false`: logged, this plugin's edits are dropped, and
    /// the pane starts with the others'.
    fn on_pre_spawn(&self, _pane: &PaneInfo, _env: &mut SpawnEnv<'_>) -> Result<(), HookError> {
        Ok(())
    }

    /// The pane is closed.
    ///
    /// **When:** once per pane the server closes: its process ended, or it
    /// never started (a failure or refusal at create or pre-spawn, exit
    /// kind [`ExitKind::Unknown`]). Not for panes the server keeps for
    /// restoring (a graceful shutdown, or a restored pane that could not
    /// start): those are in a later run's [`ServerStart::live_panes`]. `exit.process_gone` false means the
    /// process may still run (wait for `exit.pid` before removing what it
    /// uses).
    /// **Thread:** the pane's; hooks of other panes run meanwhile.
    /// **Error:** every plugin still gets the hook, in effective order.
    /// `required = true`: the server reports the close as failed.
    /// `required = false`: logged.
    ///
    /// [`ExitKind::Unknown`]: crate::ExitKind::Unknown
    fn on_pane_close(&self, _pane: &PaneInfo, _exit: &PaneExit) -> Result<(), HookError> {
        Ok(())
    }

    /// Graceful shutdown (plugin-api 1.1): the server ends this run; the
    /// panes still open will be restored by the next one.
    ///
    /// **When:** once, after the last pane hook of the run. Not after a
    /// crash: `on_server_start` of the next run is where to clean up then.
    /// **Thread:** the server's, never at the same time as a constructor
    /// or `on_server_start`.
    /// **Error:** every plugin still gets the hook, in effective order.
    /// `required = true`: the server reports the stop as failed.
    /// `required = false`: logged.
    fn on_server_stop(&self, _event: &ServerStop) -> Result<(), HookError> {
        Ok(())
    }
}

/// What [`Plugin::admit_pane`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The pane may start (as far as this plugin is concerned).
    Admit,
    /// The pane must not start; the reason is shown to the user with the
    /// plugin's name, so say what the policy is and what to do.
    Refuse(String),
}

impl Verdict {
    /// Refuses the pane for `reason`.
    pub fn refuse(reason: impl Into<String>) -> Self {
        Verdict::Refuse(reason.into())
    }
}

/// What a plugin knows when it is built.
#[derive(Debug, Clone)]
pub struct InitContext {
    /// The name plugins.toml gives this plugin.
    pub plugin_name: String,
    /// The directory holding plugins.toml: relative paths in the plugin's
    /// config resolve against it.
    pub config_dir: PathBuf,
}

/// A spawn environment under edit: reads see earlier edits (this plugin's
/// and those of plugins before it), writes are recorded as edits the host
/// applies to the process it spawns.
#[derive(Debug)]
pub struct SpawnEnv<'a> {
    base: &'a [EnvVar],
    edits: Vec<EnvEdit>,
    refusal: Option<String>,
}

impl<'a> SpawnEnv<'a> {
    /// An environment under edit, starting from `base`.
    pub fn new(base: &'a [EnvVar]) -> Self {
        SpawnEnv {
            base,
            edits: Vec::new(),
            refusal: None,
        }
    }

    /// The variable's value as the process would see it now.
    pub fn get(&self, key: &str) -> Option<&str> {
        if let Some(edit) = self.edits.iter().rev().find(|e| e.key == key) {
            return edit.value.as_ref().map(|v| v.as_str()).into_option();
        }
        self.base
            .iter()
            .find(|var| var.key == key)
            .map(|var| var.value.as_str())
    }

    /// Sets `key` to `value` in the process's environment.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.edits.push(EnvEdit {
            key: RString::from(key.into()),
            value: RSome(RString::from(value.into())),
        });
    }

    /// Removes `key` from the process's environment.
    pub fn unset(&mut self, key: impl Into<String>) {
        self.edits.push(EnvEdit {
            key: RString::from(key.into()),
            value: RNone,
        });
    }

    /// Refuses the pane (plugin-api 1.2): it does not start, whatever
    /// `required` says, and the user sees the plugin's name and `reason`.
    /// This call's edits are discarded. See [`Plugin::admit_pane`] for
    /// refusing earlier, and for what hosts older than 1.2 make of it.
    pub fn refuse(&mut self, reason: impl Into<String>) {
        self.refusal = Some(reason.into());
    }

    /// The reason given to [`refuse`](Self::refuse), if it was called.
    pub fn refusal(&self) -> Option<&str> {
        self.refusal.as_deref()
    }

    /// The edits made so far, in order.
    pub fn into_edits(self) -> Vec<EnvEdit> {
        self.edits
    }

    /// The edits and the refusal, for the export glue.
    pub(crate) fn into_parts(self) -> (Vec<EnvEdit>, Option<String>) {
        (self.edits, self.refusal)
    }
}

/// Applies `edits` in order to a host-side environment.
pub fn apply_env_edits(env: &mut Vec<EnvVar>, edits: &[EnvEdit]) {
    for edit in edits {
        let existing = env.iter().position(|var| var.key == edit.key);
        match (&edit.value, existing) {
            (RSome(value), Some(i)) => env[i].value = value.clone(),
            (RSome(value), None) => env.push(EnvVar {
                key: edit.key.clone(),
                value: value.clone(),
            }),
            (RNone, Some(i)) => {
                env.remove(i);
            }
            (RNone, None) => {}
        }
    }
}

/// Deserializes a plugin's config table, naming the key path of a bad value.
pub fn parse_config<C: DeserializeOwned>(plugin: &str, toml_text: &str) -> Result<C, HookError> {
    let table: toml::Table = toml::from_str(toml_text).map_err(|err| {
        HookError::new(
            HookErrorKind::Config,
            format!("plugin `{plugin}`: [plugins.config] is not valid TOML: {err}"),
        )
    })?;
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
        let path = err.path().to_string();
        let key = if path == "." {
            "plugins.config".to_string()
        } else {
            format!("plugins.config.{path}")
        };
        HookError::new(
            HookErrorKind::Config,
            format!(
                "plugin `{plugin}`: bad value for `{key}`: {}; fix it in plugins.toml",
                // toml's message ends with a line break: one line.
                err.inner().to_string().trim_end()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn var(key: &str, value: &str) -> EnvVar {
        EnvVar {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn spawn_env_reads_its_own_edits_over_the_base() {
        let base = vec![var("A", "1"), var("B", "2")];
        let mut env = SpawnEnv::new(&base);
        env.set("A", "changed");
        env.unset("B");
        env.set("C", "3");
        assert_eq!(env.get("A"), Some("changed"));
        assert_eq!(env.get("B"), None);
        assert_eq!(env.get("C"), Some("3"));

        let mut applied = base.clone();
        apply_env_edits(&mut applied, &env.into_edits());
        assert_eq!(applied, vec![var("A", "changed"), var("C", "3")]);
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        grace_ms: u64,
        #[serde(default)]
        nested: Nested,
    }
    #[derive(Deserialize, Debug, Default)]
    #[serde(deny_unknown_fields)]
    struct Nested {
        #[serde(default)]
        flag: bool,
    }

    #[test]
    fn config_errors_name_the_plugin_and_the_key_path() {
        let err = parse_config::<Sample>("demo", "grace_ms = \"soon\"").unwrap_err();
        assert_eq!(err.kind, HookErrorKind::Config);
        assert!(err.message.contains("`demo`"), "{}", err.message);
        assert!(
            err.message.contains("plugins.config.grace_ms"),
            "{}",
            err.message
        );

        let err = parse_config::<Sample>("demo", "[nested]\nflag = 3").unwrap_err();
        assert!(
            err.message.contains("plugins.config.nested.flag"),
            "{}",
            err.message
        );

        let err = parse_config::<Sample>("demo", "grace = 1").unwrap_err();
        assert!(!err.message.contains('\n'), "one line: {:?}", err.message);
        assert!(
            err.message.contains("unknown field `grace`"),
            "{}",
            err.message
        );

        let ok = parse_config::<Sample>("demo", "").unwrap();
        assert_eq!(ok.grace_ms, 0);
        assert!(!ok.nested.flag);
    }
}
