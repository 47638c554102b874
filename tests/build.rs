//! Sets `cfg(claude_cli)` when `CLAUDE_BIN` names the Claude Code CLI, so
//! the end-to-end tests that run it are compiled as ignored (with the
//! reason, in libtest's own summary) when it is not there, rather than
//! passing without running. With `CCMUX_REQUIRE_CLAUDE` set (CI), a missing
//! CLI fails the build instead.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(claude_cli)");
    println!("cargo::rerun-if-env-changed=CLAUDE_BIN");
    println!("cargo::rerun-if-env-changed=CCMUX_REQUIRE_CLAUDE");
    let bin = std::env::var_os("CLAUDE_BIN").filter(|bin| !bin.is_empty());
    if let Some(bin) = &bin {
        // Rebuild (and re-decide) when the CLI appears or goes.
        println!("cargo::rerun-if-changed={}", Path::new(bin).display());
    }
    match bin {
        Some(bin) if Path::new(&bin).is_file() => println!("cargo::rustc-cfg=claude_cli"),
        _ if std::env::var_os("CCMUX_REQUIRE_CLAUDE").is_some() => {
            eprintln!(
                "CLAUDE_BIN must name the Claude Code CLI (CCMUX_REQUIRE_CLAUDE is set): \
                 run `CLAUDE_BIN=\"$(.ci/install-claude)\" cargo test ...`"
            );
            std::process::exit(1);
        }
        _ => {}
    }
}
