//! OpenPanes: what this plugin instance knows of every pane it has open:
//! its Claude session id and profile, so `on_pre_spawn` (which runs at
//! every respawn) needs no disk read, and its claim token, which the removal scheduled at
//! close must find again before deleting the dir.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::pane_dirs::metadata::RecordedProfile;

/// One open pane, as its `.pane-metadata` was when this instance claimed
/// (or first read) it.
#[derive(Debug, Clone)]
pub(crate) struct OpenPane {
    pub claude_session_id: String,
    pub claim: String,
    /// The dir existed before this pane was created (a restored pane): if
    /// the pane never starts, the dir is kept for the next restore.
    pub taken_back: bool,
    /// The profile in its metadata (`None`: not recorded yet).
    pub profile: Option<RecordedProfile>,
}

#[derive(Default)]
pub(crate) struct OpenPanes {
    panes: Mutex<HashMap<String, OpenPane>>,
}

impl OpenPanes {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, OpenPane>> {
        self.panes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, pane_id: &str, pane: OpenPane) {
        self.lock().insert(pane_id.to_string(), pane);
    }

    pub(crate) fn get(&self, pane_id: &str) -> Option<OpenPane> {
        self.lock().get(pane_id).cloned()
    }

    /// Notes the profile just recorded in the pane's metadata.
    pub(crate) fn set_profile(&self, pane_id: &str, profile: &RecordedProfile) {
        if let Some(pane) = self.lock().get_mut(pane_id) {
            pane.profile = Some(profile.clone());
        }
    }

    /// Forgets the pane; returns what was known of it.
    pub(crate) fn remove(&self, pane_id: &str) -> Option<OpenPane> {
        self.lock().remove(pane_id)
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Forgets every pane; returns how many there were.
    pub(crate) fn clear(&self) -> usize {
        let mut panes = self.lock();
        let count = panes.len();
        panes.clear();
        count
    }
}
