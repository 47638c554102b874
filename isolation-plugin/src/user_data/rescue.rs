//! Moving what a pane holds of the user's data into the user's Claude dir,
//! without ever overwriting, deleting or writing through a link.
//!
//! Why: a pane dir is removed after its pane closes, and everything in it
//! goes with it. Shared entries (`projects/`, `history.jsonl`, ...) are
//! links to the user's dir, so what Claude writes there is the user's
//! already. But something can still sit pane-locally where a shared entry
//! belongs: a pane dir made by an older plugin version (real `projects/`),
//! a link that something replaced with a real file, a transcript written
//! before the link existed. This module moves such data home first; only
//! then may the pane dir be removed.
//!
//! The rules, for each entry under a pane-local dir:
//! - a name the user's side lacks is moved (a rename, no copy on one
//!   filesystem);
//! - a dir on both sides is merged entry by entry;
//! - a file on both sides with the same bytes is already home;
//! - anything else that exists on both sides (different bytes, a dir
//!   against a file, a link on the user's side) is moved in beside the
//!   user's under a new name (`{stem}.pane-{id}[-n].{ext}`): both copies
//!   stay;
//! - links and special files in the pane are not data and stay behind.
//!
//! An append-only log (`history.jsonl`) is appended to the user's instead:
//! the lines are what matters, and the user's up-arrow history then has
//! them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ccmux_plugin_api::HookError;

use crate::floor::errors::io_error;
use crate::floor::private_fs::{
    create_new_file, create_private_dir, entry, read_bounded, Entry, Links, ReadFailure, FILE_MODE,
};

/// The largest user log read to see which lines it has already.
const LOG_LIMIT: u64 = 256 << 20;

/// What a rescue did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Rescued {
    /// Entries moved in under their own name.
    pub moved: usize,
    /// Entries moved in beside a different one of the same name.
    pub set_beside: usize,
    /// Bytes appended to the user's append-only logs.
    pub appended_bytes: u64,
}

impl Rescued {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Rescued::default()
    }

    fn add(&mut self, other: &Rescued) {
        self.moved += other.moved;
        self.set_beside += other.set_beside;
        self.appended_bytes += other.appended_bytes;
    }
}

impl std::fmt::Display for Rescued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} moved, {} kept beside the user's copy, {} bytes of history appended",
            self.moved, self.set_beside, self.appended_bytes
        )
    }
}

/// Merges the real dir `src` (pane-local) into the real dir `dst` (the
/// user's), by the rules above. What stays in `src` afterwards is links,
/// special files and files already present in `dst`: nothing that is
/// only there.
pub(crate) fn merge_dir(src: &Path, dst: &Path, pane_id: &str) -> Result<Rescued, HookError> {
    let mut rescued = Rescued::default();
    let entries = fs::read_dir(src).map_err(|err| io_error("list", src, &err))?;
    for dir_entry in entries {
        let dir_entry = dir_entry.map_err(|err| io_error("list", src, &err))?;
        let from = dir_entry.path();
        let to = dst.join(dir_entry.file_name());
        let from_kind = entry(&from).map_err(|err| io_error("inspect", &from, &err))?;
        if matches!(from_kind, Entry::Symlink | Entry::Other | Entry::Missing) {
            continue;
        }
        let to_kind = entry(&to).map_err(|err| io_error("inspect", &to, &err))?;
        match (from_kind, to_kind) {
            (_, Entry::Missing) => match move_no_replace(&from, &to, pane_id)? {
                true => rescued.moved += 1,
                // Made on the user's side meanwhile: judged again.
                false => rescued.add(&merge_entry_again(&from, &to, pane_id)?),
            },
            (Entry::Dir(_), Entry::Dir(_)) => rescued.add(&merge_dir(&from, &to, pane_id)?),
            (Entry::File, Entry::File) if same_bytes(&from, &to)? => {}
            _ => {
                set_beside(&from, dst, pane_id)?;
                rescued.set_beside += 1;
            }
        }
    }
    Ok(rescued)
}

fn merge_entry_again(from: &Path, to: &Path, pane_id: &str) -> Result<Rescued, HookError> {
    let dst = to.parent().unwrap_or(to);
    let mut rescued = Rescued::default();
    match (
        entry(from).map_err(|err| io_error("inspect", from, &err))?,
        entry(to).map_err(|err| io_error("inspect", to, &err))?,
    ) {
        (Entry::Dir(_), Entry::Dir(_)) => rescued.add(&merge_dir(from, to, pane_id)?),
        (Entry::File, Entry::File) if same_bytes(from, to)? => {}
        _ => {
            set_beside(from, dst, pane_id)?;
            rescued.set_beside += 1;
        }
    }
    Ok(rescued)
}

/// Appends to the user's log `dst` (made 0600 if missing) the lines of
/// the pane-local log `src` that `dst` does not already have, in one
/// `write` on an `O_APPEND` descriptor, so they land whole after whatever
/// Claude instances appended meanwhile. Never through a link. Returns the
/// bytes appended.
///
/// Why only the missing lines: a pane-local log is often a rewrite of the
/// user's (`claude project purge` replaces the link with a filtered copy),
/// and appending it whole would double every line. What a rewrite removed
/// is not removed from the user's: nothing of the user's is deleted.
pub(crate) fn append_log(src: &Path, dst: &Path) -> Result<u64, HookError> {
    let pane_log =
        read_bounded(src, LOG_LIMIT, Links::Refuse).map_err(|failure| match failure {
            ReadFailure::Io(err) => io_error("read", src, &err),
            ReadFailure::NotRegular => {
                io_error("read", src, &io::Error::other("it is not a regular file"))
            }
            ReadFailure::TooLarge(len) => io_error(
                "read",
                src,
                &io::Error::other(format!(
                    "it is {len} bytes, more than the {LOG_LIMIT}-byte limit"
                )),
            ),
        })?;
    let mut log = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dst)
        .map_err(|err| io_error("open for appending", dst, &err))?;
    let meta = log
        .metadata()
        .map_err(|err| io_error("inspect", dst, &err))?;
    if !meta.is_file() {
        return Err(io_error(
            "append to",
            dst,
            &io::Error::other("it is not a regular file"),
        ));
    }
    if meta.len() > LOG_LIMIT {
        return Err(io_error(
            "read",
            dst,
            &io::Error::other(format!(
                "it is {} bytes, more than the {LOG_LIMIT}-byte limit for a log this plugin reads",
                meta.len()
            )),
        ));
    }
    let mut user_log = Vec::new();
    (&log)
        .take(LOG_LIMIT)
        .read_to_end(&mut user_log)
        .map_err(|err| io_error("read", dst, &err))?;
    let known: std::collections::HashSet<&[u8]> = user_log
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .collect();
    let mut missing = Vec::new();
    for line in pane_log.split(|&b| b == b'\n') {
        if !line.is_empty() && !known.contains(line) {
            missing.extend_from_slice(line);
            missing.push(b'\n');
        }
    }
    if missing.is_empty() {
        return Ok(0);
    }
    // A user log that does not end a line (a writer cut short) gets its
    // line ended first, so the first appended line stays a line of its own.
    if user_log.last().is_some_and(|&b| b != b'\n') {
        missing.insert(0, b'\n');
    }
    log.write_all(&missing)
        .and_then(|()| log.sync_all())
        .map_err(|err| io_error("append to", dst, &err))?;
    Ok(missing.len() as u64)
}

/// `{stem}.pane-{id}.{ext}`: the name a pane's copy of `name` gets beside
/// the user's.
pub(crate) fn beside_name(name: &str, pane_id: &str) -> String {
    numbered_beside_name(name, pane_id, 1)
}

fn numbered_beside_name(name: &str, pane_id: &str, n: usize) -> String {
    /// The longest file name (bytes) Linux and macOS filesystems take.
    const NAME_MAX: usize = 255;
    let (mut stem, ext) = match name.rsplit_once('.') {
        // A long "extension" is part of the name, not a type to keep.
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 16 => {
            (stem.to_string(), format!(".{ext}"))
        }
        _ => (name.to_string(), String::new()),
    };
    let suffix = if n == 1 {
        String::new()
    } else {
        format!("-{n}")
    };
    let tail = format!(".pane-{pane_id}{suffix}{ext}");
    // A name already near the limit is shortened (marked `~`), so the copy
    // always has a name the filesystem takes (else ENAMETOOLONG would keep
    // the pane's dir for ever).
    if stem.len() + tail.len() > NAME_MAX {
        let mut keep = NAME_MAX.saturating_sub(tail.len() + 1);
        while !stem.is_char_boundary(keep) {
            keep -= 1;
        }
        stem.truncate(keep);
        stem.push('~');
    }
    format!("{stem}{tail}")
}

/// Moves `from` into `dir` under a name no entry there has:
/// `{stem}.pane-{id}.{ext}`, then `{stem}.pane-{id}-2.{ext}`, ...
pub(crate) fn set_beside(from: &Path, dir: &Path, pane_id: &str) -> Result<PathBuf, HookError> {
    let name = from
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    for n in 1..=1000 {
        let to = dir.join(numbered_beside_name(&name, pane_id, n));
        if move_no_replace(from, &to, pane_id)? {
            return Ok(to);
        }
    }
    Err(io_error(
        "find a free name beside the user's copy of",
        from,
        &io::Error::other("1000 names taken"),
    ))
}

/// Whether two regular files hold the same bytes, read in chunks.
fn same_bytes(a: &Path, b: &Path) -> Result<bool, HookError> {
    let open = |path: &Path| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|err| io_error("read", path, &err))
    };
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let len = |file: &File, path: &Path| {
        file.metadata()
            .map(|meta| meta.len())
            .map_err(|err| io_error("inspect", path, &err))
    };
    if len(&fa, a)? != len(&fb, b)? {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = read_full(&mut fa, &mut ba).map_err(|err| io_error("read", a, &err))?;
        let nb = read_full(&mut fb, &mut bb).map_err(|err| io_error("read", b, &err))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Moves `from` to `to` unless something is at `to`: returns false then,
/// and changes nothing. Never replaces: a plain `rename` would overwrite a
/// file another Claude wrote at `to` a moment ago. Across filesystems
/// (the base dir elsewhere than the user's dir), copies then removes.
pub(crate) fn move_no_replace(from: &Path, to: &Path, pane_id: &str) -> Result<bool, HookError> {
    match rename_no_replace(from, to) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) if err.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(false),
        Err(err) if err.raw_os_error() == Some(libc::EXDEV) => copy_then_remove(from, to, pane_id),
        Err(err) => Err(io_error(&format!("move to {}", to.display()), from, &err)),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |path: &Path| {
        CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a path"))
    };
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths, resolved against the cwd
    // (they are absolute); renameat2 reads them and nothing else.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // A filesystem without RENAME_NOREPLACE: the portable way.
        Some(libc::EINVAL | libc::ENOSYS) => rename_no_replace_portable(from, to),
        _ => Err(err),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    rename_no_replace_portable(from, to)
}

/// A hard link fails if `to` exists, so for files it is an exact
/// no-replace move. A dir cannot be hard-linked; renaming a dir onto an
/// existing *empty* dir is the only replace left possible, and an empty
/// dir holds nothing to lose.
fn rename_no_replace_portable(from: &Path, to: &Path) -> io::Result<()> {
    if fs::symlink_metadata(from)?.is_dir() {
        if fs::symlink_metadata(to).is_ok() {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        return fs::rename(from, to);
    }
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

/// A move across filesystems: copied under a temp name in the target's
/// dir, then given its name without replacing anything, then the source
/// removed. A copy cut short (a full disk) never sits under the real name.
fn copy_then_remove(from: &Path, to: &Path, pane_id: &str) -> Result<bool, HookError> {
    match entry(from).map_err(|err| io_error("inspect", from, &err))? {
        Entry::Dir(_) => {
            if !create_private_dir("a directory moved home", to)? {
                return Ok(false);
            }
            merge_dir(from, to, pane_id)?;
            Ok(true)
        }
        Entry::File => {
            let dir = to.parent().unwrap_or(Path::new("/"));
            let name = to
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let temp = dir.join(format!(".{name}.ccmux-copy-{}", std::process::id()));
            let copied = (|| {
                let mut source = File::open(from).map_err(|err| io_error("read", from, &err))?;
                let mut target =
                    create_new_file(&temp).map_err(|err| io_error("create", &temp, &err))?;
                io::copy(&mut source, &mut target)
                    .and_then(|_| target.sync_all())
                    .map_err(|err| io_error("copy into", &temp, &err))
            })();
            let named = copied.and_then(|()| {
                rename_no_replace(&temp, to).map_err(|err| match err.kind() {
                    io::ErrorKind::AlreadyExists => io_error("name", to, &err),
                    _ => io_error(&format!("move to {}", to.display()), &temp, &err),
                })
            });
            match named {
                Ok(()) => {
                    fs::remove_file(from).map_err(|err| io_error("remove", from, &err))?;
                    Ok(true)
                }
                Err(err) => {
                    let _ = fs::remove_file(&temp);
                    if fs::symlink_metadata(to).is_ok() {
                        // Taken meanwhile: judged again by the caller.
                        return Ok(false);
                    }
                    Err(err)
                }
            }
        }
        // Links and special files are not moved (see the module docs).
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::{numbered_beside_name, set_beside};

    #[test]
    fn a_copy_beside_a_long_name_gets_a_name_the_filesystem_takes() {
        let root = tempfile::tempdir().unwrap();
        let (user, pane) = (root.path().join("user"), root.path().join("pane"));
        std::fs::create_dir_all(&user).unwrap();
        std::fs::create_dir_all(&pane).unwrap();
        let id = "p".repeat(128);
        for name in [
            "é".repeat(120) + ".jsonl",
            "x".repeat(255),
            format!("a.{}", "b".repeat(200)),
        ] {
            std::fs::write(user.join(&name), "the user's").unwrap();
            std::fs::write(pane.join(&name), "the pane's").unwrap();
            let to = set_beside(&pane.join(&name), &user, &id).unwrap();
            assert_eq!(std::fs::read_to_string(&to).unwrap(), "the pane's");
            assert_eq!(
                std::fs::read_to_string(user.join(&name)).unwrap(),
                "the user's"
            );
            let beside = to.file_name().unwrap().to_str().unwrap();
            assert!(beside.len() <= 255, "{beside}");
            assert!(beside.contains(&format!(".pane-{id}")), "{beside}");
        }
        // Short names are left as they were.
        assert_eq!(
            numbered_beside_name("history.jsonl", "w_0_1", 2),
            "history.pane-w_0_1-2.jsonl"
        );
    }
}
