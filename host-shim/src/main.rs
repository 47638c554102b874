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
//! It is not a terminal multiplexer: there are no windows to look at, no
//! input is forwarded to the panes, and each pane's output is only copied
//! to stdout as `[PANE-ID] line`. Logs go to stderr (`RUST_LOG`, default
//! `warn`).
//!
//! Exit status: 0 success; 1 a pane's command failed or a required plugin
//! did (`check`: a plugin did not load); 2 a usage, plugins.toml or state
//! dir error; 128+N when ended by signal N (SIGINT, SIGTERM).

#[cfg(not(unix))]
compile_error!("host-shim runs panes in Unix PTYs and supports Unix only");

mod cli;
mod pane;
mod plugins;
mod reload;
mod run;
mod shutdown;
mod state;
mod state_file;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Exit statuses shared by the subcommands.
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
        Command::Check(args) => plugins::list(&args.config, true),
        Command::Plugins(args) => plugins::list(&args.config, false),
        Command::Run(args) => run::run(args),
    };
    ExitCode::from(code)
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
