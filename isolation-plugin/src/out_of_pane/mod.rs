//! Out of a pane: what a pane gives back to the user before its dir goes,
//! so that removing it loses nothing the user made.
//!
//! * `handover`: the one way out, run by every removal of a pane dir: the
//!   pane's data home (`user_data`), then its `.claude.json` changes.
//! * `carry_back`: what a pane changed in its `.claude.json`, three-way,
//!   and the guard rails (never what a reset did, never a value of another
//!   type).
//! * `user_claude_json`, `json_edit`: the one write into the user's
//!   `.claude.json`, editing only what changed.
//! * `verify`: the looks at the user's file a moment after each merge.
//! * `pending`: changes not merged yet, or held back, kept in
//!   `{base}/.pending-carry-back/`.
//! * [`review`]: the pending changes as a person sees and
//!   decides them (public: `host-shim carry-back`).
//!
//! Runs at close (after the grace period, on the removal thread), at
//! server start (the orphan scan's removals; the merge of what is pending,
//! on a thread of its own) and at server stop (the last look). Not whether
//! a dir goes, nor when (`pane_dirs`), and nothing that goes into a pane
//! (`into_pane`).

pub(crate) mod carry_back;
pub(crate) mod handover;
pub(crate) mod json_edit;
pub(crate) mod pending;
pub mod review;
pub(crate) mod user_claude_json;
pub(crate) mod verify;
