//! A plugin for tests: what it does at each hook is set by its
//! `[plugins.config]` table, so one library covers env edits, hook order,
//! errors, panics, refusals, slow hooks, logging and concurrency.
//!
//! Not an example of a useful plugin; `isolation-plugin` is the reference.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use ccmux_plugin_api::{
    export_plugin, HookError, HookErrorKind, InitContext, PaneExit, PaneInfo, Plugin, ServerStart,
    ServerStop, SpawnEnv, Verdict,
};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ProbeConfig {
    /// Set in `on_pre_spawn`.
    set_env: BTreeMap<String, String>,
    /// Removed in `on_pre_spawn`.
    unset_env: Vec<String>,
    /// Variables to which `on_pre_spawn` appends `,<plugin name>`, so a
    /// test sees whether a plugin saw the edits of the ones before it.
    append_name_to: Vec<String>,
    /// Every hook call appends `<plugin> <hook> <detail>` here.
    record: Option<PathBuf>,
    /// Hooks that return an error.
    fail_in: Vec<String>,
    /// Hooks that panic.
    panic_in: Vec<String>,
    /// `on_pane_create` runs a thread of its own that panics.
    panic_in_thread: bool,
    fail_constructor: bool,
    panic_constructor: bool,
    /// Each hook emits an INFO event with this message.
    log_message: Option<String>,
    /// `on_pane_create` waits until this many calls run at once, and fails
    /// if they never do: proof that the host does not serialize hooks.
    rendezvous: usize,
    /// Hooks that refuse the pane (`on_pane_create` through `admit_pane`,
    /// `on_pre_spawn` through `SpawnEnv::refuse`), with `refuse_reason`.
    refuse_in: Vec<String>,
    refuse_reason: Option<String>,
    /// Hooks that sleep `sleep_ms` before returning.
    sleep_in: Vec<String>,
    sleep_ms: u64,
}

struct Probe {
    name: String,
    config: ProbeConfig,
    in_flight: Mutex<usize>,
    arrived: Condvar,
}

impl Probe {
    fn hook(&self, hook: &str, detail: &str) -> Result<(), HookError> {
        if let Some(message) = &self.config.log_message {
            tracing::info!(hook, detail, "{message}");
        }
        // One write per line (in `record_line`): hooks of several panes
        // append at once, and `writeln!` may split a line into writes.
        // Formatted only when recording: with no `record`, a hook is the
        // no-op the hook-call benchmark measures.
        if self.config.record.is_some() {
            self.record_line(&format!("{hook} {detail}"))?;
        }
        if self.config.sleep_in.iter().any(|h| h == hook) {
            std::thread::sleep(Duration::from_millis(self.config.sleep_ms));
        }
        if self.config.panic_in.iter().any(|h| h == hook) {
            panic!("probe told to panic in {hook}");
        }
        if self.config.fail_in.iter().any(|h| h == hook) {
            return Err(HookError::new(
                HookErrorKind::Failed,
                format!("probe told to fail in {hook}"),
            ));
        }
        Ok(())
    }

    fn refuses(&self, hook: &str) -> bool {
        self.config.refuse_in.iter().any(|h| h == hook)
    }

    fn refusal_reason(&self) -> String {
        self.config
            .refuse_reason
            .clone()
            .unwrap_or_else(|| "probe told to refuse".to_string())
    }

    /// Appends `<plugin> <line>` to the record file, if there is one.
    fn record_line(&self, line: &str) -> Result<(), HookError> {
        if let Some(record) = &self.config.record {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(record)?;
            file.write_all(format!("{} {line}\n", self.name).as_bytes())?;
        }
        Ok(())
    }

    fn rendezvous(&self) -> Result<(), HookError> {
        let want = self.config.rendezvous;
        if want == 0 {
            return Ok(());
        }
        let mut count = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        *count += 1;
        self.arrived.notify_all();
        let (count, timeout) = self
            .arrived
            .wait_timeout_while(count, Duration::from_secs(20), |c| *c < want)
            .unwrap_or_else(|p| p.into_inner());
        if timeout.timed_out() {
            return Err(HookError::new(
                HookErrorKind::Failed,
                format!("only {} of {want} hook calls ran at once", *count),
            ));
        }
        Ok(())
    }
}

impl Plugin for Probe {
    const NAME: &'static str = "probe";
    // It refuses when told to: a policy plugin, so its faults refuse panes
    // unless plugins.toml's `on_fault` says `admit`.
    const REFUSES_PANES: bool = true;
    type Config = ProbeConfig;

    fn new(config: ProbeConfig, ctx: &InitContext) -> Result<Self, HookError> {
        if config.panic_constructor {
            panic!("probe told to panic in its constructor");
        }
        if config.fail_constructor {
            return Err(HookError::new(
                HookErrorKind::Failed,
                "probe told to fail in its constructor",
            ));
        }
        let probe = Probe {
            name: ctx.plugin_name.clone(),
            config,
            in_flight: Mutex::new(0),
            arrived: Condvar::new(),
        };
        probe.hook("new", "")?;
        Ok(probe)
    }

    fn on_server_start(&self, event: &ServerStart) -> Result<(), HookError> {
        let live: Vec<&str> = event.live_panes.iter().map(|p| p.as_str()).collect();
        self.hook("on_server_start", &live.join(","))
    }

    fn admit_pane(&self, pane: &PaneInfo) -> Result<Verdict, HookError> {
        if self.refuses("on_pane_create") {
            self.record_line(&format!("on_pane_create {} refused", pane.pane_id))?;
            return Ok(Verdict::refuse(self.refusal_reason()));
        }
        Ok(Verdict::Admit)
    }

    fn on_pane_create(&self, pane: &PaneInfo) -> Result<(), HookError> {
        self.hook("on_pane_create", &pane.pane_id)?;
        if self.config.panic_in_thread {
            let worker = std::thread::spawn(|| panic!("probe's own thread panics"));
            let _ = worker.join();
        }
        self.rendezvous()
    }

    fn on_pre_spawn(&self, pane: &PaneInfo, env: &mut SpawnEnv<'_>) -> Result<(), HookError> {
        self.hook("on_pre_spawn", &pane.pane_id)?;
        for (key, value) in &self.config.set_env {
            env.set(key.as_str(), value.as_str());
        }
        for key in &self.config.unset_env {
            env.unset(key.as_str());
        }
        for key in &self.config.append_name_to {
            let value = match env.get(key) {
                Some(previous) => format!("{previous},{}", self.name),
                None => self.name.clone(),
            };
            env.set(key.as_str(), value);
        }
        if self.refuses("on_pre_spawn") {
            env.refuse(self.refusal_reason());
        }
        Ok(())
    }

    fn on_pane_close(&self, pane: &PaneInfo, exit: &PaneExit) -> Result<(), HookError> {
        self.hook("on_pane_close", &format!("{} {exit}", pane.pane_id))
    }

    fn on_server_stop(&self, _event: &ServerStop) -> Result<(), HookError> {
        self.hook("on_server_stop", "")
    }
}

export_plugin!(Probe);
