//! Grace-period removal, server stop, the orphan scan and the identity lock.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::process::{Child, Command};
use std::time::Duration;

use ccmux_plugin_api::{HookErrorKind, PaneExit};

use super::*;

fn marker(h: &Harness, id: &str) -> PathBuf {
    h.pane_dir(id).join("config/history.jsonl")
}

#[test]
fn re_creating_a_pane_within_its_grace_period_keeps_its_dir() {
    let h = Harness::new();
    // A grace period no test run reaches: what is checked is that the
    // removal is cancelled, not how fast the machine is.
    let plugin = h.started("grace_period_ms = 600000", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    fs::write(marker(&h, "main_0_1"), "conversation").unwrap();

    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert!(plugin.removals.is_pending("main_0_1"));
    create(&plugin, "main_0_1").unwrap();
    assert!(!plugin.removals.is_pending("main_0_1"));

    // Every removal still pending runs now, deadline or not: none is
    // this pane's, so the dir and its content are still there.
    plugin.removals.flush();
    assert_eq!(
        fs::read_to_string(marker(&h, "main_0_1")).unwrap(),
        "conversation"
    );
    assert!(spawn_env(&plugin, "main_0_1", &[]).is_ok());
}

#[test]
fn a_closed_pane_dir_is_removed_after_its_grace_period() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 200", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    create(&plugin, "main_0_2").unwrap();
    close(&plugin, "main_0_1", PaneExit::signaled(9)).unwrap();
    assert!(eventually(|| !h.pane_dir("main_0_1").exists()));
    assert!(h.pane_dir("main_0_2").exists());
    // The pane is gone: spawning into it again is refused.
    assert!(spawn_env(&plugin, "main_0_1", &[]).is_err());
}

#[test]
fn a_grace_period_of_zero_removes_before_close_returns() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert!(!h.pane_dir("main_0_1").exists());
    assert!(!plugin.removals.is_pending("main_0_1"));
}

#[test]
fn server_stop_finishes_pending_removals_and_keeps_open_panes() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 600000", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    create(&plugin, "main_0_2").unwrap();
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert!(h.pane_dir("main_0_1").exists());

    stop(&plugin, SERVER_A);
    assert!(!h.pane_dir("main_0_1").exists());
    assert!(h.pane_dir("main_0_2").exists());

    // The identity lock was released: a new instance can take it, and
    // restores the open pane with its dir.
    let next = h.plugin("");
    start(&next, SERVER_A, &["main_0_2"]).unwrap();
    assert!(h.pane_dir("main_0_2").exists());
}

#[test]
fn dropping_the_plugin_finishes_pending_removals_and_stops_the_worker() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 600000", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    drop(plugin);
    assert!(!h.pane_dir("main_0_1").exists());
}

/// A child that is killed and reaped when the test ends, pass or fail.
struct Process(Child);
impl Process {
    fn sleep(secs: &str) -> Self {
        Process(Command::new("sleep").arg(secs).spawn().unwrap())
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}
impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_pane_whose_process_still_runs_keeps_its_dir_past_the_grace_period() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 200", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let process = Process::sleep("60");
    close(
        &plugin,
        "main_0_1",
        PaneExit::unknown(false).with_pid(process.pid()),
    )
    .unwrap();

    assert!(eventually(|| !plugin.removals.is_pending("main_0_1")));
    assert!(h.pane_dir("main_0_1").exists());
    drop(process);

    // The next start of the server cleans it as an orphan.
    stop(&plugin, SERVER_A);
    start(&plugin, SERVER_A, &[]).unwrap();
    assert!(!h.pane_dir("main_0_1").exists());
}

#[test]
fn a_pane_whose_process_exits_within_the_grace_period_is_removed() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 60000", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    // Exits by itself and is not reaped until the end of the test: a
    // zombie, which writes nothing and counts as gone.
    let process = Process::sleep("0.2");
    close(
        &plugin,
        "main_0_1",
        PaneExit::unknown(false).with_pid(process.pid()),
    )
    .unwrap();
    assert!(eventually(|| !h.pane_dir("main_0_1").exists()));
}

#[test]
fn a_pane_whose_process_may_run_with_no_pid_is_kept() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    close(&plugin, "main_0_1", PaneExit::unknown(false)).unwrap();
    assert!(h.pane_dir("main_0_1").exists());
    assert!(!plugin.removals.is_pending("main_0_1"));
}

/// Another process holding `server_id`'s lock, as a running server does.
struct LockHolder(std::process::Child);

impl LockHolder {
    fn hold(h: &Harness, server_id: &str) -> Self {
        let owners = h.base().join(".owners");
        std::fs::create_dir_all(&owners).unwrap();
        let ready = h.root().join("holder-ready");
        // flock(1) holds the lock itself (`--close` keeps it from the
        // command), and the command lives until its stdin closes.
        let child = Command::new("flock")
            .arg("--close")
            .arg(owners.join(format!("{server_id}.lock")))
            .args(["-c", &format!("touch {}; read _", ready.display())])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("flock(1) runs");
        assert!(
            eventually(|| ready.exists()),
            "flock(1) did not take the lock"
        );
        LockHolder(child)
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        // Ends the command flock(1) was running.
        drop(self.0.stdin.take());
    }
}

#[test]
fn a_second_process_with_the_same_identity_is_refused() {
    let h = Harness::new();
    let holder = LockHolder::hold(&h, SERVER_A);
    let plugin = h.plugin("");
    let err = start(&plugin, SERVER_A, &[]).unwrap_err();
    assert_eq!(err.kind, HookErrorKind::Failed);
    assert!(
        err.message.contains("another ccmux server"),
        "{}",
        err.message
    );
    let lock = h.base().join(format!(".owners/{SERVER_A}.lock"));
    assert!(
        err.message.contains(&lock.display().to_string()),
        "{}",
        err.message
    );

    // A different identity on the same base dir is fine.
    let other = h.plugin("");
    start(&other, SERVER_B, &[]).unwrap();

    drop(holder);
    // A process another test forks at this moment holds a copy of the lock
    // fd until it execs, and with it the lock: give that a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Err(err) = start(&plugin, SERVER_A, &[]) {
        assert!(std::time::Instant::now() < deadline, "{}", err.message);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn instances_in_one_process_share_the_identity_lock() {
    // What a reload that changes the plugin's config does: it constructs
    // and starts the new instance while the old one still runs.
    let h = Harness::new();
    let old = h.started("", SERVER_A);
    let new = h.plugin("grace_period_ms = 10");
    start(&new, SERVER_A, &[]).expect("the same process shares the lock");
    drop(old);
    // The new instance still holds it: another process is refused.
    let lock = h.base().join(format!(".owners/{SERVER_A}.lock"));
    let status = Command::new("flock")
        .args(["--nonblock", "--conflict-exit-code", "7"])
        .arg(&lock)
        .arg("true")
        .status()
        .expect("flock(1) runs");
    assert_eq!(
        status.code(),
        Some(7),
        "the lock was released with the old instance"
    );
}

#[test]
fn one_instance_cannot_switch_identity_without_stopping() {
    let h = Harness::new();
    let plugin = h.started("", SERVER_A);
    let err = start(&plugin, SERVER_B, &[]).unwrap_err();
    assert_eq!(err.kind, HookErrorKind::InvalidInput);
    start(&plugin, SERVER_A, &[]).unwrap();
}

/// Server A with an open pane `main_0_1` and a pane `main_0_2` that will
/// not be restored; B (stopped) and C (running) each with a pane of their
/// own; and two dirs without metadata.
struct OrphanScene {
    h: Harness,
    c: IsolationPlugin,
}

fn orphan_scene() -> OrphanScene {
    let h = Harness::new();
    h.write_user_claude_json(&serde_json::json!({"theme": "dark"}));
    let a = h.started("", SERVER_A);
    create(&a, "main_0_1").unwrap();
    create(&a, "main_0_2").unwrap();
    stop(&a, SERVER_A);
    let b = h.started("", SERVER_B);
    create(&b, "b_0_1").unwrap();
    stop(&b, SERVER_B);
    let c = h.started("", SERVER_C);
    create(&c, "c_0_1").unwrap();
    // A dir of unknown contents, and one that is an empty pane skeleton.
    fs::DirBuilder::new()
        .mode(0o700)
        .create(h.pane_dir("stray"))
        .unwrap();
    fs::write(h.pane_dir("stray").join("notes.txt"), "mine").unwrap();
    fs::DirBuilder::new()
        .mode(0o700)
        .create(h.pane_dir("skeleton"))
        .unwrap();
    fs::DirBuilder::new()
        .mode(0o700)
        .create(h.pane_dir("skeleton").join("config"))
        .unwrap();
    // Not pane dirs at all.
    fs::write(h.base().join("README"), "hands off").unwrap();
    OrphanScene { h, c }
}

#[test]
fn the_orphan_scan_removes_only_this_servers_unrestored_panes() {
    let OrphanScene { h, c: _c } = orphan_scene();
    let a = h.plugin("");
    start(&a, SERVER_A, &["main_0_1"]).unwrap();
    assert!(h.pane_dir("main_0_1").exists());
    assert!(!h.pane_dir("main_0_2").exists());
    for kept in ["b_0_1", "c_0_1", "README", ".owners"] {
        assert!(h.pane_dir(kept).exists(), "{kept}");
    }
    assert_unowned_dirs_handled(&h);
}

/// A dir without metadata: an empty skeleton (what an interrupted claim
/// leaves) is removed; one with content is moved aside whole into
/// `.unowned/`, out of its pane id's way, and nothing in it is lost.
fn assert_unowned_dirs_handled(h: &Harness) {
    assert!(!h.pane_dir("skeleton").exists(), "empty skeleton");
    assert!(!h.pane_dir("stray").exists(), "set aside");
    let unowned = h.base().join(".unowned");
    let aside = names(&unowned);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].starts_with("stray-"), "{aside:?}");
    assert_eq!(
        fs::read_to_string(unowned.join(&aside[0]).join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(mode(&unowned), 0o700);
}

#[test]
fn max_age_also_removes_old_dirs_of_servers_that_are_not_running() {
    let OrphanScene { h, c: _c } = orphan_scene();
    for id in ["b_0_1", "c_0_1", "stray", "skeleton"] {
        age(&h.pane_dir(id), 7200);
    }
    create_young_b_pane(&h);
    let a = h.plugin("max_age_secs = 3600");
    start(&a, SERVER_A, &["main_0_1"]).unwrap();

    assert!(!h.pane_dir("b_0_1").exists(), "old, owner not running");
    assert!(
        h.pane_dir("b_0_2").exists(),
        "owner not running, but recent"
    );
    assert!(h.pane_dir("c_0_1").exists(), "old, but its owner runs");
    assert_unowned_dirs_handled(&h);
    assert!(h.pane_dir("main_0_1").exists());
    assert!(h.base().join("README").exists());
}

/// B runs again briefly (restoring `b_0_1`) and opens `b_0_2`: a dir of a
/// server that is not running, but recent, so it may still come back.
fn create_young_b_pane(h: &Harness) {
    let b = h.plugin("");
    start(&b, SERVER_B, &["b_0_1"]).unwrap();
    create(&b, "b_0_2").unwrap();
    stop(&b, SERVER_B);
}

#[test]
fn a_pane_closed_while_the_server_stops_keeps_its_dir() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    let (flushing, resume) = plugin.removals.pause_flush.arm();
    std::thread::scope(|scope| {
        let stopping = scope.spawn(|| stop(&plugin, SERVER_A));
        flushing
            .recv_timeout(Duration::from_secs(5))
            .expect("on_server_stop flushes");
        // The server is stopping: it no longer owns panes to remove.
        close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
        drop(resume);
        stopping.join().unwrap();
    });
    assert!(h.pane_dir("main_0_1").exists());
    assert!(!plugin.removals.is_pending("main_0_1"));
}

#[test]
fn a_panicking_removal_neither_stops_the_worker_nor_blocks_cancel() {
    let h = Harness::new();
    let plugin = std::sync::Arc::new(h.started("grace_period_ms = 50", SERVER_A));
    create(&plugin, "main_0_1").unwrap();
    create(&plugin, "main_0_2").unwrap();
    crate::pane_dirs::removal::test_hooks::panic_when_removing(&h.pane_dir("main_0_1"));

    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    assert!(eventually(|| !plugin.removals.is_pending("main_0_1")));
    let worker_side = std::sync::Arc::clone(&plugin);
    assert_eq!(
        within_5s(move || worker_side.removals.cancel("main_0_1")),
        Some(false),
        "cancel waits forever for the removal that panicked"
    );
    assert!(h.pane_dir("main_0_1").exists());

    // The worker goes on removing.
    close(&plugin, "main_0_2", PaneExit::exited(0)).unwrap();
    assert!(eventually(|| !h.pane_dir("main_0_2").exists()));
}

#[test]
fn a_panicking_removal_does_not_escape_a_flush() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 600000", SERVER_A);
    create(&plugin, "main_0_1").unwrap();
    create(&plugin, "main_0_2").unwrap();
    crate::pane_dirs::removal::test_hooks::panic_when_removing(&h.pane_dir("main_0_1"));
    close(&plugin, "main_0_1", PaneExit::exited(0)).unwrap();
    close(&plugin, "main_0_2", PaneExit::exited(0)).unwrap();

    stop(&plugin, SERVER_A);
    assert!(h.pane_dir("main_0_1").exists());
    assert!(!h.pane_dir("main_0_2").exists());
    // Nothing is left marked as running.
    let plugin = std::sync::Arc::new(plugin);
    assert_eq!(
        within_5s(move || plugin.removals.cancel("main_0_1")),
        Some(false)
    );
}

#[test]
fn the_removal_thread_error_says_what_failed_and_what_to_do() {
    let err = crate::pane_dirs::removal::thread_start_error(&std::io::Error::from_raw_os_error(
        libc::EAGAIN,
    ));
    assert_eq!(err.kind, HookErrorKind::Io);
    for expect in [
        "removal thread",
        "closed panes",
        "ulimit -u",
        "reload plugins.toml",
    ] {
        assert!(err.message.contains(expect), "{expect}: {}", err.message);
    }
}

#[test]
fn a_dir_without_metadata_is_removed_only_if_its_pane_dirs_are_empty() {
    let h = Harness::new();
    fs::create_dir_all(h.base()).unwrap();
    fs::create_dir_all(h.outside().join("empty")).unwrap();
    let make = |id: &str, entries: &[&str]| {
        for entry in entries {
            let path = h.pane_dir(id).join(entry);
            match entry.strip_suffix('/') {
                Some(_) => fs::create_dir_all(&path).unwrap(),
                None => {
                    fs::create_dir_all(path.parent().unwrap()).unwrap();
                    fs::write(&path, "someone's").unwrap();
                }
            }
        }
    };
    make(
        "skeleton",
        &["config/", "sessions/", ".pane-metadata.tmp-1-0"],
    );
    make("history", &["config/history.jsonl", "sessions/"]);
    make("records", &["config/", "sessions/record.json"]);
    make("linked", &["config/"]);
    std::os::unix::fs::symlink(h.outside().join("empty"), h.pane_dir("linked/sessions")).unwrap();
    let outside_before = snapshot(&h.outside());

    let a = h.plugin("");
    start(&a, SERVER_A, &[]).unwrap();
    assert!(!h.pane_dir("skeleton").exists());
    let unowned = h.base().join(".unowned");
    for kept in ["history", "records", "linked"] {
        assert!(!h.pane_dir(kept).exists(), "{kept}");
        let aside: Vec<String> = names(&unowned)
            .into_iter()
            .filter(|name| name.starts_with(&format!("{kept}-")))
            .collect();
        assert_eq!(aside.len(), 1, "{kept}: {aside:?}");
    }
    let history = names(&unowned)
        .into_iter()
        .find(|name| name.starts_with("history-"))
        .unwrap();
    assert_eq!(
        fs::read_to_string(unowned.join(history).join("config/history.jsonl")).unwrap(),
        "someone's"
    );
    // The link moved with its dir; what it pointed at is untouched.
    assert_eq!(snapshot(&h.outside()), outside_before);

    // Set aside once: a second start finds nothing more to move.
    let before = snapshot(&unowned);
    stop(&a, SERVER_A);
    start(&a, SERVER_A, &[]).unwrap();
    assert_eq!(snapshot(&unowned), before);
}

#[test]
fn a_stopped_server_leaves_no_owner_lock_and_a_start_prunes_unheld_ones() {
    let h = Harness::new();
    let owners = h.base().join(".owners");
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    let lock_a = owners.join(format!("{SERVER_A}.lock"));
    assert!(lock_a.is_file());
    stop(&plugin, SERVER_A);
    assert!(!lock_a.exists(), "the stopped server's lock file is left");

    // A server killed before its stop leaves its file; one held by a
    // running server (another process) stays.
    std::fs::write(&lock_a, "").unwrap();
    let _running = LockHolder::hold(&h, SERVER_B);
    let lock_b = owners.join(format!("{SERVER_B}.lock"));
    let other = h.started(
        "grace_period_ms = 0",
        "cccccccc-0000-4000-8000-000000000003",
    );
    assert!(!lock_a.exists(), "an unheld lock file is left");
    assert!(lock_b.is_file(), "a running server's lock file was removed");
    stop(&other, "cccccccc-0000-4000-8000-000000000003");

    // And the identity starts again as before.
    let again = h.started("grace_period_ms = 0", SERVER_A);
    assert!(lock_a.is_file());
    stop(&again, SERVER_A);
}
