//! scripts/install into a fake HOME and XDG dirs: the installed host-shim
//! finds its config and the plugin with no flags, and --uninstall removes
//! exactly what the install added.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ccmux_tests::{artifacts, lib_file_name, repo_root, run, Run, Sandbox};

/// Every path under `dirs`, so a before and an after can be compared.
fn tree(dirs: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            found.insert(path);
        }
    }
    found
}

fn install(sandbox: &Sandbox, args: &[&str]) -> Run {
    let mut cmd = sandbox.command("bash");
    cmd.arg(repo_root().join("scripts/install")).args(args);
    run(cmd)
}

fn from_built() -> String {
    artifacts()
        .host_shim
        .parent()
        .expect("the profile dir")
        .display()
        .to_string()
}

struct Layout {
    bin: PathBuf,
    lib: PathBuf,
    config: PathBuf,
}

fn layout(sandbox: &Sandbox) -> Layout {
    Layout {
        bin: sandbox.home().join(".local/bin/host-shim"),
        lib: sandbox
            .home()
            .join(".local/lib/ccmux/plugins")
            .join(lib_file_name("ccmux_isolation_plugin")),
        // Sandbox::command sets XDG_CONFIG_HOME.
        config: sandbox.path().join("xdg-config/ccmux/plugins.toml"),
    }
}

fn roots(sandbox: &Sandbox) -> Vec<PathBuf> {
    vec![sandbox.home(), sandbox.path().join("xdg-config")]
}

#[test]
fn the_installed_host_shim_finds_its_config_and_plugin_and_uninstall_removes_exactly_that() {
    let sandbox = Sandbox::new();
    // Something of the user's in the same dirs, which must stay.
    sandbox.write("home/.local/bin/other-tool", "#!/bin/sh\n");
    let before = tree(&roots(&sandbox));

    let out = install(&sandbox, &["--from", &from_built()]);
    assert!(out.status.success(), "{out}");
    let installed = layout(&sandbox);
    for file in [&installed.bin, &installed.lib, &installed.config] {
        assert!(file.is_file(), "{} is missing: {out}", file.display());
    }

    // No --config, and no plugins.toml in the current directory (the
    // sandbox): the installed one is found, and the plugin in the lib dir.
    assert!(!sandbox.path().join("plugins.toml").exists());
    let out = run(sandbox.command(&installed.bin).arg("check"));
    assert!(out.status.success(), "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(
            format!(
                "# config: {} (the installed one: no --config, no $CCMUX_PLUGINS_CONFIG)",
                installed.config.display()
            )
            .as_str()
        ),
        "{out}"
    );
    let lib_dir = installed.lib.parent().unwrap();
    let bin_dir = installed.bin.parent().unwrap();
    assert_eq!(
        lines.get(1).copied(),
        Some(
            format!(
                "# library search: {}, {}",
                lib_dir.display(),
                bin_dir.display()
            )
            .as_str()
        ),
        "{out}"
    );
    let plugin = lines.get(2).copied().unwrap_or_default();
    assert!(plugin.starts_with("isolation\t"), "{out}");
    assert!(
        plugin.contains(&installed.lib.display().to_string()),
        "{out}"
    );
    assert!(plugin.ends_with("ok"), "{out}");

    // And it isolates a pane.
    let out = run(sandbox.command(&installed.bin).args([
        "run",
        "--pane-id",
        "i_0_0",
        "--",
        "sh",
        "-c",
        "echo \"$CLAUDE_CONFIG_DIR\"",
    ]));
    assert!(out.status.success(), "{out}");
    let expected = sandbox.home().join(".ccmux/claude/i_0_0/config");
    assert_eq!(
        out.stdout.trim(),
        format!("[i_0_0] {}", expected.display()),
        "{out}"
    );
    // What the run made is data, not installed files: set it aside.
    let data = [
        sandbox.home().join(".ccmux"),
        // The pane's shared data (its projects/, history, ...) is the user's.
        sandbox.home().join(".claude"),
        sandbox.path().join("xdg-state"),
    ];
    for dir in &data {
        let _ = std::fs::remove_dir_all(dir);
    }

    let out = install(&sandbox, &["--uninstall"]);
    assert!(out.status.success(), "{out}");
    assert_eq!(tree(&roots(&sandbox)), before, "{out}");
}

#[test]
fn install_keeps_an_existing_config_and_uninstall_keeps_an_edited_one() {
    let sandbox = Sandbox::new();
    let installed = layout(&sandbox);

    // An existing config is the user's: never replaced, never removed.
    let mine = "# mine\n";
    sandbox.write("xdg-config/ccmux/plugins.toml", mine);
    let out = install(&sandbox, &["--from", &from_built()]);
    assert!(out.status.success(), "{out}");
    assert_eq!(std::fs::read_to_string(&installed.config).unwrap(), mine);
    let out = install(&sandbox, &["--uninstall"]);
    assert!(out.status.success(), "{out}");
    assert_eq!(std::fs::read_to_string(&installed.config).unwrap(), mine);
    assert!(!installed.bin.exists() && !installed.lib.exists(), "{out}");
    std::fs::remove_file(&installed.config).unwrap();

    // An installed config edited since is kept too.
    let out = install(&sandbox, &["--from", &from_built()]);
    assert!(out.status.success(), "{out}");
    let mut text = std::fs::read_to_string(&installed.config).unwrap();
    assert!(text.contains("search_dirs"), "{text}");
    text.push_str("# edited\n");
    std::fs::write(&installed.config, &text).unwrap();
    let out = install(&sandbox, &["--uninstall"]);
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains("kept"), "{out}");
    assert_eq!(std::fs::read_to_string(&installed.config).unwrap(), text);
    assert!(!installed.bin.exists() && !installed.lib.exists(), "{out}");
    assert!(
        !Path::new(&installed.lib).parent().unwrap().exists(),
        "{out}"
    );
}

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn manifest(sandbox: &Sandbox) -> PathBuf {
    sandbox.home().join(".local/lib/ccmux/installed-files")
}

#[test]
fn install_over_a_foreign_host_shim_leaves_it_and_says_how_to_go_on() {
    let sandbox = Sandbox::new();
    let installed = layout(&sandbox);
    let foreign = "#!/bin/sh\necho another host-shim\n";
    sandbox.write("home/.local/bin/host-shim", foreign);

    let out = install(&sandbox, &["--from", &from_built()]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains(&installed.bin.display().to_string()),
        "{out}"
    );
    assert!(out.stderr.contains("--force"), "{out}");
    assert!(out.stderr.contains("nothing installed"), "{out}");
    assert_eq!(std::fs::read_to_string(&installed.bin).unwrap(), foreign);
    assert!(!installed.lib.exists(), "{out}");
    assert!(!installed.config.exists(), "{out}");

    // --force moves it aside, then installs.
    let out = install(&sandbox, &["--from", &from_built(), "--force"]);
    assert!(out.status.success(), "{out}");
    let backup = sandbox.home().join(".local/bin/host-shim.ccmux-backup");
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), foreign);
    assert_eq!(sha256(&installed.bin), sha256(&artifacts().host_shim));
    // Uninstall removes what it installed, never the backup.
    let out = install(&sandbox, &["--uninstall"]);
    assert!(out.status.success(), "{out}");
    assert!(!installed.bin.exists(), "{out}");
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), foreign);
}

#[test]
fn install_never_writes_through_a_symbolic_link() {
    let sandbox = Sandbox::new();
    let installed = layout(&sandbox);
    // A dangling plugins.toml link, pointing outside the config dir.
    let outside = sandbox.path().join("outside/plugins.toml");
    std::fs::create_dir_all(installed.config.parent().unwrap()).unwrap();
    std::fs::create_dir_all(outside.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&outside, &installed.config).unwrap();
    let out = install(&sandbox, &["--from", &from_built()]);
    assert!(out.status.success(), "{out}");
    assert!(!outside.exists(), "written through the link: {out}");
    assert_eq!(std::fs::read_link(&installed.config).unwrap(), outside);
    assert!(out.stdout.contains("symbolic link"), "{out}");
    assert!(installed.bin.is_file() && installed.lib.is_file(), "{out}");
    let out = install(&sandbox, &["--uninstall"]);
    assert!(out.status.success(), "{out}");
    assert_eq!(std::fs::read_link(&installed.config).unwrap(), outside);

    // A link in place of host-shim is refused, its target untouched.
    let target = sandbox.write("elsewhere/tool", "precious\n");
    std::fs::create_dir_all(installed.bin.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, &installed.bin).unwrap();
    let out = install(&sandbox, &["--from", &from_built()]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains(&installed.bin.display().to_string()),
        "{out}"
    );
    assert_eq!(sandbox.read("elsewhere/tool"), "precious\n");
    assert!(installed.bin.is_symlink());
}

#[test]
fn uninstall_refuses_manifest_lines_outside_its_dirs_and_names_them() {
    let sandbox = Sandbox::new();
    let out = install(&sandbox, &["--from", &from_built()]);
    assert!(out.status.success(), "{out}");
    let installed = layout(&sandbox);

    // Files of the user's, listed with their true hashes, as someone who
    // can write the manifest would.
    let victim = sandbox.write("home/Documents/thesis.tex", "years of work\n");
    let sneaky = sandbox.write("home/.local/bin/other-tool", "#!/bin/sh\n");
    let mut text = std::fs::read_to_string(manifest(&sandbox)).unwrap();
    text.push_str(&format!("file {} {}\n", sha256(&victim), victim.display()));
    text.push_str(&format!("file {} {}\n", sha256(&sneaky), sneaky.display()));
    let dotted = format!(
        "{}/../Documents/thesis.tex",
        installed.bin.parent().unwrap().display()
    );
    text.push_str(&format!("file {} {dotted}\n", sha256(&victim)));
    text.push_str(&format!(
        "dir - {}\n",
        sandbox.home().join("Documents").display()
    ));
    std::fs::write(manifest(&sandbox), text).unwrap();

    let out = install(&sandbox, &["--uninstall"]);
    assert_eq!(out.status.code(), Some(1), "{out}");
    for named in [
        victim.display().to_string(),
        sneaky.display().to_string(),
        dotted,
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("install: refused manifest line") && l.contains(&named)),
            "{named} is not named: {out}"
        );
    }
    assert_eq!(sandbox.read("home/Documents/thesis.tex"), "years of work\n");
    assert_eq!(sandbox.read("home/.local/bin/other-tool"), "#!/bin/sh\n");
    // What it did install is gone all the same.
    for file in [&installed.bin, &installed.lib, &installed.config] {
        assert!(!file.exists(), "{}: {out}", file.display());
    }
}

#[test]
fn install_and_uninstall_are_idempotent_and_a_second_install_upgrades() {
    let sandbox = Sandbox::new();
    sandbox.write("home/.local/bin/other-tool", "#!/bin/sh\n");
    let before = tree(&roots(&sandbox));
    let installed = layout(&sandbox);

    let out = install(&sandbox, &["--from", &from_built()]);
    assert!(out.status.success(), "{out}");
    let first = std::fs::read_to_string(manifest(&sandbox)).unwrap();

    // An older build installed: the next install replaces it.
    std::fs::write(&installed.lib, "an older plugin").unwrap();
    let recorded = first.replace(
        &sha256(&artifacts().isolation_plugin),
        &sha256(&installed.lib),
    );
    std::fs::write(manifest(&sandbox), &recorded).unwrap();
    let out = install(&sandbox, &["--from", &from_built()]);
    assert!(out.status.success(), "{out}");
    assert_eq!(
        sha256(&installed.lib),
        sha256(&artifacts().isolation_plugin)
    );
    let out = install(&sandbox, &["--from", &from_built()]);
    assert!(out.status.success(), "{out}");
    assert_eq!(
        std::fs::read_to_string(manifest(&sandbox)).unwrap(),
        first,
        "the manifest grew or changed: {out}"
    );

    for _ in 0..2 {
        let out = install(&sandbox, &["--uninstall"]);
        assert!(out.status.success(), "{out}");
    }
    assert_eq!(tree(&roots(&sandbox)), before);
}
