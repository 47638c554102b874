//! Profiles (issue 20) end to end, with the real Claude Code CLI
//! (`CLAUDE_BIN`): one fake HOME with three accounts, `default` (`~/.claude`
//! and `~/.claude.json`), `work` (`~/.claude-work`) and `personal`
//! (`~/.claude-personal`), the named two as `CLAUDE_CONFIG_DIR=DIR claude`
//! uses them (`.claude.json` inside DIR). A pane chooses its profile with
//! host-shim's `--profile NAME` (which sets `CCMUX_PROFILE` in its
//! environment); the unknown-name test also names it by `ID@NAME` and by
//! an inherited `CCMUX_PROFILE`.
//!
//! Offline facts these tests stand on (both supported releases):
//! - a fake login (`.credentials.json` in the dir Claude reads it from,
//!   `oauthAccount` in the `.claude.json` of its config dir) makes
//!   `claude auth status` report that account, without the network;
//! - with credentials, `claude -p` tries the network and hangs offline, so
//!   the conversation tests run in profiles without any: `-p` then writes
//!   its transcript and says "Not logged in", and `--resume` of an id it
//!   cannot find says "No conversation found" instead;
//! - `claude auth logout` works offline: it deletes `.credentials.json`
//!   from the dir Claude keeps the login in, the same file a login writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ccmux_tests::{claude_bin, pane_lines, repo_root, run, Run, Sandbox};

const WORK: &str = "work";
const PERSONAL: &str = "personal";
const DEFAULT: &str = "default";

/// The root plugins.toml with `grace_period_ms = 0` (a closed pane's dir
/// is handed over and removed before host-shim exits, so what it carried
/// back is there to look at) and the two named profiles, written with `~`
/// as a user would.
fn profiles_config(sandbox: &Sandbox) -> PathBuf {
    let text =
        std::fs::read_to_string(repo_root().join("plugins.toml")).expect("root plugins.toml");
    assert!(text.contains("grace_period_ms = 3000"));
    let mut text = text.replace("grace_period_ms = 3000", "grace_period_ms = 0");
    // The last table of the file, so appending keeps every key where it was.
    text.push_str(
        "\n[plugins.config.profiles]\nwork = \"~/.claude-work\"\npersonal = \"~/.claude-personal\"\n",
    );
    // Every account has been used before: its Claude dir is there.
    for profile in [DEFAULT, WORK, PERSONAL] {
        std::fs::create_dir_all(profile_dir(sandbox, profile)).expect("the profile's Claude dir");
    }
    sandbox.write("plugins.toml", &text)
}

/// The account's Claude dir: what `CLAUDE_CONFIG_DIR` names for it in a
/// plain terminal (`~/.claude` for `default`, which needs none).
fn profile_dir(sandbox: &Sandbox, profile: &str) -> PathBuf {
    match profile {
        DEFAULT => sandbox.home().join(".claude"),
        name => sandbox.home().join(format!(".claude-{name}")),
    }
}

/// The account's `.claude.json`: inside its dir for a named profile, next
/// to `~/.claude` for `default`.
fn profile_claude_json(sandbox: &Sandbox, profile: &str) -> PathBuf {
    match profile {
        DEFAULT => sandbox.home().join(".claude.json"),
        _ => profile_dir(sandbox, profile).join(".claude.json"),
    }
}

fn base_dir(sandbox: &Sandbox) -> PathBuf {
    sandbox.home().join(".ccmux/claude")
}

/// A command with the sandbox's environment and none of the variables that
/// would give Claude a login other than the files under test.
fn hermetic(sandbox: &Sandbox, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = sandbox.command(program);
    cmd.env_remove("CLAUDE_CODE_OAUTH_TOKEN")
        .env_remove("ANTHROPIC_AUTH_TOKEN");
    cmd
}

/// `host-shim run` with its own state dir (its own server identity) and
/// its panes in `profile` (`None`: `CCMUX_PROFILE` unset, so `default`).
fn host_shim_run(sandbox: &Sandbox, config: &Path, state: &str, profile: Option<&str>) -> Command {
    let mut cmd = hermetic(sandbox, &ccmux_tests::artifacts().host_shim);
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(sandbox.path().join(state));
    if let Some(profile) = profile {
        cmd.args(["--profile", profile]);
    }
    cmd
}

/// [`host_shim_run`] with the CLI reachable in its panes as `$CLAUDE_BIN`.
fn shim(sandbox: &Sandbox, config: &Path, state: &str, profile: Option<&str>) -> Command {
    let mut cmd = host_shim_run(sandbox, config, state, profile);
    cmd.env("CLAUDE_BIN", claude_bin());
    cmd
}

/// The CLI in a plain terminal of `profile`, without ccmux: with
/// `CLAUDE_CONFIG_DIR` set to a named profile's dir, unset for `default`.
fn plain_claude(sandbox: &Sandbox, profile: &str) -> Command {
    let mut cmd = hermetic(sandbox, claude_bin());
    if profile != DEFAULT {
        cmd.env("CLAUDE_CONFIG_DIR", profile_dir(sandbox, profile));
    }
    cmd
}

/// Runs `commands` at once, one thread each; their outputs in order.
fn run_together(commands: Vec<Command>) -> Vec<Run> {
    std::thread::scope(|scope| {
        let running: Vec<_> = commands
            .into_iter()
            .map(|cmd| scope.spawn(move || run(cmd)))
            .collect();
        running
            .into_iter()
            .map(|thread| thread.join().expect("command thread"))
            .collect()
    })
}

/// A Claude account as a login leaves it on disk.
struct Account {
    email: &'static str,
    org_name: &'static str,
    org_id: &'static str,
    account_id: &'static str,
    subscription: &'static str,
}

const WORK_ACCOUNT: Account = Account {
    email: "me@work.example",
    org_name: "Work Org",
    org_id: "6f1d3a52-0a8e-4c61-9d1b-2c3e4f5a6b7c",
    account_id: "0c7e3a1d-5b2f-4e8a-9c6d-1f2e3d4c5b6a",
    subscription: "max",
};

const PERSONAL_ACCOUNT: Account = Account {
    email: "me@personal.example",
    org_name: "Personal Org",
    org_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    account_id: "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    subscription: "pro",
};

const DEFAULT_ACCOUNT: Account = Account {
    email: "me@home.example",
    org_name: "Home Org",
    org_id: "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
    account_id: "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
    subscription: "pro",
};

impl Account {
    /// `.credentials.json` as Claude writes it on Linux: a token that
    /// expires in 2100, so no refresh (which needs the network) is tried.
    fn credentials(&self) -> String {
        serde_json::json!({"claudeAiOauth": {
            "accessToken": format!("sk-ant-oat01-{}", self.account_id),
            "refreshToken": format!("sk-ant-ort01-{}", self.account_id),
            "expiresAt": 4_102_444_800_000_u64,
            "scopes": ["user:inference", "user:profile"],
            "subscriptionType": self.subscription,
        }})
        .to_string()
    }

    /// The `oauthAccount` a login records in the config's `.claude.json`.
    fn oauth_account(&self) -> serde_json::Value {
        serde_json::json!({
            "accountUuid": self.account_id,
            "emailAddress": self.email,
            "organizationUuid": self.org_id,
            "organizationName": self.org_name,
            "organizationRole": "admin",
        })
    }

    /// What a login leaves: the credentials in `login_dir`, the account in
    /// `claude_json` (kept with what else it holds).
    fn log_in(&self, login_dir: &Path, claude_json: &Path) {
        std::fs::write(login_dir.join(".credentials.json"), self.credentials())
            .expect("write the credentials");
        let mut config = read_json(claude_json).unwrap_or_else(|| serde_json::json!({}));
        config["hasCompletedOnboarding"] = true.into();
        config["oauthAccount"] = self.oauth_account();
        std::fs::write(claude_json, config.to_string()).expect("write .claude.json");
    }

    /// Logs `profile` of the sandbox in as this account.
    fn log_in_profile(&self, sandbox: &Sandbox, profile: &str) {
        self.log_in(
            &profile_dir(sandbox, profile),
            &profile_claude_json(sandbox, profile),
        );
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display())),
    )
}

/// Prints the pane's Claude dirs and profile, one `key=value` line each.
const PRINT_PANE_ENV: &str = "echo \"config=$CLAUDE_CONFIG_DIR\"; echo \"profile=$CCMUX_PROFILE\"; \
     echo \"login-dir=${CLAUDE_SECURESTORAGE_CONFIG_DIR-unset}\"; echo \"session=$CCMUX_CLAUDE_SESSION_ID\"";

/// `claude auth status` (JSON) between two marker lines, so it can be
/// picked out of the pane's output.
const AUTH_STATUS: &str =
    "echo auth-begin; \"$CLAUDE_BIN\" auth status 2>/dev/null | cat; echo auth-end";

/// The value of the pane's `key=value` line.
fn pane_value(out: &Run, pane: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    pane_lines(&out.stdout, pane)
        .iter()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{pane} printed no {key}=: {out}"))
}

/// Each `auth status` a pane printed (between `auth-begin` and
/// `auth-end`), parsed.
fn pane_auth_statuses(out: &Run, pane: &str) -> Vec<serde_json::Value> {
    let mut found = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in pane_lines(&out.stdout, pane) {
        match (line.trim(), current.as_mut()) {
            ("auth-begin", _) => current = Some(Vec::new()),
            ("auth-end", Some(lines)) => {
                let text = lines.join("\n");
                found.push(serde_json::from_str(&text).unwrap_or_else(|e| {
                    panic!("{pane}: auth status is not JSON ({e}): {text}\n{out}")
                }));
                current = None;
            }
            (_, Some(lines)) => lines.push(line),
            (_, None) => {}
        }
    }
    found
}

/// The one `auth status` the pane printed.
fn pane_auth_status(out: &Run, pane: &str) -> serde_json::Value {
    let mut statuses = pane_auth_statuses(out, pane);
    assert_eq!(statuses.len(), 1, "{pane}: {out}");
    statuses.remove(0)
}

/// `auth status` without what names the config dir itself (2.1.337 and
/// later print `configDirectory` and `projectsDirectory`): in a pane that is
/// the pane's own dir, in a plain terminal the profile's. Everything else
/// is the account.
fn account_of(status: &serde_json::Value) -> serde_json::Value {
    let mut account = status.clone();
    if let Some(fields) = account.as_object_mut() {
        fields.remove("configDirectory");
        fields.remove("projectsDirectory");
    }
    account
}

fn assert_account(status: &serde_json::Value, account: &Account, what: &str) {
    assert_eq!(status["loggedIn"], true, "{what}: {status:#}");
    assert_eq!(status["email"], account.email, "{what}: {status:#}");
    assert_eq!(status["orgName"], account.org_name, "{what}: {status:#}");
    assert_eq!(status["orgId"], account.org_id, "{what}: {status:#}");
    assert_eq!(
        status["subscriptionType"], account.subscription,
        "{what}: {status:#}"
    );
}

/// Makes every pane that runs it wait, up to a minute, until `count` panes
/// have reached the same point (each touches a file named by its id in
/// `dir`): so they are all open at once. Prints `met-DIRNAME` if they were.
fn meet(dir: &Path, count: usize) -> String {
    format!(
        "d={dir}; mkdir -p \"$d\"; touch \"$d/$CCMUX_PANE_ID\"; n=0; \
         until [ \"$(ls \"$d\" | wc -l)\" -ge {count} ]; do n=$((n+1)); [ $n -gt 1200 ] && break; sleep 0.05; done; \
         [ \"$(ls \"$d\" | wc -l)\" -ge {count} ] && echo \"met-$(basename \"$d\")\"",
        dir = dir.display()
    )
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn panes_of_each_profile_open_side_by_side_show_their_own_account() {
    let sandbox = Sandbox::new();
    let config = profiles_config(&sandbox);
    let accounts = [
        (WORK, &WORK_ACCOUNT),
        (PERSONAL, &PERSONAL_ACCOUNT),
        (DEFAULT, &DEFAULT_ACCOUNT),
    ];
    for (profile, account) in accounts {
        account.log_in_profile(&sandbox, profile);
    }
    // Three servers on the same base dir, one per profile, their panes open
    // at once: every pane runs `auth status` after all three are open and
    // closes only after all three have run it.
    let script = format!(
        "{PRINT_PANE_ENV}; {}; {AUTH_STATUS}; {}",
        meet(&sandbox.path().join("all-open"), accounts.len()),
        meet(&sandbox.path().join("all-asked"), accounts.len()),
    );
    let in_panes = run_together(
        accounts
            .iter()
            .map(|(profile, _)| {
                let mut cmd = shim(
                    &sandbox,
                    &config,
                    &format!("state-{profile}"),
                    Some(profile).filter(|p| **p != DEFAULT).copied(),
                );
                cmd.args(["--pane-id", &format!("{profile}_1"), "--", "sh", "-c"])
                    .arg(&script);
                cmd
            })
            .collect(),
    );
    // The same, in a plain terminal of each profile.
    let in_plain_terminals = run_together(
        accounts
            .iter()
            .map(|(profile, _)| {
                let mut cmd = plain_claude(&sandbox, profile);
                cmd.args(["auth", "status"]);
                cmd
            })
            .collect(),
    );

    for (((profile, account), out), plain) in
        accounts.iter().zip(&in_panes).zip(&in_plain_terminals)
    {
        let pane = format!("{profile}_1");
        assert!(out.status.success(), "{out}");
        let lines = pane_lines(&out.stdout, &pane);
        assert!(
            lines.contains(&"met-all-open") && lines.contains(&"met-all-asked"),
            "{pane} was not open beside the others: {out}"
        );
        assert_eq!(pane_value(out, &pane, "profile"), *profile, "{out}");
        // Isolated: the pane's Claude dir is its own, not the profile's.
        let config_dir = base_dir(&sandbox).join(&pane).join("config");
        assert_eq!(
            pane_value(out, &pane, "config"),
            config_dir.to_str().unwrap()
        );
        let status = pane_auth_status(out, &pane);
        assert_account(&status, account, &pane);
        if let Some(dir) = status.get("configDirectory") {
            assert_eq!(dir, config_dir.to_str().unwrap(), "{pane}: {status:#}");
        }

        assert!(
            plain.status.success(),
            "{profile} in a plain terminal: {plain}"
        );
        let plain_status: serde_json::Value = serde_json::from_str(&plain.stdout)
            .unwrap_or_else(|e| panic!("{profile}: auth status is not JSON ({e}): {plain}"));
        assert_account(&plain_status, account, &format!("plain {profile}"));
        // Everything `auth status` says of the account is what the plain
        // terminal of that profile says.
        assert_eq!(
            account_of(&status),
            account_of(&plain_status),
            "{pane} against a plain terminal of {profile}"
        );
    }
}

/// Every file under `dir`, recursively, not following links.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(path),
                Ok(_) => found.push(path),
                Err(_) => {}
            }
        }
    }
    found.sort();
    found
}

/// The transcripts of `session` in `profile`'s own `projects/`.
fn transcripts_of(sandbox: &Sandbox, profile: &str, session: &str) -> Vec<PathBuf> {
    files_under(&profile_dir(sandbox, profile).join("projects"))
        .into_iter()
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_str() == Some(&format!("{session}.jsonl")))
        })
        .collect()
}

fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

/// A first turn of a conversation with the pane's session id: offline and
/// without a login, `-p` writes the transcript and says "Not logged in".
const FIRST_TURN: &str =
    "\"$CLAUDE_BIN\" -p first --session-id \"$CCMUX_CLAUDE_SESSION_ID\" >/dev/null 2>&1; echo \"session=$CCMUX_CLAUDE_SESSION_ID\"";

/// `--resume` of `session`, its output (both streams) in the pane's.
fn resume(session: &str) -> String {
    format!("\"$CLAUDE_BIN\" -p again --resume {session} 2>&1 | cat")
}

/// Claude found the conversation (and then needed a login to go on).
fn assert_found(text: &str, what: &str) {
    assert!(text.contains("Not logged in"), "{what}: {text}");
    assert!(!text.contains("No conversation found"), "{what}: {text}");
}

/// Claude looked for the conversation and said it is not there.
fn assert_not_found(text: &str, what: &str) {
    assert!(text.contains("No conversation found"), "{what}: {text}");
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn a_conversation_stays_in_its_profile() {
    // No profile is logged in: `-p` would try the network with a login.
    let sandbox = Sandbox::new();
    let config = profiles_config(&sandbox);
    let out = run(shim(&sandbox, &config, "state-a", Some(WORK)).args([
        "--pane-id",
        "made_1",
        "--",
        "sh",
        "-c",
        FIRST_TURN,
    ]));
    assert!(out.status.success(), "{out}");
    let session = pane_value(&out, "made_1", "session");
    let made = transcripts_of(&sandbox, WORK, &session);
    assert_eq!(made.len(), 1, "one transcript in work's projects/: {out}");
    for other in [PERSONAL, DEFAULT] {
        assert_eq!(
            transcripts_of(&sandbox, other, &session),
            Vec::<PathBuf>::new(),
            "{other}"
        );
    }
    let lines = line_count(&made[0]);

    // Another work pane finds it; panes of the other profiles do not. Each
    // a server of its own, all at once.
    let panes = [
        ("again_1", Some(WORK)),
        ("other_1", Some(PERSONAL)),
        ("home_1", None),
    ];
    let outs = run_together(
        panes
            .iter()
            .map(|(pane, profile)| {
                let mut cmd = shim(&sandbox, &config, &format!("state-{pane}"), *profile);
                cmd.args(["--pane-id", pane, "--", "sh", "-c", &resume(&session)]);
                cmd
            })
            .collect(),
    );
    let text = |i: usize| pane_lines(&outs[i].stdout, panes[i].0).join("\n");
    assert_found(&text(0), "another work pane");
    assert_not_found(&text(1), "a personal pane");
    assert_not_found(&text(2), "a default pane");
    let resumed = line_count(&made[0]);
    assert!(
        resumed > lines,
        "the work pane's resume appended ({lines} -> {resumed})"
    );

    // And a plain terminal of the work account, without ccmux, finds it;
    // one of the default account does not.
    let outs = run_together(
        [WORK, DEFAULT]
            .iter()
            .map(|profile| {
                let mut cmd = plain_claude(&sandbox, profile);
                cmd.args(["-p", "plain", "--resume", &session]);
                cmd
            })
            .collect(),
    );
    let text = |i: usize| format!("{}{}", outs[i].stdout, outs[i].stderr);
    assert_found(&text(0), "CLAUDE_CONFIG_DIR=~/.claude-work claude");
    assert_not_found(&text(1), "claude (default)");
    assert!(line_count(&made[0]) > resumed, "the plain resume appended");
    assert_eq!(transcripts_of(&sandbox, WORK, &session), made);
}

/// A stdio MCP server entry as `claude mcp add` writes it.
fn stdio(command: &str) -> serde_json::Value {
    serde_json::json!({"type": "stdio", "command": command, "args": [], "env": {}})
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn mcp_servers_added_in_a_pane_land_in_its_profile_only() {
    let sandbox = Sandbox::new();
    let config = profiles_config(&sandbox);
    let folder = sandbox.path().join("repo");
    std::fs::create_dir_all(&folder).unwrap();
    // Each account has a server of its own.
    let mut before = BTreeMap::new();
    for profile in [WORK, PERSONAL, DEFAULT] {
        let file = profile_claude_json(&sandbox, profile);
        let text = serde_json::json!({
            "hasCompletedOnboarding": true,
            "numStartups": 2,
            "mcpServers": {format!("{profile}-server"): stdio("/bin/echo")},
        })
        .to_string();
        std::fs::write(&file, &text).unwrap();
        before.insert(profile, text.into_bytes());
    }

    let out = run(shim(&sandbox, &config, "state-a", Some(WORK))
        .current_dir(&folder)
        .args(["--pane-id", "adds_1", "--", "sh", "-c"])
        .arg(
            "\"$CLAUDE_BIN\" mcp add --scope user added-user -- /bin/true >/dev/null 2>&1 \
             && \"$CLAUDE_BIN\" mcp add added-local -- /bin/true >/dev/null 2>&1 && echo added",
        ));
    assert!(out.status.success(), "{out}");
    assert_eq!(pane_lines(&out.stdout, "adds_1"), ["added"], "{out}");
    // Closed and carried back (grace period 0): its dir is gone.
    assert!(!base_dir(&sandbox).join("adds_1").exists());

    let work = read_json(&profile_claude_json(&sandbox, WORK)).expect("work's .claude.json");
    assert_eq!(
        work["mcpServers"],
        serde_json::json!({"work-server": stdio("/bin/echo"), "added-user": stdio("/bin/true")}),
        "{work:#}"
    );
    assert_eq!(
        work["projects"][folder.to_str().unwrap()]["mcpServers"],
        serde_json::json!({"added-local": stdio("/bin/true")}),
        "{work:#}"
    );
    for profile in [PERSONAL, DEFAULT] {
        assert_eq!(
            std::fs::read(profile_claude_json(&sandbox, profile)).unwrap(),
            before[profile],
            "{profile}'s .claude.json changed"
        );
    }
    // Default's `.claude.json` is the one beside `~/.claude`: none was
    // made inside it.
    assert!(!profile_dir(&sandbox, DEFAULT).join(".claude.json").exists());

    // New panes see their own account's servers: work's both, personal's
    // neither.
    let outs = run_together(
        [WORK, PERSONAL]
            .iter()
            .map(|profile| {
                let mut cmd = shim(
                    &sandbox,
                    &config,
                    &format!("state-{profile}"),
                    Some(profile),
                );
                cmd.current_dir(&folder)
                    .args(["--pane-id", &format!("lists_{profile}"), "--", "sh", "-c"])
                    .arg("\"$CLAUDE_BIN\" mcp list 2>&1 | cat");
                cmd
            })
            .collect(),
    );
    let listed = |i: usize, pane: &str| pane_lines(&outs[i].stdout, pane).join("\n");
    let work_list = listed(0, "lists_work");
    for server in ["work-server:", "added-user:", "added-local:"] {
        assert!(work_list.contains(server), "{server}: {}", outs[0]);
    }
    let personal_list = listed(1, "lists_personal");
    assert!(personal_list.contains("personal-server:"), "{}", outs[1]);
    for server in ["work-server:", "added-user:", "added-local:"] {
        assert!(!personal_list.contains(server), "{server}: {}", outs[1]);
    }
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn a_restore_in_another_profile_is_refused_and_loses_nothing() {
    let sandbox = Sandbox::new();
    let config = profiles_config(&sandbox);
    let pane_dir = base_dir(&sandbox).join("kept_1");
    let panes_file = sandbox.path().join("state/panes.json");
    let out = run(shim(&sandbox, &config, "state", Some(WORK)).args([
        "--pane-id",
        "kept_1",
        "--keep-panes",
        "--",
        "sh",
        "-c",
        FIRST_TURN,
    ]));
    assert!(out.status.success(), "{out}");
    let session = pane_value(&out, "kept_1", "session");
    let transcript = transcripts_of(&sandbox, WORK, &session);
    assert_eq!(transcript.len(), 1, "{out}");
    let lines = line_count(&transcript[0]);
    let metadata = || read_json(&pane_dir.join(".pane-metadata")).expect("the pane's metadata");
    assert_eq!(metadata()["profile"], WORK);
    // What the pane holds, file by file (its metadata is the plugin's to
    // rewrite when it takes the pane back, and is looked at by key).
    let contents = || -> BTreeMap<PathBuf, Vec<u8>> {
        files_under(&pane_dir)
            .into_iter()
            .filter(|path| !path.ends_with(".pane-metadata"))
            .map(|path| {
                let bytes = std::fs::read(&path).unwrap_or_default();
                (path, bytes)
            })
            .collect()
    };
    let held = contents();
    assert!(
        held.contains_key(&pane_dir.join("config/.claude.json")),
        "{held:?}"
    );
    let saved = std::fs::read(&panes_file).expect("the pane is saved");

    let refused = run(shim(&sandbox, &config, "state", Some(PERSONAL)).args([
        "--restore",
        "--keep-panes",
        "--",
        "sh",
        "-c",
        "echo started",
    ]));
    // Refused before anything runs: a bad argument.
    assert_eq!(refused.status.code(), Some(2), "{refused}");
    assert!(
        !refused.stdout.contains("[kept_1] started"),
        "the pane ran: {refused}"
    );
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(
        said.contains("kept_1") && said.contains("in profile \"work\""),
        "the refusal names the pane's profile: {refused}"
    );
    // Nothing lost: the pane's dir as it was, still in work, still saved,
    // its conversation where it was.
    assert_eq!(contents(), held, "{refused}");
    assert_eq!(metadata()["profile"], WORK);
    assert_eq!(metadata()["claude_session_id"], session.as_str());
    assert!(String::from_utf8_lossy(&std::fs::read(&panes_file).unwrap()).contains("kept_1"));
    assert_eq!(
        std::fs::read(&panes_file).unwrap(),
        saved,
        "panes.json changed"
    );
    assert_eq!(line_count(&transcript[0]), lines);

    // Restored without a profile named, it comes back in work, with its
    // conversation.
    let out = run(shim(&sandbox, &config, "state", None)
        .args(["--restore", "--keep-panes", "--", "sh", "-c"])
        .arg(format!(
            "{PRINT_PANE_ENV}; {}",
            resume("$CCMUX_CLAUDE_SESSION_ID")
        )));
    assert!(out.status.success(), "{out}");
    assert_eq!(pane_value(&out, "kept_1", "profile"), WORK, "{out}");
    assert_eq!(pane_value(&out, "kept_1", "session"), session, "{out}");
    assert_eq!(
        pane_value(&out, "kept_1", "login-dir"),
        profile_dir(&sandbox, WORK).to_str().unwrap()
    );
    assert_found(
        &pane_lines(&out.stdout, "kept_1").join("\n"),
        "the restored pane",
    );
    assert!(line_count(&transcript[0]) > lines);

    // And naming work, it comes back too; then it closes for good.
    let out = run(shim(&sandbox, &config, "state", Some(WORK)).args([
        "--restore",
        "--",
        "sh",
        "-c",
        "echo \"profile=$CCMUX_PROFILE\"",
    ]));
    assert!(out.status.success(), "{out}");
    assert_eq!(pane_lines(&out.stdout, "kept_1"), ["profile=work"], "{out}");
    assert!(!pane_dir.exists());
    assert_eq!(transcripts_of(&sandbox, WORK, &session), transcript);
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn a_login_lands_in_its_profile_for_every_later_pane_of_it() {
    // What this shows, and what it does not: a login needs the network
    // (the OAuth endpoints are fixed in the CLI), so Claude's `/login` is
    // not run. It shows that a pane of a profile without credentials points
    // Claude's credential store (CLAUDE_SECURESTORAGE_CONFIG_DIR, which
    // Claude reads and writes `.credentials.json` in) at that profile's
    // dir; that what a login writes there and into the pane's
    // `.claude.json` (the account) reaches every later pane of the profile
    // and no pane of another; and, with Claude itself writing, that
    // `auth logout` in a pane removes that profile's credentials file and
    // no other profile's.
    let sandbox = Sandbox::new();
    let config = profiles_config(&sandbox);
    WORK_ACCOUNT.log_in_profile(&sandbox, WORK);
    let personal_dir = profile_dir(&sandbox, PERSONAL);
    std::fs::write(
        profile_claude_json(&sandbox, PERSONAL),
        r#"{"hasCompletedOnboarding":true}"#,
    )
    .unwrap();

    // A personal pane, not logged in, kept open (saved) for its login.
    let out = run(shim(&sandbox, &config, "state", Some(PERSONAL))
        .args(["--pane-id", "login_1", "--keep-panes", "--", "sh", "-c"])
        .arg(format!("{PRINT_PANE_ENV}; {AUTH_STATUS}")));
    assert!(out.status.success(), "{out}");
    let status = pane_auth_status(&out, "login_1");
    assert_eq!(status["loggedIn"], false, "{status:#}");
    let login_dir = PathBuf::from(pane_value(&out, "login_1", "login-dir"));
    assert_eq!(login_dir, personal_dir, "{out}");
    let pane_config = PathBuf::from(pane_value(&out, "login_1", "config"));

    // What `/login` in that pane writes: the credentials into the store,
    // the account into the pane's `.claude.json`.
    PERSONAL_ACCOUNT.log_in(&login_dir, &pane_config.join(".claude.json"));
    // The pane closes; its `.claude.json` changes go to personal's.
    let out =
        run(shim(&sandbox, &config, "state", Some(PERSONAL)).args(["--restore", "--", "true"]));
    assert!(out.status.success(), "{out}");
    let personal = read_json(&profile_claude_json(&sandbox, PERSONAL)).unwrap();
    assert_eq!(
        personal["oauthAccount"],
        PERSONAL_ACCOUNT.oauth_account(),
        "the account was carried back: {personal:#}"
    );

    // Every later personal pane is logged in as personal, while a work pane
    // beside it is still work.
    let script = format!("{AUTH_STATUS}; {}", meet(&sandbox.path().join("both"), 2));
    let outs = run_together(
        [PERSONAL, WORK]
            .iter()
            .map(|profile| {
                let mut cmd = shim(
                    &sandbox,
                    &config,
                    &format!("state-{profile}"),
                    Some(profile),
                );
                cmd.args([
                    "--pane-id",
                    &format!("{profile}_1"),
                    "--",
                    "sh",
                    "-c",
                    &script,
                ]);
                cmd
            })
            .collect(),
    );
    assert_account(
        &pane_auth_status(&outs[0], "personal_1"),
        &PERSONAL_ACCOUNT,
        "a later personal pane",
    );
    assert_account(
        &pane_auth_status(&outs[1], "work_1"),
        &WORK_ACCOUNT,
        "a work pane beside it",
    );

    // Claude's own write to the store: `auth logout` in a personal pane
    // deletes personal's credentials, and work's stay as they were.
    let work_credentials = profile_dir(&sandbox, WORK).join(".credentials.json");
    let work_before = std::fs::read(&work_credentials).unwrap();
    let out = run(shim(&sandbox, &config, "state", Some(PERSONAL))
        .args(["--pane-id", "logout_1", "--", "sh", "-c"])
        .arg(format!(
            "\"$CLAUDE_BIN\" auth logout >/dev/null 2>&1; {AUTH_STATUS}"
        )));
    assert!(out.status.success(), "{out}");
    assert_eq!(
        pane_auth_status(&out, "logout_1")["loggedIn"],
        false,
        "{out}"
    );
    assert!(!personal_dir.join(".credentials.json").exists());
    assert_eq!(std::fs::read(&work_credentials).unwrap(), work_before);
    let out = run(shim(&sandbox, &config, "state-work", Some(WORK)).args([
        "--pane-id",
        "work_2",
        "--",
        "sh",
        "-c",
        AUTH_STATUS,
    ]));
    assert_account(
        &pane_auth_status(&out, "work_2"),
        &WORK_ACCOUNT,
        "a work pane after personal logged out",
    );
}

/// Runs no Claude (the pane would only echo), so it runs without the CLI.
#[test]
fn an_unknown_profile_is_refused_naming_the_known_ones() {
    let sandbox = Sandbox::new();
    let config = profiles_config(&sandbox);
    // Named by --profile, by `ID@NAME`, or inherited in CCMUX_PROFILE (a
    // multiplexer's pane environment): host-shim checks the name before
    // anything runs (2); the plugin would refuse it at spawn anyway.
    let by_flag = host_shim_run(&sandbox, &config, "state", Some("wrok"));
    let mut by_pane = host_shim_run(&sandbox, &config, "state", None);
    by_pane.args(["--pane-id", "typo_1@wrok"]);
    let mut by_env = host_shim_run(&sandbox, &config, "state", None);
    by_env.env("CCMUX_PROFILE", "wrok");
    for mut cmd in [by_flag, by_pane, by_env] {
        if !cmd.get_args().any(|arg| arg == "--pane-id") {
            cmd.args(["--pane-id", "typo_1"]);
        }
        let out = run(cmd.args(["--", "sh", "-c", "echo started"]));
        assert_eq!(out.status.code(), Some(2), "{out}");
        assert!(!out.stdout.contains("started"), "the pane ran: {out}");
        assert!(
            out.stderr.contains("wrok") && out.stderr.contains("default, personal, work"),
            "{out}"
        );
        // Nothing was made for the name, and no pane dir.
        assert!(!sandbox.home().join(".claude-wrok").exists());
        assert!(!base_dir(&sandbox).join("typo_1").exists());
    }
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn a_missing_profile_dir_is_made_with_the_modes_claude_gives_its_own() {
    // An account never used: neither ~/.claude-work nor ~/.claude exists.
    // A conversation made in a pane of each must end up in a dir made
    // with the modes Claude gives the dir it makes itself, in a plain
    // terminal with CLAUDE_CONFIG_DIR=~/.claude-plain (mkdir under the
    // umask, whatever the umask of this run is): the issue asks a missing
    // profile dir to get the default's modes.
    let sandbox = Sandbox::new();
    let config = profiles_config(&sandbox);
    for profile in [WORK, DEFAULT] {
        std::fs::remove_dir(profile_dir(&sandbox, profile)).expect("an empty dir");
    }
    let plain_dir = sandbox.home().join(".claude-plain");
    let mut plain = hermetic(&sandbox, claude_bin());
    plain
        .env("CLAUDE_CONFIG_DIR", &plain_dir)
        .args(["-p", "hi"]);
    let mut commands: Vec<Command> = [Some(WORK), None]
        .iter()
        .map(|profile| {
            let pane = format!("first_{}", profile.unwrap_or(DEFAULT));
            let mut cmd = shim(&sandbox, &config, &format!("state-{pane}"), *profile);
            cmd.args(["--pane-id", &pane, "--", "sh", "-c", FIRST_TURN]);
            cmd
        })
        .collect();
    commands.push(plain);
    let outs = run_together(commands);
    let modes = |dir: &Path| {
        use std::os::unix::fs::PermissionsExt;
        [dir.to_path_buf(), dir.join("projects")].map(|path| {
            let meta = std::fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(meta.is_dir(), "{} is a real dir", path.display());
            format!("{:o}", meta.permissions().mode() & 0o7777)
        })
    };
    let mut sessions = Vec::new();
    for (profile, out) in [WORK, DEFAULT].iter().zip(&outs) {
        let pane = format!("first_{profile}");
        assert!(out.status.success(), "{out}");
        let session = pane_value(out, &pane, "session");
        let transcript = transcripts_of(&sandbox, profile, &session);
        assert_eq!(transcript.len(), 1, "{profile}: {out}");
        sessions.push(session);
    }
    let claude_makes = modes(&plain_dir);
    assert_eq!(
        modes(&profile_dir(&sandbox, DEFAULT)),
        claude_makes,
        "~/.claude and its projects/, made through a default pane"
    );
    assert_eq!(
        modes(&profile_dir(&sandbox, WORK)),
        claude_makes,
        "~/.claude-work and its projects/, made through a work pane"
    );
    // The account's own plain terminal finds the conversation there.
    let out = run(plain_claude(&sandbox, WORK).args(["-p", "plain", "--resume", &sessions[0]]));
    assert_found(&format!("{}{}", out.stdout, out.stderr), "plain work");
}
