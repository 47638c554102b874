//! The floor: careful primitives the rest stands on, knowing nothing of
//! panes, base dirs or Claude.
//!
//! * `private_fs`: files and dirs created 0600/0700, reads bounded and
//!   never through a link, atomic writes, link-refusing checks.
//! * `errors`: error messages that name the path and say what to do.
//! * `process`: whether a process has gone.
//!
//! Runs under every hook, never on its own. Not policy: what may be
//! created, linked, moved or removed is decided by the folders above;
//! nothing here imports another folder of this crate.

pub(crate) mod errors;
pub(crate) mod private_fs;
pub(crate) mod process;
