//! `run`: one server lifetime, hook by hook.
//!
//! lock the state dir, start the plugins, `server_start`, then every pane
//! at once (`pane_create`, `pre_spawn`, spawn, wait, `pane_close`), then
//! `server_stop`. panes.json follows every pane that opens or closes, so a
//! later `--restore` (or a server killed at any moment) finds the truth.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use ccmux_plugin_api::host::{current_env, PluginHost};
use ccmux_plugin_api::{
    check_pane_id, ExitKind, PaneExit, PaneInfo, RString, RVec, ServerStart, ServerStop,
};
use uuid::Uuid;

use crate::cli::RunArgs;
use crate::exit;
use crate::pane::{PaneCommand, PaneProcess};
use crate::reload::ReloadOnHangup;
use crate::shutdown::Shutdown;
use crate::state::{load_panes, PaneStore, SavedPane, StateDir};

pub fn run(args: &RunArgs) -> u8 {
    let state_dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => match default_state_dir() {
            Some(dir) => dir,
            None => {
                eprintln!("host-shim: cannot find the user's state directory (is HOME set?); pass --state-dir DIR");
                return exit::USAGE;
            }
        },
    };
    let state = match StateDir::open(&state_dir) {
        Ok(state) => state,
        Err(err) => return usage_error(err),
    };
    let server_id = match state.server_id() {
        Ok(id) => id,
        Err(err) => return usage_error(err),
    };
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(err) => return usage_error(format!("cannot read the current directory: {err}")),
    };
    // Before the plugins load: a bad pane id must reach no plugin at all.
    let panes = match plan_panes(args, &state, &cwd) {
        Ok(panes) => panes,
        Err(err) => return usage_error(err),
    };
    // Installed before anything a signal should stop gracefully.
    let shutdown = match Shutdown::install() {
        Ok(shutdown) => shutdown,
        Err(err) => {
            eprintln!("host-shim: cannot catch SIGINT and SIGTERM: {err}");
            return exit::FAILURE;
        }
    };
    let host = match PluginHost::start(&args.config.config) {
        Ok(host) => Arc::new(host),
        Err(err) => {
            eprintln!("host-shim: {err}");
            return exit::FAILURE;
        }
    };
    if let Some(signal) = shutdown.requested() {
        // The server never started, so there is nothing to stop.
        return Shutdown::exit_code(signal);
    }

    // Without --restore the saved panes are forgotten, as the plugins are
    // about to be told (no live panes) before they clean up after them.
    let saved = if args.restore {
        panes.clone()
    } else {
        Vec::new()
    };
    let store = match PaneStore::create(state.panes_file(), saved) {
        Ok(store) => Arc::new(store),
        Err(err) => return usage_error(err),
    };
    let _reload = match ReloadOnHangup::install(host.clone(), {
        let store = store.clone();
        move || store.ids()
    }) {
        Ok(reload) => reload,
        Err(err) => {
            eprintln!("host-shim: cannot catch SIGHUP: {err}");
            return exit::FAILURE;
        }
    };
    let instance_id = RString::from(Uuid::new_v4().to_string());
    let start = ServerStart {
        server_id: RString::from(server_id.to_string()),
        instance_id: instance_id.clone(),
        state_dir: RString::from(state.path().to_string_lossy().as_ref()),
        live_panes: if args.restore {
            panes
                .iter()
                .map(|p| RString::from(p.pane_id.as_str()))
                .collect()
        } else {
            RVec::new()
        },
    };
    if let Err(err) = host.server_start(&start) {
        eprintln!("host-shim: {err}");
        return exit::FAILURE;
    }

    let server = Server {
        host: &host,
        store: &store,
        shutdown: &shutdown,
        keep_panes: args.keep_panes,
    };
    let outcomes = server.run_panes(&panes);

    // Last, in every case: plugins tidy up what this instance leaves.
    let stopped = match host.server_stop(&ServerStop { instance_id }) {
        Ok(()) => true,
        Err(err) => {
            eprintln!("host-shim: {err}");
            false
        }
    };
    if args.plugin_counts {
        crate::plugins::print_counts(&host);
    }
    if let Some(signal) = shutdown.requested() {
        return Shutdown::exit_code(signal);
    }
    if stopped && outcomes.iter().all(|o| *o == Outcome::Succeeded) {
        exit::SUCCESS
    } else {
        exit::FAILURE
    }
}

fn usage_error(err: impl std::fmt::Display) -> u8 {
    eprintln!("host-shim: {err}");
    exit::USAGE
}

/// `$XDG_STATE_HOME/ccmux/host-shim` or the platform's equivalent.
fn default_state_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|dir| dir.join("ccmux").join("host-shim"))
}

/// The panes this run opens: the saved ones, the named ones, or N new ones.
fn plan_panes(args: &RunArgs, state: &StateDir, cwd: &Path) -> Result<Vec<SavedPane>, String> {
    let panes = if args.restore {
        let mut saved = load_panes(&state.panes_file()).map_err(|err| err.to_string())?;
        if saved.is_empty() {
            eprintln!(
                "host-shim: no saved panes in {}; nothing to restore",
                state.panes_file().display()
            );
        }
        // A new command replaces the saved one; without one, each pane
        // runs again what it ran, where it ran it.
        if let Some((program, args)) = args.command.split_first() {
            for pane in &mut saved {
                pane.command = program.clone();
                pane.args = args.to_vec();
                pane.cwd = cwd.to_path_buf();
            }
        }
        saved
    } else {
        // Clap requires a command unless --restore.
        let Some((program, program_args)) = args.command.split_first() else {
            return Err("no command given; put it after `--`".to_string());
        };
        let new_pane =
            |pane_id: String, session_id: String, window_id: String, pane_index| SavedPane {
                pane_id,
                session_id,
                window_id,
                pane_index,
                command: program.clone(),
                args: program_args.to_vec(),
                cwd: cwd.to_path_buf(),
            };
        // A fresh session per run: servers sharing a plugin base dir never
        // hand plugins the same pane id.
        let session = Uuid::new_v4().simple().to_string()[..8].to_string();
        if args.pane_ids.is_empty() {
            (0..args.panes.unwrap_or(1))
                .map(|index| {
                    new_pane(
                        format!("{session}_0_{index}"),
                        session.clone(),
                        "0".into(),
                        index,
                    )
                })
                .collect()
        } else {
            args.pane_ids
                .iter()
                .zip(0u32..)
                .map(|(id, position)| match split_pane_id(id) {
                    Some((session, window, index)) => {
                        new_pane(id.clone(), session.into(), window.into(), index)
                    }
                    // A UUID or another free-form id: it joins this run's
                    // session, in the order given.
                    None => new_pane(id.clone(), session.clone(), "0".into(), position),
                })
                .collect()
        }
    };
    let mut seen = HashSet::new();
    for pane in &panes {
        check_pane_id(&pane.pane_id).map_err(|err| err.to_string())?;
        if !seen.insert(pane.pane_id.as_str()) {
            return Err(format!(
                "pane id {:?} is given more than once; pane ids must be unique",
                pane.pane_id
            ));
        }
    }
    Ok(panes)
}

/// `{session}_{window}_{index}`, the form the server gives its panes.
fn split_pane_id(id: &str) -> Option<(&str, &str, u32)> {
    let mut parts = id.rsplitn(3, '_');
    let index = parts.next()?.parse().ok()?;
    let window = parts.next().filter(|w| !w.is_empty())?;
    let session = parts.next().filter(|s| !s.is_empty())?;
    Some((session, window, index))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The command exited 0 and every required plugin agreed.
    Succeeded,
    Failed,
    /// A signal ended the run: the pane stays open (saved) for --restore.
    Interrupted,
}

/// What every pane thread shares.
struct Server<'a> {
    host: &'a PluginHost,
    store: &'a PaneStore,
    shutdown: &'a Shutdown,
    keep_panes: bool,
}

impl Server<'_> {
    /// Runs every pane on a thread of its own and waits for them all.
    fn run_panes(&self, panes: &[SavedPane]) -> Vec<Outcome> {
        thread::scope(|scope| {
            let threads: Vec<_> = panes
                .iter()
                .map(|pane| {
                    thread::Builder::new()
                        .name(format!("pane {}", pane.pane_id))
                        .spawn_scoped(scope, || self.run_pane(pane))
                        .map_err(|err| {
                            eprintln!(
                                "[{}] host-shim: cannot start a thread for the pane: {err}",
                                pane.pane_id
                            );
                        })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| match thread {
                    Ok(thread) => thread.join().unwrap_or(Outcome::Failed),
                    Err(()) => Outcome::Failed,
                })
                .collect()
        })
    }

    fn run_pane(&self, pane: &SavedPane) -> Outcome {
        let id = pane.pane_id.as_str();
        let info = pane_info(pane);
        if let Err(err) = self.host.pane_create(&info) {
            return self.abandon(pane, &info, &err);
        }
        let mut consistent = self.record(|store| store.upsert(pane));
        if self.shutdown.requested().is_some() {
            return Outcome::Interrupted;
        }
        let mut env = current_env();
        if let Err(err) = self.host.pre_spawn(&info, &mut env) {
            return self.abandon(pane, &info, &err);
        }
        let command = PaneCommand {
            program: &pane.command,
            args: &pane.args,
            cwd: &pane.cwd,
            env: &env,
        };
        let mut process = match PaneProcess::spawn(id, &command) {
            Ok(process) => process,
            Err(err) => return self.abandon(pane, &info, &err),
        };
        tracing::debug!("host-shim: pane {id} started");

        let exit = {
            let _tracked = process.pid().map(|pid| self.shutdown.track(pid));
            process.wait()
        };
        tracing::info!(pane = id, "the pane's process {exit}");
        process.finish_output();

        // Shutting down: the pane outlives this server instance.
        if self.shutdown.requested().is_some() {
            return Outcome::Interrupted;
        }
        if !self.keep_panes {
            consistent &= self.close(pane, &info, &exit);
        }
        let succeeded = exit.kind == ExitKind::Exited && exit.code == 0;
        if !succeeded {
            // Said here because the exit status only says "some pane".
            eprintln!("host-shim: pane {id}: its command {exit}");
        }
        if succeeded && consistent {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        }
    }

    /// Reports why a pane cannot run and closes it, so plugins release
    /// what they prepared for it.
    fn abandon(
        &self,
        pane: &SavedPane,
        info: &PaneInfo,
        reason: &dyn std::fmt::Display,
    ) -> Outcome {
        eprintln!("[{}] {reason}", pane.pane_id);
        // The process never started.
        self.close(pane, info, &PaneExit::unknown(true));
        Outcome::Failed
    }

    /// `pane_close`, then forgets the pane. False if either failed.
    fn close(&self, pane: &SavedPane, info: &PaneInfo, exit: &PaneExit) -> bool {
        let closed = match self.host.pane_close(info, exit) {
            Ok(()) => true,
            Err(err) => {
                eprintln!("[{}] {err}", pane.pane_id);
                false
            }
        };
        closed & self.record(|store| store.remove(&pane.pane_id))
    }

    /// Applies a change to panes.json; false (and a message) if it failed.
    fn record(
        &self,
        change: impl FnOnce(&PaneStore) -> Result<(), crate::state::StateError>,
    ) -> bool {
        match change(self.store) {
            Ok(()) => true,
            Err(err) => {
                eprintln!("host-shim: {err}; --restore will not see this change");
                false
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_form_pane_ids_are_split() {
        assert_eq!(split_pane_id("a1b2c3d4_0_2"), Some(("a1b2c3d4", "0", 2)));
        assert_eq!(
            split_pane_id("my_session_3_1"),
            Some(("my_session", "3", 1))
        );
        assert_eq!(split_pane_id("0b4c1f9e-5c7d-4a8e-9f00-1234567890ab"), None);
        assert_eq!(split_pane_id("_0_1"), None);
        assert_eq!(split_pane_id("a_b_c"), None);
    }
}
