//! The command line. Integration tests drive host-shim through it, so the
//! subcommands, flags and exit codes are a contract: see the crate docs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "host-shim",
    version,
    about = "A stand-in for the ccmux server: runs commands in PTY panes and drives the plugin lifecycle around them",
    long_about = None,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load every enabled plugin and list them; exit 0 only if all loaded.
    Check(ConfigArg),
    /// List the plugins, in the order their hooks run, and their status;
    /// exit 0 even if some failed.
    Plugins(ConfigArg),
    /// Start a server, run CMD in each pane, close the panes, stop.
    Run(RunArgs),
    /// Run one pane attached to this terminal, as a multiplexer's pane.
    Attach(AttachArgs),
    /// Check Claude, the user's Claude dir, the plugins and the pane dirs;
    /// one line per finding, exit 1 if one needs action.
    Doctor(ConfigArg),
    /// Review the `.claude.json` changes of closed panes that the isolation
    /// plugin kept pending (held back, or not merged yet): list them item
    /// by item, apply one, or drop one.
    CarryBack(CarryBackArgs),
    /// Write a new plugin crate from the template: NAME filled in,
    /// depending on plugin-api by path (--api-path) or git (--api-git).
    NewPlugin(NewPluginArgs),
}

#[derive(Debug, Args)]
pub struct NewPluginArgs {
    /// The crate's package name (lowercase letters, digits, `-`, `_`).
    pub name: String,

    /// Where to write it: a new or empty directory [default: ./NAME].
    pub dir: Option<PathBuf>,

    /// A ccmux checkout's plugin-api/ directory, as a path dependency
    /// [default: the checkout this host-shim was built from].
    #[arg(long, value_name = "DIR", conflicts_with = "api_git")]
    pub api_path: Option<PathBuf>,

    /// The ccmux repository's git URL, as a git dependency at --api-tag.
    #[arg(long, value_name = "URL")]
    pub api_git: Option<String>,

    /// The tag for --api-git [default: plugin-api-vVERSION, this
    /// host-shim's plugin-api version].
    #[arg(long, value_name = "TAG", requires = "api_git")]
    pub api_tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct CarryBackArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    /// The plugins.toml entry of the isolation plugin [default: the entry
    /// that loads ccmux_isolation_plugin, if there is one].
    #[arg(long, value_name = "NAME")]
    pub plugin: Option<String>,

    #[command(subcommand)]
    pub action: Option<CarryBackAction>,
}

#[derive(Debug, Subcommand)]
pub enum CarryBackAction {
    /// Every entry, with what it would change, item by item [the default].
    List,
    /// One entry, with whole values.
    Show { name: String },
    /// Merge every item of one entry (held ones too) into the user's
    /// `.claude.json`; the user's own later changes still win. Then drop it.
    Apply { name: String },
    /// Remove one entry without merging anything of it.
    Drop { name: String },
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The plugins.toml to read [default: $CCMUX_PLUGINS_CONFIG, else
    /// $XDG_CONFIG_HOME/ccmux/plugins.toml (~/.config/ccmux/...); a
    /// plugins.toml in the current directory is read only when named].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    /// Where the server keeps its identity, its lock and its saved panes
    /// [default: the user's state dir, joined with ccmux/host-shim].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// How many new panes to open, with generated ids [default: 1].
    #[arg(
        long,
        value_name = "N",
        conflicts_with_all = ["pane_ids", "restore"],
        value_parser = clap::value_parser!(u32).range(1..),
    )]
    pub panes: Option<u32>,

    /// Open panes with these ids instead of generated ones. `ID@NAME`
    /// puts that pane in profile NAME (pane ids never contain `@`).
    #[arg(
        long = "pane-id",
        value_name = "ID[@NAME]",
        num_args = 1..,
        action = clap::ArgAction::Append,
        conflicts_with = "restore",
    )]
    pub pane_ids: Vec<String>,

    /// Leave the panes open when their commands exit, as a server shutting
    /// down gracefully does: they stay saved for --restore.
    #[arg(long)]
    pub keep_panes: bool,

    /// Reopen the panes the last run saved (same ids), instead of new ones.
    #[arg(long)]
    pub restore: bool,

    /// The profile (a Claude account, one of the isolation plugin's
    /// `[plugins.config.profiles]`, or `default`) of every new pane not
    /// given one with ID@NAME: the pane gets CCMUX_PROFILE=NAME [default:
    /// the CCMUX_PROFILE this host-shim inherited, else `default`]. With
    /// --restore, each pane stays in the profile it was saved in: NAME (or
    /// the inherited CCMUX_PROFILE) must be that one.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub profile: Option<String>,

    /// At the end of the run, print each plugin's calls, failures,
    /// refusals and last error on stderr.
    #[arg(long)]
    pub plugin_counts: bool,

    /// The command every pane runs, after `--`. With --restore it may be
    /// left out: each pane then runs the command it ran before.
    #[arg(
        last = true,
        value_name = "CMD",
        required_unless_present = "restore",
        num_args = 1..,
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    /// The root of host-shim's state; the pane's own state dir is
    /// DIR/attached/PANE-ID [default: the user's state dir, joined with
    /// ccmux/host-shim].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// The pane's id [default: a new one]. Attaching an id that was kept
    /// brings the pane back: the same dir, the same Claude session id.
    #[arg(long = "pane-id", value_name = "ID")]
    pub pane_id: Option<String>,

    /// Keep the pane when its command exits, for a later attach with the
    /// same --pane-id. (A signal or a closed terminal always keeps it.)
    #[arg(long)]
    pub keep: bool,

    /// The profile (a Claude account, one of the isolation plugin's
    /// `[plugins.config.profiles]`, or `default`) of a new pane: it gets
    /// CCMUX_PROFILE=NAME [default: the CCMUX_PROFILE this host-shim
    /// inherited, else `default`]. A kept pane stays in the profile it was
    /// made in: NAME (or the inherited CCMUX_PROFILE) must be that one.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub profile: Option<String>,

    /// The command the pane runs, after `--`. It may be left out when the
    /// pane id is kept: the pane then runs what it ran before.
    #[arg(last = true, value_name = "CMD", num_args = 1..)]
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("host-shim").chain(args.iter().copied()))
    }

    #[test]
    fn run_takes_the_command_after_the_separator() {
        let cli = parse(&["run", "--panes", "3", "--", "sh", "-c", "echo hi"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.panes, Some(3));
        assert_eq!(run.command, ["sh", "-c", "echo hi"]);
        assert_eq!(run.config.config, None);
    }

    #[test]
    fn pane_ids_take_several_values_and_repeat() {
        let cli = parse(&["run", "--pane-id", "a", "b", "--pane-id", "c", "--", "true"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.pane_ids, ["a", "b", "c"]);
    }

    #[test]
    fn contradictory_pane_sources_and_a_missing_command_are_refused() {
        assert!(parse(&["run", "--panes", "2", "--pane-id", "a", "--", "true"]).is_err());
        assert!(parse(&["run", "--restore", "--panes", "2", "--", "true"]).is_err());
        assert!(parse(&["run", "--panes", "2"]).is_err());
        assert!(parse(&["run", "--restore"]).is_ok());
        let err = parse(&["run", "--panes", "0", "--", "true"]).unwrap_err();
        assert!(err.to_string().contains("--panes"), "{err}");
    }

    #[test]
    fn attach_takes_one_pane_id_and_an_optional_command() {
        let cli = parse(&["attach", "--pane-id", "w1", "--keep", "--", "claude"]).unwrap();
        let Command::Attach(attach) = cli.command else {
            panic!("not attach")
        };
        assert_eq!(attach.pane_id.as_deref(), Some("w1"));
        assert!(attach.keep);
        assert_eq!(attach.command, ["claude"]);
        assert!(parse(&["attach", "--pane-id", "w1"]).is_ok());
        assert!(parse(&["attach", "--pane-id", "a", "b", "--", "true"]).is_err());
        assert_eq!(attach.profile, None);
    }

    #[test]
    fn a_profile_is_taken_by_run_and_attach_and_per_pane_in_the_id() {
        let cli = parse(&[
            "run",
            "--profile",
            "work",
            "--pane-id",
            "a@play",
            "b",
            "--",
            "true",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.profile.as_deref(), Some("work"));
        // Split from the id when the panes are planned.
        assert_eq!(run.pane_ids, ["a@play", "b"]);
        let cli = parse(&["run", "--restore", "--profile", "work"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert!(run.restore);
        assert_eq!(run.profile.as_deref(), Some("work"));
        let cli = parse(&["attach", "--profile", "work", "--", "claude"]).unwrap();
        let Command::Attach(attach) = cli.command else {
            panic!("not attach")
        };
        assert_eq!(attach.profile.as_deref(), Some("work"));
        // A name is needed; one profile per pane.
        assert!(parse(&["run", "--profile", "", "--", "true"]).is_err());
        assert!(parse(&["attach", "--profile", "", "--", "true"]).is_err());
        assert!(parse(&["attach", "--profile", "a", "--profile", "b", "--", "true"]).is_err());
    }
}
