//! PaneLock: one claimer or remover of a pane dir at a time, across every
//! process sharing the base dir.
//!
//! Why: a claim is "read the owner, then write new metadata", and a
//! removal is "read the owner and claim, then delete". Two servers with
//! different identities claiming the same pane id at the same moment would
//! otherwise both read "no owner" and both win, and the first to close would
//! delete the dir the other still runs in. Each of these steps runs holding
//! an exclusive `flock` on the pane dir itself, so exactly one claimer wins
//! and the others read its metadata.
//!
//! Why the dir itself and not a lock file: a lock file per pane would need
//! removing with the dir, and unlinking a lock file another process is
//! opening lets two processes lock two different files of one name. A
//! directory that is removed while someone waits for its lock is detected
//! instead: after locking, the path must still lead to the locked dir.
//!
//! Waiting is bounded: a claim holds the lock for milliseconds, a removal
//! for as long as its handover (a merge into a large user file can take a
//! second or two), so a lock held past the limit is a stuck or hostile
//! process, reported rather than waited on forever.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use ccmux_plugin_api::{HookError, HookErrorKind};

use crate::floor::errors::io_error;
use crate::floor::private_fs::{dir_open_error, mkdir_private};

/// How long a claim or removal waits for another process's.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// How often it tries meanwhile.
const LOCK_RETRY: Duration = Duration::from_millis(2);

/// An exclusive lock on one pane dir; released when dropped.
#[derive(Debug)]
pub(crate) struct PaneLock {
    _dir: File,
}

/// A lock taken by [`PaneLock::create_and_acquire`].
#[derive(Debug)]
pub(crate) struct CreatedLock {
    pub lock: PaneLock,
    /// Whether this call made the dir (it was not there before).
    pub created: bool,
}

impl PaneLock {
    /// Locks the existing dir at `root`; `None` if there is none.
    pub(crate) fn acquire(root: &Path) -> Result<Option<PaneLock>, HookError> {
        Ok(Self::lock(root, false)?.map(|created| created.lock))
    }

    /// Makes the dir at `root` if it is missing (mode 0700 before the
    /// umask; the caller makes it private), then locks it.
    pub(crate) fn create_and_acquire(root: &Path) -> Result<CreatedLock, HookError> {
        match Self::lock(root, true)? {
            Some(created) => Ok(created),
            // `lock` with `create` only returns None through a bug.
            None => Err(HookError::new(
                HookErrorKind::Failed,
                format!("could not create {}", root.display()),
            )),
        }
    }

    fn lock(root: &Path, create: bool) -> Result<Option<CreatedLock>, HookError> {
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            let created = create && mkdir_private(root)?;
            let dir = match open_dir(root) {
                Ok(dir) => dir,
                // Removed since the mkdir: by a removal that held the lock.
                Err(err) if err.kind() == io::ErrorKind::NotFound && create => {
                    wait_or_give_up(root, deadline)?;
                    continue;
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(dir_open_error("the pane dir", root, &err)),
            };
            match dir.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    wait_or_give_up(root, deadline)?;
                    continue;
                }
                Err(TryLockError::Error(err)) => return Err(io_error("lock", root, &err)),
            }
            // The holder we waited for may have removed the dir (and another
            // process made a new one): the lock counts only on the dir that
            // is at `root` now.
            let held = dir
                .metadata()
                .map_err(|err| io_error("inspect", root, &err))?;
            match fs::symlink_metadata(root) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(Some(CreatedLock {
                        lock: PaneLock { _dir: dir },
                        created,
                    }));
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(io_error("inspect", root, &err)),
            }
            wait_or_give_up(root, deadline)?;
        }
    }
}

/// The dir itself, never a link in its place.
fn open_dir(root: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(root)
}

fn wait_or_give_up(root: &Path, deadline: Instant) -> Result<(), HookError> {
    if Instant::now() >= deadline {
        return Err(HookError::new(
            HookErrorKind::Failed,
            format!(
                "the pane dir {} has been locked by another process for over {}s (a ccmux \
                 server claiming it takes milliseconds; removing it can take longer while the \
                 pane's .claude.json is merged into a large user file); try again in a moment, \
                 or find the process holding it (`fuser -v {}`)",
                root.display(),
                LOCK_WAIT.as_secs(),
                root.display()
            ),
        ));
    }
    thread::sleep(LOCK_RETRY);
    Ok(())
}
