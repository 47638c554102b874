//! OwnerLock: at most one running server per identity, and a way to tell
//! whether another identity's server is running.
//!
//! A running server holds an exclusive advisory lock (`flock`) on
//! `{base}/.owners/{server_id}.lock` for as long as it runs. The kernel
//! drops the lock when the process dies, however it dies, so "the lock can
//! be taken" proves "no server of that identity is running": no pid files,
//! no stale state to clean.
//!
//! Lock files are never deleted: unlinking a lock file while another
//! process is opening it would let two servers each lock a different file
//! of the same name.
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

use crate::errors::{invalid_server_id, io_error, refused};
use crate::layout::Layout;
use crate::private_fs::{current_uid, FILE_MODE};

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

impl OwnerLock {
    /// Takes the lock of `server_id`, or reports that a server of that
    /// identity is already running. If another instance of the plugin in
    /// this process holds it, joins that instead: see [`joined`](Self::joined).
    pub(crate) fn acquire(layout: &Layout, server_id: &str) -> Result<Self, HookError> {
        /// The locks this process holds, by path.
        static HELD: Mutex<BTreeMap<PathBuf, Weak<File>>> = Mutex::new(BTreeMap::new());

        check_pane_id(server_id).map_err(|err| invalid_server_id(&err))?;
        let path = layout.ensure_owners_dir()?.join(lock_file_name(server_id));
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        let (file, joined) = match held.get(&path).and_then(Weak::upgrade) {
            Some(file) => (file, true),
            None => {
                let file = Arc::new(Self::lock_file(&path, server_id)?);
                held.insert(path.clone(), Arc::downgrade(&file));
                (file, false)
            }
        };
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

    /// Opens and locks `path`, refusing a link, another user's file, or a
    /// lock another process holds.
    fn lock_file(path: &Path, server_id: &str) -> Result<File, HookError> {
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
        Ok(()) => {
            // Release at once, before anything else can happen.
            let _ = file.unlock();
            OwnerState::NotRunning
        }
        Err(TryLockError::WouldBlock) => OwnerState::Running,
        Err(TryLockError::Error(err)) => OwnerState::Unknown(format!("{}: {err}", path.display())),
    }
}
