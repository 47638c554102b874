//! The config table: defaults, path resolution, and values refused because
//! they would undo the isolation. Also where the user's Claude dir is.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ccmux_plugin_api::{parse_config, HookErrorKind};

use super::Harness;
use crate::config::{DEFAULT_SEED_KEYS, DEFAULT_SHARE};
use crate::{HostEnvironment, IsolationConfig, UserClaudeDir};

#[test]
fn an_absent_table_gives_the_documented_defaults() {
    let config: IsolationConfig = parse_config("isolation", "").unwrap();
    assert_eq!(config, IsolationConfig::default());
    assert_eq!(config.base_dir, None);
    assert_eq!(config.grace_period_ms, 3000);
    assert_eq!(config.max_age_secs, None);
    assert!(config.share_credentials);
    assert!(config.extra_env.is_empty());
    assert_eq!(config.share, DEFAULT_SHARE);
    assert_eq!(config.seed_keys, DEFAULT_SEED_KEYS);
    assert!(config.seed_keys.iter().any(|k| k == "oauthAccount"));
    assert!(!config.seed_keys.iter().any(|k| k == "projects"));

    let home = Path::new("/home/someone");
    let settings = config.resolve(Path::new("/etc/ccmux"), Some(home)).unwrap();
    assert_eq!(settings.base_dir, home.join(".ccmux/claude"));
    assert_eq!(settings.grace_period, Duration::from_millis(3000));
}

/// The README's configuration table, as (key, default cell) pairs.
fn readme_defaults() -> Vec<(String, String)> {
    let readme = include_str!("../../README.md");
    let table = readme
        .split("## Configuration")
        .nth(1)
        .expect("README has a Configuration section");
    table
        .lines()
        .skip_while(|line| !line.starts_with("| Key"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let key = cells[0].trim_start_matches("| ").trim_matches('`');
            (key.to_string(), cells[1].to_string())
        })
        .collect()
}

/// Every key the code accepts, from serde's own list of expected fields.
fn config_keys() -> Vec<String> {
    let err = parse_config::<IsolationConfig>("isolation", "no_such_key = 1").unwrap_err();
    let expected = err
        .message
        .split("expected one of ")
        .nth(1)
        .expect("serde lists the fields")
        .lines()
        .next()
        .unwrap_or_default();
    // The list ends where the advice after it begins.
    let expected = expected.split("; ").next().unwrap_or_default();
    expected
        .split(", ")
        .map(|key| {
            key.trim_matches(|c: char| c == '`' || !c.is_ascii_graphic())
                .to_string()
        })
        .filter(|key| !key.is_empty())
        .collect()
}

#[test]
fn the_readme_documents_every_key_with_the_codes_default() {
    let rows = readme_defaults();
    let mut documented: Vec<&str> = rows.iter().map(|(key, _)| key.as_str()).collect();
    let mut accepted = config_keys();
    documented.sort_unstable();
    accepted.sort();
    assert_eq!(documented, accepted, "README table vs the config's keys");

    let home = Path::new("/home/someone");
    let defaults = IsolationConfig::default();
    for (key, cell) in rows {
        let Some(value) = cell.strip_prefix('`').and_then(|v| v.strip_suffix('`')) else {
            // "unset (off)": the key has no default value.
            assert!(cell.starts_with("unset"), "{key}: {cell}");
            let unset: IsolationConfig = parse_config("isolation", "").unwrap();
            assert_eq!(unset, defaults, "{key}");
            continue;
        };
        let toml = match key.as_str() {
            "base_dir" => format!("{key} = {value:?}"),
            _ => format!("{key} = {value}"),
        };
        let documented: IsolationConfig = parse_config("isolation", &toml)
            .unwrap_or_else(|err| panic!("README default of `{key}`: {err}"));
        if key == "base_dir" {
            let resolve = |config: IsolationConfig| {
                config
                    .resolve(Path::new("/etc/ccmux"), Some(home))
                    .unwrap()
                    .base_dir
            };
            assert_eq!(resolve(documented), resolve(defaults.clone()), "{key}");
        } else {
            assert_eq!(documented, defaults, "README default of `{key}`: {value}");
        }
    }
}

#[test]
fn unknown_keys_are_reported() {
    let err = parse_config::<IsolationConfig>("isolation", "grace_period = 10").unwrap_err();
    assert_eq!(err.kind, HookErrorKind::Config);
    assert!(
        err.message.contains("unknown field `grace_period`"),
        "{}",
        err.message
    );
}

fn resolve_base(base_dir: &str) -> Result<PathBuf, ccmux_plugin_api::HookError> {
    let config: IsolationConfig =
        parse_config("isolation", &format!("base_dir = {base_dir:?}")).unwrap();
    config
        .resolve(Path::new("/etc/ccmux"), Some(Path::new("/home/someone")))
        .map(|s| s.base_dir)
}

#[test]
fn base_dir_expands_tilde_and_resolves_relative_paths_against_the_config_dir() {
    assert_eq!(
        resolve_base("~/iso").unwrap(),
        Path::new("/home/someone/iso")
    );
    assert_eq!(
        resolve_base("state/claude").unwrap(),
        Path::new("/etc/ccmux/state/claude")
    );
    assert_eq!(
        resolve_base("/var/tmp/iso").unwrap(),
        Path::new("/var/tmp/iso")
    );

    // A relative plugins.toml dir still gives an absolute base dir.
    let config: IsolationConfig = parse_config("isolation", "base_dir = \"iso\"").unwrap();
    let base = config
        .resolve(Path::new("rel/conf"), None)
        .unwrap()
        .base_dir;
    assert!(base.is_absolute(), "{}", base.display());
    assert!(base.ends_with("rel/conf/iso"), "{}", base.display());
}

#[test]
fn base_dir_dot_components_are_resolved_before_the_home_check_and_use() {
    for refused in [
        "~/x/..",
        "~/./x/../.",
        "/home/someone/iso/../..",
        "../../home/./someone",
        "../../../../..",
    ] {
        let err = resolve_base(refused).unwrap_err();
        assert_eq!(err.kind, HookErrorKind::Config, "{refused}");
        assert!(
            err.message.contains("home directory") || err.message.contains("filesystem root"),
            "{refused}: {}",
            err.message
        );
    }
    assert_eq!(
        resolve_base("~/x/../iso").unwrap(),
        Path::new("/home/someone/iso")
    );
    assert_eq!(
        resolve_base("/var/./tmp/a/../iso/.").unwrap(),
        Path::new("/var/tmp/iso")
    );
    assert_eq!(resolve_base("../state").unwrap(), Path::new("/etc/state"));
}

#[test]
fn lexical_normalization_applies_dot_dot_to_what_precedes_it() {
    use crate::config::normalize_lexically;
    for (path, normal) in [
        ("/a/./b/../c", "/a/c"),
        ("/..", "/"),
        ("/../a/..", "/"),
        ("a/../../b", "../b"),
        ("../../a", "../../a"),
        ("./a/.", "a"),
    ] {
        assert_eq!(
            normalize_lexically(Path::new(path)),
            Path::new(normal),
            "{path}"
        );
    }
}

#[test]
fn the_default_base_dir_needs_a_home_dir() {
    let config = IsolationConfig::default();
    let err = config.resolve(Path::new("/etc/ccmux"), None).unwrap_err();
    assert_eq!(err.kind, HookErrorKind::Config);
    assert!(err.message.contains("base_dir"), "{}", err.message);
}

#[test]
fn values_that_would_undo_the_isolation_are_refused() {
    for (toml, expect) in [
        ("share = [\".claude.json\"]", ".claude.json"),
        ("share = [\"agents/../..\"]", "agents/../.."),
        ("share = [\"..\"]", "\"..\""),
        ("share = [\"/etc/passwd\"]", "/etc/passwd"),
        ("share = [\"\"]", "share"),
        ("seed_keys = [\"theme\", \"projects\"]", "projects"),
        (
            "[extra_env]\nCLAUDE_CONFIG_DIR = \"/tmp\"",
            "CLAUDE_CONFIG_DIR",
        ),
        ("[extra_env]\nCCMUX_PANE_ID = \"x\"", "CCMUX_PANE_ID"),
        ("[extra_env]\n\"A=B\" = \"x\"", "A=B"),
        ("grace_period_ms = 999999999999", "grace_period_ms"),
        ("base_dir = \"~\"", "home directory"),
        ("base_dir = \"/home\"", "home directory"),
        ("base_dir = \"~other/iso\"", "~user"),
        ("base_dir = \"\"", "empty"),
    ] {
        let config: IsolationConfig = parse_config("isolation", toml).unwrap();
        let err = config
            .resolve(Path::new("/etc/ccmux"), Some(Path::new("/home/someone")))
            .unwrap_err();
        assert_eq!(err.kind, HookErrorKind::Config, "{toml}");
        assert!(err.message.contains(expect), "{toml}: {}", err.message);
        assert!(
            err.message.contains("plugins.toml"),
            "{toml}: {}",
            err.message
        );
    }
}

#[test]
fn the_user_claude_dir_is_the_inherited_claude_config_dir_else_home() {
    let base = Path::new("/data/ccmux/claude");
    let env = |var: Option<&str>| HostEnvironment {
        home: Some(PathBuf::from("/home/someone")),
        claude_config_dir: var.map(OsString::from),
    };
    let home_default = UserClaudeDir {
        dir: PathBuf::from("/home/someone/.claude"),
        claude_json: PathBuf::from("/home/someone/.claude.json"),
        config_dir_var: None,
    };

    assert_eq!(
        UserClaudeDir::discover(&env(None), base),
        Some(home_default.clone())
    );
    assert_eq!(
        UserClaudeDir::discover(&env(Some("/opt/claude-state")), base),
        Some(UserClaudeDir {
            dir: PathBuf::from("/opt/claude-state"),
            claude_json: PathBuf::from("/opt/claude-state/.claude.json"),
            config_dir_var: Some(OsString::from("/opt/claude-state")),
        })
    );
    // Empty, relative, or a pane's own dir (server started from a pane):
    // not the user's.
    for ignored in ["", "relative/claude", "/data/ccmux/claude/main_0_1/config"] {
        assert_eq!(
            UserClaudeDir::discover(&env(Some(ignored)), base),
            Some(home_default.clone()),
            "{ignored:?}"
        );
    }
    let nowhere = HostEnvironment::default();
    assert_eq!(UserClaudeDir::discover(&nowhere, base), None);
    let relative_home = HostEnvironment {
        home: Some(PathBuf::from("not/absolute")),
        claude_config_dir: None,
    };
    assert_eq!(UserClaudeDir::discover(&relative_home, base), None);
}

#[test]
fn a_plugin_without_a_home_still_isolates_when_base_dir_is_set() {
    let h = Harness::new();
    let plugin = h.plugin_with_env("", &HostEnvironment::default()).unwrap();
    assert_eq!(plugin.user_claude_dir(), None);
    super::start(&plugin, super::SERVER_A, &[]).unwrap();
    super::create(&plugin, "main_0_1").unwrap();
    let env = super::spawn_env(&plugin, "main_0_1", &[]).unwrap();
    assert_eq!(
        env.get("CLAUDE_CONFIG_DIR").map(PathBuf::from),
        Some(h.pane_dir("main_0_1").join("config"))
    );
    assert!(!env.contains_key("CLAUDE_SECURESTORAGE_CONFIG_DIR"));
}

#[test]
fn user_config_dir_stands_for_the_servers_claude_config_dir() {
    let h = Harness::new();
    let plugin = h.plugin("user_config_dir = \"~/work-claude\"");
    let user = plugin.user_claude_dir().unwrap();
    assert_eq!(user.dir, h.home().join("work-claude"));
    assert_eq!(user.claude_json, h.home().join("work-claude/.claude.json"));
    // Relative: beside plugins.toml.
    let plugin = h.plugin("user_config_dir = \"claude\"");
    assert_eq!(
        plugin.user_claude_dir().unwrap().dir,
        h.conf_dir().join("claude")
    );
    let Err(err) = h.try_plugin("user_config_dir = \"\"") else {
        panic!("an empty user_config_dir was accepted");
    };
    assert!(
        err.message.contains("`user_config_dir` is empty"),
        "{}",
        err.message
    );
}

#[test]
fn a_legacy_config_json_in_the_users_dir_is_the_users_file() {
    let h = Harness::new();
    std::fs::write(h.user_claude_dir().join(".config.json"), "{}").unwrap();
    let plugin = h.plugin("");
    assert_eq!(
        plugin.user_claude_dir().unwrap().claude_json,
        h.user_claude_dir().join(".config.json")
    );
}
