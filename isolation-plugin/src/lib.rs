//! Per-pane Claude Code isolation for ccmux: one `CLAUDE_CONFIG_DIR` per
//! pane, while every pane keeps the user's login, settings and identity.
//!
//! # Why
//!
//! Claude Code keeps its state in `~/.claude.json` and `~/.claude/`, and
//! rewrites `.claude.json` about 1.5 times a second without locking. Two
//! instances side by side (two panes) corrupt it. This plugin gives each
//! pane its own directory:
//!
//! ```text
//! {base}/{pane-id}/.pane-metadata   owner and Claude session id of the pane
//! {base}/{pane-id}/config/          the pane's CLAUDE_CONFIG_DIR
//! {base}/{pane-id}/sessions/        reserved for ccmux's per-pane records
//! {base}/.owners/{server_id}.lock   held by the running server
//! ```
//!
//! and keeps the user's identity: the user's configuration is symlinked in,
//! the user-level keys of their `.claude.json` are seeded, and
//! `CLAUDE_SECURESTORAGE_CONFIG_DIR` points at the user's own Claude dir so
//! every pane shares one login. What Claude keeps per session or
//! append-only (conversations, prompt history, checkpoints, ...) is shared
//! data: linked to the user's own dir, so it outlives every pane.
//!
//! # What it is not
//!
//! Not a sandbox: it separates Claude's *state*, not its privileges; Claude
//! in a pane can still read and write everything the user can.
//!
//! # Reading this crate
//!
//! This file is the hook flow, top to bottom. The rest is in folders by
//! flow; each opens with what it does, when it runs and what it is not:
//!
//! * `pane_dirs`: a pane dir's life: where it lives, whose it is (the
//!   claim at pane create, one running server per identity) and when it
//!   goes (the removal at close, the orphan scan at server start).
//! * `into_pane`: the user's identity carried into a pane at spawn, once
//!   its profile is known: share links, the seeded `.claude.json`, the
//!   login.
//! * `user_data`: the user's data (conversations, history, ...), linked
//!   into every pane at spawn and moved home before its dir goes (what
//!   no row of [`classification`] knows included, never deleted).
//! * `out_of_pane`: what a pane gives back before its dir goes: the
//!   handover, the pane's `.claude.json` changes merged into the user's
//!   (never what a reset did), looked at again a moment later, and kept
//!   pending when they cannot go in yet; [`review`]: what a person sees
//!   and decides of them (`host-shim carry-back`).
//! * `floor`: link-refusing, bounded file primitives, error messages that
//!   name the path, whether a process has gone.
//!
//! and three tables: [`config`], the `[plugins.config]` table and its
//! defaults, [`classification`], every entry the supported Claude
//! releases write in a config dir, and [`profiles`], the accounts a pane
//! can be in (a name and a Claude dir each; `default` without one). What
//! the plugin holds for each profile (its seed, its handover) is
//! `per_profile`, which a removal reaches by the Claude dir recorded in
//! the pane's metadata.
//!
//! Imports go one way: `per_profile` uses every other module;
//! `out_of_pane` uses every folder and `profiles`; `profiles` uses
//! `into_pane` (where a user dir is found); `into_pane` uses `pane_dirs`,
//! the other tables and `floor`; `pane_dirs` and `user_data`
//! use only the tables and `floor`; `floor` uses nothing of this crate. A
//! removal in `pane_dirs` runs the handover of `out_of_pane` through a
//! trait (`BeforeRemoval`) rather than an import.
//!
//! Unix only: it relies on symlinks, file modes and `O_NOFOLLOW`.

pub mod classification;
pub mod config;
mod floor;
mod into_pane;
mod out_of_pane;
mod pane_dirs;
mod per_profile;
pub mod profiles;
mod user_data;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use ccmux_plugin_api::{
    ExitKind, HookError, HookErrorKind, InitContext, PaneExit, PaneInfo, Plugin, ServerStart,
    ServerStop, SpawnEnv,
};

pub use config::IsolationConfig;
use config::{
    Settings, CCMUX_CLAUDE_SESSION_ID, CCMUX_PANE_ID, CCMUX_PROFILE, CCMUX_USER_CLAUDE_CONFIG_DIR,
    CLAUDE_CODE_PROJECT_DIR_NAME, CLAUDE_CODE_REMOTE_MEMORY_DIR, CLAUDE_CONFIG_DIR,
    CLAUDE_SECURESTORAGE_CONFIG_DIR, DEFAULT_PROFILE,
};
pub use into_pane::user_claude_dir::{HostEnvironment, UserClaudeDir};
use into_pane::{login, share};
use out_of_pane::handover::PendingPass;
pub use out_of_pane::review;
use pane_dirs::layout::Layout;
use pane_dirs::metadata;
pub use pane_dirs::metadata::PaneMetadata;
use pane_dirs::metadata::RecordedProfile;
use pane_dirs::open_panes::{OpenPane, OpenPanes};
use pane_dirs::orphans::{remove_orphans, ScanPolicy};
use pane_dirs::owner_lock::OwnerLock;
use pane_dirs::pane_dir::{Claimed, MetadataState, PaneDir};
use pane_dirs::reload_bases;
use pane_dirs::removal::{Removal, RemovalQueue};
use per_profile::{recorded_profile, ProfileState, ProfileStates};

/// The plugin. One instance per plugins.toml entry; hooks may run on
/// several threads at once.
pub struct IsolationPlugin {
    settings: Settings,
    layout: Layout,
    /// For each profile: where the user's own Claude state for that
    /// account is (for `default`, `None` if it cannot be found: panes are
    /// then isolated but not seeded), its seed, and what every pane of it
    /// hands to it before its dir is removed (its shared data, also linked
    /// in at spawn, and `.claude.json` changes).
    profiles: Arc<ProfileStates>,
    /// Set between `on_server_start` and `on_server_stop`.
    server: Mutex<Option<RunningServer>>,
    /// The merges of pending carry-backs a server start began (one per
    /// profile with some), while they run.
    pending_passes: Mutex<Vec<PendingPass>>,
    panes: OpenPanes,
    removals: RemovalQueue,
}

struct RunningServer {
    lock: OwnerLock,
    instance_id: String,
}

/// Who owns the panes created now: the running server.
struct Owner {
    server_id: String,
    instance_id: String,
}

impl Plugin for IsolationPlugin {
    const NAME: &'static str = "isolation";
    /// It refuses a pane that names an unknown profile or another than the
    /// one it is in. And while it cannot be asked (an optional entry that
    /// failed), a pane let through would run in the server's environment:
    /// the default account's `.claude.json`, shared, and for a pane meant
    /// for another profile, the wrong account. So its faults refuse panes
    /// unless plugins.toml says `on_fault = "admit"`.
    const REFUSES_PANES: bool = true;
    type Config = IsolationConfig;

    fn new(config: IsolationConfig, ctx: &InitContext) -> Result<Self, HookError> {
        Self::with_environment(config, ctx, &HostEnvironment::inherited())
    }

    /// Takes this identity's lock, merges the `.claude.json` changes kept
    /// pending by earlier failed merges, then removes (after handing them
    /// over) the dirs of this server's panes that were not restored. An
    /// instance that joins the lock of the running server (a reload) skips
    /// both.
    fn on_server_start(&self, event: &ServerStart) -> Result<(), HookError> {
        let server_id = event.server_id.as_str();
        let joined = {
            let mut server = self.server();
            match server.as_mut() {
                Some(running) if running.lock.server_id() != server_id => {
                    return Err(HookError::new(
                        HookErrorKind::InvalidInput,
                        format!(
                            "on_server_start for identity {server_id}, but this plugin instance is \
                             running as {}; stop the server first",
                            running.lock.server_id()
                        ),
                    ));
                }
                Some(running) => {
                    running.instance_id = event.instance_id.to_string();
                    false
                }
                None => {
                    let lock = OwnerLock::acquire(&self.layout, server_id)?;
                    let joined = lock.joined();
                    *server = Some(RunningServer {
                        lock,
                        instance_id: event.instance_id.to_string(),
                    });
                    joined
                }
            }
        };
        reload_bases::record(server_id, self.layout.base());
        if joined {
            // A reload replaying on_server_start into this new instance,
            // while the server (and the old instance) go on running. The
            // server did its scan at its real start; scanning now would
            // take panes being created or in their grace period for
            // orphans, because this instance knows none of them.
            tracing::debug!(
                server_id,
                "joined the running server's identity lock (plugin reload): skipping the orphan scan"
            );
            tracing::info!(
                server_id,
                base = %self.layout.base().display(),
                "per-pane Claude isolation started in the running server"
            );
            return Ok(());
        }

        // Merges that failed before (the user's file was invalid, say) go
        // in now that it may be fixed: on a thread of their own, so the
        // first pane never waits for them.
        *self.pending_passes() = self
            .profiles
            .iter()
            .filter_map(|state| PendingPass::start(Arc::clone(&state.handover)))
            .collect();
        let open = self.panes.ids();
        let keep: HashSet<&str> = event
            .live_panes
            .iter()
            .map(ccmux_plugin_api::RString::as_str)
            .chain(open.iter().map(String::as_str))
            .collect();
        let removed = remove_orphans(
            &self.layout,
            &ScanPolicy {
                server_id,
                keep,
                max_age: self.settings.max_age,
                now: SystemTime::now(),
                handover: &*self.profiles,
                moves_data_home: self.profiles.move_data_home(),
            },
        );
        tracing::info!(
            server_id,
            base = %self.layout.base().display(),
            orphans_removed = removed.len(),
            "per-pane Claude isolation started"
        );
        Ok(())
    }

    /// Creates (or takes back) the pane's dir. What goes into it depends
    /// on the pane's profile, which its spawn environment names: filled in
    /// at pre-spawn.
    fn on_pane_create(&self, pane: &PaneInfo) -> Result<(), HookError> {
        // The id is checked before any path is built from it.
        let dir = self.layout.pane(pane.pane_id.as_str())?;
        let owner = self.owner()?;
        if self.removals.cancel(dir.id()) {
            tracing::info!(pane = %dir.id(), "pane re-created within its grace period: keeping its dir");
        }
        self.layout.ensure_base()?;
        let Claimed {
            metadata,
            taken_back,
        } = dir.claim(&owner.server_id, &owner.instance_id)?;
        let profile = metadata.recorded_profile();
        tracing::debug!(
            pane = %dir.id(),
            claude_session_id = %metadata.claude_session_id,
            path = %dir.root().display(),
            "pane isolated"
        );
        self.panes.insert(
            dir.id(),
            OpenPane {
                claude_session_id: metadata.claude_session_id,
                claim: metadata.claim,
                taken_back,
                profile,
            },
        );
        Ok(())
    }

    /// Puts the pane in its profile (the one it is in, else the one its
    /// environment names, else `default`), fills its Claude dir with that
    /// account's identity and points the pane's Claude at it. Refuses a
    /// pane that names another profile than the one it is in, or an
    /// unknown one; fails rather than let a pane start without isolation.
    fn on_pre_spawn(&self, pane: &PaneInfo, env: &mut SpawnEnv<'_>) -> Result<(), HookError> {
        let dir = self.layout.pane(pane.pane_id.as_str())?;
        let owner = self.owner()?;
        let not_isolated = |why: &str| {
            HookError::new(
                HookErrorKind::Failed,
                format!(
                    "pane {} {why}; refusing to start it without isolation (was on_pane_create refused?)",
                    dir.id()
                ),
            )
        };
        let Some(config_dir) = dir.existing_config_dir()? else {
            return Err(not_isolated(&format!(
                "has no isolation dir at {}",
                dir.config_dir().display()
            )));
        };
        let Some(config_dir) = config_dir.to_str().map(str::to_owned) else {
            return Err(not_isolated("has a config dir path that is not UTF-8"));
        };
        let open = match self.panes.get(dir.id()) {
            Some(open) => open,
            None => self
                .open_pane_on_disk(&dir, &owner)
                .map_err(|why| not_isolated(&why))?,
        };
        let Some(profile) = self.choose_profile(&dir, &open, env)? else {
            return Ok(());
        };
        self.keep_user_identity(&dir, profile)?;

        env.set(CLAUDE_CONFIG_DIR, config_dir);
        env.set(CCMUX_PANE_ID, dir.id());
        env.set(CCMUX_CLAUDE_SESSION_ID, open.claude_session_id);
        env.set(CCMUX_PROFILE, profile.profile.name.as_str());
        Self::record_user_dir(profile, env);
        self.share_credentials(profile, env);
        Self::share_memory(profile, env);
        Self::keep_projects_where_the_user_finds_them(profile, env);
        for (key, value) in &self.settings.extra_env {
            env.set(key, value);
        }
        Ok(())
    }

    /// Schedules the removal of the pane's dir once its process has gone.
    fn on_pane_close(&self, pane: &PaneInfo, exit: &PaneExit) -> Result<(), HookError> {
        let dir = self.layout.pane(pane.pane_id.as_str())?;
        let known = self.panes.remove(dir.id());
        let Ok(owner) = self.owner() else {
            tracing::warn!(pane = %dir.id(), "pane closed while the server is not started: keeping its dir");
            return Ok(());
        };
        let wait_for = match (exit.process_gone, exit.pid) {
            (true, _) => None,
            (false, 0) => {
                tracing::warn!(
                    pane = %dir.id(),
                    path = %dir.root().display(),
                    "keeping the dir of a closed pane: its process may still run and its pid is unknown; the next server start removes it"
                );
                return Ok(());
            }
            (false, pid) => Some(pid),
        };
        let never_started = exit.kind == ExitKind::Unknown && exit.pid == 0;
        let claim = match known {
            // A restored pane that could not start (its command is gone, a
            // later plugin refused it): the conversation in its dir is
            // still to be resumed, so the dir stays for the next restore.
            Some(open) if never_started && open.taken_back => {
                tracing::info!(
                    pane = %dir.id(),
                    path = %dir.root().display(),
                    "a pane that never started closed: keeping the dir it took back, for the next restore"
                );
                return Ok(());
            }
            Some(open) => open.claim,
            // A pane that never started (a later plugin refused it, its
            // command was not found) and that this instance never claimed:
            // its dir, if any, is not this close's to remove.
            None if never_started => {
                tracing::debug!(pane = %dir.id(), "closing a pane that never started and that this instance did not claim: keeping its dir");
                return Ok(());
            }
            // A pane this instance neither claimed nor read: one the
            // previous instance opened, before a reload. What is on disk
            // now is the claim this close ends.
            None => match Self::claim_on_disk(&dir)? {
                Some(claim) => claim,
                None => return Ok(()),
            },
        };
        let removal = Removal {
            pane: dir,
            owner: owner.server_id,
            claim,
            wait_for,
            handover: self.profiles.clone(),
        };
        if self.settings.grace_period.is_zero() {
            removal.try_run()?;
        } else {
            self.removals.schedule(removal, self.settings.grace_period);
        }
        Ok(())
    }

    /// Finishes pending removals now, keeps the dirs of open panes (they
    /// are restored at the next start) and releases the identity lock.
    fn on_server_stop(&self, event: &ServerStop) -> Result<(), HookError> {
        // Taken first: an on_pane_close racing this stop then finds no
        // running server and keeps its dir for the next start's orphan
        // scan, rather than scheduling a removal the flush has missed. The
        // lock itself goes only at the end, with `running`.
        let running = self.server().take();
        // Pending passes still running end at once, the rest pending.
        self.stop_pending_passes();
        self.removals.flush();
        // Merges just made are not looked at again now: kept pending.
        self.finish_verifiers();
        let kept = self.panes.clear();
        if let Some(running) = running {
            if running.instance_id != event.instance_id.as_str() {
                tracing::warn!(
                    expected = %running.instance_id,
                    got = %event.instance_id,
                    "on_server_stop names another server run; stopping anyway"
                );
            }
            tracing::info!(
                open_panes_kept = kept,
                lock = %running.lock.path().display(),
                "per-pane Claude isolation stopped"
            );
            running.lock.release();
        }
        Ok(())
    }
}

impl IsolationPlugin {
    /// Builds the plugin with an explicit environment instead of the
    /// process's own (home dir, inherited `CLAUDE_CONFIG_DIR`).
    pub fn with_environment(
        config: IsolationConfig,
        ctx: &InitContext,
        env: &HostEnvironment,
    ) -> Result<Self, HookError> {
        let config_dir =
            std::path::absolute(&ctx.config_dir).unwrap_or_else(|_| ctx.config_dir.clone());
        let settings = config.resolve(&config_dir, env.home())?;
        let layout = Layout::new(settings.base_dir.clone());
        let profiles = Arc::new(ProfileStates::new(&settings, &layout, env)?);
        Ok(IsolationPlugin {
            removals: RemovalQueue::start()?,
            settings,
            layout,
            profiles,
            server: Mutex::new(None),
            pending_passes: Mutex::new(Vec::new()),
            panes: OpenPanes::default(),
        })
    }

    /// Where the user's own Claude state for profile `default` was found,
    /// if anywhere.
    pub fn user_claude_dir(&self) -> Option<&UserClaudeDir> {
        self.profiles.default_state().profile.user.as_ref()
    }

    fn pending_passes(&self) -> MutexGuard<'_, Vec<PendingPass>> {
        self.pending_passes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends every pending pass at once, the rest pending.
    fn stop_pending_passes(&self) {
        for pass in std::mem::take(&mut *self.pending_passes()) {
            pass.stop();
        }
    }

    /// Every profile's last look at its merges, at once.
    fn finish_verifiers(&self) {
        for state in self.profiles.iter() {
            if let Some(carry) = &state.handover.claude_json {
                carry.verifier.finish();
            }
        }
    }

    /// Waits for the pending passes of the last server start to end; for
    /// tests, which look at what they merged.
    #[cfg(test)]
    pub(crate) fn wait_for_pending_pass(&self) {
        for pass in std::mem::take(&mut *self.pending_passes()) {
            pass.wait();
        }
    }

    fn server(&self) -> MutexGuard<'_, Option<RunningServer>> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn owner(&self) -> Result<Owner, HookError> {
        match self.server().as_ref() {
            Some(running) => Ok(Owner {
                server_id: running.lock.server_id().to_string(),
                instance_id: running.instance_id.clone(),
            }),
            None => Err(HookError::new(
                HookErrorKind::InvalidInput,
                "pane hook before on_server_start: the isolation plugin needs the server's identity \
                 to know whose panes are whose; the host must call on_server_start first",
            )),
        }
    }

    /// The profile the pane goes in: the one it is in (recorded at its
    /// first spawn), else the one its environment names (`CCMUX_PROFILE`),
    /// else `default`; recorded now if new, before anything of the
    /// profile's goes into the dir. `None` when the pane is refused (`env`
    /// says why): it names another profile than the one it is in, or one
    /// plugins.toml does not name; its profile is gone from plugins.toml or
    /// points at another dir than the one the pane was filled from; or the
    /// profile's dir cannot be right. Never a fallback to another account.
    fn choose_profile(
        &self,
        dir: &PaneDir,
        open: &OpenPane,
        env: &mut SpawnEnv<'_>,
    ) -> Result<Option<&ProfileState>, HookError> {
        let asked = env
            .get(CCMUX_PROFILE)
            .filter(|name| !name.is_empty())
            .map(str::to_owned);
        let recorded = recorded_profile(dir, open.profile.as_ref());
        let refusal = match (&recorded, &asked) {
            (Some(recorded), Some(asked)) if &recorded.name != asked => Some(format!(
                "pane {} is in profile {:?}, not {asked:?} (named by CCMUX_PROFILE in its environment): a pane keeps the account it was made in; start it in profile {:?} (host-shim: --profile {}, or no --profile) or open a new pane in {asked:?}",
                dir.id(),
                recorded.name,
                recorded.name,
                recorded.name
            )),
            _ => None,
        };
        if let Some(why) = refusal {
            env.refuse(why);
            return Ok(None);
        }
        let name = match (&recorded, asked) {
            (Some(recorded), _) => recorded.name.clone(),
            (None, Some(asked)) => asked,
            (None, None) => DEFAULT_PROFILE.to_string(),
        };
        let profile = match self.profiles.get(&name) {
            Ok(profile) => profile,
            Err(err) if recorded.is_some() => {
                env.refuse(format!(
                    "pane {} is in profile {name:?}, which plugins.toml no longer names ({}); add the profile back to restore the pane",
                    dir.id(),
                    err.message
                ));
                return Ok(None);
            }
            Err(err) => {
                env.refuse(format!(
                    "pane {} (profile named by CCMUX_PROFILE in its environment): {}",
                    dir.id(),
                    err.message
                ));
                return Ok(None);
            }
        };
        if let Some(RecordedProfile { dir: Some(was), .. }) = &recorded {
            if profile.dir().as_deref() != Some(was.as_str()) {
                env.refuse(format!(
                    "pane {} was filled from profile {name:?}'s Claude dir {was}, but that profile's dir is now {}: a pane keeps the account it was made in; set `profiles.{name}` back to {was} to restore it",
                    dir.id(),
                    profile.dir().as_deref().unwrap_or("unknown")
                ));
                return Ok(None);
            }
        }
        if let Some(why) = profile.named_dir_problem()? {
            env.refuse(format!("pane {}: {why}", dir.id()));
            return Ok(None);
        }
        if open.profile.is_none() {
            let record = profile.record();
            dir.record_profile(&open.claim, &record)?;
            self.panes.set_profile(dir.id(), &record);
        }
        Ok(Some(profile))
    }

    /// Share links, shared data and the seeded `.claude.json`: what makes a
    /// pane's Claude the user's Claude (in the pane's profile) rather than
    /// a fresh install. A respawn finds them made and changes nothing.
    fn keep_user_identity(&self, dir: &PaneDir, profile: &ProfileState) -> Result<(), HookError> {
        let Some(user) = &profile.profile.user else {
            return Ok(());
        };
        let config_dir = dir.config_dir();
        let linked = share::link_shared_entries(&user.dir, &config_dir, &self.settings.share)?;
        let shared = match &profile.handover.data {
            Some(data) => data.link_into(dir.id(), &config_dir)?,
            None => 0,
        };
        let seeded = match &profile.seed {
            Some(seed) => seed.seed_pane(dir.root(), &config_dir)?,
            None => false,
        };
        tracing::debug!(pane = %dir.id(), profile = %profile.profile.name, linked, shared, seeded, "pane seeded from the user's Claude dir");
        Ok(())
    }

    /// What `.pane-metadata` says of a pane this run of the plugin did not
    /// create (the host restarted the plugin, say).
    fn open_pane_on_disk(&self, dir: &PaneDir, owner: &Owner) -> Result<OpenPane, String> {
        match dir.read_metadata().map_err(|err| err.message.to_string())? {
            MetadataState::Valid(found)
                if found.owner == owner.server_id && found.pane_id == dir.id() =>
            {
                let profile = found.recorded_profile();
                let open = OpenPane {
                    claude_session_id: found.claude_session_id,
                    claim: found.claim,
                    taken_back: true,
                    profile,
                };
                self.panes.insert(dir.id(), open.clone());
                Ok(open)
            }
            MetadataState::Valid(found) => {
                Err(format!("has a dir that belongs to server {}", found.owner))
            }
            MetadataState::Missing | MetadataState::Invalid(_) => {
                Err(format!("has no readable {}", dir.metadata_path().display()))
            }
        }
    }

    /// The claim token in the pane's `.pane-metadata`, for closing a pane
    /// this instance did not open. `None` (and a warning) when there is no
    /// dir or no readable metadata: nothing this plugin may remove.
    fn claim_on_disk(dir: &PaneDir) -> Result<Option<String>, HookError> {
        if !dir.exists()? {
            return Ok(None);
        }
        match dir.read_metadata()? {
            MetadataState::Valid(found) => Ok(Some(found.claim)),
            MetadataState::Missing | MetadataState::Invalid(_) => {
                tracing::warn!(
                    pane = %dir.id(),
                    path = %dir.root().display(),
                    "keeping the dir of a closed pane: its {} is missing or unreadable, so its owner is unknown; remove it by hand if unused",
                    metadata::METADATA_FILE
                );
                Ok(None)
            }
        }
    }

    /// Says in the pane which Claude dir is the user's, so that a ccmux
    /// server started inside the pane shares, seeds and carries back into
    /// the user's dir rather than into this pane's.
    fn record_user_dir(profile: &ProfileState, env: &mut SpawnEnv<'_>) {
        let Some(user) = &profile.profile.user else {
            return;
        };
        let raw = user.config_dir_var.as_deref().unwrap_or_default();
        match raw.to_str() {
            Some(raw) => env.set(CCMUX_USER_CLAUDE_CONFIG_DIR, raw),
            None => tracing::warn!(
                path = %user.dir.display(),
                "a server started in a pane will not find the user's Claude dir: its CLAUDE_CONFIG_DIR is not UTF-8"
            ),
        }
    }

    /// Every pane uses the user's own login of its profile: see `login`
    /// for the value of `CLAUDE_SECURESTORAGE_CONFIG_DIR` that selects it
    /// on Linux and macOS. In profile `default`, a value the user set
    /// themselves (even empty) wins; a named profile always uses its own
    /// dir's login, or its panes would share another account's. With
    /// `share_credentials = false` a named profile's pane drops an
    /// inherited value for the same reason: its Claude then keeps its own
    /// login, in the pane.
    fn share_credentials(&self, profile: &ProfileState, env: &mut SpawnEnv<'_>) {
        if !self.settings.share_credentials {
            if !profile.profile.is_default() && env.get(CLAUDE_SECURESTORAGE_CONFIG_DIR).is_some() {
                env.unset(CLAUDE_SECURESTORAGE_CONFIG_DIR);
            }
            return;
        }
        let Some(user) = &profile.profile.user else {
            return;
        };
        let raw_dir = match &user.config_dir_var {
            Some(raw) => match raw.to_str() {
                Some(raw) => Some(raw),
                None => {
                    tracing::warn!(
                        path = %user.dir.display(),
                        "not sharing the login: the user's CLAUDE_CONFIG_DIR is not UTF-8"
                    );
                    return;
                }
            },
            None => None,
        };
        let inherited = env
            .get(CLAUDE_SECURESTORAGE_CONFIG_DIR)
            .filter(|_| profile.profile.is_default())
            .map(str::to_owned);
        if let Some(value) = login::securestorage_value(inherited.as_deref(), raw_dir) {
            env.set(CLAUDE_SECURESTORAGE_CONFIG_DIR, value);
        }
    }
}

impl IsolationPlugin {
    /// Claude's auto-memory (`projects/<repo>/memory/`) is written by the
    /// model through its file tools, whose permission rules refuse a path
    /// that reaches the user's dir through the pane's `projects` link (a
    /// "sensitive file" under `.claude`). `CLAUDE_CODE_REMOTE_MEMORY_DIR`
    /// moves the memory root itself to the user's dir: the same files, at
    /// a real path the rules accept, and shared by every pane. In profile
    /// `default` a value the user set themselves wins; a named profile's
    /// pane always gets its own dir (an inherited value is another
    /// account's, as in a server started inside a default pane).
    fn share_memory(profile: &ProfileState, env: &mut SpawnEnv<'_>) {
        let Some(shared_data) = profile
            .handover
            .data
            .as_ref()
            .filter(|s| s.shares("projects"))
        else {
            return;
        };
        if profile.profile.is_default()
            && env
                .get(CLAUDE_CODE_REMOTE_MEMORY_DIR)
                .is_some_and(|value| !value.is_empty())
        {
            return;
        }
        if let Some(dir) = shared_data.user_dir().to_str() {
            env.set(CLAUDE_CODE_REMOTE_MEMORY_DIR, dir);
        }
    }
}

impl IsolationPlugin {
    /// `CLAUDE_CODE_PROJECT_DIR_NAME` (2.1.234 and later) names the
    /// `projects/` folder of every session instead of one per working dir,
    /// but Claude applies it only while `CLAUDE_CONFIG_DIR` is set, which
    /// it always is in a pane. A user who has it in their environment
    /// without `CLAUDE_CONFIG_DIR` would find a pane's conversations under
    /// another folder than a plain terminal looks in (`claude --resume`
    /// there says "No conversation found"), so it is cleared in panes. With
    /// the user's own `CLAUDE_CONFIG_DIR` set, a plain terminal uses it
    /// too, and the pane's `projects` link leads to the same folder: kept.
    fn keep_projects_where_the_user_finds_them(profile: &ProfileState, env: &mut SpawnEnv<'_>) {
        if env.get(CLAUDE_CODE_PROJECT_DIR_NAME).is_none() {
            return;
        }
        let user_sets_config_dir = profile
            .profile
            .user
            .as_ref()
            .and_then(|user| user.config_dir_var.as_ref())
            .is_some_and(|raw| !raw.is_empty());
        if !user_sets_config_dir {
            env.unset(CLAUDE_CODE_PROJECT_DIR_NAME);
        }
    }
}

impl Drop for IsolationPlugin {
    /// Closed panes' dirs are removed now rather than left for a server
    /// start that may never come; then the worker is stopped and joined
    /// (by the queue's own drop).
    fn drop(&mut self) {
        self.stop_pending_passes();
        self.removals.flush();
        self.finish_verifiers();
        if let Some(running) = self.server().as_ref() {
            // Dropped while its server runs on: a reload replaced it.
            reload_bases::report_left_behind(
                running.lock.server_id(),
                self.layout.base(),
                &self.panes.ids(),
            );
        }
    }
}

ccmux_plugin_api::export_plugin!(IsolationPlugin);
