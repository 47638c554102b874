//! The isolation plugin end to end: host-shim with the root plugins.toml,
//! running the real Claude Code CLI (`CLAUDE_BIN`) in its panes. Offline,
//! `claude -p` answers "Not logged in" but still writes all its state, which
//! is what these tests look at. Every process gets a fake HOME.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ccmux_tests::{
    claude_bin, pane_ids, pane_lines, repo_root, run, strip_ansi, wait_for, Background, Sandbox,
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
    // A user who has run Claude has a Claude dir, and panes link to it. A
    // user without one gets none made until a pane's Claude writes
    // something and the pane closes (see
    // a_first_claude_users_conversation_goes_home_when_its_pane_closes).
    std::fs::create_dir_all(sandbox.home().join(".claude")).expect("the user's Claude dir");
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
fn a_first_claude_users_conversation_goes_home_when_its_pane_closes() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    let config = root_config(&sandbox, Some(0), true);
    std::fs::remove_dir(sandbox.home().join(".claude")).expect("no Claude dir yet");
    let out = run(shim(&sandbox, &claude, &config, "state")
        .args(["--pane-id", "first_0_0", "--", "sh", "-c"])
        .arg("\"$CLAUDE_BIN\" -p hi --session-id \"$CCMUX_CLAUDE_SESSION_ID\" >/dev/null 2>&1; echo \"session=$CCMUX_CLAUDE_SESSION_ID\""));
    assert!(out.status.success(), "{out}");
    let session = pane_lines(&out.stdout, "first_0_0")
        .iter()
        .find_map(|l| l.strip_prefix("session="))
        .map(str::to_string)
        .expect("session id printed");
    assert!(
        transcript_of(&sandbox, &session).is_some(),
        "the conversation did not go home: {:?}",
        files_under(&sandbox.home().join(".claude"))
    );
    // A real dir (made by the handover, or by Claude itself for its
    // memory, which is the user's dir), not a link into a pane.
    assert!(std::fs::symlink_metadata(sandbox.home().join(".claude"))
        .unwrap()
        .is_dir());
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
            "projects": {"/somewhere": {"history": [{"display": "secret-history"}], "allowedTools": ["Bash(ls)"]}},
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
        // The folder's setup, never its history.
        assert_eq!(
            seeded["projects"]["/somewhere"],
            serde_json::json!({"allowedTools": ["Bash(ls)"]})
        );
    }
    // What each pane's Claude rewrites whole stayed in the panes.
    assert!(!user_dir.join(".claude.json").exists());
    assert!(!user_dir.join("backups").exists());
    for id in &ids {
        let backups = base_dir(&sandbox).join(id).join("config/backups");
        assert!(backups.is_dir() && !is_link(&backups), "{id}");
    }
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

/// The real CLI's `-p` run in a pane, with the session id the pane was
/// given: writes a transcript offline (and then says "Not logged in").
const FIRST_TURN: &str =
    "\"$CLAUDE_BIN\" -p first --session-id \"$CCMUX_CLAUDE_SESSION_ID\" >/dev/null 2>&1; echo \"session=$CCMUX_CLAUDE_SESSION_ID\"";

fn session_of(out: &ccmux_tests::Run, pane: &str) -> String {
    pane_lines(&out.stdout, pane)
        .iter()
        .find_map(|l| l.strip_prefix("session="))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no session id printed by {pane}: {out}"))
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn a_conversation_outlives_its_pane_and_resumes_anywhere() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    let config = root_config(&sandbox, Some(0), true);
    let out = run(shim(&sandbox, &claude, &config, "state-a").args([
        "--pane-id",
        "a_0_0",
        "--",
        "sh",
        "-c",
        FIRST_TURN,
    ]));
    assert!(out.status.success(), "{out}");
    let session = session_of(&out, "a_0_0");
    // The pane is closed and its dir removed; the conversation is the user's.
    assert_eq!(pane_dirs(&sandbox), Vec::<String>::new());
    let transcript = transcript_of(&sandbox, &session).expect("transcript in the user's projects/");
    let lines = line_count(&transcript);

    // Resumed by id in a pane of another server (another identity).
    let out = run(shim(&sandbox, &claude, &config, "state-b")
        .args(["--pane-id", "b_0_0", "--", "sh", "-c"])
        .arg(format!(
            "\"$CLAUDE_BIN\" -p again --resume {session} 2>&1 | cat"
        )));
    assert!(out.stdout.contains("Not logged in"), "{out}");
    assert!(!out.stdout.contains("No conversation found"), "{out}");
    let resumed = line_count(&transcript);
    assert!(resumed > lines, "resume appended ({lines} -> {resumed})");

    // Continued (the newest conversation of this folder) in a third server.
    let out = run(shim(&sandbox, &claude, &config, "state-c")
        .args(["--pane-id", "c_0_0", "--", "sh", "-c"])
        .arg("\"$CLAUDE_BIN\" -p more --continue 2>&1 | cat"));
    assert!(out.status.success(), "{out}");
    let continued = line_count(&transcript);
    assert!(
        continued > resumed,
        "--continue appended ({resumed} -> {continued})"
    );
    assert_eq!(transcripts(&sandbox).len(), 1, "no new conversation");

    // And in a plain terminal, without ccmux (same HOME).
    let out = run(sandbox
        .command(&claude)
        .args(["-p", "plain", "--resume", &session]));
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("Not logged in"), "{out}");
    assert!(!text.contains("No conversation found"), "{out}");
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn memory_history_and_ide_locks_are_the_users_in_every_pane() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    sandbox.write(
        "home/.claude/ide/41234.lock",
        r#"{"pid":1,"workspaceFolders":["/w"],"ideName":"Fake IDE","transport":"ws"}"#,
    );
    let config = root_config(&sandbox, Some(0), true);
    // Pane A writes where Claude writes memory and prompt history; the
    // memory root is the one Claude is told to use.
    let out = run(shim(&sandbox, &claude, &config, "state")
        .args(["--pane-id", "a_0_0", "--", "sh", "-c"])
        .arg(
            "cat \"$CLAUDE_CONFIG_DIR/ide/41234.lock\"; echo; \
             m=\"$CLAUDE_CODE_REMOTE_MEMORY_DIR/projects/-repo/memory\"; mkdir -p \"$m\" && echo remembered > \"$m/MEMORY.md\"; \
             echo '{\"display\":\"from pane a\"}' >> \"$CLAUDE_CONFIG_DIR/history.jsonl\"",
        ));
    assert!(out.status.success(), "{out}");
    assert!(
        pane_lines(&out.stdout, "a_0_0")
            .join("\n")
            .contains("Fake IDE"),
        "{out}"
    );
    let user = sandbox.home().join(".claude");
    assert_eq!(
        std::fs::read_to_string(user.join("projects/-repo/memory/MEMORY.md")).unwrap(),
        "remembered\n"
    );
    assert!(std::fs::read_to_string(user.join("history.jsonl"))
        .unwrap()
        .contains("from pane a"));
    // Pane B, after A's dir is gone, sees both through its own config dir;
    // and Claude run there keeps the history link (it appends, never
    // replaces).
    let out = run(shim(&sandbox, &claude, &config, "state")
        .args(["--pane-id", "b_0_0", "--", "sh", "-c"])
        .arg(
            "cat \"$CLAUDE_CONFIG_DIR/projects/-repo/memory/MEMORY.md\" \"$CLAUDE_CONFIG_DIR/history.jsonl\"; \
             \"$CLAUDE_BIN\" -p hi 2>&1 | head -c 300; echo; test -L \"$CLAUDE_CONFIG_DIR/history.jsonl\" && echo still-linked",
        ));
    let text = pane_lines(&out.stdout, "b_0_0").join("\n");
    assert!(text.contains("remembered"), "{out}");
    assert!(text.contains("from pane a"), "{out}");
    // Claude itself ran (offline and without a login it says so), and
    // left the link as it found it.
    assert!(text.contains("Not logged in"), "{out}");
    assert!(text.contains("still-linked"), "{out}");
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn panes_of_the_previous_layout_keep_their_conversations() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    // The previous layout: nothing shared, every pane's projects/ its own.
    let old = sandbox.write(
        "old-plugins.toml",
        &std::fs::read_to_string(root_config(&sandbox, Some(0), true))
            .unwrap()
            .replace(
                "grace_period_ms = 0",
                "grace_period_ms = 0\nshare_data = []\nmove_home = []",
            ),
    );
    let out = run(shim(&sandbox, &claude, &old, "state")
        .args([
            "--pane-id",
            "restored_0_0",
            "--pane-id",
            "orphan_0_1",
            "--keep-panes",
        ])
        .args(["--", "sh", "-c", FIRST_TURN]));
    assert!(out.status.success(), "{out}");
    let restored = session_of(&out, "restored_0_0");
    let orphaned = session_of(&out, "orphan_0_1");
    let base = base_dir(&sandbox);
    assert!(base.join("restored_0_0/config/projects").is_dir());
    assert!(!is_link(&base.join("restored_0_0/config/projects")));
    assert!(transcripts(&sandbox).is_empty());

    // Restored by today's plugin (orphan_0_1 is not restored): the
    // restored pane's transcript is migrated and its projects/ linked; the
    // orphan's dir goes, its transcript kept in the user's dir.
    let config = root_config(&sandbox, Some(0), true);
    let panes_file = sandbox.path().join("state/panes.json");
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&panes_file).unwrap()).unwrap();
    saved["panes"]
        .as_array_mut()
        .unwrap()
        .retain(|pane| pane["pane_id"] != "orphan_0_1");
    std::fs::write(&panes_file, saved.to_string()).unwrap();
    let out = run(shim(&sandbox, &claude, &config, "state")
        .args(["--restore", "--", "sh", "-c"])
        .arg("test -L \"$CLAUDE_CONFIG_DIR/projects\" && echo linked"));
    assert!(out.status.success(), "{out}");
    assert_eq!(pane_lines(&out.stdout, "restored_0_0"), ["linked"], "{out}");
    assert!(transcript_of(&sandbox, &restored).is_some());
    assert!(transcript_of(&sandbox, &orphaned).is_some());
    assert!(!base.join("orphan_0_1").exists());

    // Both resumable elsewhere.
    for session in [&restored, &orphaned] {
        let out = run(shim(&sandbox, &claude, &config, "elsewhere")
            .args(["--pane-id", "e_0_0", "--", "sh", "-c"])
            .arg(format!(
                "\"$CLAUDE_BIN\" -p again --resume {session} 2>&1 | cat"
            )));
        assert!(out.stdout.contains("Not logged in"), "{out}");
        assert!(!out.stdout.contains("No conversation found"), "{out}");
    }
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn concurrent_panes_never_write_the_users_claude_json() {
    use std::os::unix::fs::MetadataExt;
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    let user_json = sandbox.write(
        "home/.claude.json",
        &serde_json::json!({"hasCompletedOnboarding": true, "theme": "dark", "numStartups": 7})
            .to_string(),
    );
    let before = std::fs::read(&user_json).unwrap();
    let inode = std::fs::metadata(&user_json).unwrap().ino();
    let config = root_config(&sandbox, None, true);
    let out = run(shim(&sandbox, &claude, &config, "state")
        .args(["--panes", "4", "--keep-panes", "--", "sh", "-c"])
        .arg("\"$CLAUDE_BIN\" -p hi --session-id \"$CCMUX_CLAUDE_SESSION_ID\" >/dev/null 2>&1; echo \"session=$CCMUX_CLAUDE_SESSION_ID\""));
    assert!(out.status.success(), "{out}");
    let ids = pane_ids(&out.stdout);
    assert_eq!(ids.len(), 4, "{out}");
    assert_eq!(std::fs::read(&user_json).unwrap(), before);
    assert_eq!(std::fs::metadata(&user_json).unwrap().ino(), inode);
    for id in &ids {
        assert_valid_json(&base_dir(&sandbox).join(id).join("config/.claude.json"));
        let session = session_of(&out, id);
        assert!(
            transcript_of(&sandbox, &session).is_some(),
            "{id}: {session}"
        );
    }
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The screen text of an interactive run: terminal control sequences
/// and all whitespace dropped (Claude moves the cursor instead of printing
/// spaces), so phrases are matched without their spaces.
fn screen_text(output: &str) -> String {
    strip_ansi(output)
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect()
}

/// A user who is logged in and onboarded, with `trusted` trusted.
fn onboarded_user(sandbox: &Sandbox, trusted: &Path) {
    sandbox.write(
        "home/.claude/.credentials.json",
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-test","refreshToken":"sk-ant-ort01-test","expiresAt":4102444800000,"scopes":["user:inference","user:profile"],"subscriptionType":"pro"}}"#,
    );
    sandbox.write(
        "home/.claude.json",
        &serde_json::json!({
            "hasCompletedOnboarding": true,
            "lastOnboardingVersion": "2.1.197",
            "theme": "dark",
            "projects": {trusted.to_str().unwrap(): {"hasTrustDialogAccepted": true, "history": []}},
        })
        .to_string(),
    );
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn a_folder_the_user_trusted_is_trusted_in_every_pane() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    let trusted = sandbox.path().join("trusted/repo");
    let untrusted = sandbox.path().join("untrusted");
    std::fs::create_dir_all(&trusted).unwrap();
    std::fs::create_dir_all(&untrusted).unwrap();
    onboarded_user(&sandbox, &sandbox.path().join("trusted"));
    let config = root_config(&sandbox, Some(0), true);
    // Interactive, on a terminal of its own (`script`), for ten seconds
    // (then killed, should it not end on SIGTERM: seen once on a loaded
    // machine).
    let interactive = "script -qfc 'timeout -k 3 10 \"$CLAUDE_BIN\"' /dev/null | tr '\\r' '\\n'";
    let screen = |cwd: &Path, state: &str| {
        let out = run(shim(&sandbox, &claude, &config, state)
            .current_dir(cwd)
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .args(["--pane-id", "t_0_0", "--", "sh", "-c", interactive]));
        (screen_text(&out.stdout), out)
    };
    const QUESTION: &str = "Isthisaprojectyoucreatedoroneyoutrust";

    // A subfolder of a trusted folder: straight to the prompt.
    let (text, out) = screen(&trusted, "state-a");
    assert!(!text.contains(QUESTION), "{out}");
    assert!(text.contains("ClaudeCode") && text.contains('❯'), "{out}");
    // The control: a folder nobody trusted asks.
    let (text, out) = screen(&untrusted, "state-b");
    assert!(text.contains(QUESTION), "{out}");
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn mcp_servers_set_up_in_a_pane_are_the_users_after_it_closes() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    let folder = sandbox.path().join("repo");
    std::fs::create_dir_all(&folder).unwrap();
    let stdio = |command: &str| serde_json::json!({"type": "stdio", "command": command, "args": [], "env": {}});
    let user = serde_json::json!({
        "hasCompletedOnboarding": true,
        "numStartups": 5,
        "mcpServers": {"u1": stdio("/bin/echo"), "gone": stdio("/bin/false")},
        "projects": {folder.to_str().unwrap(): {
            "history": [{"display": "an old prompt"}],
            "mcpServers": {"l1": stdio("/bin/cat")},
            "hasTrustDialogAccepted": true,
        }},
        "cachedGrowthBookFeatures": {"a": 1},
    });
    let user_json = sandbox.write("home/.claude.json", &user.to_string());
    let config = root_config(&sandbox, Some(0), true);
    let pane = |state: &str, script: &str| {
        run(shim(&sandbox, &claude, &config, state)
            .current_dir(&folder)
            .args(["--pane-id", "m_0_0", "--", "sh", "-c", script]))
    };

    // Carried in: the user's user-scope and this folder's local servers.
    let out = pane("state-a", "\"$CLAUDE_BIN\" mcp list 2>&1 | cat");
    let listed = pane_lines(&out.stdout, "m_0_0").join("\n");
    assert!(listed.contains("u1:") && listed.contains("l1:"), "{out}");

    // Set up in pane A, which then closes.
    let out = pane(
        "state-a",
        "\"$CLAUDE_BIN\" mcp add --scope user s1 -- /bin/true && \"$CLAUDE_BIN\" mcp add l2 -- /bin/true \
         && \"$CLAUDE_BIN\" mcp remove gone -s user && echo done",
    );
    assert!(screen_text(&out.stdout).ends_with("done"), "{out}");
    assert_eq!(pane_dirs(&sandbox), Vec::<String>::new());

    let merged = assert_valid_json(&user_json);
    let mut expected = user.clone();
    expected["mcpServers"] =
        serde_json::json!({"u1": stdio("/bin/echo"), "s1": stdio("/bin/true")});
    expected["projects"][folder.to_str().unwrap()]["mcpServers"]["l2"] = stdio("/bin/true");
    // Claude in the pane may add keys of its own (a user id, say) that the
    // user lacked; nothing the user had changed but what the pane set up.
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&merged[key], value, "{key}");
    }

    // A new pane B, of another server, has them.
    let out = pane("state-b", "\"$CLAUDE_BIN\" mcp list 2>&1 | cat");
    let listed = pane_lines(&out.stdout, "m_0_0").join("\n");
    for server in ["u1:", "s1:", "l1:", "l2:"] {
        assert!(listed.contains(server), "{server}: {out}");
    }
    assert!(!listed.contains("gone:"), "{out}");
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn eight_panes_adding_servers_and_closing_at_once_all_land() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    let user_json = sandbox.write(
        "home/.claude.json",
        &serde_json::json!({"hasCompletedOnboarding": true, "numStartups": 3}).to_string(),
    );
    // The default grace period: the panes close together, and their merges
    // run on the plugin's removal thread, one after another, finished by
    // the server's stop.
    let config = root_config(&sandbox, None, true);
    let out = run(shim(&sandbox, &claude, &config, "state")
        .args(["--panes", "8", "--", "sh", "-c"])
        .arg("\"$CLAUDE_BIN\" mcp add --scope user \"s-$CCMUX_PANE_ID\" -- /bin/true >/dev/null 2>&1 && echo added"));
    assert!(out.status.success(), "{out}");
    let ids = pane_ids(&out.stdout);
    assert_eq!(ids.len(), 8, "{out}");
    let merged = assert_valid_json(&user_json);
    for id in &ids {
        assert_eq!(pane_lines(&out.stdout, id), ["added"], "{out}");
        assert!(
            merged["mcpServers"][format!("s-{id}")].is_object(),
            "{id} missing: {merged}"
        );
    }
    assert_eq!(
        merged["numStartups"], 3,
        "Claude's own counters stay the user's"
    );
    assert_eq!(pane_dirs(&sandbox), Vec::<String>::new());
}
