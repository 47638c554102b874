//! A pane dir's life: where pane dirs live, whose each one is, and when
//! it goes.
//!
//! * `layout`: the base dir and every path under it.
//! * `pane_dir`, `pane_lock`, `metadata`: one pane's dir, its claim (one
//!   claimer or remover at a time, across processes) and the
//!   `.pane-metadata` that says whose it is.
//! * `owner_lock`: one running server per identity.
//! * `open_panes`: what this plugin instance knows of the panes it has open.
//! * `removal`: the dirs of closed panes, removed after the grace period
//!   on one background thread.
//! * `orphans`: the scan at server start.
//! * `reload_bases`: which base dir each server uses, across reloads.
//!
//! Runs at server start (the identity lock, the orphan scan), at pane
//! create (the claim), at spawn (the config dir and the session id) and at
//! close (the removal). Not what is in a pane's `config/` (`into_pane`,
//! `user_data`) nor what a pane gives back (`out_of_pane`): a removal runs
//! the handover first through [`BeforeRemoval`](pane_dir::BeforeRemoval),
//! without depending on it.

pub(crate) mod layout;
pub(crate) mod metadata;
pub(crate) mod open_panes;
pub(crate) mod orphans;
pub(crate) mod owner_lock;
pub(crate) mod pane_dir;
pub(crate) mod pane_lock;
pub(crate) mod reload_bases;
pub(crate) mod removal;
