//! `host-shim attach` driven as a person drives it: in a terminal (a PTY
//! the test holds), typing keys, resizing, closing it. Every timeout here
//! is a guard against a hang, never a measure of speed.

use std::path::{Path, PathBuf};
use std::process::Command;

use ccmux_tests::{
    artifacts, claude_bin, plugin_entry, repo_root, wait_for, Background, OuterTerminal, Sandbox,
};

fn probe_toml(sandbox: &Sandbox) -> PathBuf {
    let record = sandbox.path().join("record");
    let config = format!("record = {:?}", record.display().to_string());
    sandbox.write(
        "probe.toml",
        &plugin_entry("probe", &artifacts().probe_plugin, true, &config),
    )
}

fn records(sandbox: &Sandbox) -> Vec<String> {
    sandbox.read("record").lines().map(str::to_string).collect()
}

/// The root plugins.toml (isolation on), with no grace period.
fn isolation_toml(sandbox: &Sandbox) -> PathBuf {
    let text =
        std::fs::read_to_string(repo_root().join("plugins.toml")).expect("root plugins.toml");
    assert!(text.contains("grace_period_ms = 3000"), "{text}");
    sandbox.write(
        "plugins.toml",
        &text.replace("grace_period_ms = 3000", "grace_period_ms = 0"),
    )
}

/// `host-shim attach` with the sandbox's environment and state root.
fn attach(sandbox: &Sandbox, config: &Path, args: &[&str]) -> Command {
    let mut cmd = sandbox.host_shim();
    cmd.arg("attach")
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(sandbox.path().join("state"))
        .args(args);
    cmd
}

/// The value printed on the terminal as `{key}=value`.
fn shown_value(terminal: &OuterTerminal, key: &str) -> String {
    let text = terminal.text();
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= on the terminal:\n{text}"))
        .trim()
        .to_string()
}

#[test]
fn typed_text_reaches_the_pane_and_ctrl_d_is_the_panes() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox);
    let mut terminal = OuterTerminal::start(
        &attach(
            &sandbox,
            &config,
            &["--", "sh", "-c", "echo ready; exec cat"],
        ),
        24,
        80,
    );
    // The pane runs, so the terminal is in raw mode: typing now is not
    // echoed by the outer terminal.
    terminal.wait_for_text("ready", 30);
    terminal.type_bytes(b"hello pane\r");
    // Echoed by the pane's terminal, then written back by cat, unprefixed.
    terminal.wait_for_text("hello pane\r\nhello pane\r\n", 30);
    // Ctrl-D: end of file for cat, not for host-shim (whose terminal would
    // otherwise report a hang-up and keep the pane).
    terminal.type_bytes(b"\x04");
    let (code, signal) = terminal.wait(30);
    assert_eq!((code, signal.as_deref()), (0, None), "{}", terminal.text());
    assert_eq!(
        terminal.text().matches("hello pane").count(),
        2,
        "the outer terminal echoed too: it was not in raw mode\n{}",
        terminal.text()
    );
    let calls = records(&sandbox);
    assert!(
        calls
            .iter()
            .any(|l| l.starts_with("probe on_pane_close") && l.ends_with("exited with status 0")),
        "{calls:?}"
    );
}

#[test]
fn the_pane_has_the_terminals_size_and_follows_a_resize() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox);
    let mut terminal = OuterTerminal::start(
        &attach(
            &sandbox,
            &config,
            &[
                "--",
                "sh",
                "-c",
                "stty size; while read x; do stty size; done",
            ],
        ),
        30,
        100,
    );
    terminal.wait_for_text("30 100", 30);
    terminal.resize(40, 120);
    // Each Enter asks again; the resize reaches the pane asynchronously.
    wait_for("the pane to see the new size", 30, || {
        terminal.type_bytes(b"\r");
        terminal.text().contains("40 120")
    });
    terminal.type_bytes(b"\x04");
    let (code, _) = terminal.wait(30);
    assert_eq!(code, 0, "{}", terminal.text());
}

#[test]
fn ctrl_c_ends_the_panes_command_and_the_lifecycle_completes() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox);
    let mut terminal = OuterTerminal::start(
        &attach(
            &sandbox,
            &config,
            &[
                "--pane-id",
                "c_0_0",
                "--",
                "sh",
                "-c",
                "echo up; exec sleep 60",
            ],
        ),
        24,
        80,
    );
    terminal.wait_for_text("up", 30);
    terminal.type_bytes(b"\x03");
    let (code, signal) = terminal.wait(30);
    // The pane's status, as a shell reports a command killed by SIGINT;
    // host-shim itself was not signalled.
    assert_eq!(
        (code, signal.as_deref()),
        (130, None),
        "{}",
        terminal.text()
    );
    let calls = records(&sandbox);
    assert!(
        calls.contains(&"probe on_pane_close c_0_0 killed by signal 2".to_string()),
        "{calls:?}"
    );
    assert_eq!(
        calls.last().map(String::as_str),
        Some("probe on_server_stop "),
        "{calls:?}"
    );
}

#[test]
fn the_exit_status_is_the_panes() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox);
    let mut terminal = OuterTerminal::start(
        &attach(&sandbox, &config, &["--", "sh", "-c", "exit 7"]),
        24,
        80,
    );
    assert_eq!(terminal.wait(30).0, 7, "{}", terminal.text());

    // host-shim's own errors follow the table: a bad plugins.toml is 2.
    let bad = sandbox.write("bad.toml", "[[plugins]]\nname = \n");
    let mut terminal = OuterTerminal::start(&attach(&sandbox, &bad, &["--", "true"]), 24, 80);
    assert_eq!(terminal.wait(30).0, 2, "{}", terminal.text());
    assert!(
        terminal.text().contains("bad.toml:2"),
        "{}",
        terminal.text()
    );
}

/// `stty -a` before and after host-shim attach, in the same terminal,
/// into files; `attach_args` run in between.
fn modes_around(sandbox: &Sandbox, config: &Path, pane: &str) -> (OuterTerminal, PathBuf) {
    let script = format!(
        "stty -a > before; echo $$ > shell.pid; {shim} attach --config {config} --state-dir state --pane-id m_0_0 -- sh -c {pane}; echo $? > status; stty -a > after; echo done",
        shim = artifacts().host_shim.display(),
        config = config.display(),
        pane = shell_quote(pane),
    );
    let mut cmd = sandbox.command("sh");
    cmd.arg("-c").arg(script);
    (
        OuterTerminal::start(&cmd, 24, 80),
        sandbox.path().to_path_buf(),
    )
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[test]
fn terminal_modes_are_restored_when_the_command_exits() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox);
    let (mut terminal, dir) = modes_around(&sandbox, &config, "echo in the pane");
    terminal.wait_for_text("done", 30);
    terminal.wait(30);
    let before = std::fs::read_to_string(dir.join("before")).unwrap();
    assert!(before.contains("icanon"), "{before}");
    assert_eq!(std::fs::read_to_string(dir.join("after")).unwrap(), before);
    assert_eq!(sandbox.read("status").trim(), "0", "{}", terminal.text());
}

#[test]
fn terminal_modes_are_restored_on_sigterm_and_the_pane_is_kept() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox);
    let (mut terminal, dir) = modes_around(&sandbox, &config, "echo \"shim=$PPID\"; sleep 60");
    terminal.wait_for_text("shim=", 30);
    let shim = shown_value(&terminal, "shim");
    let status = Command::new("kill")
        .args(["-s", "TERM", &shim])
        .status()
        .unwrap();
    assert!(status.success());
    terminal.wait_for_text("done", 30);
    terminal.wait(30);
    let before = std::fs::read_to_string(dir.join("before")).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("after")).unwrap(), before);
    assert_eq!(sandbox.read("status").trim(), "143", "{}", terminal.text());
    let calls = records(&sandbox);
    assert!(
        !calls.iter().any(|l| l.contains("on_pane_close")),
        "{calls:?}"
    );
    let saved = sandbox.read("state/attached/m_0_0/panes.json");
    assert!(saved.contains("\"m_0_0\""), "{saved}");
}

#[test]
fn closing_the_terminal_ends_host_shim_and_keeps_the_pane() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox);
    let mut terminal = OuterTerminal::start(
        &attach(
            &sandbox,
            &config,
            &["--pane-id", "z_0_0", "--", "sh", "-c", "echo up; sleep 60"],
        ),
        24,
        80,
    );
    terminal.wait_for_text("up", 30);
    let pid = terminal.pid();
    terminal.close();
    wait_for("host-shim to end with its terminal", 30, || {
        // Gone, or a zombie waiting for the test to reap it.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| stat.contains(") Z "))
            .unwrap_or(true)
    });
    let (code, _) = terminal.wait(30);
    assert_eq!(code, 129);
    let calls = records(&sandbox);
    assert!(
        !calls.iter().any(|l| l.contains("on_pane_close")),
        "{calls:?}"
    );
    assert_eq!(
        calls.last().map(String::as_str),
        Some("probe on_server_stop "),
        "{calls:?}"
    );
    let saved = sandbox.read("state/attached/z_0_0/panes.json");
    assert!(saved.contains("\"z_0_0\""), "{saved}");
}

#[test]
fn stdin_not_a_terminal_is_a_clear_error_not_a_hang() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox);
    let mut shim = Background::start(attach(&sandbox, &config, &["--", "cat"]), &sandbox, "shim");
    let status = shim.wait(30);
    assert_eq!(status.code(), Some(2), "{}", shim.stderr());
    assert!(
        shim.stderr().contains("stdin is not a terminal"),
        "{}",
        shim.stderr()
    );
    assert!(records(&sandbox).is_empty(), "{:?}", records(&sandbox));
}

#[test]
fn two_attached_panes_at_once_get_distinct_dirs() {
    let sandbox = Sandbox::new();
    let config = isolation_toml(&sandbox);
    let pane = "echo \"DIR=$CLAUDE_CONFIG_DIR\"; read x";
    let mut terminals: Vec<OuterTerminal> = ["left_0_0", "right_0_0"]
        .iter()
        .map(|id| {
            OuterTerminal::start(
                &attach(
                    &sandbox,
                    &config,
                    &["--pane-id", id, "--", "sh", "-c", pane],
                ),
                24,
                80,
            )
        })
        .collect();
    // Both running at once: neither refused the other.
    for terminal in &terminals {
        terminal.wait_for_text("DIR=", 30);
    }
    let dirs: Vec<String> = terminals.iter().map(|t| shown_value(t, "DIR")).collect();
    assert_ne!(dirs[0], dirs[1]);
    for (dir, id) in dirs.iter().zip(["left_0_0", "right_0_0"]) {
        let expected = sandbox.home().join(".ccmux/claude").join(id).join("config");
        assert_eq!(Path::new(dir), expected);
        assert!(expected.is_dir(), "{dir}");
    }
    for terminal in &mut terminals {
        terminal.type_bytes(b"\r");
        assert_eq!(terminal.wait(30).0, 0, "{}", terminal.text());
    }
}

#[test]
fn the_same_pane_id_attached_again_gets_the_same_claude_session() {
    let sandbox = Sandbox::new();
    let config = isolation_toml(&sandbox);
    let pane = "echo \"SID=$CCMUX_CLAUDE_SESSION_ID\"; echo \"DIR=$CLAUDE_CONFIG_DIR\"";
    let attached = |extra: &[&str]| {
        let mut args = vec!["--pane-id", "same_0_0"];
        args.extend(extra);
        args.extend(["--", "sh", "-c", pane]);
        let mut terminal = OuterTerminal::start(&attach(&sandbox, &config, &args), 24, 80);
        assert_eq!(terminal.wait(30).0, 0, "{}", terminal.text());
        (shown_value(&terminal, "SID"), shown_value(&terminal, "DIR"))
    };
    let first = attached(&["--keep"]);
    assert_eq!(first.0.len(), 36, "{first:?}");
    let second = attached(&["--keep"]);
    assert_eq!(second, first);
    // Without --keep the pane closes at its command's exit, and comes
    // back as a new one.
    let third = attached(&[]);
    assert_eq!(third, first);
    let fourth = attached(&[]);
    assert_ne!(fourth.0, first.0);
}

#[test]
#[cfg_attr(
    not(claude_cli),
    ignore = "needs the Claude Code CLI: set CLAUDE_BIN (.ci/install-claude)"
)]
fn interactive_claude_in_an_attached_pane_takes_exit_typed_in() {
    let claude = claude_bin();
    let sandbox = Sandbox::new();
    let config = isolation_toml(&sandbox);
    // Onboarding done, as for any user who ran Claude before: the seed
    // carries it into the pane. No credentials: offline it says so.
    sandbox.write(
        "home/.claude.json",
        r#"{"hasCompletedOnboarding": true, "lastOnboardingVersion": "2.1.197", "theme": "light"}"#,
    );
    let mut terminal = OuterTerminal::start(
        attach(&sandbox, &config, &["--pane-id", "claude_0_0", "--"]).arg(&claude),
        40,
        120,
    );
    // The trust question: 2.1.197 lists "Yes" first and selected, 2.1.337
    // "No, exit" first and selected; the option is chosen by its text.
    // Then the prompt, ready: its footer differs between releases (2.1.197
    // "? for shortcuts", 2.1.337 the permission mode); both say the pane
    // has no login and that ← opens the agents view.
    terminal.choose(
        "Is this a project you created or one you trust?",
        &["Yes, I trust this folder", "No, exit"],
        "Yes, I trust this folder",
        &["? for shortcuts", "for agents", "Not logged in"],
        60,
    );
    terminal.type_keys("/exit");
    terminal.type_bytes(b"\r");
    let (code, signal) = terminal.wait(60);
    assert_eq!((code, signal.as_deref()), (0, None), "{}", terminal.text());
    // Isolated: Claude's own .claude.json and its backups stayed in the
    // pane; the user's file got only what the user did there: trusting
    // this folder, carried back when the pane closed.
    let user_dir = sandbox.home().join(".claude");
    assert!(!user_dir.join(".claude.json").exists());
    assert!(!user_dir.join("backups").exists());
    let user: serde_json::Value = serde_json::from_str(&sandbox.read("home/.claude.json"))
        .unwrap_or_else(|err| panic!("the user's .claude.json is not JSON: {err}"));
    // Claude 2.1.197 copies a non-default `theme` into settings.json; the
    // user had none, so the pane made its own, which went home.
    assert_eq!(user["theme"], "light", "{user}");
    let settings: serde_json::Value =
        serde_json::from_str(&sandbox.read("home/.claude/settings.json"))
            .unwrap_or_else(|err| panic!("the pane's settings.json did not go home: {err}"));
    assert_eq!(settings["theme"], "light", "{settings}");
    let trusted: Vec<&String> = user["projects"]
        .as_object()
        .map(|projects| {
            projects
                .iter()
                .filter(|(_, p)| p["hasTrustDialogAccepted"] == true)
                .map(|(path, _)| path)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(trusted.len(), 1, "{user}");
}
