//! `run`: one server lifetime with every pane at once, each pane's output
//! on stdout as `[PANE-ID] line`.
//!
//! lock the state dir, start the plugins, `server_start`, then every pane
//! on a thread of its own (see [`Server::run_pane`]), then `server_stop`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::thread;

use ccmux_isolation_plugin::config::CCMUX_PROFILE;
use ccmux_plugin_api::check_pane_id;
use ccmux_plugin_api::host::printable;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use uuid::Uuid;

use crate::cli::RunArgs;
use crate::config_file;
use crate::exit;
use crate::isolation::{self, ProfileUse};
use crate::pane::{Output, PaneProcess, DEFAULT_SIZE};
use crate::server::{
    open_state, usage_error, Opened, Outcome, PlannedPane, Server, ServerConfig, StartedPane,
};
use crate::shutdown::Shutdown;
use crate::state::{load_panes, SavedPane, StateDir};

pub fn run(args: &RunArgs) -> u8 {
    // Before anything else, so that no signal finds its default action (a
    // SIGHUP used to kill host-shim while the plugins loaded). SIGHUP is
    // registered first, and waits here until the reload watcher takes it.
    let reload_on = match Signals::new([SIGHUP]) {
        Ok(signals) => signals,
        Err(err) => {
            say!("host-shim: cannot catch SIGHUP: {err}");
            return exit::FAILURE;
        }
    };
    let shutdown = match Shutdown::install(&[SIGINT, SIGTERM], "the panes stay saved for --restore")
    {
        Ok(shutdown) => shutdown,
        Err(err) => {
            say!("host-shim: cannot catch SIGINT and SIGTERM: {err}");
            return exit::FAILURE;
        }
    };
    let plugins_toml = match config_file::resolve(args.config.config.as_deref()) {
        Ok(file) => file,
        Err(err) => return usage_error(err),
    };
    let state_dir =
        match &args.state_dir {
            Some(dir) => dir.clone(),
            None => match default_state_dir() {
                Some(dir) => dir,
                None => return usage_error(
                    "cannot find the user's state directory (is HOME set?); pass --state-dir DIR",
                ),
            },
        };
    let Opened {
        state,
        server_id,
        cwd,
    } = match open_state(&state_dir, Default::default()) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    // Before the plugins load: a bad pane id or profile must reach no
    // plugin at all.
    let Planned {
        saved: restored,
        panes,
        profiles,
    } = match plan_panes(args, &state, &cwd) {
        Ok(planned) => planned,
        Err(err) => return usage_error(printable(&err)),
    };
    if let Err(err) = isolation::check_profiles(&plugins_toml, &profiles) {
        return usage_error(printable(&err));
    }
    let server = match Server::start(
        ServerConfig {
            config: &plugins_toml,
            state,
            server_id,
            restored,
            reload_on: Some(reload_on),
            restore_hint: "the next --restore".to_string(),
        },
        &shutdown,
    ) {
        Ok(server) => server,
        Err(code) => return code,
    };

    let outcomes = run_panes(&server, &shutdown, args.keep_panes, &panes);

    let host = server.host();
    let stopped = server.stop();
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

/// Runs every pane on a thread of its own and waits for them all.
fn run_panes(
    server: &Server,
    shutdown: &Shutdown,
    keep: bool,
    panes: &[PlannedPane],
) -> Vec<Outcome> {
    thread::scope(|scope| {
        let threads: Vec<_> = panes
            .iter()
            .map(|planned| {
                let id = planned.pane.pane_id.as_str();
                thread::Builder::new()
                    .name(format!("pane {id}"))
                    .spawn_scoped(scope, move || {
                        server
                            .run_pane(planned, shutdown, keep, |command| {
                                PaneProcess::spawn(id, command, DEFAULT_SIZE, Output::Prefixed)
                            })
                            .outcome
                    })
                    .map_err(|err| {
                        say!("[{id}] host-shim: cannot start a thread for the pane: {err}");
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

impl StartedPane for PaneProcess {
    fn pid(&self) -> Option<u32> {
        PaneProcess::pid(self)
    }

    fn wait(&mut self) -> ccmux_plugin_api::PaneExit {
        PaneProcess::wait(self)
    }

    fn finish(self) {
        self.finish_output();
    }
}

/// `$XDG_STATE_HOME/ccmux/host-shim` or the platform's equivalent.
pub fn default_state_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|dir| dir.join("ccmux").join("host-shim"))
}

/// What a run opens, once checked.
struct Planned {
    /// For --restore, the panes as panes.json saved them.
    saved: Vec<SavedPane>,
    panes: Vec<PlannedPane>,
    /// Every profile a pane is to be put in, and why, to check against
    /// plugins.toml.
    profiles: Vec<ProfileUse>,
}

/// The panes this run opens: the saved ones, the named ones, or N new
/// ones; each in its profile.
fn plan_panes(args: &RunArgs, state: &StateDir, cwd: &Path) -> Result<Planned, String> {
    let mut profiles = Vec::new();
    let (saved, panes): (Vec<SavedPane>, Vec<PlannedPane>) = if args.restore {
        let file = state.panes_file();
        let saved = load_panes(&file).map_err(|err| err.to_string())?;
        if saved.is_empty() {
            // Nothing ran: starting a server with no panes would only tell
            // the plugins that every pane they keep is gone.
            return Err(format!(
                "--restore: no saved panes in {}, nothing to restore; panes are saved by `run --keep-panes` or a run ended by SIGINT or SIGTERM (is this the --state-dir they ran with?)",
                file.display()
            ));
        }
        // Each pane stays in its own profile: a profile asked for (by
        // --profile, or the CCMUX_PROFILE inherited, which the panes would
        // otherwise carry to the plugin) that is not every pane's is
        // refused before anything runs, naming them all.
        let asked = asked_profile(args.profile.as_deref());
        let mut planned = Vec::new();
        let mut elsewhere = Vec::new();
        for pane in &saved {
            match restored_profile(pane, asked.as_ref(), &file) {
                Ok(profile) => {
                    let mut pane = with_command(pane.clone(), &args.command, cwd);
                    if let Some(profile) = profile {
                        pane.profile = Some(profile.name.clone());
                        profiles.push(profile);
                    }
                    planned.push(PlannedPane {
                        pane,
                        restored: true,
                    });
                }
                Err(recorded) => {
                    elsewhere.push(format!("pane {} is in profile {recorded:?}", pane.pane_id))
                }
            }
        }
        if let (Some(asked), false) = (&asked, elsewhere.is_empty()) {
            return Err(format!(
                "--restore: {} names profile {:?}, but {} (saved in {}); nothing was started and nothing changed. A pane keeps the Claude account it was made in: restore {} (each pane in its own profile), or naming the profile every saved pane is in",
                asked.from,
                asked.name,
                elsewhere.join(", "),
                file.display(),
                without(asked),
            ));
        }
        (saved, planned)
    } else {
        // Clap requires a command unless --restore.
        let Some((program, program_args)) = args.command.split_first() else {
            return Err("no command given; put it after `--`".to_string());
        };
        let default_profile = asked_profile(args.profile.as_deref());
        let mut new_pane = |pane_id: String,
                            session_id: String,
                            window_id: String,
                            pane_index,
                            profile: Option<ProfileUse>| {
            let profile = profile.or_else(|| default_profile.clone());
            let name = profile.as_ref().map(|used| used.name.clone());
            profiles.extend(profile);
            PlannedPane {
                pane: SavedPane {
                    pane_id,
                    session_id,
                    window_id,
                    pane_index,
                    command: program.clone(),
                    args: program_args.to_vec(),
                    cwd: cwd.to_path_buf(),
                    profile: name,
                },
                restored: false,
            }
        };
        // A fresh session per run: servers sharing a plugin base dir never
        // hand plugins the same pane id.
        let session = new_session_id();
        let panes = if args.pane_ids.is_empty() {
            (0..args.panes.unwrap_or(1))
                .map(|index| {
                    new_pane(
                        format!("{session}_0_{index}"),
                        session.clone(),
                        "0".into(),
                        index,
                        None,
                    )
                })
                .collect()
        } else {
            let mut panes = Vec::new();
            for (given, position) in args.pane_ids.iter().zip(0u32..) {
                let (id, profile) = split_profile(given)?;
                let profile = profile.map(|name| ProfileUse {
                    name: name.to_string(),
                    from: format!("--pane-id {given}"),
                });
                panes.push(match split_pane_id(id) {
                    Some((session, window, index)) => new_pane(
                        id.to_string(),
                        session.into(),
                        window.into(),
                        index,
                        profile,
                    ),
                    // A UUID or another free-form id: it joins this run's
                    // session, in the order given.
                    None => new_pane(
                        id.to_string(),
                        session.clone(),
                        "0".into(),
                        position,
                        profile,
                    ),
                });
            }
            panes
        };
        (Vec::new(), panes)
    };
    let mut seen = HashSet::new();
    for planned in &panes {
        check_planned(&planned.pane, &state.panes_file())?;
        if !seen.insert(planned.pane.pane_id.as_str()) {
            return Err(format!(
                "pane id {:?} is given more than once; pane ids must be unique",
                planned.pane.pane_id
            ));
        }
    }
    Ok(Planned {
        saved,
        panes,
        profiles,
    })
}

/// `ID@NAME`: the pane id, and the profile named after its `@` (pane ids
/// never contain one).
pub fn split_profile(given: &str) -> Result<(&str, Option<&str>), String> {
    match given.split_once('@') {
        None => Ok((given, None)),
        Some((id, name)) if !id.is_empty() && !name.is_empty() => Ok((id, Some(name))),
        Some(_) => Err(format!(
            "--pane-id {given:?}: write ID@NAME, a pane id, `@` and a profile name, or the id alone"
        )),
    }
}

/// The profile this host-shim's environment names (`CCMUX_PROFILE`, set
/// in a ccmux pane, or by the user): a new pane's unless it is given one.
pub fn inherited_profile() -> Option<ProfileUse> {
    let name = std::env::var_os(CCMUX_PROFILE).filter(|name| !name.is_empty())?;
    Some(ProfileUse {
        // Not UTF-8: never a profile name, so refused as unknown.
        name: name.to_string_lossy().into_owned(),
        from: format!("{CCMUX_PROFILE} (inherited from this environment)"),
    })
}

/// The profile a pane is asked to be in: `--profile`, else the inherited
/// `CCMUX_PROFILE`.
pub fn asked_profile(flag: Option<&str>) -> Option<ProfileUse> {
    match flag {
        Some(name) => Some(ProfileUse {
            name: name.to_string(),
            from: "--profile".to_string(),
        }),
        None => inherited_profile(),
    }
}

/// How to ask for no profile, given where `asked` came from.
pub fn without(asked: &ProfileUse) -> &'static str {
    if asked.from == "--profile" {
        "without --profile"
    } else {
        "with CCMUX_PROFILE unset (`env -u CCMUX_PROFILE host-shim ...`)"
    }
}

/// A restored pane's profile: the one it was saved in, which `asked`, if
/// any, must be; `asked` for a pane saved before profiles, whose own
/// record in the isolation plugin then decides. The profile it was saved
/// in, as the error, if `asked` is another one.
pub fn restored_profile(
    pane: &SavedPane,
    asked: Option<&ProfileUse>,
    panes_file: &Path,
) -> Result<Option<ProfileUse>, String> {
    match (&pane.profile, asked) {
        (Some(recorded), Some(asked)) if *recorded != asked.name => Err(recorded.clone()),
        (Some(recorded), _) => Ok(Some(ProfileUse {
            name: recorded.clone(),
            from: format!("pane {} saved in {}", pane.pane_id, panes_file.display()),
        })),
        (None, asked) => Ok(asked.cloned()),
    }
}

/// `pane` with `command` (if one was given) replacing its saved one, run
/// in `cwd`; without one, the pane runs again what it ran, where it ran it.
pub fn with_command(mut pane: SavedPane, command: &[String], cwd: &Path) -> SavedPane {
    if let Some((program, args)) = command.split_first() {
        pane.command = program.clone();
        pane.args = args.to_vec();
        pane.cwd = cwd.to_path_buf();
    }
    pane
}

/// A pane id that reaches no plugin unchecked, and a command that names
/// something to run (an empty one, given or saved, would otherwise fail
/// as "…/bin/ is a directory").
pub fn check_planned(pane: &SavedPane, panes_file: &Path) -> Result<(), String> {
    check_pane_id(&pane.pane_id).map_err(|err| err.to_string())?;
    if pane.command.trim().is_empty() {
        return Err(format!(
            "pane {:?} has an empty command (saved in {}, or given after `--`); give the pane a command after `--`, or remove the pane from that file",
            pane.pane_id,
            panes_file.display()
        ));
    }
    Ok(())
}

/// Eight hex digits: the session part of generated pane ids.
pub fn new_session_id() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// `{session}_{window}_{index}`, the form the server gives its panes.
pub fn split_pane_id(id: &str) -> Option<(&str, &str, u32)> {
    let mut parts = id.rsplitn(3, '_');
    let index = parts.next()?.parse().ok()?;
    let window = parts.next().filter(|w| !w.is_empty())?;
    let session = parts.next().filter(|s| !s.is_empty())?;
    Some((session, window, index))
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
