//! Handover: what a pane dir hands to the user before it is removed, so
//! that removing it loses nothing the user made: the pane's own changes to
//! its `.claude.json` are carried back into the user's file, and whatever
//! it holds of the user's data pane-locally is moved into the user's
//! Claude dir. Run by every removal (after the grace period, by the orphan
//! scan, by `max_age_secs`).
//!
//! If the data cannot go home, the dir is kept. If the `.claude.json`
//! merge fails (the user's file is invalid, a link, locked by a stuck
//! process), the pane's two small files that hold its changes (its final
//! `.claude.json` and its seed record) are kept in
//! `{base}/.pending-carry-back/{ms}-{pane-id}/` and the dir goes: a failed
//! merge must not keep whole pane dirs around for ever. Every server start
//! merges what is pending there, and removes each once it is merged.

use std::path::Path;

use ccmux_plugin_api::{HookError, HookErrorKind};
use serde_json::{Map, Value};

use crate::carry_back::{CarriedKeys, Change, Precedence};
use crate::pane_dir::PaneDir;
use crate::pending::PendingCarryBacks;
use crate::private_fs::{read_bounded, Links, ReadFailure};
use crate::seed::{
    describe_read_failure, pick_keys, CLAUDE_JSON, SEED_RECORD, USER_CLAUDE_JSON_LIMIT,
};
use crate::shared_data::SharedData;
use crate::user_claude_json::UserClaudeJson;

#[derive(Debug, Default)]
pub(crate) struct Handover {
    /// Moves data home; `None` when nothing is shared or moved home.
    pub data: Option<SharedData>,
    /// Carries `.claude.json` changes back; `None` with `carry_back = false`
    /// or no known user file.
    pub claude_json: Option<ClaudeJsonCarry>,
}

#[derive(Debug)]
pub(crate) struct ClaudeJsonCarry {
    pub keys: CarriedKeys,
    pub user: UserClaudeJson,
    /// Merges that failed, kept for later.
    pub pending: PendingCarryBacks,
}

impl Handover {
    /// Hands over everything of `pane` (whose config dir is checked to be
    /// a real dir of this user by the caller). An error means the dir must
    /// be kept: something in it is not the user's yet.
    pub(crate) fn run(&self, pane: &PaneDir, config: &Path) -> Result<(), HookError> {
        // Data first: Claude moves some settings out of `.claude.json`
        // into `settings.json` (a pane's own one, if the user has none),
        // and the removal carried back below is only right once that file
        // is home.
        if let Some(data) = &self.data {
            let rescued = data.rescue(pane.id(), config)?;
            if !rescued.is_empty() {
                tracing::info!(pane = %pane.id(), "moved the pane's own data into the user's Claude dir before removing it: {rescued}");
            }
        }
        if let Some(carry) = &self.claude_json {
            carry.run_or_keep(pane, config)?;
        }
        Ok(())
    }
}

impl ClaudeJsonCarry {
    /// Merges the pane's changes; if that fails, keeps them pending (and
    /// says so) so the dir can go. An error only if they could not be kept
    /// either: the dir must stay then.
    fn run_or_keep(&self, pane: &PaneDir, config: &Path) -> Result<(), HookError> {
        let final_file = config.join(CLAUDE_JSON);
        let seed_record = pane.root().join(SEED_RECORD);
        let Err(err) = self.carry(pane.id(), &final_file, &seed_record, Precedence::PaneWins)
        else {
            return Ok(());
        };
        let err = err.into_hook_error();
        match self.pending.keep(pane.id(), &final_file, &seed_record) {
            Ok(kept) => {
                tracing::warn!(
                    pane = %pane.id(),
                    kept = %kept.display(),
                    "{}; the pane's .claude.json changes are kept in the dir named here and merged at every server start until they go in (delete that dir to drop them)",
                    err.message
                );
                Ok(())
            }
            Err(keep_err) => Err(HookError::new(
                err.kind,
                format!(
                    "{}; and keeping them pending failed too: {}",
                    err.message, keep_err.message
                ),
            )),
        }
    }

    /// Merges every pending carry-back and drops each one that went in.
    /// For server start. Newest first, each with the user's value winning
    /// where it changed since that pane's seed: so the latest pane's choice
    /// stands over older pending ones, and a choice the user made after a
    /// pane's seed stands over that pane's. A failure of the user's file
    /// (or a lock held) ends the pass: the rest would wait on the same.
    pub(crate) fn merge_pending(&self) {
        let Some(lock) = self.pending.lock() else {
            return;
        };
        self.pending.clear_abandoned(&lock);
        let mut entries = self.pending.list(&lock);
        entries.reverse();
        for pending in entries {
            let final_file = pending.path.join(CLAUDE_JSON);
            if !final_file.is_file() {
                tracing::warn!(path = %pending.path.display(), "a pending carry-back without its .claude.json: leaving it");
                continue;
            }
            match self.carry(
                &pending.pane_id,
                &final_file,
                &pending.path.join(SEED_RECORD),
                Precedence::UserWins,
            ) {
                Ok(()) => self.pending.drop_merged(&pending),
                Err(CarryError::Pane(err)) => tracing::warn!(
                    kept = %pending.path.display(),
                    "a pending carry-back cannot be merged: {}",
                    err.message
                ),
                Err(CarryError::User(err)) => {
                    tracing::warn!(
                        kept = %pending.path.display(),
                        "pending carry-backs still cannot be merged (the rest wait for the next start): {}",
                        err.message
                    );
                    break;
                }
            }
        }
    }

    /// Merges one pane's changes. Its error says whether the pane's own
    /// files or the user's file (or its locks) stood in the way.
    fn carry(
        &self,
        pane_id: &str,
        final_path: &Path,
        seed_path: &Path,
        precedence: Precedence,
    ) -> Result<(), CarryError> {
        let changes = self
            .pane_changes(final_path, seed_path)
            .map_err(CarryError::Pane)?;
        let Some((changes, seedless)) = changes else {
            return Ok(());
        };
        // Without a record of its seed, a pane's stale value cannot be told
        // from a change: it only adds.
        let precedence = if seedless {
            Precedence::OnlyAdditions
        } else {
            precedence
        };
        let applied = self
            .user
            .merge(pane_id, &changes, precedence)
            .map_err(CarryError::User)?;
        if let Some(applied) = applied {
            if applied.written > 0 {
                tracing::info!(
                    pane = pane_id,
                    path = %self.user.path.display(),
                    written = applied.written,
                    conflicts = applied.conflicts,
                    "carried the pane's own .claude.json changes back into the user's file"
                );
            }
        }
        Ok(())
    }

    /// What the pane changed, and whether it had no seed record; `None`
    /// when it has no `.claude.json` or it is still its seed.
    fn pane_changes(
        &self,
        final_path: &Path,
        seed_path: &Path,
    ) -> Result<Option<(Vec<Change>, bool)>, HookError> {
        let Some(final_bytes) = read_pane_file(final_path, "the pane's .claude.json")? else {
            return Ok(None);
        };
        let seed_bytes = read_pane_file(seed_path, "the pane's seed record")?;
        // A pane whose Claude never saved (a shell pane, most panes of a
        // multiplexer) still holds its seed byte for byte: nothing changed.
        if seed_bytes.as_deref() == Some(final_bytes.as_slice()) {
            return Ok(None);
        }
        // Only the compared keys are built; a project's history is skipped.
        let final_file = self.parse(&final_bytes, final_path, "the pane's .claude.json")?;
        let seed = match &seed_bytes {
            Some(bytes) => Some(self.parse(bytes, seed_path, "the pane's seed record")?),
            None => None,
        };
        let seedless = seed.is_none();
        let changes = self.keys.changes(&seed.unwrap_or_default(), &final_file);
        Ok(Some((changes, seedless)))
    }

    fn parse(
        &self,
        bytes: &[u8],
        path: &Path,
        what: &str,
    ) -> Result<Map<String, Value>, HookError> {
        pick_keys(bytes, &self.keys.top, &self.keys.project).map_err(|err| {
            HookError::new(
                HookErrorKind::Failed,
                format!(
                    "{what} {} is not a JSON object ({err}), so what the pane changed cannot be told; \
                     it is kept: look at it, and remove it by hand when done",
                    path.display()
                ),
            )
        })
    }
}

/// Why a pane's changes did not go in.
enum CarryError {
    /// The pane's own files cannot be read.
    Pane(HookError),
    /// The user's file cannot take them now (invalid, a link, locked).
    User(HookError),
}

impl CarryError {
    fn into_hook_error(self) -> HookError {
        match self {
            CarryError::Pane(err) | CarryError::User(err) => err,
        }
    }
}

/// A file of the pane, whole; `None` if it does not exist. One that cannot
/// be read is an error: the pane's changes would be lost.
fn read_pane_file(path: &Path, what: &str) -> Result<Option<Vec<u8>>, HookError> {
    match read_bounded(path, USER_CLAUDE_JSON_LIMIT, Links::Refuse) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(ReadFailure::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(failure) => Err(HookError::new(
            HookErrorKind::Failed,
            format!(
                "{what} {}: {}",
                path.display(),
                describe_read_failure(&failure)
            ),
        )),
    }
}
