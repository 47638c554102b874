//! What a change of plugin-api does to plugins and hosts built against
//! other versions. (This module holds only this page.)
//!
//! plugin-api's package version is the version of the contract. A plugin
//! reports the version it was built against (`api` in `host-shim check`),
//! and a host loads plugins of its own **major** version, of any minor
//! version, older or newer. Changes are listed in `plugin-api/CHANGELOG.md`.
//!
//! # What stays fixed
//!
//! The root module ([`PluginModule`](crate::abi::PluginModule): metadata,
//! constructor, hook table) and every type reachable from it
//! ([`InitArgs`](crate::abi::InitArgs), [`LogSink`](crate::abi::LogSink),
//! [`HookError`](crate::HookError), the enum
//! [`HookErrorKind`](crate::HookErrorKind), ...) never change within a
//! major version: abi_stable checks their layout when a library loads, and
//! an older host would refuse a plugin whose root module grew, or an enum
//! with a variant it does not know. Hooks travel outside it, as a table of
//! named entries ([`HookEntry`](crate::abi::HookEntry)) that the host
//! checks one by one, so hooks are where the contract grows.
//!
//! # Each kind of change
//!
//! **A new hook** (a minor version; 1.1 added `on_server_stop`) is a new
//! entry name with a new signature struct, and a new default method of
//! [`Plugin`](crate::Plugin).
//! * An *older plugin on a newer host* does not list it: the host treats
//!   the hook as a no-op for that plugin, which loads and works as before.
//!   (Tested: the `old-plugin` fixture, built against a frozen 1.0 copy of
//!   the contract, runs in this host and gets no `on_server_stop`.)
//! * A *newer plugin on an older host* lists an entry the host does not
//!   know: the host never calls it (it logs the name at debug level), and
//!   the plugin loads with status `ok`, its `api` column showing the newer
//!   version. A plugin cannot ask which hooks its host calls, so do not
//!   depend on a newer hook alone for something that must happen: for
//!   example, clean up in `on_server_start` (what earlier runs left) as
//!   well as in `on_server_stop`.
//!
//! **A changed signature** of an existing hook is not made in place: that
//! would break every plugin built before. Within a major version it is a
//! new hook under a new name (`<hook>_v2`), and `export_plugin!` exports
//! both entries, the old one answering as well as it can. A host calls the
//! newest entry it knows. 1.2 did this for the pane hooks:
//! `on_pane_create_v2` and `on_pre_spawn_v2` return a
//! [`PaneReply`](crate::PaneReply), which can refuse the pane.
//! * An *older plugin on a 1.2 host* has only the 1.0 entries: they are
//!   called, and the plugin cannot refuse (it never tried to).
//! * A *1.2 plugin on an older host*: the host calls the 1.0 entries. A
//!   refusal ([`Plugin::admit_pane`](crate::Plugin::admit_pane),
//!   [`SpawnEnv::refuse`](crate::SpawnEnv::refuse)) cannot be said there,
//!   so it becomes an error of kind `Failed` whose message reads
//!   `refuses pane ID: REASON (this host predates plugin-api 1.2, ...)`.
//!   The older host then does what it does with any failure: with
//!   `required = true` the pane does not start and the user sees the
//!   reason; with `required = false` the failure is only logged and **the
//!   pane starts**. A policy plugin that must hold on older hosts should
//!   therefore be marked `required = true`. (Tested: the `old-host`
//!   fixture, a host built against the frozen 1.0 contract, loads the
//!   current probe plugin and gets exactly this.)
//!
//! **A declaration** travels the same way (1.3's `refuses_panes`, from
//! [`Plugin::REFUSES_PANES`](crate::Plugin::REFUSES_PANES)): an entry whose
//! "function" points to a value ([`RefusesPanes`](crate::abi::RefusesPanes))
//! rather than a function. An older host never reads it; an older plugin
//! does not have it, which reads as "declares no refusals".
//!
//! **A change to the root module or to a type reachable from it**, or a
//! hook's signature changed in place, is a new **major** version. Hosts
//! and plugins of different major versions refuse each other at load time,
//! in both directions, with `built against plugin-api X, but this host
//! uses plugin-api Y; rebuild the plugin against plugin-api Y`. (Tested
//! with the `v2-plugin` fixture.)
//!
//! **A layout that differs without a version change** (a copy of the
//! contract edited by hand, a mismatched dependency) is refused by
//! abi_stable's layout check, naming the field that differs: for the root
//! module at load time, for one hook when its entry is checked. (Tested
//! with the `skewed-plugin` and `skewed-hook-plugin` fixtures.)
//!
//! # Host-side changes
//!
//! Things only the host reads (plugins.toml keys such as `before`, `after`,
//! `on_fault` and `[faults]`, the runtime's API) change with the minor
//! version too, but never reach a plugin: an older plugins.toml keeps
//! working, and a newer key in an older host is an "unknown field" error
//! naming it. `CHANGELOG.md` says what a minor and a major version promise.
