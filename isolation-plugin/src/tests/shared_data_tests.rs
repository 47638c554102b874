//! Shared data (issue 8): what Claude keeps per session or append-only is
//! the user's, linked into every pane, and nothing a pane holds of it is
//! lost when its dir is removed.

use std::fs;
use std::os::unix::fs::symlink;

use ccmux_plugin_api::PaneExit;

use super::*;

const DIRS: &[&str] = &[
    "projects",
    "file-history",
    "todos",
    "tasks",
    "paste-cache",
    "session-env",
    "sessions",
    "teams",
    "debug",
    "ide",
    "memory",
];

/// Writes `content` at `rel` under `dir`, making parents.
fn put(dir: &Path, rel: &str, content: &str) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

#[test]
fn every_pane_links_the_users_data_entries_creating_what_the_user_lacks() {
    let h = Harness::new();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let config = h.pane_dir("main_0_1").join("config");
    let user = h.user_claude_dir();
    for name in DIRS {
        assert!(user.join(name).is_dir(), "{name}");
        assert_eq!(mode(&user.join(name)), 0o700, "{name}");
        assert_eq!(fs::read_link(config.join(name)).unwrap(), user.join(name));
    }
    assert!(user.join("history.jsonl").is_file());
    assert_eq!(mode(&user.join("history.jsonl")), 0o600);
    assert_eq!(
        fs::read_link(config.join("history.jsonl")).unwrap(),
        user.join("history.jsonl")
    );

    // What Claude writes in the pane is the user's at once.
    put(&config, "projects/-work/s1.jsonl", "turn\n");
    assert_eq!(
        fs::read_to_string(user.join("projects/-work/s1.jsonl")).unwrap(),
        "turn\n"
    );
    // And stays the user's after the pane's dir is gone.
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    stop(&plugin, SERVER_A);
    assert!(!h.pane_dir("main_0_1").exists());
    assert_eq!(
        fs::read_to_string(user.join("projects/-work/s1.jsonl")).unwrap(),
        "turn\n"
    );
}

#[test]
fn a_user_without_a_claude_dir_gets_none_unless_a_pane_writes_data() {
    let h = Harness::new();
    fs::remove_dir(h.user_claude_dir()).unwrap();
    let user = h.user_claude_dir();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);

    // A pane that never runs Claude: nothing in the user's home, ever.
    create(&plugin, "main_0_1").unwrap();
    let config = h.pane_dir("main_0_1").join("config");
    assert!(!user.exists());
    for name in DIRS {
        assert!(!is_symlink(&config.join(name)), "{name}");
    }
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert!(!h.pane_dir("main_0_1").exists());
    assert!(!user.exists());

    // A pane whose Claude wrote a conversation: it goes home at the close,
    // into a user dir made for it (0700).
    create(&plugin, "main_0_2").unwrap();
    let config = h.pane_dir("main_0_2").join("config");
    put(&config, "projects/-work/s1.jsonl", "turn\n");
    put(&config, "history.jsonl", "{\"display\":\"hi\"}\n");
    assert!(!user.exists());
    close(&plugin, "main_0_2", PaneExit::exited(0)).unwrap();
    assert!(!h.pane_dir("main_0_2").exists());
    assert_eq!(mode(&user), 0o700);
    assert_eq!(
        fs::read_to_string(user.join("projects/-work/s1.jsonl")).unwrap(),
        "turn\n"
    );
    assert_eq!(
        fs::read_to_string(user.join("history.jsonl")).unwrap(),
        "{\"display\":\"hi\"}\n"
    );

    // From then on panes link to it as for any user.
    create(&plugin, "main_0_3").unwrap();
    let config = h.pane_dir("main_0_3").join("config");
    assert_eq!(
        fs::read_link(config.join("projects")).unwrap(),
        user.join("projects")
    );
    stop(&plugin, SERVER_A);
}

/// A pane dir as an older plugin version left it: the data entries are
/// real dirs and files in `config/`.
fn old_layout_pane(h: &Harness, plugin: &IsolationPlugin, id: &str) -> PathBuf {
    create(plugin, id).unwrap();
    let config = h.pane_dir(id).join("config");
    for name in DIRS.iter().chain(&["history.jsonl"]) {
        fs::remove_file(config.join(name)).unwrap();
    }
    put(&config, "projects/-work/old-session.jsonl", "old turn\n");
    put(&config, "projects/-work/memory/MEMORY.md", "pane memory\n");
    put(&config, "projects/-work/same.jsonl", "same\n");
    put(&config, "projects/-work/differs.jsonl", "pane's\n");
    put(&config, "todos/t1.json", "[]");
    put(&config, "history.jsonl", "{\"display\":\"pane prompt\"}\n");
    // Per pane while it runs (move_home), like in every layout.
    put(&config, "plans/bright-plan.md", "the plan\n");
    config
}

fn user_side(h: &Harness) {
    let user = h.user_claude_dir();
    put(&user, "projects/-work/same.jsonl", "same\n");
    put(&user, "projects/-work/differs.jsonl", "user's\n");
    put(&user, "projects/-work/memory/MEMORY.md", "user memory\n");
    put(&user, "history.jsonl", "{\"display\":\"user prompt\"}\n");
}

fn assert_rescued(h: &Harness, id: &str) {
    let user = h.user_claude_dir();
    let read = |rel: &str| fs::read_to_string(user.join(rel)).unwrap();
    assert_eq!(read("projects/-work/old-session.jsonl"), "old turn\n");
    assert_eq!(read("projects/-work/same.jsonl"), "same\n");
    assert_eq!(read("projects/-work/differs.jsonl"), "user's\n");
    assert_eq!(
        read(&format!("projects/-work/differs.pane-{id}.jsonl")),
        "pane's\n"
    );
    assert_eq!(read("projects/-work/memory/MEMORY.md"), "user memory\n");
    assert_eq!(
        read(&format!("projects/-work/memory/MEMORY.pane-{id}.md")),
        "pane memory\n"
    );
    assert_eq!(read("todos/t1.json"), "[]");
    assert_eq!(read("plans/bright-plan.md"), "the plan\n");
    assert_eq!(
        read("history.jsonl"),
        "{\"display\":\"user prompt\"}\n{\"display\":\"pane prompt\"}\n"
    );
}

#[test]
fn removing_a_pane_dir_moves_its_own_data_home_first_never_overwriting() {
    let h = Harness::new();
    user_side(&h);
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    old_layout_pane(&h, &plugin, "main_0_1");
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert!(!h.pane_dir("main_0_1").exists());
    assert_rescued(&h, "main_0_1");
}

#[test]
fn a_restored_pane_of_the_old_layout_is_migrated_then_linked() {
    let h = Harness::new();
    user_side(&h);
    let first = h.started("", SERVER_A);
    let config = old_layout_pane(&h, &first, "main_0_1");
    stop(&first, SERVER_A);
    drop(first);

    let second = h.plugin("grace_period_ms = 0");
    start(&second, SERVER_A, &["main_0_1"]).unwrap();
    create(&second, "main_0_1").unwrap();
    // The plan stays the pane's while it runs, and goes home with the rest
    // when the pane's dir goes.
    assert!(config.join("plans/bright-plan.md").is_file());
    close(&second, "main_0_1", PaneExit::exited(0)).unwrap();
    assert_rescued(&h, "main_0_1");
    create(&second, "main_0_1").unwrap();
    for name in DIRS {
        assert!(is_symlink(&config.join(name)), "{name}");
    }
    assert!(is_symlink(&config.join("history.jsonl")));
}

#[test]
fn the_orphan_scan_moves_an_unrestored_panes_data_home_and_says_so() {
    let h = Harness::new();
    user_side(&h);
    let first = h.started("", SERVER_A);
    old_layout_pane(&h, &first, "kept_0_1");
    stop(&first, SERVER_A);
    drop(first);

    let second = h.plugin("");
    let logs = logs_of(|| start(&second, SERVER_A, &[]).unwrap());
    assert!(!h.pane_dir("kept_0_1").exists());
    assert_rescued(&h, "kept_0_1");
    let warning = logs
        .lines()
        .find(|line| line.contains("WARN") && line.contains("did not restore"))
        .unwrap_or_else(|| panic!("no warning: {logs}"));
    assert!(warning.contains("kept_0_1"), "{warning}");
    assert!(warning.contains("user's Claude dir"), "{warning}");
}

#[test]
fn a_pane_dir_whose_data_cannot_go_home_is_kept() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    let config = old_layout_pane(&h, &plugin, "main_0_1");
    // The user's `todos` replaced by a link: nothing is written through it.
    fs::remove_dir_all(h.user_claude_dir().join("todos")).unwrap();
    symlink(h.outside(), h.user_claude_dir().join("todos")).unwrap();
    let outside = snapshot(&h.outside());
    let err = close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap_err();
    assert!(err.message.contains("keeping pane dir"), "{}", err.message);
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    assert_eq!(
        fs::read_to_string(config.join("todos/t1.json")).unwrap(),
        "[]"
    );
    assert_eq!(snapshot(&h.outside()), outside);
}

#[test]
fn planted_links_in_place_of_data_entries_are_never_written_through() {
    let h = Harness::new();
    fs::write(h.outside().join("precious"), "keep me").unwrap();
    // In the user's dir: not shared, with a warning; the pane still starts.
    symlink(h.outside(), h.user_claude_dir().join("projects")).unwrap();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    let before = snapshot(&h.outside());
    let logs = logs_of(|| create(&plugin, "main_0_1").unwrap());
    assert!(logs.contains("not sharing projects"), "{logs}");
    assert!(!h.pane_dir("main_0_1").join("config/projects").exists());
    // In a pane: a link is not data; it is pointed at the user's entry.
    symlink(h.outside(), h.pane_dir("main_0_1").join("config/todos.tmp")).unwrap();
    fs::remove_file(h.pane_dir("main_0_1").join("config/todos")).unwrap();
    fs::rename(
        h.pane_dir("main_0_1").join("config/todos.tmp"),
        h.pane_dir("main_0_1").join("config/todos"),
    )
    .unwrap();
    create(&plugin, "main_0_1").unwrap();
    assert_eq!(
        fs::read_link(h.pane_dir("main_0_1").join("config/todos")).unwrap(),
        h.user_claude_dir().join("todos")
    );
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert_eq!(snapshot(&h.outside()), before);
}

#[test]
fn share_data_is_checked_when_the_plugin_loads() {
    let h = Harness::new();
    for (toml, expect) in [
        ("share_data = [\".claude.json\"]", "may not contain"),
        ("share_data = [\"backups/\"]", "backups"),
        ("share_data = [\"a/../b/\"]", "not a path of names"),
        ("share_data = [\"/abs/\"]", "not a path of names"),
        ("share_data = [\"a//b/\"]", "not a path of names"),
        ("share_data = [\"a/b\"]", "path to a file"),
        ("share_data = [\"backups/x/\"]", "keeps its own"),
        ("share_data = [\"state/\", \"state/x/\"]", "inside another"),
        (
            "share_data = [\"state/x/\"]\nmove_home = [\"state/\"]",
            "inside another",
        ),
        ("share_data = [\"settings.json\"]", "in another of `share`"),
        ("move_home = [\"projects/\"]", "in another of `share`"),
        ("share_data = [\".credentials.json\"]", "token refresh"),
        ("share = [\".credentials.json\"]", "token refresh"),
    ] {
        let Err(err) = h.try_plugin(toml) else {
            panic!("{toml} accepted");
        };
        assert!(err.message.contains(expect), "{toml}: {}", err.message);
    }
    // Empty: every pane's data is its own again.
    let plugin = h.started(
        "share_data = []\nmove_home = []\ngrace_period_ms = 0",
        SERVER_A,
    );
    create(&plugin, "main_0_1").unwrap();
    assert!(!h.pane_dir("main_0_1").join("config/projects").exists());
    assert!(!h.user_claude_dir().join("projects").exists());
}

#[test]
fn claudes_memory_root_is_the_users_dir_unless_the_user_set_one() {
    let h = Harness::new();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let vars = spawn_env(&plugin, "main_0_1", &[]).unwrap();
    assert_eq!(
        vars["CLAUDE_CODE_REMOTE_MEMORY_DIR"],
        h.user_claude_dir().to_str().unwrap()
    );
    let vars = spawn_env(
        &plugin,
        "main_0_1",
        &[("CLAUDE_CODE_REMOTE_MEMORY_DIR", "/elsewhere")],
    )
    .unwrap();
    assert_eq!(vars["CLAUDE_CODE_REMOTE_MEMORY_DIR"], "/elsewhere");

    // Without a shared projects/ there is no shared memory to point at.
    let own = h.started("share_data = [\"todos/\"]", SERVER_B);
    create(&own, "b_0_1").unwrap();
    let vars = spawn_env(&own, "b_0_1", &[]).unwrap();
    assert!(!vars.contains_key("CLAUDE_CODE_REMOTE_MEMORY_DIR"));
}

#[test]
fn a_share_link_to_a_users_link_points_at_what_it_resolves_to() {
    let h = Harness::new();
    let dotfiles = h.outside().join("dotfiles-settings.json");
    fs::write(&dotfiles, "{}").unwrap();
    symlink(&dotfiles, h.user_claude_dir().join("settings.json")).unwrap();
    let plugin = h.started("", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    assert_eq!(
        fs::read_link(h.pane_dir("main_0_1").join("config/settings.json")).unwrap(),
        fs::canonicalize(&dotfiles).unwrap()
    );
}

#[test]
fn configuration_a_pane_made_itself_goes_home_too() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let config = h.pane_dir("main_0_1").join("config");
    // The user had none: the pane's Claude made its own.
    put(&config, "settings.json", "{\"theme\": \"dark\"}");
    put(&config, "agents/reviewer.md", "# reviewer\n");
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    let user = h.user_claude_dir();
    assert_eq!(
        fs::read_to_string(user.join("settings.json")).unwrap(),
        "{\"theme\": \"dark\"}"
    );
    assert_eq!(
        fs::read_to_string(user.join("agents/reviewer.md")).unwrap(),
        "# reviewer\n"
    );

    // The user has one now, and a pane made another: both are kept.
    create(&plugin, "main_0_2").unwrap();
    let config = h.pane_dir("main_0_2").join("config");
    fs::remove_file(config.join("settings.json")).unwrap();
    put(&config, "settings.json", "{\"theme\": \"light\"}");
    let logs = logs_of(|| close(&plugin, "main_0_2", PaneExit::exited(0)).unwrap());
    assert_eq!(
        fs::read_to_string(user.join("settings.json")).unwrap(),
        "{\"theme\": \"dark\"}"
    );
    assert_eq!(
        fs::read_to_string(user.join("settings.pane-main_0_2.json")).unwrap(),
        "{\"theme\": \"light\"}"
    );
    assert!(logs.contains("merge it by hand"), "{logs}");
}

#[test]
fn a_rewritten_history_in_a_pane_adds_only_its_new_lines() {
    let h = Harness::new();
    put(
        &h.user_claude_dir(),
        "history.jsonl",
        "{\"a\":1}\n{\"b\":2}\n",
    );
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let config = h.pane_dir("main_0_1").join("config");
    // `claude project purge` replaced the link with a filtered copy, and
    // the pane's Claude appended to it.
    fs::remove_file(config.join("history.jsonl")).unwrap();
    put(&config, "history.jsonl", "{\"b\":2}\n{\"c\":3}\n");
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert_eq!(
        fs::read_to_string(h.user_claude_dir().join("history.jsonl")).unwrap(),
        "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"
    );
}

#[test]
fn an_entry_below_the_claude_dir_is_linked_under_a_parent_of_the_panes_own() {
    // 2.1.337's `state/deleted-transcripts/` (markers that stop a session
    // from saving a transcript the user deleted) is shared, while the rest
    // of `state/` (caches) stays each pane's own.
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let config = h.pane_dir("main_0_1").join("config");
    let user = h.user_claude_dir();
    assert!(!is_symlink(&config.join("state")));
    assert!(config.join("state").is_dir());
    assert_eq!(mode(&user.join("state")), 0o700);
    assert_eq!(
        fs::read_link(config.join("state/deleted-transcripts")).unwrap(),
        user.join("state/deleted-transcripts")
    );
    put(&config, "state/deleted-transcripts/s1", "");
    assert!(user.join("state/deleted-transcripts/s1").is_file());
    put(&config, "state/cache.json", "{}");
    assert!(!user.join("state/cache.json").exists());

    // A pane-local one (the link replaced by a real dir) goes home at
    // removal.
    fs::remove_file(config.join("state/deleted-transcripts")).unwrap();
    put(&config, "state/deleted-transcripts/s2", "x");
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert!(eventually(|| !h.pane_dir("main_0_1").exists()));
    assert_eq!(
        fs::read_to_string(user.join("state/deleted-transcripts/s2")).unwrap(),
        "x"
    );

    // A link in place of the pane's parent is never followed: the pane's
    // dir is kept, saying so, and nothing moves from where it points.
    create(&plugin, "main_0_2").unwrap();
    let config = h.pane_dir("main_0_2").join("config");
    fs::remove_file(config.join("state/deleted-transcripts")).unwrap();
    fs::remove_dir(config.join("state")).unwrap();
    put(&h.outside(), "deleted-transcripts/planted", "outside");
    symlink(h.outside(), config.join("state")).unwrap();
    let err = close(&plugin, "main_0_2", PaneExit::exited(0)).unwrap_err();
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    assert!(h.pane_dir("main_0_2").exists());
    stop(&plugin, SERVER_A);
    assert!(h.outside().join("deleted-transcripts/planted").is_file());
    assert!(!user.join("state/deleted-transcripts/planted").exists());
}
