//! OwnerLock: at most one running server per identity, and a way to tell
//! whether another identity's server is running.
//!
//! A running server holds an exclusive advisory lock (`flock`) on
//! `{base}/.owners/{server_id}.lock` for as long as it runs. The kernel
//! drops the lock when the process dies, however it dies, so "the lock can
//! be taken" proves "no server of that identity is running": no pid files,
//! no stale state to clean.
//!
//! A lock file is deleted only by a process holding its lock (a server
//! stopping, [`OwnerLock::release`]; a server starting, for identities
//! that are not running, [`prune_unheld`]), and a lock counts only if the
//! file locked is still the one at its path (checked after locking, by
//! inode): a server that locked a file just unlinked opens the path again,
//! so two servers never each hold a different file of the same name.
//!
//! The rule is one *process* per identity. Within the process that holds
//! the lock, another instance of the plugin (the one a reload with a
//! changed config constructs while the old one still runs) shares it.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, Permissions, TryLockError};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use ccmux_plugin_api::{check_pane_id, HookError, HookErrorKind};

use crate::floor::errors::{invalid_server_id, io_error, refused};
use crate::floor::private_fs::{current_uid, FILE_MODE};
use crate::pane_dirs::layout::Layout;

/// The lock of the running server's identity; released when dropped.
#[derive(Debug)]
pub(crate) struct OwnerLock {
    // Held only for its lock, which goes with the last instance holding
    // it. std opens it close-on-exec, so the processes the host spawns for
    // panes never inherit (and prolong) the lock.
    _file: Arc<File>,
    path: PathBuf,
    server_id: String,
    /// Whether this process already held the lock (another instance of the
    /// plugin had taken it) when this one was acquired.
    joined: bool,
}

/// The locks this process holds, by path.
static HELD: Mutex<BTreeMap<PathBuf, Weak<File>>> = Mutex::new(BTreeMap::new());

impl OwnerLock {
    /// Takes the lock of `server_id`, or reports that a server of that
    /// identity is already running. If another instance of the plugin in
    /// this process holds it, joins that instead: see [`joined`](Self::joined).
    /// Lock files of identities not running are removed on the way.
    pub(crate) fn acquire(layout: &Layout, server_id: &str) -> Result<Self, HookError> {
        check_pane_id(server_id).map_err(|err| invalid_server_id(&err))?;
        let owners = layout.ensure_owners_dir()?;
        let path = owners.join(lock_file_name(server_id));
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        let (file, joined) = match held.get(&path).and_then(Weak::upgrade) {
            Some(file) => (file, true),
            None => {
                let file = Arc::new(Self::lock_file(&path, server_id)?);
                held.insert(path.clone(), Arc::downgrade(&file));
                (file, false)
            }
        };
        if !joined {
            // What servers that ended without a stop (killed) left.
            prune_unheld(&owners, &path);
        }
        Ok(OwnerLock {
            _file: file,
            path,
            server_id: server_id.to_string(),
            joined,
        })
    }

    /// True if the lock was already held in this process when acquired:
    /// the server is running, and this instance is one a reload of the
    /// plugin added to it, not the one that started it.
    pub(crate) fn joined(&self) -> bool {
        self.joined
    }

    /// Releases the lock and, unless another instance in this process
    /// still holds it, removes its file: a stopped server leaves nothing
    /// in `.owners`. The file holds no data, only the lock; the identity
    /// is in the pane dirs' metadata, and its next start makes it again.
    pub(crate) fn release(self) {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        // Ours is the last reference: no instance joins meanwhile, as
        // joining takes `HELD` too.
        if Arc::strong_count(&self._file) == 1 && names_file(&self.path, &self._file) {
            if let Err(err) = std::fs::remove_file(&self.path) {
                tracing::debug!(lock = %self.path.display(), "cannot remove the owner lock: {err}");
            }
            held.remove(&self.path);
        }
        drop(self);
    }

    /// Opens and locks `path`, refusing a link, another user's file, or a
    /// lock another process holds. A file unlinked by its holder while
    /// this opened it is opened again.
    fn lock_file(path: &Path, server_id: &str) -> Result<File, HookError> {
        for _ in 0..3 {
            let file = Self::lock_file_once(path, server_id)?;
            if names_file(path, &file) {
                return Ok(file);
            }
        }
        Err(HookError::new(
            HookErrorKind::Io,
            format!(
                "{} keeps being removed while this server locks it; is another ccmux server of identity {server_id} starting and stopping?",
                path.display()
            ),
        ))
    }

    fn lock_file_once(path: &Path, server_id: &str) -> Result<File, HookError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|err| match err.raw_os_error() {
                Some(libc::ELOOP) => refused("the owner lock", path, "it is a symbolic link"),
                _ => io_error("open the owner lock", path, &err),
            })?;
        let meta = file
            .metadata()
            .map_err(|err| io_error("inspect", path, &err))?;
        if !meta.is_file() {
            return Err(refused("the owner lock", path, "it is not a regular file"));
        }
        if meta.uid() != current_uid() {
            return Err(refused(
                "the owner lock",
                path,
                &format!("it belongs to uid {}, not to you", meta.uid()),
            ));
        }
        if meta.mode() & 0o7777 != FILE_MODE {
            file.set_permissions(Permissions::from_mode(FILE_MODE))
                .map_err(|err| io_error("make private (mode 0600)", path, &err))?;
        }
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(TryLockError::WouldBlock) => Err(HookError::new(
                HookErrorKind::Failed,
                format!(
                    "another ccmux server with identity {server_id} is running (it holds {}); \
                     stop it first, or give this server another identity",
                    path.display()
                ),
            )),
            Err(TryLockError::Error(err)) => Err(io_error("lock", path, &err)),
        }
    }

    pub(crate) fn server_id(&self) -> &str {
        &self.server_id
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

fn lock_file_name(server_id: &str) -> String {
    format!("{server_id}.lock")
}

/// Whether `path` names the file `file` is open on (the same inode).
fn names_file(path: &Path, file: &File) -> bool {
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(at_path), Ok(open)) => at_path.dev() == open.dev() && at_path.ino() == open.ino(),
        _ => false,
    }
}

/// Removes the lock files in `owners` (but `own`) whose lock no process
/// holds: their servers are not running, and a file of ours that is
/// not a link. Each is removed while holding its lock.
fn prune_unheld(owners: &Path, own: &Path) {
    let Ok(entries) = std::fs::read_dir(owners) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_lock = path.extension().is_some_and(|ext| ext == "lock");
        if path == own || !is_lock {
            continue;
        }
        let Ok(file) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        else {
            continue;
        };
        let ours = file
            .metadata()
            .is_ok_and(|meta| meta.is_file() && meta.uid() == current_uid());
        if ours && file.try_lock().is_ok() && names_file(&path, &file) {
            if let Err(err) = std::fs::remove_file(&path) {
                tracing::debug!(lock = %path.display(), "cannot remove an unused owner lock: {err}");
            }
        }
    }
}

/// Whether a server of identity `owner` is running, as far as can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnerState {
    Running,
    NotRunning,
    /// The lock could not be checked; treat the owner as running.
    Unknown(String),
}

/// Checks `owner`'s lock by taking it for an instant. That instant is a
/// (tiny) window in which that server, starting, would be told it is
/// already running: the cost of a check that cannot be fooled by stale
/// files.
pub(crate) fn probe_owner(layout: &Layout, owner: &str) -> OwnerState {
    probe_owner_within(layout, owner, 3)
}

fn probe_again(layout: &Layout, owner: &str, retries: u32) -> OwnerState {
    match retries.checked_sub(1) {
        Some(left) => probe_owner_within(layout, owner, left),
        None => OwnerState::Unknown(format!(
            "the lock file of {owner} keeps changing while it is checked"
        )),
    }
}

fn probe_owner_within(layout: &Layout, owner: &str, retries: u32) -> OwnerState {
    if let Err(err) = check_pane_id(owner) {
        return OwnerState::Unknown(err.to_string());
    }
    let path = layout.owners_dir().join(lock_file_name(owner));
    // Read-only and never created: probing must not leave files behind for
    // identities that are not ours.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(file) => file,
        // A running server always has its lock file.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return OwnerState::NotRunning,
        Err(err) => return OwnerState::Unknown(format!("{}: {err}", path.display())),
    };
    match file.try_lock() {
        // The file was unlinked (its server stopped) and maybe made again
        // by a server starting: look again.
        Ok(()) if !names_file(&path, &file) => {
            let _ = file.unlock();
            probe_again(layout, owner, retries)
        }
        Ok(()) => {
            // Release at once, before anything else can happen.
            let _ = file.unlock();
            OwnerState::NotRunning
        }
        Err(TryLockError::WouldBlock) => OwnerState::Running,
        Err(TryLockError::Error(err)) => OwnerState::Unknown(format!("{}: {err}", path.display())),
    }
}
