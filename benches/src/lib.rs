//! Benchmarks for ccmux's plugin system and isolation, and the support code
//! they share.
//!
//! The benches answer one question per row of BENCHMARKS.md: what does
//! moving a feature into a plugin cost, compared with doing the same work
//! in plain Rust in the same process? Every row measures the plugin path
//! and its baseline *in the same run*, so the ratio printed at the end of
//! each row (a `SUMMARY` line) does not depend on the machine's mood:
//!
//! | bench | rows |
//! | --- | --- |
//! | `hooks` | 1: a no-op hook call through a loaded plugin vs a `Box<dyn Trait>` call; 2: loading a plugin from plugins.toml vs a bare `dlopen` |
//! | `isolation` | 3: one pane's isolation lifecycle vs the same filesystem work in plain Rust (1 and 2 threads); 4: the orphan scan at server start vs a bare `read_dir`; 5: seeding a pane's `.claude.json` from a 1 MB and a 50 MB user file; 8: the lifecycle with shared data and carry-back vs the previous layout; 9: seeding 5,000 projects from 100 MB vs the same projects without history; 10: closing a pane that changed its `.claude.json` vs the merge itself |
//! | `host_shim` | 6: host-shim running a pane with isolation on vs the plugin disabled; 7: host-shim's resident memory, same comparison |
//!
//! Run them all with `cargo bench -p ccmux-benches`, or one row with e.g.
//! `cargo bench -p ccmux-benches --bench hooks -- row1`.
//!
//! Each bench builds what it loads (the plugin libraries and host-shim)
//! with the cargo and profile it runs under, and runs everything against a
//! fake `HOME` in a temp dir: nothing reads or writes the real home.
//! `cargo test --all-targets` runs each bench once, in criterion's test
//! mode, on smaller inputs ([`Scale`]).

pub mod claude_json;
pub mod env;
pub mod report;

use std::path::Path;

use ccmux_plugin_api::{PaneExit, PaneInfo, RString, RVec, ServerStart};

pub use ccmux_tests::{artifacts, Artifacts};
pub use env::{BenchEnv, UserClaudeDir};
pub use report::{Row, Summary};

/// How big the inputs are: the sizes BENCHMARKS.md reports under
/// `cargo bench`, small ones when criterion runs a bench once as a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// `cargo bench`: the sizes of the issue.
    Full,
    /// `cargo test --all-targets` (criterion's test mode): each bench runs
    /// once, to prove it works.
    Test,
}

impl Scale {
    /// What criterion will do with this process's arguments: it runs
    /// benchmarks only when cargo passed `--bench` (and not `--test`).
    pub fn from_args() -> Scale {
        let args: Vec<String> = std::env::args().collect();
        let bench = args.iter().any(|a| a == "--bench");
        let test = args.iter().any(|a| a == "--test");
        if bench && !test {
            Scale::Full
        } else {
            Scale::Test
        }
    }

    /// `full` under `cargo bench`, `test` otherwise.
    pub fn pick<T>(self, full: T, test: T) -> T {
        match self {
            Scale::Full => full,
            Scale::Test => test,
        }
    }
}

/// A pane as host-shim would describe it.
pub fn pane(pane_id: &str) -> PaneInfo {
    PaneInfo {
        pane_id: pane_id.into(),
        session_id: "bench".into(),
        window_id: "w0".into(),
        pane_index: 0,
        command: "claude".into(),
        args: RVec::new(),
        cwd: "/tmp".into(),
    }
}

/// The exit of a pane whose process ended normally.
pub fn exited() -> PaneExit {
    PaneExit::exited(0)
}

/// A server start with a fresh identity (a UUID, as the isolation plugin
/// requires) and the given live panes.
pub fn server_start(server_id: &str, state_dir: &Path, live: &[String]) -> ServerStart {
    ServerStart {
        server_id: server_id.into(),
        instance_id: uuid::Uuid::new_v4().to_string().into(),
        state_dir: RString::from(state_dir.to_string_lossy().as_ref()),
        live_panes: live.iter().map(|p| RString::from(p.as_str())).collect(),
    }
}

/// A `[[plugins]]` entry of plugins.toml. `config` is the body of its
/// `[plugins.config]` table, in TOML.
pub fn plugin_entry(name: &str, library: &Path, enabled: bool, config: &str) -> String {
    format!(
        "[[plugins]]\nname = {name:?}\npath = {path:?}\nenabled = {enabled}\nrequired = true\n[plugins.config]\n{config}\n\n",
        path = library.display().to_string()
    )
}

/// The isolation plugin's `[plugins.config]` body for a base dir, with the
/// grace period the rows use (0: remove a closed pane's dir at once).
pub fn isolation_config(base_dir: &Path, grace_period_ms: u64) -> String {
    format!(
        "base_dir = {base:?}\ngrace_period_ms = {grace_period_ms}\n",
        base = base_dir.display().to_string()
    )
}
