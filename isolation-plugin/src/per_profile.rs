//! What the plugin holds for each profile: its user dir, the seed made
//! from its `.claude.json`, and the handover into it (shared data, the
//! carry-back, its own pending entries and backups). Built once, at
//! construction. A pane is filled from its profile's part at spawn, and a
//! removal hands it to the part whose dir its metadata records.

use std::sync::Arc;

use ccmux_plugin_api::{HookError, HookErrorKind};

use crate::config::{Settings, DEFAULT_PROFILE};
use crate::floor::errors::io_error;
use crate::floor::private_fs::{entry, Entry};
use crate::into_pane::seed::{ClaudeJsonSeed, SEED_RECORD};
use crate::into_pane::user_claude_dir::HostEnvironment;
use crate::out_of_pane::handover::{ClaudeJsonCarry, Handover};
use crate::pane_dirs::layout::Layout;
use crate::pane_dirs::metadata::RecordedProfile;
use crate::pane_dirs::pane_dir::{BeforeRemoval, MetadataState, PaneDir};
use crate::profiles::{or_default, unknown_profile, Profile, Profiles};
use crate::user_data::shared_data::SharedData;

/// One profile's part of the plugin.
pub(crate) struct ProfileState {
    pub profile: Profile,
    /// `None` when the profile has no user dir (no home dir).
    pub seed: Option<ClaudeJsonSeed>,
    /// What every pane of the profile hands to its user dir before its
    /// dir is removed.
    pub handover: Arc<Handover>,
}

/// Every profile's part, `default` first.
#[derive(Debug)]
pub(crate) struct ProfileStates {
    states: Vec<ProfileState>,
}

impl ProfileStates {
    pub(crate) fn new(
        settings: &Settings,
        layout: &Layout,
        env: &HostEnvironment,
    ) -> Result<Self, HookError> {
        let profiles = Profiles::discover(settings, env)?;
        let states = profiles
            .iter()
            .map(|profile| ProfileState::new(settings, layout, profile.clone()))
            .collect();
        Ok(ProfileStates { states })
    }

    /// Profile `default`'s part.
    pub(crate) fn default_state(&self) -> &ProfileState {
        // `new` always puts `default` first.
        &self.states[0]
    }

    /// Profile `name`'s part (`""` is `default`), or an error listing the
    /// known ones.
    pub(crate) fn get(&self, name: &str) -> Result<&ProfileState, HookError> {
        let name = or_default(name);
        self.states
            .iter()
            .find(|state| state.profile.name == name)
            .ok_or_else(|| unknown_profile(name, self.names()))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &ProfileState> {
        self.states.iter()
    }

    /// The part whose Claude dir is `dir` (as recorded in a pane's
    /// metadata); `None` when no profile has that dir now.
    fn with_dir(&self, dir: &str) -> Option<&ProfileState> {
        self.states
            .iter()
            .find(|state| state.dir().as_deref() == Some(dir))
    }

    fn names(&self) -> Vec<&str> {
        self.states
            .iter()
            .map(|state| state.profile.name.as_str())
            .collect()
    }

    /// Whether any profile's handover moves data home (for what the orphan
    /// scan says of a removed dir).
    pub(crate) fn move_data_home(&self) -> bool {
        self.states
            .iter()
            .any(|state| state.handover.data.is_some())
    }
}

impl std::fmt::Debug for ProfileState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileState")
            .field("profile", &self.profile)
            .field("handover", &self.handover)
            .finish_non_exhaustive()
    }
}

impl ProfileState {
    /// A named profile whose dir is missing is used as `default` is when
    /// `~/.claude` is missing: nothing is made for it at spawn; Claude
    /// makes the dir itself (with its own modes) when it first writes
    /// there, the login for one, and what the pane keeps meanwhile moves
    /// home when it closes. But a missing *parent* is taken for a typo in
    /// plugins.toml: refused with the path, rather than a pane whose
    /// account Claude would make somewhere nobody meant.
    ///
    /// `Some(why)` when the pane must be refused (not a failure of the
    /// plugin's: a person's typo, which must not count towards switching
    /// the plugin off).
    pub(crate) fn named_dir_problem(&self) -> Result<Option<String>, HookError> {
        let Some(user) = self
            .profile
            .user
            .as_ref()
            .filter(|_| !self.profile.is_default())
        else {
            return Ok(None);
        };
        let dir = &user.dir;
        if !matches!(
            entry(dir).map_err(|err| io_error("inspect", dir, &err))?,
            Entry::Missing
        ) {
            return Ok(None);
        }
        Ok(match dir.parent() {
            Some(parent) if !parent.is_dir() => Some(format!(
                "profile {:?}: its Claude dir {} does not exist, nor does its parent {}; create the parent, or fix `profiles.{}` in [plugins.config] of plugins.toml",
                self.profile.name,
                dir.display(),
                parent.display(),
                self.profile.name
            )),
            _ => None,
        })
    }

    /// The profile's Claude dir as recorded in pane metadata; `None` when
    /// unknown (no home dir) or not UTF-8.
    pub(crate) fn dir(&self) -> Option<String> {
        let user = self.profile.user.as_ref()?;
        user.dir.to_str().map(str::to_owned)
    }

    /// What a pane put in this profile records in its metadata.
    pub(crate) fn record(&self) -> RecordedProfile {
        RecordedProfile {
            name: self.profile.name.clone(),
            dir: self.dir(),
        }
    }

    fn new(settings: &Settings, layout: &Layout, profile: Profile) -> Self {
        let user = profile.user.as_ref();
        let seed = user.map(|user| {
            ClaudeJsonSeed::new(
                user.claude_json.clone(),
                &settings.seed_keys,
                &settings.project_keys,
            )
        });
        let data = user.map(|user| {
            SharedData::new(
                user.dir.clone(),
                settings.share_data.clone(),
                settings.move_home.clone(),
                settings.share.clone(),
            )
        });
        let claude_json = user
            .filter(|_| settings.carry_back)
            .map(|user| ClaudeJsonCarry::new(settings, layout, user));
        ProfileState {
            seed,
            handover: Arc::new(Handover { data, claude_json }),
            profile,
        }
    }
}

/// The profile a pane dir is in: the one recorded at its first spawn;
/// `default` for a dir filled before profiles existed (no profile in its
/// metadata, something in its `config/`); `None` for a dir never spawned
/// (nothing of any profile's in it yet).
pub(crate) fn recorded_profile(
    dir: &PaneDir,
    recorded: Option<&RecordedProfile>,
) -> Option<RecordedProfile> {
    if let Some(recorded) = recorded {
        return Some(recorded.clone());
    }
    let filled = std::fs::read_dir(dir.config_dir())
        .is_ok_and(|mut entries| entries.next().is_some())
        || std::fs::symlink_metadata(dir.root().join(SEED_RECORD)).is_ok();
    filled.then(|| RecordedProfile {
        name: DEFAULT_PROFILE.to_string(),
        dir: None,
    })
}

/// A removal hands a pane's dir over to the Claude dir it was filled from,
/// and to no other: when no profile has that dir any more (the config
/// dropped the profile or pointed it elsewhere), the dir is kept.
impl BeforeRemoval for ProfileStates {
    fn hand_over(&self, pane: &PaneDir, config: &std::path::Path) -> Result<(), HookError> {
        let recorded = match pane.read_metadata()? {
            MetadataState::Valid(found) => found.recorded_profile(),
            // The callers remove only what metadata says is theirs, or an
            // unused skeleton, which holds nothing of any profile's.
            MetadataState::Missing | MetadataState::Invalid(_) => None,
        };
        let state = match &recorded {
            Some(RecordedProfile {
                name,
                dir: Some(dir),
            }) => self.with_dir(dir).ok_or_else(|| {
                format!(
                    "pane {} was filled from profile {name:?}'s Claude dir {dir}, which no profile of plugins.toml names now",
                    pane.id()
                )
            }),
            // From before profiles (or a profile without a known dir): by
            // name, `default` when none.
            Some(RecordedProfile { name, dir: None }) => self.get(name).map_err(|err| {
                format!(
                    "pane {} is in profile {name:?}, which plugins.toml no longer names ({})",
                    pane.id(),
                    err.message
                )
            }),
            None => Ok(self.default_state()),
        };
        match state {
            Ok(state) => state.handover.run(pane, config),
            Err(why) => Err(HookError::new(
                HookErrorKind::Failed,
                format!(
                    "{why}, so what it holds has no account to go to; its dir is kept until that profile (with that dir) is back in [plugins.config.profiles]"
                ),
            )),
        }
    }
}
