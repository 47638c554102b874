//! Drift: entries of a pane's config dir that the plugin does not
//! classify, moved into the user's Claude dir before the pane dir goes.
//!
//! Why: Claude Code ships several releases a week, and a release that
//! starts writing a new per-user file would otherwise lose it at the first
//! pane close. Whatever sits at the top of a pane's `config/` and is
//! neither in [`classification`](crate::classification) nor in the
//! configured lists is kept: moved in under its own name if the user
//! lacks it, else beside the user's (`{stem}.pane-{id}.{ext}`), never
//! overwriting. One WARN names each entry and the Claude release that ran
//! last in the pane, so the table can be updated.
//!
//! Links and special files (FIFOs, sockets) hold no data and stay behind.

use std::io;
use std::path::Path;

use ccmux_plugin_api::HookError;

use crate::classification::class_of;
use crate::classification::CLAUDE_JSON;
use crate::floor::errors::io_error;
use crate::floor::private_fs::{entry, read_bounded, Entry, Links};
use crate::user_data::rescue::{move_no_replace, set_beside, Rescued};

/// How much of the pane's `.claude.json` is read to name the release.
const VERSION_READ_LIMIT: u64 = 64 << 20;

/// Moves every unclassified real entry of `pane_config` into `user_dir`.
/// `configured` says whether a name is in one of the plugin's configured
/// lists (`share`, `share_data`, `move_home`, top component). An error
/// means something unknown could not be moved: the pane dir must be kept.
pub(crate) fn rescue_unknown(
    pane_id: &str,
    pane_config: &Path,
    user_dir: &Path,
    configured: impl Fn(&str) -> bool,
) -> Result<Rescued, HookError> {
    let mut rescued = Rescued::default();
    let listing = match std::fs::read_dir(pane_config) {
        Ok(listing) => listing,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(rescued),
        Err(err) => return Err(io_error("list", pane_config, &err)),
    };
    let mut release: Option<String> = None;
    for item in listing {
        let item = item.map_err(|err| io_error("list", pane_config, &err))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else {
            // Not UTF-8: no Claude release names files so; keep it anyway.
            let lossy = name.to_string_lossy().into_owned();
            add(
                &mut rescued,
                keep(
                    pane_id,
                    &item.path(),
                    user_dir,
                    &lossy,
                    &mut release,
                    pane_config,
                )?,
            );
            continue;
        };
        if class_of(name).is_some() || configured(name) {
            continue;
        }
        add(
            &mut rescued,
            keep(
                pane_id,
                &item.path(),
                user_dir,
                name,
                &mut release,
                pane_config,
            )?,
        );
    }
    Ok(rescued)
}

fn add(total: &mut Rescued, one: Rescued) {
    total.moved += one.moved;
    total.set_beside += one.set_beside;
    total.appended_bytes += one.appended_bytes;
}

fn keep(
    pane_id: &str,
    local: &Path,
    user_dir: &Path,
    name: &str,
    release: &mut Option<String>,
    pane_config: &Path,
) -> Result<Rescued, HookError> {
    if !matches!(
        entry(local).map_err(|err| io_error("inspect", local, &err))?,
        Entry::Dir(_) | Entry::File
    ) {
        return Ok(Rescued::default());
    }
    let release = release
        .get_or_insert_with(|| last_release(pane_config))
        .clone();
    let target = user_dir.join(name);
    if move_no_replace(local, &target, pane_id)? {
        tracing::warn!(
            pane = pane_id,
            entry = name,
            release = %release,
            moved_to = %target.display(),
            "the pane's config dir held {name:?}, which ccmux does not know (the last Claude that ran in the pane: {release}); moved into the user's Claude dir, which had none. If it is a cache, delete it; either way report it so the isolation plugin's table learns it"
        );
        return Ok(Rescued {
            moved: 1,
            ..Rescued::default()
        });
    }
    let beside = set_beside(local, user_dir, pane_id)?;
    tracing::warn!(
        pane = pane_id,
        entry = name,
        release = %release,
        kept = %beside.display(),
        "the pane's config dir held {name:?}, which ccmux does not know (the last Claude that ran in the pane: {release}); the user has one too, so the pane's is kept beside it: merge it by hand or delete it, and report it so the isolation plugin's table learns it"
    );
    Ok(Rescued {
        set_beside: 1,
        ..Rescued::default()
    })
}

/// The release that last ran in the pane (`lastVersionBase` in its
/// `.claude.json`), for the log; "unknown" if it cannot tell.
fn last_release(pane_config: &Path) -> String {
    let unknown = || "unknown".to_string();
    let Ok(bytes) = read_bounded(
        &pane_config.join(CLAUDE_JSON),
        VERSION_READ_LIMIT,
        Links::Refuse,
    ) else {
        return unknown();
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return unknown();
    };
    json.get("lastVersionBase")
        .or_else(|| json.get("lastReleaseNotesSeen"))
        .and_then(serde_json::Value::as_str)
        .filter(|v| {
            v.len() <= 32
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c))
        })
        .map(str::to_owned)
        .unwrap_or_else(unknown)
}
