//! OpenPanes: the Claude session id of every pane this server has open, so
//! `on_pre_spawn` (which runs at every respawn) needs no disk read.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Default)]
pub(crate) struct OpenPanes {
    sessions: Mutex<HashMap<String, String>>,
}

impl OpenPanes {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, pane_id: &str, claude_session_id: String) {
        self.lock().insert(pane_id.to_string(), claude_session_id);
    }

    pub(crate) fn session_id(&self, pane_id: &str) -> Option<String> {
        self.lock().get(pane_id).cloned()
    }

    pub(crate) fn remove(&self, pane_id: &str) {
        self.lock().remove(pane_id);
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Forgets every pane; returns how many there were.
    pub(crate) fn clear(&self) -> usize {
        let mut sessions = self.lock();
        let count = sessions.len();
        sessions.clear();
        count
    }
}
