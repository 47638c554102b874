//! The plugin platform through the real built libraries, in process: the
//! host runtime (`PluginHost`) loading the probe plugin, the isolation
//! plugin and the fixture plugins built against other interfaces.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use ccmux_plugin_api::host::{
    HookClock, HostError, PluginCounts, PluginHost, PluginState, StartError,
};
use ccmux_plugin_api::{EnvVar, HookErrorKind, PaneExit, PaneInfo, ServerStart, ServerStop};
use ccmux_tests::{artifacts, fixture_plugin, plugin_entry, Sandbox};

fn pane(id: &str) -> PaneInfo {
    PaneInfo {
        pane_id: id.into(),
        session_id: "s".into(),
        window_id: "0".into(),
        pane_index: 0,
        command: "true".into(),
        args: Default::default(),
        cwd: "/".into(),
    }
}

/// `entry` with `on_fault = "admit"`: the probe declares refusals, so
/// without it its faults would refuse panes (tests/fault_policy.rs).
fn admitting(entry: String) -> String {
    entry.replacen(
        "[plugins.config]",
        "on_fault = \"admit\"\n[plugins.config]",
        1,
    )
}

fn server_start(live: &[&str]) -> ServerStart {
    ServerStart {
        server_id: "3f2b8c1e-0000-4000-8000-000000000001".into(),
        instance_id: "instance".into(),
        state_dir: "/nonexistent-state".into(),
        live_panes: live.iter().map(|p| (*p).into()).collect(),
    }
}

fn stop() -> ServerStop {
    ServerStop {
        instance_id: "instance".into(),
    }
}

/// A copy of the probe library under another file name: a distinct library
/// to the loader, as a second plugin would be.
fn probe_copy(sandbox: &Sandbox, name: &str) -> PathBuf {
    let copy = sandbox.path().join(ccmux_tests::lib_file_name(name));
    std::fs::copy(&artifacts().probe_plugin, &copy).expect("copy probe library");
    copy
}

fn start(sandbox: &Sandbox, toml: &str) -> Result<PluginHost, StartError> {
    let file = sandbox.write("plugins.toml", toml);
    PluginHost::start(&file)
}

fn env_value<'a>(env: &'a [EnvVar], key: &str) -> Option<&'a str> {
    env.iter()
        .find(|v| v.key.as_str() == key)
        .map(|v| v.value.as_str())
}

fn record_lines(sandbox: &Sandbox) -> Vec<String> {
    sandbox.read("record").lines().map(str::to_string).collect()
}

#[test]
fn hooks_run_in_declaration_order_and_later_plugins_see_earlier_edits() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let config = format!(
        "record = {:?}\nappend_name_to = [\"ORDER\"]\nset_env = {{ LAST = \"{{}}\" }}",
        record.display().to_string()
    );
    let toml = [
        plugin_entry(
            "first",
            &probe_copy(&sandbox, "probe_first"),
            true,
            &config.replace("{}", "first"),
        ),
        plugin_entry(
            "second",
            &probe_copy(&sandbox, "probe_second"),
            true,
            &config.replace("{}", "second"),
        ),
    ]
    .concat();
    let host = start(&sandbox, &toml).expect("host starts");
    host.server_start(&server_start(&[])).unwrap();
    let p = pane("s_0_0");
    host.pane_create(&p).unwrap();
    let mut env = vec![EnvVar {
        key: "LAST".into(),
        value: "host".into(),
    }];
    host.pre_spawn(&p, &mut env).unwrap();
    host.pane_close(&p, &PaneExit::exited(0)).unwrap();
    host.server_stop(&stop()).unwrap();

    assert_eq!(env_value(&env, "ORDER"), Some("first,second"));
    assert_eq!(env_value(&env, "LAST"), Some("second"));
    let calls: Vec<String> = record_lines(&sandbox)
        .iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        calls,
        [
            "first new",
            "second new",
            "first on_server_start",
            "second on_server_start",
            "first on_pane_create",
            "second on_pane_create",
            "first on_pre_spawn",
            "second on_pre_spawn",
            "first on_pane_close",
            "second on_pane_close",
            "first on_server_stop",
            "second on_server_stop",
        ]
    );
}

#[test]
fn distinct_libraries_load_side_by_side() {
    let sandbox = Sandbox::new();
    let toml = [
        plugin_entry("probe", &artifacts().probe_plugin, true, ""),
        plugin_entry("old", &fixture_plugin("old-plugin"), true, ""),
        plugin_entry(
            "isolation",
            &artifacts().isolation_plugin,
            true,
            &format!(
                "base_dir = {:?}",
                sandbox.path().join("base").display().to_string()
            ),
        ),
    ]
    .concat();
    let host = start(&sandbox, &toml).expect("host starts");
    let names: Vec<String> = host
        .statuses()
        .iter()
        .map(|s| match &s.state {
            PluginState::Active(meta) => meta.name.to_string(),
            other => panic!("{} not active: {other:?}", s.name),
        })
        .collect();
    assert_eq!(names, ["probe", "old-plugin", "isolation"]);
}

#[test]
fn a_disabled_plugin_is_never_opened() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let toml = format!(
        "{}[[plugins]]\nname = \"ghost\"\npath = \"does-not-exist.so\"\nenabled = false\nrequired = true\n",
        plugin_entry(
            "probe",
            &artifacts().probe_plugin,
            true,
            &format!("record = {:?}", record.display().to_string())
        )
    );
    let host = start(&sandbox, &toml).expect("a disabled entry's missing file is not an error");
    let statuses = host.statuses();
    assert!(matches!(statuses[1].state, PluginState::Disabled));
    host.pane_create(&pane("s_0_0")).unwrap();
    assert_eq!(
        record_lines(&sandbox).len(),
        2,
        "{:?}",
        record_lines(&sandbox)
    );
}

#[test]
fn reload_turns_plugins_on_and_off_without_restarting() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let a = probe_copy(&sandbox, "probe_a");
    let b = probe_copy(&sandbox, "probe_b");
    let config = format!("record = {:?}", record.display().to_string());
    // Each entry keeps its config table; enabled is set before it.
    let write = |a_on: bool, b_on: bool| {
        let text = format!(
            "[[plugins]]\nname = \"a\"\npath = {a:?}\nenabled = {a_on}\n[plugins.config]\n{config}\n\n\
             [[plugins]]\nname = \"b\"\npath = {b:?}\nenabled = {b_on}\n[plugins.config]\n{config}\n",
            a = a.display().to_string(),
            b = b.display().to_string(),
        );
        sandbox.write("plugins.toml", &text)
    };
    let file = write(true, false);
    let host = PluginHost::start(&file).expect("host starts");
    host.server_start(&server_start(&["s_0_9"])).unwrap();
    host.pane_create(&pane("s_0_1")).unwrap();

    // The server says which panes are open when it reloads.
    let live = |ids: &[&str]| ids.iter().map(|id| id.to_string()).collect::<Vec<_>>();
    write(false, true);
    host.reload(&live(&["s_0_1", "s_0_9"])).expect("reload");
    host.pane_create(&pane("s_0_2")).unwrap();

    write(true, true);
    host.reload(&live(&["s_0_1", "s_0_2", "s_0_9"]))
        .expect("reload");
    host.pane_create(&pane("s_0_3")).unwrap();

    assert_eq!(
        record_lines(&sandbox),
        [
            "a new ",
            "a on_server_start s_0_9",
            "a on_pane_create s_0_1",
            // b is enabled: constructed, and told the server is running
            // with the panes live now.
            "b new ",
            "b on_server_start s_0_1,s_0_9",
            "b on_pane_create s_0_2",
            // a again, from the library already loaded; b unchanged keeps
            // its instance.
            "a new ",
            "a on_server_start s_0_1,s_0_2,s_0_9",
            "a on_pane_create s_0_3",
            "b on_pane_create s_0_3",
        ]
    );
}

#[test]
fn a_failed_reload_keeps_the_running_plugins() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let toml = plugin_entry(
        "probe",
        &artifacts().probe_plugin,
        true,
        &format!("record = {:?}", record.display().to_string()),
    );
    let host = start(&sandbox, &toml).expect("host starts");
    sandbox.write("plugins.toml", "[[plugins]\nname = ");
    let err = host.reload(&[]).expect_err("bad TOML");
    assert!(err.to_string().contains("invalid TOML"), "{err}");
    host.pane_create(&pane("s_0_0")).unwrap();
    assert!(record_lines(&sandbox)
        .iter()
        .any(|l| l == "probe on_pane_create s_0_0"));
}

fn hook_error(result: Result<(), HostError>) -> HostError {
    result.expect_err("the hook fails")
}

#[test]
fn a_panic_in_a_hook_is_an_error_not_a_crash() {
    let sandbox = Sandbox::new();
    let toml = plugin_entry(
        "panicky",
        &artifacts().probe_plugin,
        true,
        "panic_in = [\"on_pane_create\", \"on_pane_close\"]",
    );
    let host = start(&sandbox, &toml).expect("host starts");
    let err = hook_error(host.pane_create(&pane("s_0_0")));
    assert_eq!(err.hook_error_kind(), Some(HookErrorKind::Panic));
    let text = err.to_string();
    assert!(text.contains("`panicky`"), "{text}");
    assert!(text.contains("on_pane_create"), "{text}");
    assert!(text.contains("probe told to panic"), "{text}");
    assert!(
        text.contains("panicked at tests/probe-plugin/src/lib.rs:"),
        "{text}"
    );
    assert!(
        text.contains(&artifacts().probe_plugin.display().to_string()),
        "{text}"
    );
    assert!(text.contains("enabled = false"), "{text}");
    // The host and the plugin go on working.
    let err = hook_error(host.pane_close(&pane("s_0_0"), &PaneExit::exited(0)));
    assert_eq!(err.hook_error_kind(), Some(HookErrorKind::Panic));
    host.server_stop(&stop()).expect("other hooks still work");
}

#[test]
fn errors_of_optional_plugins_are_logged_and_the_rest_goes_on() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let toml = [
        admitting(plugin_entry(
            "flaky",
            &probe_copy(&sandbox, "probe_flaky"),
            false,
            "fail_in = [\"on_pane_create\"]\npanic_in = [\"on_pre_spawn\"]",
        )),
        plugin_entry(
            "steady",
            &artifacts().probe_plugin,
            true,
            &format!(
                "record = {:?}\nset_env = {{ STEADY = \"1\" }}",
                record.display().to_string()
            ),
        ),
    ]
    .concat();
    let host = start(&sandbox, &toml).expect("host starts");
    let p = pane("s_0_0");
    host.pane_create(&p).expect("optional failure is not fatal");
    let mut env = Vec::new();
    host.pre_spawn(&p, &mut env)
        .expect("optional panic is not fatal");
    assert_eq!(env_value(&env, "STEADY"), Some("1"));
    assert!(record_lines(&sandbox)
        .iter()
        .any(|l| l == "steady on_pane_create s_0_0"));
}

#[test]
fn a_required_plugin_error_fails_the_operation_and_stops_later_plugins() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let toml = [
        plugin_entry(
            "gate",
            &probe_copy(&sandbox, "probe_gate"),
            true,
            "fail_in = [\"on_pre_spawn\"]",
        ),
        plugin_entry(
            "after",
            &artifacts().probe_plugin,
            true,
            &format!("record = {:?}", record.display().to_string()),
        ),
    ]
    .concat();
    let host = start(&sandbox, &toml).expect("host starts");
    let mut env = Vec::new();
    let err = hook_error(host.pre_spawn(&pane("s_0_0"), &mut env));
    assert_eq!(err.plugin(), Some("gate"));
    assert_eq!(err.hook_error_kind(), Some(HookErrorKind::Failed));
    assert!(err.to_string().contains("on_pre_spawn"), "{err}");
    assert!(!record_lines(&sandbox)
        .iter()
        .any(|l| l.contains("on_pre_spawn")));
}

#[test]
fn the_runtime_refuses_unsafe_pane_ids_before_any_plugin_sees_them() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let toml = plugin_entry(
        "probe",
        &artifacts().probe_plugin,
        true,
        &format!(
            "record = {:?}\nset_env = {{ SEEN = \"1\" }}",
            record.display().to_string()
        ),
    );
    let host = start(&sandbox, &toml).expect("host starts");
    let too_long = "a".repeat(ccmux_plugin_api::MAX_PANE_ID_LEN + 1);
    for bad in ["../escape", "", "a/b", ".hidden", too_long.as_str()] {
        let err = hook_error(host.pane_create(&pane(bad)));
        assert!(matches!(err, HostError::InvalidPane(_)), "{bad:?}: {err:?}");
        assert_eq!(err.plugin(), None);
        let text = err.to_string();
        assert!(text.contains("invalid pane id"), "{text}");
        assert!(text.contains("no plugin was called"), "{text}");

        let mut env = Vec::new();
        let err = hook_error(host.pre_spawn(&pane(bad), &mut env));
        assert!(matches!(err, HostError::InvalidPane(_)), "{bad:?}: {err:?}");
        assert!(env.is_empty(), "{env:?}");
        let err = hook_error(host.pane_close(&pane(bad), &PaneExit::exited(0)));
        assert!(matches!(err, HostError::InvalidPane(_)), "{bad:?}: {err:?}");
    }

    // Exactly the documented maximum is a valid id.
    let longest = "a".repeat(ccmux_plugin_api::MAX_PANE_ID_LEN);
    assert_eq!(longest.len(), 128);
    let p = pane(&longest);
    host.pane_create(&p).expect("128 characters are allowed");
    let mut env = Vec::new();
    host.pre_spawn(&p, &mut env)
        .expect("128 characters are allowed");
    assert_eq!(env_value(&env, "SEEN"), Some("1"));
    host.pane_close(&p, &PaneExit::exited(0))
        .expect("128 characters are allowed");
    assert_eq!(
        record_lines(&sandbox),
        [
            "probe new ".to_string(),
            format!("probe on_pane_create {longest}"),
            format!("probe on_pre_spawn {longest}"),
            format!("probe on_pane_close {longest} exited with status 0"),
        ]
    );
}

#[test]
fn hooks_run_concurrently_from_several_threads() {
    let sandbox = Sandbox::new();
    let toml = plugin_entry("probe", &artifacts().probe_plugin, true, "rendezvous = 4");
    let host = Arc::new(start(&sandbox, &toml).expect("host starts"));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let host = host.clone();
            std::thread::spawn(move || host.pane_create(&pane(&format!("s_0_{i}"))))
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .expect("thread")
            .expect("all four calls were in the plugin at once");
    }
}

/// Captures formatted events of the host's subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with a host subscriber that formats events into a buffer, and
/// returns what it wrote.
fn capture_logs(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn plugin_tracing_events_reach_the_host_subscriber_with_the_plugin_name() {
    let sandbox = Sandbox::new();
    let toml = plugin_entry(
        "chatty",
        &artifacts().probe_plugin,
        true,
        "log_message = \"hello from inside the plugin\"",
    );
    let text = capture_logs(|| {
        let host = start(&sandbox, &toml).expect("host starts");
        host.pane_create(&pane("s_0_7")).unwrap();
    });
    let line = text
        .lines()
        .find(|l| l.contains("hello from inside the plugin") && l.contains("s_0_7"))
        .unwrap_or_else(|| panic!("no plugin event in:\n{text}"));
    assert!(line.contains("ccmux::plugin"), "{line}");
    assert!(line.contains("plugin=\"chatty\""), "{line}");
    assert!(line.contains("hook=on_pane_create"), "{line}");
}

#[test]
fn an_older_interface_plugin_loads_and_runs_in_this_host() {
    let sandbox = Sandbox::new();
    let toml = plugin_entry("old", &fixture_plugin("old-plugin"), true, "");
    let host = start(&sandbox, &toml).expect("a plugin built against plugin-api 1.0 loads");
    match &host.statuses()[0].state {
        PluginState::Active(meta) => assert_eq!(meta.api_version.as_str(), "1.0.0"),
        other => panic!("{other:?}"),
    }
    host.server_start(&server_start(&[])).unwrap();
    let p = pane("s_0_0");
    host.pane_create(&p).unwrap();
    let mut env = Vec::new();
    host.pre_spawn(&p, &mut env).unwrap();
    assert_eq!(env_value(&env, "FIXTURE_PLUGIN"), Some("old-plugin"));
    host.pane_close(&p, &PaneExit::exited(0)).unwrap();
    // A hook added after 1.0: a no-op for this plugin.
    host.server_stop(&stop())
        .expect("on_server_stop is a no-op");
}

/// Starting with one required plugin at `path` fails; the message names the
/// plugin and the file and contains each of `says`.
fn assert_start_error(path: &Path, says: &[&str]) {
    let err = start_error(path);
    for phrase in says {
        assert!(err.contains(phrase), "missing {phrase:?} in: {err}");
    }
    assert!(
        !err.contains("does not exist") || says.contains(&"does not exist"),
        "{err}"
    );
}

/// The error of starting with one required plugin at `path`, checked to
/// name the plugin and the file.
fn start_error(path: &Path) -> String {
    let sandbox = Sandbox::new();
    let toml = plugin_entry("subject", path, true, "");
    let err = match start(&sandbox, &toml) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("plugin `subject`"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    err
}

#[test]
fn error_plugin_file_missing() {
    assert_start_error(
        Path::new("/nonexistent/libmissing.so"),
        &["does not exist", "build the plugin"],
    );
}

#[test]
fn error_plugin_path_is_a_directory() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("plugins-dir");
    std::fs::create_dir(&dir).unwrap();
    assert_start_error(
        &dir,
        &["it is a directory, not a library file", "point `path` at"],
    );
}

#[test]
fn error_plugin_path_is_dev_null() {
    let text = start_error(Path::new("/dev/null"));
    for phrase in [
        "it is a character device, not a regular file",
        "point `path` at",
    ] {
        assert!(text.contains(phrase), "missing {phrase:?} in: {text}");
    }
    assert!(!text.contains("does not exist"), "{text}");
}

#[test]
fn error_library_name_not_found() {
    let sandbox = Sandbox::new();
    let toml = "search_dirs = [\"lib\"]\n[[plugins]]\nname = \"subject\"\nlibrary = \"no_such_plugin\"\nrequired = true\n";
    let err = start(&sandbox, toml).expect_err("start fails").to_string();
    assert!(err.contains("plugin `subject`"), "{err}");
    assert!(
        err.contains(&ccmux_tests::lib_file_name("no_such_plugin")),
        "{err}"
    );
    assert!(
        err.contains(&sandbox.path().join("lib").display().to_string()),
        "{err}"
    );
    assert!(err.contains("search_dirs"), "{err}");
}

#[test]
fn error_not_a_shared_library() {
    let sandbox = Sandbox::new();
    let fake = sandbox.write("libfake.so", "this is text, not ELF");
    assert_start_error(
        &fake,
        &["not a loadable shared library", "point plugins.toml"],
    );
}

#[test]
fn error_library_without_root_module() {
    assert_start_error(
        &fixture_plugin("not-a-plugin"),
        &["not a ccmux plugin", "export_plugin!"],
    );
}

#[test]
fn error_abi_layout_mismatch() {
    assert_start_error(
        &fixture_plugin("skewed-plugin"),
        &["ABI does not match", "InitArgs", "rebuild the plugin"],
    );
}

#[test]
fn error_hook_signature_mismatch() {
    assert_start_error(
        &fixture_plugin("skewed-hook-plugin"),
        &["`on_pane_create` hook has a different signature", "rebuild"],
    );
}

#[test]
fn error_incompatible_api_version() {
    assert_start_error(
        &fixture_plugin("v2-plugin"),
        &[
            "built against plugin-api 2.0.0",
            &format!(
                "this host uses plugin-api {}",
                ccmux_plugin_api::API_VERSION
            ),
            "rebuild",
        ],
    );
}

#[test]
fn error_in_constructor() {
    let sandbox = Sandbox::new();
    let toml = plugin_entry(
        "subject",
        &artifacts().probe_plugin,
        true,
        "fail_constructor = true",
    );
    let err = start(&sandbox, &toml).expect_err("start fails").to_string();
    assert!(err.contains("plugin `subject`"), "{err}");
    assert!(err.contains("failed to start"), "{err}");
    assert!(
        err.contains("probe told to fail in its constructor"),
        "{err}"
    );
}

#[test]
fn panic_in_constructor() {
    let sandbox = Sandbox::new();
    let toml = plugin_entry(
        "subject",
        &artifacts().probe_plugin,
        true,
        "panic_constructor = true",
    );
    let err = start(&sandbox, &toml).expect_err("start fails");
    match &err {
        StartError::Plugin(host_err) => {
            assert_eq!(host_err.hook_error_kind(), Some(HookErrorKind::Panic))
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("panicked"), "{err}");
}

#[test]
fn bad_plugin_config_names_the_plugin_and_key() {
    let sandbox = Sandbox::new();
    let toml = plugin_entry(
        "subject",
        &artifacts().probe_plugin,
        true,
        "rendezvous = \"many\"",
    );
    let err = start(&sandbox, &toml).expect_err("start fails").to_string();
    assert!(err.contains("`subject`"), "{err}");
    assert!(err.contains("plugins.config.rendezvous"), "{err}");
}

#[test]
fn config_file_errors_name_the_file() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path().join("nope.toml");
    let err = PluginHost::start(&missing)
        .expect_err("missing")
        .to_string();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("no such file"), "{err}");

    let err = start(
        &sandbox,
        "[[plugins]]\nname = \"x\"\npath = \"a\"\nrequierd = true\n",
    )
    .expect_err("unknown key")
    .to_string();
    assert!(err.contains("plugins.toml:4:1"), "{err}");
    assert!(err.contains("unknown field `requierd`"), "{err}");

    let err = start(&sandbox, "[[plugins]]\nname = \"x\npath = \"a\"\n")
        .expect_err("bad toml")
        .to_string();
    assert!(err.contains("plugins.toml:2:"), "{err}");
    assert!(err.contains("invalid TOML"), "{err}");
}

#[test]
fn a_plugins_toml_that_is_a_fifo_is_refused_and_nothing_waits_on_it() {
    let sandbox = Sandbox::new();
    let good = plugin_entry("probe", &artifacts().probe_plugin, true, "");
    let file = sandbox.write("plugins.toml", &good);
    let host = Arc::new(PluginHost::start(&file).expect("host starts"));
    std::fs::remove_file(&file).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&file)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());

    // Both the first read and a reload go through the same bounded read.
    let (done, results) = std::sync::mpsc::channel();
    let reloading = host.clone();
    let fifo = file.clone();
    std::thread::spawn(move || {
        let start = PluginHost::start(&fifo).err().map(|e| e.to_string());
        let reload = reloading.reload(&[]).err().map(|e| e.to_string());
        let _ = done.send((start, reload));
    });
    let (start, reload) = results
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("reading a FIFO as plugins.toml blocked");
    for err in [start, reload] {
        let err = err.expect("a FIFO is refused");
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert!(
            err.contains("a FIFO (named pipe), not a regular file"),
            "{err}"
        );
    }
    // The failed reload kept the running plugin.
    assert!(matches!(host.statuses()[0].state, PluginState::Active(_)));
}

#[test]
fn an_optional_plugin_that_fails_to_load_is_skipped() {
    let sandbox = Sandbox::new();
    // With on_fault = "admit"; without it, a library that cannot be read
    // refuses every pane (tests/fault_policy.rs).
    let toml = [
        plugin_entry("broken", Path::new("/nonexistent/libx.so"), false, "")
            .replace("[plugins.config]", "on_fault = \"admit\"\n[plugins.config]"),
        plugin_entry(
            "probe",
            &artifacts().probe_plugin,
            true,
            "set_env = { OK = \"1\" }",
        ),
    ]
    .concat();
    let host = start(&sandbox, &toml).expect("optional failure is not fatal");
    assert!(matches!(host.statuses()[0].state, PluginState::Failed(_)));
    let mut env = Vec::new();
    host.pre_spawn(&pane("s_0_0"), &mut env).unwrap();
    assert_eq!(env_value(&env, "OK"), Some("1"));
}

#[test]
fn reload_with_a_changed_isolation_config_keeps_open_panes_isolated() {
    let sandbox = Sandbox::new();
    let base = sandbox.path().join("base");
    let write = |grace_ms: u32| {
        let config = format!(
            "base_dir = {:?}\ngrace_period_ms = {grace_ms}",
            base.display().to_string()
        );
        sandbox.write(
            "plugins.toml",
            &plugin_entry("isolation", &artifacts().isolation_plugin, true, &config),
        )
    };
    let file = write(60_000);
    let host = PluginHost::start(&file).expect("host starts");
    host.server_start(&server_start(&[])).unwrap();
    let open = pane("s_0_1");
    host.pane_create(&open).unwrap();

    // The new instance is constructed and started while the old one still
    // holds the server's identity lock: they are one process.
    write(0);
    host.reload(&["s_0_1".to_string()])
        .expect("a config change is a reload, not a second server");
    assert!(
        base.join("s_0_1").is_dir(),
        "the open pane's dir was taken for an orphan"
    );
    let mut env = Vec::new();
    host.pre_spawn(&open, &mut env).unwrap();
    assert_eq!(
        env_value(&env, "CLAUDE_CONFIG_DIR").map(PathBuf::from),
        Some(base.join("s_0_1/config"))
    );
    // The new config applies: no grace period.
    host.pane_close(&open, &PaneExit::exited(0)).unwrap();
    assert!(!base.join("s_0_1").exists());
    host.server_stop(&stop()).unwrap();
}

/// A `[[plugins]]` entry with extra keys (such as `before`) before its
/// config table.
fn entry_with(name: &str, path: &Path, required: bool, keys: &str, config: &str) -> String {
    plugin_entry(name, path, required, config).replacen(
        "[plugins.config]",
        &format!("{keys}\n[plugins.config]"),
        1,
    )
}

fn counts_of(host: &PluginHost, name: &str) -> PluginCounts {
    host.counts()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no counts for {name}"))
}

#[test]
fn an_optional_plugin_refuses_a_pane_in_on_pane_create() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let record_config = format!("record = {:?}", record.display().to_string());
    let toml = [
        plugin_entry(
            "policy",
            &probe_copy(&sandbox, "probe_policy"),
            false,
            &format!(
                "{record_config}\nrefuse_in = [\"on_pane_create\"]\nrefuse_reason = \"no Claude outside ~/work\""
            ),
        ),
        plugin_entry("later", &artifacts().probe_plugin, false, &record_config),
    ]
    .concat();
    let host = start(&sandbox, &toml).expect("host starts");
    let err = hook_error(host.pane_create(&pane("s_0_0")));
    assert!(err.is_refusal(), "{err:?}");
    assert_eq!(err.plugin(), Some("policy"));
    assert_eq!(err.hook_error_kind(), None, "a refusal is not a failure");
    assert_eq!(
        err.to_string(),
        "plugin `policy` refused the pane in on_pane_create: no Claude outside ~/work"
    );
    // The refusing plugin's own on_pane_create and every later plugin are
    // skipped.
    assert_eq!(
        record_lines(&sandbox),
        [
            "policy new ",
            "later new ",
            "policy on_pane_create s_0_0 refused"
        ]
    );
    let counts = counts_of(&host, "policy");
    assert_eq!((counts.calls, counts.refusals, counts.failures), (1, 1, 0));
    assert_eq!(counts.last_error, None);
}

#[test]
fn an_optional_plugin_refuses_a_pane_in_on_pre_spawn_and_its_edits_are_dropped() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let record_config = format!("record = {:?}", record.display().to_string());
    let toml = [
        plugin_entry(
            "first",
            &probe_copy(&sandbox, "probe_first"),
            false,
            "set_env = { FIRST = \"1\" }",
        ),
        plugin_entry(
            "policy",
            &probe_copy(&sandbox, "probe_policy"),
            false,
            "set_env = { POLICY = \"1\" }\nrefuse_in = [\"on_pre_spawn\"]\nrefuse_reason = \"ANTHROPIC_API_KEY must not reach panes\"",
        ),
        plugin_entry("later", &artifacts().probe_plugin, false, &record_config),
    ]
    .concat();
    let host = start(&sandbox, &toml).expect("host starts");
    let p = pane("s_0_0");
    host.pane_create(&p).expect("nobody refuses at creation");
    let mut env = Vec::new();
    let err = hook_error(host.pre_spawn(&p, &mut env));
    assert!(err.is_refusal(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "plugin `policy` refused the pane in on_pre_spawn: ANTHROPIC_API_KEY must not reach panes"
    );
    assert_eq!(env_value(&env, "FIRST"), Some("1"));
    assert_eq!(
        env_value(&env, "POLICY"),
        None,
        "a refusing call's edits apply"
    );
    assert!(
        !record_lines(&sandbox)
            .iter()
            .any(|l| l.contains("on_pre_spawn")),
        "a plugin after the refusal was called: {:?}",
        record_lines(&sandbox)
    );
}

#[test]
fn before_and_after_set_the_order_hooks_run_in() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let config = format!(
        "record = {:?}\nappend_name_to = [\"ORDER\"]",
        record.display().to_string()
    );
    // Declared a, b, c, d; c runs before a, and a after d: b, c, d, a.
    let toml = [
        entry_with(
            "a",
            &probe_copy(&sandbox, "probe_a"),
            true,
            "after = [\"d\"]",
            &config,
        ),
        entry_with("b", &probe_copy(&sandbox, "probe_b"), true, "", &config),
        entry_with(
            "c",
            &probe_copy(&sandbox, "probe_c"),
            true,
            "before = [\"a\"]",
            &config,
        ),
        entry_with("d", &probe_copy(&sandbox, "probe_d"), true, "", &config),
    ]
    .concat();
    let host = start(&sandbox, &toml).expect("host starts");
    let names: Vec<String> = host.statuses().iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["b", "c", "d", "a"]);
    let p = pane("s_0_0");
    host.pane_create(&p).unwrap();
    let mut env = Vec::new();
    host.pre_spawn(&p, &mut env).unwrap();
    assert_eq!(env_value(&env, "ORDER"), Some("b,c,d,a"));
    let creates: Vec<String> = record_lines(&sandbox)
        .into_iter()
        .filter(|l| l.contains("on_pane_create"))
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(creates, ["b", "c", "d", "a"]);
}

#[test]
fn an_order_cycle_or_an_unknown_name_is_a_config_error_naming_them() {
    let sandbox = Sandbox::new();
    let probe = &artifacts().probe_plugin;
    let cycle = [
        entry_with("a", probe, false, "before = [\"b\"]", ""),
        entry_with("b", probe, false, "before = [\"c\"]", ""),
        entry_with("c", probe, false, "before = [\"a\"]", ""),
    ]
    .concat();
    let err = match start(&sandbox, &cycle) {
        Err(StartError::Config(err)) => err.to_string(),
        Err(other) => panic!("not a config error: {other}"),
        Ok(_) => panic!("a cycle loaded"),
    };
    assert!(err.contains("plugins.toml"), "{err}");
    assert!(err.contains("a -> b -> c -> a"), "{err}");

    let unknown = [
        entry_with("a", probe, false, "", ""),
        entry_with("b", probe, false, "after = [\"a\", \"isolatoin\"]", ""),
    ]
    .concat();
    let err = match start(&sandbox, &unknown) {
        Err(StartError::Config(err)) => err.to_string(),
        Err(other) => panic!("not a config error: {other}"),
        Ok(_) => panic!("an unknown name loaded"),
    };
    assert!(err.contains("entry 1 (`b`)"), "{err}");
    assert!(err.contains("`after` names `isolatoin`"), "{err}");
    assert!(!err.contains("`a`,"), "{err}");
}

/// A clock that moves on by `step` each time it is read: every hook then
/// takes exactly `step`, whatever the machine's clock and load.
struct SteppingClock {
    now: Mutex<Duration>,
    step: Duration,
}

impl HookClock for SteppingClock {
    fn now(&self) -> Duration {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += self.step;
        *now
    }
}

/// The slow-hook warnings logged for one `pane_create` of a probe plugin
/// timed by a clock that makes every hook take `step`.
fn slow_hook_warnings(slow_hook_ms: u64, step: Duration) -> Vec<String> {
    let sandbox = Sandbox::new();
    let toml = format!(
        "[faults]\nslow_hook_ms = {slow_hook_ms}\n\n{}",
        plugin_entry("sluggish", &artifacts().probe_plugin, true, "")
    );
    let text = capture_logs(|| {
        let mut host = start(&sandbox, &toml).expect("host starts");
        host.set_hook_clock(Arc::new(SteppingClock {
            now: Mutex::new(Duration::ZERO),
            step,
        }));
        assert_eq!(host.fault_policy().slow_hook_ms, slow_hook_ms);
        host.pane_create(&pane("s_0_0"))
            .expect("slow is not a failure");
    });
    text.lines()
        .filter(|l| l.contains("WARN") && l.contains("took"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_hook_slower_than_the_threshold_is_a_warning_naming_plugin_hook_and_time() {
    let warnings = slow_hook_warnings(1, Duration::from_millis(40));
    let [line] = warnings.as_slice() else {
        panic!("not one slow-hook warning: {warnings:?}");
    };
    assert!(line.contains("plugin `sluggish`"), "{line}");
    assert!(line.contains("in on_pane_create"), "{line}");
    assert!(line.contains("took 40 ms"), "{line}");
    assert!(line.contains("slow_hook_ms = 1"), "{line}");
    assert!(line.contains("took_ms=40"), "{line}");
}

#[test]
fn a_hook_time_a_few_nanoseconds_short_is_reported_in_whole_milliseconds() {
    // What the coarse clock reads for a 40 ms sleep: 39.999996 ms.
    let warnings = slow_hook_warnings(1, Duration::from_nanos(39_999_996));
    let [line] = warnings.as_slice() else {
        panic!("not one slow-hook warning: {warnings:?}");
    };
    assert!(line.contains("took 40 ms"), "{line}");
}

#[test]
fn a_hook_at_or_under_the_threshold_is_no_warning() {
    for step in [Duration::from_millis(40), Duration::from_micros(40_400)] {
        let warnings = slow_hook_warnings(40, step);
        assert!(warnings.is_empty(), "{step:?}: {warnings:?}");
    }
    // Just over, once rounded: a warning.
    assert_eq!(
        slow_hook_warnings(40, Duration::from_micros(40_500)).len(),
        1
    );
}

#[test]
fn an_optional_plugin_failing_n_times_in_a_row_is_switched_off_until_a_reload() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let toml = format!(
        "[faults]\nswitch_off_after = 3\n\n{}{}",
        admitting(plugin_entry(
            "flaky",
            &probe_copy(&sandbox, "probe_flaky"),
            false,
            &format!(
                "record = {:?}\nfail_in = [\"on_pane_create\"]\npanic_in = [\"on_pre_spawn\"]",
                record.display().to_string()
            ),
        )),
        // Required plugins are never switched off.
        plugin_entry(
            "strict",
            &artifacts().probe_plugin,
            true,
            &format!(
                "record = {:?}\nfail_in = [\"on_pane_close\"]",
                record.display().to_string()
            ),
        ),
    );
    let file = sandbox.write("plugins.toml", &toml);
    let flaky_calls = || {
        record_lines(&sandbox)
            .iter()
            .filter(|l| l.starts_with("flaky on_"))
            .count()
    };
    let strict_closes = || {
        record_lines(&sandbox)
            .iter()
            .filter(|l| l.starts_with("strict on_pane_close"))
            .count()
    };
    let mut host = None;
    let text = capture_logs(|| {
        let started = PluginHost::start(&file).expect("host starts");
        let (a, b) = (pane("s_0_1"), pane("s_0_2"));
        // Fails, panics, fails: the third in a row switches it off.
        started.pane_create(&a).expect("optional");
        started.pre_spawn(&a, &mut Vec::new()).expect("optional");
        started.pane_create(&b).expect("optional");
        for _ in 0..4 {
            let _ = started.pane_close(&a, &PaneExit::exited(0));
        }
        host = Some(started);
    });
    let host = host.expect("ran");
    assert_eq!(flaky_calls(), 3, "{:?}", record_lines(&sandbox));
    assert_eq!(strict_closes(), 4, "a required plugin stays on");
    let counts = counts_of(&host, "flaky");
    assert!(counts.switched_off, "{counts:?}");
    assert_eq!((counts.calls, counts.failures), (3, 3), "{counts:?}");
    assert!(
        counts
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("probe told to fail in on_pane_create")),
        "{counts:?}"
    );
    assert!(!counts_of(&host, "strict").switched_off);
    let error = text
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("switched off"))
        .unwrap_or_else(|| panic!("no switch-off error in:\n{text}"));
    assert!(
        error.contains("plugin `flaky` failed 3 times in a row"),
        "{error}"
    );
    assert!(error.contains("reload"), "{error}");
    assert_eq!(
        text.matches("switched off for the rest").count(),
        1,
        "{text}"
    );

    // No hook reaches it while it is off.
    host.pane_create(&pane("s_0_3")).unwrap();
    assert_eq!(flaky_calls(), 3);

    // A reload (the same file) switches it on again.
    host.reload(&[]).expect("reload");
    let counts = counts_of(&host, "flaky");
    assert!(!counts.switched_off, "{counts:?}");
    assert_eq!(counts.failures_in_a_row, 0);
    assert_eq!(counts.failures, 3, "counts survive the reload");
    host.pane_create(&pane("s_0_4")).unwrap();
    assert_eq!(flaky_calls(), 4, "{:?}", record_lines(&sandbox));
}

#[test]
fn counts_of_calls_failures_and_the_last_error_per_plugin() {
    let sandbox = Sandbox::new();
    let toml = [
        plugin_entry("steady", &probe_copy(&sandbox, "probe_steady"), true, ""),
        plugin_entry(
            "flaky",
            &artifacts().probe_plugin,
            false,
            "fail_in = [\"on_pane_close\"]",
        ),
    ]
    .concat();
    let host = start(&sandbox, &toml).expect("host starts");
    host.server_start(&server_start(&[])).unwrap();
    let p = pane("s_0_0");
    host.pane_create(&p).unwrap();
    host.pre_spawn(&p, &mut Vec::new()).unwrap();
    host.pane_close(&p, &PaneExit::exited(0)).unwrap();
    let counts = host.counts();
    assert_eq!(
        counts.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["steady", "flaky"]
    );
    assert_eq!(
        counts[0],
        PluginCounts {
            name: "steady".into(),
            calls: 4,
            failures: 0,
            refusals: 0,
            failures_in_a_row: 0,
            switched_off: false,
            last_error: None,
        }
    );
    assert_eq!((counts[1].calls, counts[1].failures), (4, 1));
    assert_eq!(counts[1].failures_in_a_row, 1);
    let last = counts[1].last_error.as_deref().unwrap_or_default();
    assert!(last.contains("plugin `flaky`"), "{last}");
    assert!(last.contains("on_pane_close"), "{last}");
    assert!(
        last.contains("probe told to fail in on_pane_close"),
        "{last}"
    );
}

#[test]
fn a_newer_plugin_on_an_older_host_loads_and_its_refusal_arrives_as_a_failure() {
    // old-host is built against the frozen 1.0 contract; the probe against
    // this plugin-api (1.3): see plugin-api's `versioning` page.
    let sandbox = Sandbox::new();
    let old_host = ccmux_tests::fixture_binary("old-host");
    let out = ccmux_tests::run(
        sandbox
            .command(&old_host)
            .arg(&artifacts().probe_plugin)
            .arg("refuse_in = [\"on_pane_create\", \"on_pre_spawn\"]\nrefuse_reason = \"no Claude outside ~/work\""),
    );
    assert!(out.status.success(), "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let refusal = "error: refuses pane old_0_0: no Claude outside ~/work (this host predates plugin-api 1.2, which reports refusals as refusals)";
    assert_eq!(
        lines,
        [
            format!("loaded probe api {}", ccmux_plugin_api::API_VERSION).as_str(),
            // Entries the older host does not know are never called.
            "ignored hook on_pane_create_v2",
            "ignored hook on_pre_spawn_v2",
            "ignored hook on_server_stop",
            "ignored hook refuses_panes",
            "on_server_start: ok, 0 env edits",
            &format!("on_pane_create: {refusal}"),
            &format!("on_pre_spawn: {refusal}"),
            "on_pane_close: ok, 0 env edits",
        ],
        "{out}"
    );

    // Without a refusal the 1.0 entries work as they always did.
    let out = ccmux_tests::run(
        sandbox
            .command(&old_host)
            .arg(&artifacts().probe_plugin)
            .arg("set_env = { FROM_NEWER = \"1\" }"),
    );
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains("on_pane_create: ok"), "{out}");
    assert!(
        out.stdout.contains("on_pre_spawn: ok, 1 env edits"),
        "{out}"
    );
}

#[test]
fn a_reload_that_only_reorders_keeps_the_instances_and_applies_the_new_order() {
    let sandbox = Sandbox::new();
    let record = sandbox.path().join("record");
    let config = format!("record = {:?}", record.display().to_string());
    let (a, b) = (
        probe_copy(&sandbox, "probe_a"),
        probe_copy(&sandbox, "probe_b"),
    );
    let write = |b_keys: &str| {
        sandbox.write(
            "plugins.toml",
            &[
                entry_with("a", &a, true, "", &config),
                entry_with("b", &b, true, b_keys, &config),
            ]
            .concat(),
        )
    };
    let host = PluginHost::start(&write("")).expect("host starts");
    host.pane_create(&pane("s_0_1")).unwrap();
    write("before = [\"a\"]");
    host.reload(&[]).expect("reload");
    host.pane_create(&pane("s_0_2")).unwrap();
    assert_eq!(
        record_lines(&sandbox),
        [
            "a new ",
            "b new ",
            "a on_pane_create s_0_1",
            "b on_pane_create s_0_1",
            // No new instance: only the order changed.
            "b on_pane_create s_0_2",
            "a on_pane_create s_0_2",
        ]
    );
}
