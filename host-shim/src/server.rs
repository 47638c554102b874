//! One server lifetime, hook by hook, shared by `run` and `attach`.
//!
//! [`Server::start`] starts the plugins and says `server_start`;
//! [`Server::run_pane`] takes one pane through `pane_create`, `pre_spawn`,
//! its process and `pane_close`; [`Server::stop`] says `server_stop`.
//! panes.json follows every pane that opens or closes, so a later restore
//! (or a server killed at any moment) finds the truth.
//!
//! A pane that cannot start is never turned into a close that would make
//! the plugins delete its data: a restored pane stays saved, dir and all,
//! for the next restore; only a new pane, which never ran, is closed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ccmux_isolation_plugin::config::{CCMUX_PANE_ID, CCMUX_PROFILE, DEFAULT_PROFILE};
use ccmux_plugin_api::host::printable;
use ccmux_plugin_api::host::{current_env, PluginHost, StartError};
use ccmux_plugin_api::{
    EnvVar, ExitKind, PaneExit, PaneInfo, RString, RVec, ServerStart, ServerStop,
};
use signal_hook::iterator::Signals;
use uuid::Uuid;

use crate::config_file::ConfigChoice;
use crate::exit;
use crate::pane::{PaneCommand, SpawnError};
use crate::reload::ReloadOnHangup;
use crate::shutdown::Shutdown;
use crate::state::{PaneStore, SavedPane, StateDir, StateError};

/// A pane this server opens.
#[derive(Debug, Clone)]
pub struct PlannedPane {
    /// What it runs now: for a restored pane, its saved record with the
    /// command given this time, if one was.
    pub pane: SavedPane,
    /// Saved by an earlier run. A restored pane that fails to start stays
    /// saved as it was; a new one is closed.
    pub restored: bool,
}

/// A pane's process once spawned: [`PaneProcess`](crate::pane::PaneProcess)
/// for `run`, the attached one for `attach`.
pub trait StartedPane {
    fn pid(&self) -> Option<u32>;
    /// Waits for the process to exit.
    fn wait(&mut self) -> PaneExit;
    /// Copies the rest of the output and lets go of the terminal.
    fn finish(self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command exited 0 and every required plugin agreed.
    Succeeded,
    Failed,
    /// A signal ended the run: the pane stays open (saved) for a restore.
    Interrupted,
}

/// How a pane ended: the outcome, and the process's exit if it ran.
#[derive(Debug, Clone, Copy)]
pub struct PaneEnd {
    pub outcome: Outcome,
    pub exit: Option<PaneExit>,
}

impl PaneEnd {
    fn without_process(outcome: Outcome) -> Self {
        PaneEnd {
            outcome,
            exit: None,
        }
    }
}

/// What a server is started with.
pub struct ServerConfig<'a> {
    /// The plugins.toml, and why it was picked (said with every error
    /// about it).
    pub config: &'a ConfigChoice,
    pub state: StateDir,
    pub server_id: Uuid,
    /// The panes to tell the plugins about as open at start, as panes.json
    /// saved them; everything else panes.json held is forgotten.
    pub restored: Vec<SavedPane>,
    /// SIGHUP, caught since host-shim started, to reload plugins.toml on;
    /// `None` where SIGHUP means something else (`attach`).
    pub reload_on: Option<Signals>,
    /// How a person brings back a kept pane, for messages.
    pub restore_hint: String,
}

/// A started server: plugins loaded, `server_start` said.
pub struct Server {
    host: Arc<PluginHost>,
    store: Arc<PaneStore>,
    state: StateDir,
    instance_id: RString,
    restore_hint: String,
    _reload: Option<ReloadOnHangup>,
}

impl Server {
    /// Starts the plugins and says `server_start`. On failure the message
    /// is printed and the exit status returned.
    pub fn start(config: ServerConfig<'_>, shutdown: &Shutdown) -> Result<Server, u8> {
        let host = match PluginHost::start(&config.config.file) {
            Ok(host) => Arc::new(host),
            Err(err) => {
                say!("host-shim: {err}");
                say!("host-shim: config: {}", config.config);
                return Err(match err {
                    // Nothing ran: the file is wrong, also when what is
                    // wrong is a plugin's own [plugins.config] table.
                    StartError::Config(_) => exit::USAGE,
                    StartError::Plugin(err) if crate::plugins::is_config_error(&err) => exit::USAGE,
                    StartError::Plugin(_) => exit::FAILURE,
                });
            }
        };
        if let Some(signal) = shutdown.requested() {
            // The server never started, so there is nothing to stop.
            return Err(Shutdown::exit_code(signal));
        }
        let live: RVec<RString> = config
            .restored
            .iter()
            .map(|p| RString::from(p.pane_id.as_str()))
            .collect();
        // The plugins are about to be told that only these panes are open,
        // and will clean up after the others: panes.json says the same.
        let store = match PaneStore::create(config.state.panes_file(), config.restored) {
            Ok(store) => Arc::new(store),
            Err(err) => return Err(usage_error(err)),
        };
        let reload = match config.reload_on {
            Some(signals) => {
                match ReloadOnHangup::install(signals, host.clone(), config.config.to_string(), {
                    let store = store.clone();
                    move || store.ids()
                }) {
                    Ok(reload) => Some(reload),
                    Err(err) => {
                        say!("host-shim: cannot catch SIGHUP: {err}");
                        return Err(exit::FAILURE);
                    }
                }
            }
            None => None,
        };
        let instance_id = RString::from(Uuid::new_v4().to_string());
        let start = ServerStart {
            server_id: RString::from(config.server_id.to_string()),
            instance_id: instance_id.clone(),
            state_dir: RString::from(config.state.path().to_string_lossy().as_ref()),
            live_panes: live,
        };
        if let Err(err) = host.server_start(&start) {
            say!("host-shim: {err}");
            return Err(exit::FAILURE);
        }
        Ok(Server {
            host,
            store,
            state: config.state,
            instance_id,
            restore_hint: config.restore_hint,
            _reload: reload,
        })
    }

    /// `server_stop`, last in every case: plugins tidy up what this
    /// instance leaves. False (and a message) if it failed.
    pub fn stop(self) -> bool {
        let stopped = self.host.server_stop(&ServerStop {
            instance_id: self.instance_id.clone(),
        });
        match stopped {
            Ok(()) => true,
            Err(err) => {
                say!("host-shim: {err}");
                false
            }
        }
    }

    /// The plugin host, for what a caller reads after the server stops
    /// (the plugins' counts).
    pub fn host(&self) -> Arc<PluginHost> {
        Arc::clone(&self.host)
    }

    pub fn panes_file(&self) -> PathBuf {
        self.state.panes_file()
    }

    /// Takes one pane through its life: `pane_create`, `pre_spawn`,
    /// `spawn` (the caller's: how the process meets a terminal), the wait,
    /// and `pane_close` unless `keep`. A signal (see [`Shutdown`]) leaves
    /// the pane open and saved.
    pub fn run_pane<P: StartedPane>(
        &self,
        planned: &PlannedPane,
        shutdown: &Shutdown,
        keep: bool,
        spawn: impl FnOnce(&PaneCommand<'_>) -> Result<P, SpawnError>,
    ) -> PaneEnd {
        let pane = &planned.pane;
        let id = pane.pane_id.as_str();
        let info = pane_info(pane);
        if let Err(err) = self.host.pane_create(&info) {
            return self.not_started(planned, &info, &err);
        }
        // A new pane is open from here on. A restored one already is, and
        // its record changes only once it runs: should it fail to start,
        // the command it ran before is what stays saved.
        let mut consistent = planned.restored || self.record(|store| store.upsert(pane));
        if shutdown.requested().is_some() {
            return PaneEnd::without_process(Outcome::Interrupted);
        }
        let mut env = current_env();
        // Without one (no profile asked for, a pane saved before
        // profiles), the isolation plugin's own record of the pane decides.
        let named = pane
            .profile
            .as_deref()
            .filter(|profile| *profile != DEFAULT_PROFILE);
        if let Some(profile) = &pane.profile {
            set_var(&mut env, CCMUX_PROFILE, profile);
        }
        if named.is_some() {
            // The isolation plugin sets it to this pane's id: whether it
            // ran for the pane is told by that, not by a value inherited
            // from an outer pane.
            env.retain(|var| var.key.as_str() != CCMUX_PANE_ID);
        }
        if let Err(err) = self.host.pre_spawn(&info, &mut env) {
            return self.not_started(planned, &info, &err);
        }
        if let Some(profile) = named {
            let isolated = env
                .iter()
                .any(|var| var.key.as_str() == CCMUX_PANE_ID && var.value.as_str() == id);
            if !isolated {
                // An optional isolation plugin that did not load or failed
                // (`on_fault = "admit"`): the pane would run in the
                // server's own account, not the one it asked for.
                return self.not_started(
                    planned,
                    &info,
                    &format!(
                        "host-shim: pane {id} asks for profile {}, but the isolation plugin did not put it there (it did not run for this pane: see the warnings above); not started, rather than run in the server's own account",
                        printable(profile)
                    ),
                );
            }
        }
        // The profile the isolation plugin put the pane in (it sets
        // CCMUX_PROFILE to it): what a restore puts the pane in again.
        let in_profile = SavedPane {
            profile: env
                .iter()
                .find(|var| var.key.as_str() == CCMUX_PROFILE)
                .map(|var| var.value.to_string())
                .filter(|name| !name.is_empty())
                .or_else(|| pane.profile.clone()),
            ..pane.clone()
        };
        let pane = &in_profile;
        if !planned.restored {
            consistent &= self.record(|store| store.upsert(pane));
        }
        let cwd = start_dir(pane, &env);
        let command = PaneCommand {
            program: &pane.command,
            args: &pane.args,
            cwd: &cwd,
            env: &env,
        };
        let mut process = match spawn(&command) {
            Ok(process) => process,
            Err(err) => return self.not_started(planned, &info, &err),
        };
        tracing::debug!("host-shim: pane {id} started");
        if planned.restored {
            consistent &= self.record(|store| store.upsert(pane));
        }

        let exit = {
            let _tracked = process.pid().map(|pid| shutdown.track(pid));
            process.wait()
        };
        tracing::info!(pane = id, "the pane's process {exit}");
        process.finish();

        let end = |outcome| PaneEnd {
            outcome,
            exit: Some(exit),
        };
        // Shutting down: the pane outlives this server instance.
        if shutdown.requested().is_some() {
            return end(Outcome::Interrupted);
        }
        if !keep {
            consistent &= self.close(pane, &info, &exit);
        }
        let succeeded = exit.kind == ExitKind::Exited && exit.code == 0;
        if !succeeded {
            // Said here because the exit status only says "some pane".
            say!("host-shim: pane {id}: its command {exit}");
        }
        end(if succeeded && consistent {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        })
    }

    /// Reports why a pane did not start. A restored pane stays open and
    /// saved, its dir kept; a new one is closed (the process never ran)
    /// so that plugins release what they prepared for it.
    fn not_started(
        &self,
        planned: &PlannedPane,
        info: &PaneInfo,
        reason: &dyn std::fmt::Display,
    ) -> PaneEnd {
        let id = planned.pane.pane_id.as_str();
        say!("[{id}] {reason}");
        if planned.restored {
            say!(
                "[{id}] host-shim: the pane did not start; its record in {} and its dir are kept for {}",
                self.panes_file().display(),
                self.restore_hint
            );
        } else {
            self.close(&planned.pane, info, &PaneExit::unknown(true));
        }
        PaneEnd::without_process(Outcome::Failed)
    }

    /// `pane_close`, then forgets the pane. False if either failed.
    fn close(&self, pane: &SavedPane, info: &PaneInfo, exit: &PaneExit) -> bool {
        let closed = match self.host.pane_close(info, exit) {
            Ok(()) => true,
            Err(err) => {
                say!("[{}] {err}", pane.pane_id);
                false
            }
        };
        closed & self.record(|store| store.remove(&pane.pane_id))
    }

    /// Applies a change to panes.json; false (and a message) if it failed.
    fn record(&self, change: impl FnOnce(&PaneStore) -> Result<(), StateError>) -> bool {
        match change(&self.store) {
            Ok(()) => true,
            Err(err) => {
                say!("host-shim: {err}; a restore will not see this change");
                false
            }
        }
    }
}

/// What a run needs before any plugin loads: its state dir opened, its
/// identity, and the directory new panes start in.
pub struct Opened {
    pub state: StateDir,
    pub server_id: Uuid,
    pub cwd: PathBuf,
}

/// How a server's state dir is opened.
#[derive(Default)]
pub struct StateOptions<'a> {
    /// The identity a new state dir gets; a random one if `None`.
    pub identity: Option<Uuid>,
    /// What to say when another host-shim holds the dir (given its pid, if
    /// known), instead of the generic message.
    pub busy: Option<&'a dyn Fn(Option<u32>) -> String>,
}

/// Opens the state dir at `dir` for a run; a usage error (with its exit
/// code) if it cannot be used.
pub fn open_state(dir: &Path, options: StateOptions<'_>) -> Result<Opened, u8> {
    let state = StateDir::open(dir).map_err(|err| match (&err, options.busy) {
        (StateError::Locked { holder, .. }, Some(busy)) => usage_error(busy(*holder)),
        _ => usage_error(err),
    })?;
    let server_id = match options.identity {
        Some(identity) => state.server_id_or(identity),
        None => state.server_id(),
    }
    .map_err(usage_error)?;
    let cwd = std::env::current_dir()
        .map_err(|err| usage_error(format!("cannot read the current directory: {err}")))?;
    Ok(Opened {
        state,
        server_id,
        cwd,
    })
}

pub fn usage_error(err: impl std::fmt::Display) -> u8 {
    say!("host-shim: {err}");
    exit::USAGE
}

/// The pane's saved directory, or, when that is gone, the home directory
/// the pane's environment names (said on stderr: the pane is not where it
/// was).
fn start_dir(pane: &SavedPane, env: &[EnvVar]) -> PathBuf {
    if pane.cwd.is_dir() {
        return pane.cwd.clone();
    }
    let home = env
        .iter()
        .find(|var| var.key.as_str() == "HOME")
        .map(|var| PathBuf::from(var.value.as_str()))
        .filter(|home| home.is_absolute())
        .or_else(dirs::home_dir)
        .unwrap_or_else(|| PathBuf::from("/"));
    say!(
        "[{}] host-shim: WARN: the pane's directory {} no longer exists; it starts in {}",
        pane.pane_id,
        pane.cwd.display(),
        home.display()
    );
    home
}

/// Sets `key` to `value` in `env`, replacing any value it had.
fn set_var(env: &mut Vec<EnvVar>, key: &str, value: &str) {
    env.retain(|var| var.key.as_str() != key);
    env.push(EnvVar {
        key: RString::from(key),
        value: RString::from(value),
    });
}

fn pane_info(pane: &SavedPane) -> PaneInfo {
    PaneInfo {
        pane_id: RString::from(pane.pane_id.as_str()),
        session_id: RString::from(pane.session_id.as_str()),
        window_id: RString::from(pane.window_id.as_str()),
        pane_index: pane.pane_index,
        command: RString::from(pane.command.as_str()),
        args: pane
            .args
            .iter()
            .map(|a| RString::from(a.as_str()))
            .collect(),
        cwd: RString::from(pane.cwd.to_string_lossy().as_ref()),
    }
}
