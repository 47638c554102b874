//! The template plugin (templates/plugin) as a person starting from it
//! uses it: built as a cdylib, loaded by host-shim through a plugins.toml
//! naming its path, run in a pane; and loaded by the test host. Also the
//! plugin-api guide's examples, compiled and run, so neither rots.

use std::path::Path;

use ccmux_plugin_api::test_host::TestHost;
use ccmux_plugin_api::PaneInfo;
use ccmux_tests::{cargo_doc_tests, pane_lines, plugin_entry, run, template_plugin, Run, Sandbox};

fn hello_toml(sandbox: &Sandbox, config: &str) -> std::path::PathBuf {
    sandbox.write(
        "plugins.toml",
        &plugin_entry("hello", &template_plugin(), true, config),
    )
}

fn check(sandbox: &Sandbox, config: &Path) -> Run {
    run(sandbox.host_shim().arg("check").arg("--config").arg(config))
}

#[test]
fn host_shim_check_loads_the_built_template() {
    let sandbox = Sandbox::new();
    let config = hello_toml(&sandbox, "greeting = \"hi\"");
    let out = check(&sandbox, &config);
    assert!(out.status.success(), "{out}");
    // After the `#` lines that say which config and library dirs were used.
    let line = out
        .stdout
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap_or_default();
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(
        fields,
        [
            "hello",
            "0.1.0",
            &format!("api {}", ccmux_plugin_api::API_VERSION),
            &template_plugin().display().to_string(),
            "ok"
        ],
        "{out}"
    );
}

#[test]
fn a_pane_run_by_host_shim_gets_the_greeting_and_the_log_line_shows() {
    let sandbox = Sandbox::new();
    let config = hello_toml(&sandbox, "greeting = \"hi\"");
    let out = run(sandbox
        .host_shim()
        .env("RUST_LOG", "warn,ccmux::plugin=info")
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(sandbox.path().join("state"))
        .args(["--pane-id", "main_0_1", "--", "sh", "-c"])
        .arg("echo \"greeting=$HELLO_GREETING\""));
    assert!(out.status.success(), "{out}");
    assert_eq!(
        pane_lines(&out.stdout, "main_0_1"),
        ["greeting=hi, pane main_0_1"],
        "{out}"
    );
    let log = out
        .stderr
        .lines()
        .find(|l| l.contains("greeted the pane"))
        .unwrap_or_else(|| panic!("no log line from the plugin:\n{out}"));
    assert!(log.contains("INFO"), "{log}");
    assert!(log.contains("plugin=\"hello\""), "{log}");
    assert!(log.contains("pane=main_0_1"), "{log}");
}

#[test]
fn a_bad_template_config_is_named_by_check() {
    let sandbox = Sandbox::new();
    let config = hello_toml(&sandbox, "greetng = \"hi\"");
    let out = check(&sandbox, &config);
    assert!(!out.status.success(), "{out}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("plugin `hello`"), "{out}");
    assert!(all.contains("unknown field `greetng`"), "{out}");
}

#[test]
fn the_test_host_runs_the_built_template_library() {
    let host = TestHost::load(template_plugin(), "greeting = \"hey\"").expect("loads");
    assert_eq!(host.name(), "hello_plugin");
    let env = host.open_pane(&PaneInfo::new("main_0_3")).expect("opens");
    assert_eq!(env.get("HELLO_GREETING"), Some("hey, pane main_0_3"));
    // Through the library's log bridge, with the name the host gave it.
    let logs = host.plugin_logs();
    let event = logs
        .iter()
        .find(|e| e.message.contains("greeted the pane"))
        .unwrap_or_else(|| panic!("{logs:?}"));
    assert_eq!(event.plugin.as_deref(), Some("hello_plugin"));
    assert_eq!(event.target, "hello_plugin");
    assert_eq!(host.counts().calls, 2);
}

#[test]
fn the_plugin_api_guide_examples_compile_and_pass() {
    // `cargo test --all-targets` does not run doc tests: run them here.
    if let Err(output) = cargo_doc_tests("ccmux-plugin-api", "test-host") {
        panic!("plugin-api's doc tests failed:\n{output}");
    }
}
