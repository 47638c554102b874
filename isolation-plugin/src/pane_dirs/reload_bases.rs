//! Which base dir each running server identity of this process uses now,
//! so that a plugin instance replaced by a reload that changed `base_dir`
//! can say which pane dirs it leaves in the old base.
//!
//! Why it is needed: after such a reload the new instance closes the
//! panes the old one opened, but looks for their dirs in the new base and
//! never finds them; the old dirs would stay forever, unmentioned. They
//! cannot be removed when the old instance goes either: their panes still
//! run. So the old instance reports them, once, with what to do.
//!
//! Instances of one server in one process are the only ones that meet
//! here (the same library, so the same static).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

static CURRENT_BASE: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());

/// Records that `server_id`'s newest plugin instance uses `base`.
pub(crate) fn record(server_id: &str, base: &Path) {
    CURRENT_BASE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(server_id.to_string(), base.to_path_buf());
}

/// Called by an instance going away while its server runs on (a reload
/// replaced it): warns about the dirs of its open panes if the server's
/// base dir is no longer `base`.
pub(crate) fn report_left_behind(server_id: &str, base: &Path, open_panes: &[String]) {
    if open_panes.is_empty() {
        return;
    }
    let current = CURRENT_BASE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(server_id)
        .cloned();
    let Some(current) = current.filter(|current| current != base) else {
        return;
    };
    let dirs: Vec<String> = open_panes
        .iter()
        .map(|id| base.join(id).display().to_string())
        .collect();
    tracing::warn!(
        old_base = %base.display(),
        new_base = %current.display(),
        dirs = %dirs.join(", "),
        "a reload changed base_dir while panes were open: their dirs stay in the old base dir, which no scan of the new one cleans; once those panes have closed, remove the dirs by hand (their conversations are in the user's Claude dir), or set base_dir back"
    );
}
