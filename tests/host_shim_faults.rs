//! host-shim under hostile conditions (issue 7): a pane that cannot start,
//! files planted in the state dir, early signals, odd saved panes, and
//! the exit-code table. Through the real binary, with a fake HOME.

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

// ---- §1: a pane whose start fails ----------------------------------------

#[test]
fn a_restored_pane_that_cannot_start_keeps_its_record_and_its_dir() {
    let sandbox = Sandbox::new();
    let config = isolation_toml(&sandbox);
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--pane-id", "w_0_0", "--keep-panes", "--", "sh", "-c"],
    )
    .arg("mkdir -p \"$CLAUDE_CONFIG_DIR/projects\" && echo H > \"$CLAUDE_CONFIG_DIR/projects/h.jsonl\""));
    assert!(out.status.success(), "{out}");
    let history = sandbox
        .home()
        .join(".ccmux/claude/w_0_0/config/projects/h.jsonl");
    assert!(history.is_file(), "{out}");

    let out = run(shim_run(
        &sandbox,
        &config,
        &["--restore", "--", "claude-typo"],
    ));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("claude-typo"), "{out}");
    assert!(
        out.stderr
            .contains("its dir are kept for the next --restore"),
        "{out}"
    );
    assert_eq!(
        saved_panes(&sandbox),
        [("w_0_0".to_string(), "sh".to_string())],
        "the record stays as it was saved, with the command that ran"
    );
    assert_eq!(
        std::fs::read_to_string(&history).ok().as_deref(),
        Some("H\n"),
        "the pane's history is gone"
    );

    let out = run(shim_run(
        &sandbox,
        &config,
        &[
            "--restore",
            "--",
            "sh",
            "-c",
            "cat \"$CLAUDE_CONFIG_DIR/projects/h.jsonl\"",
        ],
    ));
    assert!(out.status.success(), "{out}");
    assert_eq!(pane_lines(&out.stdout, "w_0_0"), ["H"], "{out}");
}

#[test]
fn a_restored_pane_whose_hook_fails_is_not_closed() {
    let sandbox = Sandbox::new();
    let fine = probe_toml(&sandbox, "fine.toml", "");
    let out = run(shim_run(
        &sandbox,
        &fine,
        &["--pane-id", "h_0_0", "--keep-panes", "--", "true"],
    ));
    assert!(out.status.success(), "{out}");

    for hook in ["on_pane_create", "on_pre_spawn"] {
        let before = records(&sandbox).len();
        let failing = probe_toml(&sandbox, "failing.toml", &format!("fail_in = [{hook:?}]"));
        let out = run(shim_run(&sandbox, &failing, &["--restore"]));
        assert_eq!(out.status.code(), Some(1), "{hook}: {out}");
        assert!(
            out.stderr.contains("kept for the next --restore"),
            "{hook}: {out}"
        );
        let calls = &records(&sandbox)[before..];
        assert!(
            !calls.iter().any(|l| l.contains("on_pane_close")),
            "{hook}: a restored pane that did not start was closed: {calls:?}"
        );
        assert_eq!(
            saved_panes(&sandbox),
            [("h_0_0".to_string(), "true".to_string())],
            "{hook}"
        );
    }
    let out = run(shim_run(&sandbox, &fine, &["--restore"]));
    assert!(out.status.success(), "{out}");
}

#[test]
fn a_new_pane_that_never_started_is_closed_and_forgotten() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "plugins.toml", "");
    let out = run(shim_run(
        &sandbox,
        &config,
        &[
            "--pane-id",
            "n_0_0",
            "--keep-panes",
            "--",
            "no-such-command-here",
        ],
    ));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("no-such-command-here"), "{out}");
    assert!(
        records(&sandbox)
            .iter()
            .any(|l| l == "probe on_pane_close n_0_0 ended with unknown status"),
        "{:?}",
        records(&sandbox)
    );
    assert_eq!(saved_panes(&sandbox), []);
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

// ---- §6: small ones ------------------------------------------------------

/// Signals the process catches, from /proc (`SigCgt`, a hex mask).
fn caught_signals(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("SigCgt:"))?;
    u64::from_str_radix(line["SigCgt:".len()..].trim(), 16).ok()
}

#[test]
fn an_early_sighup_does_not_kill_host_shim() {
    let sandbox = Sandbox::new();
    // A plugin to load: the time it takes is when SIGHUP used to kill.
    let config = probe_toml(&sandbox, "plugins.toml", "");
    // SIGTERM is 15 on Linux, where /proc is; bit N-1 stands for signal N.
    let sigterm_bit = 1u64 << (15 - 1);
    for attempt in 0..10 {
        let mut shim = Background::start(
            shim_run(&sandbox, &config, &["--", "true"]),
            &sandbox,
            &format!("early{attempt}"),
        );
        let pid = shim.child.id();
        // The moment host-shim catches its first graceful-stop signal:
        // spun on, not slept on, so the SIGHUP lands within microseconds.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if caught_signals(pid).is_some_and(|mask| mask & sigterm_bit != 0) {
                break;
            }
            assert!(
                shim.child.try_wait().unwrap().is_none(),
                "host-shim exited before catching SIGTERM: {}",
                shim.stderr()
            );
            assert!(Instant::now() < deadline, "host-shim never caught SIGTERM");
            std::hint::spin_loop();
        }
        shim.signal("HUP");
        let status = shim.wait(30);
        // Killed by SIGHUP is what a shell shows as 129.
        assert_eq!(
            status.signal(),
            None,
            "attempt {attempt}: {}",
            shim.stderr()
        );
        assert!(status.success(), "attempt {attempt}: {}", shim.stderr());
    }
}

#[test]
fn a_restored_pane_whose_directory_is_gone_starts_in_home_and_says_so() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "plugins.toml", "");
    let gone = sandbox.path().join("project");
    std::fs::create_dir(&gone).unwrap();
    let out = run(shim_run(
        &sandbox,
        &config,
        &[
            "--pane-id",
            "d_0_0",
            "--keep-panes",
            "--",
            "sh",
            "-c",
            "pwd",
        ],
    )
    .current_dir(&gone));
    assert!(out.status.success(), "{out}");
    std::fs::remove_dir(&gone).unwrap();

    let out = run(shim_run(&sandbox, &config, &["--restore"]));
    assert!(out.status.success(), "{out}");
    assert_eq!(
        pane_lines(&out.stdout, "d_0_0"),
        [sandbox.home().display().to_string()],
        "{out}"
    );
    let warning = out
        .stderr
        .lines()
        .find(|l| l.contains("WARN"))
        .unwrap_or_else(|| panic!("no warning: {out}"));
    assert!(warning.contains("d_0_0"), "{warning}");
    assert!(warning.contains(&gone.display().to_string()), "{warning}");
    assert!(warning.contains("no longer exists"), "{warning}");
}

#[test]
fn an_empty_command_is_refused_naming_the_pane_and_panes_json() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "plugins.toml", "");
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--pane-id", "e_0_0", "--keep-panes", "--", "true"],
    ));
    assert!(out.status.success(), "{out}");
    let panes = state(&sandbox).join("panes.json");
    let text = std::fs::read_to_string(&panes).unwrap();
    assert!(text.contains("\"command\": \"true\""), "{text}");
    std::fs::write(
        &panes,
        text.replace("\"command\": \"true\"", "\"command\": \"\""),
    )
    .unwrap();

    let out = run(shim_run(&sandbox, &config, &["--restore"]));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("\"e_0_0\" has an empty command"),
        "{out}"
    );
    assert!(out.stderr.contains(&panes.display().to_string()), "{out}");
    assert!(!out.stderr.contains("is a directory"), "{out}");

    let out = run(shim_run(&sandbox, &config, &["--", ""]));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("has an empty command"), "{out}");
}

// ---- §7: one exit-code table ----------------------------------------------

#[test]
fn exit_codes_follow_the_documented_table() {
    let sandbox = Sandbox::new();
    let good = probe_toml(&sandbox, "plugins.toml", "");
    let bad_toml = sandbox.write("bad.toml", "[[plugins]]\nname = \n");
    let missing_lib = sandbox.write(
        "missing.toml",
        &plugin_entry("gone", &sandbox.path().join("libgone.so"), true, ""),
    );
    let code = |cmd: &mut Command| run(&mut *cmd).status.code();
    let with_config = |sub: &str, config: &Path| {
        let mut cmd = sandbox.host_shim();
        cmd.arg(sub).arg("--config").arg(config);
        cmd
    };

    // 0: success.
    assert_eq!(
        code(&mut shim_run(&sandbox, &good, &["--", "true"])),
        Some(0)
    );
    assert_eq!(code(&mut with_config("check", &good)), Some(0));
    assert_eq!(code(&mut with_config("plugins", &good)), Some(0));
    // 1: something ran and failed.
    assert_eq!(
        code(&mut shim_run(&sandbox, &good, &["--", "false"])),
        Some(1)
    );
    assert_eq!(code(&mut with_config("check", &missing_lib)), Some(1));
    assert_eq!(
        code(&mut shim_run(&sandbox, &missing_lib, &["--", "true"])),
        Some(1),
        "a required plugin that does not load"
    );
    // 2: nothing ran. A bad plugins.toml is the same for every subcommand.
    for sub in ["check", "plugins"] {
        assert_eq!(code(&mut with_config(sub, &bad_toml)), Some(2), "{sub}");
    }
    let out = run(shim_run(&sandbox, &bad_toml, &["--", "true"]));
    assert_eq!(out.status.code(), Some(2), "run: {out}");
    assert!(out.stderr.contains("bad.toml:2"), "{out}");
    let missing = sandbox.path().join("nowhere.toml");
    assert_eq!(
        code(&mut shim_run(&sandbox, &missing, &["--", "true"])),
        Some(2)
    );
    assert_eq!(code(sandbox.host_shim().args(["run", "--panes"])), Some(2));
    assert_eq!(
        code(&mut shim_run(
            &sandbox,
            &good,
            &["--panes", "0", "--", "true"]
        )),
        Some(2),
        "--panes 0"
    );
    let empty_state = sandbox.path().join("empty-state");
    assert_eq!(
        code(
            sandbox
                .host_shim()
                .arg("run")
                .arg("--config")
                .arg(&good)
                .arg("--state-dir")
                .arg(&empty_state)
                .arg("--restore")
        ),
        Some(2),
        "--restore with nothing saved"
    );
    // A plugin's own [plugins.config] is part of plugins.toml.
    let typo = sandbox.write(
        "typo.toml",
        &plugin_entry("probe", &artifacts().probe_plugin, true, "sleep_msx = 1"),
    );
    for sub in ["check", "run"] {
        let mut cmd = if sub == "run" {
            shim_run(&sandbox, &typo, &["--", "true"])
        } else {
            with_config(sub, &typo)
        };
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(2), "{sub}: {out}");
        assert!(out.stderr.contains("typo.toml"), "{sub}: {out}");
    }
    // A state dir that is not a directory.
    let file_state = sandbox.write("state-file", "");
    assert_eq!(
        code(
            sandbox
                .host_shim()
                .arg("run")
                .arg("--config")
                .arg(&good)
                .arg("--state-dir")
                .arg(&file_state)
                .args(["--", "true"])
        ),
        Some(2),
        "a state dir that is a file"
    );
    // A profile: unknown to plugins.toml, or with no isolation plugin to
    // put the pane in it; a restore into another profile than the pane's.
    let iso = sandbox.write(
        "iso.toml",
        &std::fs::read_to_string(repo_root().join("plugins.toml")).expect("root plugins.toml"),
    );
    let out = run(shim_run(
        &sandbox,
        &iso,
        &["--profile", "nope", "--", "true"],
    ));
    assert_eq!(out.status.code(), Some(2), "unknown profile: {out}");
    assert!(out.stderr.contains("the known ones are default"), "{out}");
    let out = run(shim_run(
        &sandbox,
        &good,
        &["--profile", "work", "--", "true"],
    ));
    assert_eq!(out.status.code(), Some(2), "no isolation plugin: {out}");
    assert!(out.stderr.contains("needs the isolation plugin"), "{out}");
    let profile_state = sandbox.path().join("profile-state");
    let keep = run(sandbox
        .host_shim()
        .arg("run")
        .arg("--config")
        .arg(&iso)
        .arg("--state-dir")
        .arg(&profile_state)
        .args(["--profile", "default", "--keep-panes", "--", "true"]));
    assert_eq!(keep.status.code(), Some(0), "{keep}");
    assert_eq!(
        code(
            sandbox
                .host_shim()
                .arg("run")
                .arg("--config")
                .arg(&iso)
                .arg("--state-dir")
                .arg(&profile_state)
                .args(["--restore", "--profile", "other"])
        ),
        Some(2),
        "a restore into another profile"
    );
    // attach without a terminal.
    assert_eq!(
        code(
            sandbox
                .host_shim()
                .arg("attach")
                .arg("--config")
                .arg(&good)
                .args(["--", "true"])
        ),
        Some(2)
    );
    // 128+N: see sigterm_ends_gracefully_and_keeps_the_panes_for_restore
    // (143) in host_shim.rs, and the attach tests for 129.
}
