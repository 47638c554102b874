//! Profiles through host-shim (issue 20): `--profile`, `--pane-id
//! ID@NAME` and an inherited `CCMUX_PROFILE` put a pane in a profile; the
//! profile is saved and kept by a restore; a wrong or unknown one is
//! refused before anything runs; `doctor`, `plugins` and `carry-back` see
//! every profile. No Claude: panes are `sh -c`, in a fake HOME.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ccmux_tests::{
    artifacts, pane_lines, plugin_entry, repo_root, run, OuterTerminal, Run, Sandbox,
};

/// The root plugins.toml with no grace period and `profiles` (TOML lines,
/// `NAME = "DIR"`) under `[plugins.config.profiles]`.
fn profiles_toml(sandbox: &Sandbox, profiles: &str) -> PathBuf {
    let text =
        std::fs::read_to_string(repo_root().join("plugins.toml")).expect("root plugins.toml");
    assert!(text.contains("grace_period_ms = 3000"), "{text}");
    let text = text.replace("grace_period_ms = 3000", "grace_period_ms = 0");
    sandbox.write(
        "plugins.toml",
        &format!("{text}\n[plugins.config.profiles]\n{profiles}\n"),
    )
}

/// Profile `work` in `~/.claude-work` (made here), `play` in `play-dir`
/// beside plugins.toml (not made).
fn two_profiles(sandbox: &Sandbox) -> PathBuf {
    std::fs::create_dir_all(sandbox.home().join(".claude-work")).expect("work dir");
    profiles_toml(sandbox, "work = \"~/.claude-work\"\nplay = \"play-dir\"")
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

/// `host-shim attach` with the sandbox's environment and state root.
fn attach(sandbox: &Sandbox, config: &Path, args: &[&str]) -> Command {
    let mut cmd = sandbox.host_shim();
    cmd.arg("attach")
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(sandbox.path().join("state"))
        .args(args);
    cmd
}

/// Runs an attach in a terminal of its own to its end: its exit code and
/// what the terminal showed.
fn attach_in_terminal(sandbox: &Sandbox, config: &Path, args: &[&str]) -> (u32, String) {
    let mut terminal = OuterTerminal::start(&attach(sandbox, config, args), 24, 200);
    let (code, _) = terminal.wait(30);
    (code, terminal.text())
}

/// What each pane prints: its profile, and the two variables the isolation
/// plugin points at the profile's Claude dir.
const SHOW_PROFILE: &str = "echo \"profile=$CCMUX_PROFILE login=$CLAUDE_SECURESTORAGE_CONFIG_DIR user=$CCMUX_USER_CLAUDE_CONFIG_DIR\"";

/// The line SHOW_PROFILE prints for a pane in profile `name` whose dir is
/// `dir` (none for `default` without a CLAUDE_CONFIG_DIR: both empty).
fn in_profile(name: &str, dir: Option<&Path>) -> String {
    let dir = dir.map(|d| d.display().to_string()).unwrap_or_default();
    format!("profile={name} login={dir} user={dir}")
}

/// The pane dirs in the default base dir.
fn pane_dirs(sandbox: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sandbox.home().join(".ccmux/claude"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn profile_and_id_at_name_put_each_pane_in_its_profile() {
    let sandbox = Sandbox::new();
    let config = two_profiles(&sandbox);
    let out = run(shim_run(
        &sandbox,
        &config,
        &[
            "--profile",
            "work",
            "--pane-id",
            "a",
            "b@default",
            "c@play",
            "--",
            "sh",
            "-c",
            SHOW_PROFILE,
        ],
    ));
    assert!(out.status.success(), "{out}");
    let work = sandbox.home().join(".claude-work");
    let play = sandbox.path().join("play-dir");
    assert_eq!(
        pane_lines(&out.stdout, "a"),
        [in_profile("work", Some(&work))],
        "{out}"
    );
    assert_eq!(
        pane_lines(&out.stdout, "b"),
        [in_profile("default", None)],
        "{out}"
    );
    assert_eq!(
        pane_lines(&out.stdout, "c"),
        [in_profile("play", Some(&play))],
        "{out}"
    );

    // Without --profile: the CCMUX_PROFILE host-shim inherited (a
    // host-shim started in a pane of that profile), else default.
    let out = run(shim_run(
        &sandbox,
        &config,
        &[
            "--pane-id",
            "d",
            "e@default",
            "--",
            "sh",
            "-c",
            SHOW_PROFILE,
        ],
    )
    .env("CCMUX_PROFILE", "work"));
    assert!(out.status.success(), "{out}");
    assert_eq!(
        pane_lines(&out.stdout, "d"),
        [in_profile("work", Some(&work))]
    );
    assert_eq!(pane_lines(&out.stdout, "e"), [in_profile("default", None)]);
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--pane-id", "f", "--", "sh", "-c", SHOW_PROFILE],
    ));
    assert_eq!(
        pane_lines(&out.stdout, "f"),
        [in_profile("default", None)],
        "{out}"
    );
}

#[test]
fn an_unknown_profile_is_refused_before_anything_runs_naming_the_known_ones() {
    let sandbox = Sandbox::new();
    let config = two_profiles(&sandbox);
    let marker = sandbox.path().join("ran");
    let touch = format!("touch {:?}", marker.display().to_string());
    let refused = |out: &Run, from: &str| {
        assert_eq!(out.status.code(), Some(2), "{out}");
        assert!(
            out.stderr.contains("unknown profile \"nope\"")
                && out
                    .stderr
                    .contains("the known ones are default, play, work")
                && out.stderr.contains(from),
            "{out}"
        );
        assert!(!marker.exists(), "the pane ran: {out}");
        assert_eq!(pane_dirs(&sandbox), Vec::<String>::new(), "{out}");
    };
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--profile", "nope", "--", "sh", "-c", &touch],
    ));
    refused(&out, "--profile");
    // One pane of several: none starts.
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--pane-id", "a", "b@nope", "--", "sh", "-c", &touch],
    ));
    refused(&out, "--pane-id b@nope");
    let out =
        run(shim_run(&sandbox, &config, &["--", "sh", "-c", &touch]).env("CCMUX_PROFILE", "nope"));
    refused(&out, "CCMUX_PROFILE (inherited");
    assert!(out.stderr.contains("unset CCMUX_PROFILE"), "{out}");
    // `ID@` names no profile.
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--pane-id", "a@", "--", "sh", "-c", &touch],
    ));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("ID@NAME"), "{out}");
    assert!(!marker.exists());

    let (code, text) = attach_in_terminal(
        &sandbox,
        &config,
        &["--profile", "nope", "--", "sh", "-c", &touch],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("unknown profile \"nope\"") && text.contains("default, play, work"),
        "{text}"
    );
    assert!(!marker.exists());
    assert_eq!(pane_dirs(&sandbox), Vec::<String>::new());
}

#[test]
fn a_profile_without_the_isolation_plugin_is_refused_and_default_is_always_valid() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let probe = sandbox.write(
        "probe.toml",
        &plugin_entry(
            "probe",
            &artifacts().probe_plugin,
            true,
            &format!("record = {:?}", record.display().to_string()),
        ),
    );
    let out = run(shim_run(
        &sandbox,
        &probe,
        &["--profile", "work", "--", "true"],
    ));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("needs the isolation plugin") && out.stderr.contains("probe.toml"),
        "{out}"
    );
    assert!(!record.exists(), "a plugin was loaded: {out}");
    let out = run(shim_run(&sandbox, &probe, &["--", "true"]).env("CCMUX_PROFILE", "work"));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("needs the isolation plugin")
            && out.stderr.contains("unset CCMUX_PROFILE"),
        "{out}"
    );
    // Disabled is the same as absent.
    let text = std::fs::read_to_string(two_profiles(&sandbox)).expect("plugins.toml");
    let disabled = sandbox.write(
        "disabled.toml",
        &text.replace("enabled = true", "enabled = false"),
    );
    let out = run(shim_run(
        &sandbox,
        &disabled,
        &["--profile", "work", "--", "true"],
    ));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("needs the isolation plugin"), "{out}");

    // default: the user's own dir, with or without the plugin.
    let out = run(shim_run(
        &sandbox,
        &probe,
        &[
            "--profile",
            "default",
            "--",
            "sh",
            "-c",
            "echo \"p=$CCMUX_PROFILE\"",
        ],
    ));
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains("p=default"), "{out}");
    let out = run(shim_run(&sandbox, &probe, &["--", "true"]).env("CCMUX_PROFILE", "default"));
    assert!(out.status.success(), "{out}");
}

/// Keeps two panes, `w` in profile work and `d` in default.
fn keep_two_panes(sandbox: &Sandbox, config: &Path) {
    let out = run(shim_run(
        sandbox,
        config,
        &[
            "--pane-id",
            "w@work",
            "d",
            "--keep-panes",
            "--",
            "sh",
            "-c",
            SHOW_PROFILE,
        ],
    ));
    assert!(out.status.success(), "{out}");
}

#[test]
fn a_restore_keeps_each_panes_profile_and_refuses_another_losing_nothing() {
    let sandbox = Sandbox::new();
    let config = two_profiles(&sandbox);
    keep_two_panes(&sandbox, &config);
    let panes_json = state(&sandbox).join("panes.json");
    let saved = std::fs::read(&panes_json).expect("panes.json");
    let json: serde_json::Value = serde_json::from_slice(&saved).expect("JSON");
    let profiles: Vec<(&str, &str)> = json["panes"]
        .as_array()
        .expect("panes")
        .iter()
        .map(|p| {
            (
                p["pane_id"].as_str().unwrap_or_default(),
                p["profile"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(profiles, [("w", "work"), ("d", "default")]);

    // Another profile: refused, naming each pane and its profile; nothing
    // ran, nothing changed.
    let marker = sandbox.path().join("ran");
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--restore", "--profile", "play", "--", "touch"],
    )
    .arg(&marker));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("pane w is in profile \"work\"")
            && out.stderr.contains("pane d is in profile \"default\"")
            && out.stderr.contains("restore without --profile"),
        "{out}"
    );
    assert!(!marker.exists());
    assert_eq!(std::fs::read(&panes_json).expect("panes.json"), saved);
    assert_eq!(pane_dirs(&sandbox), ["d", "w"]);
    // One pane's profile is not all of them.
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--restore", "--profile", "work"],
    ));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("pane d is in profile \"default\""),
        "{out}"
    );
    assert!(!out.stderr.contains("pane w is"), "{out}");
    assert_eq!(std::fs::read(&panes_json).expect("panes.json"), saved);

    // An inherited CCMUX_PROFILE asks for a profile as --profile does.
    let out = run(shim_run(&sandbox, &config, &["--restore", "--", "touch"])
        .arg(&marker)
        .env("CCMUX_PROFILE", "play"));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("CCMUX_PROFILE (inherited")
            && out.stderr.contains("pane w is in profile \"work\"")
            && out.stderr.contains("CCMUX_PROFILE unset"),
        "{out}"
    );
    assert!(!marker.exists());
    assert_eq!(std::fs::read(&panes_json).expect("panes.json"), saved);

    // Without one, each pane comes back in its own.
    let out = run(shim_run(&sandbox, &config, &["--restore", "--keep-panes"]));
    assert!(out.status.success(), "{out}");
    let work = sandbox.home().join(".claude-work");
    assert_eq!(
        pane_lines(&out.stdout, "w"),
        [in_profile("work", Some(&work))],
        "{out}"
    );
    assert_eq!(
        pane_lines(&out.stdout, "d"),
        [in_profile("default", None)],
        "{out}"
    );
    assert_eq!(std::fs::read(&panes_json).expect("panes.json"), saved);
}

#[test]
fn panes_saved_before_profiles_are_restored_in_the_profile_the_plugin_recorded() {
    let sandbox = Sandbox::new();
    let config = two_profiles(&sandbox);
    keep_two_panes(&sandbox, &config);
    // As an older host-shim wrote it: no `profile`.
    let panes_json = state(&sandbox).join("panes.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&panes_json).expect("panes.json")).expect("JSON");
    for pane in json["panes"].as_array_mut().expect("panes") {
        pane.as_object_mut().expect("a pane").remove("profile");
    }
    std::fs::write(&panes_json, json.to_string()).expect("write panes.json");

    let saved_panes = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&panes_json).expect("panes.json")).expect("JSON")
    };
    let before = saved_panes();
    // Asked for another profile, host-shim cannot tell: the plugin's
    // record of each pane refuses it, and both stay saved as they were.
    let out =
        run(shim_run(&sandbox, &config, &["--restore", "--keep-panes"])
            .env("CCMUX_PROFILE", "play"));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("is in profile \"work\", not \"play\""),
        "{out}"
    );
    assert!(pane_lines(&out.stdout, "w").is_empty(), "{out}");
    assert_eq!(saved_panes(), before);
    assert_eq!(pane_dirs(&sandbox), ["d", "w"]);

    // Without one, the plugin's record of each pane decides.
    let out = run(shim_run(&sandbox, &config, &["--restore", "--keep-panes"]));
    assert!(out.status.success(), "{out}");
    let work = sandbox.home().join(".claude-work");
    assert_eq!(
        pane_lines(&out.stdout, "w"),
        [in_profile("work", Some(&work))],
        "{out}"
    );
    assert_eq!(
        pane_lines(&out.stdout, "d"),
        [in_profile("default", None)],
        "{out}"
    );
    // Saved with their profiles now.
    let text = std::fs::read_to_string(&panes_json).expect("panes.json");
    assert!(text.contains("\"profile\": \"work\""), "{text}");
    assert!(text.contains("\"profile\": \"default\""), "{text}");
}

#[test]
fn an_attached_pane_keeps_its_profile_and_refuses_another_losing_nothing() {
    let sandbox = Sandbox::new();
    let config = two_profiles(&sandbox);
    let work = sandbox.home().join(".claude-work");
    let (code, text) = attach_in_terminal(
        &sandbox,
        &config,
        &[
            "--profile",
            "work",
            "--pane-id",
            "k",
            "--keep",
            "--",
            "sh",
            "-c",
            SHOW_PROFILE,
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&in_profile("work", Some(&work))), "{text}");
    let panes_json = state(&sandbox).join("attached/k/panes.json");
    let saved = std::fs::read(&panes_json).expect("the kept pane's panes.json");
    assert!(String::from_utf8_lossy(&saved).contains("\"profile\": \"work\""));

    let marker = sandbox.path().join("ran");
    let touch = format!("touch {:?}", marker.display().to_string());
    let (code, text) = attach_in_terminal(
        &sandbox,
        &config,
        &[
            "--pane-id",
            "k",
            "--profile",
            "play",
            "--",
            "sh",
            "-c",
            &touch,
        ],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("pane \"k\" is in profile \"work\", not \"play\"")
            && text.contains("--profile work"),
        "{text}"
    );
    assert!(!marker.exists());
    assert_eq!(std::fs::read(&panes_json).expect("still kept"), saved);
    assert_eq!(pane_dirs(&sandbox), ["k"]);
    // So is an inherited CCMUX_PROFILE naming another one.
    let mut cmd = attach(
        &sandbox,
        &config,
        &["--pane-id", "k", "--", "sh", "-c", &touch],
    );
    cmd.env("CCMUX_PROFILE", "play");
    let mut terminal = OuterTerminal::start(&cmd, 24, 200);
    let (code, _) = terminal.wait(30);
    let text = terminal.text();
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("not \"play\" (CCMUX_PROFILE") && text.contains("CCMUX_PROFILE unset"),
        "{text}"
    );
    assert!(!marker.exists());
    assert_eq!(std::fs::read(&panes_json).expect("still kept"), saved);

    // Naming its own profile (inherited, here) it comes back; without
    // --keep it then closes.
    let mut cmd = attach(
        &sandbox,
        &config,
        &["--pane-id", "k", "--", "sh", "-c", SHOW_PROFILE],
    );
    cmd.env("CCMUX_PROFILE", "work");
    let mut terminal = OuterTerminal::start(&cmd, 24, 200);
    let (code, _) = terminal.wait(30);
    let text = terminal.text();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&in_profile("work", Some(&work))), "{text}");
    assert!(!panes_json.exists());
}

#[test]
fn a_missing_profile_dir_is_made_when_a_pane_keeps_data_as_the_default_one_is() {
    let sandbox = Sandbox::new();
    let config = two_profiles(&sandbox);
    let play = sandbox.path().join("play-dir");
    let default = sandbox.home().join(".claude");
    assert!(!play.exists() && !default.exists());
    // A pane that keeps no Claude data makes nothing, in either.
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--pane-id", "idle@play", "idle2", "--", "true"],
    ));
    assert!(out.status.success(), "{out}");
    assert!(!play.exists() && !default.exists(), "{out}");
    // A pane of each that keeps a conversation: at its close the data
    // goes home, into a dir made for it, the same way for both.
    let write = "mkdir -p \"$CLAUDE_CONFIG_DIR/projects/p\" && echo '{}' > \"$CLAUDE_CONFIG_DIR/projects/p/s.jsonl\"";
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--pane-id", "p@play", "d", "--", "sh", "-c", write],
    ));
    assert!(out.status.success(), "{out}");
    for dir in [&play, &default] {
        assert_eq!(
            std::fs::read_to_string(dir.join("projects/p/s.jsonl"))
                .ok()
                .as_deref(),
            Some("{}\n"),
            "{}: {out}",
            dir.display()
        );
    }
    assert_eq!(
        format!("{:o}", mode(&play)),
        format!("{:o}", mode(&default))
    );
    // The next pane of the profile shares it.
    let out = run(shim_run(
        &sandbox,
        &config,
        &[
            "--pane-id",
            "q@play",
            "--",
            "sh",
            "-c",
            "cat \"$CLAUDE_CONFIG_DIR/projects/p/s.jsonl\"",
        ],
    ));
    assert_eq!(pane_lines(&out.stdout, "q"), ["{}"], "{out}");
}

#[test]
fn a_profile_whose_dir_cannot_be_made_is_a_doctor_finding_and_starts_no_pane() {
    let sandbox = Sandbox::new();
    let config = profiles_toml(&sandbox, "lost = \"nowhere/deeper/dir\"");
    let missing = sandbox.path().join("nowhere/deeper");
    let marker = sandbox.path().join("ran");
    let out =
        run(shim_run(&sandbox, &config, &["--pane-id", "l@lost", "--", "touch"]).arg(&marker));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(!marker.exists(), "{out}");
    assert!(out.stderr.contains(&missing.display().to_string()), "{out}");
    assert!(!missing.exists());

    let out = run(sandbox
        .host_shim()
        .env("PATH", fake_claude(&sandbox))
        .arg("doctor")
        .arg("--config")
        .arg(&config));
    assert_eq!(out.status.code(), Some(1), "{out}");
    let fixes: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("FIX"))
        .collect();
    assert_eq!(fixes.len(), 1, "{out}");
    assert!(
        fixes[0].contains("profile lost:")
            && fixes[0].contains(&format!("create {}", missing.display()))
            && fixes[0].contains("profiles.lost"),
        "{out}"
    );
}

/// A `claude` of the newest supported release on PATH, for doctor.
fn fake_claude(sandbox: &Sandbox) -> String {
    let claude = sandbox.write("bin/claude", "#!/bin/sh\necho '2.1.337 (Claude Code)'\n");
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!("{}:/usr/bin:/bin", sandbox.path().join("bin").display())
}

#[test]
fn doctor_and_plugins_list_every_profile_with_its_dir_and_login() {
    let sandbox = Sandbox::new();
    let config = two_profiles(&sandbox);
    sandbox.write("home/.claude.json", "{}");
    sandbox.write("home/.claude/.credentials.json", "{}");
    sandbox.write("home/.claude-work/.credentials.json", "{}");
    // A kept pane of profile work.
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--pane-id", "kept@work", "--keep-panes", "--", "true"],
    ));
    assert!(out.status.success(), "{out}");
    let work = sandbox.home().join(".claude-work");
    let play = sandbox.path().join("play-dir");

    let out = run(sandbox
        .host_shim()
        .env("PATH", fake_claude(&sandbox))
        .arg("doctor")
        .arg("--config")
        .arg(&config));
    assert_eq!(out.status.code(), Some(0), "{out}");
    let line = |prefix: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no line with {prefix:?}: {out}"))
            .to_string()
    };
    let default_line = line("profile default:");
    assert!(
        default_line.starts_with("ok ")
            && default_line.contains(&sandbox.home().join(".claude").display().to_string())
            && default_line.contains("logged in"),
        "{out}"
    );
    let work_line = line("profile work:");
    assert!(
        work_line.starts_with("ok ")
            && work_line.contains(&work.display().to_string())
            && work_line.contains(&work.join(".claude.json").display().to_string())
            && work_line.contains(&format!(
                "logged in ({}",
                work.join(".credentials.json").display()
            )),
        "{out}"
    );
    let play_line = line("profile play:");
    assert!(
        play_line.starts_with("info ")
            && play_line.contains(&play.display().to_string())
            && play_line.contains("does not exist yet")
            && play_line
                .contains("not logged in: run `claude /login` in a pane with --profile play"),
        "{out}"
    );
    assert!(line("pane kept:").contains("profile work"), "{out}");

    let out = run(sandbox
        .host_shim()
        .arg("plugins")
        .arg("--config")
        .arg(&config));
    assert!(out.status.success(), "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let entry = lines
        .iter()
        .position(|l| l.starts_with("isolation\t"))
        .unwrap_or_else(|| panic!("no isolation line: {out}"));
    let listed: Vec<&str> = lines[entry + 1..]
        .iter()
        .take_while(|l| l.starts_with("    "))
        .copied()
        .collect();
    assert_eq!(listed.len(), 3, "{out}");
    assert!(listed[0].contains("profile default:") && listed[0].contains("logged in"));
    assert!(listed[1].contains("profile play:") && listed[1].contains("not logged in"));
    assert!(listed[2].contains("profile work:") && listed[2].contains("logged in ("));

    // `check` stays one line per entry.
    let out = run(sandbox
        .host_shim()
        .arg("check")
        .arg("--config")
        .arg(&config));
    assert!(out.status.success(), "{out}");
    assert!(!out.stdout.contains("profile"), "{out}");
}

#[test]
fn carry_back_lists_and_decides_every_profiles_entries() {
    let sandbox = Sandbox::new();
    let config = two_profiles(&sandbox);
    let work = sandbox.home().join(".claude-work");
    sandbox.write("home/.claude-work/.claude.json", r#"{"theme":"dark"}"#);
    // A work pane changes its theme while the work file turns invalid:
    // the merge at its close fails, and the change waits in work's store.
    let out = run(shim_run(
        &sandbox,
        &config,
        &["--pane-id", "wp@work", "--", "sh", "-c"],
    )
    .arg(format!(
        "sed -i 's/\"theme\":\"dark\"/\"theme\":\"light\"/' \"$CLAUDE_CONFIG_DIR/.claude.json\" && printf 'not json' > {:?}",
        work.join(".claude.json").display().to_string()
    )));
    assert!(out.status.success(), "{out}");
    sandbox.write("home/.claude-work/.claude.json", r#"{"theme":"dark"}"#);

    let carry_back = |args: &[&str]| {
        run(sandbox
            .host_shim()
            .arg("carry-back")
            .arg("--config")
            .arg(&config)
            .args(args))
    };
    let list = carry_back(&["list"]);
    assert!(list.status.success(), "{list}");
    let lines: Vec<&str> = list.stdout.lines().collect();
    let header = |name: &str, file: &Path| format!("profile {name} ({})", file.display());
    let at = |text: &str| {
        lines
            .iter()
            .position(|l| *l == text)
            .unwrap_or_else(|| panic!("no line {text:?}: {list}"))
    };
    let default_at = at(&header("default", &sandbox.home().join(".claude.json")));
    let work_at = at(&header("work", &work.join(".claude.json")));
    at(&header(
        "play",
        &sandbox.path().join("play-dir/.claude.json"),
    ));
    assert!(
        lines[default_at + 1].starts_with("  no pending carry-backs"),
        "{list}"
    );
    let entry = lines[work_at + 1];
    assert!(entry.contains("pane wp"), "{list}");
    assert!(list.stdout.contains("change theme"), "{list}");
    let name = entry.split_whitespace().next().expect("an entry name");

    // show and apply find it in work's store.
    let show = carry_back(&["show", name]);
    assert!(
        show.status.success() && show.stdout.contains("\"light\""),
        "{show}"
    );
    let applied = carry_back(&["apply", name]);
    assert!(applied.status.success(), "{applied}");
    assert!(
        applied
            .stdout
            .contains(&work.join(".claude.json").display().to_string()),
        "{applied}"
    );
    let file: serde_json::Value =
        serde_json::from_str(&sandbox.read("home/.claude-work/.claude.json")).expect("JSON");
    assert_eq!(file["theme"], "light");
    assert!(!sandbox.home().join(".claude.json").exists());
    let unknown = carry_back(&["drop", name]);
    assert_eq!(unknown.status.code(), Some(2), "{unknown}");
    assert!(unknown.stderr.contains("carry-back list"), "{unknown}");
}

#[test]
fn a_named_profile_pane_does_not_start_when_the_isolation_plugin_does_not_run() {
    // An optional isolation entry whose library file is missing, set to
    // let panes through (`on_fault = "admit"`): a pane of the default
    // account may run without it, one asking for `work` may not.
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.home().join(".claude-work")).expect("work dir");
    let config = sandbox.write(
        "plugins.toml",
        "[[plugins]]\nname = \"isolation\"\npath = \"missing/libccmux_isolation_plugin.so\"\nrequired = false\non_fault = \"admit\"\n\n[plugins.config.profiles]\nwork = \"~/.claude-work\"\n",
    );
    let out = run(shim_run(
        &sandbox,
        &config,
        &[
            "--profile",
            "work",
            "--keep-panes",
            "--pane-id",
            "w",
            "--",
            "sh",
            "-c",
            "echo started",
        ],
    ));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(!out.stdout.contains("started"), "the pane ran: {out}");
    assert!(
        out.stderr.contains("did not put it there") && out.stderr.contains("work"),
        "{out}"
    );
    // Not saved as if it were in work.
    let saved = std::fs::read_to_string(state(&sandbox).join("panes.json")).unwrap_or_default();
    assert!(!saved.contains("\"w\""), "{saved}");

    let out = run(shim_run(
        &sandbox,
        &config,
        &["--", "sh", "-c", "echo started"],
    ));
    assert!(out.stdout.contains("started"), "{out}");
}
