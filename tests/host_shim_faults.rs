//! host-shim under hostile conditions (issue 7): files planted in the
//! state dir. Through the real binary, with a fake HOME.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ccmux_tests::{artifacts, pane_lines, plugin_entry, repo_root, run, Background, Sandbox};

/// The root plugins.toml with no grace period: a pane dir that is going
/// to be removed is removed before host-shim exits.
fn isolation_toml(sandbox: &Sandbox) -> PathBuf {
    let text =
        std::fs::read_to_string(repo_root().join("plugins.toml")).expect("root plugins.toml");
    assert!(text.contains("grace_period_ms = 3000"), "{text}");
    sandbox.write(
        "plugins.toml",
        &text.replace("grace_period_ms = 3000", "grace_period_ms = 0"),
    )
}

fn probe_toml(sandbox: &Sandbox, name: &str, config: &str) -> PathBuf {
    let record = sandbox.path().join("record");
    let config = format!("record = {:?}\n{config}", record.display().to_string());
    sandbox.write(
        name,
        &plugin_entry("probe", &artifacts().probe_plugin, true, &config),
    )
}

fn records(sandbox: &Sandbox) -> Vec<String> {
    sandbox.read("record").lines().map(str::to_string).collect()
}

fn state(sandbox: &Sandbox) -> PathBuf {
    sandbox.path().join("state")
}

fn shim_run(sandbox: &Sandbox, config: &Path, args: &[&str]) -> Command {
    let mut cmd = sandbox.host_shim();
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state(sandbox))
        .args(args);
    cmd
}

/// The pane ids and commands panes.json saves.
fn saved_panes(sandbox: &Sandbox) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(state(sandbox).join("panes.json")).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    json["panes"]
        .as_array()
        .map(|panes| {
            panes
                .iter()
                .map(|p| {
                    (
                        p["pane_id"].as_str().unwrap_or_default().to_string(),
                        p["command"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---- §3: nothing written through a symlink in the state dir ---------------

#[test]
fn symlinks_planted_in_the_state_dir_are_refused_and_their_targets_untouched() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "plugins.toml", "");
    let victim = sandbox.write("victim", "precious\n");
    for name in ["server.lock", "panes.json", "server-id"] {
        for restore in [false, true] {
            let _ = std::fs::remove_dir_all(state(&sandbox));
            std::fs::create_dir_all(state(&sandbox)).unwrap();
            std::os::unix::fs::symlink(&victim, state(&sandbox).join(name)).unwrap();
            let args: &[&str] = if restore {
                &["--restore"]
            } else {
                &["--", "true"]
            };
            let out = run(shim_run(&sandbox, &config, args));
            assert_eq!(out.status.code(), Some(2), "{name}: {out}");
            assert!(out.stderr.contains(name), "{name}: {out}");
            assert!(out.stderr.contains("symbolic link"), "{name}: {out}");
            assert_eq!(
                sandbox.read("victim"),
                "precious\n",
                "{name} was written through"
            );
            assert!(
                state(&sandbox).join(name).is_symlink(),
                "{name}: the link was replaced"
            );
        }
    }
    assert!(
        !records(&sandbox)
            .iter()
            .any(|l| l.contains("on_server_start")),
        "the server started: {:?}",
        records(&sandbox)
    );
}

// ---- §4: bounded, non-blocking reads of the state files -------------------

/// Runs `cmd` in the background and waits for it, killing it (and failing)
/// if it hangs: the guard against a read that blocks.
fn run_guarded(sandbox: &Sandbox, cmd: Command) -> (std::process::ExitStatus, String) {
    let mut shim = Background::start(cmd, sandbox, "guarded");
    let status = shim.wait(30);
    (status, shim.stderr())
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

#[test]
fn a_fifo_or_device_as_panes_json_is_refused_without_hanging() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "plugins.toml", "");
    let panes = state(&sandbox).join("panes.json");
    std::fs::create_dir_all(state(&sandbox)).unwrap();
    mkfifo(&panes);
    for args in [&["--restore"][..], &["--", "true"]] {
        let (status, stderr) = run_guarded(&sandbox, shim_run(&sandbox, &config, args));
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&panes.display().to_string()), "{stderr}");
        assert!(stderr.contains("a FIFO, not a regular file"), "{stderr}");
    }

    std::fs::remove_file(&panes).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &panes).unwrap();
    let (status, stderr) = run_guarded(&sandbox, shim_run(&sandbox, &config, &["--restore"]));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&panes.display().to_string()), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
}

#[test]
fn an_oversized_panes_json_is_refused_naming_the_file_and_the_cap() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "plugins.toml", "");
    let panes = state(&sandbox).join("panes.json");
    std::fs::create_dir_all(state(&sandbox)).unwrap();
    // Valid JSON as far as it goes: only the size is wrong.
    let cap = 4usize << 20;
    let mut text = String::from("{\"format\": 1, \"panes\": []");
    text.push_str(&" ".repeat(cap - text.len()));
    text.push('}');
    std::fs::write(&panes, &text).unwrap();
    let (status, stderr) = run_guarded(&sandbox, shim_run(&sandbox, &config, &["--restore"]));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&panes.display().to_string()), "{stderr}");
    assert!(
        stderr.contains(&format!("larger than {cap} bytes")),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&panes).unwrap(),
        text,
        "the file was changed"
    );
}

