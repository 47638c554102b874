//! `host-shim carry-back`: what a person sees and decides of the
//! `.claude.json` changes the isolation plugin kept pending (held back by
//! its guard rails, or not merged yet). The plugin's own `review` module
//! does the work; this finds its configuration in plugins.toml and prints.

use std::io::Write;

use ccmux_isolation_plugin::review::{CarryBackStore, ItemChange, PendingEntry};
use ccmux_isolation_plugin::{HostEnvironment, IsolationConfig};
use ccmux_plugin_api::host::{printable, PluginEntry, PluginsConfig};
use ccmux_plugin_api::HookErrorKind;
use serde_json::Value;

use crate::cli::{CarryBackAction, CarryBackArgs};
use crate::{config_file, exit};

/// The library name of the isolation plugin.
const ISOLATION_LIBRARY: &str = "ccmux_isolation_plugin";

pub fn carry_back(args: &CarryBackArgs) -> u8 {
    let store = match open(args) {
        Ok(store) => store,
        Err(err) => {
            say!("host-shim carry-back: {}", clean(&err));
            return exit::USAGE;
        }
    };
    let action = args.action.as_ref().unwrap_or(&CarryBackAction::List);
    let mut out = std::io::stdout().lock();
    match action {
        CarryBackAction::List | CarryBackAction::Show { .. } => {
            let entries = match store.list() {
                Ok(entries) => entries,
                Err(err) => {
                    say!("host-shim carry-back: {}", clean(&err.message));
                    return exit::FAILURE;
                }
            };
            let (entries, whole): (Vec<&PendingEntry>, bool) = match action {
                CarryBackAction::Show { name } => {
                    match entries.iter().find(|entry| &entry.name == name) {
                        Some(entry) => (vec![entry], true),
                        None => {
                            say!("host-shim carry-back: no pending carry-back is called {name:?}; `host-shim carry-back list` names them");
                            return exit::USAGE;
                        }
                    }
                }
                _ => (entries.iter().collect(), false),
            };
            if entries.is_empty() {
                let _ = writeln!(
                    out,
                    "no pending carry-backs: every pane's changes are in {}",
                    store.user_claude_json().display()
                );
            }
            for entry in entries {
                let _ = print_entry(&mut out, entry, whole);
            }
            exit::SUCCESS
        }
        CarryBackAction::Apply { name } => match store.apply(name) {
            Ok(written) => {
                let _ = writeln!(
                    out,
                    "applied {name}: {written} item(s) written into {}",
                    store.user_claude_json().display()
                );
                exit::SUCCESS
            }
            // No such entry: a bad argument, nothing ran.
            Err(err) if err.kind == HookErrorKind::InvalidInput => {
                say!("host-shim carry-back: {}", clean(&err.message));
                exit::USAGE
            }
            Err(err) => {
                say!("host-shim carry-back: {}", clean(&err.message));
                exit::FAILURE
            }
        },
        CarryBackAction::Drop { name } => match store.drop_entry(name) {
            Ok(()) => {
                let _ = writeln!(out, "dropped {name}: nothing of it was merged");
                exit::SUCCESS
            }
            Err(err) => {
                say!("host-shim carry-back: {}", clean(&err.message));
                exit::USAGE
            }
        },
    }
}

/// The isolation plugin's store, as plugins.toml configures it.
fn open(args: &CarryBackArgs) -> Result<CarryBackStore, String> {
    let choice = config_file::resolve(args.config.config.as_deref())?;
    let config =
        PluginsConfig::load(&choice.file).map_err(|err| format!("{err} ({})", choice.source))?;
    let entry = isolation_entry(&config, args.plugin.as_deref())?;
    let isolation: IsolationConfig = toml::Value::Table(entry.config.clone())
        .try_into()
        .map_err(|err| {
            format!(
                "{choice}: the [plugins.config] of plugin {:?} is not the isolation plugin's: {err}",
                entry.name
            )
        })?;
    CarryBackStore::open(isolation, &config.dir, &HostEnvironment::inherited())
        .map_err(|err| clean(&err.message))
}

fn isolation_entry<'a>(
    config: &'a PluginsConfig,
    name: Option<&str>,
) -> Result<&'a PluginEntry, String> {
    let found = match name {
        Some(name) => config.plugins.iter().find(|entry| entry.name == name),
        None => config.plugins.iter().find(|entry| {
            entry.library.as_deref() == Some(ISOLATION_LIBRARY)
                || entry.path.as_ref().is_some_and(|path| {
                    path.file_stem()
                        .is_some_and(|stem| stem.to_string_lossy().contains(ISOLATION_LIBRARY))
                })
        }),
    };
    found.ok_or_else(|| match name {
        Some(name) => format!(
            "{}: no plugin is called {name:?}; the names are: {}",
            config.file.display(),
            config
                .plugins
                .iter()
                .map(|entry| entry.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!(
            "{}: no entry loads the isolation plugin ({ISOLATION_LIBRARY}); name its entry with --plugin NAME",
            config.file.display()
        ),
    })
}

fn print_entry(out: &mut impl Write, entry: &PendingEntry, whole: bool) -> std::io::Result<()> {
    let state = match &entry.held {
        Some(_) => "held for you",
        None => "merged at the next server start",
    };
    writeln!(
        out,
        "{}  pane {}  {state}",
        clean(&entry.name),
        clean(&entry.pane_id)
    )?;
    if let Some(why) = &entry.unreadable {
        writeln!(out, "  cannot be read: {}", clean(why))?;
    }
    if entry.items.is_empty() && entry.unreadable.is_none() {
        writeln!(out, "  nothing left to change: the user's file has it all")?;
    }
    for item in &entry.items {
        print_item(out, item, whole)?;
    }
    Ok(())
}

fn print_item(out: &mut impl Write, item: &ItemChange, whole: bool) -> std::io::Result<()> {
    let what = match (&item.seed, &item.pane) {
        (_, None) => "remove",
        (None, Some(_)) => "add",
        (Some(_), Some(_)) => "change",
    };
    let held = item
        .held_because
        .as_deref()
        .map(|why| format!("  [held: {}]", clean(why)))
        .unwrap_or_default();
    writeln!(out, "  {what} {}{held}", clean(&item.item))?;
    writeln!(out, "    user now: {}", value(item.user.as_ref(), whole))?;
    writeln!(out, "    pane:     {}", value(item.pane.as_ref(), whole))?;
    Ok(())
}

/// A value as one line of JSON, safe for a terminal, cut short unless
/// `whole`.
fn value(value: Option<&Value>, whole: bool) -> String {
    const SHORT: usize = 120;
    let text = value.map_or_else(|| "(absent)".to_string(), Value::to_string);
    let text = match text.char_indices().nth(SHORT) {
        Some((cut, _)) if !whole => format!("{}…", &text[..cut]),
        _ => text,
    };
    // JSON escapes only the C0 controls: DEL, C1 and bidi overrides too.
    clean(&text)
}

/// Text from files, made safe for a terminal: control characters (an
/// escape sequence planted in a file name, say) are shown, not obeyed.
fn clean(text: &str) -> String {
    printable(text).into_owned()
}
