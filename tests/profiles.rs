//! Profiles (issue 20) end to end, with the real Claude Code CLI
//! (`CLAUDE_BIN`): one fake HOME with three accounts, `default` (`~/.claude`
//! and `~/.claude.json`), `work` (`~/.claude-work`) and `personal`
//! (`~/.claude-personal`), the named two as `CLAUDE_CONFIG_DIR=DIR claude`
//! uses them (`.claude.json` inside DIR). A pane chooses its profile through
//! `CCMUX_PROFILE` in host-shim's environment, which host-shim passes to
//! every pane of that run.
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

/// `host-shim run` with its own state dir (its own server identity), the
/// CLI reachable as `$CLAUDE_BIN`, and its panes in `profile` (`None`:
/// `CCMUX_PROFILE` unset, so `default`).
fn shim(sandbox: &Sandbox, config: &Path, state: &str, profile: Option<&str>) -> Command {
    let mut cmd = hermetic(sandbox, &ccmux_tests::artifacts().host_shim);
    cmd.env("CLAUDE_BIN", claude_bin())
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(sandbox.path().join(state));
    if let Some(profile) = profile {
        cmd.env("CCMUX_PROFILE", profile);
    }
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
