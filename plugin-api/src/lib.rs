//! The contract between the ccmux server and its plugins.
//!
//! ccmux loads plugins (such as per-pane Claude Code isolation) from shared
//! libraries listed in `plugins.toml`, so features can be switched on and
//! off without recompiling the server. This crate is both sides of that
//! boundary:
//!
//! * [`abi`]: the `#[repr(C)]`, [`abi_stable`]-checked types that cross it,
//!   and how they may evolve without breaking built plugins.
//! * [`Plugin`] and [`export_plugin!`]: what a plugin author writes.
//! * [`host`] (feature `host`): the runtime a server embeds to read
//!   plugins.toml, load libraries and dispatch hooks.
//!
//! It is not a terminal multiplexer and knows nothing about PTYs: hosts
//! spawn processes themselves, with the environment the hooks produced.
//!
//! # Writing a plugin
//!
//! ```ignore
//! use ccmux_plugin_api::{HookError, InitContext, PaneInfo, Plugin, SpawnEnv};
//!
//! struct Greeter;
//!
//! impl Plugin for Greeter {
//!     const NAME: &'static str = "greeter";
//!     type Config = ccmux_plugin_api::NoConfig;
//!     fn new(_: Self::Config, _: &InitContext) -> Result<Self, HookError> {
//!         Ok(Greeter)
//!     }
//!     fn on_pre_spawn(&self, pane: &PaneInfo, env: &mut SpawnEnv<'_>) -> Result<(), HookError> {
//!         env.set("GREETING", format!("hello from {}", pane.pane_id));
//!         Ok(())
//!     }
//! }
//!
//! ccmux_plugin_api::export_plugin!(Greeter);
//! ```
//!
//! Build it with `crate-type = ["cdylib"]` and list it in plugins.toml.

// Every `unsafe` block and impl says why it is sound (`// SAFETY:`).
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

pub mod abi;
mod author;
mod log_bridge;
mod pane_id;

#[doc(hidden)]
pub mod __private {
    pub use crate::export::*;
}
mod export;

#[cfg(feature = "host")]
pub mod host;

pub use abi::{
    EnvEdit, EnvVar, ExitKind, HookError, HookErrorKind, HookReply, PaneExit, PaneInfo,
    PluginMetadata, PluginModuleRef, ServerStart, ServerStop,
};
/// abi_stable's FFI-safe std types, for reading hook arguments.
pub use abi_stable::std_types::{RStr, RString, RVec};
pub use author::{apply_env_edits, parse_config, InitContext, Plugin, SpawnEnv};
pub use pane_id::{check_pane_id, InvalidPaneId, MAX_PANE_ID_LEN};

/// The plugin-api version this crate is; plugins report the one they were
/// built against.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The config of a plugin that takes none: any key is reported as unknown.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}
