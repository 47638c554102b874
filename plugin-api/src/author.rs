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

/// A ccmux plugin. Hooks may run on several threads at once, so `&self`
/// state needs its own synchronisation.
pub trait Plugin: Send + Sync + Sized + 'static {
    /// The plugin's own name.
    const NAME: &'static str;

    /// The plugin's `[plugins.config]` table. An absent table deserializes
    /// as an empty one, so give fields `#[serde(default)]`; use
    /// `#[serde(deny_unknown_fields)]` so typos are reported.
    type Config: DeserializeOwned;

    /// Builds the plugin. An error here keeps the plugin unloaded.
    fn new(config: Self::Config, ctx: &InitContext) -> Result<Self, HookError>;

    fn on_server_start(&self, _event: &ServerStart) -> Result<(), HookError> {
        Ok(())
    }

    fn on_pane_create(&self, _pane: &PaneInfo) -> Result<(), HookError> {
        Ok(())
    }

    /// Edit `env`, the environment the pane's process will get. Never call
    /// `std::env::set_var`: the plugin's std is not the host's.
    fn on_pre_spawn(&self, _pane: &PaneInfo, _env: &mut SpawnEnv<'_>) -> Result<(), HookError> {
        Ok(())
    }

    fn on_pane_close(&self, _pane: &PaneInfo, _exit: &PaneExit) -> Result<(), HookError> {
        Ok(())
    }

    fn on_server_stop(&self, _event: &ServerStop) -> Result<(), HookError> {
        Ok(())
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
pub struct SpawnEnv<'a> {
    base: &'a [EnvVar],
    edits: Vec<EnvEdit>,
}

impl<'a> SpawnEnv<'a> {
    pub fn new(base: &'a [EnvVar]) -> Self {
        SpawnEnv {
            base,
            edits: Vec::new(),
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

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.edits.push(EnvEdit {
            key: RString::from(key.into()),
            value: RSome(RString::from(value.into())),
        });
    }

    pub fn unset(&mut self, key: impl Into<String>) {
        self.edits.push(EnvEdit {
            key: RString::from(key.into()),
            value: RNone,
        });
    }

    pub fn into_edits(self) -> Vec<EnvEdit> {
        self.edits
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
                err.inner()
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
