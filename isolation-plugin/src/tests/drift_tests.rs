//! Drift (issue 17): what a newer Claude writes in a pane's config dir
//! that the plugin does not classify is never deleted with the pane.

use std::fs;
use std::os::unix::fs::symlink;

use ccmux_plugin_api::PaneExit;

use super::*;
use crate::classification::{class_of, Class, ENTRIES};

fn put(dir: &Path, rel: &str, content: &[u8]) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

#[test]
fn unknown_files_and_dirs_in_a_pane_are_all_kept_after_its_removal() {
    let h = Harness::new();
    let user = h.user_claude_dir();
    // The user has one of the names already, with other bytes.
    put(&user, "future-store/keep.txt", b"the user's own");
    put(&user, "notes.json", b"{\"user\":1}");
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let config = h.pane_dir("main_0_1").join("config");
    put(
        &config,
        ".claude.json",
        br#"{"lastVersionBase": "9.9.999", "numStartups": 3}"#,
    );
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let planted: Vec<(&str, Vec<u8>)> = vec![
        ("brand-new.json", b"{\"a\":1}".to_vec()),
        ("blob.bin", binary.clone()),
        ("vault/deep/er/x.md", b"deep".to_vec()),
        ("vault/y", Vec::new()),
        ("future-store/keep.txt", b"the pane's own".to_vec()),
        ("notes.json", b"{\"pane\":2}".to_vec()),
    ];
    for (rel, bytes) in &planted {
        put(&config, rel, bytes);
    }
    fs::create_dir_all(config.join("empty-dir")).unwrap();
    // A link holds no data: it stays behind, and is never followed.
    put(&h.outside(), "secret", b"outside");
    symlink(h.outside().join("secret"), config.join("a-link")).unwrap();

    let logs = logs_of(|| {
        close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    });
    assert!(!h.pane_dir("main_0_1").exists(), "{logs}");

    // Moved in under its own name where the user had none.
    assert_eq!(fs::read(user.join("brand-new.json")).unwrap(), b"{\"a\":1}");
    assert_eq!(fs::read(user.join("blob.bin")).unwrap(), binary);
    assert_eq!(fs::read(user.join("vault/deep/er/x.md")).unwrap(), b"deep");
    assert_eq!(fs::read(user.join("vault/y")).unwrap(), b"");
    assert!(user.join("empty-dir").is_dir());
    // Beside the user's where the user had one: both kept.
    assert_eq!(
        fs::read(user.join("future-store/keep.txt")).unwrap(),
        b"the user's own"
    );
    assert_eq!(
        fs::read(user.join("future-store.pane-main_0_1/keep.txt")).unwrap(),
        b"the pane's own"
    );
    assert_eq!(fs::read(user.join("notes.json")).unwrap(), b"{\"user\":1}");
    assert_eq!(
        fs::read(user.join("notes.pane-main_0_1.json")).unwrap(),
        b"{\"pane\":2}"
    );
    assert!(!user.join("a-link").exists());
    assert_eq!(fs::read(h.outside().join("secret")).unwrap(), b"outside");
    // One WARN per entry, naming it and the release.
    for name in [
        "brand-new.json",
        "blob.bin",
        "vault",
        "empty-dir",
        "future-store",
        "notes.json",
    ] {
        let lines: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(&format!("{name:?}")))
            .collect();
        assert_eq!(lines.len(), 1, "{name}: {logs}");
        assert!(lines[0].contains("9.9.999"), "{}", lines[0]);
    }
    // Known per-pane entries go with the pane, silently.
    assert!(!user.join(".claude.json").exists());
    assert!(!logs.contains("\"a-link\""), "{logs}");
}

#[test]
fn a_pane_whose_unknown_entries_cannot_go_home_is_kept() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let config = h.pane_dir("main_0_1").join("config");
    put(&config, "brand-new/x", b"data");
    // The user's dir refuses new entries.
    let user = h.user_claude_dir();
    fs::set_permissions(&user, fs::Permissions::from_mode(0o500)).unwrap();
    let result = close(&plugin, "main_0_1", PaneExit::exited(0));
    fs::set_permissions(&user, fs::Permissions::from_mode(0o700)).unwrap();
    if crate::floor::private_fs::current_uid() == 0 {
        // root writes anyway: the entry went home.
        assert_eq!(fs::read(user.join("brand-new/x")).unwrap(), b"data");
        return;
    }
    let err = result.unwrap_err();
    assert!(err.message.contains("keeping pane dir"), "{}", err.message);
    assert_eq!(fs::read(config.join("brand-new/x")).unwrap(), b"data");
}

#[test]
fn the_readme_table_lists_every_classified_entry() {
    let readme = include_str!("../../README.md");
    let table = readme
        .split("### Every entry of a Claude config dir")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has the config-dir table");
    for (name, _) in ENTRIES {
        let shown = name.trim_end_matches('*');
        assert!(
            table.contains(&format!("`{shown}"))
                || table.contains(&format!("`{shown}/`"))
                || table.contains(&format!("`{shown}*`")),
            "{name} is classified but missing from the README's table"
        );
    }
    assert_eq!(class_of(".claude.json.lock"), Some(Class::PerPane));
    assert_eq!(class_of("daemon.sock"), Some(Class::PerPane));
    assert_eq!(class_of("projects"), Some(Class::SharedData));
    assert_eq!(class_of("brand-new"), None);
}
