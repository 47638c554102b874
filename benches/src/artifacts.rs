//! Building the plugin libraries and host-shim the benches load.
//!
//! `cargo bench` builds bench targets only, so each bench builds the
//! cdylibs and the binary it needs itself, once, with the cargo that runs
//! it and the profile it was built with: `cargo bench` uses the `bench`
//! profile, which inherits `release` and writes to `target/release/`;
//! `cargo test --all-targets` builds benches with the `test` profile
//! (`target/debug/`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace's built artifacts, in this bench's profile directory.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub isolation_plugin: PathBuf,
    pub probe_plugin: PathBuf,
    pub host_shim: PathBuf,
    /// `target/` (where criterion also writes its results).
    pub target_dir: PathBuf,
    /// `release` or `debug`.
    pub profile: String,
}

/// The packages every bench needs built.
const PACKAGES: &[&str] = &[
    "ccmux-isolation-plugin",
    "ccmux-probe-plugin",
    "ccmux-host-shim",
];

/// Builds the plugins and host-shim once per bench process.
pub fn artifacts() -> &'static Artifacts {
    static BUILT: OnceLock<Artifacts> = OnceLock::new();
    BUILT.get_or_init(|| {
        let (target_dir, profile) = locate();
        let mut cmd = Command::new(env!("CARGO"));
        // From the repository, so its toolchain settings apply wherever
        // the bench binary was started.
        cmd.current_dir(repo_root())
            .arg("build")
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(repo_root().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir);
        if profile == "release" {
            cmd.arg("--release");
        } else if profile != "debug" {
            cmd.args(["--profile", &profile]);
        }
        for package in PACKAGES {
            cmd.args(["-p", package]);
        }
        let output = cmd.output().expect("cargo runs");
        assert!(
            output.status.success(),
            "cargo build -p {} failed:\n{}",
            PACKAGES.join(" -p "),
            String::from_utf8_lossy(&output.stderr)
        );
        let dir = target_dir.join(&profile);
        Artifacts {
            isolation_plugin: dir.join(lib_file_name("ccmux_isolation_plugin")),
            probe_plugin: dir.join(lib_file_name("ccmux_probe_plugin")),
            host_shim: dir.join(format!("host-shim{}", std::env::consts::EXE_SUFFIX)),
            target_dir,
            profile,
        }
    })
}

/// The repository root (this crate lives in `benches/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ lives in the repository root")
        .to_path_buf()
}

/// The target dir and profile dir name of this bench binary, which cargo
/// puts at `{target}/{profile}/deps/{bench}-{hash}`.
fn locate() -> (PathBuf, String) {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let profile_dir = exe
        .parent()
        .filter(|deps| deps.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent);
    match profile_dir {
        Some(dir) => {
            let profile = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "release".into());
            let target = dir.parent().map(Path::to_path_buf).unwrap_or_default();
            (target, profile)
        }
        // Not run by cargo: fall back to the workspace's target dir.
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"));
            let profile = if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            };
            (target, profile.into())
        }
    }
}

/// The platform's file name for library `name`.
pub fn lib_file_name(name: &str) -> String {
    format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}
