//! Carrying a pane's `.claude.json` changes back, through host-shim (issue
//! 15): what a reset holds back and `host-shim carry-back` shows and
//! decides, a server started inside a pane, and a server start that never
//! waits for the pending pass. Every process gets a fake HOME.

use std::path::{Path, PathBuf};

use ccmux_tests::{claude_bin, pane_lines, repo_root, run, Sandbox};
use serde_json::{json, Value};

/// The root plugins.toml with no grace period (a closed pane's dir goes,
/// and its changes are carried back, before host-shim exits), and
/// `base_dir` where given.
fn config(sandbox: &Sandbox, name: &str, base_dir: Option<&Path>) -> PathBuf {
    let mut text =
        std::fs::read_to_string(repo_root().join("plugins.toml")).expect("root plugins.toml");
    assert!(text.contains("grace_period_ms = 3000"));
    text = text.replace("grace_period_ms = 3000", "grace_period_ms = 0");
    if let Some(base) = base_dir {
        text = text.replace(
            "grace_period_ms = 0",
            &format!(
                "grace_period_ms = 0\nbase_dir = {:?}",
                base.display().to_string()
            ),
        );
    }
    // The library is found next to the host-shim binary the tests run.
    sandbox.write(name, &text)
}

fn user_file() -> Value {
    json!({
        "numStartups": 7,
        "userID": "the-users-id",
        "hasCompletedOnboarding": true,
        "oauthAccount": {"emailAddress": "me@example.com", "accountUuid": "acc-1"},
        "theme": "dark",
        "mcpServers": {"one": {"command": "one"}, "two": {"command": "two"}},
        "projects": {"/work/a": {"hasTrustDialogAccepted": true, "history": []}},
    })
}

fn user_json(sandbox: &Sandbox) -> Value {
    serde_json::from_str(&sandbox.read("home/.claude.json")).expect("the user's file is JSON")
}

fn carry_back(sandbox: &Sandbox, config: &Path, args: &[&str]) -> ccmux_tests::Run {
    run(sandbox
        .host_shim()
        .arg("carry-back")
        .arg("--config")
        .arg(config)
        .args(args))
}

#[test]
fn a_reset_pane_keeps_the_user_whole_and_carry_back_shows_applies_and_drops_it() {
    let sandbox = Sandbox::new();
    sandbox.write("home/.claude.json", &user_file().to_string());
    let config = config(&sandbox, "plugins.toml", None);
    // Two panes reset their file (a crash, Claude's "reset to defaults").
    for pane in ["reset_0_0", "reset_0_1"] {
        let out = run(sandbox
            .host_shim()
            .args(["run", "--config"])
            .arg(&config)
            .args(["--pane-id", pane, "--", "sh", "-c"])
            .arg("printf '{\"numStartups\":1}' > \"$CLAUDE_CONFIG_DIR/.claude.json\""));
        assert!(out.status.success(), "{out}");
        assert!(
            out.stderr.contains("looks reset") && out.stderr.contains(pane),
            "{out}"
        );
    }
    let user = user_json(&sandbox);
    assert_eq!(user["oauthAccount"], user_file()["oauthAccount"]);
    assert_eq!(user["mcpServers"], user_file()["mcpServers"]);
    assert_eq!(user["projects"]["/work/a"]["hasTrustDialogAccepted"], true);

    // Listed, item by item, held for the user.
    let list = carry_back(&sandbox, &config, &["list"]);
    assert!(list.status.success(), "{list}");
    let names: Vec<String> = list
        .stdout
        .lines()
        .filter(|line| !line.starts_with(' '))
        .map(|line| line.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(list.stdout.contains("held for you"), "{list}");
    assert!(list.stdout.contains("remove oauthAccount"), "{list}");
    assert!(list.stdout.contains("remove mcpServers.one"), "{list}");
    let show = carry_back(&sandbox, &config, &["show", &names[0]]);
    assert!(
        show.status.success() && show.stdout.contains("me@example.com"),
        "{show}"
    );

    // Dropped: nothing changes. Applied: the deletions go in.
    let before = sandbox.read("home/.claude.json");
    let dropped = carry_back(&sandbox, &config, &["drop", &names[0]]);
    assert!(dropped.status.success(), "{dropped}");
    assert_eq!(sandbox.read("home/.claude.json"), before);
    let applied = carry_back(&sandbox, &config, &["apply", &names[1]]);
    assert!(applied.status.success(), "{applied}");
    let user = user_json(&sandbox);
    assert!(user.get("oauthAccount").is_none(), "{user:#}");
    assert!(
        user.get("mcpServers")
            .is_none_or(|servers| servers.get("one").is_none()),
        "{user:#}"
    );
    let list = carry_back(&sandbox, &config, &["list"]);
    assert!(list.stdout.contains("no pending carry-backs"), "{list}");

    // An unknown name: status 2, and what to do.
    let unknown = carry_back(&sandbox, &config, &["apply", "nope"]);
    assert_eq!(unknown.status.code(), Some(2), "{unknown}");
    assert!(unknown.stderr.contains("carry-back list"), "{unknown}");
    let unknown = carry_back(&sandbox, &config, &["drop", "nope"]);
    assert_eq!(unknown.status.code(), Some(2), "{unknown}");
}

#[test]
fn a_server_started_inside_a_pane_carries_back_into_the_users_file() {
    let sandbox = Sandbox::new();
    sandbox.write("home/.claude.json", &user_file().to_string());
    let outer = config(&sandbox, "outer.toml", None);
    let inner = config(
        &sandbox,
        "inner.toml",
        Some(&sandbox.path().join("inner-base")),
    );
    // The inner pane sets a user setting in its own .claude.json.
    let inner_pane = "sed -i 's/^{/{\"editorMode\":\"vim\",/' \"$CLAUDE_CONFIG_DIR/.claude.json\"";
    let out = run(sandbox
        .host_shim()
        .args(["run", "--config"])
        .arg(&outer)
        .args(["--pane-id", "outer_0_0", "--", "sh", "-c"])
        .arg(format!(
            "\"$HOST_SHIM\" run --config {inner:?} --state-dir {state:?} --pane-id inner_0_0 -- sh -c {pane:?} && echo inner-ok",
            inner = inner.display().to_string(),
            state = sandbox.path().join("inner-state").display().to_string(),
            pane = inner_pane,
        ))
        .env("HOST_SHIM", &ccmux_tests::artifacts().host_shim));
    assert!(out.status.success(), "{out}");
    assert!(
        pane_lines(&out.stdout, "outer_0_0")
            .join("\n")
            .contains("inner-ok"),
        "{out}"
    );
    assert!(!out.stderr.contains("symbolic link"), "{out}");
    let user = user_json(&sandbox);
    assert_eq!(user["editorMode"], "vim", "{user:#}\n{out}");
    assert_eq!(user["oauthAccount"], user_file()["oauthAccount"]);
    // No dir kept, inner or outer.
    for base in [
        sandbox.home().join(".ccmux/claude"),
        sandbox.path().join("inner-base"),
    ] {
        let panes: Vec<String> = std::fs::read_dir(&base)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| !name.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        assert!(panes.is_empty(), "{}: {panes:?}", base.display());
    }
}

#[test]
fn the_first_pane_runs_while_pending_entries_wait_and_a_stop_leaves_them_pending() {
    let sandbox = Sandbox::new();
    sandbox.write("home/.claude.json", &user_file().to_string());
    let config = config(&sandbox, "plugins.toml", None);
    // Three panes change their theme while the user's file is a link
    // (read through for the seed, never written through): their changes
    // go pending.
    let real = sandbox.write("dotfiles/claude.json", &user_file().to_string());
    std::fs::remove_file(sandbox.home().join(".claude.json")).unwrap();
    std::os::unix::fs::symlink(&real, sandbox.home().join(".claude.json")).unwrap();
    for n in 0..3 {
        let out = run(sandbox
            .host_shim()
            .args(["run", "--config"])
            .arg(&config)
            .args(["--pane-id", &format!("p_0_{n}"), "--", "sh", "-c"])
            .arg(format!(
                "sed -i 's/\"theme\":\"dark\"/\"theme\":\"theme-{n}\"/' \"$CLAUDE_CONFIG_DIR/.claude.json\""
            )));
        assert!(out.status.success(), "{out}");
    }
    // A regular file again.
    std::fs::remove_file(sandbox.home().join(".claude.json")).unwrap();
    sandbox.write("home/.claude.json", &user_file().to_string());
    let store = sandbox.home().join(".ccmux/claude/.pending-carry-back");
    let pending = || std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0);
    assert_eq!(pending(), 3);
    // Another process holds the merge lock: the pending pass cannot merge.
    let lock =
        std::fs::File::create(sandbox.home().join(".claude/.ccmux-claude-json.lock")).unwrap();
    lock.lock().unwrap();
    let out = run(sandbox
        .host_shim()
        .args(["run", "--config"])
        .arg(&config)
        .args(["--pane-id", "first_0_0", "--", "sh", "-c"])
        .arg(format!("ls {:?} | wc -l", store.display().to_string())));
    // The pane ran while all three were pending, and the server's stop
    // ended the pass with the three still pending.
    assert!(out.status.success(), "{out}");
    assert_eq!(pane_lines(&out.stdout, "first_0_0"), ["3"], "{out}");
    assert_eq!(pending(), 3);
    assert_eq!(user_json(&sandbox)["theme"], "dark");
    // Free again: the next server merges them while its pane runs (the
    // pane waits for the store to empty, for up to a minute), the latest
    // choice last.
    drop(lock);
    let out = run(sandbox
        .host_shim()
        .args(["run", "--config"])
        .arg(&config)
        .args(["--pane-id", "next_0_0", "--", "sh", "-c"])
        .arg(format!(
            "for i in $(seq 600); do [ -z \"$(ls {store:?})\" ] && exit 0; sleep 0.1; done; exit 1",
            store = store.display().to_string()
        )));
    assert!(out.status.success(), "{out}");
    assert_eq!(user_json(&sandbox)["theme"], "theme-2");
    assert_eq!(pending(), 0);
    let list = carry_back(&sandbox, &config, &["list"]);
    assert!(list.stdout.contains("no pending carry-backs"), "{list}");
}

/// A user logged in with an account, as `claude auth login` leaves them.
fn logged_in_user(sandbox: &Sandbox, home: &str) {
    sandbox.write(
        &format!("{home}/.claude/.credentials.json"),
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-test","refreshToken":"sk-ant-ort01-test","expiresAt":4102444800000,"scopes":["user:inference","user:profile"],"subscriptionType":"pro"}}"#,
    );
    sandbox.write(&format!("{home}/.claude.json"), &user_file().to_string());
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn a_logout_in_a_pane_leaves_the_users_file_as_plain_claude_does() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    // Plain Claude, in a HOME of its own.
    logged_in_user(&sandbox, "plain");
    let plain = run(sandbox
        .command(&claude)
        .env("HOME", sandbox.path().join("plain"))
        .args(["auth", "logout"]));
    assert!(plain.status.success(), "{plain}");
    // The same in a pane.
    logged_in_user(&sandbox, "home");
    let config = config(&sandbox, "plugins.toml", None);
    let out = run(sandbox
        .host_shim()
        .env("CLAUDE_BIN", &claude)
        .args(["run", "--config"])
        .arg(&config)
        .args([
            "--pane-id",
            "logout_0_0",
            "--",
            "sh",
            "-c",
            "\"$CLAUDE_BIN\" auth logout | cat",
        ]));
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.to_lowercase().contains("logged out"), "{out}");
    let plain: Value =
        serde_json::from_str(&sandbox.read("plain/.claude.json")).expect("plain's file");
    let pane = user_json(&sandbox);
    // What the plugin carries (the user's setup and who they are) is the
    // same; what only a running Claude keeps (its counters, caches, the
    // machine id) is the pane's own and never carried.
    // 2.1.337 gives the user a new random `userID` at logout (2.1.197
    // keeps it): the same in both, though not the same value.
    let original = user_file();
    assert_eq!(
        pane["userID"] == original["userID"],
        plain["userID"] == original["userID"],
        "userID: plain {plain:#}\npane {pane:#}"
    );
    for key in [
        "oauthAccount",
        "hasCompletedOnboarding",
        "theme",
        "mcpServers",
    ] {
        assert_eq!(
            pane.get(key),
            plain.get(key),
            "{key}: plain {plain:#}\npane {pane:#}"
        );
    }
    // A project's setup too (its history is Claude's own, never carried:
    // plain Claude drops an empty one, the user's file keeps it).
    assert_eq!(
        pane["projects"]["/work/a"]["hasTrustDialogAccepted"],
        plain["projects"]["/work/a"]["hasTrustDialogAccepted"]
    );
    assert_eq!(
        pane.get("firstStartTime").is_some(),
        plain.get("firstStartTime").is_some()
    );
    // The login itself is gone in both.
    assert!(!sandbox
        .path()
        .join("plain/.claude/.credentials.json")
        .exists());
    assert!(!sandbox.home().join(".claude/.credentials.json").exists());
    assert!(!out.stderr.contains("looks reset"), "{out}");
}
