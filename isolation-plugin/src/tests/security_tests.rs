//! Ids, modes, symlinks and ownership: nothing outside the base dir is ever
//! touched, and nothing inside it is readable by others.

use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};

use ccmux_plugin_api::{HookErrorKind, PaneExit};

use super::*;

#[test]
fn unsafe_pane_ids_are_refused_before_any_path_is_built() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    let before = snapshot(h.root());
    for id in [
        "../escape",
        "..",
        ".hidden",
        "a/b",
        "",
        "with space",
        "nul\0byte",
        "/abs",
    ] {
        let err = create(&plugin, id).unwrap_err();
        assert_eq!(err.kind, HookErrorKind::InvalidInput, "{id:?}");
        assert!(
            err.message.contains("invalid pane id"),
            "{id:?}: {}",
            err.message
        );
        let err = spawn_env(&plugin, id, &[]).unwrap_err();
        assert_eq!(err.kind, HookErrorKind::InvalidInput, "{id:?}");
        let err = close(&plugin, id, PaneExit::exited(0)).unwrap_err();
        assert_eq!(err.kind, HookErrorKind::InvalidInput, "{id:?}");
    }
    assert_eq!(snapshot(h.root()), before);
    assert!(!h.root().join("escape").exists());
}

#[test]
fn a_bad_server_id_is_refused() {
    let h = Harness::new();
    let plugin = h.plugin("");
    let err = start(&plugin, "../other", &[]).unwrap_err();
    assert_eq!(err.kind, HookErrorKind::InvalidInput);
    assert!(err.message.contains("server id"), "{}", err.message);
}

#[test]
fn pane_hooks_before_server_start_are_refused() {
    let h = Harness::new();
    let plugin = h.plugin("");
    let err = create(&plugin, "main_0_1").unwrap_err();
    assert_eq!(err.kind, HookErrorKind::InvalidInput);
    assert!(err.message.contains("on_server_start"), "{}", err.message);
    assert!(spawn_env(&plugin, "main_0_1", &[]).is_err());
    assert!(!h.pane_dir("main_0_1").exists());
}

/// Sets the umask for the life of the guard. The umask is process-wide, so
/// this only ever *widens* it: tests running meanwhile lose nothing.
struct Umask(libc::mode_t);
impl Umask {
    fn set(mask: libc::mode_t) -> Self {
        // SAFETY: umask has no preconditions.
        Umask(unsafe { libc::umask(mask) })
    }
}
impl Drop for Umask {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::umask(self.0) };
    }
}

#[test]
fn dirs_are_0700_and_files_0600_even_under_umask_000() {
    let h = Harness::new();
    h.write_user_claude_json(&serde_json::json!({"theme": "dark"}));
    {
        let _umask = Umask::set(0);
        let plugin = h.started("", SERVER_A);
        create(&plugin, "main_0_1").unwrap();
    }
    let pane = h.pane_dir("main_0_1");
    for dir in [
        h.base(),
        h.base().join(".owners"),
        pane.clone(),
        pane.join("config"),
        pane.join("sessions"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in [
        h.base().join(format!(".owners/{SERVER_A}.lock")),
        pane.join(".pane-metadata"),
        pane.join("config/.claude.json"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn an_existing_base_dir_is_made_private() {
    let h = Harness::new();
    fs::DirBuilder::new().mode(0o755).create(h.base()).unwrap();
    fs::set_permissions(h.base(), fs::Permissions::from_mode(0o755)).unwrap();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    assert_eq!(mode(&h.base()), 0o700);
}

#[test]
fn a_base_dir_that_is_a_symlink_is_refused() {
    let h = Harness::new();
    symlink(h.outside(), h.base()).unwrap();
    let plugin = h.plugin("");
    let err = start(&plugin, SERVER_A, &[]).unwrap_err();
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    assert!(
        err.message.contains(&h.base().display().to_string()),
        "{}",
        err.message
    );
    assert!(names(&h.outside()).is_empty());

    // Swapped in after the server started: pane creation refuses it too.
    fs::remove_file(h.base()).unwrap();
    start(&plugin, SERVER_A, &[]).unwrap();
    fs::rename(h.base(), h.root().join("moved")).unwrap();
    symlink(h.outside(), h.base()).unwrap();
    let err = create(&plugin, "main_0_1").unwrap_err();
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    assert!(names(&h.outside()).is_empty());
}

#[test]
fn a_planted_pane_dir_symlink_is_refused_and_nothing_outside_changes() {
    let h = Harness::new();
    fs::write(h.outside().join("precious.txt"), "keep me").unwrap();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    symlink(h.outside(), h.pane_dir("main_0_1")).unwrap();
    let before = snapshot(&h.outside());

    let err = create(&plugin, "main_0_1").unwrap_err();
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    assert!(
        err.message
            .contains(&h.pane_dir("main_0_1").display().to_string()),
        "{}",
        err.message
    );
    assert!(spawn_env(&plugin, "main_0_1", &[]).is_err());
    // Closing (immediate removal) refuses it too, and says why; the orphan
    // scan leaves it alone.
    let err = close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap_err();
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    stop(&plugin, SERVER_A);
    start(&plugin, SERVER_A, &[]).unwrap();
    assert_eq!(snapshot(&h.outside()), before);
    assert!(is_symlink(&h.pane_dir("main_0_1")));
}

#[test]
fn a_planted_metadata_symlink_is_refused_and_its_target_unchanged() {
    let h = Harness::new();
    let target = h.outside().join("victim.json");
    fs::write(&target, "do not overwrite").unwrap();
    let plugin = h.started("", SERVER_A);

    // In an existing pane dir of ours...
    create(&plugin, "main_0_1").unwrap();
    let metadata = h.pane_dir("main_0_1").join(".pane-metadata");
    fs::remove_file(&metadata).unwrap();
    symlink(&target, &metadata).unwrap();
    let err = create(&plugin, "main_0_1").unwrap_err();
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    assert!(err.message.contains(".pane-metadata"), "{}", err.message);

    // ...and in a fresh dir made to look like one.
    fs::DirBuilder::new()
        .mode(0o700)
        .create(h.pane_dir("main_0_2"))
        .unwrap();
    symlink(&target, h.pane_dir("main_0_2").join(".pane-metadata")).unwrap();
    assert!(create(&plugin, "main_0_2").is_err());

    assert_eq!(fs::read_to_string(&target).unwrap(), "do not overwrite");
    assert_eq!(names(&h.outside()), ["victim.json"]);
}

#[test]
fn a_planted_config_dir_symlink_is_refused() {
    let h = Harness::new();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let config = h.pane_dir("main_0_1").join("config");
    fs::remove_dir_all(&config).unwrap();
    symlink(h.outside(), &config).unwrap();

    let err = spawn_env(&plugin, "main_0_1", &[]).unwrap_err();
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    let err = create(&plugin, "main_0_1").unwrap_err();
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    assert!(names(&h.outside()).is_empty());
}

#[test]
fn a_base_dir_of_another_user_is_refused() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: needs root to give a directory to another user");
        return;
    }
    let h = Harness::new();
    fs::DirBuilder::new().mode(0o700).create(h.base()).unwrap();
    std::os::unix::fs::chown(h.base(), Some(4242), Some(4242)).unwrap();
    let plugin = h.plugin("");
    let err = start(&plugin, SERVER_A, &[]).unwrap_err();
    assert!(err.message.contains("uid 4242"), "{}", err.message);
    assert!(
        err.message.contains(&h.base().display().to_string()),
        "{}",
        err.message
    );
    assert!(names(&h.base()).is_empty());
}

#[test]
fn metadata_is_written_atomically_and_keeps_the_session_id() {
    let h = Harness::new();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    create(&plugin, "main_0_2").unwrap();
    let pane = h.pane_dir("main_0_1");
    assert_eq!(
        names(&pane),
        [".claude-json.seed", ".pane-metadata", "config", "sessions"]
    );

    let first = metadata_json(&pane);
    assert_eq!(first["pane_id"], "main_0_1");
    assert_eq!(first["owner"], SERVER_A);
    assert_eq!(first["instance_id"], format!("instance-of-{SERVER_A}"));
    assert_eq!(first["plugin_version"], env!("CARGO_PKG_VERSION"));
    assert!(first["created_at"].as_u64().unwrap() > 1_600_000_000);
    let session = first["claude_session_id"].as_str().unwrap().to_string();
    assert_eq!(
        uuid::Uuid::parse_str(&session).unwrap().get_version_num(),
        4
    );
    assert_ne!(
        metadata_json(&h.pane_dir("main_0_2"))["claude_session_id"],
        session
    );

    // Restored by a new run of the same server: same session id.
    stop(&plugin, SERVER_A);
    drop(plugin);
    let plugin = h.plugin("");
    plugin
        .on_server_start(&ccmux_plugin_api::ServerStart {
            server_id: SERVER_A.into(),
            instance_id: "second-run".into(),
            state_dir: "/nonexistent".into(),
            live_panes: vec!["main_0_1".into()].into(),
        })
        .unwrap();
    create(&plugin, "main_0_1").unwrap();
    let again = metadata_json(&pane);
    assert_eq!(again["claude_session_id"], session.as_str());
    assert_eq!(again["created_at"], first["created_at"]);
    assert_eq!(again["instance_id"], "second-run");
    assert_eq!(
        names(&pane),
        [".claude-json.seed", ".pane-metadata", "config", "sessions"]
    );
}

#[test]
fn a_pane_dir_of_another_server_is_refused_and_kept() {
    let h = Harness::new();
    let a = h.started("", SERVER_A);
    create(&a, "main_0_1").unwrap();
    let before = snapshot(&h.pane_dir("main_0_1"));

    let b = h.started("grace_period_ms = 0", SERVER_B);
    let err = create(&b, "main_0_1").unwrap_err();
    assert!(err.message.contains(SERVER_A), "{}", err.message);
    assert!(
        err.message.contains("another ccmux server"),
        "{}",
        err.message
    );
    // B closing "its" pane must not remove A's dir.
    close(&b, "main_0_1", PaneExit::exited(0)).unwrap();
    assert_eq!(snapshot(&h.pane_dir("main_0_1")), before);
}

#[test]
fn an_empty_leftover_dir_is_taken_but_an_unknown_one_is_refused() {
    let h = Harness::new();
    let plugin = h.started("", SERVER_A);
    // What a crash right after mkdir leaves.
    fs::create_dir_all(h.base()).unwrap();
    fs::DirBuilder::new()
        .mode(0o700)
        .create(h.pane_dir("main_0_1"))
        .unwrap();
    create(&plugin, "main_0_1").unwrap();
    assert_eq!(metadata_json(&h.pane_dir("main_0_1"))["owner"], SERVER_A);

    fs::DirBuilder::new()
        .mode(0o700)
        .create(h.pane_dir("main_0_2"))
        .unwrap();
    fs::write(h.pane_dir("main_0_2").join("notes.txt"), "someone's").unwrap();
    let err = create(&plugin, "main_0_2").unwrap_err();
    assert!(err.message.contains("owner is unknown"), "{}", err.message);
    assert_eq!(names(&h.pane_dir("main_0_2")), ["notes.txt"]);
}

/// Set in the child process of the umask test: the base dir it creates.
const UMASK_CHILD_BASE: &str = "CCMUX_ISOLATION_TEST_UMASK_CHILD_BASE";
/// Set in that child: the fake home it seeds from.
const UMASK_CHILD_HOME: &str = "CCMUX_ISOLATION_TEST_UMASK_CHILD_HOME";

/// Under umask 0277 the creation modes come out 0500 and 0400, so only
/// the explicit chmod of each dir and file makes them 0700 and 0600. The
/// umask is process-wide, and narrowing it would break the tests running
/// alongside, so this test re-runs itself in a child process that sets
/// umask 0277 and creates the base dir and a whole pane there.
#[test]
fn dirs_are_0700_and_files_0600_even_under_umask_0277() {
    if let Some(base) = std::env::var_os(UMASK_CHILD_BASE) {
        // SAFETY: umask has no preconditions. This process runs nothing
        // else (see the filter below).
        unsafe { libc::umask(0o277) };
        let home = PathBuf::from(std::env::var_os(UMASK_CHILD_HOME).unwrap());
        let config = IsolationConfig {
            base_dir: Some(PathBuf::from(base)),
            ..IsolationConfig::default()
        };
        let env = HostEnvironment {
            home: Some(home),
            claude_config_dir: None,
        };
        let ctx = InitContext {
            plugin_name: "isolation".to_string(),
            config_dir: std::env::temp_dir(),
        };
        let plugin = IsolationPlugin::with_environment(config, &ctx, &env).unwrap();
        start(&plugin, SERVER_A, &[]).unwrap();
        create(&plugin, "main_0_1").unwrap();
        // Not stopped: a stop removes the owner lock file, whose mode is
        // checked below.
        drop(plugin);
        return;
    }
    let h = Harness::new();
    h.write_user_claude_json(&serde_json::json!({"theme": "dark"}));
    let root_mode = mode(h.root());
    let base = h.root().join("made/for/base");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::security_tests::dirs_are_0700_and_files_0600_even_under_umask_0277",
            "--test-threads=1",
        ])
        .env(UMASK_CHILD_BASE, &base)
        .env(UMASK_CHILD_HOME, h.home())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let pane = base.join("main_0_1");
    for dir in [
        h.root().join("made"),
        h.root().join("made/for"),
        base.clone(),
        base.join(".owners"),
        pane.clone(),
        pane.join("config"),
        pane.join("sessions"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in [
        base.join(format!(".owners/{SERVER_A}.lock")),
        pane.join(".pane-metadata"),
        pane.join("config/.claude.json"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // Only what the plugin created changed.
    assert_eq!(mode(h.root()), root_mode);
}
