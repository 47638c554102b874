//! The isolation plugin end to end: host-shim with the root plugins.toml,
//! running the real Claude Code CLI (`CLAUDE_BIN`) in its panes. Offline,
//! `claude -p` answers "Not logged in" but still writes all its state, which
//! is what these tests look at. Every process gets a fake HOME.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ccmux_tests::{
    claude_bin, pane_ids, pane_lines, repo_root, run, wait_for, Background, Sandbox,
};

/// The root plugins.toml, with `grace_period_ms` changed where a test needs
/// a grace period it can act within.
fn root_config(sandbox: &Sandbox, grace_ms: Option<u64>, enabled: bool) -> PathBuf {
    let text =
        std::fs::read_to_string(repo_root().join("plugins.toml")).expect("root plugins.toml");
    assert!(text.contains("grace_period_ms = 3000") && text.contains("enabled = true"));
    let mut text = text;
    if let Some(ms) = grace_ms {
        text = text.replace("grace_period_ms = 3000", &format!("grace_period_ms = {ms}"));
    }
    if !enabled {
        text = text.replace("enabled = true", "enabled = false");
    }
    sandbox.write("plugins.toml", &text)
}

fn base_dir(sandbox: &Sandbox) -> PathBuf {
    sandbox.home().join(".ccmux/claude")
}

/// host-shim run with the Claude CLI reachable as `$CLAUDE_BIN`.
fn shim(sandbox: &Sandbox, claude: &Path, config: &Path, state: &str) -> std::process::Command {
    let mut cmd = sandbox.host_shim();
    cmd.env("CLAUDE_BIN", claude)
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(sandbox.path().join(state));
    cmd
}

/// The pane dirs in the base dir (dot entries are the plugin's own).
fn pane_dirs(sandbox: &Sandbox) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(base_dir(sandbox))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => found.push(path),
                Err(_) => {}
            }
        }
    }
    found
}

/// The transcripts (`*.jsonl` under `projects/`) in the user's own dir.
fn transcripts(sandbox: &Sandbox) -> Vec<PathBuf> {
    files_under(&sandbox.home().join(".claude/projects"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect()
}

/// The user's transcript of `session`.
fn transcript_of(sandbox: &Sandbox, session: &str) -> Option<PathBuf> {
    transcripts(sandbox)
        .into_iter()
        .find(|p| p.file_stem().is_some_and(|n| n == session))
}

fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

fn assert_valid_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn concurrent_panes_keep_their_state_apart_and_out_of_home() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    let config = root_config(&sandbox, None, true);
    let out = run(shim(&sandbox, &claude, &config, "state")
        .args(["--panes", "3", "--keep-panes", "--", "sh", "-c"])
        .arg("\"$CLAUDE_BIN\" -p hi >/dev/null 2>&1; echo \"config=$CLAUDE_CONFIG_DIR\""));
    assert!(out.status.success(), "{out}");

    let ids = pane_ids(&out.stdout);
    assert_eq!(ids.len(), 3, "{out}");
    let mut expected_dirs = ids.clone();
    expected_dirs.sort();
    assert_eq!(pane_dirs(&sandbox), expected_dirs);
    for id in &ids {
        let pane_dir = base_dir(&sandbox).join(id);
        let config_dir = pane_dir.join("config");
        assert_eq!(
            pane_lines(&out.stdout, id),
            [format!("config={}", config_dir.display())],
            "{out}"
        );
        let mode = std::fs::metadata(&pane_dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", pane_dir.display());
        let metadata = assert_valid_json(&pane_dir.join(".pane-metadata"));
        assert_eq!(metadata["pane_id"], id.as_str());
        assert_valid_json(&config_dir.join(".claude.json"));
    }
    // Conversations are the user's: one transcript per pane, in the user's
    // own projects/ (every pane's projects/ links there).
    assert_eq!(transcripts(&sandbox).len(), 3);
    // No pane's Claude wrote a `.claude.json` of the user's.
    assert!(!sandbox.home().join(".claude.json").exists());

    // The same panes restored, then closed: their dirs go.
    let out = run(shim(&sandbox, &claude, &config, "state").args(["--restore", "--", "true"]));
    assert!(out.status.success(), "{out}");
    assert_eq!(pane_dirs(&sandbox), Vec::<String>::new());
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn resume_works_in_the_same_pane_across_a_restart() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    let config = root_config(&sandbox, None, true);
    let out = run(shim(&sandbox, &claude, &config, "state")
        .args(["--pane-id", "resume_0_0", "--keep-panes", "--", "sh", "-c"])
        .arg("\"$CLAUDE_BIN\" -p first --session-id \"$CCMUX_CLAUDE_SESSION_ID\" >/dev/null 2>&1; echo \"session=$CCMUX_CLAUDE_SESSION_ID\""));
    assert!(out.status.success(), "{out}");
    let session = pane_lines(&out.stdout, "resume_0_0")
        .iter()
        .find_map(|l| l.strip_prefix("session="))
        .map(str::to_string)
        .expect("session id printed");
    assert_eq!(session.len(), 36, "a UUID: {session}");
    let transcript = files_under(&sandbox.home().join(".claude/projects"))
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n == format!("{session}.jsonl").as_str())
        })
        .expect("the transcript is named by the session id");
    let before = std::fs::read_to_string(&transcript)
        .unwrap()
        .lines()
        .count();

    let out = run(shim(&sandbox, &claude, &config, "state")
        .args(["--restore", "--keep-panes", "--", "sh", "-c"])
        .arg("\"$CLAUDE_BIN\" -p again --resume \"$CCMUX_CLAUDE_SESSION_ID\" 2>&1 | cat; echo \"session=$CCMUX_CLAUDE_SESSION_ID\""));
    let lines = pane_lines(&out.stdout, "resume_0_0");
    assert!(
        lines.contains(&format!("session={session}").as_str()),
        "{out}"
    );
    assert!(!out.stdout.contains("No conversation found"), "{out}");
    let after = std::fs::read_to_string(&transcript)
        .unwrap()
        .lines()
        .count();
    assert!(
        after > before,
        "resume appended to the transcript ({before} -> {after})"
    );

    // The control: a session id nobody used is not found, in any pane.
    let out = run(shim(&sandbox, &claude, &config, "other-state")
        .args(["--pane-id", "elsewhere_0_0", "--", "sh", "-c"])
        .arg("\"$CLAUDE_BIN\" -p again --resume 0b5e2f7c-1d3a-4c5b-9e8f-7a6b5c4d3e2f 2>&1 | cat"));
    assert!(out.stdout.contains("No conversation found"), "{out}");
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn every_pane_shares_the_users_login_settings_and_mcp_servers() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    let user_dir = sandbox.home().join(".claude");
    let markers = sandbox.path().join("hook-ran");
    std::fs::create_dir_all(&markers).unwrap();
    sandbox.write(
        "home/.claude/.credentials.json",
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-test","refreshToken":"sk-ant-ort01-test","expiresAt":4102444800000,"scopes":["user:inference","user:profile"],"subscriptionType":"pro"}}"#,
    );
    sandbox.write(
        "home/.claude/settings.json",
        &serde_json::json!({"hooks": {"SessionStart": [{"hooks": [{
            "type": "command",
            "command": format!("touch {}/$CCMUX_PANE_ID", markers.display()),
        }]}]}})
        .to_string(),
    );
    sandbox.write(
        "home/.claude.json",
        &serde_json::json!({
            "hasCompletedOnboarding": true,
            "mcpServers": {"shared-demo": {"type": "stdio", "command": "/bin/true", "args": []}},
            "projects": {"/somewhere": {"allowedTools": ["secret-history"]}},
        })
        .to_string(),
    );
    let config = root_config(&sandbox, None, true);
    let out = run(shim(&sandbox, &claude, &config, "state")
        .args(["--panes", "2", "--keep-panes", "--", "sh", "-c"])
        .arg(
            "\"$CLAUDE_BIN\" auth status | cat; \"$CLAUDE_BIN\" mcp list | cat; \
             CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 CLAUDE_CODE_MAX_RETRIES=0 \"$CLAUDE_BIN\" -p hi >/dev/null 2>&1; true",
        ));
    assert!(out.status.success(), "{out}");
    let ids = pane_ids(&out.stdout);
    assert_eq!(ids.len(), 2, "{out}");
    for id in &ids {
        let text = pane_lines(&out.stdout, id).join("\n");
        assert!(text.contains("\"loggedIn\": true"), "{id}: {text}");
        assert!(text.contains("shared-demo"), "{id}: {text}");
        assert!(
            markers.join(id).exists(),
            "{id}: the SessionStart hook did not run"
        );
        let seeded = assert_valid_json(&base_dir(&sandbox).join(id).join("config/.claude.json"));
        assert!(seeded
            .get("projects")
            .is_none_or(|p| !p.to_string().contains("secret-history")));
    }
    // Per-process state stayed in the panes.
    assert!(!user_dir.join("sessions").exists());
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn disabled_in_plugins_toml_claude_uses_home_again() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    let config = root_config(&sandbox, None, false);
    let out = run(shim(&sandbox, &claude, &config, "state")
        .args(["--pane-id", "plain_0_0", "--", "sh", "-c"])
        .arg("\"$CLAUDE_BIN\" -p hi >/dev/null 2>&1; echo \"config=${CLAUDE_CONFIG_DIR-unset}\""));
    assert!(out.status.success(), "{out}");
    assert_eq!(
        pane_lines(&out.stdout, "plain_0_0"),
        ["config=unset"],
        "{out}"
    );
    assert_valid_json(&sandbox.home().join(".claude.json"));
    assert!(sandbox.home().join(".claude/projects").is_dir());
    assert!(!base_dir(&sandbox).exists());
}

/// Runs no Claude (its panes run `sh`), so it runs with or without the CLI.
#[test]
fn orphans_are_cleaned_only_by_their_own_server() {
    let claude = PathBuf::from("claude-is-not-run-by-this-test");
    let sandbox = Sandbox::new();
    // A grace period long enough that the closed pane's dir is still there
    // when the server is killed.
    let config = root_config(&sandbox, Some(120_000), true);
    let base = base_dir(&sandbox);
    let mut killed = Background::start(
        {
            let mut cmd = shim(&sandbox, &claude, &config, "state-a");
            cmd.args(["--pane-id", "run_0_0", "--pane-id", "done_0_1", "--", "sh", "-c"])
                .arg("if [ \"$CCMUX_PANE_ID\" = run_0_0 ]; then echo up; sleep 120; else echo finished; fi");
            cmd
        },
        &sandbox,
        "a",
    );
    let panes_file = sandbox.path().join("state-a/panes.json");
    wait_for("run_0_0 up and done_0_1 closed", 60, || {
        let saved = std::fs::read_to_string(&panes_file).unwrap_or_default();
        killed.stdout().contains("[run_0_0] up")
            && killed.stdout().contains("[done_0_1] finished")
            && saved.contains("run_0_0")
            && !saved.contains("done_0_1")
    });

    // The same identity cannot run twice.
    let out = run(shim(&sandbox, &claude, &config, "state-a").args(["--", "true"]));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("another host-shim is running"), "{out}");

    killed.signal("KILL");
    killed.wait(30);
    assert!(base.join("run_0_0").is_dir() && base.join("done_0_1").is_dir());

    // Another server on the same base dir leaves the killed one's dirs.
    let out =
        run(shim(&sandbox, &claude, &config, "state-b").args(["--pane-id", "b_0_0", "--", "true"]));
    assert!(out.status.success(), "{out}");
    assert!(
        base.join("run_0_0").is_dir(),
        "another server removed a dir it does not own"
    );
    assert!(
        base.join("done_0_1").is_dir(),
        "another server removed a dir it does not own"
    );

    // The killed server restored: it keeps its restored pane and removes
    // the one that had closed.
    let out = run(shim(&sandbox, &claude, &config, "state-a")
        .args(["--restore", "--keep-panes", "--", "sh", "-c"])
        .arg(format!(
            "test -d {base}/run_0_0 && echo kept; test -e {base}/done_0_1 || echo orphan-gone",
            base = base.display()
        )));
    assert!(out.status.success(), "{out}");
    assert_eq!(pane_ids(&out.stdout), ["run_0_0"], "{out}");
    assert_eq!(
        pane_lines(&out.stdout, "run_0_0"),
        ["kept", "orphan-gone"],
        "{out}"
    );
    assert!(base.join("run_0_0").is_dir());
    assert!(!base.join("done_0_1").exists());
}
