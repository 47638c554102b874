//! plugins.toml's policies as a user meets them through host-shim: a
//! plugin refusing a pane, `before`/`after` in `host-shim plugins`, the
//! slow-hook warning, and `run --plugin-counts`.

use std::path::{Path, PathBuf};

use ccmux_tests::{artifacts, pane_lines, plugin_entry, run, Run, Sandbox};

fn shim_run(sandbox: &Sandbox, config: &Path, args: &[&str]) -> Run {
    run(sandbox
        .host_shim()
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(sandbox.path().join("state"))
        .args(args))
}

/// A copy of the probe library under another name: a second plugin.
fn probe_copy(sandbox: &Sandbox, name: &str) -> PathBuf {
    let copy = sandbox.path().join(ccmux_tests::lib_file_name(name));
    std::fs::copy(&artifacts().probe_plugin, &copy).expect("copy probe library");
    copy
}

fn entry_with(name: &str, path: &Path, keys: &str, config: &str) -> String {
    plugin_entry(name, path, false, config).replacen(
        "[plugins.config]",
        &format!("{keys}\n[plugins.config]"),
        1,
    )
}

#[test]
fn a_pane_an_optional_plugin_refuses_does_not_start_and_the_user_is_told_why() {
    let sandbox = Sandbox::new();
    let config = sandbox.write(
        "plugins.toml",
        &plugin_entry(
            "policy",
            &artifacts().probe_plugin,
            false,
            "refuse_in = [\"on_pane_create\"]\nrefuse_reason = \"no Claude outside ~/work\"",
        ),
    );
    let out = shim_run(
        &sandbox,
        &config,
        &["--pane-id", "w_0_0", "--", "sh", "-c", "echo started"],
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(pane_lines(&out.stdout, "w_0_0").is_empty(), "it ran: {out}");
    assert!(
        out.stderr.contains(
            "[w_0_0] plugin `policy` refused the pane in on_pane_create: no Claude outside ~/work"
        ),
        "{out}"
    );
}

#[test]
fn a_refusal_reason_with_terminal_escapes_is_shown_not_obeyed() {
    let sandbox = Sandbox::new();
    let config = sandbox.write(
        "plugins.toml",
        &plugin_entry(
            "policy",
            &artifacts().probe_plugin,
            false,
            "refuse_in = [\"on_pane_create\"]\nrefuse_reason = \"\\u001b[2Jcleared \\u001b]0;title\\u0007\"",
        ),
    );
    let out = shim_run(&sandbox, &config, &["--pane-id", "w_0_0", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        !out.stderr.contains('\u{1b}') && !out.stderr.contains('\u{7}'),
        "{:?}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("\\u{1b}[2Jcleared \\u{1b}]0;title\\u{7}"),
        "{out}"
    );
}

#[test]
fn host_shim_plugins_lists_the_effective_order_and_names_a_cycle() {
    let sandbox = Sandbox::new();
    let (a, b, c) = (
        probe_copy(&sandbox, "probe_a"),
        probe_copy(&sandbox, "probe_b"),
        probe_copy(&sandbox, "probe_c"),
    );
    let ordered = [
        entry_with("a", &a, "after = [\"c\"]", ""),
        entry_with("b", &b, "", ""),
        entry_with("c", &c, "", ""),
    ]
    .concat();
    let config = sandbox.write("plugins.toml", &ordered);
    let out = run(sandbox
        .host_shim()
        .arg("plugins")
        .arg("--config")
        .arg(&config));
    assert!(out.status.success(), "{out}");
    // `#` lines say which config and library dirs were used.
    let names: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect();
    assert_eq!(names, ["b", "c", "a"], "{out}");

    let cycle = [
        entry_with("a", &a, "after = [\"c\"]", ""),
        entry_with("b", &b, "", ""),
        entry_with("c", &c, "after = [\"a\"]", ""),
    ]
    .concat();
    let config = sandbox.write("plugins.toml", &cycle);
    let out = run(sandbox
        .host_shim()
        .arg("plugins")
        .arg("--config")
        .arg(&config));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("a -> c -> a"), "{out}");
    assert!(out.stderr.contains("remove one of them"), "{out}");

    let unknown = entry_with("a", &a, "before = [\"isolatoin\"]", "");
    let config = sandbox.write("plugins.toml", &unknown);
    let out = run(sandbox
        .host_shim()
        .arg("check")
        .arg("--config")
        .arg(&config));
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("`before` names `isolatoin`"), "{out}");
}

#[test]
fn a_slow_hook_is_a_warning_in_host_shims_log() {
    let sandbox = Sandbox::new();
    let config = sandbox.write(
        "plugins.toml",
        &format!(
            "[faults]\nslow_hook_ms = 1\n\n{}",
            plugin_entry(
                "sluggish",
                &artifacts().probe_plugin,
                true,
                // Slower than the threshold by two orders of magnitude:
                // no clock resolution or load makes it look fast.
                "sleep_in = [\"on_pre_spawn\"]\nsleep_ms = 100",
            )
        ),
    );
    let out = shim_run(&sandbox, &config, &["--pane-id", "w_0_0", "--", "true"]);
    assert!(out.status.success(), "slow is not a failure: {out}");
    // The slow hook's warning. (With a 1 ms threshold another hook of a
    // loaded machine may be warned about too: only this one must be.)
    let warning = out
        .stderr
        .lines()
        .find(|l| l.contains("WARN") && l.contains("took") && l.contains("in on_pre_spawn"))
        .unwrap_or_else(|| panic!("no slow-hook warning for on_pre_spawn: {out}"));
    assert!(warning.contains("plugin `sluggish`"), "{warning}");
}

#[test]
fn run_plugin_counts_prints_calls_failures_refusals_and_the_last_error() {
    let sandbox = Sandbox::new();
    let config = sandbox.write(
        "plugins.toml",
        &[
            plugin_entry("steady", &probe_copy(&sandbox, "probe_steady"), true, ""),
            plugin_entry(
                "flaky",
                &artifacts().probe_plugin,
                false,
                "fail_in = [\"on_pane_close\"]",
            ),
        ]
        .concat(),
    );
    let out = shim_run(
        &sandbox,
        &config,
        &["--plugin-counts", "--panes", "2", "--", "true"],
    );
    assert!(out.status.success(), "an optional failure: {out}");
    // server start, 2 x (create, pre-spawn, close), server stop.
    assert!(
        out.stderr
            .lines()
            .any(|l| l == "host-shim: plugin steady: 8 calls, 0 failed, 0 refused"),
        "{out}"
    );
    let flaky = out
        .stderr
        .lines()
        .find(|l| l.starts_with("host-shim: plugin flaky: "))
        .unwrap_or_else(|| panic!("no counts for flaky: {out}"));
    assert!(
        flaky.starts_with(
            "host-shim: plugin flaky: 8 calls, 2 failed, 0 refused; last error: plugin `flaky`"
        ),
        "{flaky}"
    );
    assert!(
        flaky.contains("probe told to fail in on_pane_close"),
        "{flaky}"
    );

    // Not asked: not printed.
    let out = shim_run(&sandbox, &config, &["--", "true"]);
    assert!(!out.stderr.contains("calls,"), "{out}");
}
