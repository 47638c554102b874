//! PendingCarryBacks: a pane's `.claude.json` changes that are not in the
//! user's file yet, kept (as the pane's final `.claude.json` and its seed
//! record, a few kilobytes) until they go in.
//!
//! ```text
//! {base}/.pending-carry-back/              0700
//!   {ms:020}-{pane-id}[.n]/                one per pane, in time order by name
//!     .claude.json  .claude-json.seed
//!     target                               the user file it goes into (its path)
//!     held                                 only if held for the user (see below)
//! ```
//!
//! Two kinds of entry:
//! - *to merge*: the merge failed (the user's file was invalid, a link,
//!   locked), or the server stopped before it could look again at a merge
//!   it had just made (see `verify`). Every server start merges these,
//!   together, and drops each one that went in.
//! - *held*: the guard rails held some of the pane's changes back (a reset,
//!   a value of the wrong type; see `carry_back`). The rest went in; these
//!   wait for the user, who lists, applies or drops them with
//!   `host-shim carry-back`. The `held` file says why, for people.
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

use std::ffi::OsStr;
use std::fs::{self, File, TryLockError};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ccmux_plugin_api::{check_pane_id, HookError};

use crate::classification::CLAUDE_JSON;
use crate::floor::errors::io_error;
use crate::floor::private_fs::{
    check_own_dir, create_private_dir, create_private_file, ensure_private_dir, entry,
    open_dir_nofollow, read_bounded, Entry, Links, ReadFailure,
};
use crate::floor::process::process_is_gone;
use crate::into_pane::seed::{describe_read_failure, SEED_RECORD};
use crate::user_data::rescue::move_no_replace;

/// The largest pane file kept or read back from the store. A pane's
/// `.claude.json` is its seed (the user's setup, compact) plus what its
/// Claude added (the pane's own projects' history): a few megabytes at
/// most. Past this, it is refused without being read.
pub(crate) const PANE_FILE_LIMIT: u64 = 64 << 20;

/// The file that marks an entry held for the user, and says why.
pub(crate) const HELD: &str = "held";

/// The file that names the user's `.claude.json` an entry goes into: it
/// goes into no other, whichever store it is found in. Entries kept before
/// profiles have none, and go into their store's file, as they did then.
pub(crate) const TARGET: &str = "target";

/// A target is a path; anything longer is not one this plugin wrote.
const TARGET_LIMIT: u64 = 64 * 1024;

/// Flushes a file just written, so an entry named whole holds its bytes.
fn sync(path: &Path) -> Result<(), HookError> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|err| io_error("flush to disk", path, &err))
}

/// The files an entry holds.
const FILES: [&str; 4] = [CLAUDE_JSON, SEED_RECORD, HELD, TARGET];

#[derive(Debug, Clone)]
pub(crate) struct PendingCarryBacks {
    dir: PathBuf,
    /// The user's `.claude.json` this store's entries go into.
    target: PathBuf,
}

/// One kept entry.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub path: PathBuf,
    pub pane_id: String,
    /// Its name in the store, which the user gives `host-shim carry-back`.
    pub name: String,
}

/// A pane's two files as read: its `.claude.json` at close and the record
/// of its seed (`None`: the pane had none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaneFiles {
    pub pane_id: String,
    pub final_file: Vec<u8>,
    pub seed: Option<Vec<u8>>,
}

impl Pending {
    /// Whether the entry is held for the user (not merged by server starts).
    pub(crate) fn is_held(&self) -> bool {
        matches!(entry(&self.path.join(HELD)), Ok(Entry::File))
    }

    /// Its two files; `None` for the `.claude.json` when it is missing.
    pub(crate) fn read(&self) -> Result<Option<PaneFiles>, HookError> {
        let Some(final_file) = read_kept(&self.path.join(CLAUDE_JSON))? else {
            return Ok(None);
        };
        let seed = read_kept(&self.path.join(SEED_RECORD))?;
        Ok(Some(PaneFiles {
            pane_id: self.pane_id.clone(),
            final_file,
            seed,
        }))
    }

    /// Why the entry is held for the user, as its `held` file says; `None`
    /// if it is not held.
    pub(crate) fn held_reason(&self) -> Option<String> {
        if !self.is_held() {
            return None;
        }
        let why = read_kept(&self.path.join(HELD))
            .ok()
            .flatten()
            .unwrap_or_default();
        Some(String::from_utf8_lossy(&why).trim().to_string())
    }

    /// Marks the entry held for the user; `why` is for people reading it.
    pub(crate) fn hold(&self, why: &str) -> Result<(), HookError> {
        if self.is_held() {
            return Ok(());
        }
        create_private_file(&self.path, HELD, why.as_bytes())?;
        Ok(())
    }
}

/// A file of the store, bounded; `None` if missing.
fn read_kept(path: &Path) -> Result<Option<Vec<u8>>, HookError> {
    match read_bounded(path, PANE_FILE_LIMIT, Links::Refuse) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(ReadFailure::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(failure) => Err(io_error(
            "read",
            path,
            &std::io::Error::other(describe_read_failure(&failure)),
        )),
    }
}

impl PendingCarryBacks {
    pub(crate) fn new(dir: PathBuf, target: PathBuf) -> Self {
        PendingCarryBacks { dir, target }
    }

    /// Keeps a pane's two files as a new entry, held for the user if
    /// `held` says why; returns it. The pane's own files are the caller's:
    /// they stay until this has returned, so an I/O error or a kill in
    /// between leaves them where the next removal finds them.
    pub(crate) fn keep(&self, files: &PaneFiles, held: Option<&str>) -> Result<Pending, HookError> {
        let pane_id = files.pane_id.as_str();
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
        let contents = [
            (CLAUDE_JSON, Some(files.final_file.as_slice())),
            (SEED_RECORD, files.seed.as_deref()),
            (HELD, held.map(str::as_bytes)),
            (TARGET, Some(self.target.as_os_str().as_bytes())),
        ];
        for (name, bytes) in contents {
            let Some(bytes) = bytes else { continue };
            let written =
                create_private_file(&temp, name, bytes).and_then(|_| sync(&temp.join(name)));
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
            let name = format!("{millis:020}-{pane_id}{suffix}");
            let kept = self.dir.join(&name);
            if move_no_replace(&temp, &kept, pane_id)? {
                return Ok(Pending {
                    path: kept,
                    pane_id: pane_id.to_string(),
                    name,
                });
            }
        }
        Err(io_error(
            "name",
            &temp,
            &std::io::Error::other("1000 names taken"),
        ))
    }

    /// Whether the store is there (a real dir or not).
    pub(crate) fn exists(&self) -> bool {
        !matches!(entry(&self.dir), Ok(Entry::Missing))
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
    /// Only real dirs named as this store names them, and that go into this
    /// store's file: one recorded for another file (a store shared by two
    /// accounts' files before stores were one per file) is left where it
    /// is, with a warning, never merged into this one.
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
                if !matches!(entry(&path), Ok(Entry::Dir(_))) {
                    return None;
                }
                match read_bounded(&path.join(TARGET), TARGET_LIMIT, Links::Refuse) {
                    Ok(target) if Path::new(OsStr::from_bytes(&target)) != self.target => {
                        tracing::warn!(
                            entry = %path.display(),
                            goes_into = %String::from_utf8_lossy(&target),
                            "a pending carry-back for another user file is in the store of {}: left alone",
                            self.target.display()
                        );
                        return None;
                    }
                    Ok(_) => {}
                    Err(ReadFailure::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(failure) => {
                        tracing::warn!(
                            entry = %path.display(),
                            "a pending carry-back whose target cannot be read ({}): left alone",
                            describe_read_failure(&failure)
                        );
                        return None;
                    }
                }
                Some(Pending {
                    path,
                    pane_id,
                    name,
                })
            })
            .collect();
        pending.sort_by(|a, b| a.path.cmp(&b.path));
        pending
    }

    /// The entry called `name` (as [`list`](Self::list) names it).
    pub(crate) fn find(&self, lock: &File, name: &str) -> Option<Pending> {
        self.list(lock)
            .into_iter()
            .find(|pending| pending.name == name)
    }

    /// Removes an entry that went in (or that the user dropped): its files,
    /// then the dir if that left it empty (anything else in it stays, with
    /// a warning).
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
