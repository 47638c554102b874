//! Profiles (issue 20): a pane is in one account's Claude dir, chosen at
//! spawn through `CCMUX_PROFILE`, kept in its metadata, and nothing of it
//! reaches another profile's dir.

use std::fs;
use std::path::PathBuf;

use ccmux_plugin_api::{HookErrorKind, PaneExit, Plugin};
use serde_json::json;

use super::*;

/// Profile `work`'s dir in the harness's home.
fn work_dir(h: &Harness) -> PathBuf {
    h.home().join(".claude-work")
}

const WORK: &str = r#"
grace_period_ms = 0
[profiles]
work = "~/.claude-work"
"#;

fn exited() -> PaneExit {
    PaneExit::exited(0)
}

/// A user with two accounts: `default` in ~/.claude + ~/.claude.json,
/// `work` in ~/.claude-work (its .claude.json inside), each with its own
/// identity and a file only it has.
fn two_accounts(h: &Harness) {
    h.write_user_claude_json(&json!({
        "userID": "personal-user",
        "oauthAccount": {"emailAddress": "me@home.example"},
        "mcpServers": {"home-srv": {"command": "home"}},
    }));
    fs::write(
        h.user_claude_dir().join("settings.json"),
        "{\"who\":\"home\"}",
    )
    .unwrap();
    let work = work_dir(h);
    fs::create_dir_all(&work).unwrap();
    fs::write(
        work.join(".claude.json"),
        serde_json::to_vec(&json!({
            "userID": "work-user",
            "oauthAccount": {"emailAddress": "me@work.example"},
            "mcpServers": {"work-srv": {"command": "work"}},
        }))
        .unwrap(),
    )
    .unwrap();
    fs::write(work.join("settings.json"), "{\"who\":\"work\"}").unwrap();
}

/// A new pane `id` made and spawned with `base` as its environment.
fn spawn_in(
    plugin: &IsolationPlugin,
    id: &str,
    base: &[(&str, &str)],
) -> Result<std::collections::BTreeMap<String, String>, HookError> {
    plugin.on_pane_create(&pane(id))?;
    spawn_env(plugin, id, base)
}

/// The refusal a pre-spawn gave, if any.
fn refusal(plugin: &IsolationPlugin, id: &str, base: &[(&str, &str)]) -> Option<String> {
    let vars = env_vars(base);
    let mut env = SpawnEnv::new(&vars);
    plugin.on_pre_spawn(&pane(id), &mut env).unwrap();
    env.refusal().map(str::to_owned)
}

#[test]
fn a_pane_in_a_profile_is_that_accounts_pane_and_no_others() {
    let h = Harness::new();
    two_accounts(&h);
    let plugin = h.started(WORK, SERVER_A);
    let work = work_dir(&h);
    let work_str = work.to_str().unwrap();

    let env = spawn_in(&plugin, "w1", &[("CCMUX_PROFILE", "work")]).unwrap();
    assert_eq!(env["CCMUX_PROFILE"], "work");
    // The login, the dir a nested server takes for the user's, and memory
    // are the work account's.
    assert_eq!(env["CLAUDE_SECURESTORAGE_CONFIG_DIR"], work_str);
    assert_eq!(env["CCMUX_USER_CLAUDE_CONFIG_DIR"], work_str);
    assert_eq!(env["CLAUDE_CODE_REMOTE_MEMORY_DIR"], work_str);
    // Seeded from work's .claude.json, linked to work's dir.
    let seeded = read_json(&pane_file(&h, "w1"));
    assert_eq!(seeded["userID"], "work-user");
    assert_eq!(
        seeded["mcpServers"],
        json!({"work-srv": {"command": "work"}})
    );
    let config = h.pane_dir("w1").join("config");
    assert_eq!(
        fs::read_link(config.join("settings.json")).unwrap(),
        work.join("settings.json")
    );
    assert_eq!(
        fs::read_link(config.join("projects")).unwrap(),
        work.join("projects")
    );
    let metadata = metadata_json(&h.pane_dir("w1"));
    assert_eq!(metadata["profile"], "work");
    assert_eq!(metadata["profile_dir"], work_str);

    // A pane naming none is in `default`, as without profiles.
    let env = spawn_in(&plugin, "p1", &[]).unwrap();
    assert_eq!(env["CCMUX_PROFILE"], "default");
    assert_eq!(metadata_json(&h.pane_dir("p1"))["profile"], "default");
    let refused = refusal(&plugin, "p1", &[("CCMUX_PROFILE", "work")]).unwrap();
    assert!(refused.contains("\"default\""), "{refused}");
    assert_eq!(env["CLAUDE_SECURESTORAGE_CONFIG_DIR"], "");
    assert_eq!(read_json(&pane_file(&h, "p1"))["userID"], "personal-user");
    assert_eq!(
        fs::read_link(h.pane_dir("p1").join("config/projects")).unwrap(),
        h.user_claude_dir().join("projects")
    );
}

#[test]
fn what_a_work_pane_changes_goes_into_the_work_file_only() {
    let h = Harness::new();
    two_accounts(&h);
    let plugin = h.started(WORK, SERVER_A);
    spawn_in(&plugin, "w1", &[("CCMUX_PROFILE", "work")]).unwrap();
    let personal_before = fs::read(h.user_claude_json()).unwrap();

    edit_pane(&h, "w1", |file| {
        file["mcpServers"]["added-at-work"] = json!({"command": "new"});
        file["projects"] = json!({"/repo": {"hasTrustDialogAccepted": true}});
    });
    close(&plugin, "w1", exited()).unwrap();

    let work = read_json(&work_dir(&h).join(".claude.json"));
    assert_eq!(
        work["mcpServers"]["added-at-work"],
        json!({"command": "new"})
    );
    assert_eq!(work["projects"]["/repo"]["hasTrustDialogAccepted"], true);
    assert_eq!(fs::read(h.user_claude_json()).unwrap(), personal_before);
    assert!(!h.pane_dir("w1").exists());
}

#[test]
fn a_work_merge_that_fails_is_kept_in_the_work_store_and_merged_there_later() {
    let h = Harness::new();
    two_accounts(&h);
    let work_json = work_dir(&h).join(".claude.json");
    let plugin = h.started(WORK, SERVER_A);
    spawn_in(&plugin, "w1", &[("CCMUX_PROFILE", "work")]).unwrap();
    edit_pane(&h, "w1", |file| file["theme"] = json!("dark"));
    let good = fs::read(&work_json).unwrap();
    fs::write(&work_json, "{not json").unwrap();
    close(&plugin, "w1", exited()).unwrap();
    stop(&plugin, SERVER_A);

    // Kept in the store of work's file, not in default's.
    assert!(pending(&h).is_empty());
    let stores: Vec<String> = names(&h.base())
        .into_iter()
        .filter(|name| name.starts_with(".pending-carry-back."))
        .collect();
    assert_eq!(stores.len(), 1, "{stores:?}");
    let store = h.base().join(&stores[0]);
    assert_eq!(names(&store).len(), 1, "{:?}", names(&store));

    // Fixed; the next start merges it into work's file, and only there.
    fs::write(&work_json, &good).unwrap();
    let personal_before = fs::read(h.user_claude_json()).unwrap();
    let plugin = h.plugin(WORK);
    start(&plugin, SERVER_A, &[]).unwrap();
    assert_eq!(read_json(&work_json)["theme"], "dark");
    assert_eq!(fs::read(h.user_claude_json()).unwrap(), personal_before);
    assert!(
        names(&store).iter().all(|name| name.starts_with('.')),
        "{:?}",
        names(&store)
    );
}

#[test]
fn a_restored_pane_stays_in_its_profile_and_refuses_another() {
    let h = Harness::new();
    two_accounts(&h);
    let plugin = h.started(WORK, SERVER_A);
    spawn_in(&plugin, "w1", &[("CCMUX_PROFILE", "work")]).unwrap();
    edit_pane(&h, "w1", |file| file["theme"] = json!("kept"));
    stop(&plugin, SERVER_A);
    drop(plugin);

    // Restored naming another profile: refused, with the one it is in.
    let plugin = h.plugin(WORK);
    start(&plugin, SERVER_A, &["w1"]).unwrap();
    plugin.on_pane_create(&pane("w1")).unwrap();
    let refused = refusal(&plugin, "w1", &[("CCMUX_PROFILE", "default")]).unwrap();
    assert!(
        refused.contains("\"work\"") && refused.contains("--profile work"),
        "{refused}"
    );
    // The refused restore keeps everything: a pane that never started
    // keeps the dir it took back.
    plugin
        .on_pane_close(&pane("w1"), &PaneExit::unknown(true))
        .unwrap();
    assert_eq!(read_json(&pane_file(&h, "w1"))["theme"], "kept");

    // Restored naming none: still in work.
    plugin.on_pane_create(&pane("w1")).unwrap();
    let env = spawn_env(&plugin, "w1", &[]).unwrap();
    assert_eq!(env["CCMUX_PROFILE"], "work");
    assert_eq!(read_json(&pane_file(&h, "w1"))["theme"], "kept");
    // And naming its own: the same.
    let env = spawn_env(&plugin, "w1", &[("CCMUX_PROFILE", "work")]).unwrap();
    assert_eq!(env["CCMUX_PROFILE"], "work");
}

#[test]
fn an_unknown_profile_is_refused_with_the_known_ones_and_leaves_nothing() {
    let h = Harness::new();
    two_accounts(&h);
    let plugin = h.started(WORK, SERVER_A);
    plugin.on_pane_create(&pane("x1")).unwrap();
    let refused = refusal(&plugin, "x1", &[("CCMUX_PROFILE", "wrok")]).unwrap();
    assert!(refused.contains("\"wrok\""), "{refused}");
    assert!(refused.contains("default, work"), "{refused}");
    // Nothing of any account went into the pane.
    assert!(!pane_file(&h, "x1").exists());
    assert!(metadata_json(&h.pane_dir("x1")).get("profile").is_none());
    // The host closes a new pane that never started: its dir goes.
    plugin
        .on_pane_close(&pane("x1"), &PaneExit::unknown(true))
        .unwrap();
    assert!(!h.pane_dir("x1").exists());
}

#[test]
fn a_pane_from_before_profiles_is_in_default() {
    let h = Harness::new();
    two_accounts(&h);
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "old").unwrap();
    stop(&plugin, SERVER_A);
    drop(plugin);
    // What a plugin without profiles wrote: no `profile` in the metadata.
    let path = h.pane_dir("old").join(".pane-metadata");
    let mut metadata = metadata_json(&h.pane_dir("old"));
    let fields = metadata.as_object_mut().unwrap();
    fields.remove("profile");
    fields.remove("profile_dir");
    fs::write(&path, serde_json::to_vec(&metadata).unwrap()).unwrap();

    let plugin = h.plugin(WORK);
    start(&plugin, SERVER_A, &["old"]).unwrap();
    plugin.on_pane_create(&pane("old")).unwrap();
    let refused = refusal(&plugin, "old", &[("CCMUX_PROFILE", "work")]).unwrap();
    assert!(refused.contains("\"default\""), "{refused}");
    let env = spawn_env(&plugin, "old", &[]).unwrap();
    assert_eq!(env["CCMUX_PROFILE"], "default");
    assert_eq!(read_json(&pane_file(&h, "old"))["userID"], "personal-user");
}

#[test]
fn a_named_profile_uses_its_own_login_whatever_the_server_inherited() {
    let h = Harness::new();
    two_accounts(&h);
    let plugin = h.started(WORK, SERVER_A);
    let inherited = [("CLAUDE_SECURESTORAGE_CONFIG_DIR", "/somewhere/else")];
    // Default keeps the user's own choice, as before profiles.
    let env = spawn_in(&plugin, "p1", &inherited).unwrap();
    assert_eq!(env["CLAUDE_SECURESTORAGE_CONFIG_DIR"], "/somewhere/else");
    // A named profile's panes would otherwise log in as another account.
    let with_work = [inherited[0], ("CCMUX_PROFILE", "work")];
    let env = spawn_in(&plugin, "w1", &with_work).unwrap();
    assert_eq!(
        env["CLAUDE_SECURESTORAGE_CONFIG_DIR"],
        work_dir(&h).to_str().unwrap()
    );
}

#[test]
fn a_missing_profile_dir_is_left_to_claude_as_defaults_is_and_a_missing_parent_is_refused() {
    let h = Harness::new();
    let plugin = h.started(
        "grace_period_ms = 0\n[profiles]\nnew = \"~/.claude-new\"\ntypo = \"~/no-such/.claude\"",
        SERVER_A,
    );
    let env = spawn_in(&plugin, "n1", &[("CCMUX_PROFILE", "new")]).unwrap();
    let dir = h.home().join(".claude-new");
    // Where Claude logs in and finds the user's dir: the new account's.
    assert_eq!(
        env["CLAUDE_SECURESTORAGE_CONFIG_DIR"],
        dir.to_str().unwrap()
    );
    assert!(!dir.exists(), "made by Claude, not at spawn");
    // What the pane keeps meanwhile goes into it at close.
    let transcript = h.pane_dir("n1").join("config/projects/-repo/s.jsonl");
    fs::create_dir_all(transcript.parent().unwrap()).unwrap();
    fs::write(&transcript, "{}\n").unwrap();
    close(&plugin, "n1", exited()).unwrap();
    assert_eq!(
        fs::read(dir.join("projects/-repo/s.jsonl")).unwrap(),
        b"{}\n"
    );

    // A refusal, not a failure: a typo must not count towards switching
    // the plugin off for every profile.
    plugin.on_pane_create(&pane("t1")).unwrap();
    let refused = refusal(&plugin, "t1", &[("CCMUX_PROFILE", "typo")]).unwrap();
    assert!(
        refused.contains("no-such") && refused.contains("profiles.typo"),
        "{refused}"
    );
    assert!(!h.home().join("no-such").exists());
}

#[test]
fn a_profile_plugins_toml_no_longer_names_keeps_its_panes_dirs() {
    let h = Harness::new();
    two_accounts(&h);
    let plugin = h.started(WORK, SERVER_A);
    spawn_in(&plugin, "w1", &[("CCMUX_PROFILE", "work")]).unwrap();
    edit_pane(&h, "w1", |file| file["theme"] = json!("work-theme"));
    stop(&plugin, SERVER_A);
    drop(plugin);
    let personal_before = fs::read(h.user_claude_json()).unwrap();

    // `work` is gone from the config: the orphan scan must not hand the
    // pane over to `default` (or anywhere): its dir stays.
    let plugin = h.plugin("grace_period_ms = 0");
    start(&plugin, SERVER_A, &[]).unwrap();
    assert_eq!(read_json(&pane_file(&h, "w1"))["theme"], "work-theme");
    assert_eq!(fs::read(h.user_claude_json()).unwrap(), personal_before);
    stop(&plugin, SERVER_A);
    drop(plugin);

    // Back in the config: the next scan hands it to work.
    let plugin = h.plugin(WORK);
    start(&plugin, SERVER_A, &[]).unwrap();
    assert!(!h.pane_dir("w1").exists());
    assert_eq!(
        read_json(&work_dir(&h).join(".claude.json"))["theme"],
        "work-theme"
    );
}

#[test]
fn profile_names_and_dirs_are_checked_when_the_plugin_loads() {
    let h = Harness::new();
    for (toml, needle) in [
        ("[profiles]\ndefault = \"~/.claude-x\"", "user_config_dir"),
        ("[profiles]\n\"a/b\" = \"~/.claude-x\"", "\"a/b\""),
        ("[profiles]\nwork = \"\"", "profiles.work"),
        (
            "base_dir = \"~/.ccmux\"\n[profiles]\nwork = \"~/.ccmux/w\"",
            "inside `base_dir`",
        ),
        ("extra_env = { CCMUX_PROFILE = \"work\" }", "CCMUX_PROFILE"),
    ] {
        let err = h.try_plugin(toml).map(drop).unwrap_err();
        assert_eq!(err.kind, HookErrorKind::Config, "{toml}");
        assert!(err.message.contains(needle), "{toml}: {}", err.message);
    }
    // A relative dir is relative to plugins.toml's dir, as base_dir is.
    let profiles = crate::profiles::Profiles::from_config(
        h.config("[profiles]\nw = \"accounts/w\""),
        &h.conf_dir(),
        &h.env(),
    )
    .unwrap();
    assert_eq!(profiles.names(), ["default", "w"]);
    assert_eq!(
        profiles
            .get("w")
            .unwrap()
            .user
            .as_ref()
            .unwrap()
            .claude_json,
        h.conf_dir().join("accounts/w/.claude.json")
    );
    assert_eq!(
        profiles.get("").unwrap().user.as_ref().unwrap().claude_json,
        h.user_claude_json()
    );
}

/// The environment a ccmux server started inside pane `outer_env` finds
/// (`HostEnvironment::inherited` there): the user's dir is the one the
/// pane recorded, its profile's.
fn nested_in(
    h: &Harness,
    outer_env: &std::collections::BTreeMap<String, String>,
) -> HostEnvironment {
    HostEnvironment {
        home: Some(h.home()),
        claude_config_dir: crate::into_pane::user_claude_dir::users_config_dir(
            Some(outer_env["CLAUDE_CONFIG_DIR"].clone().into()),
            Some(outer_env["CCMUX_USER_CLAUDE_CONFIG_DIR"].clone().into()),
        ),
    }
}

/// Makes `file` unmergeable while `f` runs (a pane closing then keeps its
/// changes pending), and puts it back after.
fn while_invalid(file: &std::path::Path, f: impl FnOnce()) {
    let good = fs::read(file).unwrap();
    fs::write(file, "{not json").unwrap();
    f();
    fs::write(file, good).unwrap();
}

#[test]
fn a_server_inside_a_work_pane_never_merges_another_accounts_pending_changes() {
    let h = Harness::new();
    two_accounts(&h);
    let work_json = work_dir(&h).join(".claude.json");
    let outer = h.started(WORK, SERVER_A);
    // A personal pane's change waits in the pending store of ~/.claude.json.
    spawn_in(&outer, "p1", &[]).unwrap();
    edit_pane(&h, "p1", |f| {
        f["mcpServers"]["personal-only"] = json!({"command": "p"})
    });
    while_invalid(&h.user_claude_json(), || {
        close(&outer, "p1", exited()).unwrap()
    });
    assert_eq!(pending(&h).len(), 1);

    // A server inside a work pane: its `default` is work's dir.
    let env = spawn_in(&outer, "w1", &[("CCMUX_PROFILE", "work")]).unwrap();
    let nested = h.plugin_with_env(WORK, &nested_in(&h, &env)).unwrap();
    start(&nested, SERVER_B, &[]).unwrap();
    let work = read_json(&work_json);
    assert!(work["mcpServers"].get("personal-only").is_none(), "{work}");
    assert_eq!(pending(&h).len(), 1, "still waiting for ~/.claude.json");

    // Its default panes are work's: a change of one that must wait goes
    // into work's file at the next start, never into ~/.claude.json.
    let nenv = spawn_in(&nested, "n1", &[]).unwrap();
    assert_eq!(
        nenv["CLAUDE_CODE_REMOTE_MEMORY_DIR"],
        work_dir(&h).to_str().unwrap()
    );
    assert_eq!(read_json(&pane_file(&h, "n1"))["userID"], "work-user");
    edit_pane(&h, "n1", |f| {
        f["mcpServers"]["work-internal"] = json!({"command": "w"})
    });
    while_invalid(&work_json, || close(&nested, "n1", exited()).unwrap());
    stop(&nested, SERVER_B);
    drop(nested);
    stop(&outer, SERVER_A);
    drop(outer);
    let plain = h.plugin(WORK);
    start(&plain, SERVER_A, &[]).unwrap();
    let personal = read_json(&h.user_claude_json());
    assert!(
        personal["mcpServers"].get("work-internal").is_none(),
        "{personal}"
    );
    assert_eq!(
        personal["mcpServers"]["personal-only"],
        json!({"command": "p"})
    );
    assert_eq!(
        read_json(&work_json)["mcpServers"]["work-internal"],
        json!({"command": "w"})
    );
}

#[test]
fn a_named_pane_in_a_server_inside_a_default_pane_gets_its_own_memory_and_login() {
    let h = Harness::new();
    two_accounts(&h);
    let outer = h.started(WORK, SERVER_A);
    let outer_env = spawn_in(&outer, "p1", &[]).unwrap();
    // What a server inside that pane passes its panes, asking for work.
    let base: Vec<(&str, &str)> = outer_env
        .iter()
        .filter(|(k, _)| k.as_str() != "CCMUX_PROFILE")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("CCMUX_PROFILE", "work")])
        .collect();
    let nested = h.plugin_with_env(WORK, &nested_in(&h, &outer_env)).unwrap();
    start(&nested, SERVER_B, &[]).unwrap();
    let env = spawn_in(&nested, "n1", &base).unwrap();
    let work = work_dir(&h);
    assert_eq!(env["CLAUDE_CODE_REMOTE_MEMORY_DIR"], work.to_str().unwrap());
    assert_eq!(
        env["CLAUDE_SECURESTORAGE_CONFIG_DIR"],
        work.to_str().unwrap()
    );

    // With share_credentials off, an inherited login of another account is
    // dropped in a named profile's pane (kept in default's, as before).
    let off = h.started(&format!("share_credentials = false\n{WORK}"), SERVER_C);
    let inherited = [("CLAUDE_SECURESTORAGE_CONFIG_DIR", "")];
    let env = spawn_in(&off, "d1", &inherited).unwrap();
    assert_eq!(env["CLAUDE_SECURESTORAGE_CONFIG_DIR"], "");
    let env = spawn_in(&off, "w2", &[inherited[0], ("CCMUX_PROFILE", "work")]).unwrap();
    assert!(
        !env.contains_key("CLAUDE_SECURESTORAGE_CONFIG_DIR"),
        "{env:?}"
    );
}

#[test]
fn a_pane_whose_profile_now_points_elsewhere_is_refused_and_handed_to_no_one() {
    let h = Harness::new();
    two_accounts(&h);
    let plugin = h.started(WORK, SERVER_A);
    spawn_in(&plugin, "w1", &[("CCMUX_PROFILE", "work")]).unwrap();
    edit_pane(&h, "w1", |f| {
        f["mcpServers"]["from-old-account"] = json!({"command": "x"})
    });
    stop(&plugin, SERVER_A);
    drop(plugin);

    let other = h.home().join(".claude-other");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join(".claude.json"), "{\"userID\":\"other-user\"}").unwrap();
    let other_before = fs::read(other.join(".claude.json")).unwrap();
    let moved = "grace_period_ms = 0\n[profiles]\nwork = \"~/.claude-other\"\n";
    // Restored: refused, naming both dirs and the fix.
    let plugin = h.plugin(moved);
    start(&plugin, SERVER_A, &["w1"]).unwrap();
    plugin.on_pane_create(&pane("w1")).unwrap();
    let refused = refusal(&plugin, "w1", &[]).unwrap();
    assert!(
        refused.contains(".claude-work") && refused.contains(".claude-other"),
        "{refused}"
    );
    plugin
        .on_pane_close(&pane("w1"), &PaneExit::unknown(true))
        .unwrap();
    stop(&plugin, SERVER_A);
    drop(plugin);
    // Not restored: the orphan scan keeps it rather than hand it to the
    // account now called work.
    let plugin = h.plugin(moved);
    start(&plugin, SERVER_A, &[]).unwrap();
    assert_eq!(fs::read(other.join(".claude.json")).unwrap(), other_before);
    assert!(pane_file(&h, "w1").exists());
}

#[test]
fn a_pane_filled_in_part_or_without_a_home_stays_in_default() {
    // A spawn that stopped after its first links (a crash, a failing
    // link): the profile was recorded before anything went in.
    let h = Harness::new();
    two_accounts(&h);
    let plugin = h.started(WORK, SERVER_A);
    plugin.on_pane_create(&pane("p1")).unwrap();
    let config = h.pane_dir("p1").join("config");
    fs::create_dir_all(h.home().join(".claude/projects")).unwrap();
    std::os::unix::fs::symlink(h.home().join(".claude/projects"), config.join("projects")).unwrap();
    // Metadata from before profiles: the filled config/ says `default`.
    let refused = refusal(&plugin, "p1", &[("CCMUX_PROFILE", "work")]).unwrap();
    assert!(refused.contains("\"default\""), "{refused}");

    // No home dir: `default` has no dir, but its panes are still its own.
    let work = h.root().join("work-abs");
    fs::create_dir_all(&work).unwrap();
    let toml = format!(
        "grace_period_ms = 0\n[profiles]\nwork = \"{}\"\n",
        work.display()
    );
    let nohome = HostEnvironment {
        home: None,
        claude_config_dir: None,
    };
    let plugin = h.plugin_with_env(&toml, &nohome).unwrap();
    start(&plugin, SERVER_B, &[]).unwrap();
    assert_eq!(
        spawn_in(&plugin, "n1", &[]).unwrap()["CCMUX_PROFILE"],
        "default"
    );
    assert!(refusal(&plugin, "n1", &[("CCMUX_PROFILE", "work")]).is_some());
}

#[test]
fn two_accounts_in_one_dir_or_a_dir_reaching_the_base_are_refused() {
    let h = Harness::new();
    fs::create_dir_all(h.base()).unwrap();
    std::os::unix::fs::symlink(h.base(), h.home().join("b")).unwrap();
    let ancestor = format!("[profiles]\nwork = \"{}\"", h.root().display());
    for (toml, needle) in [
        (
            "[profiles]\na = \"~/.claude-x\"\nb = \"~/.claude-x\"",
            "same Claude dir",
        ),
        // Beside the usual ~/.claude.json: two files, one dir and login.
        ("[profiles]\nwork = \"~/.claude\"", "same Claude dir"),
        ("[profiles]\nwork = \"~/b/p1/config\"", "base dir"),
        (ancestor.as_str(), "base dir"),
        (
            "[profiles]\nWork = \"~/.a\"\nwork = \"~/.b\"",
            "only in case",
        ),
        (
            "extra_env = { CLAUDE_CODE_REMOTE_MEMORY_DIR = \"/x\" }\n[profiles]\nw = \"~/.w\"",
            "CLAUDE_CODE_REMOTE_MEMORY_DIR",
        ),
    ] {
        let Err(err) = h.try_plugin(toml).map(drop) else {
            panic!("accepted: {toml:?}");
        };
        assert_eq!(err.kind, HookErrorKind::Config, "{toml}");
        assert!(err.message.contains(needle), "{toml}: {}", err.message);
    }
    // Without profiles, extra_env may still set them (one account).
    h.try_plugin("extra_env = { CLAUDE_CODE_REMOTE_MEMORY_DIR = \"/x\" }")
        .unwrap();
}
