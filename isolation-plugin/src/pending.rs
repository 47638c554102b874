//! PendingCarryBacks: a pane's `.claude.json` changes whose merge into the
//! user's file failed, kept (as the pane's final `.claude.json` and its
//! seed record, a few kilobytes) until a later server start merges them.
//!
//! ```text
//! {base}/.pending-carry-back/              0700
//!   {ms:020}-{pane-id}[.n]/                one per failed merge, in time order by name
//!     .claude.json  .claude-json.seed
//! ```
//!
//! Why not keep the pane's dir instead: a merge can fail for as long as the
//! user's file stays unmergeable (invalid, a link), and whole pane dirs
//! would pile up meanwhile.
//!
//! Each entry is built from copies under a temp name and renamed into
//! place whole, so a server merging pendings never sees one half made, and
//! the pane's own files stay until it is (a temp entry whose builder died
//! is cleared at the next merging pass). One server merges at a
//! time (an `flock` on the store dir, never waited on: another server
//! already merging them is enough). Nothing in the store is removed but
//! the two files of an entry that went in, and its then empty dir; the
//! store itself must be a real dir of this user (a link there is refused),
//! so nothing outside it is ever touched.

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ccmux_plugin_api::{check_pane_id, HookError};

use crate::errors::io_error;
use crate::private_fs::{
    check_own_dir, create_private_dir, create_private_file, ensure_private_dir, entry,
    open_dir_nofollow, read_bounded, Entry, Links, ReadFailure,
};
use crate::process::process_is_gone;
use crate::rescue::move_no_replace;
use crate::seed::{describe_read_failure, CLAUDE_JSON, SEED_RECORD, USER_CLAUDE_JSON_LIMIT};

/// Flushes a file just written, so an entry named whole holds its bytes.
fn sync(path: &Path) -> Result<(), HookError> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|err| io_error("flush to disk", path, &err))
}

/// The two files an entry holds.
const FILES: [&str; 2] = [CLAUDE_JSON, SEED_RECORD];

#[derive(Debug)]
pub(crate) struct PendingCarryBacks {
    dir: PathBuf,
}

/// One kept merge.
pub(crate) struct Pending {
    pub path: PathBuf,
    pub pane_id: String,
}

impl PendingCarryBacks {
    pub(crate) fn new(dir: PathBuf) -> Self {
        PendingCarryBacks { dir }
    }

    /// Keeps the pane's two files (moved, not copied) as a new entry;
    /// returns its path.
    pub(crate) fn keep(
        &self,
        pane_id: &str,
        final_file: &Path,
        seed_record: &Path,
    ) -> Result<PathBuf, HookError> {
        if let Some(base) = self.dir.parent() {
            if !base.is_dir() {
                create_private_dir("the isolation base dir", base)?;
            }
        }
        ensure_private_dir("the pending carry-backs dir", &self.dir)?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let temp = self
            .dir
            .join(format!(".tmp-{millis}-{}-{pane_id}", std::process::id()));
        if !create_private_dir("a pending carry-back", &temp)? {
            return Err(io_error(
                "create",
                &temp,
                &std::io::Error::other("it exists already"),
            ));
        }
        // Copied, not moved: the pane's own files stay until the entry is
        // whole under its name, so an I/O error or a kill in between leaves
        // them where the next removal finds them.
        for (from, name) in [(final_file, CLAUDE_JSON), (seed_record, SEED_RECORD)] {
            let bytes = match read_bounded(from, USER_CLAUDE_JSON_LIMIT, Links::Refuse) {
                Ok(bytes) => bytes,
                Err(ReadFailure::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(failure) => {
                    return Err(io_error(
                        "keep",
                        from,
                        &std::io::Error::other(describe_read_failure(&failure)),
                    ))
                }
            };
            let written =
                create_private_file(&temp, name, &bytes).and_then(|_| sync(&temp.join(name)));
            if let Err(err) = written {
                self.discard(&temp);
                return Err(err);
            }
        }
        for n in 0..1000 {
            // A dot cannot be in a pane id: the suffix is never mistaken.
            let suffix = if n == 0 {
                String::new()
            } else {
                format!(".{n}")
            };
            let kept = self.dir.join(format!("{millis:020}-{pane_id}{suffix}"));
            if move_no_replace(&temp, &kept, pane_id)? {
                return Ok(kept);
            }
        }
        Err(io_error(
            "name",
            &temp,
            &std::io::Error::other("1000 names taken"),
        ))
    }

    /// Takes the store for a merging pass; `None` when there is nothing to
    /// merge, the store is not usable (said once, here), or another server
    /// is merging it now.
    pub(crate) fn lock(&self) -> Option<File> {
        match check_own_dir("the pending carry-backs dir", &self.dir) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(err) => {
                tracing::warn!("not merging pending carry-backs: {err}");
                return None;
            }
        }
        let dir = match open_dir_nofollow("the pending carry-backs dir", &self.dir) {
            Ok(dir) => dir,
            Err(err) => {
                tracing::warn!("not merging pending carry-backs: {err}");
                return None;
            }
        };
        match dir.try_lock() {
            Ok(()) => Some(dir),
            Err(TryLockError::WouldBlock) => None,
            Err(TryLockError::Error(err)) => {
                tracing::warn!(path = %self.dir.display(), "not merging pending carry-backs: cannot lock: {err}");
                None
            }
        }
    }

    /// Removes an entry still being built: its two files, then the dir.
    fn discard(&self, temp: &Path) {
        for name in FILES {
            let _ = fs::remove_file(temp.join(name));
        }
        let _ = fs::remove_dir(temp);
    }

    /// Removes temp entries whose builder is gone (a server killed while
    /// keeping changes): they hold copies, the pane's own files were not
    /// removed before the entry was whole. For a caller holding
    /// [`lock`](Self::lock).
    pub(crate) fn clear_abandoned(&self, _lock: &File) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for dir_entry in entries.flatten() {
            let Some(name) = dir_entry.file_name().into_string().ok() else {
                continue;
            };
            // `.tmp-{ms}-{pid}-{pane}`
            let pid = name
                .strip_prefix(".tmp-")
                .and_then(|rest| rest.split('-').nth(1))
                .and_then(|pid| pid.parse::<u32>().ok());
            let path = dir_entry.path();
            if let Some(pid) = pid {
                if process_is_gone(pid) && matches!(entry(&path), Ok(Entry::Dir(_))) {
                    self.discard(&path);
                }
            }
        }
    }

    /// The entries, oldest first; for a caller holding [`lock`](Self::lock).
    /// Only real dirs named as this store names them.
    pub(crate) fn list(&self, _lock: &File) -> Vec<Pending> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut pending: Vec<Pending> = entries
            .flatten()
            .filter_map(|dir_entry| {
                let name = dir_entry.file_name().into_string().ok()?;
                let pane_id = pane_id_of(&name)?;
                let path = dir_entry.path();
                matches!(entry(&path), Ok(Entry::Dir(_))).then_some(Pending { path, pane_id })
            })
            .collect();
        pending.sort_by(|a, b| a.path.cmp(&b.path));
        pending
    }

    /// Removes an entry that went in: its two files, then the dir if that
    /// left it empty (anything else in it stays, with a warning).
    pub(crate) fn drop_merged(&self, pending: &Pending) {
        for name in FILES {
            let _ = fs::remove_file(pending.path.join(name));
        }
        if let Err(err) = fs::remove_dir(&pending.path) {
            tracing::warn!(path = %pending.path.display(), "merged, but the pending entry holds something else and stays: {err}");
        }
    }
}

/// The pane id in an entry's name `{20 digits}-{pane-id}[.n]`; `None` for
/// any other name (temp entries, stray files).
fn pane_id_of(name: &str) -> Option<String> {
    let (millis, rest) = name.split_at_checked(20)?;
    if !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_prefix('-')?;
    let id = match rest.split_once('.') {
        Some((id, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => id,
        Some(_) => return None,
        None => rest,
    };
    check_pane_id(id).ok()?;
    Some(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::pane_id_of;

    #[test]
    fn only_the_stores_own_names_are_entries() {
        assert_eq!(
            pane_id_of("00000001767225600000-main_0_1").as_deref(),
            Some("main_0_1")
        );
        assert_eq!(
            pane_id_of("00000001767225600000-work-2.3").as_deref(),
            Some("work-2")
        );
        for other in [
            ".tmp-1-2-main_0_1",
            "photos",
            "1767225600000-main_0_1",
            "00000001767225600000-../x",
        ] {
            assert_eq!(pane_id_of(other), None, "{other}");
        }
    }
}
