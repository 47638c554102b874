//! A minimal ccmux plugin: every pane's process finds a greeting in
//! `HELLO_GREETING`. Start a plugin of your own from it with
//! `host-shim new-plugin NAME`; the plugin-api crate docs ("Writing a
//! plugin") explain each part.
//!
//! Build it (`cargo build --release`) and name the library in plugins.toml
//! (in this repository the workspace's `target/` holds it):
//!
//! ```toml
//! [[plugins]]
//! name = "hello"
//! path = "target/release/libhello_plugin.so"   # relative to plugins.toml
//! [plugins.config]
//! greeting = "hi"
//! ```
//!
//! then `host-shim check --config plugins.toml` says whether it loads, and
//! `RUST_LOG=ccmux::plugin=info host-shim run --config plugins.toml -- sh -c 'echo $HELLO_GREETING'`
//! runs a pane with it, showing its log line.

use ccmux_plugin_api::serde::Deserialize;
use ccmux_plugin_api::{
    export_plugin, tracing, HookError, HookErrorKind, InitContext, PaneInfo, Plugin, SpawnEnv,
};

/// The `[plugins.config]` table. Every field has a default, and unknown
/// keys are errors, so a typo is reported instead of ignored.
#[derive(Debug, Deserialize)]
#[serde(crate = "ccmux_plugin_api::serde", default, deny_unknown_fields)]
pub struct HelloConfig {
    /// What the greeting starts with.
    pub greeting: String,
}

impl Default for HelloConfig {
    fn default() -> Self {
        HelloConfig {
            greeting: "hello".to_string(),
        }
    }
}

/// The plugin: its state is built once from the config. Hooks of several
/// panes run at once, so anything mutable here needs a lock.
pub struct HelloPlugin {
    greeting: String,
}

impl Plugin for HelloPlugin {
    const NAME: &'static str = "hello";
    type Config = HelloConfig;

    fn new(config: HelloConfig, _ctx: &InitContext) -> Result<Self, HookError> {
        if config.greeting.trim().is_empty() {
            return Err(HookError::new(
                HookErrorKind::Config,
                "`greeting` is empty; set it in [plugins.config] or remove it for the default",
            ));
        }
        Ok(HelloPlugin {
            greeting: config.greeting,
        })
    }

    /// The one hook: runs right before the pane's process is spawned.
    fn on_pre_spawn(&self, pane: &PaneInfo, env: &mut SpawnEnv<'_>) -> Result<(), HookError> {
        env.set(
            "HELLO_GREETING",
            format!("{}, pane {}", self.greeting, pane.pane_id),
        );
        // INFO: shown with RUST_LOG=ccmux::plugin=info.
        tracing::info!(pane = %pane.pane_id, "greeted the pane");
        Ok(())
    }
}

export_plugin!(HelloPlugin);

#[cfg(test)]
mod tests {
    use ccmux_plugin_api::test_host::TestHost;
    use ccmux_plugin_api::{HookErrorKind, PaneExit, PaneInfo};

    use super::HelloPlugin;

    #[test]
    fn the_pane_gets_the_greeting_and_it_is_logged() {
        let host = TestHost::build::<HelloPlugin>("greeting = \"hi\"").unwrap();
        let pane = PaneInfo::new("main_0_1");
        let env = host.open_pane(&pane).unwrap();
        assert_eq!(env.get("HELLO_GREETING"), Some("hi, pane main_0_1"));
        let logs = host.plugin_logs();
        assert!(
            logs.iter()
                .any(|e| e.message == "greeted the pane pane=main_0_1"),
            "{logs:?}"
        );
        host.pane_close(&pane, &PaneExit::exited(0)).unwrap();
    }

    #[test]
    fn without_config_the_greeting_is_hello() {
        let host = TestHost::build::<HelloPlugin>("").unwrap();
        let env = host.open_pane(&PaneInfo::new("main_0_2")).unwrap();
        assert_eq!(env.get("HELLO_GREETING"), Some("hello, pane main_0_2"));
    }

    /// The library itself, built as the server loads it: one line builds
    /// this crate's cdylib (`cargo build --lib`) and loads it.
    #[test]
    fn the_built_library_loads_and_greets() {
        let host = TestHost::build_and_load(env!("CARGO_MANIFEST_DIR"), "greeting = \"hey\"")
            .unwrap_or_else(|err| panic!("{err}"));
        let env = host.open_pane(&PaneInfo::new("main_0_3")).unwrap();
        assert_eq!(env.get("HELLO_GREETING"), Some("hey, pane main_0_3"));
    }

    #[test]
    fn a_bad_config_names_the_key() {
        let err = TestHost::build::<HelloPlugin>("greetng = \"hi\"")
            .err()
            .unwrap();
        assert_eq!(err.hook_error_kind(), Some(HookErrorKind::Config));
        assert!(err.to_string().contains("unknown field `greetng`"), "{err}");
        let err = TestHost::build::<HelloPlugin>("greeting = \" \"")
            .err()
            .unwrap();
        assert!(err.to_string().contains("`greeting` is empty"), "{err}");
    }
}
