//! What [`export_plugin!`](crate::export_plugin) expands to: the root module
//! of a plugin library and the `extern "C"` wrappers around its
//! [`Plugin`] methods.
//!
//! Every wrapper runs the plugin's code inside `catch_unwind`: abi_stable's
//! `extern "C"` functions abort the process on a panic, and a misbehaving
//! plugin must never take the host down. A caught panic becomes a
//! [`HookErrorKind::Panic`] error.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{RErr, RNone, ROk, RResult, RSlice, RSome, RStr, RString, RVec};
use abi_stable::StableAbi;

use crate::abi::{
    EnvEdit, EnvVar, HookEntry, HookError, HookErrorKind, HookReply, HookResult, HookSignature,
    InitArgs, InstancePtr, PaneCloseHook, PaneCreateHook, PaneCreateV2Hook, PaneExit,
    PaneHookResult, PaneInfo, PaneReply, PluginInstance, PluginMetadata, PluginModule,
    PluginModuleRef, PreSpawnHook, PreSpawnV2Hook, RefusesPanes, ServerStart, ServerStartHook,
    ServerStop, ServerStopHook,
};
use crate::author::{parse_config, InitContext, Plugin, SpawnEnv, Verdict};
use crate::log_bridge;

pub use abi_stable::library::{CheckTypeLayout, IntoRootModuleResult, LibHeader, RootModuleResult};

/// The plugin crate's version, filled in by `export_plugin!` so authors do
/// not have to.
pub trait ExportedPlugin: Plugin {
    const CRATE_VERSION: &'static str;
}

/// The value of `abi_stable::library::ROOT_MODULE_LOADER_NAME`, the symbol
/// hosts look for. `export_plugin!` needs it as a literal; a test keeps the
/// two equal.
#[macro_export]
#[doc(hidden)]
macro_rules! __root_module_symbol {
    () => {
        "_1as_0lib_1header_0root_bmodule_bloader"
    };
}

/// Exports a [`Plugin`](crate::Plugin) type as a ccmux plugin library.
/// Use it once, at the top level of a crate built with
/// `crate-type = ["cdylib"]`: it defines the library's root module (the
/// symbol hosts look up), with the crate's version from Cargo.toml.
///
/// ```
/// use ccmux_plugin_api::{HookError, InitContext, NoConfig, Plugin};
///
/// struct Quiet;
///
/// impl Plugin for Quiet {
///     const NAME: &'static str = "quiet";
///     type Config = NoConfig;
///     fn new(_: NoConfig, _: &InitContext) -> Result<Self, HookError> {
///         Ok(Quiet)
///     }
/// }
///
/// ccmux_plugin_api::export_plugin!(Quiet);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        impl $crate::__private::ExportedPlugin for $plugin {
            const CRATE_VERSION: &'static str = env!("CARGO_PKG_VERSION");
        }

        // SAFETY (export_name): this is the one symbol abi_stable's loader
        // looks up; a library has one root module, and `export_plugin!` may
        // be used once per crate (a second use is a duplicate-symbol error,
        // never two definitions at run time).
        #[doc(hidden)]
        #[unsafe(export_name = $crate::__root_module_symbol!())]
        pub static CCMUX_PLUGIN_LIB_HEADER: $crate::__private::LibHeader =
            // SAFETY: `from_constructor::<M>` requires the constructor to return
            // a `PrefixRef<ErasedPrefix>` erased from a `PrefixRef` of `M`'s
            // module. `load_root_module` returns what
            // `__call_root_module_loader` makes of the `PluginModuleRef` that
            // `root_module` builds, and `M` is `PluginModuleRef`: the same type.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::PluginModuleRef>(
                    $crate::__private::load_root_module::<$plugin>,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            };
    };
}

/// The constructor abi_stable calls once, when the host loads the library.
pub extern "C" fn load_root_module<T: ExportedPlugin>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(root_module::<T>)
}

fn root_module<T: ExportedPlugin>() -> PluginModuleRef {
    PluginModule {
        metadata: metadata::<T>,
        instantiate: instantiate::<T>,
        hooks: hooks::<T>,
    }
    .leak_into_prefix()
}

extern "C" fn metadata<T: ExportedPlugin>() -> PluginMetadata {
    PluginMetadata {
        name: RStr::from_str(T::NAME),
        version: RStr::from_str(T::CRATE_VERSION),
        api_version: RStr::from_str(env!("CARGO_PKG_VERSION")),
    }
}

/// A plugin and the name plugins.toml gave it.
struct Instance<T> {
    plugin: T,
    name: String,
}

extern "C" fn instantiate<T: ExportedPlugin>(
    args: &InitArgs,
) -> RResult<PluginInstance, HookError> {
    let name = args.plugin_name.as_str();
    log_bridge::install(args.log);
    install_panic_hook();
    let _attribution = log_bridge::attribute_to(name);
    let instance = construct::<T>(name, &args.config_toml, args.config_dir.as_str());
    if instance.is_ok() {
        log_bridge::set_default_name(name);
    }
    instance
}

/// Parses the config and runs `T::new`, panics caught, as the host's
/// `instantiate` does. Installs nothing: an in-process test host calls it
/// directly, and its `tracing` and panic hook are the process's own.
pub(crate) fn construct<T: Plugin>(
    name: &str,
    config_toml: &str,
    config_dir: &str,
) -> RResult<PluginInstance, HookError> {
    guarded(name, || {
        let config: T::Config = parse_config(name, config_toml)?;
        let ctx = InitContext {
            plugin_name: name.to_string(),
            config_dir: PathBuf::from(config_dir),
        };
        Ok(wrap_instance(T::new(config, &ctx)?, name))
    })
}

/// Hands a constructed plugin to the host as an opaque instance, freed by
/// `drop_instance::<T>`.
pub(crate) fn wrap_instance<T: Plugin>(plugin: T, name: &str) -> PluginInstance {
    let instance = Box::new(Instance {
        plugin,
        name: name.to_string(),
    });
    PluginInstance {
        state: InstancePtr(Box::into_raw(instance) as *const c_void),
        drop: drop_instance::<T>,
    }
}

extern "C" fn drop_instance<T: Plugin>(ptr: InstancePtr) {
    // SAFETY: `ptr` came from `Box::into_raw` on a `Box<Instance<T>>` in
    // `wrap_instance::<T>` (this function is the `drop` that instance was
    // handed out with, so `T` is the same type), and the host calls `drop`
    // exactly once, after the last hook on the instance returned: nothing
    // uses the pointer afterwards.
    let instance = unsafe { Box::from_raw(ptr.0 as *mut Instance<T>) };
    let name = instance.name.clone();
    let _attribution = log_bridge::attribute_to(&name);
    let _ = guarded(&name, move || {
        drop(instance);
        Ok(())
    });
}

/// Runs one hook body with panics caught and log events attributed to the
/// instance that runs it.
fn with_instance<T: Plugin, R>(
    ptr: InstancePtr,
    body: impl FnOnce(&T) -> Result<R, HookError>,
) -> RResult<R, HookError> {
    // SAFETY: `ptr` came from `Box::into_raw` on a `Box<Instance<T>>` in
    // `wrap_instance::<T>` (hook entries and the instance come from the
    // same `T`), so it is non-null, aligned and points to an initialised
    // `Instance<T>`. The host keeps the instance alive (it is freed only by
    // `drop_instance`, after every hook on it returned) and never mutates
    // it, so a shared reference for the duration of this call is valid;
    // `T: Sync`, so several threads may hold one at once.
    let instance = unsafe { &*(ptr.0 as *const Instance<T>) };
    let _attribution = log_bridge::attribute_to(&instance.name);
    guarded(&instance.name, || body(&instance.plugin))
}

fn guarded<R>(plugin: &str, body: impl FnOnce() -> Result<R, HookError>) -> RResult<R, HookError> {
    let _guarded = Guarded::enter();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => ROk(value),
        Ok(Err(err)) => RErr(err),
        Err(payload) => {
            let at = PANIC_LOCATION
                .with(|l| l.take())
                .map(|location| format!(" at {location}"))
                .unwrap_or_default();
            RErr(HookError::new(
                HookErrorKind::Panic,
                format!(
                    "plugin `{plugin}` panicked{at}: {}",
                    panic_message(&*payload)
                ),
            ))
        }
    }
}

thread_local! {
    /// Where this thread's last panic happened, for the error that reports it.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// How many `guarded` calls this thread is inside.
    static GUARDED_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Marks the thread as running plugin code under `catch_unwind`.
struct Guarded;

impl Guarded {
    fn enter() -> Self {
        let _ = GUARDED_DEPTH.try_with(|d| d.set(d.get() + 1));
        Guarded
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = GUARDED_DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// The library's std has a panic hook of its own, whose default prints to
/// the host's stderr. A panic in a hook or constructor is caught and
/// returned as an error, so there the hook only notes where it happened,
/// for that error. A panic on a thread of the plugin's own is logged.
fn install_panic_hook() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let guarded = GUARDED_DEPTH.try_with(Cell::get).unwrap_or(0) > 0;
            if guarded {
                let _ = PANIC_LOCATION.try_with(|l| *l.borrow_mut() = Some(location));
            } else {
                let message = panic_message(info.payload());
                tracing::error!(location, "a plugin thread panicked: {message}");
            }
        }));
    });
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

fn no_reply(result: Result<(), HookError>) -> Result<HookReply, HookError> {
    result.map(|()| HookReply::default())
}

/// The 1.0 entries' answer to a refusal: they have no way to say it, so
/// an older host gets a failure that carries the reason (and stops the
/// pane only if the plugin is `required`).
fn refusal_as_failure(pane: &PaneInfo, reason: &str) -> HookError {
    HookError::new(
        HookErrorKind::Failed,
        format!(
            "refuses pane {}: {reason} (this host predates plugin-api 1.2, which reports refusals as refusals)",
            pane.pane_id
        ),
    )
}

extern "C" fn on_server_start<T: Plugin>(ptr: InstancePtr, ev: &ServerStart) -> HookResult {
    with_instance::<T, _>(ptr, |p| no_reply(p.on_server_start(ev)))
}

/// `admit_pane`, then, if admitted, `on_pane_create`: the refusal if any.
fn pane_create<T: Plugin>(plugin: &T, pane: &PaneInfo) -> Result<Option<String>, HookError> {
    if let Verdict::Refuse(reason) = plugin.admit_pane(pane)? {
        return Ok(Some(reason));
    }
    plugin.on_pane_create(pane).map(|()| None)
}

extern "C" fn on_pane_create<T: Plugin>(ptr: InstancePtr, pane: &PaneInfo) -> HookResult {
    with_instance::<T, _>(ptr, |p| match pane_create(p, pane)? {
        Some(reason) => Err(refusal_as_failure(pane, &reason)),
        None => Ok(HookReply::default()),
    })
}

extern "C" fn on_pane_create_v2<T: Plugin>(ptr: InstancePtr, pane: &PaneInfo) -> PaneHookResult {
    with_instance::<T, _>(ptr, |p| {
        Ok(PaneReply {
            env_edits: RVec::new(),
            refusal: pane_create(p, pane)?.map(RString::from).into(),
        })
    })
}

/// `on_pre_spawn` on a [`SpawnEnv`] over `env`: the edits and the refusal.
fn pre_spawn<T: Plugin>(
    plugin: &T,
    pane: &PaneInfo,
    env: RSlice<'_, EnvVar>,
) -> Result<(Vec<EnvEdit>, Option<String>), HookError> {
    let mut spawn_env = SpawnEnv::new(env.as_slice());
    plugin.on_pre_spawn(pane, &mut spawn_env)?;
    Ok(spawn_env.into_parts())
}

extern "C" fn on_pre_spawn<T: Plugin>(
    ptr: InstancePtr,
    pane: &PaneInfo,
    env: RSlice<'_, EnvVar>,
) -> HookResult {
    with_instance::<T, _>(ptr, |p| match pre_spawn(p, pane, env)? {
        (_, Some(reason)) => Err(refusal_as_failure(pane, &reason)),
        (edits, None) => Ok(HookReply {
            env_edits: RVec::from(edits),
        }),
    })
}

extern "C" fn on_pre_spawn_v2<T: Plugin>(
    ptr: InstancePtr,
    pane: &PaneInfo,
    env: RSlice<'_, EnvVar>,
) -> PaneHookResult {
    with_instance::<T, _>(ptr, |p| {
        let (edits, refusal) = pre_spawn(p, pane, env)?;
        Ok(match refusal {
            // A refused pane never starts: its edits would mislead.
            Some(reason) => PaneReply {
                env_edits: RVec::new(),
                refusal: RSome(RString::from(reason)),
            },
            None => PaneReply {
                env_edits: RVec::from(edits),
                refusal: RNone,
            },
        })
    })
}

extern "C" fn on_pane_close<T: Plugin>(
    ptr: InstancePtr,
    pane: &PaneInfo,
    exit: &PaneExit,
) -> HookResult {
    with_instance::<T, _>(ptr, |p| no_reply(p.on_pane_close(pane, exit)))
}

extern "C" fn on_server_stop<T: Plugin>(ptr: InstancePtr, ev: &ServerStop) -> HookResult {
    with_instance::<T, _>(ptr, |p| no_reply(p.on_server_stop(ev)))
}

const fn entry<S: HookSignature>(signature: &'static S) -> HookEntry {
    HookEntry {
        hook: RStr::from_str(S::NAME),
        signature: <S as StableAbi>::LAYOUT,
        function: signature as *const S as *const c_void,
    }
}

/// Every hook of `T`. The 1.0 pane entries stay next to their 1.2
/// versions, for hosts older than 1.2.
pub(crate) extern "C" fn hooks<T: Plugin>() -> RSlice<'static, HookEntry> {
    let table: &'static [HookEntry] = const {
        &[
            entry(&ServerStartHook {
                call: on_server_start::<T>,
            }),
            entry(&PaneCreateHook {
                call: on_pane_create::<T>,
            }),
            entry(&PaneCreateV2Hook {
                call: on_pane_create_v2::<T>,
            }),
            entry(&PreSpawnHook {
                call: on_pre_spawn::<T>,
            }),
            entry(&PreSpawnV2Hook {
                call: on_pre_spawn_v2::<T>,
            }),
            entry(&PaneCloseHook {
                call: on_pane_close::<T>,
            }),
            entry(&ServerStopHook {
                call: on_server_stop::<T>,
            }),
            entry(&RefusesPanes {
                refuses: T::REFUSES_PANES,
            }),
        ]
    };
    RSlice::from_slice(table)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_exported_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            crate::__root_module_symbol!(),
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
