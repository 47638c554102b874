//! Share links: the user's configuration, visible in every pane.
//!
//! Files the user edits and Claude only reads (`settings.json`,
//! `CLAUDE.md`, agents, commands, ...) are symlinked from the pane's
//! `config/` to the user's Claude dir, so an edit shows up in every pane at
//! once. What Claude rewrites while running stays per pane.

use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use ccmux_plugin_api::HookError;

use crate::floor::errors::io_error;

/// Links `pane_config/<name>` to `user_dir/<name>` for each name the user
/// has. An entry already in the pane (a link, or a file the pane made its
/// own) is never replaced. Returns how many links were made.
pub(crate) fn link_shared_entries(
    user_dir: &Path,
    pane_config: &Path,
    names: &[String],
) -> Result<usize, HookError> {
    let mut made = 0;
    for name in names {
        let target = user_dir.join(name);
        // Follows links on purpose: a user's settings.json is often itself
        // a link into a dotfiles repository.
        if !target.try_exists().unwrap_or(false) {
            tracing::debug!(path = %target.display(), "not sharing: the user has none");
            continue;
        }
        // A user entry that is itself a link (a dotfiles checkout) is
        // linked at what it resolves to: Claude writes settings through one
        // link only (it renames its temp file onto the link's target), so a
        // link to a link would replace the user's own link with a file.
        let target = match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.file_type().is_symlink() => {
                std::fs::canonicalize(&target).unwrap_or(target)
            }
            _ => target,
        };
        // `symlink` never replaces an existing entry: it fails instead.
        let link = pane_config.join(name);
        match symlink(&target, &link) {
            Ok(()) => made += 1,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(io_error("create the share link", &link, &err)),
        }
    }
    Ok(made)
}
