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

use crate::carry_back::{CarriedKeys, Precedence};
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

    /// Merges every pending carry-back, oldest first, and drops each one
    /// that went in. For server start. A pending change is late: where the
    /// user's file changed the same item since, the user's value stays.
    pub(crate) fn merge_pending(&self) {
        let Some(lock) = self.pending.lock() else {
            return;
        };
        for pending in self.pending.list(&lock) {
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
                Err(err) => tracing::warn!(
                    kept = %pending.path.display(),
                    "a pending carry-back still cannot be merged: {}",
                    err.message
                ),
            }
        }
    }

    fn carry(
        &self,
        pane_id: &str,
        final_path: &Path,
        seed_path: &Path,
        precedence: Precedence,
    ) -> Result<(), HookError> {
        let Some(final_bytes) = read_pane_file(final_path, "the pane's .claude.json")? else {
            return Ok(());
        };
        let seed_bytes = read_pane_file(seed_path, "the pane's seed record")?;
        // A pane whose Claude never saved (a shell pane, most panes of a
        // multiplexer) still holds its seed byte for byte: nothing changed.
        if seed_bytes.as_deref() == Some(final_bytes.as_slice()) {
            return Ok(());
        }
        // Only the compared keys are built; a project's history is skipped.
        let final_file = self.parse(&final_bytes, final_path, "the pane's .claude.json")?;
        let seed = match &seed_bytes {
            Some(bytes) => Some(self.parse(bytes, seed_path, "the pane's seed record")?),
            None => None,
        };
        // Without a record of its seed, a pane's stale value cannot be told
        // from a change: it only adds.
        let precedence = if seed.is_none() {
            Precedence::OnlyAdditions
        } else {
            precedence
        };
        let changes = self.keys.changes(&seed.unwrap_or_default(), &final_file);
        if let Some(applied) = self.user.merge(pane_id, &changes, precedence)? {
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
                     the pane's dir is kept: look at it and remove it by hand",
                    path.display()
                ),
            )
        })
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
