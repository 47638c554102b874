//! host-shim's command line, run as a user would: the real binary, real
//! plugin libraries and real PTYs.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use ccmux_tests::{
    artifacts, pane_ids, pane_lines, plugin_entry, repo_root, run, wait_for, Background, Sandbox,
};

fn probe_toml(sandbox: &Sandbox, config: &str) -> PathBuf {
    let record = sandbox.path().join("record");
    let config = format!("record = {:?}\n{config}", record.display().to_string());
    sandbox.write(
        "plugins.toml",
        &plugin_entry("probe", &artifacts().probe_plugin, true, &config),
    )
}

fn records(sandbox: &Sandbox) -> Vec<String> {
    sandbox.read("record").lines().map(str::to_string).collect()
}

fn shim_run(sandbox: &Sandbox, config: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = sandbox.host_shim();
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(sandbox.path().join("state"))
        .args(args);
    cmd
}

/// host-shim in the background with `ids` panes that print `up` and sleep;
/// returns once every pane is up.
fn start_sleeping_panes(sandbox: &Sandbox, config: &Path, ids: &[&str]) -> Background {
    let mut args: Vec<&str> = ids.iter().flat_map(|id| ["--pane-id", *id]).collect();
    args.extend(["--", "sh", "-c", "echo up; sleep 60"]);
    let shim = Background::start(shim_run(sandbox, config, &args), sandbox, "shim");
    wait_for("every pane to start", 30, || {
        let out = shim.stdout();
        ids.iter().all(|id| out.contains(&format!("[{id}] up")))
    });
    shim
}

#[test]
fn check_on_the_root_plugins_toml_succeeds() {
    let sandbox = Sandbox::new();
    let out = run(sandbox
        .host_shim()
        .arg("check")
        .arg("--config")
        .arg(repo_root().join("plugins.toml")));
    assert!(out.status.success(), "{out}");
    // First which file and where libraries are looked up, then the plugins.
    let mut lines = out.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("# config: {}", repo_root().join("plugins.toml").display()).as_str()),
        "{out}"
    );
    let search = lines.next().unwrap_or_default();
    let exe_dir = artifacts()
        .host_shim
        .parent()
        .unwrap()
        .display()
        .to_string();
    assert_eq!(search, format!("# library search: {exe_dir}"), "{out}");
    let line = lines.next().unwrap_or_default();
    assert!(line.starts_with("isolation\t"), "{out}");
    assert!(line.contains("libccmux_isolation_plugin"), "{out}");
    assert!(
        line.contains(&format!("api {}", ccmux_plugin_api::API_VERSION)),
        "{out}"
    );
    assert!(line.ends_with("ok"), "{out}");
}

#[test]
fn check_names_a_missing_plugin_file_and_fails() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path().join("libgone.so");
    let config = sandbox.write("plugins.toml", &plugin_entry("gone", &missing, false, ""));
    let out = run(sandbox
        .host_shim()
        .arg("check")
        .arg("--config")
        .arg(&config));
    assert!(!out.status.success(), "{out}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains(&missing.display().to_string()), "{out}");
    assert!(all.contains("does not exist"), "{out}");

    // `plugins` lists the same failure without failing.
    let out = run(sandbox
        .host_shim()
        .arg("plugins")
        .arg("--config")
        .arg(&config));
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains("gone"), "{out}");
}

#[test]
fn check_names_a_missing_config_file() {
    let sandbox = Sandbox::new();
    let out = run(sandbox
        .host_shim()
        .arg("check")
        .arg("--config")
        .arg("nowhere.toml"));
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("nowhere.toml"), "{out}");
}

#[test]
fn panes_run_concurrently_in_ptys_with_the_env_the_plugins_made() {
    let sandbox = Sandbox::new();
    let config = probe_toml(
        &sandbox,
        "set_env = { PROBE = \"from-plugin\" }\nunset_env = [\"UNSET_ME\"]\nrendezvous = 3",
    );
    let out = run(shim_run(&sandbox, &config, &["--panes", "3", "--", "sh", "-c"])
        .arg("test -t 0 && test -t 1 && tty=yes; echo \"probe=$PROBE unset=${UNSET_ME-gone} tty=$tty\"")
        .env("UNSET_ME", "inherited"));
    assert!(out.status.success(), "{out}");
    let ids = pane_ids(&out.stdout);
    assert_eq!(ids.len(), 3, "{out}");
    for id in &ids {
        let parts: Vec<&str> = id.split('_').collect();
        assert_eq!(
            parts.len(),
            3,
            "pane id {id} is {{session}}_{{window}}_{{index}}"
        );
        assert_eq!(
            pane_lines(&out.stdout, id),
            ["probe=from-plugin unset=gone tty=yes"],
            "{out}"
        );
    }
    // All three on_pane_create calls were in the plugin at once (the probe
    // fails the hook otherwise), and every pane was closed.
    let closes = records(&sandbox)
        .iter()
        .filter(|l| l.starts_with("probe on_pane_close"))
        .count();
    assert_eq!(closes, 3, "{:?}", records(&sandbox));
}

#[test]
fn a_failing_command_makes_the_exit_status_non_zero() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "");
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--", "sh", "-c", "echo bye; exit 3"],
    ));
    assert_eq!(out.status.code(), Some(1), "{out}");
    let close = records(&sandbox)
        .into_iter()
        .find(|l| l.starts_with("probe on_pane_close"))
        .expect("pane closed");
    assert!(close.ends_with("exited with status 3"), "{close}");
}

#[test]
fn a_required_plugin_failure_keeps_the_pane_from_starting() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "fail_in = [\"on_pre_spawn\"]");
    let marker = sandbox.path().join("ran");
    let out = run(shim_run(&sandbox, &config, &["--pane-id", "p_0_0", "--", "touch"]).arg(&marker));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        !marker.exists(),
        "the command ran although on_pre_spawn failed"
    );
    assert!(
        out.stdout.contains("probe told to fail in on_pre_spawn")
            || out.stderr.contains("probe told to fail in on_pre_spawn"),
        "{out}"
    );
    assert!(records(&sandbox)
        .iter()
        .any(|l| l.starts_with("probe on_pane_close p_0_0")));
}

#[test]
fn a_disabled_plugin_changes_nothing_without_recompiling() {
    let sandbox = Sandbox::new();
    let text = plugin_entry(
        "probe",
        &artifacts().probe_plugin,
        true,
        "set_env = { PROBE = \"from-plugin\" }",
    )
    .replace("required = true", "required = true\nenabled = false");
    let config = sandbox.write("plugins.toml", &text);
    let out = run(shim_run(
        &sandbox,
        &config,
        &[
            "--pane-id",
            "p_0_0",
            "--",
            "sh",
            "-c",
            "echo \"probe=${PROBE-unset}\"",
        ],
    ));
    assert!(out.status.success(), "{out}");
    assert_eq!(pane_lines(&out.stdout, "p_0_0"), ["probe=unset"], "{out}");
}

#[test]
fn invalid_pane_ids_are_refused_before_any_hook() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "");
    for bad in ["../escape", "a/b", "", ".hidden"] {
        let out = run(shim_run(
            &sandbox,
            &config,
            &["--pane-id", bad, "--", "true"],
        ));
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out}");
        assert!(out.stderr.contains("invalid pane id"), "{bad:?}: {out}");
    }
    assert!(
        !records(&sandbox)
            .iter()
            .any(|l| l.contains("on_pane_create")),
        "{:?}",
        records(&sandbox)
    );
}

#[test]
fn keep_panes_then_restore_runs_the_same_panes_again() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "");
    let out = run(shim_run(
        &sandbox,
        &config,
        &[
            "--pane-id",
            "keep_0_0",
            "--pane-id",
            "keep_0_1",
            "--keep-panes",
            "--",
            "true",
        ],
    ));
    assert!(out.status.success(), "{out}");
    let first = records(&sandbox);
    assert!(
        !first.iter().any(|l| l.contains("on_pane_close")),
        "{first:?}"
    );
    assert_eq!(
        first.last().map(String::as_str),
        Some("probe on_server_stop ")
    );

    let out = run(shim_run(
        &sandbox,
        &config,
        &["--restore", "--", "sh", "-c", "echo again"],
    ));
    assert!(out.status.success(), "{out}");
    let mut ids = pane_ids(&out.stdout);
    ids.sort();
    assert_eq!(ids, ["keep_0_0", "keep_0_1"], "{out}");
    let second = &records(&sandbox)[first.len()..];
    assert!(
        second
            .iter()
            .any(|l| l == "probe on_server_start keep_0_0,keep_0_1"),
        "restored panes are live in on_server_start: {second:?}"
    );
    assert_eq!(
        second
            .iter()
            .filter(|l| l.contains("on_pane_close"))
            .count(),
        2,
        "{second:?}"
    );
}

#[test]
fn a_second_shim_on_the_same_state_dir_is_refused() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "");
    let _first = start_sleeping_panes(&sandbox, &config, &["busy_0_0"]);
    let out = run(shim_run(&sandbox, &config, &["--", "true"]));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("another host-shim is running"), "{out}");
    assert!(
        out.stderr
            .contains(&sandbox.path().join("state").display().to_string()),
        "{out}"
    );
}

#[test]
fn sigterm_ends_gracefully_and_keeps_the_panes_for_restore() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "");
    let mut shim = start_sleeping_panes(&sandbox, &config, &["term_0_0"]);
    shim.signal("TERM");
    let status = shim.wait(30);
    assert_eq!(status.code(), Some(143), "stderr: {}", shim.stderr());
    let lines = records(&sandbox);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("probe on_server_stop "),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("on_pane_close")),
        "{lines:?}"
    );

    let out = run(shim_run(
        &sandbox,
        &config,
        &["--restore", "--", "sh", "-c", "echo back"],
    ));
    assert!(out.status.success(), "{out}");
    assert_eq!(pane_lines(&out.stdout, "term_0_0"), ["back"], "{out}");
}

#[test]
fn sigkill_leaves_a_state_dir_the_next_restore_can_use() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "");
    let mut shim = start_sleeping_panes(&sandbox, &config, &["kill_0_0", "kill_0_1"]);
    shim.signal("KILL");
    assert_eq!(shim.wait(30).signal(), Some(9));

    let out = run(shim_run(
        &sandbox,
        &config,
        &["--restore", "--", "sh", "-c", "echo back"],
    ));
    assert!(out.status.success(), "{out}");
    let mut ids = pane_ids(&out.stdout);
    ids.sort();
    assert_eq!(ids, ["kill_0_0", "kill_0_1"], "{out}");
}

#[test]
fn sighup_reloads_plugins_toml_while_panes_run() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let write = |a_on: bool, b_on: bool| {
        let config = format!("record = {:?}", record.display().to_string());
        let a = plugin_entry("a", &artifacts().probe_plugin, false, &config).replace(
            "required = false",
            &format!("required = false\nenabled = {a_on}"),
        );
        let b = plugin_entry("b", &artifacts().probe_plugin, false, &config).replace(
            "required = false",
            &format!("required = false\nenabled = {b_on}"),
        );
        sandbox.write("plugins.toml", &(a + &b))
    };
    let config = write(true, false);
    let go = sandbox.path().join("go");
    let mut shim = Background::start(
        {
            let mut cmd = shim_run(
                &sandbox,
                &config,
                &["--pane-id", "hup_0_0", "--", "sh", "-c"],
            );
            cmd.arg(format!(
                "echo up; while [ ! -e {} ]; do sleep 0.05; done",
                go.display()
            ));
            cmd
        },
        &sandbox,
        "shim",
    );
    wait_for("the pane to start", 30, || {
        shim.stdout().contains("[hup_0_0] up")
    });
    write(false, true);
    shim.signal("HUP");
    wait_for("the reload", 30, || shim.stderr().contains("reloaded"));
    std::fs::write(&go, "").unwrap();
    assert!(shim.wait(30).success(), "stderr: {}", shim.stderr());

    let lines = records(&sandbox);
    let calls: Vec<String> = lines
        .iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        calls,
        [
            "a new",
            "a on_server_start",
            "a on_pane_create",
            "a on_pre_spawn",
            "b new",
            "b on_server_start",
            "b on_pane_close",
            "b on_server_stop",
        ],
        "{lines:?}"
    );
    assert_eq!(lines[5], "b on_server_start hup_0_0", "{lines:?}");
}

#[test]
fn a_panic_on_a_plugin_thread_reaches_the_host_log() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "panic_in_thread = true");
    let out = run(
        shim_run(&sandbox, &config, &["--pane-id", "t_0_0", "--", "true"]).env("RUST_LOG", "error"),
    );
    assert!(out.status.success(), "{out}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("a plugin thread panicked"))
        .unwrap_or_else(|| panic!("no panic in the host log: {out}"));
    assert!(line.contains("probe's own thread panics"), "{line}");
    assert!(line.contains("plugin=\"probe\""), "{line}");
    assert!(line.contains("probe-plugin/src/lib.rs"), "{line}");
}

#[test]
fn the_isolation_plugin_logs_through_host_shims_subscriber() {
    let sandbox = Sandbox::new();
    let out = run(shim_run(
        &sandbox,
        &repo_root().join("plugins.toml"),
        &["--pane-id", "log_0_0", "--", "true"],
    )
    .env("RUST_LOG", "ccmux::plugin=info"));
    assert!(out.status.success(), "{out}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("per-pane Claude isolation started"))
        .unwrap_or_else(|| panic!("no isolation event in the host log: {out}"));
    assert!(line.contains("plugin=\"isolation\""), "{line}");
    assert!(
        line.contains(&sandbox.home().display().to_string()),
        "{line}"
    );
}
