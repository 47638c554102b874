//! The orphan scan, at server start: removes pane dirs no pane will use
//! again, and nothing else.
//!
//! A dir is an orphan of this server if its metadata names this server's
//! identity and the server did not restore its pane (it is not in
//! `live_panes`): the pane was closed while the server was down, or the
//! server died before its grace period ran out.
//!
//! Dirs of other identities are never touched, whether their server runs
//! or not: a stopped server restores its panes when it comes back. The one
//! exception is opt-in (`max_age_secs`): a dir unused for that long whose
//! owner is provably not running (its lock can be taken).

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use crate::floor::errors::io_error;
use crate::floor::private_fs::ensure_private_dir;
use crate::pane_dirs::layout::Layout;
use crate::pane_dirs::metadata::{unix_now, METADATA_FILE};
use crate::pane_dirs::owner_lock::{probe_owner, OwnerState};
use crate::pane_dirs::pane_dir::{BeforeRemoval, MetadataState, PaneDir};

pub(crate) struct ScanPolicy<'a> {
    /// This server's identity.
    pub server_id: &'a str,
    /// Panes that are (or are about to be) open: never orphans.
    pub keep: HashSet<&'a str>,
    /// `max_age_secs`, if set.
    pub max_age: Option<Duration>,
    pub now: SystemTime,
    /// What a removed dir hands to the user first.
    pub handover: &'a dyn BeforeRemoval,
    /// Whether that handover moves the user's data home (there is a user
    /// Claude dir to move it to), which is what a warning about a removed
    /// dir tells the user.
    pub moves_data_home: bool,
}

/// Scans the base dir; returns the ids of the pane dirs it removed.
pub(crate) fn remove_orphans(layout: &Layout, policy: &ScanPolicy<'_>) -> Vec<String> {
    let base = layout.base();
    let entries = match fs::read_dir(base) {
        Ok(entries) => entries,
        Err(err) => {
            tracing::warn!(path = %base.display(), "skipping the orphan scan: cannot list the base dir: {err}");
            return Vec::new();
        }
    };
    let mut removed = Vec::new();
    for dir_entry in entries.flatten() {
        let name = dir_entry.file_name();
        // Dot names are the plugin's own (`.owners`), never pane dirs; other
        // names that are not pane ids are not ours to judge.
        let Some(name) = name.to_str().filter(|n| !n.starts_with('.')) else {
            continue;
        };
        if policy.keep.contains(name) {
            continue;
        }
        let Ok(pane) = layout.pane(name) else {
            tracing::debug!(name, "orphan scan: not a pane id, leaving it");
            continue;
        };
        // Judged and acted on under the pane's lock: a claim by another
        // server in between would otherwise be judged an orphan and lost.
        let lock = match pane.lock() {
            Ok(Some(lock)) => lock,
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(pane = name, "orphan scan: leaving it alone: {err}");
                continue;
            }
        };
        match judge(layout, &pane, policy) {
            Verdict::Keep => {}
            Verdict::Remove(reason) => {
                match pane.remove_locked(&lock, &reason, Some(policy.handover)) {
                    Ok(true) if reason.starts_with(UNRESTORED) => {
                        tracing::warn!(
                        pane = name,
                        "removed the dir of a pane this server kept but did not restore (start the server with its panes restored to keep them): {}",
                        if policy.moves_data_home {
                            "its conversations, prompt history, checkpoints and memory are in the user's Claude dir, where any pane or plain `claude --resume` finds them; its own .claude.json is gone"
                        } else {
                            "`share_data` is empty, so its conversations went with it"
                        }
                    );
                        removed.push(name.to_string());
                    }
                    Ok(true) => removed.push(name.to_string()),
                    Ok(false) => {}
                    Err(err) => tracing::warn!(pane = name, "orphan scan: could not remove: {err}"),
                }
            }
            Verdict::SetAside => set_aside(layout, &pane),
        }
    }
    removed
}

/// Moves a pane dir that has content but no metadata out of the pane ids'
/// way, into `{base}/.unowned/`, and says so once. What makes one: a
/// process the pane started that outlived it and wrote into
/// `$CLAUDE_CONFIG_DIR` after the dir was removed (`mkdir -p` recreates
/// the tree), or a dir made by hand. Nobody can be told to own it, so
/// nothing in it is deleted; but left in place it would block its pane id
/// and be warned about at every start.
fn set_aside(layout: &Layout, pane: &PaneDir) {
    let unowned = layout.unowned_dir();
    let moved = ensure_private_dir("the dir of set-aside pane dirs", &unowned).and_then(|()| {
        let stamp = unix_now();
        let mut target = unowned.join(format!("{}-{stamp}", pane.id()));
        let mut n = 1;
        while fs::symlink_metadata(&target).is_ok() {
            target = unowned.join(format!("{}-{stamp}-{n}", pane.id()));
            n += 1;
        }
        // rename moves the dir itself, never what a link inside points at.
        fs::rename(pane.root(), &target)
            .map(|()| target)
            .map_err(|err| io_error("move aside", pane.root(), &err))
    });
    match moved {
        Ok(target) => tracing::warn!(
            pane = %pane.id(),
            from = %pane.root().display(),
            to = %target.display(),
            "orphan scan: moved aside a pane dir without {METADATA_FILE} (written by a process that outlived its pane, or made by hand); nothing in it was deleted: look through it and remove it when done"
        ),
        Err(err) => tracing::warn!(
            pane = %pane.id(),
            "orphan scan: leaving a dir without {METADATA_FILE} in place: {err}; remove it by hand if no ccmux server uses it"
        ),
    }
}

/// The removal reason of this server's own panes that were not restored.
const UNRESTORED: &str = "orphan of this server, not restored";

enum Verdict {
    Keep,
    Remove(String),
    /// No metadata but not empty: see [`set_aside`].
    SetAside,
}

fn judge(layout: &Layout, pane: &PaneDir, policy: &ScanPolicy<'_>) -> Verdict {
    let path = pane.root().display();
    match pane.exists() {
        Ok(true) => {}
        Ok(false) => return Verdict::Keep,
        Err(err) => {
            tracing::warn!("orphan scan: leaving it alone: {err}");
            return Verdict::Keep;
        }
    }
    let metadata = match pane.read_metadata() {
        Ok(metadata) => metadata,
        Err(err) => {
            tracing::warn!("orphan scan: leaving it alone: {err}");
            return Verdict::Keep;
        }
    };
    // Only `max_age_secs` asks how long a dir has been idle: four stats
    // per dir, skipped when it is off.
    let idle = policy.max_age.and_then(|_| idle_for(pane, policy.now));
    let too_old = |max: Duration| idle.is_some_and(|idle| idle > max);
    match metadata {
        MetadataState::Valid(found) if found.pane_id != pane.id() => {
            tracing::warn!(%path, names = %found.pane_id, "orphan scan: leaving a pane dir whose {METADATA_FILE} names another pane");
            Verdict::Keep
        }
        MetadataState::Valid(found) if found.owner == policy.server_id => Verdict::Remove(format!(
            "{UNRESTORED} ({})",
            policy.server_id
        )),
        MetadataState::Valid(found) => match policy.max_age {
            Some(max) if too_old(max) => match probe_owner(layout, &found.owner) {
                OwnerState::NotRunning => Verdict::Remove(format!(
                    "its owner {} is not running and it has been unused for {}s (max_age_secs = {})",
                    found.owner,
                    idle.map_or(0, |d| d.as_secs()),
                    max.as_secs()
                )),
                OwnerState::Running => Verdict::Keep,
                OwnerState::Unknown(why) => {
                    tracing::warn!(%path, owner = %found.owner, "orphan scan: keeping it: cannot tell whether its owner runs: {why}");
                    Verdict::Keep
                }
            },
            _ => Verdict::Keep,
        },
        // Without an owner to ask, only a dir with nothing in it is fair
        // game: a `config/` with files may be someone's history.
        MetadataState::Missing => match pane.is_unused_skeleton() {
            // No claim is in progress (it would hold the lock): what an
            // interrupted claim (a full disk, a crash) left.
            Ok(true) => Verdict::Remove(format!(
                "it has no {METADATA_FILE} and nothing in it: left by an interrupted claim"
            )),
            Ok(false) => Verdict::SetAside,
            Err(err) => {
                tracing::warn!("orphan scan: leaving it alone: {err}");
                Verdict::Keep
            }
        },
        MetadataState::Invalid(why) => {
            let unused_skeleton = || {
                pane.is_unused_skeleton().unwrap_or_else(|err| {
                    tracing::warn!("orphan scan: leaving it alone: {err}");
                    false
                })
            };
            match policy.max_age {
                Some(max) if too_old(max) && unused_skeleton() => Verdict::Remove(format!(
                    "its {METADATA_FILE} is unusable, it holds only empty pane dirs and has been unused for {}s (max_age_secs = {})",
                    idle.map_or(0, |d| d.as_secs()),
                    max.as_secs()
                )),
                _ => {
                    tracing::warn!(%path, "orphan scan: leaving a dir whose {METADATA_FILE} is unusable ({why}): its owner is unknown; remove it by hand if no ccmux server uses it");
                    Verdict::Keep
                }
            }
        }
    }
}

/// How long the pane dir has been unused; `None` if that cannot be told
/// (which keeps the dir).
fn idle_for(pane: &PaneDir, now: SystemTime) -> Option<Duration> {
    let last = pane.last_activity()?;
    Some(now.duration_since(last).unwrap_or(Duration::ZERO))
}
