//! `host-shim carry-back`: what a person sees and decides of the
//! `.claude.json` changes the isolation plugin kept pending (held back by
//! its guard rails, or not merged yet). The plugin's own `review` module
//! does the work; this finds its configuration in plugins.toml and prints.
//! Each profile has its own entries (they go into its own `.claude.json`):
//! `list` shows them all, the others find an entry in whichever holds it.

use std::io::Write;

use ccmux_isolation_plugin::review::{CarryBackStore, ItemChange, PendingEntry};
use ccmux_isolation_plugin::HostEnvironment;
use ccmux_plugin_api::host::{printable, PluginsConfig};
use ccmux_plugin_api::{HookError, HookErrorKind};
use serde_json::Value;

use crate::cli::{CarryBackAction, CarryBackArgs};
use crate::{config_file, exit, isolation};

pub fn carry_back(args: &CarryBackArgs) -> u8 {
    let stores = match open(args) {
        Ok(stores) => stores,
        Err(err) => {
            say!("host-shim carry-back: {}", clean(&err));
            return exit::USAGE;
        }
    };
    let action = args.action.as_ref().unwrap_or(&CarryBackAction::List);
    let mut out = std::io::stdout().lock();
    match action {
        CarryBackAction::List => {
            // One profile: its entries as they are. Several: each under a
            // header naming the profile and the file its entries go into.
            let grouped = stores.len() > 1;
            for store in &stores {
                let entries = match store.list() {
                    Ok(entries) => entries,
                    Err(err) => {
                        say!("host-shim carry-back: {}", clean(&err.message));
                        return exit::FAILURE;
                    }
                };
                if grouped {
                    let _ = writeln!(
                        out,
                        "profile {} ({})",
                        clean(store.profile()),
                        clean(&store.user_claude_json().to_string_lossy())
                    );
                }
                if entries.is_empty() {
                    let _ = writeln!(
                        out,
                        "{}no pending carry-backs: every pane's changes are in {}",
                        if grouped { "  " } else { "" },
                        store.user_claude_json().display()
                    );
                }
                for entry in &entries {
                    let _ = print_entry(&mut out, entry, false);
                }
            }
            exit::SUCCESS
        }
        CarryBackAction::Show { name } => match find(&stores, name) {
            Ok(Some((_, entry))) => {
                let _ = print_entry(&mut out, &entry, true);
                exit::SUCCESS
            }
            Ok(None) => {
                say!("host-shim carry-back: no pending carry-back is called {name:?}; `host-shim carry-back list` names them");
                exit::USAGE
            }
            Err(err) => {
                say!("host-shim carry-back: {}", clean(&err.message));
                exit::FAILURE
            }
        },
        CarryBackAction::Apply { name } => {
            let store = match holder(&stores, name) {
                Ok(store) => store,
                Err(code) => return code,
            };
            match store.apply(name) {
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
            }
        }
        CarryBackAction::Drop { name } => {
            let store = match holder(&stores, name) {
                Ok(store) => store,
                Err(code) => return code,
            };
            match store.drop_entry(name) {
                Ok(()) => {
                    let _ = writeln!(out, "dropped {name}: nothing of it was merged");
                    exit::SUCCESS
                }
                Err(err) => {
                    say!("host-shim carry-back: {}", clean(&err.message));
                    exit::USAGE
                }
            }
        }
    }
}

/// The entry called `name` and the store (the profile) that holds it.
fn find<'a>(
    stores: &'a [CarryBackStore],
    name: &str,
) -> Result<Option<(&'a CarryBackStore, PendingEntry)>, HookError> {
    // A store that cannot be read (a server merging it, a broken dir)
    // does not hide an entry of another: its error counts only when the
    // entry is found nowhere.
    let mut unreadable = None;
    for store in stores {
        match store.list() {
            Ok(entries) => {
                if let Some(entry) = entries.into_iter().find(|entry| entry.name == name) {
                    return Ok(Some((store, entry)));
                }
            }
            Err(err) => unreadable = unreadable.or(Some(err)),
        }
    }
    match unreadable {
        Some(err) => Err(err),
        None => Ok(None),
    }
}

/// The store to apply or drop `name` in: the one that holds it; with one
/// profile, or when none holds it, the first, whose own error then says
/// so (an exit status on failure).
fn holder<'a>(stores: &'a [CarryBackStore], name: &str) -> Result<&'a CarryBackStore, u8> {
    let first = stores.first().ok_or(exit::USAGE)?;
    if stores.len() == 1 {
        return Ok(first);
    }
    match find(stores, name) {
        Ok(Some((store, _))) => Ok(store),
        Ok(None) => Ok(first),
        Err(err) => {
            say!("host-shim carry-back: {}", clean(&err.message));
            Err(exit::FAILURE)
        }
    }
}

/// The isolation plugin's stores, one per profile (`default` first), as
/// plugins.toml configures them.
fn open(args: &CarryBackArgs) -> Result<Vec<CarryBackStore>, String> {
    let choice = config_file::resolve(args.config.config.as_deref())?;
    let config =
        PluginsConfig::load(&choice.file).map_err(|err| format!("{err} ({})", choice.source))?;
    let entry = isolation::find_entry(&config, args.plugin.as_deref())?;
    let isolation = isolation::plugin_config(&choice, entry)?;
    let stores = CarryBackStore::open_all(isolation, &config.dir, &HostEnvironment::inherited())
        .map_err(|err| clean(&err.message))?;
    if stores.is_empty() {
        return Err("the user's Claude dir is unknown (no home dir): there is no .claude.json to carry back into; set HOME".to_string());
    }
    Ok(stores)
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
