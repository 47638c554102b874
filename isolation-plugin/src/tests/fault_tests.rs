//! Faults under hostile or unlucky conditions (issue 7): panes that never
//! start, claimers racing for one pane id, user files that would block or
//! never end, leftovers nobody owns, and the boundaries of the rules.

use std::fs;
use std::os::unix::fs::symlink;
use std::sync::{Arc, Barrier};

use ccmux_plugin_api::{HookErrorKind, PaneExit};

use super::*;
use crate::floor::private_fs::open_dir_nofollow;
use crate::pane_dirs::pane_lock::PaneLock;

/// A server id per claimer: a fresh UUID, so claimers never share an
/// identity lock.
fn server_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[test]
fn of_many_servers_claiming_one_pane_id_at_once_exactly_one_wins() {
    const CLAIMERS: usize = 8;
    const ROUNDS: usize = 25;
    let h = Harness::new();
    let plugins: Vec<Arc<IsolationPlugin>> = (0..CLAIMERS)
        .map(|n| Arc::new(h.started("grace_period_ms = 0", &server_id(n))))
        .collect();
    for round in 0..ROUNDS {
        let id = format!("contested_{round}");
        let barrier = Arc::new(Barrier::new(CLAIMERS));
        let outcomes: Vec<(usize, Result<(), ccmux_plugin_api::HookError>)> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = plugins
                    .iter()
                    .enumerate()
                    .map(|(n, plugin)| {
                        let barrier = Arc::clone(&barrier);
                        let id = id.clone();
                        scope.spawn(move || {
                            barrier.wait();
                            (n, create(plugin, &id))
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
        let winners: Vec<usize> = outcomes
            .iter()
            .filter(|(_, outcome)| outcome.is_ok())
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        for (_, outcome) in &outcomes {
            if let Err(err) = outcome {
                assert!(
                    err.message.contains("belongs to another ccmux server"),
                    "round {round}: {}",
                    err.message
                );
            }
        }
        let winner = winners[0];
        assert_eq!(
            metadata_json(&h.pane_dir(&id))["owner"],
            server_id(winner).as_str()
        );
        // The losers closing "their" pane never delete the winner's dir.
        for (n, plugin) in plugins.iter().enumerate() {
            if n != winner {
                let _refused_pane_closes = close(plugin, &id, PaneExit::exited(0));
            }
        }
        assert!(h.pane_dir(&id).join("config").is_dir(), "round {round}");
    }
}

#[test]
fn a_restored_pane_that_never_started_keeps_its_dir_for_the_next_restore() {
    let h = Harness::new();
    let first = h.started("grace_period_ms = 0", SERVER_A);
    create(&first, "main_0_1").unwrap();
    fs::write(
        h.pane_dir("main_0_1").join("config/transcript.jsonl"),
        "history",
    )
    .unwrap();
    stop(&first, SERVER_A);
    drop(first);

    let second = h.plugin("grace_period_ms = 0");
    start(&second, SERVER_A, &["main_0_1"]).unwrap();
    create(&second, "main_0_1").unwrap();
    // Its command was not found: the host closes it unstarted.
    close(&second, "main_0_1", PaneExit::unknown(true)).unwrap();
    assert_eq!(
        fs::read_to_string(h.pane_dir("main_0_1").join("config/transcript.jsonl")).unwrap(),
        "history"
    );
    // And the next restore takes it back with its session id.
    let session = metadata_json(&h.pane_dir("main_0_1"))["claude_session_id"].clone();
    stop(&second, SERVER_A);
    let third = h.plugin("grace_period_ms = 0");
    start(&third, SERVER_A, &["main_0_1"]).unwrap();
    let vars = spawn_env(&third, "main_0_1", &[]).unwrap();
    assert_eq!(vars["CCMUX_CLAUDE_SESSION_ID"], session.as_str().unwrap());
}

#[test]
fn a_new_pane_that_never_started_is_removed_but_an_unclaimed_one_is_kept() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    // Claimed new by this instance, then a later plugin refused it.
    create(&plugin, "fresh").unwrap();
    close(&plugin, "fresh", PaneExit::unknown(true)).unwrap();
    assert!(!h.pane_dir("fresh").exists());

    // A pane another instance of this server claimed, closed unstarted
    // through this one (it never claimed it): not this close's to remove.
    let other = h.started("grace_period_ms = 0", SERVER_A);
    create(&other, "theirs").unwrap();
    close(&plugin, "theirs", PaneExit::unknown(true)).unwrap();
    assert!(h.pane_dir("theirs").join("config").is_dir());
}

#[test]
fn a_claim_that_fails_after_making_the_dir_leaves_no_empty_dir() {
    // The child half: a file size limit of 0 makes every write fail (as a
    // full disk would) while mkdir still works.
    if let Some(base) = std::env::var_os(FSIZE_CHILD_BASE) {
        let limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: no preconditions; this process runs only this test.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
        }
        let h = Harness::new();
        let config = format!("base_dir = {:?}", base.to_str().unwrap());
        let plugin = h.started(&config, SERVER_A);
        let err = create(&plugin, "main_0_1").unwrap_err();
        assert_eq!(err.kind, HookErrorKind::Io, "{}", err.message);
        println!("CHILD-ERROR: {}", err.message);
        return;
    }
    let h = Harness::new();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::fault_tests::a_claim_that_fails_after_making_the_dir_leaves_no_empty_dir",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(FSIZE_CHILD_BASE, h.base())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("CHILD-ERROR"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(".pane-metadata"), "{stdout}");
    assert!(h.base().is_dir());
    assert!(!h.pane_dir("main_0_1").exists(), "{:?}", names(&h.base()));
}

/// Set in the child process of the failing-claim test: its base dir.
const FSIZE_CHILD_BASE: &str = "CCMUX_ISOLATION_TEST_FSIZE_CHILD_BASE";

#[test]
fn a_user_claude_json_that_would_block_or_never_end_is_refused_at_once() {
    let h = Harness::new();
    let path = h.user_claude_json();
    let fifo = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let base = h.base();
    let plugin = Arc::new(h.started("", SERVER_A));
    let creating = Arc::clone(&plugin);
    let logs = within_5s(move || logs_of(|| create(&creating, "fifo").unwrap()))
        .expect("creating a pane never waits on a FIFO");
    assert!(logs.contains("not a regular file"), "{logs}");
    assert!(!base.join("fifo/config/.claude.json").exists());

    fs::remove_file(&path).unwrap();
    symlink("/dev/zero", &path).unwrap();
    let creating = Arc::clone(&plugin);
    let logs = within_5s(move || logs_of(|| create(&creating, "zero").unwrap()))
        .expect("creating a pane never reads /dev/zero");
    assert!(logs.contains("not a regular file"), "{logs}");

    // Past the size limit (sparse: no disk is used).
    fs::remove_file(&path).unwrap();
    let huge = fs::File::create(&path).unwrap();
    huge.set_len(crate::into_pane::seed::USER_CLAUDE_JSON_LIMIT + 1)
        .unwrap();
    let creating = Arc::clone(&plugin);
    let logs = within_5s(move || logs_of(|| create(&creating, "huge").unwrap())).unwrap();
    assert!(logs.contains("-byte limit"), "{logs}");
    assert!(logs.contains(path.to_str().unwrap()), "{logs}");
}

#[test]
fn pane_metadata_that_is_a_fifo_is_unusable_not_a_hang() {
    let h = Harness::new();
    let plugin = Arc::new(h.started("", SERVER_A));
    fs::create_dir_all(h.pane_dir("main_0_1")).unwrap();
    let fifo = std::ffi::CString::new(
        h.pane_dir("main_0_1")
            .join(".pane-metadata")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let creating = Arc::clone(&plugin);
    let err = within_5s(move || create(&creating, "main_0_1"))
        .expect("never waits on a FIFO")
        .unwrap_err();
    assert!(
        err.message.contains("not a regular file"),
        "{}",
        err.message
    );
}

#[test]
fn a_reload_that_moves_base_dir_reports_the_dirs_left_in_the_old_one() {
    let h = Harness::new();
    // An identity of its own: the record of current bases is process-wide.
    let server = "5e1f0ad2-7c39-4d4e-8f51-0d2b3c4a5e6f";
    let old = h.started("", server);
    create(&old, "main_0_1").unwrap();
    let moved = h.root().join("moved-base");
    let new = h.plugin(&format!("base_dir = {:?}", moved.to_str().unwrap()));
    start(&new, server, &["main_0_1"]).unwrap();
    let logs = logs_of(|| drop(old));
    assert!(logs.contains("changed base_dir"), "{logs}");
    assert!(
        logs.contains(&h.pane_dir("main_0_1").display().to_string()),
        "{logs}"
    );
    // The dir is left for its pane, which still runs.
    assert!(h.pane_dir("main_0_1").join("config").is_dir());

    // A reload that keeps the base says nothing.
    let same = h.started("", "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d");
    create(&same, "main_0_2").unwrap();
    let again = h.plugin("");
    start(
        &again,
        "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d",
        &["main_0_2"],
    )
    .unwrap();
    let logs = logs_of(|| drop(same));
    assert!(!logs.contains("changed base_dir"), "{logs}");
}

#[test]
fn pane_ids_of_the_documented_maximum_length_are_accepted_and_longer_refused() {
    let h = Harness::new();
    let plugin = h.started("grace_period_ms = 0", SERVER_A);
    let longest = "p".repeat(ccmux_plugin_api::MAX_PANE_ID_LEN);
    create(&plugin, &longest).unwrap();
    assert!(h.pane_dir(&longest).join("config").is_dir());
    spawn_env(&plugin, &longest, &[]).unwrap();

    let too_long = "p".repeat(ccmux_plugin_api::MAX_PANE_ID_LEN + 1);
    let err = create(&plugin, &too_long).unwrap_err();
    assert_eq!(err.kind, HookErrorKind::InvalidInput);
    assert!(!h.pane_dir(&too_long).exists());
}

#[test]
fn directory_opens_never_follow_a_link() {
    let h = Harness::new();
    let target = h.outside().join("dir");
    fs::create_dir_all(&target).unwrap();
    let link = h.root().join("link");
    symlink(&target, &link).unwrap();
    let err = open_dir_nofollow("a test dir", &link).unwrap_err();
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    let err = PaneLock::acquire(&link).unwrap_err();
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    let err = PaneLock::create_and_acquire(&link).unwrap_err();
    assert!(err.message.contains("symbolic link"), "{}", err.message);
    assert_eq!(names(&target), Vec::<String>::new());
}
