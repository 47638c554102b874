//! Into a pane: the user's identity, so that a pane's Claude is the
//! user's Claude rather than a fresh install.
//!
//! * `user_claude_dir`: where the user's own Claude state is (found once,
//!   when the plugin loads).
//! * `share`: links to the user's configuration (`settings.json`,
//!   `CLAUDE.md`, agents, ...).
//! * `seed`: a new pane's `.claude.json`, from the user-level keys and
//!   each project's setup of the user's own.
//! * `login`: which credentials a pane's Claude uses.
//!
//! Runs at spawn, once the pane's profile is known (share links, seed,
//! login, and the variable naming the user's dir). Reads the user's files, never writes
//! them. Not the user's data (conversations, history: `user_data`), and
//! nothing that goes back to the user (`out_of_pane`).

pub(crate) mod login;
pub(crate) mod seed;
pub(crate) mod share;
pub(crate) mod user_claude_dir;
