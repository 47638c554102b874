//! What each supported Claude Code release (2.1.197 to 2.1.337, see the
//! README) does in a pane, checked with the real CLI (`CLAUDE_BIN`): every
//! entry it writes in a pane's config dir is one the isolation plugin
//! classifies, the user's `CLAUDE.md` reaches the model once,
//! `CLAUDE_CODE_PROJECT_DIR_NAME` never hides a pane's conversation, and
//! N instances started at once lose nothing. Offline: the model's API is a
//! local server of the test's own that records each request and refuses it.
//! Every process gets a fake HOME; every wait is a bound, never a measure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ccmux_isolation_plugin::classification::class_of;
use ccmux_tests::{claude_bin, pane_ids, pane_lines, repo_root, run, Sandbox};

/// The root plugins.toml with no grace period.
fn root_config(sandbox: &Sandbox) -> PathBuf {
    let text =
        std::fs::read_to_string(repo_root().join("plugins.toml")).expect("root plugins.toml");
    assert!(text.contains("grace_period_ms = 3000"), "{text}");
    sandbox.write(
        "plugins.toml",
        &text.replace("grace_period_ms = 3000", "grace_period_ms = 0"),
    )
}

/// host-shim run with the Claude CLI reachable as `$CLAUDE_BIN`.
fn shim(sandbox: &Sandbox, config: &Path, state: &str) -> std::process::Command {
    let mut cmd = sandbox.host_shim();
    cmd.env("CLAUDE_BIN", claude_bin())
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("CLAUDE_CODE_MAX_RETRIES", "0")
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(sandbox.path().join(state));
    cmd
}

/// A stand-in for the model's API on 127.0.0.1: records the body of every
/// request and answers each with a 400 error, so Claude ends at once.
struct FakeApi {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl FakeApi {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("the bound address")
        );
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&bodies);
        // Ends with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let mut reader = BufReader::new(match stream.try_clone() {
                    Ok(clone) => clone,
                    Err(_) => continue,
                });
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0u8; length.min(64 << 20)];
                if reader.read_exact(&mut body).is_ok() {
                    recorded
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(String::from_utf8_lossy(&body).into_owned());
                }
                let answer = r#"{"type":"error","error":{"type":"invalid_request_error","message":"ccmux test server"}}"#;
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        FakeApi { url, bodies }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The environment that sends a pane's Claude here (an API key, no login).
    fn env(&self, cmd: &mut std::process::Command) {
        cmd.env("ANTHROPIC_BASE_URL", &self.url)
            .env("ANTHROPIC_API_KEY", "sk-ant-api03-ccmux-test");
    }
}

/// An onboarded user who trusts `trusted`, with no login.
fn onboarded_user(sandbox: &Sandbox, trusted: &Path) {
    sandbox.write(
        "home/.claude.json",
        &serde_json::json!({
            "hasCompletedOnboarding": true,
            "lastOnboardingVersion": "2.1.197",
            "numStartups": 5,
            // Claude asks about an API key from the environment unless its
            // last 20 characters were approved.
            "customApiKeyResponses": {"approved": ["ant-api03-ccmux-test"], "rejected": []},
            "projects": {trusted.to_string_lossy(): {"hasTrustDialogAccepted": true}},
        })
        .to_string(),
    );
}

fn json_of(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("{} cannot be read: {err}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not valid JSON: {err}\n{text}", path.display()))
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn every_entry_the_release_writes_is_classified() {
    let sandbox = Sandbox::new();
    let work = sandbox.home().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    onboarded_user(&sandbox, &work);
    let api = FakeApi::start();
    let config = root_config(&sandbox);
    // The sessions the tests run: a prompt (refused by the local API),
    // MCP servers added and listed, the login asked about, an interactive
    // start on a terminal of its own; then what the config dir holds.
    let session = r#"
        "$CLAUDE_BIN" -p hi --session-id "$CCMUX_CLAUDE_SESSION_ID" >/dev/null 2>&1
        "$CLAUDE_BIN" mcp add --scope user u1 -- /bin/true >/dev/null 2>&1
        "$CLAUDE_BIN" mcp add l1 -- /bin/true >/dev/null 2>&1
        "$CLAUDE_BIN" mcp list >/dev/null 2>&1
        "$CLAUDE_BIN" auth status >/dev/null 2>&1
        script -qfc 'timeout -k 3 10 "$CLAUDE_BIN"' /dev/null >/dev/null 2>&1
        for entry in "$CLAUDE_CONFIG_DIR"/* "$CLAUDE_CONFIG_DIR"/.[!.]*; do
            [ -e "$entry" ] || [ -L "$entry" ] && echo "entry=${entry##*/}"
        done
        true"#;
    let mut cmd = shim(&sandbox, &config, "state");
    api.env(&mut cmd);
    let out = run(cmd
        .current_dir(&work)
        .args(["--pane-id", "r_0_0", "--", "sh", "-c", session]));
    assert!(out.status.success(), "{out}");
    let entries: Vec<&str> = pane_lines(&out.stdout, "r_0_0")
        .into_iter()
        .filter_map(|l| l.trim().strip_prefix("entry="))
        .collect();
    assert!(entries.contains(&".claude.json"), "{out}");
    let unknown: Vec<&&str> = entries.iter().filter(|e| class_of(e).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "this Claude release writes entries the isolation plugin does not classify: {unknown:?}; \
         add them to isolation-plugin/src/classification.rs and its README's table\n{out}"
    );
    assert!(
        !out.stderr.contains("which ccmux does not know"),
        "the removal met entries it does not know:\n{}",
        out.stderr
    );
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn the_users_claude_md_reaches_the_model_once_in_a_pane() {
    // Upstream: `~/.claude/CLAUDE.md` loads even under another
    // CLAUDE_CONFIG_DIR. A pane links it in too: it must not load twice.
    const MARKER: &str = "CCMUX-USER-MEMORY-7f3a9c";
    let sandbox = Sandbox::new();
    let work = sandbox.home().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    onboarded_user(&sandbox, &work);
    sandbox.write(
        "home/.claude/CLAUDE.md",
        &format!("Always answer in French. {MARKER}\n"),
    );
    let api = FakeApi::start();
    let config = root_config(&sandbox);
    let mut cmd = shim(&sandbox, &config, "state");
    api.env(&mut cmd);
    let out = run(cmd.current_dir(&work).args([
        "--pane-id",
        "m_0_0",
        "--",
        "sh",
        "-c",
        "test -L \"$CLAUDE_CONFIG_DIR/CLAUDE.md\" && echo linked; \"$CLAUDE_BIN\" -p hi 2>&1 | head -3; true",
    ]));
    assert!(out.status.success(), "{out}");
    assert!(
        pane_lines(&out.stdout, "m_0_0").contains(&"linked"),
        "{out}"
    );
    let bodies = api.bodies();
    let with_memory: Vec<&String> = bodies.iter().filter(|b| b.contains(MARKER)).collect();
    assert!(
        !with_memory.is_empty(),
        "no request carried the user's CLAUDE.md ({} requests)\n{out}",
        bodies.len()
    );
    for body in with_memory {
        assert_eq!(
            body.matches(MARKER).count(),
            1,
            "the user's CLAUDE.md reached the model more than once in one request"
        );
    }
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn a_project_dir_name_in_the_users_environment_never_hides_a_panes_conversation() {
    let sandbox = Sandbox::new();
    let work = sandbox.home().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    onboarded_user(&sandbox, &work);
    let api = FakeApi::start();
    let config = root_config(&sandbox);
    let mut cmd = shim(&sandbox, &config, "state");
    api.env(&mut cmd);
    let out = run(cmd
        .current_dir(&work)
        .env("CLAUDE_CODE_PROJECT_DIR_NAME", "one-folder-for-all")
        .args([
            "--pane-id",
            "p_0_0",
            "--",
            "sh",
            "-c",
            "\"$CLAUDE_BIN\" -p hi --session-id \"$CCMUX_CLAUDE_SESSION_ID\" >/dev/null 2>&1; echo \"session=$CCMUX_CLAUDE_SESSION_ID\"",
        ]));
    assert!(out.status.success(), "{out}");
    let session = pane_lines(&out.stdout, "p_0_0")
        .iter()
        .find_map(|l| l.strip_prefix("session="))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no session id\n{out}"));
    let projects = sandbox.home().join(".claude/projects");
    assert!(
        !projects.join("one-folder-for-all").exists(),
        "the pane's conversation went into the folder CLAUDE_CODE_PROJECT_DIR_NAME names"
    );
    // Where a plain terminal in `work` looks: the folder named after it.
    let found: Vec<PathBuf> = std::fs::read_dir(&projects)
        .map(|dirs| {
            dirs.flatten()
                .map(|d| d.path().join(format!("{session}.jsonl")))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(found.len(), 1, "{found:?}\n{out}");
    let folder = found[0]
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(folder.ends_with("-home-work"), "{folder}");
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn claudes_started_at_once_in_panes_lose_nothing() {
    // The race that corrupts `~/.claude.json` without ccmux: N interactive
    // Claudes started at once on one HOME (each on a terminal of its own,
    // `script` in its pane: right in host-shim's pane PTY Claude draws
    // nothing and never counts a start), each adding
    // an MCP server first. With the plugin every file stays valid and every
    // deliberate change lands. (Without it: BENCHMARKS.md, the race row.)
    const PANES: usize = 4;
    let sandbox = Sandbox::new();
    let work = sandbox.home().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    onboarded_user(&sandbox, &work);
    let copies = sandbox.path().join("pane-files");
    std::fs::create_dir_all(&copies).expect("copies dir");
    let config = root_config(&sandbox);
    let pane = r#"
        "$CLAUDE_BIN" mcp add --scope user "s-$CCMUX_PANE_ID" -- /bin/true >/dev/null 2>&1 && echo added
        script -qfc 'timeout -k 3 10 "$CLAUDE_BIN"' /dev/null >/dev/null 2>&1
        cp "$CLAUDE_CONFIG_DIR/.claude.json" "$COPIES/$CCMUX_PANE_ID.json"
        true"#;
    let mut cmd = shim(&sandbox, &config, "state");
    let out = run(cmd.current_dir(&work).env("COPIES", &copies).args([
        "--panes",
        &PANES.to_string(),
        "--",
        "sh",
        "-c",
        pane,
    ]));
    assert!(out.status.success(), "{out}");
    let ids = pane_ids(&out.stdout);
    assert_eq!(ids.len(), PANES, "{out}");
    let user = json_of(&sandbox.home().join(".claude.json"));
    for id in &ids {
        assert!(
            pane_lines(&out.stdout, id).contains(&"added"),
            "{id}\n{out}"
        );
        let own = json_of(&copies.join(format!("{id}.json")));
        assert!(
            own["mcpServers"][format!("s-{id}")].is_object(),
            "{id}: {own}"
        );
        // The interactive Claude really started (the seed has no counter).
        assert!(
            own["numStartups"].as_u64().is_some_and(|n| n >= 1),
            "{id}: {own}"
        );
        assert!(
            user["mcpServers"][format!("s-{id}")].is_object(),
            "{id}'s server did not reach the user's file: {user}"
        );
    }
    // Claude's own counter is the user's, untouched by the panes.
    assert_eq!(user["numStartups"], 5, "{user}");
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn a_background_agent_started_in_a_pane_keeps_its_conversation_in_the_users_dir() {
    // `claude --bg` works offline (both releases): a daemon per config dir
    // runs the session. Its conversation and prompt go to the shared
    // `projects/` and `history.jsonl`; the daemon's own state (`daemon*`,
    // `jobs/`) is the pane's. The pane stops the daemon before it ends.
    let sandbox = Sandbox::new();
    let work = sandbox.home().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    onboarded_user(&sandbox, &work);
    let api = FakeApi::start();
    let config = root_config(&sandbox);
    let pane = r#"
        # The stop is graceful and returns at once; a daemon (or a worker
        # of it) still running when the pane closes would write into the
        # pane's removed dir, so the pane waits until no process started
        # from its `--bg` is left (they carry a mark in their environment;
        # bounded).
        mark="CCMUX_TEST_DAEMON=bg$$"
        stop_daemon() {
            "$CLAUDE_BIN" daemon stop --any >/dev/null 2>&1
            for _ in $(seq 1 600); do
                grep -qszx "$mark" /proc/[0-9]*/environ || return 0
                sleep 0.1
            done
        }
        trap stop_daemon EXIT
        env "$mark" "$CLAUDE_BIN" --bg "ccmux background hello" </dev/null >/dev/null 2>&1
        list=$("$CLAUDE_BIN" agents --json --all </dev/null 2>/dev/null | tr -d ' \n')
        echo "$list"
        sid=$(echo "$list" | grep -o '"sessionId":"[^"]*"' | head -n 1 | cut -d '"' -f 4)
        # The session writes its transcript once it has started (bounded:
        # two minutes, for a machine busy with other builds).
        for _ in $(seq 1 240); do
            ls "$CLAUDE_CONFIG_DIR"/projects/*/"$sid".jsonl >/dev/null 2>&1 && break
            sleep 0.5
        done
        [ -e "$CLAUDE_CONFIG_DIR/jobs" ] && echo own-jobs"#;
    let mut cmd = shim(&sandbox, &config, "state");
    api.env(&mut cmd);
    let out = run(cmd
        .current_dir(&work)
        .args(["--pane-id", "bg_0_0", "--", "sh", "-c", pane]));
    assert!(out.status.success(), "{out}");
    let lines = pane_lines(&out.stdout, "bg_0_0");
    let listed = lines
        .iter()
        .find(|l| l.starts_with('['))
        .unwrap_or_else(|| panic!("`claude agents --json` printed no list\n{out}"));
    let agents: serde_json::Value = serde_json::from_str(listed)
        .unwrap_or_else(|err| panic!("not JSON: {err}: {listed}\n{out}"));
    let session = agents[0]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no background session listed: {agents}\n{out}"));
    assert!(lines.contains(&"own-jobs"), "{out}");
    // The pane's dir is gone; the conversation and the prompt are the user's.
    let user = sandbox.home().join(".claude");
    let transcripts: Vec<PathBuf> = std::fs::read_dir(user.join("projects"))
        .map(|dirs| {
            dirs.flatten()
                .map(|d| d.path().join(format!("{session}.jsonl")))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        transcripts.len(),
        1,
        "no transcript of {session} in the user's projects/\n{out}"
    );
    let history = std::fs::read_to_string(user.join("history.jsonl")).unwrap_or_default();
    assert!(history.contains("ccmux background hello"), "{history}");
    assert!(
        !sandbox.home().join(".ccmux/claude/bg_0_0").exists(),
        "{out}"
    );
    assert!(
        !user.join("jobs").exists(),
        "the pane's jobs/ went home: {out}"
    );
}
