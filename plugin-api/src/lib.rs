//! The contract between the ccmux server and its plugins.
//!
//! ccmux loads plugins (such as per-pane Claude Code isolation) from shared
//! libraries listed in `plugins.toml`, so features can be switched on and
//! off without recompiling the server. This crate is both sides of that
//! boundary:
//!
//! * [`Plugin`], [`SpawnEnv`] and [`export_plugin!`]: what a plugin author
//!   writes, with everything a plugin needs re-exported ([`serde`] for a
//!   typed config, [`tracing`] for logging), so a plugin depends on this
//!   crate alone.
//! * [`abi`]: the `#[repr(C)]`, [`abi_stable`]-checked types that cross the
//!   boundary, and [`versioning`]: how they evolve without breaking built
//!   plugins, and what plugins and hosts of other versions do.
//! * `host` (feature `host`): the runtime a server embeds to read
//!   plugins.toml, load libraries and dispatch hooks.
//! * `test_host` (feature `test-host`): that runtime over one plugin, for
//!   a plugin's own tests.
//!
//! It is not a terminal multiplexer and knows nothing about PTYs: hosts
//! spawn processes themselves, with the environment the hooks produced.
//!
//! # Writing a plugin
//!
//! `host-shim new-plugin NAME [DIR]` writes a new plugin crate from the
//! repository's template (`templates/plugin/`, built, loaded and tested in
//! CI) with NAME filled in. A plugin is a `cdylib` crate:
//!
//! ```toml
//! [package]
//! name = "policy-plugin"
//! version = "0.1.0"
//! edition = "2021"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! # By git, at a release tag (the URL is the ccmux repository's) ...
//! ccmux-plugin-api = { git = "https://example.org/ccmux.git", tag = "plugin-api-v1.3.0" }
//! # ... or by path to a checkout:
//! # ccmux-plugin-api = { path = "../ccmux/plugin-api", version = "1.3" }
//!
//! [dev-dependencies]
//! ccmux-plugin-api = { git = "https://example.org/ccmux.git", tag = "plugin-api-v1.3.0", features = ["test-host"] }
//! ```
//!
//! and in `src/lib.rs` a type, its config, an `impl Plugin` with the hooks
//! it needs (every hook has a no-op default; each one's documentation
//! says when it runs, on which thread, and what an error does), and one
//! `export_plugin!` line:
//!
//! ```
//! use std::path::{Path, PathBuf};
//!
//! use ccmux_plugin_api::serde::Deserialize;
//! use ccmux_plugin_api::{
//!     export_plugin, tracing, HookError, HookErrorKind, InitContext, PaneInfo, Plugin, SpawnEnv,
//!     Verdict,
//! };
//!
//! /// `[plugins.config]`: `work_root = "~/work"`.
//! #[derive(Deserialize)]
//! #[serde(crate = "ccmux_plugin_api::serde", deny_unknown_fields)]
//! pub struct PolicyConfig {
//!     work_root: PathBuf,
//! }
//!
//! /// No Claude outside the work directory.
//! pub struct Policy {
//!     work_root: PathBuf,
//! }
//!
//! impl Plugin for Policy {
//!     const NAME: &'static str = "policy";
//!     // It refuses panes: while it cannot be asked, panes are refused too.
//!     const REFUSES_PANES: bool = true;
//!     type Config = PolicyConfig;
//!
//!     fn new(config: PolicyConfig, ctx: &InitContext) -> Result<Self, HookError> {
//!         if config.work_root.as_os_str().is_empty() {
//!             // Reported as "plugin `NAME` failed to start: [config] ..."
//!             return Err(HookError::new(HookErrorKind::Config, "`work_root` is empty; set it in plugins.toml"));
//!         }
//!         // Relative paths in the config are relative to plugins.toml.
//!         Ok(Policy { work_root: ctx.config_dir.join(config.work_root) })
//!     }
//!
//!     fn admit_pane(&self, pane: &PaneInfo) -> Result<Verdict, HookError> {
//!         if pane.command.as_str() == "claude" && !Path::new(pane.cwd.as_str()).starts_with(&self.work_root) {
//!             return Ok(Verdict::refuse(format!(
//!                 "Claude runs only under {}; cd there first",
//!                 self.work_root.display()
//!             )));
//!         }
//!         Ok(Verdict::Admit)
//!     }
//!
//!     fn on_pre_spawn(&self, pane: &PaneInfo, env: &mut SpawnEnv<'_>) -> Result<(), HookError> {
//!         env.set("POLICY_CHECKED", "1");
//!         // Shown with RUST_LOG=ccmux::plugin=info; warnings and errors always are.
//!         tracing::info!(pane = %pane.pane_id, "pane admitted");
//!         Ok(())
//!     }
//! }
//!
//! export_plugin!(Policy);
//! # fn main() {}
//! ```
//!
//! `cargo build --release` makes `target/release/libpolicy_plugin.so`
//! (`.dylib` on macOS); name it in plugins.toml (every key is described
//! on `PluginsConfig`, in the `host` module, and in the repository's
//! README):
//!
//! ```toml
//! [[plugins]]
//! name = "policy"
//! path = "target/release/libpolicy_plugin.so"   # relative to plugins.toml
//! required = false         # its failures are logged; refusals stop the pane either way
//! on_fault = "refuse"      # while it fails or is switched off, panes are refused
//!                          # (the default for a plugin with REFUSES_PANES = true)
//! before = ["isolation"]   # refuse before the isolation plugin prepares anything
//! [plugins.config]
//! work_root = "/home/me/work"
//! ```
//!
//! and check it loads: `host-shim check --config plugins.toml` prints one
//! line per plugin, `ok`, `disabled` or `error`, with what is wrong and
//! what to do indented below.
//!
//! Log with `tracing` (re-exported): a plugin's events reach the host's log
//! with its plugins.toml name and their fields. Its spans are not
//! forwarded: an event inside a span arrives without the span's fields, so
//! put what matters in the event.
//!
//! # Testing a plugin
//!
//! The `test-host` feature's `TestHost` runs a plugin through the same
//! dispatch code as the server, without a server or a PTY: build it from
//! the plugin type and a config table (or a plugin value, or the built
//! library), call hooks with one-line arguments ([`PaneInfo::new`],
//! [`ServerStart::new`], [`PaneExit::exited`]), and read back the
//! environment the process would get, the errors and refusals, the log
//! events and the counts:
//!
#![cfg_attr(feature = "test-host", doc = "```")]
#![cfg_attr(not(feature = "test-host"), doc = "```ignore")]
//! # use std::path::{Path, PathBuf};
//! # use ccmux_plugin_api::serde::Deserialize;
//! # use ccmux_plugin_api::{tracing, HookError, InitContext, Plugin, SpawnEnv, Verdict};
//! # #[derive(Deserialize)]
//! # #[serde(crate = "ccmux_plugin_api::serde")]
//! # pub struct PolicyConfig { work_root: PathBuf }
//! # pub struct Policy { work_root: PathBuf }
//! # impl Plugin for Policy {
//! #     const NAME: &'static str = "policy";
//! #     type Config = PolicyConfig;
//! #     fn new(config: PolicyConfig, _: &InitContext) -> Result<Self, HookError> {
//! #         Ok(Policy { work_root: config.work_root })
//! #     }
//! #     fn admit_pane(&self, pane: &PaneInfo) -> Result<Verdict, HookError> {
//! #         if pane.command.as_str() == "claude" && !Path::new(pane.cwd.as_str()).starts_with(&self.work_root) {
//! #             return Ok(Verdict::refuse(format!("Claude runs only under {}; cd there first", self.work_root.display())));
//! #         }
//! #         Ok(Verdict::Admit)
//! #     }
//! #     fn on_pre_spawn(&self, pane: &PaneInfo, env: &mut SpawnEnv<'_>) -> Result<(), HookError> {
//! #         env.set("POLICY_CHECKED", "1");
//! #         tracing::info!(pane = %pane.pane_id, "pane admitted");
//! #         Ok(())
//! #     }
//! # }
//! use ccmux_plugin_api::test_host::TestHost;
//! use ccmux_plugin_api::{PaneExit, PaneInfo};
//!
//! let host = TestHost::build::<Policy>("work_root = \"/home/me/work\"").unwrap();
//!
//! let pane = PaneInfo::new("main_0_1").with_command("claude").with_cwd("/home/me/work/app");
//! let env = host.open_pane(&pane).unwrap();
//! assert_eq!(env.get("POLICY_CHECKED"), Some("1"));
//! assert!(host.plugin_logs().iter().any(|event| event.message.contains("pane admitted")));
//! host.pane_close(&pane, &PaneExit::exited(0)).unwrap();
//!
//! let outside = PaneInfo::new("main_0_2").with_command("claude").with_cwd("/home/me/workshop");
//! let refusal = host.pane_create(&outside).unwrap_err();
//! assert!(refusal.is_refusal());
//! assert_eq!(
//!     refusal.to_string(),
//!     "plugin `policy` refused the pane in on_pane_create: Claude runs only under /home/me/work; cd there first"
//! );
//! assert_eq!(host.counts().refusals, 1);
//! ```
//!
//! Put such tests in the plugin crate (`#[cfg(test)]`) with `ccmux-plugin-api`
//! as a dev-dependency with `features = ["test-host"]`. To run them
//! through the built library, as the server loads it, one line builds the
//! crate's cdylib (`cargo build --lib`, in the test's target dir and
//! profile) and loads it:
//!
//! ```ignore
//! let host = TestHost::build_and_load(env!("CARGO_MANIFEST_DIR"), "work_root = \"/home/me/work\"")?;
//! ```
//!
//! (`TestHost::load(path, config)` loads a library built already.)
//!
//! # Which version
//!
//! A plugin runs in any host of the same plugin-api major version, older
//! or newer: [`versioning`] says what each side gets. `host-shim check`
//! shows the version each plugin was built against. Changes, and what a
//! minor and a major version promise, are in `plugin-api/CHANGELOG.md`.

// Every `unsafe` block and impl says why it is sound (`// SAFETY:`).
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

pub mod abi;
mod author;
mod builders;
mod log_bridge;
mod pane_id;
pub mod versioning;

#[doc(hidden)]
pub mod __private {
    pub use crate::export::*;
}
mod export;

#[cfg(feature = "host")]
pub mod host;

#[cfg(feature = "test-host")]
pub mod test_host;

pub use abi::{
    EnvEdit, EnvVar, ExitKind, HookError, HookErrorKind, HookReply, PaneExit, PaneInfo, PaneReply,
    PluginMetadata, PluginModuleRef, ServerStart, ServerStop,
};
/// abi_stable's FFI-safe std types, for reading hook arguments.
pub use abi_stable::std_types::{RStr, RString, RVec};
pub use author::{apply_env_edits, parse_config, InitContext, Plugin, SpawnEnv, Verdict};
pub use builders::{TEST_INSTANCE_ID, TEST_SERVER_ID, TEST_STATE_DIR};
pub use pane_id::{check_pane_id, InvalidPaneId, MAX_PANE_ID_LEN};

/// serde, for a plugin's typed config: derive with
/// `#[derive(ccmux_plugin_api::serde::Deserialize)]` and
/// `#[serde(crate = "ccmux_plugin_api::serde")]`.
pub use serde;
/// tracing, for a plugin's log events: they reach the host's log with the
/// plugin's name.
pub use tracing;

/// The plugin-api version this crate is; plugins report the one they were
/// built against.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The config of a plugin that takes none: any key is reported as unknown.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}
