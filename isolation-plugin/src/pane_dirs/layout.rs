//! Where things live under the base dir.
//!
//! ```text
//! {base}/                         0700; created if missing
//!   .owners/{server_id}.lock      one per server identity, locked while it runs
//!   .unowned/{pane-id}-{unix}/    pane dirs without metadata, set aside by the orphan scan
//!   .claude-json-backups/         the user's .claude.json before each merge
//!   .pending-carry-back/{ms}-{pane}/  a pane's .claude.json and seed record whose merge failed
//!   .pending-carry-back.{key}/      the same two for any other user file (a named
//!   .claude-json-backups.{key}/       profile's, a CLAUDE_CONFIG_DIR's): key = a hash of its path
//!   {pane-id}/                    one per pane: see PaneDir
//! ```
//!
//! Names starting with a dot are never pane dirs (pane ids cannot start
//! with one), which is what keeps `.owners` out of the orphan scan.

use std::path::{Path, PathBuf};

use ccmux_plugin_api::{check_pane_id, HookError};

use std::os::unix::ffi::OsStrExt;

use crate::floor::errors::{invalid_pane_id, io_error};
use crate::floor::private_fs::{create_private_dir, ensure_private_dir, entry, Entry};
use crate::pane_dirs::pane_dir::PaneDir;

pub(crate) const OWNERS_DIR: &str = ".owners";
/// A pane's `.claude.json` changes whose merge failed, kept for later.
pub(crate) const PENDING_CARRY_BACK_DIR: &str = ".pending-carry-back";
/// Backups of the user's `.claude.json`, one per merge, bounded.
pub(crate) const CLAUDE_JSON_BACKUPS_DIR: &str = ".claude-json-backups";
/// Where the orphan scan moves pane dirs that have content but no owner.
pub(crate) const UNOWNED_DIR: &str = ".unowned";

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    base: PathBuf,
}

impl Layout {
    /// `base` must be absolute (config resolution guarantees it).
    pub(crate) fn new(base: PathBuf) -> Self {
        Layout { base }
    }

    pub(crate) fn base(&self) -> &Path {
        &self.base
    }

    /// The dir of pane `pane_id`. The id is checked before any path is
    /// built from it: an id such as `../x` must never reach `join`.
    pub(crate) fn pane(&self, pane_id: &str) -> Result<PaneDir, HookError> {
        check_pane_id(pane_id).map_err(|err| invalid_pane_id(&err))?;
        Ok(PaneDir::new(pane_id, self.base.join(pane_id)))
    }

    /// Merges that failed into the user file `claude_json`, kept until
    /// they go in. `usual`: it is the user's `~/.claude.json` (no
    /// `CLAUDE_CONFIG_DIR`), whose store keeps the name from before
    /// profiles, so what is pending there stays found.
    pub(crate) fn pending_carry_backs(&self, claude_json: &Path, usual: bool) -> PathBuf {
        self.base
            .join(Self::of_file(PENDING_CARRY_BACK_DIR, claude_json, usual))
    }

    /// Where the user file `claude_json` is kept before each merge.
    pub(crate) fn claude_json_backups(&self, claude_json: &Path, usual: bool) -> PathBuf {
        self.base
            .join(Self::of_file(CLAUDE_JSON_BACKUPS_DIR, claude_json, usual))
    }

    /// One store per user file, whatever profile name reaches it (in a
    /// server started inside a pane of profile `work`, `default` is work's
    /// dir): `dir` for the usual file, `dir.{key}` for the others, the key
    /// a stable hash of the file's path.
    fn of_file(dir: &str, claude_json: &Path, usual: bool) -> String {
        if usual {
            dir.to_string()
        } else {
            format!("{dir}.{:016x}", fnv1a(claude_json.as_os_str().as_bytes()))
        }
    }

    pub(crate) fn unowned_dir(&self) -> PathBuf {
        self.base.join(UNOWNED_DIR)
    }

    pub(crate) fn owners_dir(&self) -> PathBuf {
        self.base.join(OWNERS_DIR)
    }

    /// Creates the base dir (and missing parents, 0700) or checks the
    /// existing one: a real directory of this user, made private.
    pub(crate) fn ensure_base(&self) -> Result<(), HookError> {
        // Missing components one by one, top down, each made 0700 as soon
        // as it exists: `DirBuilder::recursive` would leave the umask's
        // mode on them (0500 under umask 0277, and then creating the next
        // one fails). Existing ancestors are the user's and left as they are.
        let base_missing = matches!(
            entry(&self.base).map_err(|err| io_error("inspect", &self.base, &err))?,
            Entry::Missing
        );
        if base_missing {
            for dir in self.missing_ancestors()?.iter().rev() {
                create_private_dir("a parent of the isolation base dir", dir)?;
            }
        }
        ensure_private_dir("the isolation base dir", &self.base)
    }

    /// The ancestors of the base dir that do not exist, nearest first.
    fn missing_ancestors(&self) -> Result<Vec<&Path>, HookError> {
        let mut missing = Vec::new();
        let mut next = self.base.parent();
        while let Some(dir) = next {
            match entry(dir).map_err(|err| io_error("inspect", dir, &err))? {
                Entry::Missing => missing.push(dir),
                _ => break,
            }
            next = dir.parent();
        }
        Ok(missing)
    }

    pub(crate) fn ensure_owners_dir(&self) -> Result<PathBuf, HookError> {
        self.ensure_base()?;
        let dir = self.owners_dir();
        ensure_private_dir("the owner lock dir", &dir)?;
        Ok(dir)
    }
}
/// FNV-1a, 64 bits: a name for a path that stays the same across
/// versions and machines (std's hashers promise neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
