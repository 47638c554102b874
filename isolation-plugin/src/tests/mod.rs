//! Unit tests, through the plugin's hooks wherever possible. Everything
//! lives in a temp dir with a fake home; the process environment is never
//! read or changed.

mod carry_back_tests;
mod config_tests;
mod drift_tests;
mod fault_tests;
mod guard_tests;
mod layering_tests;
mod lifecycle_tests;
mod profile_tests;
mod reload_tests;
mod security_tests;
mod seed_tests;
mod shared_data_tests;
mod spawn_env_tests;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ccmux_plugin_api::{
    apply_env_edits, parse_config, EnvVar, HookError, InitContext, PaneExit, PaneInfo, Plugin,
    RString, RVec, ServerStart, ServerStop, SpawnEnv,
};

use crate::{HostEnvironment, IsolationConfig, IsolationPlugin};

pub(crate) const SERVER_A: &str = "0b4c1f9e-5c7d-4a8e-9f00-1234567890ab";
pub(crate) const SERVER_B: &str = "6f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f";
pub(crate) const SERVER_C: &str = "a1b2c3d4-e5f6-4788-9900-aabbccddeeff";

/// A temp dir holding a fake home, the plugins.toml dir, the base dir and
/// an `outside/` dir that no test may ever change through the plugin.
pub(crate) struct Harness {
    root: tempfile::TempDir,
}

impl Harness {
    pub(crate) fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        for dir in ["home/.claude", "conf", "outside"] {
            fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        Harness { root }
    }

    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }
    pub(crate) fn home(&self) -> PathBuf {
        self.root().join("home")
    }
    pub(crate) fn user_claude_dir(&self) -> PathBuf {
        self.home().join(".claude")
    }
    pub(crate) fn user_claude_json(&self) -> PathBuf {
        self.home().join(".claude.json")
    }
    pub(crate) fn conf_dir(&self) -> PathBuf {
        self.root().join("conf")
    }
    pub(crate) fn base(&self) -> PathBuf {
        self.root().join("base")
    }
    pub(crate) fn outside(&self) -> PathBuf {
        self.root().join("outside")
    }
    pub(crate) fn pane_dir(&self, id: &str) -> PathBuf {
        self.base().join(id)
    }

    pub(crate) fn env(&self) -> HostEnvironment {
        HostEnvironment {
            home: Some(self.home()),
            claude_config_dir: None,
        }
    }

    /// `toml` is a [plugins.config] table; `base_dir` defaults to
    /// `self.base()` unless the table sets it.
    pub(crate) fn config(&self, toml: &str) -> IsolationConfig {
        let mut config: IsolationConfig = parse_config("isolation", toml).unwrap();
        if config.base_dir.is_none() {
            config.base_dir = Some(self.base());
        }
        config
    }

    pub(crate) fn try_plugin(&self, toml: &str) -> Result<IsolationPlugin, HookError> {
        self.plugin_with_env(toml, &self.env())
    }

    pub(crate) fn plugin_with_env(
        &self,
        toml: &str,
        env: &HostEnvironment,
    ) -> Result<IsolationPlugin, HookError> {
        IsolationPlugin::with_environment(self.config(toml), &self.ctx(), env)
    }

    pub(crate) fn plugin(&self, toml: &str) -> IsolationPlugin {
        self.try_plugin(toml).unwrap()
    }

    /// A plugin already started as `server_id` with no live panes.
    pub(crate) fn started(&self, toml: &str, server_id: &str) -> IsolationPlugin {
        let plugin = self.plugin(toml);
        start(&plugin, server_id, &[]).unwrap();
        plugin
    }

    pub(crate) fn ctx(&self) -> InitContext {
        InitContext {
            plugin_name: "isolation".to_string(),
            config_dir: self.conf_dir(),
        }
    }

    pub(crate) fn write_user_claude_json(&self, json: &serde_json::Value) {
        fs::write(self.user_claude_json(), serde_json::to_vec(json).unwrap()).unwrap();
    }
}

pub(crate) fn pane(id: &str) -> PaneInfo {
    PaneInfo {
        pane_id: id.into(),
        session_id: "main".into(),
        window_id: "0".into(),
        pane_index: 0,
        command: "claude".into(),
        args: RVec::new(),
        cwd: "/".into(),
    }
}

/// Starts the server, and waits for the merge of pending carry-backs the
/// start began (on a thread of its own) to end, so the tests see what it
/// did.
pub(crate) fn start(
    plugin: &IsolationPlugin,
    server_id: &str,
    live: &[&str],
) -> Result<(), HookError> {
    let started = plugin.on_server_start(&ServerStart {
        server_id: server_id.into(),
        instance_id: RString::from(format!("instance-of-{server_id}")),
        state_dir: "/nonexistent-state".into(),
        live_panes: live.iter().map(|id| RString::from(*id)).collect(),
    });
    plugin.wait_for_pending_pass();
    started
}

pub(crate) fn stop(plugin: &IsolationPlugin, server_id: &str) {
    plugin
        .on_server_stop(&ServerStop {
            instance_id: RString::from(format!("instance-of-{server_id}")),
        })
        .unwrap();
}

/// A pane as a host makes one: `on_pane_create`, then `on_pre_spawn`
/// (where the pane's profile is filled in) with an empty environment.
pub(crate) fn create(plugin: &IsolationPlugin, id: &str) -> Result<(), HookError> {
    plugin.on_pane_create(&pane(id))?;
    spawn_env(plugin, id, &[]).map(drop)
}

pub(crate) fn close(plugin: &IsolationPlugin, id: &str, exit: PaneExit) -> Result<(), HookError> {
    plugin.on_pane_close(&pane(id), &exit)
}

/// Runs on_pre_spawn over `base` and returns the resulting environment.
pub(crate) fn spawn_env(
    plugin: &IsolationPlugin,
    id: &str,
    base: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, HookError> {
    let mut vars = env_vars(base);
    let mut env = SpawnEnv::new(&vars);
    plugin.on_pre_spawn(&pane(id), &mut env)?;
    let edits = env.into_edits();
    apply_env_edits(&mut vars, &edits);
    Ok(vars
        .into_iter()
        .map(|var| (var.key.to_string(), var.value.to_string()))
        .collect())
}

/// `base` as a spawn environment.
pub(crate) fn env_vars(base: &[(&str, &str)]) -> Vec<EnvVar> {
    base.iter()
        .map(|(k, v)| EnvVar {
            key: (*k).into(),
            value: (*v).into(),
        })
        .collect()
}

pub(crate) fn metadata_json(pane_dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(pane_dir.join(".pane-metadata")).unwrap()).unwrap()
}

pub(crate) fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

pub(crate) fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Polls `done` for up to five seconds: background removals are given
/// generous time, never a tight deadline.
pub(crate) fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// Makes every timestamp the orphan scan looks at `secs` old.
pub(crate) fn age(pane_dir: &Path, secs: u64) {
    let when = SystemTime::now() - Duration::from_secs(secs);
    for path in [
        pane_dir.join("config/.claude.json"),
        pane_dir.join("config"),
        pane_dir.join(".pane-metadata"),
        pane_dir.to_path_buf(),
    ] {
        if let Ok(file) = fs::File::open(&path) {
            file.set_modified(when).unwrap();
        }
    }
}

/// Every path under `dir` with its kind and content, to prove that nothing
/// changed there.
pub(crate) fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.push((
                    rel,
                    format!("link -> {}", fs::read_link(&path).unwrap().display()),
                ));
            } else if meta.is_dir() {
                out.push((rel, format!("dir {mode:o}")));
                walk(&path, root, out);
            } else {
                let content = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
                out.push((rel, format!("file {mode:o} {content}")));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Entry names of a directory, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `f` on another thread; `None` if it has not returned within five
/// seconds (the thread is then left behind, blocked).
pub(crate) fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5)).ok()
}

/// Runs `f` with a log subscriber on this thread and returns what it logged
/// (every level), one event a line.
pub(crate) fn logs_of(f: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(crate) fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The pane's own `.claude.json`.
pub(crate) fn pane_file(h: &Harness, id: &str) -> PathBuf {
    h.pane_dir(id).join("config/.claude.json")
}

/// Changes the pane's `.claude.json` as its Claude would.
pub(crate) fn edit_pane(h: &Harness, id: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = pane_file(h, id);
    let mut file = read_json(&path);
    edit(&mut file);
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
}

/// The pending carry-backs kept in the base dir.
pub(crate) fn pending(h: &Harness) -> Vec<String> {
    let dir = h.base().join(".pending-carry-back");
    if dir.exists() {
        names(&dir)
    } else {
        Vec::new()
    }
}
