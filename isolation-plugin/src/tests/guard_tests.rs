//! The carry-back's guard rails and its paths without waiting (issue 15):
//! a pane carries back what a person did in it, never what a reset, a
//! wrong type or an unreadable item did; nobody waits for a merge's looks.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ccmux_plugin_api::PaneExit;
use serde_json::{json, Value};

use super::*;
use crate::out_of_pane::review::CarryBackStore;

/// A user's file as a real user has it: who they are, servers, trust.
fn user_file() -> Value {
    json!({
        "numStartups": 42,
        "userID": "the-users-id",
        "firstStartTime": "2025-01-01T00:00:00.000Z",
        "hasCompletedOnboarding": true,
        "lastOnboardingVersion": "2.1.0",
        "oauthAccount": {"emailAddress": "me@example.com", "accountUuid": "acc-1"},
        "theme": "dark",
        "mcpServers": {"one": {"command": "one"}, "two": {"command": "two"}},
        "projects": {
            "/work/a": {"hasTrustDialogAccepted": true, "allowedTools": ["Bash"], "history": []},
            "/work/b": {"hasTrustDialogAccepted": true, "mcpServers": {"local": {"command": "l"}}},
        },
    })
}

fn store(h: &Harness) -> CarryBackStore {
    CarryBackStore::open(h.config("grace_period_ms = 0"), &h.conf_dir(), &h.env()).unwrap()
}

/// The user's identity, servers and trust, as `user_file` has them.
fn assert_intact(user: &Value) {
    let original = user_file();
    for key in [
        "userID",
        "firstStartTime",
        "hasCompletedOnboarding",
        "oauthAccount",
    ] {
        assert_eq!(user[key], original[key], "{key} changed: {user:#}");
    }
    for server in ["one", "two"] {
        assert_eq!(
            user["mcpServers"][server], original["mcpServers"][server],
            "{user:#}"
        );
    }
    for project in ["/work/a", "/work/b"] {
        assert_eq!(
            user["projects"][project]["hasTrustDialogAccepted"], true,
            "{project} untrusted: {user:#}"
        );
    }
    assert_eq!(
        user["projects"]["/work/b"]["mcpServers"]["local"],
        json!({"command": "l"})
    );
}

#[test]
fn a_reset_pane_deletes_nothing_of_the_user_and_its_changes_wait_for_review() {
    for reset in [
        json!({}),
        json!({"numStartups": 1}),
        json!({"numStartups": 1, "userID": "fresh-id", "firstStartTime": "2026-12-06T00:00:00.000Z"}),
    ] {
        let h = Harness::new();
        h.write_user_claude_json(&user_file());
        let plugin = h.started("grace_period_ms = 0", SERVER_A);
        create(&plugin, "main_0_1").unwrap();
        // Reset to defaults, then the person added a server in the pane.
        let mut file = reset.clone();
        file["mcpServers"] = json!({"added-after": {"command": "new"}});
        // A reset writes defaults: not to be told from a choice, so held.
        file["theme"] = json!("light");
        fs::write(
            pane_file(&h, "main_0_1"),
            serde_json::to_vec(&file).unwrap(),
        )
        .unwrap();
        let logs = logs_of(|| close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap());
        let user = read_json(&h.user_claude_json());
        assert_intact(&user);
        // What the person did after the reset went in.
        assert_eq!(
            user["mcpServers"]["added-after"],
            json!({"command": "new"}),
            "{reset}"
        );
        // One WARN naming the pane, what was not deleted, and how to apply.
        let warn: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warn.len(), 1, "{logs}");
        for needle in [
            "main_0_1",
            "looks reset",
            "oauthAccount",
            "host-shim carry-back apply",
        ] {
            assert!(warn[0].contains(needle), "{needle} missing: {}", warn[0]);
        }
        // Kept, held for the user, and the review lists item by item.
        assert!(!h.pane_dir("main_0_1").exists());
        let kept = pending(&h);
        assert_eq!(kept.len(), 1, "{kept:?}");
        let entries = store(&h).list().unwrap();
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert!(entry.held.is_some(), "{entry:?}");
        let removal = entry
            .items
            .iter()
            .find(|item| item.item == "oauthAccount")
            .unwrap_or_else(|| panic!("{entry:?}"));
        assert!(
            removal.pane.is_none() && removal.held_because.is_some(),
            "{removal:?}"
        );
        assert_eq!(removal.user, Some(user_file()["oauthAccount"].clone()));
        assert_eq!(user["theme"], "dark");
        assert!(
            entry
                .items
                .iter()
                .any(|item| item.item == "theme" && item.held_because.is_some()),
            "{entry:?}"
        );
        // Held entries are the user's to decide: a server start leaves them.
        stop(&plugin, SERVER_A);
        start(&plugin, SERVER_A, &[]).unwrap();
        assert_intact(&read_json(&h.user_claude_json()));
        assert_eq!(pending(&h), kept);
        // Applied by hand: the deletions go in, and the entry goes.
        let written = store(&h).apply(&entry.name).unwrap();
        assert!(written > 0);
        let user = read_json(&h.user_claude_json());
        assert!(user.get("oauthAccount").is_none(), "{user:#}");
        assert!(pending(&h).is_empty());
    }
}

#[test]
fn a_held_entry_can_be_dropped_without_changing_the_user() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    fs::write(pane_file(&h, "main_0_1"), "{}").unwrap();
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    let before = fs::read(h.user_claude_json()).unwrap();
    let name = store(&h).list().unwrap()[0].name.clone();
    store(&h).drop_entry(&name).unwrap();
    assert!(pending(&h).is_empty());
    assert_eq!(fs::read(h.user_claude_json()).unwrap(), before);
    assert!(store(&h).apply(&name).is_err());
}

#[test]
fn a_logout_in_a_pane_is_carried_back_as_plain_logout_makes_it() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    // What 2.1.197's /logout does to the file (performLogout with
    // clearOnboarding): the account goes, onboarding is to be done again.
    edit_pane(&h, "main_0_1", |pane| {
        pane.as_object_mut().unwrap().remove("oauthAccount");
        pane["hasCompletedOnboarding"] = json!(false);
    });
    let logs = logs_of(|| close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap());
    let user = read_json(&h.user_claude_json());
    assert!(user.get("oauthAccount").is_none(), "{user:#}");
    assert_eq!(user["hasCompletedOnboarding"], false);
    assert_eq!(user["mcpServers"], user_file()["mcpServers"]);
    assert!(!logs.contains("WARN"), "{logs}");
    assert!(pending(&h).is_empty());
}

#[test]
fn a_value_of_the_wrong_type_changes_nothing_and_the_rest_goes_in() {
    for bad in [json!(null), json!(5), json!("str"), json!([1])] {
        let h = Harness::new();
        h.write_user_claude_json(&user_file());
        let plugin = h.started("grace_period_ms = 0", SERVER_A);
        create(&plugin, "main_0_1").unwrap();
        edit_pane(&h, "main_0_1", |pane| {
            pane["mcpServers"] = bad.clone();
            pane["projects"]["/work/b"]["mcpServers"] = bad.clone();
            pane["theme"] = json!("light");
        });
        let logs = logs_of(|| close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap());
        let user = read_json(&h.user_claude_json());
        assert_intact(&user);
        assert_eq!(user["theme"], "light", "{bad}");
        assert!(
            logs.lines().any(|l| l.contains("WARN")
                && l.contains("another JSON type")
                && l.contains("mcpServers")),
            "{bad}: {logs}"
        );
        // Kept for the user to see.
        let entries = store(&h).list().unwrap();
        assert_eq!(entries.len(), 1, "{bad}");
        assert!(entries[0].held.is_some());
    }
}

#[test]
fn a_project_entry_that_is_not_an_object_in_the_pane_deletes_nothing() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    edit_pane(&h, "main_0_1", |pane| {
        pane["projects"]["/work/a"] = json!(null);
        pane["projects"]["/work/new"] = json!({"hasTrustDialogAccepted": true});
    });
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    let user = read_json(&h.user_claude_json());
    assert_intact(&user);
    assert_eq!(user["projects"]["/work/a"]["allowedTools"], json!(["Bash"]));
    assert_eq!(
        user["projects"]["/work/new"]["hasTrustDialogAccepted"],
        true
    );
}

/// A `.claude.json` whose `oauthAccount` holds a lone surrogate escape, as
/// JavaScript writes a name cut in the middle of an emoji.
const SURROGATE_USER: &str = r#"{"userID": "u1", "hasCompletedOnboarding": true, "theme": "dark",
  "oauthAccount": {"displayName": "cut \ud83d"},
  "mcpServers": {"one": {"command": "one"}},
  "projects": {"/w": {"hasTrustDialogAccepted": true, "allowedTools": ["\ud83d"]}}}"#;

#[test]
fn an_item_that_cannot_be_parsed_affects_only_itself() {
    let h = Harness::new();
    fs::write(h.user_claude_json(), SURROGATE_USER).unwrap();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    // Every other item is seeded.
    let seeded = read_json(&pane_file(&h, "main_0_1"));
    assert_eq!(seeded["userID"], "u1");
    assert_eq!(seeded["mcpServers"]["one"], json!({"command": "one"}));
    assert_eq!(seeded["projects"]["/w"]["hasTrustDialogAccepted"], true);
    assert!(seeded.get("oauthAccount").is_none());
    // The pane changes other items, and writes its own unparsable one.
    let mut text = fs::read_to_string(pane_file(&h, "main_0_1")).unwrap();
    text = text.replacen(
        "\"theme\":\"dark\"",
        "\"theme\":\"light\",\"primaryApiKey\":\"x\\udc00\"",
        1,
    );
    fs::write(pane_file(&h, "main_0_1"), text).unwrap();
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    let merged = fs::read_to_string(h.user_claude_json()).unwrap();
    assert!(merged.contains("\"theme\": \"light\""), "{merged}");
    // The user's unparsable items are written back byte for byte.
    assert!(
        merged.contains(r#""displayName": "cut \ud83d""#),
        "{merged}"
    );
    assert!(merged.contains(r#"["\ud83d"]"#), "{merged}");
    assert!(!merged.contains("primaryApiKey"), "{merged}");
    assert!(pending(&h).is_empty(), "{:?}", pending(&h));
}

#[test]
fn thirty_panes_of_one_server_closing_at_once_all_merge_and_none_is_pending() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = Arc::new(h.started("grace_period_ms = 0", SERVER_A));
    let ids: Vec<String> = (0..30).map(|n| format!("p_0_{n}")).collect();
    for id in &ids {
        create(&plugin, id).unwrap();
        edit_pane(&h, id, |pane| {
            pane["mcpServers"][format!("server-{id}")] = json!({"command": "x"});
        });
    }
    let barrier = Arc::new(std::sync::Barrier::new(ids.len()));
    let closing: Vec<_> = ids
        .iter()
        .map(|id| {
            let (plugin, barrier, id) = (Arc::clone(&plugin), Arc::clone(&barrier), id.clone());
            std::thread::spawn(move || {
                barrier.wait();
                logs_of(|| close(&plugin, &id, PaneExit::exited(0)).unwrap())
            })
        })
        .collect();
    let logs: String = closing.into_iter().map(|t| t.join().unwrap()).collect();
    stop(&plugin, SERVER_A);
    assert!(!logs.contains("another process"), "{logs}");
    assert!(!logs.contains("WARN"), "{logs}");
    let user = read_json(&h.user_claude_json());
    for id in &ids {
        assert!(
            user["mcpServers"][format!("server-{id}")].is_object(),
            "{id}"
        );
    }
    assert!(pending(&h).is_empty(), "{:?}", pending(&h));
}

#[test]
fn a_merge_replaces_the_file_by_rename_and_a_reader_never_sees_it_partial() {
    let h = Harness::new();
    let mut user = user_file();
    // Large enough that an in-place write would be seen half done.
    user["projects"]["/work/a"]["history"] = json!((0..20_000)
        .map(|n| json!({"display": format!("prompt {n}")}))
        .collect::<Vec<_>>());
    h.write_user_claude_json(&user);
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, stop_reading) = (h.user_claude_json(), Arc::clone(&stop_reading));
        std::thread::spawn(move || {
            let (mut reads, mut bad) = (0, Vec::new());
            while !stop_reading.load(Ordering::Relaxed) {
                let mut text = String::new();
                fs::File::open(&path)
                    .unwrap()
                    .read_to_string(&mut text)
                    .unwrap();
                if serde_json::from_str::<Value>(&text).is_err() {
                    bad.push(text.len());
                }
                reads += 1;
            }
            (reads, bad)
        })
    };
    for n in 0..5 {
        let id = format!("p_0_{n}");
        let before = fs::metadata(h.user_claude_json()).unwrap().ino();
        create(&plugin, &id).unwrap();
        edit_pane(&h, &id, |pane| pane["theme"] = json!(format!("theme-{n}")));
        close(&plugin, &id, PaneExit::exited(0)).unwrap();
        assert_ne!(
            fs::metadata(h.user_claude_json()).unwrap().ino(),
            before,
            "merge {n} wrote in place"
        );
    }
    stop_reading.store(true, Ordering::Relaxed);
    let (reads, bad) = reader.join().unwrap();
    assert!(reads > 0);
    assert!(
        bad.is_empty(),
        "a reader saw the file partial or empty: {bad:?}"
    );
    // The looks after each merge never undo a later one.
    let verifier = &plugin
        .profiles
        .default_state()
        .handover
        .claude_json
        .as_ref()
        .unwrap()
        .verifier;
    assert!(eventually(|| !verifier.busy()));
    assert_eq!(read_json(&h.user_claude_json())["theme"], "theme-4");
}

#[test]
fn the_newest_backup_is_the_users_file_as_it_was_before_the_merge() {
    let h = Harness::new();
    // Bytes as a person or another tool wrote them, not as serde would.
    let original = "{\"theme\":   \"dark\", \"userID\": \"u\",\n\"mcpServers\": {}}\n";
    fs::write(h.user_claude_json(), original).unwrap();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    for (n, theme) in ["light", "dark-ansi"].iter().enumerate() {
        let before = fs::read(h.user_claude_json()).unwrap();
        let id = format!("p_0_{n}");
        create(&plugin, &id).unwrap();
        edit_pane(&h, &id, |pane| pane["theme"] = json!(theme));
        close(&plugin, &id, PaneExit::exited(0)).unwrap();
        let backups = h.base().join(".claude-json-backups");
        let mut names = names(&backups);
        names.sort_by_key(|name| name.rsplit('.').next().unwrap().parse::<u128>().unwrap());
        let newest = fs::read(backups.join(names.last().unwrap())).unwrap();
        assert_eq!(newest, before, "backup {n}");
        assert_eq!(names.len(), n + 1, "{names:?}");
    }
    assert_eq!(read_json(&h.user_claude_json())["theme"], "dark-ansi");
}

#[test]
fn a_server_start_does_not_wait_for_the_pending_pass_and_a_stop_ends_it() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    for n in 0..3 {
        let id = format!("p_0_{n}");
        create(&plugin, &id).unwrap();
        edit_pane(&h, &id, |pane| pane["theme"] = json!(format!("theme-{n}")));
    }
    // Unmergeable while the panes close: their changes go pending.
    fs::write(h.user_claude_json(), "{ not json").unwrap();
    for n in 0..3 {
        close(&plugin, &format!("p_0_{n}"), PaneExit::exited(0)).unwrap();
    }
    stop(&plugin, SERVER_A);
    assert_eq!(pending(&h).len(), 3);
    h.write_user_claude_json(&user_file());
    // Another process holds the merge lock: the pass cannot merge.
    let lock = fs::File::create(h.user_claude_dir().join(".ccmux-claude-json.lock")).unwrap();
    lock.lock().unwrap();
    let plugin = Arc::new(plugin);
    // The start returns, and a pane is created and spawned, while the pass
    // waits: the panes never wait for it.
    let started = {
        let plugin = Arc::clone(&plugin);
        within_5s(move || {
            plugin
                .on_server_start(&ccmux_plugin_api::ServerStart {
                    server_id: SERVER_A.into(),
                    instance_id: "i2".into(),
                    state_dir: "/nonexistent-state".into(),
                    live_panes: Default::default(),
                })
                .unwrap();
            create(&plugin, "fresh").unwrap();
        })
    };
    assert!(
        started.is_some(),
        "the server start waited for the pending pass"
    );
    assert_eq!(pending(&h).len(), 3);
    // A stop ends the pass at once; everything is still pending.
    let stopped = {
        let plugin = Arc::clone(&plugin);
        within_5s(move || {
            plugin
                .on_server_stop(&ccmux_plugin_api::ServerStop {
                    instance_id: "i2".into(),
                })
                .unwrap()
        })
    };
    assert!(stopped.is_some(), "the stop waited for the pending pass");
    assert_eq!(pending(&h).len(), 3);
    assert_eq!(read_json(&h.user_claude_json())["theme"], "dark");
    // Free again: the next start merges all three in one write, latest
    // choice last.
    drop(lock);
    start(&plugin, SERVER_A, &[]).unwrap();
    assert_eq!(read_json(&h.user_claude_json())["theme"], "theme-2");
    assert!(pending(&h).is_empty(), "{:?}", pending(&h));
}

#[test]
fn a_pending_entry_file_over_its_cap_is_refused_without_being_read() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let store_dir = h.base().join(".pending-carry-back");
    let entry = store_dir.join("00000001767225600000-main_0_1");
    fs::create_dir_all(&entry).unwrap();
    fs::set_permissions(
        h.base(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    fs::set_permissions(
        &store_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    // A sparse file of 1 GiB: reading it whole would take a second and a GiB.
    let huge = fs::File::create(entry.join(".claude.json")).unwrap();
    huge.set_len(1 << 30).unwrap();
    let plugin = h.plugin("grace_period_ms = 0");
    let logs = logs_of(|| start(&plugin, SERVER_A, &[]).unwrap());
    assert!(
        logs.lines()
            .any(|l| l.contains("WARN") && l.contains("cannot be read") && l.contains("bytes")),
        "{logs}"
    );
    // Left as it was, for the user.
    assert_eq!(
        fs::metadata(entry.join(".claude.json")).unwrap().len(),
        1 << 30
    );
    assert_intact(&read_json(&h.user_claude_json()));
}

#[test]
fn many_pending_entries_give_one_line_not_one_each() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    for n in 0..12 {
        let id = format!("p_0_{n}");
        create(&plugin, &id).unwrap();
        fs::write(pane_file(&h, &id), "{}").unwrap();
        close(&plugin, &id, PaneExit::exited(0)).unwrap();
    }
    stop(&plugin, SERVER_A);
    assert_eq!(pending(&h).len(), 12);
    let logs = logs_of(|| start(&plugin, SERVER_A, &[]).unwrap());
    let warns: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warns.len(), 1, "{logs}");
    assert!(warns[0].contains("held=12"), "{}", warns[0]);
}

/// What 2.1.332 writes for every folder it opens (seen with the real CLI).
fn project_defaults() -> Value {
    json!({"allowedTools": [], "mcpContextUris": [], "mcpServers": {},
           "enabledMcpjsonServers": [], "disabledMcpjsonServers": [],
           "hasTrustDialogAccepted": false,
           "hasClaudeMdExternalIncludesApproved": false,
           "hasClaudeMdExternalIncludesWarningShown": false})
}

#[test]
fn claudes_own_reset_of_a_one_folder_user_is_held_whole() {
    // Found by a hostile review: the defaults Claude writes for the folder
    // it opens count as items the pane still has, so "most of the seed"
    // alone let this reset through.
    let h = Harness::new();
    let mut project = project_defaults();
    project["hasTrustDialogAccepted"] = json!(true);
    let user = json!({
        "numStartups": 12, "installMethod": "native", "autoUpdates": true,
        "firstStartTime": "2026-01-01T00:00:00.000Z",
        "userID": "the-users-id", "hasCompletedOnboarding": true,
        "lastOnboardingVersion": "2.1.300",
        "oauthAccount": {"emailAddress": "me@example.com", "accountUuid": "acc-1"},
        "mcpServers": {"one": {"command": "one"}},
        "projects": {"/work/a": project},
    });
    h.write_user_claude_json(&user);
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    // Claude's reset, captured with the real CLI (a corrupt file, then
    // `claude mcp add` with CLAUDE_CODE_HOST_OWNED_CONFIG_DIR set).
    let reset = json!({
        "installMethod": "unknown", "autoUpdates": true,
        "firstStartTime": "2026-12-06T21:08:25.989Z", "firstStartVersion": "2.1.332",
        "machineID": "5dba", "opusProMigrationComplete": true, "seenNotifications": {},
        "migrationVersion": 15,
        "projects": {"/work/a": project_defaults()},
    });
    fs::write(
        pane_file(&h, "main_0_1"),
        serde_json::to_vec_pretty(&reset).unwrap(),
    )
    .unwrap();
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    let after = read_json(&h.user_claude_json());
    for key in [
        "userID",
        "hasCompletedOnboarding",
        "oauthAccount",
        "mcpServers",
        "firstStartTime",
    ] {
        assert_eq!(after[key], user[key], "{key}: {after:#}");
    }
    assert_eq!(after["projects"]["/work/a"]["hasTrustDialogAccepted"], true);
    assert_eq!(store(&h).list().unwrap().len(), 1);
}

#[test]
fn a_pane_that_loses_all_its_projects_or_its_whole_top_level_is_a_reset() {
    let mut user = user_file();
    for n in 0..10 {
        user["projects"][format!("/work/p{n}")] =
            json!({"hasTrustDialogAccepted": true, "allowedTools": ["Edit"]});
    }
    type Edit = fn(&mut Value);
    let resets: [(&str, Edit); 3] = [
        ("projects emptied", |pane| pane["projects"] = json!({})),
        ("top level reset, projects kept", |pane| {
            let projects = pane["projects"].clone();
            *pane = json!({"numStartups": 1, "projects": projects});
        }),
        ("a crash: projects unreadable", |pane| {
            *pane = json!({"numStartups": 1, "projects": null});
        }),
    ];
    for (what, reset) in resets {
        let h = Harness::new();
        h.write_user_claude_json(&user);
        let plugin = h.started("grace_period_ms = 0", SERVER_A);
        create(&plugin, "main_0_1").unwrap();
        edit_pane(&h, "main_0_1", reset);
        close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
        let after = read_json(&h.user_claude_json());
        assert_intact(&after);
        for n in 0..10 {
            assert_eq!(
                after["projects"][format!("/work/p{n}")]["hasTrustDialogAccepted"],
                true,
                "{what}: {after:#}"
            );
        }
        assert_eq!(store(&h).list().unwrap().len(), 1, "{what}");
    }
}

#[test]
fn the_looks_after_a_merge_never_undo_a_later_panes_choice() {
    // Found by a hostile review: pane 1 adds a server, pane 2 (seeded
    // after) removes it; pane 1's looks took the removal for a stale save
    // and put the server back, again and again.
    let h = Harness::new();
    h.write_user_claude_json(&json!({"userID": "u", "mcpServers": {"one": {"command": "one"}}}));
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    let logs = logs_of(|| {
        create(&plugin, "p_0_1").unwrap();
        edit_pane(&h, "p_0_1", |pane| {
            pane["mcpServers"]["added"] = json!({"command": "x"})
        });
        close(&plugin, "p_0_1", PaneExit::exited(0)).unwrap();
        create(&plugin, "p_0_2").unwrap();
        edit_pane(&h, "p_0_2", |pane| {
            pane["mcpServers"].as_object_mut().unwrap().remove("added");
        });
        close(&plugin, "p_0_2", PaneExit::exited(0)).unwrap();
        let verifier = &plugin
            .profiles
            .default_state()
            .handover
            .claude_json
            .as_ref()
            .unwrap()
            .verifier;
        assert!(eventually(|| !verifier.busy()));
    });
    assert!(
        read_json(&h.user_claude_json())["mcpServers"]
            .get("added")
            .is_none(),
        "{logs}"
    );
    assert!(!logs.contains("merging again"), "{logs}");
    assert!(pending(&h).is_empty());
    stop(&plugin, SERVER_A);
    start(&plugin, SERVER_A, &[]).unwrap();
    assert!(read_json(&h.user_claude_json())["mcpServers"]
        .get("added")
        .is_none());
}

#[test]
fn a_stop_right_after_many_closes_reads_the_users_file_once() {
    // The last look at a stop is one read for every merge still watched.
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    for n in 0..6 {
        let id = format!("p_0_{n}");
        create(&plugin, &id).unwrap();
        edit_pane(&h, &id, |pane| {
            pane["mcpServers"][format!("s{n}")] = json!({"command": "x"})
        });
        close(&plugin, &id, PaneExit::exited(0)).unwrap();
    }
    let verifier = &plugin
        .profiles
        .default_state()
        .handover
        .claude_json
        .as_ref()
        .unwrap()
        .verifier;
    let reads_before = verifier.reads();
    stop(&plugin, SERVER_A);
    assert!(
        verifier.reads() - reads_before <= 1,
        "{} reads",
        verifier.reads() - reads_before
    );
    let after = read_json(&h.user_claude_json());
    for n in 0..6 {
        assert!(after["mcpServers"][format!("s{n}")].is_object());
    }
    assert!(pending(&h).is_empty());
}

#[test]
fn a_server_that_cannot_be_parsed_affects_only_that_server() {
    // Found by a hostile review: one bad server made the whole
    // `mcpServers` unreadable, so no server was seeded or carried.
    let h = Harness::new();
    let user = r#"{"userID": "u1", "hasCompletedOnboarding": true,
  "mcpServers": {"good": {"command": "good"}, "cut": {"command": "x", "note": "\ud83d"}},
  "projects": {"/w": {"hasTrustDialogAccepted": true,
    "mcpServers": {"local": {"command": "l"}, "bad": {"env": {"K": "\udc00"}}}}}}"#;
    fs::write(h.user_claude_json(), user).unwrap();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let seeded = read_json(&pane_file(&h, "main_0_1"));
    assert_eq!(seeded["mcpServers"], json!({"good": {"command": "good"}}));
    assert_eq!(
        seeded["projects"]["/w"]["mcpServers"],
        json!({"local": {"command": "l"}})
    );
    edit_pane(&h, "main_0_1", |pane| {
        pane["mcpServers"]["added"] = json!({"command": "a"});
        pane["projects"]["/w"]["mcpServers"]["added-local"] = json!({"command": "b"});
        pane["mcpServers"].as_object_mut().unwrap().remove("good");
    });
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    let merged = fs::read_to_string(h.user_claude_json()).unwrap();
    // The pane's own changes went in, entry by entry...
    assert!(merged.contains("\"added\""), "{merged}");
    assert!(merged.contains("\"added-local\""), "{merged}");
    assert!(!merged.contains("\"good\""), "{merged}");
    // ...and the servers that cannot be parsed are there as they were.
    assert!(merged.contains(r#""note": "\ud83d""#), "{merged}");
    assert!(merged.contains(r#""K": "\udc00""#), "{merged}");
    assert!(merged.contains("\"local\""), "{merged}");
    assert!(pending(&h).is_empty(), "{:?}", pending(&h));
}
