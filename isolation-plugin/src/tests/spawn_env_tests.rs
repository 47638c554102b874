//! The environment a pane's process gets.

use std::fs;
use std::path::PathBuf;

use ccmux_plugin_api::{HookErrorKind, PaneExit};

use super::*;

#[test]
fn claude_is_pointed_at_the_panes_own_dir() {
    let h = Harness::new();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let vars = spawn_env(
        &plugin,
        "main_0_1",
        &[
            ("CLAUDE_CONFIG_DIR", "/home/user/.claude"),
            ("PATH", "/usr/bin"),
        ],
    )
    .unwrap();

    let config_dir = PathBuf::from(&vars["CLAUDE_CONFIG_DIR"]);
    assert!(config_dir.is_absolute());
    assert_eq!(config_dir, h.pane_dir("main_0_1").join("config"));
    assert!(config_dir.is_dir());
    assert_eq!(vars["CCMUX_PANE_ID"], "main_0_1");
    let metadata = metadata_json(&h.pane_dir("main_0_1"));
    assert_eq!(
        vars["CCMUX_CLAUDE_SESSION_ID"],
        metadata["claude_session_id"].as_str().unwrap()
    );
    // The user has no CLAUDE_CONFIG_DIR: defined and empty, which Claude
    // reads as ~/.claude (Linux) or the bare Keychain entry (macOS).
    assert_eq!(vars["CLAUDE_SECURESTORAGE_CONFIG_DIR"], "");
    assert_eq!(vars["PATH"], "/usr/bin");
}

#[test]
fn a_relative_base_dir_still_gives_an_absolute_claude_config_dir() {
    let h = Harness::new();
    let plugin = h.started("base_dir = \"state/claude\"", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let vars = spawn_env(&plugin, "main_0_1", &[]).unwrap();
    assert_eq!(
        PathBuf::from(&vars["CLAUDE_CONFIG_DIR"]),
        h.conf_dir().join("state/claude/main_0_1/config")
    );
}

#[test]
fn a_securestorage_dir_the_user_set_is_kept() {
    let h = Harness::new();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let vars = spawn_env(
        &plugin,
        "main_0_1",
        &[("CLAUDE_SECURESTORAGE_CONFIG_DIR", "/secure/elsewhere")],
    )
    .unwrap();
    assert_eq!(vars["CLAUDE_SECURESTORAGE_CONFIG_DIR"], "/secure/elsewhere");
    // Defined but empty is a choice too.
    let vars = spawn_env(
        &plugin,
        "main_0_1",
        &[("CLAUDE_SECURESTORAGE_CONFIG_DIR", "")],
    )
    .unwrap();
    assert_eq!(vars["CLAUDE_SECURESTORAGE_CONFIG_DIR"], "");
}

#[test]
fn a_user_with_claude_config_dir_logs_in_with_exactly_that_string() {
    let h = Harness::new();
    let raw = format!("{}/work-claude/", h.root().display());
    let env = HostEnvironment {
        home: Some(h.home()),
        claude_config_dir: Some(raw.clone().into()),
    };
    let plugin = h.plugin_with_env("", &env).unwrap();
    start(&plugin, SERVER_A, &[]).unwrap();
    create(&plugin, "main_0_1").unwrap();
    let vars = spawn_env(&plugin, "main_0_1", &[]).unwrap();
    // Byte for byte, trailing slash included: macOS hashes the raw string.
    assert_eq!(vars["CLAUDE_SECURESTORAGE_CONFIG_DIR"], raw);
}

#[test]
fn share_credentials_false_leaves_the_login_per_pane() {
    let h = Harness::new();
    let plugin = h.started("share_credentials = false", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let vars = spawn_env(&plugin, "main_0_1", &[]).unwrap();
    assert!(!vars.contains_key("CLAUDE_SECURESTORAGE_CONFIG_DIR"));
    assert!(vars.contains_key("CLAUDE_CONFIG_DIR"));
}

#[test]
fn extra_env_is_added_last() {
    let h = Harness::new();
    let plugin = h.started(
        "[extra_env]\nDISABLE_AUTOUPDATER = \"1\"\nCLAUDE_SECURESTORAGE_CONFIG_DIR = \"/vault\"",
        SERVER_A,
    );
    create(&plugin, "main_0_1").unwrap();
    let vars = spawn_env(&plugin, "main_0_1", &[("DISABLE_AUTOUPDATER", "0")]).unwrap();
    assert_eq!(vars["DISABLE_AUTOUPDATER"], "1");
    assert_eq!(vars["CLAUDE_SECURESTORAGE_CONFIG_DIR"], "/vault");
}

#[test]
fn a_pane_without_its_dir_is_never_started_unisolated() {
    let h = Harness::new();
    let plugin = h.started("", SERVER_A);
    let err = spawn_env(&plugin, "never_created", &[]).unwrap_err();
    assert_eq!(err.kind, HookErrorKind::Failed);
    assert!(err.message.contains("without isolation"), "{}", err.message);

    create(&plugin, "main_0_1").unwrap();
    fs::remove_dir_all(h.pane_dir("main_0_1")).unwrap();
    let err = spawn_env(&plugin, "main_0_1", &[]).unwrap_err();
    assert!(err.message.contains("without isolation"), "{}", err.message);
    assert!(
        err.message
            .contains(&h.pane_dir("main_0_1").display().to_string()),
        "{}",
        err.message
    );
}

#[test]
fn the_session_id_is_read_back_from_disk_for_a_pane_this_instance_did_not_create() {
    let h = Harness::new();
    let first = h.started("", SERVER_A);
    create(&first, "main_0_1").unwrap();
    let session = metadata_json(&h.pane_dir("main_0_1"))["claude_session_id"].clone();
    stop(&first, SERVER_A);
    drop(first);

    let second = h.plugin("grace_period_ms = 0");
    start(&second, SERVER_A, &["main_0_1"]).unwrap();
    let vars = spawn_env(&second, "main_0_1", &[]).unwrap();
    assert_eq!(vars["CCMUX_CLAUDE_SESSION_ID"], session.as_str().unwrap());

    // Closed (with no grace period): its dir is gone, and it is never
    // started again without one.
    second
        .on_pane_close(&pane("main_0_1"), &PaneExit::exited(0))
        .unwrap();
    assert!(!h.pane_dir("main_0_1").exists());
    let err = spawn_env(&second, "main_0_1", &[]).unwrap_err();
    assert!(err.message.contains("without isolation"), "{}", err.message);
}

#[test]
fn a_project_dir_name_is_cleared_unless_the_user_sets_claude_config_dir_too() {
    // Without the user's own CLAUDE_CONFIG_DIR a plain terminal ignores
    // CLAUDE_CODE_PROJECT_DIR_NAME; in a pane it would move the
    // conversations into a folder the plain terminal never looks in.
    let h = Harness::new();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let vars = spawn_env(
        &plugin,
        "main_0_1",
        &[("CLAUDE_CODE_PROJECT_DIR_NAME", "shared-name")],
    )
    .unwrap();
    assert!(
        !vars.contains_key("CLAUDE_CODE_PROJECT_DIR_NAME"),
        "{vars:?}"
    );

    // With it, the plain terminal uses the name too: kept.
    let h = Harness::new();
    let user_dir = h.root().join("work-claude");
    fs::create_dir_all(&user_dir).unwrap();
    let env = HostEnvironment {
        home: Some(h.home()),
        claude_config_dir: Some(user_dir.into_os_string()),
    };
    let plugin = h.plugin_with_env("", &env).unwrap();
    start(&plugin, SERVER_A, &[]).unwrap();
    create(&plugin, "main_0_1").unwrap();
    let vars = spawn_env(
        &plugin,
        "main_0_1",
        &[("CLAUDE_CODE_PROJECT_DIR_NAME", "shared-name")],
    )
    .unwrap();
    assert_eq!(vars["CLAUDE_CODE_PROJECT_DIR_NAME"], "shared-name");

    // extra_env is the user's explicit choice for panes: it stands.
    let h = Harness::new();
    let plugin = h.started(
        "[extra_env]\nCLAUDE_CODE_PROJECT_DIR_NAME = \"mine\"",
        SERVER_A,
    );
    create(&plugin, "main_0_1").unwrap();
    let vars = spawn_env(&plugin, "main_0_1", &[]).unwrap();
    assert_eq!(vars["CLAUDE_CODE_PROJECT_DIR_NAME"], "mine");
}
