//! The fake home every bench runs in.
//!
//! The isolation plugin reads the user's Claude dir from the environment
//! of the process that loads it (`$CLAUDE_CONFIG_DIR`, else `$HOME/.claude`
//! beside `$HOME/.claude.json`), and host-shim inherits the bench's
//! environment too. So each bench process points `HOME` (and the XDG dirs)
//! at a temp dir before anything loads a plugin, and gives that home what
//! a typical Claude user has.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::claude_json;

/// The entries of a user's Claude dir that the isolation plugin links into
/// every pane by default (its `share` list), plus the credentials file.
const SHARED_FILES: &[(&str, &str)] = &[
    (
        "settings.json",
        "{\n  \"model\": \"opus\",\n  \"permissions\": {\"allow\": [\"Bash(cargo test:*)\", \"Bash(git status)\"]},\n  \"env\": {\"DISABLE_TELEMETRY\": \"1\"}\n}\n",
    ),
    ("CLAUDE.md", "# Personal preferences\n\n- Prefer small commits.\n- Run the tests before saying done.\n"),
    (".credentials.json", "{\"claudeAiOauth\": {\"accessToken\": \"fake\", \"refreshToken\": \"fake\", \"expiresAt\": 0}}\n"),
];
const SHARED_DIRS: &[&str] = &["agents", "commands", "skills", "output-styles", "plugins"];

/// A user's Claude state: `{home}/.claude/` and `{home}/.claude.json`.
#[derive(Debug, Clone)]
pub struct UserClaudeDir {
    pub home: PathBuf,
    pub claude_dir: PathBuf,
    pub claude_json: PathBuf,
}

impl UserClaudeDir {
    /// Creates a user's Claude dir under `home`, with every shared entry
    /// and a generated `.claude.json` of about `claude_json_bytes`.
    pub fn create(home: &Path, claude_json_bytes: usize) -> UserClaudeDir {
        let claude_dir = home.join(".claude");
        fs::create_dir_all(&claude_dir).expect("fake ~/.claude");
        for (name, text) in SHARED_FILES {
            fs::write(claude_dir.join(name), text).expect("fake shared file");
        }
        for name in SHARED_DIRS {
            let dir = claude_dir.join(name);
            fs::create_dir_all(&dir).expect("fake shared dir");
            fs::write(dir.join("example.md"), "# example\n").expect("fake shared file");
        }
        let claude_json = home.join(".claude.json");
        fs::write(&claude_json, claude_json::generate(claude_json_bytes))
            .expect("fake ~/.claude.json");
        UserClaudeDir {
            home: home.to_path_buf(),
            claude_dir,
            claude_json,
        }
    }

    /// The same user as Claude lays it out under `CLAUDE_CONFIG_DIR`:
    /// `.claude.json` inside the Claude dir. For a plugin given the dir as
    /// `user_config_dir`.
    pub fn with_claude_json_inside(self) -> UserClaudeDir {
        let inside = self.claude_dir.join(".claude.json");
        fs::rename(&self.claude_json, &inside).expect("move .claude.json into the Claude dir");
        UserClaudeDir {
            claude_json: inside,
            ..self
        }
    }

    /// The names in `.claude/` that a pane shares (symlinks), as the
    /// isolation plugin's default `share` list has them.
    pub fn shared_names() -> Vec<&'static str> {
        let mut names: Vec<&str> = SHARED_FILES
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| *n != ".credentials.json")
            .collect();
        names.extend(SHARED_DIRS);
        names
    }
}

/// This bench process's sandbox: a temp dir with a fake home, installed as
/// the process environment. Removed when dropped.
pub struct BenchEnv {
    dir: tempfile::TempDir,
    pub user: UserClaudeDir,
}

impl BenchEnv {
    /// Creates the sandbox and points this process's `HOME`, XDG dirs and
    /// `TMPDIR` at it. Call it early in `main`, before any thread exists
    /// (changing the environment races with threads reading it), but after
    /// [`artifacts`](crate::artifacts()): cargo and rustup find their own
    /// state through the real `HOME`.
    pub fn install(claude_json_bytes: usize) -> BenchEnv {
        let dir = tempfile::Builder::new()
            .prefix("ccmux-bench-")
            .tempdir()
            .expect("temp dir");
        let home = dir.path().join("home");
        let user = UserClaudeDir::create(&home, claude_json_bytes);
        let tmp = dir.path().join("tmp");
        fs::create_dir_all(&tmp).expect("temp dir");
        for (key, value) in env_vars(dir.path(), &home) {
            std::env::set_var(key, value);
        }
        for key in REMOVED_VARS {
            std::env::remove_var(key);
        }
        BenchEnv { dir, user }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh directory inside the sandbox.
    pub fn tempdir(&self, prefix: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.dir.path())
            .expect("temp dir in the sandbox")
    }

    /// `program` with this sandbox's environment, stated explicitly so a
    /// child never depends on what the bench process inherited.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.dir.path());
        for (key, value) in env_vars(self.dir.path(), &self.user.home) {
            cmd.env(key, value);
        }
        for key in REMOVED_VARS {
            cmd.env_remove(key);
        }
        cmd
    }
}

/// Variables that would point a plugin or host-shim at real user state.
const REMOVED_VARS: &[&str] = &[
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_SECURESTORAGE_CONFIG_DIR",
    "CCMUX_PANE_ID",
    "CCMUX_CLAUDE_SESSION_ID",
    "CCMUX_USER_CLAUDE_CONFIG_DIR",
    "RUST_LOG",
];

fn env_vars(sandbox: &Path, home: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("HOME", home.to_path_buf()),
        ("XDG_STATE_HOME", sandbox.join("xdg-state")),
        ("XDG_DATA_HOME", sandbox.join("xdg-data")),
        ("XDG_CONFIG_HOME", sandbox.join("xdg-config")),
        ("XDG_CACHE_HOME", sandbox.join("xdg-cache")),
        ("TMPDIR", sandbox.join("tmp")),
    ]
}
