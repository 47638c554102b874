//! Filesystem primitives that never follow a symlink in the last component
//! of a path and never leave group- or world-readable state behind.
//!
//! Pane dirs hold OAuth account data and conversation history, so every
//! directory is made 0700 and every file 0600 *explicitly*: the mode given
//! at creation is masked by the umask, which may remove the owner's own
//! bits (umask 0277) or be anything the user's shell left.
//!
//! Links are checked twice: `symlink_metadata` first, for a clear error,
//! then `O_NOFOLLOW` on the open that is actually used, so a link planted
//! between the check and the use is refused too.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ccmux_plugin_api::HookError;

use crate::errors::{io_error, refused};

pub(crate) const DIR_MODE: u32 = 0o700;
pub(crate) const FILE_MODE: u32 = 0o600;

/// The uid this server runs as.
pub(crate) fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// What is at a path, without following a link in its last component.
pub(crate) enum Entry {
    Missing,
    Dir(fs::Metadata),
    File,
    Symlink,
    Other,
}

pub(crate) fn entry(path: &Path) -> io::Result<Entry> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Ok(Entry::Symlink),
        Ok(meta) if meta.is_dir() => Ok(Entry::Dir(meta)),
        Ok(meta) if meta.is_file() => Ok(Entry::File),
        Ok(_) => Ok(Entry::Other),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Entry::Missing),
        Err(err) => Err(err),
    }
}

/// Checks that `path`, if it exists, is a real directory of this user.
/// Returns whether it exists.
pub(crate) fn check_own_dir(what: &str, path: &Path) -> Result<bool, HookError> {
    match entry(path).map_err(|err| io_error("inspect", path, &err))? {
        Entry::Missing => Ok(false),
        Entry::Dir(meta) => {
            check_owner(what, path, &meta)?;
            Ok(true)
        }
        Entry::Symlink => Err(refused(what, path, "it is a symbolic link")),
        Entry::File | Entry::Other => Err(refused(what, path, "it is not a directory")),
    }
}

fn check_owner(what: &str, path: &Path, meta: &fs::Metadata) -> Result<(), HookError> {
    let me = current_uid();
    if meta.uid() != me {
        return Err(refused(
            what,
            path,
            &format!("it belongs to uid {}, not to you (uid {me})", meta.uid()),
        ));
    }
    Ok(())
}

/// Makes `path` a private directory of this user: creates it if missing,
/// refuses a symlink, a non-directory or another user's directory, and
/// tightens its mode to 0700.
pub(crate) fn ensure_private_dir(what: &str, path: &Path) -> Result<(), HookError> {
    if !check_own_dir(what, path)? {
        // mkdir never follows a symlink in the last component: a link
        // planted since the check makes it fail with AlreadyExists, and the
        // O_NOFOLLOW open below then refuses it.
        mkdir_private(path)?;
    }
    make_private(what, path)
}

/// Creates `path` as a new directory and makes it 0700 at once. Returns
/// false, and changes nothing, if something is already there: only what
/// this call created is changed.
pub(crate) fn create_private_dir(what: &str, path: &Path) -> Result<bool, HookError> {
    if !mkdir_private(path)? {
        return Ok(false);
    }
    make_private(what, path)?;
    Ok(true)
}

/// mkdir with mode 0700, which the umask may still narrow; whether it
/// created the dir (false: something was already there).
fn mkdir_private(path: &Path) -> Result<bool, HookError> {
    match DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(io_error("create the directory", path, &err)),
    }
}

/// Checks that the directory at `path` is a real one of this user and sets
/// its mode to 0700.
fn make_private(what: &str, path: &Path) -> Result<(), HookError> {
    let dir = open_dir_nofollow(what, path)?;
    let meta = dir
        .metadata()
        .map_err(|err| io_error("inspect", path, &err))?;
    check_owner(what, path, &meta)?;
    if meta.mode() & 0o7777 != DIR_MODE {
        // fchmod on the opened directory, not chmod on the path: chmod
        // would follow a link swapped in after the open.
        dir.set_permissions(Permissions::from_mode(DIR_MODE))
            .map_err(|err| io_error("make private (mode 0700)", path, &err))?;
    }
    Ok(())
}

/// Opens an existing directory, refusing a symlink at `path`.
pub(crate) fn open_dir_nofollow(what: &str, path: &Path) -> Result<File, HookError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => refused(what, path, "it is a symbolic link"),
            Some(libc::ENOTDIR) => refused(what, path, "it is not a directory"),
            _ => io_error("open", path, &err),
        })
}

/// Reads a regular file of at most `limit` bytes without following a
/// symlink. `Ok(None)` if it is larger: a planted huge file must not make
/// the plugin read gigabytes.
pub(crate) fn read_limited_nofollow(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// The suffix of temporary files written by [`write_private_file_atomic`]:
/// `{name}.tmp-{pid}-{n}`.
pub(crate) fn is_temp_file_of(file_name: &str, name: &str) -> bool {
    file_name
        .strip_prefix(name)
        .is_some_and(|rest| rest.starts_with(".tmp-"))
}

/// Creates `dir/name` (mode 0600) holding `bytes`, unless an entry of
/// that name exists: returns false then, and changes nothing. For files no
/// one reads yet, so no temp file, rename or fsync: if writing fails, the
/// partial file is removed.
///
/// `O_EXCL` never follows a link: a link planted at the name counts as an
/// existing entry.
pub(crate) fn create_private_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<bool, HookError> {
    let path = dir.join(name);
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(err) => return Err(io_error("create", &path, &err)),
    };
    let written = file
        .set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(|err| io_error("make private (mode 0600)", &path, &err))
        .and_then(|()| {
            file.write_all(bytes)
                .map_err(|err| io_error("write", &path, &err))
        });
    if written.is_err() {
        drop(file);
        let _ = fs::remove_file(&path);
    }
    written.map(|()| true)
}

/// Writes `dir/name` so that readers see either the old file or the whole
/// new one, never a torn write: a fresh temp file (mode 0600), fsync,
/// rename over the target, fsync of the directory.
///
/// The temp file is created with `O_EXCL`, which never follows a link, and
/// `rename` replaces a link at the target rather than writing through it.
pub(crate) fn write_private_file_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<(), HookError> {
    static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);
    let target = dir.join(name);
    let temp = dir.join(format!(
        "{name}.tmp-{}-{}",
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_and_rename(&temp, &target, bytes);
    if written.is_err() {
        // Best effort: the temp file may not even exist.
        let _ = fs::remove_file(&temp);
    }
    written?;
    // Makes the rename itself durable. A failure here loses nothing that
    // the next write would not redo, so it is not reported.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn write_and_rename(temp: &Path, target: &Path, bytes: &[u8]) -> Result<(), HookError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(temp)
        .map_err(|err| io_error("create", temp, &err))?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(|err| io_error("make private (mode 0600)", temp, &err))?;
    file.write_all(bytes)
        .map_err(|err| io_error("write", temp, &err))?;
    file.sync_all()
        .map_err(|err| io_error("flush to disk", temp, &err))?;
    drop(file);
    fs::rename(temp, target).map_err(|err| io_error("replace", target, &err))
}
