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
        Some(
            format!(
                "# config: {} (from --config)",
                repo_root().join("plugins.toml").display()
            )
            .as_str()
        ),
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
    assert!(
        shim.stderr()
            .contains(&format!("reloaded {} (from --config)", config.display())),
        "{}",
        shim.stderr()
    );
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

// ---- which plugins.toml, and why (issue 16) --------------------------------

/// A plugins.toml in `dir` whose probe plugin records into `record`.
fn planted_toml(dir: &Path, record: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("plugins.toml");
    let config = format!("record = {:?}", record.display().to_string());
    std::fs::write(
        &file,
        plugin_entry("planted", &artifacts().probe_plugin, true, &config),
    )
    .unwrap();
    file
}

/// `host-shim attach` in a terminal, run to its end: its exit code and
/// what the terminal showed, once it shows `shown` (what the program
/// wrote just before it exited is read after its exit, not at once).
fn attach_in_terminal(cmd: &std::process::Command, shown: Option<&str>) -> (u32, String) {
    let mut terminal = ccmux_tests::OuterTerminal::start(cmd, 24, 80);
    let (code, _) = terminal.wait(60);
    if let Some(needle) = shown {
        terminal.wait_for_text(needle, 30);
    }
    (code, terminal.text())
}

#[test]
fn a_plugins_toml_in_the_current_folder_is_never_loaded() {
    let sandbox = Sandbox::new();
    // A cloned project with a plugins.toml of its own, as the current dir.
    let project = sandbox.path().join("project");
    let planted_record = sandbox.path().join("planted-record");
    planted_toml(&project, &planted_record);
    let in_project = |args: &[&str]| {
        let mut cmd = sandbox.host_shim();
        cmd.current_dir(&project)
            .args(args)
            .env("XDG_STATE_HOME", sandbox.path().join("xdg-state"));
        cmd
    };
    let subcommands: [&[&str]; 4] = [
        &["check"],
        &["plugins"],
        &["run", "--", "true"],
        &["attach", "--", "true"],
    ];

    // Nothing installed: nothing is loaded, and the error says which file
    // was looked for and that ./plugins.toml is read only when named.
    let installed = sandbox.path().join("xdg-config/ccmux/plugins.toml");
    for args in subcommands {
        let (code, text) = if args[0] == "attach" {
            attach_in_terminal(&in_project(args), Some("scripts/install"))
        } else {
            let out = run(in_project(args));
            (out.status.code().unwrap_or(0) as u32, out.to_string())
        };
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(
            text.contains(&installed.display().to_string()),
            "{args:?}: {text}"
        );
        assert!(text.contains("--config plugins.toml"), "{args:?}: {text}");
    }

    // Installed: that one is used, and said to be.
    let installed_record = sandbox.path().join("installed-record");
    planted_toml(installed.parent().unwrap(), &installed_record);
    for args in subcommands {
        let (code, text) = if args[0] == "attach" {
            attach_in_terminal(&in_project(args), None)
        } else {
            let out = run(in_project(args));
            (out.status.code().unwrap_or(0) as u32, out.to_string())
        };
        assert_eq!(code, 0, "{args:?}: {text}");
        if args[0] == "check" || args[0] == "plugins" {
            let first = text.lines().find(|l| l.starts_with("# config: "));
            assert_eq!(
                first,
                Some(
                    format!(
                        "# config: {} (the installed one: no --config, no $CCMUX_PLUGINS_CONFIG)",
                        installed.display()
                    )
                    .as_str()
                ),
                "{args:?}: {text}"
            );
        }
    }
    assert!(
        !planted_record.exists(),
        "the current folder's plugin was loaded: {}",
        std::fs::read_to_string(&planted_record).unwrap_or_default()
    );
    let calls = std::fs::read_to_string(&installed_record).unwrap_or_default();
    for hook in ["on_server_start", "on_pane_create", "on_pane_close"] {
        assert_eq!(
            calls.lines().filter(|l| l.contains(hook)).count(),
            2,
            "run and attach each: {calls}"
        );
    }

    // Named, it is read, and said to be: --config, then the variable.
    let out = run(in_project(&["check", "--config", "plugins.toml"]));
    assert!(out.status.success(), "{out}");
    assert_eq!(
        out.stdout.lines().next(),
        Some(
            format!(
                "# config: {} (from --config)",
                project.join("plugins.toml").display()
            )
            .as_str()
        ),
        "{out}"
    );
    let out = run(in_project(&["check"]).env("CCMUX_PLUGINS_CONFIG", "plugins.toml"));
    assert!(out.status.success(), "{out}");
    assert_eq!(
        out.stdout.lines().next(),
        Some(
            format!(
                "# config: {} (from $CCMUX_PLUGINS_CONFIG)",
                project.join("plugins.toml").display()
            )
            .as_str()
        ),
        "{out}"
    );
    // A variable naming nothing is an error naming it, not a fallback.
    let out = run(in_project(&["run", "--", "true"]).env("CCMUX_PLUGINS_CONFIG", "gone.toml"));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr
            .contains(&project.join("gone.toml").display().to_string()),
        "{out}"
    );
    assert!(out.stderr.contains("from $CCMUX_PLUGINS_CONFIG"), "{out}");
}

#[test]
fn the_readme_set_up_command_creates_no_claude_dir_in_a_home_without_one() {
    let sandbox = Sandbox::new();
    // The README's command, run from the repository as it says.
    let out = run(sandbox
        .host_shim()
        .current_dir(repo_root())
        .args([
            "run",
            "--config",
            "plugins.toml",
            "--panes",
            "3",
            "--",
            "sh",
            "-c",
        ])
        .arg("echo \"CLAUDE_CONFIG_DIR=$CLAUDE_CONFIG_DIR\""));
    assert!(out.status.success(), "{out}");
    assert_eq!(pane_ids(&out.stdout).len(), 3, "{out}");
    let isolated = sandbox.home().join(".ccmux/claude");
    for id in pane_ids(&out.stdout) {
        assert_eq!(
            pane_lines(&out.stdout, &id),
            [format!(
                "CLAUDE_CONFIG_DIR={}",
                isolated.join(&id).join("config").display()
            )],
            "{out}"
        );
        // Closed: its dir is gone (at the stop, whatever the grace period).
        assert!(!isolated.join(&id).exists(), "{out}");
    }
    assert!(!sandbox.home().join(".claude").exists(), "{out}");
    assert!(!sandbox.home().join(".claude.json").exists(), "{out}");
    // And the stopped server's lock file went with it.
    let owners: Vec<_> = std::fs::read_dir(isolated.join(".owners"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(owners.is_empty(), "{owners:?}");
}

// ---- the exit-status table, row by row (issue 16) --------------------------

/// The root plugins.toml with `extra` added to the isolation plugin's
/// `[plugins.config]`.
fn isolation_with(sandbox: &Sandbox, name: &str, extra: &str) -> PathBuf {
    let text =
        std::fs::read_to_string(repo_root().join("plugins.toml")).expect("root plugins.toml");
    assert!(text.contains("grace_period_ms = 3000"), "{text}");
    sandbox.write(
        name,
        &text.replace(
            "grace_period_ms = 3000",
            &format!("grace_period_ms = 0\n{extra}"),
        ),
    )
}

#[test]
fn a_typo_in_a_plugins_own_config_is_a_bad_plugins_toml_for_every_subcommand() {
    let sandbox = Sandbox::new();
    let config = isolation_with(&sandbox, "typo.toml", "grace_period_msx = 5");
    let marker = sandbox.path().join("ran");
    let out = run(shim_run(&sandbox, &config, &["--", "touch"]).arg(&marker));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("grace_period_msx"), "{out}");
    assert!(
        out.stderr
            .contains(&format!("config: {} (from --config)", config.display())),
        "{out}"
    );
    assert!(!marker.exists(), "the pane ran");

    let out = run(sandbox
        .host_shim()
        .arg("check")
        .arg("--config")
        .arg(&config));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stdout.contains("grace_period_msx"), "{out}");
    assert!(out.stderr.contains("[plugins.config] is invalid"), "{out}");
    // `plugins` lists it without failing.
    let out = run(sandbox
        .host_shim()
        .arg("plugins")
        .arg("--config")
        .arg(&config));
    assert_eq!(out.status.code(), Some(0), "{out}");

    let mut cmd = sandbox.host_shim();
    cmd.arg("attach")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(sandbox.path().join("state"))
        .args(["--", "touch"])
        .arg(&marker);
    let (code, text) = attach_in_terminal(&cmd, Some("(from --config)"));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("grace_period_msx"), "{text}");
    assert!(!marker.exists(), "the attached pane ran");
}

#[test]
fn a_multi_line_error_stays_below_its_plugins_line_in_the_table() {
    let sandbox = Sandbox::new();
    // A probe whose config is the wrong type: serde's message, plus the
    // isolation plugin's own multi-line one.
    let config = sandbox.write(
        "multi.toml",
        &[
            plugin_entry(
                "first",
                &artifacts().probe_plugin,
                false,
                "sleep_ms = \"x\"",
            ),
            plugin_entry(
                "second",
                &artifacts().isolation_plugin,
                false,
                "share_data = [\"../escape/\"]",
            ),
            plugin_entry("third", &artifacts().probe_plugin, false, ""),
        ]
        .concat(),
    );
    let out = run(sandbox
        .host_shim()
        .arg("plugins")
        .arg("--config")
        .arg(&config));
    assert!(out.status.success(), "{out}");
    // Every line at the margin is a comment or an entry, in order.
    let entries: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(' '))
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect();
    assert_eq!(entries, ["first", "second", "third"], "{out}");
}

#[test]
fn restore_with_nothing_saved_and_zero_panes_are_usage_errors() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "");
    let out = run(shim_run(&sandbox, &config, &["--restore"]));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("nothing to restore"), "{out}");
    assert!(
        out.stderr.contains(
            &sandbox
                .path()
                .join("state/panes.json")
                .display()
                .to_string()
        ),
        "{out}"
    );
    assert!(records(&sandbox).is_empty(), "{:?}", records(&sandbox));

    let out = run(shim_run(&sandbox, &config, &["--panes", "0", "--", "true"]));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("--panes"), "{out}");
    assert!(out.stderr.contains("0"), "{out}");

    // A missing command: run, and attach of a pane that is not kept.
    let out = run(shim_run(&sandbox, &config, &[]));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("CMD"), "{out}");
    let mut cmd = sandbox.host_shim();
    cmd.arg("attach")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(sandbox.path().join("state"))
        .args(["--pane-id", "new_0_0"]);
    let (code, text) = attach_in_terminal(&cmd, Some("give the command to run after `--`"));
    assert_eq!(code, 2, "{text}");
    assert!(records(&sandbox).is_empty(), "{:?}", records(&sandbox));
    // And it left no state dir behind.
    assert!(!sandbox.path().join("state/attached/new_0_0").exists());
}

#[test]
fn a_busy_attach_names_the_other_host_shim_not_a_state_dir() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "");
    let attach = |args: &[&str]| {
        let mut cmd = sandbox.host_shim();
        cmd.arg("attach")
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(sandbox.path().join("state"))
            .args(args);
        cmd
    };
    let mut first = ccmux_tests::OuterTerminal::start(
        &attach(&["--pane-id", "busy_0_0", "--", "sh", "-c", "echo up; read x"]),
        24,
        80,
    );
    first.wait_for_text("up", 30);
    let (code, text) = attach_in_terminal(
        &attach(&["--pane-id", "busy_0_0", "--", "true"]),
        Some("attach another --pane-id"),
    );
    assert_eq!(code, 2, "{text}");
    let text = text.replace(['\r', '\n'], " ");
    assert!(
        text.contains("another host-shim is attached to pane busy_0_0"),
        "{text}"
    );
    assert!(text.contains(&format!("(pid {})", first.pid())), "{text}");
    assert!(text.contains(&format!("kill {}", first.pid())), "{text}");
    assert!(!text.contains("--state-dir"), "{text}");
    first.type_bytes(b"\r");
    assert_eq!(first.wait(30).0, 0, "{}", first.text());
}

#[test]
fn ten_attach_and_exit_cycles_leave_nothing_of_the_closed_panes() {
    let sandbox = Sandbox::new();
    let config = isolation_with(&sandbox, "plugins.toml", "");
    let state = sandbox.path().join("state");
    let base = sandbox.home().join(".ccmux/claude");
    for cycle in 0..10 {
        let mut cmd = sandbox.host_shim();
        cmd.arg("attach")
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(&state);
        // Half with a given id, half with a new one each time.
        let id = format!("cycle_0_{cycle}");
        if cycle % 2 == 0 {
            cmd.args(["--pane-id", &id]);
        }
        cmd.args(["--", "sh", "-c", "echo \"DIR=$CLAUDE_CONFIG_DIR\""]);
        let (code, text) = attach_in_terminal(&cmd, Some("DIR="));
        assert_eq!(code, 0, "cycle {cycle}: {text}");
    }
    let listing = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(listing(&state.join("attached")), Vec::<String>::new());
    assert_eq!(listing(&base.join(".owners")), Vec::<String>::new());
    let panes: Vec<String> = listing(&base)
        .into_iter()
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert_eq!(panes, Vec::<String>::new());

    // A kept pane keeps its state dir; closing it later removes it.
    let mut cmd = sandbox.host_shim();
    cmd.arg("attach")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .args(["--pane-id", "kept_0_0", "--keep", "--", "true"]);
    assert_eq!(attach_in_terminal(&cmd, None).0, 0);
    assert_eq!(listing(&state.join("attached")), ["kept_0_0"]);
    let mut cmd = sandbox.host_shim();
    cmd.arg("attach")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .args(["--pane-id", "kept_0_0", "--", "true"]);
    assert_eq!(attach_in_terminal(&cmd, None).0, 0);
    assert_eq!(listing(&state.join("attached")), Vec::<String>::new());
}

#[test]
fn what_a_crashed_attach_left_of_a_closed_pane_is_pruned_at_the_next_attach() {
    let sandbox = Sandbox::new();
    let config = probe_toml(&sandbox, "");
    let state = sandbox.path().join("state");
    let attach = |id: &str, keep: bool| {
        let mut cmd = sandbox.host_shim();
        cmd.arg("attach")
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(&state)
            .args(["--pane-id", id]);
        if keep {
            cmd.arg("--keep");
        }
        cmd.args(["--", "true"]);
        cmd
    };
    // A kept pane, then the same dir as a crash after its close leaves
    // it: no pane saved, the lock free.
    assert_eq!(attach_in_terminal(&attach("crashed_0_0", true), None).0, 0);
    let crashed = state.join("attached/crashed_0_0");
    std::fs::write(
        crashed.join("panes.json"),
        "{\"format\": 1, \"panes\": []}\n",
    )
    .unwrap();
    // And a kept pane, which stays.
    assert_eq!(attach_in_terminal(&attach("other_0_0", true), None).0, 0);
    // A dir of someone else's making: not host-shim's, left alone.
    std::fs::create_dir_all(state.join("attached/foreign_0_0")).unwrap();
    std::fs::write(state.join("attached/foreign_0_0/notes"), "mine").unwrap();

    assert_eq!(attach_in_terminal(&attach("next_0_0", false), None).0, 0);
    assert!(!crashed.exists());
    assert!(state.join("attached/other_0_0/panes.json").is_file());
    assert!(state.join("attached/foreign_0_0/notes").is_file());
    assert!(!state.join("attached/next_0_0").exists());
}
