//! into_pane (doc to come)

pub(crate) mod login;
pub(crate) mod seed;
pub(crate) mod share;
pub(crate) mod user_claude_dir;
