//! `.pane-metadata`: who a pane dir belongs to, and the Claude session id
//! that stays with the pane across server restarts.
//!
//! The owner is the server identity (`server_id`), stable across restarts,
//! so a restarted server recognises its own panes and never touches those
//! of another server sharing the base dir.

use std::time::{SystemTime, UNIX_EPOCH};

use ccmux_plugin_api::{check_pane_id, HookError, HookErrorKind};
use serde::{Deserialize, Serialize};

/// The file name, inside the pane dir (not inside `config/`, so Claude's
/// own files can never collide with it).
pub(crate) const METADATA_FILE: &str = ".pane-metadata";

/// Metadata files are a few hundred bytes; anything bigger is not ours.
pub(crate) const METADATA_SIZE_LIMIT: u64 = 64 * 1024;

/// The contents of `.pane-metadata`. Unknown fields are ignored, so a
/// newer plugin version may add some without older ones refusing the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaneMetadata {
    pub pane_id: String,
    /// A UUID v4, made when the pane dir is first created and kept when
    /// the pane is restored.
    pub claude_session_id: String,
    /// Unix seconds when the pane dir was first created.
    pub created_at: u64,
    /// The `server_id` of the server that owns the pane.
    pub owner: String,
    /// The run of that server that last claimed the pane.
    pub instance_id: String,
    /// The plugin version that last wrote this file.
    pub plugin_version: String,
    /// A fresh UUID at every claim of the dir, so a removal scheduled
    /// before a re-claim can tell the dir is no longer the one it was
    /// scheduled for (another plugin instance in the same server took it
    /// back meanwhile). Empty in files written before claims existed.
    #[serde(default)]
    pub claim: String,
    /// The profile the pane is in, recorded at its first spawn (before
    /// anything of the profile's goes into the dir) and kept for good: a
    /// restored pane stays in its account. `None` before that spawn, and
    /// in files written before profiles: such a pane, once anything is in
    /// its `config/`, is in `default` (see `per_profile::recorded_profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// That profile's Claude dir at the time: a pane is handed over only
    /// to the dir it was filled from, and a restore after the profile was
    /// pointed elsewhere is refused. `None` with `profile` (and when the
    /// dir is unknown: no home dir, or not UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_dir: Option<String>,
}

/// The profile a pane is in, as its metadata records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordedProfile {
    pub name: String,
    /// `None` for a pane from before profiles, or a profile without a
    /// known dir.
    pub dir: Option<String>,
}

impl PaneMetadata {
    /// Metadata for a brand-new pane dir, with a fresh session id.
    pub(crate) fn new(
        pane_id: &str,
        owner: &str,
        instance_id: &str,
        claim: String,
    ) -> Result<Self, HookError> {
        Ok(PaneMetadata {
            pane_id: pane_id.to_string(),
            claude_session_id: new_uuid("a Claude session id")?,
            created_at: unix_now(),
            owner: owner.to_string(),
            instance_id: instance_id.to_string(),
            plugin_version: env!("CARGO_PKG_VERSION").to_string(),
            claim,
            profile: None,
            profile_dir: None,
        })
    }

    /// The profile recorded at the pane's first spawn, if any.
    pub(crate) fn recorded_profile(&self) -> Option<RecordedProfile> {
        self.profile.as_ref().map(|name| RecordedProfile {
            name: name.clone(),
            dir: self.profile_dir.clone(),
        })
    }

    /// The same pane claimed again by its owner: the session id and
    /// creation time stay, the claim is the new one.
    pub(crate) fn reclaimed(self, instance_id: &str, claim: String) -> Self {
        PaneMetadata {
            instance_id: instance_id.to_string(),
            plugin_version: env!("CARGO_PKG_VERSION").to_string(),
            claim,
            ..self
        }
    }

    /// Parses and checks a metadata file. The owner is used to build a lock
    /// file path, so it is checked like a pane id.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        let metadata: PaneMetadata = serde_json::from_slice(bytes)
            .map_err(|err| format!("not valid metadata JSON: {err}"))?;
        check_pane_id(&metadata.pane_id).map_err(|err| format!("bad `pane_id`: {err}"))?;
        check_pane_id(&metadata.owner).map_err(|err| format!("bad `owner`: {err}"))?;
        uuid::Uuid::parse_str(&metadata.claude_session_id)
            .map_err(|err| format!("bad `claude_session_id`: {err}"))?;
        // It names files (`.pending-carry-back.NAME`): checked like an id.
        if let Some(profile) = &metadata.profile {
            check_pane_id(profile).map_err(|err| format!("bad `profile`: {err}"))?;
        }
        Ok(metadata)
    }

    pub(crate) fn to_json(&self) -> Result<Vec<u8>, HookError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|err| {
            HookError::new(
                HookErrorKind::Failed,
                format!("could not serialize pane metadata: {err}"),
            )
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// A fresh claim token for [`PaneMetadata::claim`].
pub(crate) fn new_claim() -> Result<String, HookError> {
    new_uuid("a pane dir claim")
}

/// A random UUID v4, for `what`. Built from `getrandom` directly because
/// `Uuid::new_v4` panics when the OS has no randomness to give.
fn new_uuid(what: &str) -> Result<String, HookError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|err| {
        HookError::new(
            HookErrorKind::Io,
            format!("could not get random bytes for {what}: {err}"),
        )
    })?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
