//! PaneDir: one pane's directory, and every change made to it.
//!
//! ```text
//! {base}/{pane-id}/         0700
//!   .pane-metadata          0600, JSON: owner, Claude session id (see metadata)
//!   config/                 CLAUDE_CONFIG_DIR: Claude's own .claude.json,
//!                           projects/, sessions/, ... and the share links
//!   sessions/               reserved for ccmux's own per-pane records
//! ```
//!
//! Claude's files live one level down, in `config/`, so nothing Claude
//! writes can collide with `.pane-metadata` or ccmux's `sessions/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ccmux_plugin_api::{HookError, HookErrorKind};

use crate::classification::CLAUDE_JSON;
use crate::floor::errors::{io_error, refused};
use crate::floor::private_fs::{
    check_own_dir, ensure_private_dir, entry, is_temp_file_of, read_bounded,
    write_private_file_atomic, Entry, Links, ReadFailure,
};
use crate::pane_dirs::metadata::{
    new_claim, PaneMetadata, RecordedProfile, METADATA_FILE, METADATA_SIZE_LIMIT,
};
use crate::pane_dirs::pane_lock::{CreatedLock, PaneLock};

pub(crate) const CONFIG_DIR: &str = "config";
pub(crate) const SESSIONS_DIR: &str = "sessions";

/// A pane's directory. Built only by [`Layout::pane`](crate::pane_dirs::layout::Layout::pane),
/// which checks the id first.
#[derive(Debug, Clone)]
pub(crate) struct PaneDir {
    id: String,
    root: PathBuf,
}

/// What must reach the user before a pane dir is removed: the handover
/// (`out_of_pane::handover`), run under the dir's lock by
/// [`PaneDir::remove_locked`]. A trait, so that pane dirs do not depend on
/// what is handed over: the handover uses `PaneDir`, never the reverse.
pub(crate) trait BeforeRemoval: std::fmt::Debug + Send + Sync {
    /// Hands over everything of `pane` (whose config dir the caller has
    /// checked to be a real dir of this user). An error means the dir must
    /// be kept: something in it is not the user's yet.
    fn hand_over(&self, pane: &PaneDir, config: &Path) -> Result<(), HookError>;
}

/// A successful [`PaneDir::claim`].
#[derive(Debug)]
pub(crate) struct Claimed {
    pub metadata: PaneMetadata,
    /// The dir was this owner's already (a restored or re-created pane),
    /// as opposed to made new by this claim.
    pub taken_back: bool,
}

/// What `.pane-metadata` says.
#[derive(Debug)]
pub(crate) enum MetadataState {
    Missing,
    /// Present but unusable; the reason.
    Invalid(String),
    Valid(PaneMetadata),
}

impl PaneDir {
    pub(crate) fn new(id: &str, root: PathBuf) -> Self {
        PaneDir {
            id: id.to_string(),
            root,
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The pane's `CLAUDE_CONFIG_DIR`.
    pub(crate) fn config_dir(&self) -> PathBuf {
        self.root.join(CONFIG_DIR)
    }

    pub(crate) fn sessions_dir(&self) -> PathBuf {
        self.root.join(SESSIONS_DIR)
    }

    pub(crate) fn metadata_path(&self) -> PathBuf {
        self.root.join(METADATA_FILE)
    }

    /// Whether the dir exists; an error if something other than a real
    /// directory of this user is in its place.
    pub(crate) fn exists(&self) -> Result<bool, HookError> {
        check_own_dir("the pane dir", &self.root)
    }

    pub(crate) fn read_metadata(&self) -> Result<MetadataState, HookError> {
        let path = self.metadata_path();
        let symlink = || refused("the pane metadata", &path, "it is a symbolic link");
        match entry(&path).map_err(|err| io_error("inspect", &path, &err))? {
            Entry::Missing => Ok(MetadataState::Missing),
            Entry::Symlink => Err(symlink()),
            Entry::Dir(_) | Entry::Other => Ok(MetadataState::Invalid(
                "it is not a regular file".to_string(),
            )),
            Entry::File => match read_bounded(&path, METADATA_SIZE_LIMIT, Links::Refuse) {
                Ok(bytes) => Ok(match PaneMetadata::parse(&bytes) {
                    Ok(metadata) => MetadataState::Valid(metadata),
                    Err(why) => MetadataState::Invalid(why),
                }),
                Err(ReadFailure::TooLarge(_)) => Ok(MetadataState::Invalid(format!(
                    "it is larger than {METADATA_SIZE_LIMIT} bytes"
                ))),
                Err(ReadFailure::NotRegular) => Ok(MetadataState::Invalid(
                    "it is not a regular file".to_string(),
                )),
                Err(ReadFailure::Io(err)) if err.raw_os_error() == Some(libc::ELOOP) => {
                    Err(symlink())
                }
                Err(ReadFailure::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {
                    Ok(MetadataState::Missing)
                }
                Err(ReadFailure::Io(err)) => Err(io_error("read", &path, &err)),
            },
        }
    }

    /// Makes the dir this pane's, for server `owner`: creates it, or takes
    /// back one this owner left (keeping its Claude session id), and writes
    /// the metadata. Refuses a dir that belongs to someone else or whose
    /// owner cannot be told.
    ///
    /// The check and the write happen under the pane's [`PaneLock`], so of
    /// several servers claiming one id at once exactly one wins and the
    /// others are refused as "belongs to another ccmux server".
    ///
    /// Every claim writes a fresh claim token (see [`PaneMetadata::claim`]),
    /// which a removal scheduled before it will not match.
    pub(crate) fn claim(&self, owner: &str, instance_id: &str) -> Result<Claimed, HookError> {
        let claim = new_claim()?;
        let CreatedLock { lock, created } = PaneLock::create_and_acquire(&self.root)?;
        let claimed = self.claim_locked(owner, instance_id, claim);
        if claimed.is_err() && created {
            // A claim that failed (a full disk while writing the metadata,
            // say) takes back the empty dir it made: left there, every
            // later start would warn about a dir without an owner.
            self.remove_unused_skeleton(&lock);
        }
        claimed
    }

    fn claim_locked(
        &self,
        owner: &str,
        instance_id: &str,
        claim: String,
    ) -> Result<Claimed, HookError> {
        if !self.exists()? {
            return Err(self.conflict("it disappeared while being claimed".to_string()));
        }
        let (metadata, taken_back) = match self.read_metadata()? {
            MetadataState::Valid(found) if found.owner != owner => {
                return Err(self.conflict(format!(
                    "it belongs to another ccmux server (identity {}). Pane ids must be unique \
                     per base dir: give each server its own `base_dir`, or remove the dir if \
                     that server is gone for good",
                    found.owner
                )))
            }
            MetadataState::Valid(found) if found.pane_id != self.id => {
                return Err(self.conflict(format!(
                    "its {METADATA_FILE} names pane {:?}; remove the dir",
                    found.pane_id
                )))
            }
            MetadataState::Valid(found) => (found.reclaimed(instance_id, claim), true),
            // A dir this claim just made, or what a crash between creating
            // a dir and writing its metadata leaves: nothing of anyone's to
            // lose, and no claim in progress (it would hold the lock).
            MetadataState::Missing if self.is_unused_skeleton()? => (
                PaneMetadata::new(&self.id, owner, instance_id, claim)?,
                false,
            ),
            MetadataState::Missing => {
                return Err(self.conflict(format!(
                    "it has no {METADATA_FILE}, so its owner is unknown; remove it if no ccmux \
                     server uses it"
                )))
            }
            MetadataState::Invalid(why) => {
                return Err(self.conflict(format!(
                    "its {METADATA_FILE} is unusable ({why}); remove the dir if no ccmux server \
                     uses it"
                )))
            }
        };
        // Metadata right after the dir itself: a crash in between leaves an
        // empty dir, which the next claim recognises as unused.
        ensure_private_dir("the pane dir", &self.root)?;
        write_private_file_atomic(&self.root, METADATA_FILE, &metadata.to_json()?)?;
        ensure_private_dir("the pane's Claude config dir", &self.config_dir())?;
        ensure_private_dir("the pane's sessions dir", &self.sessions_dir())?;
        Ok(Claimed {
            metadata,
            taken_back,
        })
    }

    /// Records in the metadata the profile the pane is in, at its first
    /// spawn, if the dir is still the one `claim` made (under the pane's
    /// lock, like every other change of the metadata).
    pub(crate) fn record_profile(
        &self,
        claim: &str,
        profile: &RecordedProfile,
    ) -> Result<(), HookError> {
        let Some(_lock) = self.lock()? else {
            return Err(self.conflict("it disappeared before its first spawn".to_string()));
        };
        match self.read_metadata()? {
            MetadataState::Valid(found) if found.claim == claim && found.pane_id == self.id => {
                let recorded = PaneMetadata {
                    profile: Some(profile.name.clone()),
                    profile_dir: profile.dir.clone(),
                    ..found
                };
                write_private_file_atomic(&self.root, METADATA_FILE, &recorded.to_json()?)
            }
            _ => Err(self.conflict(format!(
                "its {METADATA_FILE} changed since the pane was created (claimed again by another plugin instance?)"
            ))),
        }
    }

    /// Removes the dir if it holds nothing but what an interrupted claim
    /// leaves (see [`is_unused_skeleton`](Self::is_unused_skeleton)); for a
    /// caller holding its lock. Failures are logged: the dir is then what
    /// the orphan scan cleans.
    pub(crate) fn remove_unused_skeleton(&self, _lock: &PaneLock) -> bool {
        match self.is_unused_skeleton() {
            Ok(true) => match fs::remove_dir_all(&self.root) {
                Ok(()) => true,
                Err(err) => {
                    tracing::warn!(path = %self.root.display(), "could not remove an empty pane dir: {err}");
                    false
                }
            },
            Ok(false) => false,
            Err(err) => {
                tracing::warn!("leaving a pane dir: {err}");
                false
            }
        }
    }

    /// Locks the dir (see [`PaneLock`]); `None` if there is none.
    pub(crate) fn lock(&self) -> Result<Option<PaneLock>, HookError> {
        PaneLock::acquire(&self.root)
    }

    fn conflict(&self, problem: String) -> HookError {
        HookError::new(
            HookErrorKind::Failed,
            format!(
                "cannot isolate pane {} in {}: {problem}",
                self.id,
                self.root.display()
            ),
        )
    }

    /// The `config/` dir, checked to be a real directory of this user.
    pub(crate) fn existing_config_dir(&self) -> Result<Option<PathBuf>, HookError> {
        let config = self.config_dir();
        if !self.exists()? || !check_own_dir("the pane's Claude config dir", &config)? {
            return Ok(None);
        }
        Ok(Some(config))
    }

    /// True if the dir holds nothing but what an interrupted claim leaves:
    /// metadata temp files and *empty* `config/` and `sessions/` dirs.
    /// Only such a dir may be taken (by a claim) or removed (by the orphan
    /// scan's `max_age_secs`) without metadata naming its owner: anything
    /// more may be someone's conversation history.
    pub(crate) fn is_unused_skeleton(&self) -> Result<bool, HookError> {
        self.entries_all(|name, path| {
            if is_temp_file_of(name, METADATA_FILE) {
                return Ok(true);
            }
            if name != CONFIG_DIR && name != SESSIONS_DIR {
                return Ok(false);
            }
            // `entry` does not follow a link: a `config` that is a link to an
            // empty dir elsewhere is not an empty `config/`.
            match entry(path).map_err(|err| io_error("inspect", path, &err))? {
                Entry::Dir(_) => {}
                _ => return Ok(false),
            }
            let mut inner = fs::read_dir(path).map_err(|err| io_error("list", path, &err))?;
            Ok(inner.next().is_none())
        })
    }

    fn entries_all(
        &self,
        mut accept: impl FnMut(&str, &Path) -> Result<bool, HookError>,
    ) -> Result<bool, HookError> {
        let entries = fs::read_dir(&self.root).map_err(|err| io_error("list", &self.root, &err))?;
        for dir_entry in entries {
            let dir_entry = dir_entry.map_err(|err| io_error("list", &self.root, &err))?;
            let name = dir_entry.file_name();
            let Some(name) = name.to_str() else {
                return Ok(false);
            };
            if !accept(name, &dir_entry.path())? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// When the pane was last used: the newest modification time of the
    /// dir, its metadata, `config/` and Claude's `.claude.json` (which a
    /// running Claude rewrites constantly).
    pub(crate) fn last_activity(&self) -> Option<SystemTime> {
        let config = self.config_dir();
        [
            self.root.clone(),
            self.metadata_path(),
            config.join(CLAUDE_JSON),
            config,
        ]
        .iter()
        .filter_map(|path| fs::symlink_metadata(path).ok()?.modified().ok())
        .max()
    }

    /// Removes the dir if its metadata still names `owner`, this pane and
    /// `claim` (the claim the removal was scheduled for). It is read right
    /// before removing, under the pane's lock: a different claim means the
    /// dir was claimed again since, by another plugin instance of this
    /// server (a reload), and is kept. Returns whether it was removed.
    pub(crate) fn remove_if_claimed(
        &self,
        owner: &str,
        claim: &str,
        reason: &str,
        handover: Option<&dyn BeforeRemoval>,
    ) -> Result<bool, HookError> {
        let Some(lock) = self.lock()? else {
            return Ok(false);
        };
        if !self.exists()? {
            return Ok(false);
        }
        match self.read_metadata()? {
            MetadataState::Valid(found) if found.owner != owner || found.pane_id != self.id => {
                tracing::info!(
                    pane = %self.id,
                    path = %self.root.display(),
                    owner = %found.owner,
                    names_pane = %found.pane_id,
                    "keeping pane dir: it belongs to another server or pane"
                );
                Ok(false)
            }
            MetadataState::Valid(found) if found.claim != claim => {
                tracing::info!(
                    pane = %self.id,
                    path = %self.root.display(),
                    "keeping pane dir: it was re-claimed since its pane closed"
                );
                Ok(false)
            }
            MetadataState::Valid(_) => self.remove_locked(&lock, reason, handover),
            MetadataState::Missing | MetadataState::Invalid(_) => {
                tracing::warn!(
                    pane = %self.id,
                    path = %self.root.display(),
                    "keeping pane dir: its {METADATA_FILE} is missing or unreadable, so its owner is unknown; remove it by hand if unused"
                );
                Ok(false)
            }
        }
    }

    /// Removes the dir and everything in it, logging why; for a caller
    /// holding its lock, which has judged it under that lock. Symlinks
    /// inside are removed, never followed (`remove_dir_all` guarantees it),
    /// and the dir itself is checked to be a real directory first.
    ///
    /// With a `handover`, the pane's `.claude.json` changes and whatever
    /// it holds pane-locally of the user's data go to the user first; if
    /// that fails, the dir is kept (the error says why) and nothing is
    /// lost.
    pub(crate) fn remove_locked(
        &self,
        _lock: &PaneLock,
        reason: &str,
        handover: Option<&dyn BeforeRemoval>,
    ) -> Result<bool, HookError> {
        if !self.exists()? {
            return Ok(false);
        }
        if let Some(handover) = handover {
            let config = self.config_dir();
            if check_own_dir("the pane's Claude config dir", &config)? {
                handover.hand_over(self, &config).map_err(|err| {
                    HookError::new(
                        err.kind,
                        format!(
                            "keeping pane dir {}: what it holds of the user's could not all be handed over first: {}",
                            self.root.display(),
                            err.message
                        ),
                    )
                })?;
            }
        }
        self.remove_checked(reason)
    }

    /// `remove` for a dir already checked to exist.
    fn remove_checked(&self, reason: &str) -> Result<bool, HookError> {
        fs::remove_dir_all(&self.root).map_err(|err| io_error("remove", &self.root, &err))?;
        tracing::info!(pane = %self.id, path = %self.root.display(), reason, "removed pane dir");
        Ok(true)
    }
}
