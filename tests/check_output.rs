//! `host-shim check` as an operator reads it: one line per plugin at the
//! margin, what went wrong indented below it, a plugin of another major
//! version listed with its version.

use ccmux_tests::{artifacts, fixture_plugin, plugin_entry, run, Sandbox};

#[test]
fn check_prints_one_line_per_plugin_and_errors_indented_below() {
    let sandbox = Sandbox::new();
    let toml = [
        plugin_entry("good", &artifacts().probe_plugin, true, ""),
        plugin_entry("future", &fixture_plugin("v2-plugin"), false, ""),
        plugin_entry("gone", &sandbox.path().join("libgone.so"), false, "")
            .replace("[plugins.config]", "on_fault = \"admit\"\n[plugins.config]"),
    ]
    .concat();
    let config = sandbox.write("plugins.toml", &toml);
    let out = run(sandbox
        .host_shim()
        .arg("check")
        .arg("--config")
        .arg(&config));
    assert_eq!(out.status.code(), Some(1), "{out}");
    let table: Vec<&str> = out.stdout.lines().filter(|l| !l.starts_with('#')).collect();
    let entries: Vec<&str> = table
        .iter()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect();
    assert_eq!(entries, ["good", "future", "gone"], "{out}");

    let at = |name: &str| {
        table
            .iter()
            .position(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("no line for {name}: {out}"))
    };
    let future = table[at("future")];
    let fields: Vec<&str> = future.split('\t').collect();
    assert_eq!(fields[2], "api 2.0.0", "{future}");
    assert_eq!(fields[4], "error", "{future}");
    assert!(
        table[at("future") + 1].starts_with("    error: built against plugin-api 2.0.0"),
        "{out}"
    );
    // The v2 plugin is optional with no on_fault, and its library could not
    // be read: fail closed.
    assert!(
        table[at("future") + 2].contains("on_fault = \"refuse\": every pane is refused"),
        "{out}"
    );
    assert!(
        table[at("gone") + 1].starts_with("    error: the file does not exist"),
        "{out}"
    );
    assert!(
        table[at("gone") + 2].contains("on_fault = \"admit\": panes start without it"),
        "{out}"
    );
    assert!(table[at("good")].ends_with("\tok"), "{out}");
    assert!(!table[at("good") + 1].starts_with(' '), "{out}");
}
