//! Review: what a person sees of the carry-backs kept pending, and what
//! they decide (`host-shim carry-back`). The one part of this crate a host
//! may link, never to load the plugin: only to read and act on its store.
//!
//! Each entry is shown item by item, as the next server start would see it:
//! what the pane started with, what it ended with, and what the user's file
//! holds now. Applying an entry merges all of its items, the ones held back
//! too (a person has chosen them), with the user's own later changes still
//! winning; dropping it removes it. Nothing else of the user's is touched.

use std::path::Path;

use ccmux_plugin_api::{HookError, HookErrorKind};
use serde_json::Value;

use crate::config::{IsolationConfig, DEFAULT_PROFILE};
use crate::into_pane::user_claude_dir::HostEnvironment;
use crate::out_of_pane::carry_back::{get, wrong_type, Change, HeldWhy, Precedence};
use crate::out_of_pane::handover::{ClaudeJsonCarry, NotComparable};
use crate::out_of_pane::pending::{Pending, PendingCarryBacks};
use crate::out_of_pane::user_claude_json::MergeJob;
use crate::pane_dirs::layout::Layout;
use crate::profiles::Profiles;

/// The carry-backs into one profile's `.claude.json`.
pub struct CarryBackStore {
    profile: String,
    carry: ClaudeJsonCarry,
}

/// One pending entry, as a person reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    /// Its name in the store: what `apply` and `drop` take.
    pub name: String,
    pub pane_id: String,
    /// Why it is held for the user; `None`: the next server start merges it.
    pub held: Option<String>,
    /// Its items that the user's file does not hold yet, as the next merge
    /// would see them.
    pub items: Vec<ItemChange>,
    /// Why its items cannot be told, if they cannot.
    pub unreadable: Option<String>,
}

/// One item of an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemChange {
    /// Where in `.claude.json`: `mcpServers.name`, `projects["/x"].key`.
    pub item: String,
    /// What the pane started with, ended with, and what the user's file
    /// holds now (`None`: absent).
    pub seed: Option<Value>,
    pub pane: Option<Value>,
    pub user: Option<Value>,
    /// Why the guard rails hold it back, if they do.
    pub held_because: Option<String>,
}

impl CarryBackStore {
    /// The store of profile `default` of the plugin configured by `config`
    /// (its `[plugins.config]` table), with relative paths resolved
    /// against `config_dir` (the directory of plugins.toml).
    pub fn open(
        config: IsolationConfig,
        config_dir: &Path,
        env: &HostEnvironment,
    ) -> Result<Self, HookError> {
        let mut stores = Self::open_all(config, config_dir, env)?;
        match stores.first() {
            Some(store) if store.profile == DEFAULT_PROFILE => Ok(stores.swap_remove(0)),
            _ => Err(HookError::new(
                HookErrorKind::InvalidInput,
                "the user's Claude dir is unknown (no home dir): there is no .claude.json to carry back into",
            )),
        }
    }

    /// One store per profile, `default` first (left out when the home dir
    /// is unknown), then the named ones by name.
    pub fn open_all(
        config: IsolationConfig,
        config_dir: &Path,
        env: &HostEnvironment,
    ) -> Result<Vec<Self>, HookError> {
        let settings = config.resolve(config_dir, env.home())?;
        let layout = Layout::new(settings.base_dir.clone());
        let profiles = Profiles::discover(&settings, env)?;
        let mut files = std::collections::HashSet::new();
        Ok(profiles
            .iter()
            .filter_map(|profile| {
                let user = profile.user.as_ref()?;
                // Two names of one account (`default` is `work`'s dir in a
                // server started in a work pane): one store, listed once.
                if !files.insert(user.claude_json.clone()) {
                    return None;
                }
                Some(CarryBackStore {
                    profile: profile.name.clone(),
                    carry: ClaudeJsonCarry::new(&settings, &layout, user),
                })
            })
            .collect())
    }

    /// The profile whose `.claude.json` the entries go into.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The user's `.claude.json` the entries go into.
    pub fn user_claude_json(&self) -> &Path {
        &self.carry.user.path
    }

    /// Every entry, oldest first.
    pub fn list(&self) -> Result<Vec<PendingEntry>, HookError> {
        let pending = &self.carry.pending;
        let Some(lock) = self.lock()? else {
            return Ok(Vec::new());
        };
        pending
            .list(&lock)
            .iter()
            .map(|entry| self.describe(entry))
            .collect()
    }

    /// Merges every item of entry `name` (held ones too), then drops it.
    /// Returns how many items were written.
    pub fn apply(&self, name: &str) -> Result<usize, HookError> {
        let (_lock, entry) = self.entry(name)?;
        let Some(files) = entry.read()? else {
            return Err(HookError::new(
                HookErrorKind::Failed,
                format!("{name} holds no .claude.json; drop it"),
            ));
        };
        let plan = match self.carry.plan(&files, Precedence::UserWins) {
            Ok(plan) => plan,
            Err(NotComparable(why)) => {
                return Err(HookError::new(
                    HookErrorKind::Failed,
                    format!(
                        "{why}; nothing of it can be applied: look at {} and drop it",
                        entry.path.display()
                    ),
                ))
            }
        };
        let written = match plan {
            Some(plan) => {
                let mut changes = plan.job.changes;
                changes.extend(plan.held.into_iter().map(|held| held.change));
                let applied = self.carry.user.merge(vec![MergeJob {
                    pane_id: files.pane_id.clone(),
                    changes,
                    precedence: plan.job.precedence,
                    check_types: false,
                }])?;
                applied.iter().map(|applied| applied.written).sum()
            }
            None => 0,
        };
        self.carry.pending.drop_merged(&entry);
        Ok(written)
    }

    /// Removes entry `name` without merging anything of it.
    pub fn drop_entry(&self, name: &str) -> Result<(), HookError> {
        let (_lock, entry) = self.entry(name)?;
        self.carry.pending.drop_merged(&entry);
        Ok(())
    }

    /// Entry `name`, with the store locked for as long as the lock is kept.
    fn entry(&self, name: &str) -> Result<(std::fs::File, Pending), HookError> {
        let lock = self.lock()?.ok_or_else(|| unknown(name))?;
        let entry = self
            .carry
            .pending
            .find(&lock, name)
            .ok_or_else(|| unknown(name))?;
        Ok((lock, entry))
    }

    /// The store, locked against a server merging it; `None` if there is
    /// no store.
    fn lock(&self) -> Result<Option<std::fs::File>, HookError> {
        let store: &PendingCarryBacks = &self.carry.pending;
        if !store.exists() {
            return Ok(None);
        }
        store.lock().map(Some).ok_or_else(|| {
            HookError::new(
                HookErrorKind::Failed,
                "a ccmux server is merging the pending carry-backs right now (or the store cannot be locked: see the warning above); try again in a moment",
            )
        })
    }

    fn describe(&self, entry: &Pending) -> Result<PendingEntry, HookError> {
        let held = entry.held_reason();
        let mut described = PendingEntry {
            name: entry.name.clone(),
            pane_id: entry.pane_id.clone(),
            held,
            items: Vec::new(),
            unreadable: None,
        };
        let files = match entry.read() {
            Ok(Some(files)) => files,
            Ok(None) => {
                described.unreadable = Some("it holds no .claude.json".into());
                return Ok(described);
            }
            Err(err) => {
                described.unreadable = Some(err.message.to_string());
                return Ok(described);
            }
        };
        let plan = match self.carry.plan(&files, Precedence::UserWins) {
            Ok(Some(plan)) => plan,
            Ok(None) => return Ok(described),
            Err(NotComparable(why)) => {
                described.unreadable = Some(why);
                return Ok(described);
            }
        };
        let held: Vec<(Change, Option<HeldWhy>)> = plan
            .held
            .into_iter()
            .map(|held| (held.change, Some(held.why)))
            .chain(plan.job.changes.into_iter().map(|change| (change, None)))
            .collect();
        let all: Vec<&Change> = held.iter().map(|(change, _)| change).collect();
        let user = self.carry.user.current(&all)?;
        for (change, why) in &held {
            let user_now = get(&user, &change.path).cloned();
            // Already in the user's file: nothing left to decide.
            if user_now == change.pane {
                continue;
            }
            let held_because = why.map(|why| why.to_string()).or_else(|| {
                let refused = matches!((&user_now, &change.pane), (Some(now), Some(pane))
                    if wrong_type(now, pane));
                refused.then(|| HeldWhy::WrongType.to_string())
            });
            described.items.push(ItemChange {
                item: change.path.to_string(),
                seed: change.seed.clone(),
                pane: change.pane.clone(),
                user: user_now,
                held_because,
            });
        }
        Ok(described)
    }
}

fn unknown(name: &str) -> HookError {
    HookError::new(
        HookErrorKind::InvalidInput,
        format!("no pending carry-back is called {name:?}; `host-shim carry-back list` names them"),
    )
}
