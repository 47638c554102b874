//! UserClaudeJson: writing a pane's changes into the user's own
//! `.claude.json`, the one file of the user's that this plugin ever
//! rewrites, and so with every care:
//!
//! - only the items a pane changed are touched (see `carry_back`); a pane
//!   that changed nothing writes nothing;
//! - merges of several panes are serialized by a lock in the user's Claude
//!   dir (`.ccmux-claude-json.lock`), and each takes Claude's own lock on
//!   the file (`.claude.json.lock`, a directory, as Claude's lock library
//!   makes it) around its last look and its rename, so a Claude saving
//!   right then finishes first. Claude does not wait for that lock (it
//!   saves without it when it is held), so the merge does not rely on it:
//! - the file is re-read, changed, written to a temp file in the same dir
//!   (mode and owner kept), fsynced and renamed over it; if the file
//!   changed between the read and the rename, the merge starts again. A
//!   moment after the rename the file is read once more: if a Claude
//!   outside ccmux saved its own copy over the merge, the merge starts
//!   again. After a few tries it gives up, and the caller keeps the
//!   pane's changes pending;
//! - the file as it was is kept first in the plugin's backups dir, bounded
//!   in count and size;
//! - a file that is not valid JSON, not a regular file, too large, or a
//!   link is never written: the merge fails, and the caller keeps the
//!   pane's changes pending for a later try.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions, Permissions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ccmux_plugin_api::{HookError, HookErrorKind};
use serde_json::{Map, Value};

use crate::floor::errors::io_error;
use crate::floor::private_fs::{
    create_new_file, create_private_dir, ensure_private_dir, entry, read_bounded, Entry, Links,
    FILE_MODE,
};
use crate::floor::process::process_is_gone;
use crate::into_pane::seed::{describe_read_failure, PROJECTS, USER_CLAUDE_JSON_LIMIT};
use crate::into_pane::seed::{list, Unreadable, PER_ENTRY};
use crate::out_of_pane::carry_back::{apply, blocked, Applied, Change, ItemPath, Precedence};
use crate::out_of_pane::json_edit::{is_object_text, RawObject};

/// Tries at a merge whose file changed under it.
const ATTEMPTS: usize = 5;
/// How long a merge waits for another pane's merge. Past it, the pane's
/// dir is kept and the merge is tried again at the next server start: a
/// stuck holder must not hold up closing panes and stopping the server.
const MERGE_LOCK_WAIT: Duration = Duration::from_secs(10);
/// How long it waits for a Claude holding the file's own lock. Claude
/// itself never waits for it (it writes without the lock when it cannot
/// take it), so this is a courtesy, kept short.
const CLAUDE_LOCK_WAIT: Duration = Duration::from_millis(500);
/// The backups kept of the user's file, at most.
const BACKUPS_KEPT: usize = 10;
const BACKUPS_MAX_BYTES: u64 = 512 << 20;

/// The plugin's merge lock, in the user's Claude dir.
const MERGE_LOCK: &str = ".ccmux-claude-json.lock";

/// The user's file as read: its members (raw but for what a merge opens),
/// and the bytes it was parsed from (for the backup).
struct ReadFile {
    object: RawObject,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(crate) struct UserClaudeJson {
    /// The user's `.claude.json`.
    pub path: PathBuf,
    /// The user's Claude dir, where the merge lock lives.
    pub user_dir: PathBuf,
    /// Where the file is kept before each merge.
    pub backups: PathBuf,
}

/// One pane's changes to merge, and how.
#[derive(Debug, Clone)]
pub(crate) struct MergeJob {
    pub pane_id: String,
    pub changes: Vec<Change>,
    pub precedence: Precedence,
    /// Refuse a value of another JSON type than the user's (off only when
    /// a person applies a change that was held back).
    pub check_types: bool,
}

impl UserClaudeJson {
    /// Writes the changes of `jobs`, in order, into the user's file, in one
    /// write shared with every other merge into the same file this process
    /// makes at the same time. One [`Applied`] per job; all or none of the
    /// jobs went in.
    pub(crate) fn merge(&self, jobs: Vec<MergeJob>) -> Result<Vec<Applied>, HookError> {
        if jobs.iter().all(|job| job.changes.is_empty()) {
            return Ok(jobs.iter().map(|_| Applied::default()).collect());
        }
        MergeQueue::of(&self.path).submit(jobs, |all| self.merge_now(all))
    }

    /// `changes` without those a write of this process made after `write`
    /// changed again: a later pane's choice, which the looks after the
    /// earlier merge must not undo.
    pub(crate) fn still_ours(&self, write: u64, changes: Vec<Change>) -> Vec<Change> {
        let queue = MergeQueue::of(&self.path);
        let state = queue.lock();
        changes
            .into_iter()
            .filter(|change| {
                state
                    .last_write
                    .get(&change.path.to_string())
                    .is_none_or(|last| *last <= write)
            })
            .collect()
    }

    /// One read-modify-write of the user's file for `jobs`, under the
    /// merge lock.
    fn merge_now(&self, jobs: &[MergeJob]) -> Result<Vec<Applied>, HookError> {
        let _merge_lock = self.merge_lock()?;
        self.clear_abandoned_temps();
        for attempt in 0..ATTEMPTS {
            // After two tries that a save came between, Claude's lock is
            // held from before the read, so a Claude saving often cannot
            // starve the merge (it saves without the lock meanwhile, which
            // the looks after the rename catch).
            let mut claude_lock = (attempt >= 2).then(|| ClaudeLock::take(&self.path));
            let before = Stamp::of(&self.path)?;
            let (mut file, original) = match self.read() {
                Ok(Some(ReadFile { object, bytes })) => (object, Some(bytes)),
                Ok(None) => (RawObject::default(), None),
                // Caught halfway through another writer's in-place write
                // (which can leave the file empty for a moment, its stamp
                // not yet changed): read again.
                Err(_) if self.changed_in_a_moment(before.as_ref())? => continue,
                Err(err) => return Err(err),
            };
            let all: Vec<&Change> = jobs.iter().flat_map(|job| &job.changes).collect();
            let Projection {
                mut view,
                unreadable,
            } = projection(&file, &all);
            let applied = apply_jobs(&mut view, jobs, &unreadable);
            if !unreadable.is_empty() {
                tracing::warn!(
                    path = %self.path.display(),
                    "not carrying back into these items of the user's .claude.json, which cannot be read as they stand (fix them, and the change is merged at the next server start): {}",
                    list(&unreadable)
                );
            }
            if applied.iter().all(|applied| applied.written == 0) {
                return Ok(applied);
            }
            let writable: Vec<&Change> = all
                .into_iter()
                .filter(|change| !blocked(&unreadable, &change.path))
                .collect();
            write_back(&mut file, &view, &writable).map_err(|err| self.unparsable(&err))?;
            let bytes = file.to_pretty_bytes().map_err(|err| {
                HookError::new(
                    HookErrorKind::Failed,
                    format!("could not serialize {}: {err}", self.path.display()),
                )
            })?;
            let temp = self.write_temp(&bytes, before.as_ref())?;
            // Claude's own lock (at first) only around the last look and the
            // rename: a Claude saving now holds it through its read and
            // write, so waiting for it and then looking sees its save. Held
            // longer, it would send Claudes saving meanwhile down their path
            // without the lock.
            let claude_lock = claude_lock
                .take()
                .unwrap_or_else(|| ClaudeLock::take(&self.path));
            // The last look: a save since the read means merging again.
            if Stamp::of(&self.path)? != before {
                let _ = fs::remove_file(&temp);
                continue;
            }
            // The file as it is now, and was read, is kept before it is
            // replaced; a backup that did not replace anything goes again.
            let backup = original.as_deref().and_then(|bytes| self.back_up(bytes));
            if let Err(err) = fs::rename(&temp, &self.path) {
                let _ = fs::remove_file(&temp);
                if let Some(backup) = backup {
                    let _ = fs::remove_file(backup);
                }
                return Err(io_error("replace", &self.path, &err));
            }
            if let Some(dir) = self.path.parent() {
                if let Ok(dir) = File::open(dir) {
                    let _ = dir.sync_all();
                }
            }
            drop(claude_lock);
            prune_backups(&self.backups);
            return Ok(applied);
        }
        Err(HookError::new(
            HookErrorKind::Failed,
            format!(
                "{} kept changing while the pane's changes were merged into it ({ATTEMPTS} tries); \
                 they are kept and merged at the next try",
                self.path.display()
            ),
        ))
    }

    /// Whether the file's stamp is, or within a moment becomes, other than
    /// `before`: a writer was halfway through it.
    fn changed_in_a_moment(&self, before: Option<&Stamp>) -> Result<bool, HookError> {
        for _ in 0..3 {
            if Stamp::of(&self.path)?.as_ref() != before {
                return Ok(true);
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(false)
    }

    /// Whether the user's file still holds every change of `jobs`
    /// (applying them again would write nothing). For the looks after a
    /// merge: `false` when the file cannot be read now.
    pub(crate) fn still_applied(&self, jobs: &[MergeJob]) -> bool {
        let mut file = None;
        for _ in 0..ATTEMPTS {
            let Ok(before) = Stamp::of(&self.path) else {
                return false;
            };
            match self.read() {
                Ok(Some(ReadFile { object, .. })) => {
                    file = Some(object);
                    break;
                }
                // Caught halfway through another writer's in-place write:
                // look again.
                Err(_) if Stamp::of(&self.path).ok() != Some(before) => {
                    thread::sleep(Duration::from_millis(5));
                }
                // Gone or broken: something else rewrote it; merge again
                // (or fail there, with its message).
                Ok(None) | Err(_) => return false,
            }
        }
        let Some(file) = file else {
            return false;
        };
        let all: Vec<&Change> = jobs.iter().flat_map(|job| &job.changes).collect();
        let Projection {
            mut view,
            unreadable,
        } = projection(&file, &all);
        apply_jobs(&mut view, jobs, &unreadable)
            .iter()
            .all(|applied| applied.written == 0)
    }

    /// What the user's file holds now of the items `changes` name (for a
    /// person reviewing them); an item that cannot be read is left out.
    pub(crate) fn current(&self, changes: &[&Change]) -> Result<Map<String, Value>, HookError> {
        Ok(match self.read()? {
            Some(ReadFile { object, .. }) => projection(&object, changes).view,
            None => Map::new(),
        })
    }

    /// The user's file, parsed, with the bytes it was parsed from; `None`
    /// if there is none. Refuses what must not be written over.
    fn read(&self) -> Result<Option<ReadFile>, HookError> {
        match entry(&self.path).map_err(|err| io_error("inspect", &self.path, &err))? {
            Entry::Missing => return Ok(None),
            Entry::File => {}
            Entry::Symlink => {
                return Err(self.unwritable(
                    "it is a symbolic link, and ccmux never writes through one; make it a regular file \
                     (Claude reads it the same), or set `carry_back = false`",
                ))
            }
            Entry::Dir(_) | Entry::Other => {
                return Err(self.unwritable("it is not a regular file; replace it with Claude's own file"))
            }
        }
        let bytes = match read_bounded(&self.path, USER_CLAUDE_JSON_LIMIT, Links::Refuse) {
            Ok(bytes) => bytes,
            Err(failure) => return Err(self.unwritable(&describe_read_failure(&failure))),
        };
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|err| err.to_string())
            .and_then(|text| RawObject::parse(text).map_err(|err| err.to_string()));
        match parsed {
            Ok(object) => Ok(Some(ReadFile { object, bytes })),
            Err(err) => Err(self.unwritable(&format!(
                "it is not a JSON object that can be read ({err}); fix it where the error points \
                 (Claude's own backups are in its backups/ dir)"
            ))),
        }
    }

    /// A part the merge needs could not be parsed.
    fn unparsable(&self, err: &serde_json::Error) -> HookError {
        self.unwritable(&format!(
            "a part of it the merge changes is not valid JSON ({err}); fix that part"
        ))
    }

    fn unwritable(&self, why: &str) -> HookError {
        HookError::new(
            HookErrorKind::Failed,
            format!(
                "not merging the pane's changes into {}: {why}; the pane's changes are kept and merged \
                 at the next try (the next server start)",
                self.path.display()
            ),
        )
    }

    /// A temp file in the file's dir holding `bytes`, with the mode (and,
    /// where allowed, the owner) of the file it replaces.
    fn write_temp(&self, bytes: &[u8], replacing: Option<&Stamp>) -> Result<PathBuf, HookError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(
            "{name}.ccmux-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mode = replacing.map_or(FILE_MODE, |stamp| stamp.mode & 0o7777);
        let written = (|| {
            let mut file = create_new_file(&temp).map_err(|err| io_error("create", &temp, &err))?;
            file.set_permissions(Permissions::from_mode(mode))
                .map_err(|err| io_error("set the mode of", &temp, &err))?;
            if let Some(stamp) = replacing {
                // Only root may give a file away; anyone else keeps theirs.
                let _ = std::os::unix::fs::fchown(&file, Some(stamp.uid), Some(stamp.gid));
            }
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .map_err(|err| io_error("write", &temp, &err))
        })();
        if let Err(err) = written {
            let _ = fs::remove_file(&temp);
            return Err(err);
        }
        Ok(temp)
    }

    /// Keeps `bytes` (the file as it is about to be replaced) in the
    /// backups dir, under a name no other backup has; returns it. A failure
    /// only warns: the merge itself is atomic and loses nothing.
    fn back_up(&self, bytes: &[u8]) -> Option<PathBuf> {
        let kept = (|| {
            if let Some(parent) = self.backups.parent() {
                if !parent.is_dir() {
                    create_private_dir("the isolation base dir", parent)?;
                }
            }
            ensure_private_dir("the backups of the user's .claude.json", &self.backups)?;
            let millis = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            // Names sort by their number: a later backup never takes an
            // earlier number, even within one millisecond.
            for n in millis..millis + 1000 {
                let name = format!(".claude.json.{n}");
                if crate::floor::private_fs::create_private_file(&self.backups, &name, bytes)? {
                    return Ok(Some(self.backups.join(name)));
                }
            }
            Ok::<_, HookError>(None)
        })();
        match kept {
            Ok(path) => path,
            Err(err) => {
                tracing::warn!(
                    "could not keep a backup of the user's .claude.json before merging: {err}"
                );
                None
            }
        }
    }

    /// Removes temp files a merge killed before its rename left beside the
    /// user's file (`{name}.ccmux-{pid}-{n}`, as large as the file), once
    /// their process is gone. Only regular files of that name are touched.
    fn clear_abandoned_temps(&self) {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return;
        };
        let prefix = format!("{}.ccmux-", name.to_string_lossy());
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for dir_entry in entries.flatten() {
            let file_name = dir_entry.file_name();
            let Some(pid) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let path = dir_entry.path();
            if process_is_gone(pid) && matches!(entry(&path), Ok(Entry::File)) {
                let _ = fs::remove_file(&path);
            }
        }
    }

    fn open_merge_lock(&self) -> Result<(File, PathBuf), HookError> {
        if !self.user_dir.is_dir() {
            create_private_dir("the user's Claude dir", &self.user_dir)?;
        }
        let path = self.user_dir.join(MERGE_LOCK);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|err| io_error("open the merge lock", &path, &err))?;
        Ok((file, path))
    }

    /// Waits, with no time limit, until no other process holds the merge
    /// lock, or `cancelled` is set (then `false`). For work that is nobody's
    /// hurry (the pending pass), so that it never meets the bounded wait of
    /// [`merge`](Self::merge) and gives up.
    pub(crate) fn wait_for_merge_lock(&self, cancelled: &AtomicBool) -> bool {
        let Ok((file, _)) = self.open_merge_lock() else {
            // The merge reports why, with its own error.
            return !cancelled.load(Ordering::Relaxed);
        };
        loop {
            if cancelled.load(Ordering::Relaxed) {
                return false;
            }
            match file.try_lock() {
                Ok(()) => return true,
                Err(TryLockError::WouldBlock) => thread::sleep(Duration::from_millis(20)),
                Err(TryLockError::Error(_)) => return true,
            }
        }
    }

    /// The plugin's own lock: one merge at a time, across processes.
    fn merge_lock(&self) -> Result<File, HookError> {
        let (file, path) = self.open_merge_lock()?;
        let deadline = Instant::now() + MERGE_LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(HookError::new(
                        HookErrorKind::Failed,
                        format!(
                            "another process has held {} for over {}s; the pane's changes are kept and \
                             merged at the next try",
                            path.display(),
                            MERGE_LOCK_WAIT.as_secs()
                        ),
                    ))
                }
                Err(TryLockError::Error(err)) => return Err(io_error("lock", &path, &err)),
            }
        }
    }
}

/// Identifies one version of the user's file: a rewrite (a rename gives a
/// new inode) or an in-place write (a new time or size) changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    dev: u64,
    len: u64,
    modified: Option<SystemTime>,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Stamp {
    fn of(path: &Path) -> Result<Option<Stamp>, HookError> {
        match fs::symlink_metadata(path) {
            Ok(meta) => Ok(Some(Stamp {
                ino: meta.ino(),
                dev: meta.dev(),
                len: meta.len(),
                modified: meta.modified().ok(),
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
            })),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io_error("inspect", path, &err)),
        }
    }
}

/// Claude's own lock on its config file: the directory `<file>.lock`, made
/// with `mkdir` by its lock library. Taken around a merge's last look and
/// rename, so a Claude saving right then finishes first; released when
/// dropped. A lock untouched past Claude's own staleness limit is not
/// waited on (nor removed: it is not ours).
struct ClaudeLock {
    /// The lock dir this merge made, and its inode: only that dir is
    /// removed at the end (past Claude's staleness limit, a Claude may have
    /// replaced it with its own).
    made: Option<(PathBuf, u64)>,
}

impl ClaudeLock {
    fn take(file: &Path) -> ClaudeLock {
        let mut path = file.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let deadline = Instant::now() + CLAUDE_LOCK_WAIT;
        loop {
            match fs::create_dir(&path) {
                Ok(()) => {
                    let made = fs::symlink_metadata(&path)
                        .ok()
                        .map(|meta| (path.clone(), meta.ino()));
                    return ClaudeLock { made };
                }
                // Claude's lock library takes a lock untouched for 10 s as
                // stale (its holder died): not worth waiting on.
                Err(err)
                    if err.kind() == io::ErrorKind::AlreadyExists
                        && Instant::now() < deadline
                        && !is_stale(&path) =>
                {
                    thread::sleep(Duration::from_millis(2));
                }
                Err(err) => {
                    tracing::info!(lock = %path.display(), "merging without Claude's lock (another process holds it; Claude itself does not wait for it either): {err}");
                    return ClaudeLock { made: None };
                }
            }
        }
    }
}

impl Drop for ClaudeLock {
    fn drop(&mut self) {
        if let Some((path, ino)) = &self.made {
            if fs::symlink_metadata(path).is_ok_and(|meta| meta.ino() == *ino) {
                let _ = fs::remove_dir(path);
            }
        }
    }
}

/// Whether Claude's lock dir at `path` has gone untouched longer than
/// Claude's own staleness limit (its holder updates it while it holds it).
fn is_stale(path: &Path) -> bool {
    const CLAUDE_STALE: Duration = Duration::from_secs(10);
    fs::symlink_metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age > CLAUDE_STALE)
}

/// Drops the oldest backups until at most [`BACKUPS_KEPT`] remain, taking
/// at most [`BACKUPS_MAX_BYTES`] (the newest is always kept).
fn prune_backups(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut backups: Vec<(String, u64)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = e.metadata().ok()?;
            (name.starts_with(".claude.json.") && meta.is_file()).then_some((name, meta.len()))
        })
        .collect();
    // Names end in milliseconds since the epoch: sort by that number.
    backups.sort_by_key(|(name, _)| {
        name.rsplit('.')
            .next()
            .and_then(|n| n.parse::<u128>().ok())
            .unwrap_or(0)
    });
    let mut total: u64 = backups.iter().map(|(_, len)| len).sum();
    let mut count = backups.len();
    for (name, len) in &backups {
        if count <= 1 || (count <= BACKUPS_KEPT && total <= BACKUPS_MAX_BYTES) {
            break;
        }
        if fs::remove_file(dir.join(name)).is_ok() {
            count -= 1;
            total -= len;
        }
    }
}

/// The part of the user's file that changes look at, parsed, and what of
/// it could not be.
struct Projection {
    view: Map<String, Value>,
    unreadable: BTreeSet<Unreadable>,
}

/// Applies each job in turn to `view`, leaving out the changes to items
/// that could not be read.
fn apply_jobs(
    view: &mut Map<String, Value>,
    jobs: &[MergeJob],
    unreadable: &BTreeSet<Unreadable>,
) -> Vec<Applied> {
    jobs.iter()
        .map(|job| {
            let changes: Vec<Change> = job
                .changes
                .iter()
                .filter(|change| !blocked(unreadable, &change.path))
                .cloned()
                .collect();
            let mut applied = apply(
                view,
                &changes,
                &job.pane_id,
                job.precedence,
                job.check_types,
            );
            applied.unreadable = job.changes.len() - changes.len();
            applied
        })
        .collect()
}

/// The part of the user's file that `changes` look at, parsed: each
/// top-level key they name and, in `projects`, each key of each project
/// they name. What `apply` reads and changes; nothing else is parsed. An
/// item a strict parser refuses is left out and named.
fn projection(file: &RawObject, changes: &[&Change]) -> Projection {
    let mut view = Map::new();
    let mut unreadable = BTreeSet::new();
    let mut projects: Option<Option<RawObject>> = None;
    let mut seen_projects = Map::new();
    for change in changes {
        match &change.path {
            ItemPath::Top(key) | ItemPath::TopEntry(key, _) => {
                if !view.contains_key(key) && !unreadable.contains(&Unreadable::Top(key.clone())) {
                    match file.value(key) {
                        Ok(Some(value)) => {
                            view.insert(key.clone(), value);
                        }
                        Ok(None) => {}
                        // A map of entries keeps those that can be read.
                        Err(_) => match readable_entries(file, key, |entry| {
                            Unreadable::TopEntry(key.clone(), entry.to_string())
                        }) {
                            Some((entries, bad)) => {
                                view.insert(key.clone(), Value::Object(entries));
                                unreadable.extend(bad);
                            }
                            None => {
                                unreadable.insert(Unreadable::Top(key.clone()));
                            }
                        },
                    }
                }
            }
            ItemPath::Project(project, key) | ItemPath::ProjectEntry(project, key, _) => {
                // Anything but an object there holds no project: the pane's
                // setup makes it one (as Claude itself would).
                let all = projects.get_or_insert_with(|| match file.value_raw(PROJECTS) {
                    Some(text) if is_object_text(text) => match RawObject::parse(text) {
                        Ok(all) => Some(all),
                        Err(_) => {
                            unreadable.insert(Unreadable::Projects);
                            None
                        }
                    },
                    _ => Some(RawObject::default()),
                });
                let Some(all) = all else { continue };
                let Some(text) = all.value_raw(project).filter(|text| is_object_text(text)) else {
                    continue;
                };
                let Ok(one) = RawObject::parse(text) else {
                    unreadable.insert(Unreadable::Project(project.clone()));
                    continue;
                };
                let entry = seen_projects
                    .entry(project.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Some(map) = entry.as_object_mut() else {
                    continue;
                };
                if map.contains_key(key) {
                    continue;
                }
                match one.value(key) {
                    Ok(Some(value)) => {
                        map.insert(key.clone(), value);
                    }
                    Ok(None) => {}
                    Err(_) => match readable_entries(&one, key, |name| {
                        Unreadable::ProjectEntry(project.clone(), key.clone(), name.to_string())
                    }) {
                        Some((entries, bad)) => {
                            map.insert(key.clone(), Value::Object(entries));
                            unreadable.extend(bad);
                        }
                        None => {
                            unreadable.insert(Unreadable::ProjectKey(project.clone(), key.clone()));
                        }
                    },
                }
            }
        }
    }
    if !seen_projects.is_empty() {
        view.insert(PROJECTS.to_string(), Value::Object(seen_projects));
    }
    Projection { view, unreadable }
}

/// The entries of the map at `key` of `file` that can be parsed, and the
/// others named by `bad`; `None` if it is not a map of entries (only
/// `mcpServers` is read entry by entry).
fn readable_entries(
    file: &RawObject,
    key: &str,
    bad: impl Fn(&str) -> Unreadable,
) -> Option<(Map<String, Value>, Vec<Unreadable>)> {
    if key != PER_ENTRY {
        return None;
    }
    let map = RawObject::parse(file.value_raw(key)?).ok()?;
    let (mut entries, mut unreadable) = (Map::new(), Vec::new());
    for name in map.keys() {
        match map.value(name) {
            Ok(Some(value)) => {
                entries.insert(name.to_string(), value);
            }
            Ok(None) | Err(_) => unreadable.push(bad(name)),
        }
    }
    Some((entries, unreadable))
}

/// Writes what `apply` left in `view` back into `file`, for exactly the
/// items `changes` name.
fn write_back(
    file: &mut RawObject,
    view: &Map<String, Value>,
    changes: &[&Change],
) -> Result<(), serde_json::Error> {
    let projects_existed = file.contains(PROJECTS);
    for change in changes {
        match &change.path {
            ItemPath::Top(key) => match view.get(key) {
                Some(value) => file.set(key, value.clone()),
                None => file.remove(key),
            },
            // Entry by entry: the map's other entries stay as they were
            // read (one a strict parser refuses included).
            ItemPath::TopEntry(key, entry) => match view.get(key).and_then(|map| map.get(entry)) {
                Some(value) => file.object_mut(key)?.set(entry, value.clone()),
                None if file.holds_object(key) => file.object_mut(key)?.remove(entry),
                None => {}
            },
            ItemPath::ProjectEntry(project, key, entry) => {
                let value = view
                    .get(PROJECTS)
                    .and_then(|projects| projects.get(project))
                    .and_then(|p| p.get(key))
                    .and_then(|map| map.get(entry));
                let projects = file.object_mut(PROJECTS)?;
                match value {
                    Some(value) => projects
                        .object_mut(project)?
                        .object_mut(key)?
                        .set(entry, value.clone()),
                    None if projects.holds_object(project) => {
                        let setup = projects.object_mut(project)?;
                        if setup.holds_object(key) {
                            setup.object_mut(key)?.remove(entry);
                        }
                    }
                    None => {}
                }
            }
            ItemPath::Project(project, key) => {
                let value = view
                    .get(PROJECTS)
                    .and_then(|projects| projects.get(project))
                    .and_then(|p| p.get(key));
                let projects = file.object_mut(PROJECTS)?;
                let known = projects.contains(project);
                match value {
                    Some(value) => projects.object_mut(project)?.set(key, value.clone()),
                    None if known => projects.object_mut(project)?.remove(key),
                    None => {}
                }
            }
        }
    }
    if !projects_existed && file.contains(PROJECTS) && file.object_mut(PROJECTS)?.is_empty() {
        file.remove(PROJECTS);
    }
    Ok(())
}

/// The merges of this process into one file, batched: callers queue their
/// jobs, and whoever finds no merge under way does the write for every job
/// queued by then (later callers form the next batch). So panes of one
/// server closing together make one write, and never wait for each other
/// on the merge lock as if they were another process.
struct MergeQueue {
    state: Mutex<QueueState>,
    done: Condvar,
}

type MergeResult = Result<Vec<Applied>, HookError>;

/// How many items' last writes a queue remembers before it forgets old ones.
const LAST_WRITES_KEPT: usize = 10_000;

#[derive(Default)]
struct QueueState {
    queued: Vec<(u64, Vec<MergeJob>)>,
    results: HashMap<u64, MergeResult>,
    next: u64,
    writing: bool,
    /// Writes made so far, and for each item (as displayed) the last write
    /// that changed it: a later one means a later pane's choice.
    writes: u64,
    last_write: HashMap<String, u64>,
}

impl MergeQueue {
    /// The queue of the file at `path` (one per file in this process,
    /// kept for the life of the process: it remembers which write changed
    /// which item last).
    fn of(path: &Path) -> Arc<MergeQueue> {
        static QUEUES: OnceLock<Mutex<HashMap<PathBuf, Arc<MergeQueue>>>> = OnceLock::new();
        let mut queues = QUEUES
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(queues.entry(path.to_path_buf()).or_insert_with(|| {
            Arc::new(MergeQueue {
                state: Mutex::default(),
                done: Condvar::new(),
            })
        }))
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `jobs` and returns their results, doing the write for the
    /// whole batch (`write`, given every queued job in order) if no other
    /// caller is doing one.
    fn submit(
        &self,
        jobs: Vec<MergeJob>,
        write: impl Fn(&[MergeJob]) -> MergeResult,
    ) -> MergeResult {
        let mut state = self.lock();
        let ticket = state.next;
        state.next += 1;
        state.queued.push((ticket, jobs));
        loop {
            if let Some(result) = state.results.remove(&ticket) {
                return result;
            }
            if state.writing {
                state = self
                    .done
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.writing = true;
            let batch = std::mem::take(&mut state.queued);
            drop(state);
            let all: Vec<MergeJob> = batch.iter().flat_map(|(_, jobs)| jobs.clone()).collect();
            let written = catch_unwind(AssertUnwindSafe(|| write(&all))).unwrap_or_else(|_| {
                Err(HookError::new(
                    HookErrorKind::Panic,
                    "bug: merging into the user's .claude.json panicked; the pane's changes are kept",
                ))
            });
            state = self.lock();
            let mut written = written;
            if let Ok(applied) = &mut written {
                if applied.iter().any(|applied| applied.written > 0) {
                    state.writes += 1;
                    let write = state.writes;
                    // Only the last writes matter to the looks (a second
                    // at most): older marks go once there are many.
                    if state.last_write.len() > LAST_WRITES_KEPT {
                        state
                            .last_write
                            .retain(|_, last| *last + LAST_WRITES_KEPT as u64 > write);
                    }
                    for change in all.iter().flat_map(|job| &job.changes) {
                        state.last_write.insert(change.path.to_string(), write);
                    }
                    for applied in applied.iter_mut() {
                        applied.write = write;
                    }
                }
            }
            let mut at = 0;
            for (ticket, jobs) in batch {
                let result = match &written {
                    Ok(applied) => Ok(applied[at..at + jobs.len()].to_vec()),
                    Err(err) => Err(err.clone()),
                };
                at += jobs.len();
                state.results.insert(ticket, result);
            }
            state.writing = false;
            self.done.notify_all();
        }
    }
}
