//! plugins.toml's `on_fault`: what an optional plugin's faults mean for
//! panes. Each fault state (disabled, library missing, constructor failed,
//! a pane hook failed, a pane hook panicked, switched off) under each
//! policy (`refuse`, `admit`, unset) gives the documented answer, through
//! the real host runtime and built libraries: the probe plugin declares
//! refusals (`REFUSES_PANES = true`), the template plugin does not.

use std::path::{Path, PathBuf};

use ccmux_plugin_api::host::{OnFault, PluginHost, PluginState};
use ccmux_plugin_api::{PaneInfo, ServerStart};
use ccmux_tests::{artifacts, run, template_plugin, Sandbox};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Panes {
    Admitted,
    Refused,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Disabled,
    LibraryMissing,
    ConstructorFailed,
    HookFailed,
    HookPanicked,
    SwitchedOff,
}

const FAULTS: [Fault; 6] = [
    Fault::Disabled,
    Fault::LibraryMissing,
    Fault::ConstructorFailed,
    Fault::HookFailed,
    Fault::HookPanicked,
    Fault::SwitchedOff,
];

/// The table in the README ("What refusals mean when a plugin is off").
fn documented(fault: Fault, on_fault: Option<&str>, declares_refusals: bool) -> Panes {
    match (fault, on_fault) {
        (Fault::Disabled, _) => Panes::Admitted,
        (_, Some("refuse")) => Panes::Refused,
        (_, Some(_)) => Panes::Admitted,
        // Unset: a library that cannot be read declares nothing the host
        // can see, so it may be a policy: fail closed.
        (Fault::LibraryMissing, None) => Panes::Refused,
        (_, None) if declares_refusals => Panes::Refused,
        (_, None) => Panes::Admitted,
    }
}

/// One optional entry for the probe in `fault`, with `on_fault`.
fn probe_toml(fault: Fault, on_fault: Option<&str>, sandbox: &Sandbox) -> String {
    let path: PathBuf = match fault {
        Fault::LibraryMissing => sandbox.path().join("libmissing.so"),
        _ => artifacts().probe_plugin.clone(),
    };
    let (faults, keys, config) = match fault {
        Fault::Disabled => ("", "enabled = false\n", ""),
        Fault::LibraryMissing => ("", "", ""),
        Fault::ConstructorFailed => ("", "", "fail_constructor = true\n"),
        Fault::HookFailed => ("", "", "fail_in = [\"on_pane_create\", \"on_pre_spawn\"]\n"),
        Fault::HookPanicked => (
            "",
            "",
            "panic_in = [\"on_pane_create\", \"on_pre_spawn\"]\n",
        ),
        // Fails once, in on_server_start, and is switched off: its pane
        // hooks would succeed, but it is not asked.
        Fault::SwitchedOff => (
            "[faults]\nswitch_off_after = 1\n\n",
            "",
            "fail_in = [\"on_server_start\"]\n",
        ),
    };
    let on_fault = on_fault
        .map(|p| format!("on_fault = {p:?}\n"))
        .unwrap_or_default();
    format!(
        "{faults}[[plugins]]\nname = \"policy\"\npath = {path:?}\nrequired = false\n{keys}{on_fault}[plugins.config]\n{config}",
        path = path.display().to_string(),
    )
}

fn server_start() -> ServerStart {
    ServerStart::new()
}

/// Starts a host over `toml` and opens one pane: admitted if both pane
/// steps pass, refused if one of them refuses; anything else fails the
/// test.
fn open_pane(sandbox: &Sandbox, toml: &str) -> (Panes, String) {
    let file = sandbox.write("plugins.toml", toml);
    let host = PluginHost::start(&file).unwrap_or_else(|err| panic!("start: {err}\n{toml}"));
    host.server_start(&server_start())
        .unwrap_or_else(|err| panic!("optional: {err}"));
    let pane = PaneInfo::new("w_0_0");
    let result = host
        .pane_create(&pane)
        .and_then(|()| host.pre_spawn(&pane, &mut Vec::new()));
    match result {
        Ok(()) => (Panes::Admitted, String::new()),
        Err(err) if err.is_refusal() => (Panes::Refused, err.to_string()),
        Err(err) => panic!("neither admitted nor refused: {err}\n{toml}"),
    }
}

#[test]
fn each_fault_of_a_plugin_that_declares_refusals_under_each_policy() {
    let sandbox = Sandbox::new();
    for fault in FAULTS {
        for on_fault in [Some("refuse"), Some("admit"), None] {
            let toml = probe_toml(fault, on_fault, &sandbox);
            let (got, message) = open_pane(&sandbox, &toml);
            assert_eq!(
                got,
                documented(fault, on_fault, true),
                "{fault:?} with on_fault = {on_fault:?}: {message}\n{toml}"
            );
            if got == Panes::Refused {
                assert!(
                    message.starts_with("plugin `policy` refused the pane in on_pane_create: "),
                    "{message}"
                );
                assert!(message.contains("on_fault is \"refuse\""), "{message}");
            }
        }
    }
}

/// The template plugin declares no refusals. Its faults that this test
/// can cause: disabled, library missing, constructor failed (a config key
/// it does not know).
#[test]
fn the_faults_of_a_plugin_that_declares_no_refusals_admit_unless_told_to_refuse() {
    let sandbox = Sandbox::new();
    let library = template_plugin();
    let cases: [(Fault, &Path, &str, &str); 3] = [
        (Fault::Disabled, &library, "enabled = false\n", ""),
        (
            Fault::LibraryMissing,
            Path::new("/nonexistent/libhello_plugin.so"),
            "",
            "",
        ),
        (
            Fault::ConstructorFailed,
            &library,
            "",
            "greetng = \"typo\"\n",
        ),
    ];
    for (fault, path, keys, config) in cases {
        for on_fault in [Some("refuse"), Some("admit"), None] {
            let policy = on_fault
                .map(|p| format!("on_fault = {p:?}\n"))
                .unwrap_or_default();
            let toml = format!(
                "[[plugins]]\nname = \"hello\"\npath = {path:?}\nrequired = false\n{keys}{policy}[plugins.config]\n{config}",
                path = path.display().to_string(),
            );
            let (got, message) = open_pane(&sandbox, &toml);
            assert_eq!(
                got,
                documented(fault, on_fault, false),
                "{fault:?} with on_fault = {on_fault:?}: {message}\n{toml}"
            );
        }
    }
}

#[test]
fn statuses_say_which_policy_applies() {
    let sandbox = Sandbox::new();
    let probe = artifacts().probe_plugin.display().to_string();
    let hello = template_plugin().display().to_string();
    let toml = format!(
        "[[plugins]]\nname = \"policy\"\npath = {probe:?}\n\
         [[plugins]]\nname = \"hello\"\npath = {hello:?}\n\
         [[plugins]]\nname = \"told\"\npath = {hello:?}\non_fault = \"refuse\"\n\
         [[plugins]]\nname = \"off\"\npath = {probe:?}\nenabled = false\n\
         [[plugins]]\nname = \"gone\"\npath = \"/nonexistent/libgone.so\"\n"
    );
    let file = sandbox.write("plugins.toml", &toml);
    let host = PluginHost::inspect(&file).expect("inspect");
    let policies: Vec<(String, Option<OnFault>)> = host
        .statuses()
        .into_iter()
        .map(|s| (s.name, s.on_fault))
        .collect();
    assert_eq!(
        policies,
        [
            ("policy".to_string(), Some(OnFault::Refuse)),
            ("hello".to_string(), Some(OnFault::Admit)),
            ("told".to_string(), Some(OnFault::Refuse)),
            ("off".to_string(), None),
            ("gone".to_string(), Some(OnFault::Refuse)),
        ]
    );
    assert!(matches!(host.statuses()[4].state, PluginState::Failed(_)));
}

#[test]
fn a_required_plugin_fails_the_pane_whatever_on_fault_says() {
    let sandbox = Sandbox::new();
    let toml = format!(
        "[[plugins]]\nname = \"policy\"\npath = {:?}\nrequired = true\non_fault = \"admit\"\n[plugins.config]\npanic_in = [\"on_pane_create\"]\n",
        artifacts().probe_plugin.display().to_string()
    );
    let file = sandbox.write("plugins.toml", &toml);
    let host = PluginHost::start(&file).expect("start");
    let err = host.pane_create(&PaneInfo::new("w_0_1")).unwrap_err();
    assert!(!err.is_refusal(), "a failure, not a refusal: {err}");
    assert!(err.to_string().contains("probe told to panic"), "{err}");
}

#[test]
fn a_reload_switches_a_refusing_plugin_on_and_panes_are_admitted_again() {
    let sandbox = Sandbox::new();
    let toml = probe_toml(Fault::SwitchedOff, None, &sandbox);
    let file = sandbox.write("plugins.toml", &toml);
    let host = PluginHost::start(&file).expect("start");
    host.server_start(&server_start()).expect("optional");
    let pane = PaneInfo::new("w_0_2");
    let err = host.pane_create(&pane).unwrap_err();
    assert!(err.is_refusal(), "{err}");
    assert!(
        err.to_string()
            .contains("switched off after failing 1 times"),
        "{err}"
    );
    // The fault fixed: on_server_start no longer fails.
    sandbox.write(
        "plugins.toml",
        &toml.replace("fail_in = [\"on_server_start\"]", ""),
    );
    host.reload(&[]).expect("reload");
    host.pane_create(&pane).expect("admitted after the reload");
}

#[test]
fn host_shim_tells_the_user_which_plugin_refused_and_why() {
    let sandbox = Sandbox::new();
    let toml = probe_toml(Fault::LibraryMissing, None, &sandbox);
    let config = sandbox.write("plugins.toml", &toml);
    let out = run(sandbox
        .host_shim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(sandbox.path().join("state"))
        .args(["--pane-id", "w_0_0", "--", "sh", "-c", "echo started"]));
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(!out.stdout.contains("started"), "{out}");
    assert!(
        out.stderr.contains(
            "[w_0_0] plugin `policy` refused the pane in on_pane_create: it did not load"
        ),
        "{out}"
    );
    assert!(out.stderr.contains("on_fault = \"admit\""), "{out}");

    // on_fault = "admit": the same plugin missing, the pane runs.
    let config = sandbox.write(
        "plugins.toml",
        &probe_toml(Fault::LibraryMissing, Some("admit"), &sandbox),
    );
    let out = run(sandbox
        .host_shim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(sandbox.path().join("state"))
        .args(["--pane-id", "w_0_1", "--", "sh", "-c", "echo started"]));
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains("[w_0_1] started"), "{out}");
}
