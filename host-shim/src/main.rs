//! host-shim: a stand-in for the ccmux server, for people trying plugins
//! and for the integration tests.
//!
//! It drives the real plugin lifecycle through
//! [`ccmux_plugin_api::host::PluginHost`] the way the server does: a
//! server identity that survives restarts, panes with server-style ids,
//! `server_start` → per pane `pane_create`, `pre_spawn`, a process in a
//! real PTY, `pane_close` → `server_stop`, and panes saved across a
//! graceful shutdown for `--restore`.
//!
//! It is not a terminal multiplexer: there are no windows to look at.
//! `run` copies each pane's output to stdout as `[PANE-ID] line` and
//! forwards no input; `attach` runs one pane in the terminal host-shim
//! runs in, as a multiplexer's pane. Logs go to stderr (`RUST_LOG`,
//! default `warn`).
//!
//! Exit status, the same for every subcommand (README: "Exit status"):
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success: every pane's command exited 0 and every hook agreed; `check`: every enabled plugin loaded; `plugins`: the list was printed |
//! | 1 | something ran and failed: a pane's command exited non-zero, a pane could not start, a required plugin failed; `check`: a plugin did not load; `doctor`: a finding needs action; `carry-back apply`: the user's `.claude.json` could not take the entry |
//! | 2 | nothing ran: bad arguments (`--panes 0`, no command, an invalid pane id, an empty command), no or a bad plugins.toml (also a plugin's invalid `[plugins.config]`), `--restore` with nothing saved, `attach` of a pane not kept without a command, a bad or busy state dir (a pane attached right now), stdin not a terminal for `attach`, a `carry-back` entry that does not exist, a profile (`--profile`, `--pane-id ID@NAME`, an inherited `CCMUX_PROFILE`) that plugins.toml does not name or that has no enabled isolation plugin to put the pane in, a restore or attach of a kept pane asking for another profile than the one it is in |
//! | 128+N | ended by signal N (SIGINT, SIGTERM; SIGHUP for `attach`) |
//!
//! `attach` exits with the pane's own status instead when its command ran:
//! its exit code, or 128+N if signal N killed it (as a shell reports it);
//! 1 if it exited 0 but a hook failed.

#[cfg(not(unix))]
compile_error!("host-shim runs panes in Unix PTYs and supports Unix only");

/// `eprintln!` that never panics. stderr may be a terminal that went away
/// (an attached pane's, closed), and a message is not worth a crash: a
/// panic in the signal watcher would leave the pane running forever.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod attach;
mod carry_back;
mod cli;
mod config_file;
mod doctor;
mod isolation;
mod new_plugin;
mod pane;
mod plugins;
mod reload;
mod run;
mod server;
mod shutdown;
mod state;
mod state_file;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Exit statuses shared by the subcommands: the table in the crate docs.
mod exit {
    pub const SUCCESS: u8 = 0;
    /// Something ran and failed: a pane's command, or a plugin.
    pub const FAILURE: u8 = 1;
    /// Nothing ran: bad arguments, plugins.toml or state dir. Also what
    /// clap exits with on bad arguments.
    pub const USAGE: u8 = 2;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let code = match &cli.command {
        Command::Check(args) => list_plugins(args, true),
        Command::Plugins(args) => list_plugins(args, false),
        Command::Run(args) => run::run(args),
        Command::Attach(args) => attach::attach(args),
        Command::CarryBack(args) => carry_back::carry_back(args),
        Command::Doctor(args) => doctor::doctor(args),
        Command::NewPlugin(args) => new_plugin::new_plugin(args),
    };
    ExitCode::from(code)
}

/// `check` and `plugins`: which file and search dirs, then the plugins.
fn list_plugins(args: &cli::ConfigArg, strict: bool) -> u8 {
    use std::io::Write;

    let choice = match config_file::resolve(args.config.as_deref()) {
        Ok(choice) => choice,
        Err(err) => {
            say!("host-shim: {err}");
            return exit::USAGE;
        }
    };
    {
        let mut stdout = std::io::stdout().lock();
        for line in config_file::describe(&choice) {
            // Best effort: nothing useful to do if stdout is closed.
            let _ = writeln!(stdout, "{line}");
        }
    }
    plugins::list(&choice, strict)
}

fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
