//! out_of_pane (doc to come)

pub(crate) mod carry_back;
pub(crate) mod handover;
pub(crate) mod json_edit;
pub(crate) mod pending;
pub mod review;
pub(crate) mod user_claude_json;
pub(crate) mod verify;
