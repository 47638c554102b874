//! The types that cross the library boundary.
//!
//! Everything here is `#[repr(C)]` and derives [`StableAbi`], so abi_stable
//! checks at load time that the host and the plugin agree on every layout.
//!
//! # How the contract evolves
//!
//! abi_stable rejects a plugin whose root module or non-exhaustive enum has
//! *fewer* fields or variants than the host expects, so neither can grow to
//! add hooks while older plugins keep loading. Instead:
//!
//! * [`PluginModule`], the root module, is frozen: its three functions never
//!   change.
//! * Hooks travel in a table ([`HookEntry`]) that the plugin hands over at
//!   load time. Each entry names its hook and carries the type layout of its
//!   signature struct ([`PaneCreateHook`] and friends). The host checks each
//!   entry on its own, and a hook the plugin does not list is a no-op for it.
//! * A new hook in a later minor version is a new signature struct and a new
//!   name. Changing an existing signature is a breaking change: bump the
//!   major version. Giving an existing hook a new shape is done the same
//!   way, as a new entry: plugin-api 1.2 added `on_pane_create_v2` and
//!   `on_pre_spawn_v2` (a [`PaneReply`] that may refuse the pane) next to
//!   the 1.0 entries, which plugins keep exporting for older hosts.
//!
//! abi_stable still checks the package version of the root module: the host
//! refuses a plugin whose plugin-api major version differs from its own.
//! See [`versioning`](crate::versioning) for what each kind of change does
//! to plugins and hosts built against other versions.

use std::ffi::c_void;

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{ROption, RResult, RSlice, RStr, RString, RVec},
    type_layout::TypeLayout,
    StableAbi,
};

/// The root module every plugin library exports (through
/// [`export_plugin!`](crate::export_plugin)). Frozen: see the module docs.
#[repr(C)]
#[derive(StableAbi, Debug)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// Name and versions, available without constructing the plugin.
    pub metadata: extern "C" fn() -> PluginMetadata,
    /// Constructs one plugin instance from its `[plugins.config]` table.
    pub instantiate: extern "C" fn(args: &InitArgs) -> RResult<PluginInstance, HookError>,
    /// The hooks this plugin implements.
    #[sabi(last_prefix_field)]
    pub hooks: extern "C" fn() -> RSlice<'static, HookEntry>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "ccmux_plugin";
    const NAME: &'static str = "ccmux plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// What a plugin says about itself.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct PluginMetadata {
    /// The plugin's own name (plugins.toml may load it under another one).
    pub name: RStr<'static>,
    /// The plugin crate's version.
    pub version: RStr<'static>,
    /// The plugin-api version the plugin was built against.
    pub api_version: RStr<'static>,
}

/// Everything a plugin receives when it is constructed.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct InitArgs {
    /// The name plugins.toml gives this plugin; used in its log events.
    pub plugin_name: RString,
    /// The plugin's `[plugins.config]` table, serialized as TOML.
    pub config_toml: RString,
    /// The directory holding plugins.toml, for resolving relative paths.
    pub config_dir: RString,
    /// Where the plugin's `tracing` events go.
    pub log: LogSink,
}

/// The host end of the logging bridge. A plugin library has its own copy of
/// `tracing`'s globals, so its events must be forwarded to the host's
/// subscriber through this function.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct LogSink {
    /// Whether the host wants events of this level (1 error ... 5 trace).
    /// Asked per event, so the host's filter may change at run time.
    pub enabled: extern "C" fn(level: u8) -> bool,
    /// Receives one event: plugin name, level (1..=5), target, message.
    pub emit: extern "C" fn(plugin: RStr<'_>, level: u8, target: RStr<'_>, message: RStr<'_>),
}

/// An opaque pointer to a plugin's state, owned by the plugin library.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct InstancePtr(pub *const c_void);

/// A constructed plugin. The host calls `drop` exactly once, when no hook
/// can run on it any more.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct PluginInstance {
    pub state: InstancePtr,
    pub drop: extern "C" fn(InstancePtr),
}

/// One hook a plugin implements.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct HookEntry {
    /// The hook's name, one of the `NAME`s of [`HookSignature`] types.
    pub hook: RStr<'static>,
    /// The type layout of the signature struct `function` points to.
    pub signature: &'static TypeLayout,
    /// Points to a `'static` signature struct, such as [`PaneCreateHook`].
    pub function: *const c_void,
}

/// The signature struct of one hook: ties a name to a function type.
pub trait HookSignature: StableAbi + 'static {
    const NAME: &'static str;
}

/// What every hook returns.
pub type HookResult = RResult<HookReply, HookError>;

/// What the 1.2 pane hooks (`on_pane_create_v2`, `on_pre_spawn_v2`)
/// return: a reply that may refuse the pane.
pub type PaneHookResult = RResult<PaneReply, HookError>;

macro_rules! hook_signatures {
    ($( $(#[$doc:meta])* $ty:ident = $name:literal, fn($($arg:ty),*) -> $ret:ty; )*) => {$(
        $(#[$doc])*
        #[repr(C)]
        #[derive(StableAbi, Debug, Clone, Copy)]
        pub struct $ty {
            pub call: extern "C" fn(InstancePtr, $($arg),*) -> $ret,
        }
        impl HookSignature for $ty {
            const NAME: &'static str = $name;
        }
    )*};
}

hook_signatures! {
    /// `on_server_start` (1.0): the server is up; clean what earlier runs
    /// left. See [`Plugin::on_server_start`](crate::Plugin::on_server_start).
    ServerStartHook = "on_server_start", fn(&ServerStart) -> HookResult;
    /// `on_pane_create` (1.0): a pane exists; its process is not spawned
    /// yet. Hosts of 1.2 and later call `on_pane_create_v2` instead when a
    /// plugin has both.
    PaneCreateHook = "on_pane_create", fn(&PaneInfo) -> HookResult;
    /// `on_pane_create_v2` (1.2): `on_pane_create` with a reply that may
    /// refuse the pane ([`Plugin::admit_pane`](crate::Plugin::admit_pane)).
    PaneCreateV2Hook = "on_pane_create_v2", fn(&PaneInfo) -> PaneHookResult;
    /// `on_pre_spawn` (1.0): edit the environment of the pane's process.
    /// Hosts of 1.2 and later call `on_pre_spawn_v2` instead when a plugin
    /// has both.
    PreSpawnHook = "on_pre_spawn", fn(&PaneInfo, RSlice<'_, EnvVar>) -> HookResult;
    /// `on_pre_spawn_v2` (1.2): `on_pre_spawn` with a reply that may refuse
    /// the pane ([`SpawnEnv::refuse`](crate::SpawnEnv::refuse)).
    PreSpawnV2Hook = "on_pre_spawn_v2", fn(&PaneInfo, RSlice<'_, EnvVar>) -> PaneHookResult;
    /// `on_pane_close` (1.0): the pane is closed.
    PaneCloseHook = "on_pane_close", fn(&PaneInfo, &PaneExit) -> HookResult;
    /// `on_server_stop` (1.1): graceful shutdown; open panes will be
    /// restored.
    ServerStopHook = "on_server_stop", fn(&ServerStop) -> HookResult;
}

/// Not a hook: a declaration in the hook table (1.3), `refuses_panes`.
/// A plugin whose [`Plugin::REFUSES_PANES`](crate::Plugin::REFUSES_PANES)
/// is true lists it with `refuses: true`: it is a policy plugin, and a
/// host that cannot ask it (it panicked, failed or was switched off) refuses
/// panes unless plugins.toml's `on_fault` says otherwise. Hosts older than
/// 1.3 do not know the name and never read it.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct RefusesPanes {
    /// Whether the plugin may refuse panes.
    pub refuses: bool,
}

impl HookSignature for RefusesPanes {
    const NAME: &'static str = "refuses_panes";
}

/// The server has started.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct ServerStart {
    /// The server's identity, stable across restarts.
    pub server_id: RString,
    /// This run of the server, new at every start.
    pub instance_id: RString,
    /// The server's state directory.
    pub state_dir: RString,
    /// Panes restored from the last run that are live again.
    pub live_panes: RVec<RString>,
}

/// A pane, as every pane hook sees it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PaneInfo {
    /// `{session}_{window}_{index}` or a UUID; checked filesystem-safe
    /// ([`check_pane_id`](crate::check_pane_id): ASCII letters, digits, `_`
    /// and `-`, at most 128 characters) by the host runtime before any
    /// plugin sees it.
    pub pane_id: RString,
    /// The session the pane belongs to.
    pub session_id: RString,
    /// The window the pane belongs to, within its session.
    pub window_id: RString,
    /// The pane's position in its window.
    pub pane_index: u32,
    /// The program the pane runs (as typed: found through `PATH`).
    pub command: RString,
    /// The program's arguments, without the program itself.
    pub args: RVec<RString>,
    /// The directory the process starts in.
    pub cwd: RString,
}

/// One variable of a spawn environment.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: RString,
    pub value: RString,
}

/// One change a plugin makes to a spawn environment.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct EnvEdit {
    pub key: RString,
    /// `RSome` sets the variable, `RNone` removes it.
    pub value: ROption<RString>,
}

/// What a hook hands back to the host.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct HookReply {
    /// Environment edits, applied in order (only `on_pre_spawn` makes any).
    pub env_edits: RVec<EnvEdit>,
}

/// What a 1.2 pane hook (`on_pane_create_v2`, `on_pre_spawn_v2`) hands back.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct PaneReply {
    /// Environment edits, applied in order (only `on_pre_spawn_v2` makes
    /// any); discarded when `refusal` is set.
    pub env_edits: RVec<EnvEdit>,
    /// `RSome(reason)`: the plugin refuses the pane. The pane does not
    /// start, whatever `required` says; the reason reaches the user with
    /// the plugin's name.
    pub refusal: ROption<RString>,
}

/// How a pane's process ended.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaneExit {
    /// How the process ended, if it is known.
    pub kind: ExitKind,
    /// The exit code for [`ExitKind::Exited`], the signal number for
    /// [`ExitKind::Signaled`], 0 otherwise.
    pub code: i32,
    /// False when the process may still be running (the pane was closed
    /// while its process had not been reaped).
    pub process_gone: bool,
    /// The process id, 0 when unknown; lets a plugin wait for a process
    /// that may still run.
    pub pid: u32,
}

/// How a pane's process ended. Frozen, like [`HookErrorKind`].
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// It exited; [`PaneExit::code`] is its status.
    Exited,
    /// A signal ended it; [`PaneExit::code`] is the signal number.
    Signaled,
    /// The process never started, or its status could not be read.
    Unknown,
}

/// The server is shutting down gracefully.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct ServerStop {
    /// The run that ends: [`ServerStart::instance_id`] of its start.
    pub instance_id: RString,
}

/// A hook or constructor failure: a kind and a message for people.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct HookError {
    /// What kind of failure it is.
    pub kind: HookErrorKind,
    /// What went wrong and what to do about it, for the person reading the
    /// server's log. The host prefixes the plugin's name and the hook.
    pub message: RString,
}

/// Frozen: adding a kind would break older hosts. A refusal is not a kind
/// of error: see [`PaneReply::refusal`].
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookErrorKind {
    /// Any other failure.
    Failed,
    /// The plugin's `[plugins.config]` table is invalid.
    Config,
    /// The host passed something the plugin cannot accept.
    InvalidInput,
    /// A filesystem or OS operation failed.
    Io,
    /// The plugin panicked; the panic was caught inside the plugin.
    Panic,
}

impl HookError {
    /// An error of `kind`; `message` says what went wrong and what to do.
    pub fn new(kind: HookErrorKind, message: impl Into<String>) -> Self {
        HookError {
            kind,
            message: RString::from(message.into()),
        }
    }
}

impl std::fmt::Display for HookErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HookErrorKind::Failed => "failed",
            HookErrorKind::Config => "config",
            HookErrorKind::InvalidInput => "invalid input",
            HookErrorKind::Io => "io",
            HookErrorKind::Panic => "panic",
        })
    }
}

impl std::fmt::Display for HookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.kind, self.message)
    }
}

impl std::error::Error for HookError {}

impl From<std::io::Error> for HookError {
    fn from(err: std::io::Error) -> Self {
        HookError::new(HookErrorKind::Io, err.to_string())
    }
}

impl PaneExit {
    /// The process exited with status `code`.
    pub fn exited(code: i32) -> Self {
        PaneExit {
            kind: ExitKind::Exited,
            code,
            process_gone: true,
            pid: 0,
        }
    }
    /// Signal number `signal` ended the process.
    pub fn signaled(signal: i32) -> Self {
        PaneExit {
            kind: ExitKind::Signaled,
            code: signal,
            process_gone: true,
            pid: 0,
        }
    }
    /// The status is unknown; `process_gone` says whether it still runs.
    pub fn unknown(process_gone: bool) -> Self {
        PaneExit {
            kind: ExitKind::Unknown,
            code: 0,
            process_gone,
            pid: 0,
        }
    }

    /// The same exit, of the process `pid`.
    pub fn with_pid(self, pid: u32) -> Self {
        PaneExit { pid, ..self }
    }
}

impl std::fmt::Display for PaneExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            ExitKind::Exited => write!(f, "exited with status {}", self.code)?,
            ExitKind::Signaled => write!(f, "killed by signal {}", self.code)?,
            ExitKind::Unknown => f.write_str("ended with unknown status")?,
        }
        if !self.process_gone {
            f.write_str(" (process may still run)")?;
        }
        Ok(())
    }
}

/// Log levels as they cross the boundary (0 is off).
pub(crate) fn level_to_u8(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR => 1,
        tracing::Level::WARN => 2,
        tracing::Level::INFO => 3,
        tracing::Level::DEBUG => 4,
        tracing::Level::TRACE => 5,
    }
}
