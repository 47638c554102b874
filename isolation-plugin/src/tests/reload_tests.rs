//! A reload of plugins.toml that changes this plugin's config: the host
//! constructs a new instance in the same process and replays
//! on_server_start into it while the old instance still runs. Both serve
//! one server, share its identity lock, and must not undo each other's work.

use std::fs;

use ccmux_plugin_api::PaneExit;

use super::*;

/// The instance a reload adds to the server `old` runs as `server_id`.
fn reloaded(h: &Harness, toml: &str, server_id: &str, live: &[&str]) -> IsolationPlugin {
    let new = h.plugin(toml);
    start(&new, server_id, live).expect("the same process joins the identity lock");
    new
}

fn claim_of(h: &Harness, id: &str) -> String {
    metadata_json(&h.pane_dir(id))["claim"]
        .as_str()
        .expect("a claim in .pane-metadata")
        .to_string()
}

#[test]
fn a_reloaded_instance_does_not_take_the_servers_panes_for_orphans() {
    let h = Harness::new();
    let old = h.started("grace_period_ms = 600000", SERVER_A);
    create(&old, "main_0_1").unwrap();
    create(&old, "main_0_2").unwrap();
    create(&old, "main_0_3").unwrap();
    // main_0_2 is in its grace period; main_0_3 is being created as the
    // host takes its list of open panes, so the list lacks it.
    close(&old, "main_0_2", PaneExit::exited(0)).unwrap();

    let _new = reloaded(&h, "grace_period_ms = 10", SERVER_A, &["main_0_1"]);
    for id in ["main_0_1", "main_0_2", "main_0_3"] {
        assert!(h.pane_dir(id).exists(), "{id} was taken for an orphan");
    }
}

#[test]
fn a_removal_keeps_a_dir_another_instance_claimed_since() {
    let h = Harness::new();
    let old = h.started("grace_period_ms = 600000", SERVER_A);
    create(&old, "main_0_1").unwrap();
    let first_claim = claim_of(&h, "main_0_1");
    close(&old, "main_0_1", PaneExit::exited(0)).unwrap();
    assert!(old.removals.is_pending("main_0_1"));

    // The new instance re-creates the pane; the old one's queue does not
    // know, and still holds the removal.
    let new = reloaded(&h, "grace_period_ms = 600000", SERVER_A, &[]);
    create(&new, "main_0_1").unwrap();
    assert_ne!(claim_of(&h, "main_0_1"), first_claim);
    fs::write(h.pane_dir("main_0_1").join("config/history.jsonl"), "new").unwrap();

    // Dropping the old instance flushes its removals.
    drop(old);
    assert_eq!(
        fs::read_to_string(h.pane_dir("main_0_1").join("config/history.jsonl")).unwrap(),
        "new"
    );
    assert!(spawn_env(&new, "main_0_1", &[]).is_ok());
}

#[test]
fn a_zero_grace_close_keeps_a_dir_another_instance_claimed_since() {
    let h = Harness::new();
    let old = h.started("grace_period_ms = 0", SERVER_A);
    create(&old, "main_0_1").unwrap();
    let new = reloaded(&h, "grace_period_ms = 0", SERVER_A, &["main_0_1"]);
    create(&new, "main_0_1").unwrap();

    // The old instance closes the pane it knew, with the claim it made.
    close(&old, "main_0_1", PaneExit::exited(0)).unwrap();
    assert!(h.pane_dir("main_0_1").exists());
    assert!(spawn_env(&new, "main_0_1", &[]).is_ok());
}

#[test]
fn closing_a_pane_the_previous_instance_opened_uses_the_claim_on_disk() {
    let h = Harness::new();
    let old = h.started("", SERVER_A);
    create(&old, "main_0_1").unwrap();
    create(&old, "main_0_2").unwrap();
    // main_0_2's metadata predates claim tokens.
    let path = h.pane_dir("main_0_2").join(".pane-metadata");
    let mut metadata = metadata_json(&h.pane_dir("main_0_2"));
    metadata.as_object_mut().unwrap().remove("claim");
    fs::write(&path, serde_json::to_vec(&metadata).unwrap()).unwrap();

    let new = reloaded(
        &h,
        "grace_period_ms = 0",
        SERVER_A,
        &["main_0_1", "main_0_2"],
    );
    close(&new, "main_0_1", PaneExit::exited(0)).unwrap();
    close(&new, "main_0_2", PaneExit::exited(0)).unwrap();
    assert!(!h.pane_dir("main_0_1").exists());
    assert!(!h.pane_dir("main_0_2").exists());
}
