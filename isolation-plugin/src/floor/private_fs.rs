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

use crate::floor::errors::{io_error, refused};

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
pub(crate) fn mkdir_private(path: &Path) -> Result<bool, HookError> {
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
        .map_err(|err| dir_open_error(what, path, &err))
}

/// The error of a failed `O_NOFOLLOW | O_DIRECTORY` open, which gives
/// `ELOOP` or `ENOTDIR` for a link depending on the platform: the path is
/// looked at again to say which it was.
pub(crate) fn dir_open_error(what: &str, path: &Path, err: &io::Error) -> HookError {
    match err.raw_os_error() {
        Some(libc::ELOOP | libc::ENOTDIR) => {
            let problem = match entry(path) {
                Ok(Entry::Symlink) => "it is a symbolic link",
                _ => "it is not a directory",
            };
            refused(what, path, problem)
        }
        _ => io_error("open", path, err),
    }
}

/// Why [`read_bounded`] read nothing.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The open or the read failed (`NotFound` included).
    Io(io::Error),
    /// Not a regular file: a FIFO would block the read, a device such as
    /// `/dev/zero` would never end it.
    NotRegular,
    /// Larger than the limit (its size, as far as it was read).
    TooLarge(u64),
}

/// Whether [`read_bounded`] follows a symlink at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    /// The plugin's own files: a link there was planted, never made by us.
    Refuse,
    /// The user's own files (a `.claude.json` kept in a dotfiles repository
    /// is often a link): reading through the link reads what Claude reads.
    Follow,
}

/// Reads a whole regular file of at most `limit` bytes, without ever
/// blocking: the open is `O_NONBLOCK` (a FIFO opens at once instead of
/// waiting for a writer) and the opened file must be a regular file, so no
/// FIFO, socket or device is ever read from. A file that grows past the
/// limit while being read is refused too, so a planted huge or endless file
/// cannot make the plugin read gigabytes.
pub(crate) fn read_bounded(path: &Path, limit: u64, links: Links) -> Result<Vec<u8>, ReadFailure> {
    let mut flags = libc::O_NONBLOCK;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(ReadFailure::Io)?;
    let meta = file.metadata().map_err(ReadFailure::Io)?;
    if !meta.is_file() {
        return Err(ReadFailure::NotRegular);
    }
    if meta.len() > limit {
        return Err(ReadFailure::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadFailure::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadFailure::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Creates a new file at `path`, mode 0600 before the umask (the caller
/// makes it exactly 0600 where that matters). Fails if anything is there:
/// `O_EXCL` never follows a link, so a link planted at the name is refused
/// like any existing entry.
pub(crate) fn create_new_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
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
    let mut file = match create_new_file(&path) {
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
    let mut file = create_new_file(temp).map_err(|err| io_error("create", temp, &err))?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(|err| io_error("make private (mode 0600)", temp, &err))?;
    file.write_all(bytes)
        .map_err(|err| io_error("write", temp, &err))?;
    file.sync_all()
        .map_err(|err| io_error("flush to disk", temp, &err))?;
    drop(file);
    fs::rename(temp, target).map_err(|err| io_error("replace", target, &err))
}
