//! `attach`: one pane in the terminal host-shim runs in, as the pane of a
//! multiplexer: every byte typed goes to the pane, its output comes back
//! unprefixed, its size follows the terminal's.
//!
//! Each attached pane is a server of its own, with its own state dir
//! (`{state root}/attached/{pane id}`) and so its own server identity:
//! attached panes in several terminals never share a lock, and the
//! isolation plugin's orphan scan at each start only ever concerns that
//! one pane's dir. Attaching a kept pane id again is a restore.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ccmux_plugin_api::host::printable;
use ccmux_plugin_api::{ExitKind, PaneExit};
use portable_pty::PtySize;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
use signal_hook::iterator::{Handle, Signals};
use uuid::Uuid;

use crate::cli::AttachArgs;
use crate::config_file;
use crate::exit;
use crate::isolation::{self, ProfileUse};
use crate::pane::{
    signal_process_group, Output, PaneCommand, PaneProcess, SpawnError, DEFAULT_SIZE,
};
use crate::run::{
    asked_profile, check_planned, default_state_dir, new_session_id, restored_profile,
    split_pane_id, with_command, without,
};
use crate::server::{
    open_state, usage_error, Opened, Outcome, PlannedPane, Server, ServerConfig, StartedPane,
    StateOptions,
};
use crate::shutdown::{HangUp, Shutdown};
use crate::state::{load_panes, remove_if_unused, SavedPane, StateDir};
use crate::terminal::{self, RawMode};

/// The subdirectory of the state root that holds one state dir per
/// attached pane id.
const ATTACHED_DIR: &str = "attached";

pub fn attach(args: &AttachArgs) -> u8 {
    // Before anything else. SIGHUP is the terminal closing: like SIGTERM
    // (the system stopping) it ends the pane's process and keeps the pane.
    let shutdown = match Shutdown::install(
        &[SIGHUP, SIGINT, SIGTERM],
        "the pane stays saved: attach again with the same --pane-id",
    ) {
        Ok(shutdown) => shutdown,
        Err(err) => {
            say!("host-shim: cannot catch SIGHUP, SIGINT and SIGTERM: {err}");
            return exit::FAILURE;
        }
    };
    // Registered before the size is read, so no resize is missed.
    let resizes = match Signals::new([SIGWINCH]) {
        Ok(signals) => signals,
        Err(err) => {
            say!("host-shim: cannot catch SIGWINCH: {err}");
            return exit::FAILURE;
        }
    };
    terminal::restore_on_panic();
    if !io::stdin().is_terminal() {
        return usage_error(
            "attach runs a pane in this terminal, but stdin is not a terminal; run it in a terminal (a tmux pane, a terminal tab), or use `host-shim run` for panes without one",
        );
    }
    let plugins_toml = match config_file::resolve(args.config.config.as_deref()) {
        Ok(file) => file,
        Err(err) => return usage_error(err),
    };
    let pane_id = match &args.pane_id {
        Some(id) => id.clone(),
        None => format!("{}_0_0", new_session_id()),
    };
    // Before it names a dir: the id becomes a path component.
    if let Err(err) = ccmux_plugin_api::check_pane_id(&pane_id) {
        return usage_error(err);
    }
    let root = match args.state_dir.clone().or_else(default_state_dir) {
        Some(root) => std::path::absolute(&root).unwrap_or(root),
        None => {
            return usage_error(
                "cannot find the user's state directory (is HOME set?); pass --state-dir DIR",
            )
        }
    };
    let attached = root.join(ATTACHED_DIR);
    // What attaches that crashed after their pane closed left behind.
    prune_closed(&attached, &root, Some(&pane_id));
    let dir = attached.join(&pane_id);
    let code = attach_pane(args, &pane_id, &root, &dir, plugins_toml, shutdown, resizes);
    // A pane that is not kept leaves no state dir.
    prune_one(&dir, &root, &pane_id);
    code
}

/// [`attach`] once the pane's id and state dir are known.
fn attach_pane(
    args: &AttachArgs,
    pane_id: &str,
    root: &Path,
    dir: &Path,
    plugins_toml: config_file::ConfigChoice,
    shutdown: Shutdown,
    resizes: Signals,
) -> u8 {
    let busy = |holder: Option<u32>| busy_message(pane_id, holder);
    let Opened {
        state,
        server_id,
        cwd,
    } = match open_state(
        dir,
        StateOptions {
            identity: Some(attached_identity(root, pane_id)),
            busy: Some(&busy),
        },
    ) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let (saved, planned, profile) = match plan_pane(pane_id, args, &state, &cwd) {
        Ok(planned) => planned,
        Err(err) => return usage_error(printable(&err)),
    };
    if let Err(err) = isolation::check_profiles(&plugins_toml, &Vec::from_iter(profile)) {
        return usage_error(printable(&err));
    }
    let server = match Server::start(
        ServerConfig {
            config: &plugins_toml,
            state,
            server_id,
            restored: saved.into_iter().collect(),
            reload_on: None,
            restore_hint: format!("the next `host-shim attach --pane-id {pane_id}`"),
        },
        &shutdown,
    ) {
        Ok(server) => server,
        Err(code) => return code,
    };

    let hang_up = shutdown.hang_up();
    let end = server.run_pane(&planned, &shutdown, args.keep, |command| {
        AttachedPane::start(pane_id, command, resizes, hang_up)
    });

    let stopped = server.stop();
    let ran = end.exit.is_some();
    if let Some(signal) = shutdown.requested() {
        if ran {
            say!("host-shim: pane {pane_id} is kept; `host-shim attach --pane-id {pane_id}` brings it back");
        }
        return Shutdown::exit_code(signal);
    }
    if ran && args.keep {
        say!("host-shim: pane {pane_id} is kept; `host-shim attach --pane-id {pane_id}` brings it back");
    }
    match end.exit {
        Some(exit) => match pane_status(&exit) {
            // The command succeeded, host-shim's part of the pane did not.
            0 if end.outcome != Outcome::Succeeded || !stopped => exit::FAILURE,
            status => status,
        },
        None => exit::FAILURE,
    }
}

/// What a refused attach of a pane attached right now says: where the
/// other one is and how to end it.
fn busy_message(pane_id: &str, holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!(
            "another host-shim is attached to pane {pane_id} (pid {pid}); `ps -o pid,tty,args -p {pid}` shows its terminal. Leave the pane there (quit its command), or end it with `kill {pid}` (the pane stays saved), then attach again; or attach another --pane-id"
        ),
        None => format!(
            "another host-shim is attached to pane {pane_id}; `pgrep -af 'host-shim attach'` lists them. Leave the pane there (quit its command), or end that host-shim with kill (the pane stays saved), then attach again; or attach another --pane-id"
        ),
    }
}

/// The server identity of attached pane `pane_id` under state root
/// `root`: derived from both, so it is the same at every attach even once
/// the pane's state dir is gone, and a closed pane's state dir can go
/// without leaving plugin data (kept by a plugin past the close) to an
/// identity no one has any more.
pub fn attached_identity(root: &Path, pane_id: &str) -> Uuid {
    // FNV-1a, 128 bits: stable across Rust versions and platforms, which
    // std's hashers are not promised to be.
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET;
    let input = [
        b"ccmux host-shim attach\0".as_slice(),
        root.as_os_str().as_encoded_bytes(),
        b"\0",
        pane_id.as_bytes(),
    ];
    for byte in input.iter().flat_map(|part| part.iter()) {
        hash ^= u128::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    uuid::Builder::from_custom_bytes(hash.to_be_bytes()).into_uuid()
}

/// Removes the state dirs under `attached` of panes that closed (none
/// saved, no host-shim on them), except `except`'s.
fn prune_closed(attached: &Path, root: &Path, except: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(attached) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pane_id) = name.to_str() else {
            continue;
        };
        if Some(pane_id) == except || ccmux_plugin_api::check_pane_id(pane_id).is_err() {
            continue;
        }
        prune_one(&entry.path(), root, pane_id);
    }
}

/// Removes one attached pane's state dir if it is no longer needed.
fn prune_one(dir: &Path, root: &Path, pane_id: &str) {
    match remove_if_unused(dir, attached_identity(root, pane_id)) {
        Ok(true) => tracing::debug!("removed {}: its pane closed", dir.display()),
        Ok(false) => {}
        Err(err) => tracing::warn!("cannot remove the state dir of closed pane {pane_id}: {err}"),
    }
}

/// The pane this attach opens, its saved record if it is a restore, and
/// the profile it is to be in.
fn plan_pane(
    pane_id: &str,
    args: &AttachArgs,
    state: &StateDir,
    cwd: &std::path::Path,
) -> Result<(Option<SavedPane>, PlannedPane, Option<ProfileUse>), String> {
    let file = state.panes_file();
    let saved = load_panes(&file).map_err(|err| err.to_string())?;
    // Only this pane's record is ever here; anything else would be
    // forgotten, and its plugin dirs cleaned up, by this start.
    if let Some(other) = saved.iter().find(|p| p.pane_id != pane_id) {
        return Err(format!(
            "{} saves pane {:?}, not only {pane_id:?}: it is not an attached pane's state file; move it away",
            file.display(),
            other.pane_id
        ));
    }
    let saved = saved.into_iter().next();
    let (planned, profile) = match &saved {
        Some(pane) => {
            // A kept pane stays in its profile; nothing of it changes when
            // another is asked for.
            let asked = asked_profile(args.profile.as_deref());
            let profile = restored_profile(pane, asked.as_ref(), &file).map_err(|recorded| {
                let (name, from, fix) = asked
                    .as_ref()
                    .map(|asked| (asked.name.as_str(), asked.from.as_str(), without(asked)))
                    .unwrap_or_default();
                format!(
                    "pane {pane_id:?} is in profile {recorded:?}, not {name:?} ({from}): a pane keeps the Claude account it was made in, and it stays kept as it was (saved in {file}); attach it {fix} or with --profile {recorded}, or open a new pane in {name:?} with another --pane-id",
                    file = file.display(),
                )
            })?;
            let mut pane = with_command(pane.clone(), &args.command, cwd);
            pane.profile = profile.as_ref().map(|used| used.name.clone());
            let planned = PlannedPane {
                pane,
                restored: true,
            };
            (planned, profile)
        }
        None => {
            let Some((program, program_args)) = args.command.split_first() else {
                return Err(format!(
                    "pane {pane_id:?} is not kept (nothing saved in {}); give the command to run after `--`",
                    file.display()
                ));
            };
            let (session_id, window_id, pane_index) = match split_pane_id(pane_id) {
                Some((session, window, index)) => (session.to_string(), window.to_string(), index),
                None => (new_session_id(), "0".to_string(), 0),
            };
            let profile = asked_profile(args.profile.as_deref());
            let planned = PlannedPane {
                pane: SavedPane {
                    pane_id: pane_id.to_string(),
                    session_id,
                    window_id,
                    pane_index,
                    command: program.clone(),
                    args: program_args.to_vec(),
                    cwd: cwd.to_path_buf(),
                    profile: profile.as_ref().map(|used| used.name.clone()),
                },
                restored: false,
            };
            (planned, profile)
        }
    };
    check_planned(&planned.pane, &file)?;
    Ok((saved, planned, profile))
}

/// The status a shell would report for the pane's process.
fn pane_status(exit: &PaneExit) -> u8 {
    match exit.kind {
        // Only the low 8 bits of an exit code reach a parent.
        ExitKind::Exited => (exit.code & 0xff) as u8,
        ExitKind::Signaled => Shutdown::exit_code(exit.code),
        ExitKind::Unknown => exit::FAILURE,
    }
}

/// The pane's process with the terminal attached: raw mode, typed bytes
/// forwarded, resizes followed.
struct AttachedPane {
    process: PaneProcess,
    input: InputForwarder,
    resize: ResizeFollower,
    /// Dropped last: the terminal goes back to its modes once the pane's
    /// output is all written.
    _raw: RawMode,
}

impl AttachedPane {
    fn start(
        pane_id: &str,
        command: &PaneCommand<'_>,
        resizes: Signals,
        hang_up: HangUp,
    ) -> Result<Self, SpawnError> {
        let stdin = libc::STDIN_FILENO;
        let raw = RawMode::enter(stdin).map_err(SpawnError::Terminal)?;
        let size = terminal::size(stdin).unwrap_or(DEFAULT_SIZE);
        let process = PaneProcess::spawn(pane_id, command, size, Output::Raw)?;
        let forwarders = process.terminal().and_then(|pty| {
            let resize = ResizeFollower::start(pty.try_clone()?, resizes)?;
            let input = InputForwarder::start(pty, hang_up)?;
            Ok((input, resize))
        });
        match forwarders {
            Ok((input, resize)) => Ok(AttachedPane {
                process,
                input,
                resize,
                _raw: raw,
            }),
            Err(err) => {
                // A pane nobody can type into is no use: end it.
                let mut process = process;
                if let Some(pid) = process.pid() {
                    signal_process_group(pid, libc::SIGKILL);
                }
                process.wait();
                process.finish_output();
                Err(SpawnError::Terminal(err))
            }
        }
    }
}

impl StartedPane for AttachedPane {
    fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    fn wait(&mut self) -> PaneExit {
        self.process.wait()
    }

    fn finish(self) {
        self.process.finish_output();
        self.input.stop();
        self.resize.stop();
        let _ = io::stdout().flush();
    }
}

/// Copies what is typed on stdin to the pane's terminal, byte for byte.
struct InputForwarder {
    /// Closing it wakes the thread up to end.
    wake: io::PipeWriter,
    /// Disconnected when the thread has ended.
    ended: mpsc::Receiver<()>,
    thread: JoinHandle<()>,
}

impl InputForwarder {
    fn start(pty: File, hang_up: HangUp) -> io::Result<Self> {
        let (wake_reader, wake) = io::pipe()?;
        let (ended_tx, ended) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("input".to_string())
            .spawn(move || {
                if forward_input(libc::STDIN_FILENO, wake_reader.as_raw_fd(), pty)
                    == InputEnd::TerminalGone
                {
                    hang_up.hang_up();
                }
                drop(ended_tx);
            })?;
        Ok(InputForwarder {
            wake,
            ended,
            thread,
        })
    }

    /// Ends the thread. A write blocked on a pane that does not read (the
    /// pane's process is gone, something it left holds the terminal) is
    /// not waited for.
    fn stop(self) {
        drop(self.wake);
        if let Err(mpsc::RecvTimeoutError::Disconnected) =
            self.ended.recv_timeout(Duration::from_secs(1))
        {
            let _ = self.thread.join();
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum InputEnd {
    /// Asked to stop, or the pane no longer takes input.
    Stopped,
    /// End of file or an error on the terminal: it was closed.
    TerminalGone,
}

/// Forwards `stdin` to `pty` until `wake` becomes readable (or closed),
/// the pane stops taking input, or the terminal goes away.
fn forward_input(stdin: RawFd, wake: RawFd, mut pty: File) -> InputEnd {
    let mut buffer = [0u8; 4096];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: stdin,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds, and their count.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if ready < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return InputEnd::Stopped;
        }
        if fds[1].revents != 0 {
            return InputEnd::Stopped;
        }
        if fds[0].revents & libc::POLLNVAL != 0 {
            return InputEnd::TerminalGone;
        }
        if fds[0].revents == 0 {
            continue;
        }
        // Not through std's Stdin: its buffer would hold bytes poll cannot
        // see.
        // SAFETY: reads at most buffer.len() bytes into the buffer.
        let read = unsafe { libc::read(stdin, buffer.as_mut_ptr().cast(), buffer.len()) };
        match read {
            // Raw mode makes Ctrl-D a byte: end of file is a hang-up.
            0 => return InputEnd::TerminalGone,
            n if n > 0 => {
                let n = usize::try_from(n).unwrap_or(0);
                if pty.write_all(&buffer[..n]).is_err() {
                    return InputEnd::Stopped;
                }
            }
            _ => match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => continue,
                _ => return InputEnd::TerminalGone,
            },
        }
    }
}

/// Gives the pane's terminal the size of host-shim's on every SIGWINCH.
struct ResizeFollower {
    handle: Handle,
    thread: JoinHandle<()>,
}

impl ResizeFollower {
    fn start(pty: File, mut resizes: Signals) -> io::Result<Self> {
        let handle = resizes.handle();
        let thread = thread::Builder::new()
            .name("resize".to_string())
            .spawn(move || {
                for _ in resizes.forever() {
                    if let Some(size) = terminal::size(libc::STDIN_FILENO) {
                        follow(&pty, size);
                    }
                }
            })?;
        Ok(ResizeFollower { handle, thread })
    }

    fn stop(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

fn follow(pty: &File, size: PtySize) {
    if let Err(err) = terminal::set_size(pty.as_raw_fd(), size) {
        tracing::debug!("cannot resize the pane's terminal: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attached_panes_identity_is_derived_from_its_root_and_id_alone() {
        let root = Path::new("/home/me/.local/state/ccmux/host-shim");
        let id = attached_identity(root, "work-1");
        assert_eq!(id, attached_identity(root, "work-1"));
        assert_ne!(id, attached_identity(root, "work-2"));
        assert_ne!(id, attached_identity(Path::new("/elsewhere"), "work-1"));
        // A UUID like any other server id: it round-trips through text.
        assert_eq!(Uuid::parse_str(&id.to_string()).ok(), Some(id));
        // Fixed for good: a kept pane's identity must not change with a
        // new build.
        assert_eq!(
            attached_identity(Path::new("/s"), "p_0_0").to_string(),
            "c3e8e1c4-225d-8951-aadc-c1232764c52a"
        );
    }
}
