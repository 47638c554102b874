//! Opening the files of the state dir without trusting what is there.
//!
//! The state dir is the user's, but anything can be planted in it: a
//! symlink that would make host-shim write through it somewhere else, a
//! FIFO that would block a read forever, `/dev/zero` that would never end.
//! Every open here refuses a final symlink (`O_NOFOLLOW`), never blocks
//! (`O_NONBLOCK`, then a regular-file check on the open file itself, so
//! nothing can be swapped in between) and every read stops at a cap.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a state file could not be used as one.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("it is a symbolic link; host-shim never follows links in its state dir, so that nothing is written through one: remove the link (if it points at a file of yours, move that file in its place)")]
    Symlink,
    #[error("it is {kind}, not a regular file; remove it (host-shim recreates its files), or pass another --state-dir")]
    NotRegular { kind: &'static str },
    #[error("it is larger than {cap} bytes, the most host-shim reads from it: it is not a file host-shim wrote; move it away, or pass another --state-dir")]
    TooLarge { cap: u64 },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Opens `path` as [`OpenOptions`] says, adding `O_NOFOLLOW | O_NONBLOCK`,
/// and checks that what was opened is a regular file. `Ok(None)` if it
/// does not exist (and `options` does not create it).
pub fn open(path: &Path, options: &mut OpenOptions) -> Result<Option<File>, StateFileError> {
    let file = match options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        // O_NOFOLLOW's answer to a final symlink.
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => return Err(StateFileError::Symlink),
        Err(err) => return Err(err.into()),
    };
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(StateFileError::NotRegular {
            kind: describe(kind),
        });
    }
    Ok(Some(file))
}

/// The content of the regular file `path`, at most `cap` bytes of it;
/// `Ok(None)` if it does not exist.
pub fn read(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, StateFileError> {
    match open(path, OpenOptions::new().read(true))? {
        Some(file) => read_capped(file, cap).map(Some),
        None => Ok(None),
    }
}

/// Reads `reader` to its end, refusing more than `cap` bytes.
pub fn read_capped(reader: impl Read, cap: u64) -> Result<Vec<u8>, StateFileError> {
    let mut content = Vec::new();
    // One byte more than allowed tells "exactly cap" from "too large".
    reader
        .take(cap.saturating_add(1))
        .read_to_end(&mut content)?;
    if content.len() as u64 > cap {
        return Err(StateFileError::TooLarge { cap });
    }
    Ok(content)
}

/// Refuses `path` if it exists and is anything but a regular file: for
/// files host-shim replaces by renaming over them, which would not write
/// through a link but would silently drop one the user put there.
pub fn check_not_planted(path: &Path) -> Result<(), StateFileError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(StateFileError::Symlink),
        Ok(meta) if !meta.file_type().is_file() => Err(StateFileError::NotRegular {
            kind: describe(meta.file_type()),
        }),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err.into()),
    }
}

fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_is_refused_and_its_target_untouched() {
        let temp = tempfile::tempdir().unwrap();
        let victim = temp.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = temp.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = open(
            &link,
            OpenOptions::new().read(true).write(true).create(true),
        )
        .unwrap_err();
        assert!(matches!(err, StateFileError::Symlink), "{err}");
        assert!(matches!(
            check_not_planted(&link),
            Err(StateFileError::Symlink)
        ));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let temp = tempfile::tempdir().unwrap();
        let fifo = temp.path().join("fifo");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo touches nothing else.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let err = read(&fifo, 100).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
    }

    #[test]
    fn reads_stop_at_the_cap() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("f");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(read(&file, 5).unwrap().unwrap(), b"12345");
        let err = read(&file, 4).unwrap_err();
        assert!(err.to_string().contains("larger than 4 bytes"), "{err}");
        assert!(read(&temp.path().join("none"), 4).unwrap().is_none());
    }
}
