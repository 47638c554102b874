//! Keeping the user's identity: the seeded `.claude.json` (and its cache)
//! and the share links.

use std::fs;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::*;

fn user_file() -> serde_json::Value {
    json!({
        "hasCompletedOnboarding": true,
        "theme": "dark",
        "oauthAccount": {"emailAddress": "user@example.com", "accountUuid": "abc"},
        "userID": "u-123",
        "mcpServers": {"fs": {"command": "mcp-fs"}},
        "projects": {
            "/home/user/repo": {
                "history": ["a", "b"],
                "allowedTools": ["Bash(ls)"],
                "hasTrustDialogAccepted": true,
                "lastCost": 1.5,
                "mcpServers": {"local": {"command": "mcp-local"}},
            },
            "/home/user/costs-only": {"lastCost": 0.1, "history": []},
        },
        "cachedStatsigGates": {"gate": true},
        "numStartups": 42,
    })
}

fn pane_claude_json(h: &Harness, id: &str) -> serde_json::Value {
    let path = h.pane_dir(id).join("config/.claude.json");
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn parse_count(plugin: &IsolationPlugin) -> usize {
    plugin
        .profiles
        .default_state()
        .seed
        .as_ref()
        .unwrap()
        .parse_count()
}

#[test]
fn a_new_pane_gets_the_user_level_keys_and_each_projects_own_setup() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();

    let seeded = pane_claude_json(&h, "main_0_1");
    let mut keys: Vec<&str> = seeded
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "hasCompletedOnboarding",
            "mcpServers",
            "oauthAccount",
            "projects",
            "theme",
            "userID"
        ]
    );
    assert_eq!(seeded["oauthAccount"], user_file()["oauthAccount"]);
    // Per project: trust, tools and local servers; never history or costs,
    // and no project that has nothing else.
    assert_eq!(
        seeded["projects"],
        json!({"/home/user/repo": {
            "allowedTools": ["Bash(ls)"],
            "hasTrustDialogAccepted": true,
            "mcpServers": {"local": {"command": "mcp-local"}},
        }})
    );
    // The pane's record of its seed holds the same.
    let record: serde_json::Value = serde_json::from_slice(
        &fs::read(h.pane_dir("main_0_1").join(".claude-json.seed")).unwrap(),
    )
    .unwrap();
    assert_eq!(record, seeded);
    assert_eq!(
        mode(&h.pane_dir("main_0_1").join(".claude-json.seed")),
        0o600
    );
    assert_eq!(
        mode(&h.pane_dir("main_0_1").join("config/.claude.json")),
        0o600
    );
}

#[test]
fn seed_keys_can_be_configured() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started(
        "seed_keys = [\"theme\", \"numStartups\"]\nproject_keys = []",
        SERVER_A,
    );
    create(&plugin, "main_0_1").unwrap();
    assert_eq!(
        pane_claude_json(&h, "main_0_1"),
        json!({"theme": "dark", "numStartups": 42})
    );
}

#[test]
fn the_user_file_is_parsed_once_and_again_only_when_it_changes() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("", SERVER_A);
    for id in ["p1", "p2", "p3"] {
        create(&plugin, id).unwrap();
    }
    assert_eq!(parse_count(&plugin), 1);

    // New content (and length): parsed again, new panes see it.
    let mut changed = user_file();
    changed["theme"] = json!("light-daltonized");
    h.write_user_claude_json(&changed);
    create(&plugin, "p4").unwrap();
    assert_eq!(parse_count(&plugin), 2);
    assert_eq!(pane_claude_json(&h, "p4")["theme"], "light-daltonized");
    assert_eq!(pane_claude_json(&h, "p1")["theme"], "dark");

    // Same length, new modification time: parsed again.
    let file = fs::File::options()
        .write(true)
        .open(h.user_claude_json())
        .unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(file);
    create(&plugin, "p5").unwrap();
    assert_eq!(parse_count(&plugin), 3);

    // Unchanged: not parsed.
    create(&plugin, "p6").unwrap();
    assert_eq!(parse_count(&plugin), 3);
}

#[test]
fn a_pane_that_has_its_own_claude_json_keeps_it() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let own = h.pane_dir("main_0_1").join("config/.claude.json");
    fs::write(&own, "{\"theme\":\"pane's own\",\"projects\":{}}").unwrap();

    stop(&plugin, SERVER_A);
    start(&plugin, SERVER_A, &["main_0_1"]).unwrap();
    create(&plugin, "main_0_1").unwrap();
    assert_eq!(
        fs::read_to_string(&own).unwrap(),
        "{\"theme\":\"pane's own\",\"projects\":{}}"
    );
}

#[test]
fn a_missing_or_invalid_user_file_means_no_seed_and_no_error() {
    let h = Harness::new();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "p1").unwrap();
    assert!(!h.pane_dir("p1").join("config/.claude.json").exists());

    fs::write(h.user_claude_json(), "{\"theme\": \"dark\", truncated").unwrap();
    create(&plugin, "p2").unwrap();
    assert!(!h.pane_dir("p2").join("config/.claude.json").exists());

    fs::write(h.user_claude_json(), "[1, 2, 3]").unwrap();
    create(&plugin, "p3").unwrap();
    assert!(!h.pane_dir("p3").join("config/.claude.json").exists());
}

#[test]
fn an_invalid_user_file_falls_back_to_the_last_valid_seed() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("", SERVER_A);
    create(&plugin, "p1").unwrap();
    // What a read racing Claude's in-place rewrite can see.
    fs::write(h.user_claude_json(), "{\"theme\": \"da").unwrap();
    create(&plugin, "p2").unwrap();
    assert_eq!(pane_claude_json(&h, "p2")["theme"], "dark");
}

#[test]
fn the_servers_claude_config_dir_is_the_seed_source() {
    let h = Harness::new();
    let custom = h.root().join("custom-claude");
    fs::create_dir_all(&custom).unwrap();
    fs::write(custom.join(".claude.json"), "{\"theme\": \"custom\"}").unwrap();
    fs::write(custom.join("settings.json"), "{}").unwrap();
    h.write_user_claude_json(&user_file());
    let env = HostEnvironment {
        home: Some(h.home()),
        claude_config_dir: Some(custom.clone().into_os_string()),
    };
    let plugin = h.plugin_with_env("", &env).unwrap();
    start(&plugin, SERVER_A, &[]).unwrap();
    create(&plugin, "main_0_1").unwrap();
    assert_eq!(pane_claude_json(&h, "main_0_1"), json!({"theme": "custom"}));
    let config = h.pane_dir("main_0_1").join("config");
    assert_eq!(
        fs::read_link(config.join("settings.json")).unwrap(),
        custom.join("settings.json")
    );
    let vars = spawn_env(&plugin, "main_0_1", &[]).unwrap();
    assert_eq!(
        vars["CLAUDE_SECURESTORAGE_CONFIG_DIR"],
        custom.display().to_string()
    );
}

#[test]
fn share_links_point_at_what_the_user_has() {
    let h = Harness::new();
    let user = h.user_claude_dir();
    fs::write(user.join("settings.json"), "{\"model\": \"opus\"}").unwrap();
    fs::create_dir_all(user.join("agents")).unwrap();
    fs::write(user.join("agents/reviewer.md"), "review").unwrap();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();

    let config = h.pane_dir("main_0_1").join("config");
    assert_eq!(
        fs::read_link(config.join("settings.json")).unwrap(),
        user.join("settings.json")
    );
    assert_eq!(
        fs::read_link(config.join("agents")).unwrap(),
        user.join("agents")
    );
    assert_eq!(
        fs::read_to_string(config.join("agents/reviewer.md")).unwrap(),
        "review"
    );
    // What the user lacks is not linked.
    for missing in [
        "CLAUDE.md",
        "commands",
        "skills",
        "output-styles",
        "plugins",
    ] {
        assert!(
            fs::symlink_metadata(config.join(missing)).is_err(),
            "{missing}"
        );
    }
}

#[test]
fn share_links_never_replace_what_the_pane_has() {
    let h = Harness::new();
    let user = h.user_claude_dir();
    fs::write(user.join("settings.json"), "user's").unwrap();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let settings = h.pane_dir("main_0_1").join("config/settings.json");
    fs::remove_file(&settings).unwrap();
    fs::write(&settings, "pane's own").unwrap();
    fs::write(user.join("CLAUDE.md"), "memory").unwrap();

    stop(&plugin, SERVER_A);
    start(&plugin, SERVER_A, &["main_0_1"]).unwrap();
    create(&plugin, "main_0_1").unwrap();
    assert!(!is_symlink(&settings));
    assert_eq!(fs::read_to_string(&settings).unwrap(), "pane's own");
    assert_eq!(
        fs::read_to_string(user.join("settings.json")).unwrap(),
        "user's"
    );
    // Added by the user since: linked on restore.
    assert!(is_symlink(&h.pane_dir("main_0_1").join("config/CLAUDE.md")));
}

#[test]
fn the_share_list_can_be_configured() {
    let h = Harness::new();
    let user = h.user_claude_dir();
    fs::write(user.join("settings.json"), "{}").unwrap();
    fs::write(user.join("keybindings.json"), "{}").unwrap();
    fs::create_dir_all(user.join("agents")).unwrap();
    let plugin = h.started("share = [\"keybindings.json\"]", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let config = h.pane_dir("main_0_1").join("config");
    assert!(is_symlink(&config.join("keybindings.json")));
    assert!(fs::symlink_metadata(config.join("settings.json")).is_err());
    assert!(fs::symlink_metadata(config.join("agents")).is_err());
}

#[test]
fn project_entries_that_are_not_objects_hold_nothing_and_break_nothing() {
    let h = Harness::new();
    h.write_user_claude_json(&json!({
        "theme": "dark",
        "projects": {"/a": null, "/b": [1, 2], "/c": {"hasTrustDialogAccepted": true}},
    }));
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    assert_eq!(
        pane_claude_json(&h, "main_0_1"),
        json!({"theme": "dark", "projects": {"/c": {"hasTrustDialogAccepted": true}}})
    );
    h.write_user_claude_json(&json!({"theme": "light", "projects": null}));
    create(&plugin, "main_0_2").unwrap();
    assert_eq!(pane_claude_json(&h, "main_0_2"), json!({"theme": "light"}));
}
