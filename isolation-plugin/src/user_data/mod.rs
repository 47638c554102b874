//! The user's data in a pane: what Claude keeps per session or
//! append-only (`share_data`: conversations, prompt history, checkpoints,
//! ...) and what a pane keeps its own until its dir goes (`move_home`:
//! plans).
//!
//! * `shared_data`: linked from the user's Claude dir into every pane
//!   (made there first if the user lacks it), and moved home.
//! * `rescue`: moving what sits pane-locally into the user's dir, never
//!   overwriting, deleting or writing through a link.
//! * `drift`: entries no row of [`classification`](crate::classification)
//!   knows (a newer Claude's), moved home, never deleted.
//!
//! Runs at spawn (the links, into the pane's profile's dir; a pane dir of
//! an older layout has its data moved home first) and before every removal of a pane dir, through
//! the handover (`out_of_pane`). Not `.claude.json`, the one file each
//! pane has its own of: seeded by `into_pane`, carried back by
//! `out_of_pane`.

pub(crate) mod drift;
pub(crate) mod rescue;
pub(crate) mod shared_data;
