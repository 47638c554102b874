//! Error messages that name the path involved and say what to do about it.
//!
//! Every failure this plugin reports reaches a person through the host's
//! log or a refused pane, usually far from the code that failed, so each
//! message carries the path and, where one exists, the fix.

use std::io;
use std::path::Path;

use ccmux_plugin_api::{HookError, HookErrorKind, InvalidPaneId};

/// An OS error while `doing` something to `path`, with a hint for the
/// failures people can fix themselves.
pub(crate) fn io_error(doing: &str, path: &Path, err: &io::Error) -> HookError {
    let hint = match err.kind() {
        io::ErrorKind::ReadOnlyFilesystem => {
            "; the filesystem is read-only: make it writable, or, if it holds the pane \
             dirs, set `base_dir` in the isolation plugin's [plugins.config] to a writable \
             directory (or disable the plugin)"
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "; the disk is full: free some space and try again"
        }
        io::ErrorKind::PermissionDenied => {
            "; check that it belongs to you and that you can write to it"
        }
        _ => "",
    };
    HookError::new(
        HookErrorKind::Io,
        format!("could not {doing} {}: {err}{hint}", path.display()),
    )
}

/// Something at `path` is not what this plugin created there (a symlink,
/// another user's directory, ...). Refusing is the safe answer: following
/// it could make the plugin write or delete outside its base dir.
pub(crate) fn refused(what: &str, path: &Path, problem: &str) -> HookError {
    HookError::new(
        HookErrorKind::Io,
        format!(
            "refusing to use {what} {}: {problem}; nothing was written through it. \
             Move it out of the way and try again",
            path.display()
        ),
    )
}

/// A pane id from the host that is not safe as a directory name.
pub(crate) fn invalid_pane_id(err: &InvalidPaneId) -> HookError {
    HookError::new(HookErrorKind::InvalidInput, err.to_string())
}

/// A server id that is not safe as a lock file name.
pub(crate) fn invalid_server_id(err: &InvalidPaneId) -> HookError {
    HookError::new(
        HookErrorKind::InvalidInput,
        format!(
            "invalid server id {:?}: {}; the host must pass its identity as a UUID",
            err.id, err.reason
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_errors_name_the_path_and_the_fix() {
        let path = Path::new("/data/ccmux/claude/main_0_1");
        for (errno, expect) in [
            (libc::EROFS, "read-only: make it writable"),
            (libc::EROFS, "set `base_dir`"),
            (libc::ENOSPC, "disk is full"),
            (libc::EDQUOT, "disk is full"),
            (libc::EACCES, "belongs to you"),
        ] {
            let err = io_error("create", path, &io::Error::from_raw_os_error(errno));
            assert_eq!(err.kind, HookErrorKind::Io);
            assert!(
                err.message.contains(path.to_str().unwrap()),
                "{}",
                err.message
            );
            assert!(err.message.contains(expect), "{errno}: {}", err.message);
        }
    }
}
