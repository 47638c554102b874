//! pane_dirs (doc to come)

pub(crate) mod layout;
pub(crate) mod metadata;
pub(crate) mod open_panes;
pub(crate) mod orphans;
pub(crate) mod owner_lock;
pub(crate) mod pane_dir;
pub(crate) mod pane_lock;
pub(crate) mod reload_bases;
pub(crate) mod removal;
