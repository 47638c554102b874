//! `host-shim new-plugin`: the crate it writes builds and passes its own
//! tests out of tree (a temp dir outside the workspace), depending on
//! plugin-api by path; and it refuses what it should.

use std::path::Path;
use std::process::Command;

use ccmux_tests::{artifacts, repo_root, run, Run, Sandbox};

fn new_plugin(sandbox: &Sandbox, args: &[&str]) -> Run {
    run(sandbox.host_shim().arg("new-plugin").args(args))
}

#[test]
fn a_new_plugin_builds_and_its_tests_pass_outside_the_workspace() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("my-policy");
    assert!(
        !dir.starts_with(repo_root()),
        "the temp dir must be outside the workspace"
    );
    let api = repo_root().join("plugin-api");
    let out = new_plugin(
        &sandbox,
        &[
            "my-policy",
            &dir.display().to_string(),
            "--api-path",
            &api.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{out}");
    assert!(out.stderr.contains("cargo test"), "says what next: {out}");
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
    assert!(cargo_toml.contains("name = \"my-policy\""), "{cargo_toml}");
    let api = std::fs::canonicalize(&api).expect("plugin-api");
    assert!(
        cargo_toml.contains(&format!("path = {:?}", api.display().to_string())),
        "{cargo_toml}"
    );

    // The workspace's lock file: the same dependency versions, all in the
    // local registry cache since the workspace built, so no network.
    std::fs::copy(repo_root().join("Cargo.lock"), dir.join("Cargo.lock")).expect("lock");
    // The workspace's target dir: the dependencies it built are reused.
    // cargo runs as the tests' other cargo builds do.
    let target = artifacts().target_dir.clone();
    let library = target
        .join("debug")
        .join(ccmux_tests::lib_file_name("my_policy"));
    let _ = std::fs::remove_file(&library);
    let test = Command::new(env!("CARGO"))
        .current_dir(&dir)
        .args(["test", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    let out = Run::from(test);
    assert!(out.status.success(), "the new plugin's cargo test:\n{out}");
    // Its four tests ran, the one that builds and loads its cdylib too.
    assert!(out.stdout.contains("4 passed"), "{out}");
    assert!(library.is_file(), "its test built {}", library.display());
}

#[test]
fn new_plugin_refuses_a_bad_name_a_used_dir_and_a_wrong_api_path() {
    let sandbox = Sandbox::new();
    let out = new_plugin(&sandbox, &["My Plugin", "--api-path", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("lowercase ASCII letters"), "{out}");

    let used = sandbox.write("used/file", "x");
    let used = used
        .parent()
        .unwrap_or(Path::new("/"))
        .display()
        .to_string();
    let api = repo_root().join("plugin-api").display().to_string();
    let out = new_plugin(&sandbox, &["ok-name", &used, "--api-path", &api]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("is not empty"), "{out}");
    assert_eq!(sandbox.read("used/file"), "x", "nothing replaced");

    let out = new_plugin(&sandbox, &["ok-name", "--api-path", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("is not plugin-api"), "{out}");
    assert!(out.stderr.contains("--api-git"), "{out}");
    assert!(!sandbox.path().join("ok-name").exists(), "nothing written");
}

#[test]
fn new_plugin_with_api_git_names_the_url_and_the_release_tag() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("p");
    let out = new_plugin(
        &sandbox,
        &[
            "gitty",
            &dir.display().to_string(),
            "--api-git",
            "https://example.org/ccmux.git",
        ],
    );
    assert!(out.status.success(), "{out}");
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
    let tag = format!("plugin-api-v{}", ccmux_plugin_api::API_VERSION);
    assert!(
        cargo_toml.contains(&format!(
            "ccmux-plugin-api = {{ git = \"https://example.org/ccmux.git\", tag = \"{tag}\" }}"
        )),
        "{cargo_toml}"
    );
}

#[test]
fn without_api_flags_the_new_plugin_depends_on_the_checkout_host_shim_was_built_from() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("local");
    let out = new_plugin(&sandbox, &["local", &dir.display().to_string()]);
    assert!(out.status.success(), "{out}");
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
    let api = std::fs::canonicalize(repo_root().join("plugin-api")).expect("plugin-api");
    assert!(
        cargo_toml.contains(&format!("path = {:?}", api.display().to_string())),
        "{cargo_toml}"
    );
    // Its own .gitignore, for its target dir.
    assert_eq!(sandbox.read("local/.gitignore"), "/target\n");
}
