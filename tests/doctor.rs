//! `host-shim doctor` through the binary, in a fake home: one line per
//! finding, exit 1 when one needs action. No Claude is needed: a stand-in
//! `claude` on PATH prints a version, or none is there.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ccmux_tests::{repo_root, run, Run, Sandbox};

/// A healthy user: a valid `.claude.json` with two projects, a Claude dir,
/// and a `claude` of the newest supported release on PATH.
fn healthy(sandbox: &Sandbox) -> PathBuf {
    sandbox.write(
        "home/.claude.json",
        r#"{"hasCompletedOnboarding": true, "projects": {"/a": {}, "/b": {}}}"#,
    );
    sandbox.write("home/.claude/settings.json", "{}");
    let claude = sandbox.write("bin/claude", "#!/bin/sh\necho '2.1.337 (Claude Code)'\n");
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let text =
        std::fs::read_to_string(repo_root().join("plugins.toml")).expect("root plugins.toml");
    sandbox.write("plugins.toml", &text)
}

fn doctor(sandbox: &Sandbox, config: &Path, path: &str) -> Run {
    run(sandbox
        .host_shim()
        .env("PATH", path)
        .arg("doctor")
        .arg("--config")
        .arg(config))
}

fn with_bin(sandbox: &Sandbox) -> String {
    format!("{}:/usr/bin:/bin", sandbox.path().join("bin").display())
}

fn fix_lines(out: &Run) -> Vec<&str> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with("FIX"))
        .collect()
}

#[test]
fn a_healthy_home_has_no_finding_to_act_on() {
    let sandbox = Sandbox::new();
    let config = healthy(&sandbox);
    let out = doctor(&sandbox, &config, &with_bin(&sandbox));
    assert_eq!(out.status.code(), Some(0), "{out}");
    assert!(fix_lines(&out).is_empty(), "{out}");
    assert!(
        out.stdout.contains("claude: 2.1.337") && out.stdout.contains("inside the supported range"),
        "{out}"
    );
    assert!(
        out.stdout.contains("is valid") && out.stdout.contains("2 projects"),
        "{out}"
    );
    assert!(out.stdout.contains("plugin isolation: loads"), "{out}");
    assert!(
        out.stdout.contains("pending carry-backs: none") || out.stdout.contains("pane dirs:"),
        "{out}"
    );
    assert!(out.stdout.contains("login:"), "{out}");
}

#[test]
fn a_broken_claude_json_is_a_finding_with_its_fix() {
    let sandbox = Sandbox::new();
    let config = healthy(&sandbox);
    sandbox.write("home/.claude.json", "{\"projects\": {\"/a\": {}");
    let out = doctor(&sandbox, &config, &with_bin(&sandbox));
    assert_eq!(out.status.code(), Some(1), "{out}");
    let fixes = fix_lines(&out);
    assert_eq!(fixes.len(), 1, "{out}");
    assert!(
        fixes[0].contains(".claude.json")
            && fixes[0].contains("not valid JSON")
            && fixes[0].contains("restore"),
        "{out}"
    );
}

#[test]
fn a_missing_claude_is_a_finding_and_the_rest_still_runs() {
    let sandbox = Sandbox::new();
    let config = healthy(&sandbox);
    let out = doctor(&sandbox, &config, "/nonexistent-ccmux-test-bin");
    assert_eq!(out.status.code(), Some(1), "{out}");
    let fixes = fix_lines(&out);
    assert_eq!(fixes.len(), 1, "{out}");
    assert!(fixes[0].contains("claude: not found on PATH"), "{out}");
    assert!(out.stdout.contains("2 projects"), "{out}");
}

#[test]
fn a_claude_outside_the_supported_range_is_a_finding() {
    let sandbox = Sandbox::new();
    let config = healthy(&sandbox);
    sandbox.write("bin/claude", "#!/bin/sh\necho '2.0.5 (Claude Code)'\n");
    let out = doctor(&sandbox, &config, &with_bin(&sandbox));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        fix_lines(&out)
            .iter()
            .any(|l| l.contains("older than the supported range")),
        "{out}"
    );
}

#[test]
fn a_pending_carry_back_is_a_finding() {
    let sandbox = Sandbox::new();
    let config = healthy(&sandbox);
    sandbox.write(
        "home/.ccmux/claude/.pending-carry-back/1767225600000-work_0_1/.claude.json",
        "{}",
    );
    let out = doctor(&sandbox, &config, &with_bin(&sandbox));
    assert_eq!(out.status.code(), Some(1), "{out}");
    let fixes = fix_lines(&out);
    assert_eq!(fixes.len(), 1, "{out}");
    assert!(
        fixes[0].contains("pending carry-backs: 1") && fixes[0].contains("1767225600000-work_0_1"),
        "{out}"
    );
}

#[test]
fn kept_panes_and_unknown_entries_are_reported() {
    let sandbox = Sandbox::new();
    let config = healthy(&sandbox);
    sandbox.write(
        "home/.ccmux/claude/work_0_1/.pane-metadata",
        r#"{"pane_id": "work_0_1", "owner": "0b4c1f9e-5c7d-4a8e-9f00-1234567890ab"}"#,
    );
    sandbox.write("home/.ccmux/claude/work_0_1/config/.claude.json", "{}");
    sandbox.write(
        "home/.ccmux/claude/work_0_1/config/brand-new-store/x",
        "data",
    );
    // A pane's copy kept beside the user's: to merge by hand.
    sandbox.write("home/.claude/notes.pane-work_0_2.json", "{}");
    let out = doctor(&sandbox, &config, &with_bin(&sandbox));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stdout.lines().any(|l| l.contains("pane work_0_1")
            && l.contains("0b4c1f9e")
            && l.contains("brand-new-store")),
        "{out}"
    );
    let fixes = fix_lines(&out);
    assert_eq!(fixes.len(), 1, "{out}");
    assert!(fixes[0].contains("notes.pane-work_0_2.json"), "{out}");
}
