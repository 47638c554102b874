//! `.claude.json` both ways (issue 9): what the pane changed of the user's
//! setup goes back into the user's file, and only that.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ccmux_plugin_api::PaneExit;
use serde_json::{json, Value};

use super::*;

fn user_file() -> Value {
    json!({
        "hasCompletedOnboarding": true,
        "theme": "dark",
        "numStartups": 42,
        "mcpServers": {"kept": {"command": "kept-server"}, "doomed": {"command": "old"}},
        "projects": {
            "/work/repo": {
                "history": [{"display": "secret prompt"}],
                "hasTrustDialogAccepted": true,
                "mcpServers": {},
                "lastCost": 1.5,
            },
        },
        "cachedGrowthBookFeatures": {"x": 1},
    })
}

#[test]
fn what_a_pane_set_up_is_carried_back_and_nothing_else() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    edit_pane(&h, "main_0_1", |pane| {
        // claude mcp add --scope user s1; claude mcp remove doomed
        pane["mcpServers"]["s1"] = json!({"command": "/bin/true"});
        pane["mcpServers"].as_object_mut().unwrap().remove("doomed");
        // claude mcp add (local) in /work/repo; a new folder trusted
        pane["projects"]["/work/repo"]["mcpServers"]["local1"] = json!({"command": "/bin/true"});
        pane["projects"]["/work/new"] = json!({
            "hasTrustDialogAccepted": true,
            "history": [{"display": "pane prompt"}],
            "lastCost": 3.0,
            "allowedTools": [],
        });
        // What Claude changes on its own: never carried.
        pane["numStartups"] = json!(99);
        pane["tipsHistory"] = json!({"tip": 3});
        pane["projects"]["/work/repo"]["history"] = json!([{"display": "pane history"}]);
        // A /login to another account.
        pane["oauthAccount"] = json!({"emailAddress": "other@example.com"});
    });
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert!(!h.pane_dir("main_0_1").exists());

    let mut expected = user_file();
    expected["mcpServers"] =
        json!({"kept": {"command": "kept-server"}, "s1": {"command": "/bin/true"}});
    expected["projects"]["/work/repo"]["mcpServers"] = json!({"local1": {"command": "/bin/true"}});
    expected["projects"]["/work/new"] = json!({"hasTrustDialogAccepted": true});
    expected["oauthAccount"] = json!({"emailAddress": "other@example.com"});
    assert_eq!(read_json(&h.user_claude_json()), expected);
    // Key order kept: a new key goes last, the rest stay where they were.
    let written = fs::read_to_string(h.user_claude_json()).unwrap();
    assert!(written.find("\"hasCompletedOnboarding\"") < written.find("\"theme\""));

    // A new pane gets it all.
    create(&plugin, "main_0_2").unwrap();
    let seeded = read_json(&h.pane_dir("main_0_2").join("config/.claude.json"));
    assert_eq!(seeded["mcpServers"]["s1"], json!({"command": "/bin/true"}));
    assert_eq!(
        seeded["projects"]["/work/new"]["hasTrustDialogAccepted"],
        true
    );
    assert_eq!(
        seeded["projects"]["/work/repo"]["mcpServers"]["local1"],
        json!({"command": "/bin/true"})
    );
}

#[test]
fn a_pane_that_changed_nothing_writes_nothing() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let before = fs::metadata(h.user_claude_json()).unwrap();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    edit_pane(&h, "main_0_1", |pane| {
        pane["numStartups"] = json!(43);
        // Claude opening a folder fills in its defaults: not a choice.
        pane["projects"]["/elsewhere"] =
            json!({"hasTrustDialogAccepted": false, "allowedTools": [], "mcpServers": {}});
    });
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    let after = fs::metadata(h.user_claude_json()).unwrap();
    assert_eq!(after.ino(), before.ino());
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());
    assert!(!h.base().join(".claude-json-backups").exists());
}

#[test]
fn conflicts_go_to_the_pane_and_removals_only_of_what_the_user_kept() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    edit_pane(&h, "main_0_1", |pane| {
        pane["theme"] = json!("light");
        pane["mcpServers"].as_object_mut().unwrap().remove("doomed");
        pane["projects"]["/elsewhere"] = json!({"hasTrustDialogAccepted": false});
    });
    // Meanwhile, outside the pane, the user changed the same things.
    let mut user = user_file();
    user["theme"] = json!("dark-daltonized");
    user["mcpServers"]["doomed"] = json!({"command": "changed"});
    user["projects"]["/elsewhere"] = json!({"hasTrustDialogAccepted": true});
    h.write_user_claude_json(&user);

    let logs = logs_of(|| close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap());
    let merged = read_json(&h.user_claude_json());
    assert_eq!(merged["theme"], "light", "the pane's value wins");
    assert!(
        logs.contains("dark-daltonized"),
        "the old value is logged: {logs}"
    );
    assert_eq!(
        merged["mcpServers"]["doomed"],
        json!({"command": "changed"})
    );
    // Claude's default for a folder it opened never untrusts it.
    assert_eq!(
        merged["projects"]["/elsewhere"]["hasTrustDialogAccepted"],
        true
    );
}

#[test]
fn an_invalid_user_file_is_left_alone_and_the_change_merged_once_it_is_fixed() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    edit_pane(&h, "main_0_1", |pane| {
        pane["mcpServers"]["s1"] = json!({"command": "/bin/true"});
    });
    fs::write(h.user_claude_json(), "{ not json").unwrap();
    let logs = logs_of(|| close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap());
    let warning = logs
        .lines()
        .find(|line| line.contains("WARN") && line.contains("not a JSON object that can be read"))
        .unwrap_or_else(|| panic!("no warning: {logs}"));
    assert!(
        warning.contains(h.user_claude_json().to_str().unwrap()),
        "{warning}"
    );
    assert_eq!(
        fs::read_to_string(h.user_claude_json()).unwrap(),
        "{ not json"
    );
    // The pane's dir went; what it changed is kept, small, for later.
    assert!(!h.pane_dir("main_0_1").exists());
    let kept = pending(&h);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].ends_with("-main_0_1"), "{kept:?}");
    let kept_dir = h.base().join(".pending-carry-back").join(&kept[0]);
    assert_eq!(
        names(&kept_dir),
        [".claude-json.seed", ".claude.json", "target"]
    );
    assert_eq!(
        fs::read(kept_dir.join("target")).unwrap(),
        h.user_claude_json().as_os_str().as_encoded_bytes()
    );
    assert_eq!(mode(&kept_dir), 0o700);

    // Still broken at the next start: still kept.
    stop(&plugin, SERVER_A);
    start(&plugin, SERVER_A, &[]).unwrap();
    assert_eq!(pending(&h), kept);
    // Fixed: the next server start merges it, then drops it.
    h.write_user_claude_json(&user_file());
    stop(&plugin, SERVER_A);
    start(&plugin, SERVER_A, &[]).unwrap();
    assert_eq!(
        read_json(&h.user_claude_json())["mcpServers"]["s1"],
        json!({"command": "/bin/true"})
    );
    assert!(pending(&h).is_empty());
}

#[test]
fn a_user_file_that_is_a_link_is_never_written_through() {
    let h = Harness::new();
    let real = h.outside().join("dotfiles-claude.json");
    fs::write(&real, serde_json::to_vec(&user_file()).unwrap()).unwrap();
    std::os::unix::fs::symlink(&real, h.user_claude_json()).unwrap();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    edit_pane(&h, "main_0_1", |pane| pane["theme"] = json!("light"));
    let before = snapshot(&h.outside());
    let logs = logs_of(|| close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap());
    assert!(logs.contains("symbolic link"), "{logs}");
    assert_eq!(snapshot(&h.outside()), before);
    assert!(is_symlink(&h.user_claude_json()));
    assert_eq!(pending(&h).len(), 1, "the change is kept");
}

#[test]
fn a_user_without_a_file_gets_one_with_what_the_pane_set_up() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    // Onboarding finished in the pane.
    fs::write(
        h.pane_dir("main_0_1").join("config/.claude.json"),
        serde_json::to_vec(
            &json!({"hasCompletedOnboarding": true, "numStartups": 1, "theme": "dark"}),
        )
        .unwrap(),
    )
    .unwrap();
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert_eq!(
        read_json(&h.user_claude_json()),
        json!({"hasCompletedOnboarding": true, "theme": "dark"})
    );
    assert_eq!(mode(&h.user_claude_json()), 0o600);
}

#[test]
fn a_pane_without_a_seed_record_only_adds() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    // A pane dir made before seed records existed.
    fs::remove_file(h.pane_dir("main_0_1").join(".claude-json.seed")).unwrap();
    edit_pane(&h, "main_0_1", |pane| {
        pane["theme"] = json!("stale");
        pane["mcpServers"]["new"] = json!({"command": "new"});
    });
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    let merged = read_json(&h.user_claude_json());
    assert_eq!(merged["theme"], "dark");
    assert_eq!(merged["mcpServers"]["new"], json!({"command": "new"}));
}

#[test]
fn eight_panes_closing_at_once_all_land() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = Arc::new(h.started("", SERVER_A));
    let ids: Vec<String> = (0..8).map(|n| format!("p_0_{n}")).collect();
    for id in &ids {
        create(&plugin, id).unwrap();
        edit_pane(&h, id, |pane| {
            pane["mcpServers"][format!("server-{id}")] = json!({"command": "/bin/true"});
        });
    }
    std::thread::scope(|scope| {
        for id in &ids {
            let plugin = Arc::clone(&plugin);
            scope.spawn(move || close(&plugin, id, PaneExit::exited(0)).unwrap());
        }
    });
    stop(&plugin, SERVER_A);
    let merged = read_json(&h.user_claude_json());
    for id in &ids {
        assert!(
            merged["mcpServers"][format!("server-{id}")].is_object(),
            "{id}: {merged}"
        );
    }
    assert_eq!(merged["projects"], user_file()["projects"]);
    // Each merge kept the file as it was; no more than ten are kept.
    let backups = names(&h.base().join(".claude-json-backups"));
    assert!(!backups.is_empty() && backups.len() <= 10, "{backups:?}");
    for backup in &backups {
        assert_eq!(
            mode(&h.base().join(".claude-json-backups").join(backup)),
            0o600
        );
    }
}

/// A Claude outside ccmux: re-reads the file, sets its own key, writes it
/// back in place, holding Claude's lock (a `.lock` dir) as Claude does,
/// hundreds of times a second (Claude itself writes a few times a second).
fn unisolated_claude_loop(path: PathBuf, stop: Arc<AtomicBool>) -> (usize, Vec<String>) {
    let lock = PathBuf::from(format!("{}.lock", path.display()));
    let mut written = 0;
    let mut torn = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if fs::create_dir(&lock).is_err() {
            std::thread::yield_now();
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        match serde_json::from_str::<Value>(&text) {
            Ok(mut file) => {
                file[format!("loop{written}")] = json!(written);
                fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
                written += 1;
            }
            Err(err) => torn.push(format!("{err}: {text}")),
        }
        fs::remove_dir(&lock).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    (written, torn)
}

#[test]
fn merges_and_a_claude_outside_ccmux_lose_nothing_of_each_other() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = Arc::new(h.started("", SERVER_A));
    let ids: Vec<String> = (0..6).map(|n| format!("p_0_{n}")).collect();
    for id in &ids {
        create(&plugin, id).unwrap();
        edit_pane(&h, id, |pane| {
            pane["mcpServers"][format!("server-{id}")] = json!({"command": "/bin/true"});
        });
    }
    let stop_loop = Arc::new(AtomicBool::new(false));
    let looping = {
        let (path, stop_loop) = (h.user_claude_json(), Arc::clone(&stop_loop));
        std::thread::spawn(move || unisolated_claude_loop(path, stop_loop))
    };
    // The loop is writing before and while the panes merge.
    assert!(eventually(
        || fs::read_to_string(h.user_claude_json()).is_ok_and(|text| text.contains("\"loop3\""))
    ));
    for id in &ids {
        close(&plugin, id, PaneExit::exited(0)).unwrap();
    }
    let logs = logs_of(|| stop(&plugin, SERVER_A));
    let merged_at = fs::read_to_string(h.user_claude_json()).unwrap().len();
    assert!(eventually(
        || fs::read_to_string(h.user_claude_json()).is_ok_and(|text| text.len() > merged_at + 20)
    ));
    stop_loop.store(true, Ordering::Relaxed);
    let (written, torn) = looping.join().unwrap();
    assert!(torn.is_empty(), "the loop read a torn file: {torn:?}");
    assert!(written > 4, "{written}");
    let merged = read_json(&h.user_claude_json());
    for id in &ids {
        assert!(
            merged["mcpServers"][format!("server-{id}")].is_object(),
            "{id}: {logs}"
        );
    }
    for n in 0..written {
        assert_eq!(merged[format!("loop{n}")], n, "loop write {n} lost");
    }
}

#[test]
fn history_a_strict_parser_refuses_is_written_back_byte_for_byte() {
    let h = Harness::new();
    // A prompt cut in the middle of an emoji, as JavaScript writes it.
    let text = "{\n  \"theme\": \"dark\",\n  \"projects\": {\n    \"/work/repo\": {\n      \"history\": [\n        {\n          \"display\": \"cut \\ud83d\"\n        }\n      ],\n      \"hasTrustDialogAccepted\": true\n    }\n  }\n}\n";
    fs::write(h.user_claude_json(), text).unwrap();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    // The seed skips history: the pane got the project's trust.
    let seeded = read_json(&h.pane_dir("main_0_1").join("config/.claude.json"));
    assert_eq!(
        seeded["projects"]["/work/repo"]["hasTrustDialogAccepted"],
        true
    );
    edit_pane(&h, "main_0_1", |pane| {
        pane["mcpServers"] = json!({"s1": {"command": "/bin/true"}});
        pane["projects"]["/work/repo"]["allowedTools"] = json!(["Bash(ls)"]);
    });
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    let written = fs::read_to_string(h.user_claude_json()).unwrap();
    assert!(
        written.contains("\"display\": \"cut \\ud83d\""),
        "{written}"
    );
    assert!(written.contains("\"s1\""), "{written}");
    assert!(written.contains("\"Bash(ls)\""), "{written}");
    assert!(!h.pane_dir("main_0_1").exists());
}

#[test]
fn what_the_pane_added_never_replaces_what_the_user_got_meanwhile() {
    let h = Harness::new();
    // No user file when the pane opens: a fresh install in the pane.
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    fs::write(
        h.pane_dir("main_0_1").join("config/.claude.json"),
        serde_json::to_vec(
            &json!({"userID": "pane-fresh", "theme": "light", "mcpServers": {"s1": {"command": "x"}}}),
        )
        .unwrap(),
    )
    .unwrap();
    // Meanwhile a Claude outside ccmux made the user's file.
    h.write_user_claude_json(&json!({"userID": "the-users", "theme": false}));
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    let merged = read_json(&h.user_claude_json());
    assert_eq!(merged["userID"], "the-users");
    // An empty value of the user's is no choice: the pane's goes in.
    assert_eq!(merged["theme"], "light");
    assert_eq!(merged["mcpServers"]["s1"], json!({"command": "x"}));
}

/// A Claude outside ccmux whose lock is held saves without it (2.1.197
/// does): re-reads, waits a little, writes its copy over whatever is there.
fn lockless_claude_loop(path: PathBuf, stop: Arc<AtomicBool>) -> usize {
    let mut written = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut file: Value = match fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(file) => file,
            None => continue,
        };
        std::thread::sleep(std::time::Duration::from_millis(15));
        file[format!("outside{written}")] = json!(written);
        let temp = path.with_extension("outside-tmp");
        fs::write(&temp, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
        fs::rename(&temp, &path).unwrap();
        written += 1;
    }
    written
}

#[test]
fn a_merge_saved_over_by_a_lockless_claude_is_redone_or_kept_never_lost() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = Arc::new(h.started("grace_period_ms = 0", SERVER_A));
    let ids: Vec<String> = (0..4).map(|n| format!("p_0_{n}")).collect();
    for id in &ids {
        create(&plugin, id).unwrap();
        edit_pane(&h, id, |pane| {
            pane["mcpServers"][format!("server-{id}")] = json!({"command": "/bin/true"});
        });
    }
    let stop_loop = Arc::new(AtomicBool::new(false));
    let looping = {
        let (path, stop_loop) = (h.user_claude_json(), Arc::clone(&stop_loop));
        std::thread::spawn(move || lockless_claude_loop(path, stop_loop))
    };
    for id in &ids {
        // An error keeps the pane: that is the other allowed outcome.
        let _kept_or_merged = close(&plugin, id, PaneExit::exited(0));
    }
    // The outside Claude goes on saving (copies it read before a merge,
    // some of them) a few times after the panes closed, well within the
    // looks' second. The looks, which go on after it stops, make again
    // what it saved over, or keep it pending. (A Claude that saves a copy
    // older than the looks' second is the race Claude instances have with
    // each other: the loop stops here, so none of its copies is that old.)
    let saves = |h: &Harness| {
        fs::read(h.user_claude_json())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|file| {
                file.as_object()
                    .map(|o| o.keys().filter(|k| k.starts_with("outside")).count())
            })
            .unwrap_or(0)
    };
    let after_closes = saves(&h);
    assert!(eventually(|| saves(&h) >= after_closes + 5));
    stop_loop.store(true, Ordering::Relaxed);
    assert!(looping.join().unwrap() > 0);
    let verifier = &plugin
        .profiles
        .default_state()
        .handover
        .claude_json
        .as_ref()
        .unwrap()
        .verifier;
    let mut waited = 0;
    while verifier.busy() && waited < 30_000 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 10;
    }
    assert!(!verifier.busy(), "the looks after the merges never ended");
    let merged = read_json(&h.user_claude_json());
    for id in &ids {
        let landed = merged["mcpServers"][format!("server-{id}")].is_object();
        let kept = pending(&h)
            .iter()
            .any(|name| name.ends_with(&format!("-{id}")));
        assert!(landed || kept, "{id}: neither in the user's file nor kept");
    }
}

#[test]
fn a_pending_change_merged_late_never_reverts_what_the_user_chose_since() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    edit_pane(&h, "main_0_1", |pane| {
        pane["theme"] = json!("light");
        pane["mcpServers"]["s1"] = json!({"command": "/bin/true"});
    });
    fs::write(h.user_claude_json(), "{ not json").unwrap();
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert_eq!(pending(&h).len(), 1);
    // Fixed, and the user chose another theme meanwhile.
    let mut user = user_file();
    user["theme"] = json!("dark-daltonized");
    h.write_user_claude_json(&user);
    stop(&plugin, SERVER_A);
    start(&plugin, SERVER_A, &[]).unwrap();
    let merged = read_json(&h.user_claude_json());
    assert_eq!(merged["theme"], "dark-daltonized");
    assert_eq!(merged["mcpServers"]["s1"], json!({"command": "/bin/true"}));
    assert!(pending(&h).is_empty());
}

#[test]
fn a_pending_store_that_is_a_link_is_never_followed() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let victim = h.outside().join("victim");
    for dir in ["photos", "00000001767225600000-main_0_1"] {
        fs::create_dir_all(victim.join(dir)).unwrap();
        fs::write(victim.join(dir).join("keep.txt"), "mine").unwrap();
    }
    fs::create_dir_all(h.base()).unwrap();
    std::os::unix::fs::symlink(&victim, h.base().join(".pending-carry-back")).unwrap();
    let before = snapshot(&h.outside());
    let plugin = h.plugin("grace_period_ms = 0");
    let logs = logs_of(|| start(&plugin, SERVER_A, &[]).unwrap());
    assert!(logs.contains("symbolic link"), "{logs}");
    assert_eq!(snapshot(&h.outside()), before);
    // A failed merge then cannot keep its changes there: the pane stays.
    create(&plugin, "main_0_2").unwrap();
    edit_pane(&h, "main_0_2", |pane| pane["theme"] = json!("light"));
    fs::write(h.user_claude_json(), "{ not json").unwrap();
    let err = close(&plugin, "main_0_2", PaneExit::exited(0)).unwrap_err();
    assert!(
        err.message.contains("keeping them pending failed too"),
        "{}",
        err.message
    );
    assert!(h.pane_dir("main_0_2").join("config/.claude.json").is_file());
    assert_eq!(snapshot(&h.outside()), before);
}

#[test]
fn pending_changes_of_several_panes_leave_the_latest_choice() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    // Three panes in turn choose a theme while the user's file cannot be
    // merged into: each change goes pending.
    for (n, theme) in ["light-ansi", "dark-daltonized", "light"]
        .iter()
        .enumerate()
    {
        h.write_user_claude_json(&user_file());
        let id = format!("p_0_{n}");
        create(&plugin, &id).unwrap();
        edit_pane(&h, &id, |pane| pane["theme"] = json!(theme));
        fs::write(h.user_claude_json(), "{ not json").unwrap();
        close(&plugin, &id, PaneExit::exited(0)).unwrap();
        // Apart in time, so the store's names order them.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(pending(&h).len(), 3);
    h.write_user_claude_json(&user_file());
    stop(&plugin, SERVER_A);
    let logs = logs_of(|| start(&plugin, SERVER_A, &[]).unwrap());
    assert_eq!(read_json(&h.user_claude_json())["theme"], "light");
    assert!(pending(&h).is_empty());
    // The older choices are dropped, and said so, with their values.
    assert!(
        logs.contains("dark-daltonized") && logs.contains("light-ansi"),
        "{logs}"
    );
}

#[test]
fn a_pending_entry_is_whole_or_the_pane_keeps_its_files() {
    let h = Harness::new();
    h.write_user_claude_json(&user_file());
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    edit_pane(&h, "main_0_1", |pane| pane["theme"] = json!("light"));
    fs::write(h.user_claude_json(), "{ not json").unwrap();
    // The store cannot take the entry (a file where its dir belongs).
    fs::create_dir_all(h.base()).unwrap();
    fs::write(h.base().join(".pending-carry-back"), "in the way").unwrap();
    let err = close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap_err();
    assert!(
        err.message.contains("keeping them pending failed too"),
        "{}",
        err.message
    );
    let config = h.pane_dir("main_0_1").join("config");
    assert_eq!(read_json(&config.join(".claude.json"))["theme"], "light");
    assert!(h.pane_dir("main_0_1").join(".claude-json.seed").is_file());
}

#[test]
fn a_users_projects_that_is_not_an_object_takes_the_panes_setup() {
    let h = Harness::new();
    h.write_user_claude_json(&json!({"theme": "dark", "projects": []}));
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    edit_pane(&h, "main_0_1", |pane| {
        pane["projects"] = json!({"/w": {"hasTrustDialogAccepted": true}});
    });
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert_eq!(
        read_json(&h.user_claude_json())["projects"],
        json!({"/w": {"hasTrustDialogAccepted": true}})
    );
    assert!(pending(&h).is_empty());
}
