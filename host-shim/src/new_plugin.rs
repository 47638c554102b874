//! `new-plugin NAME [DIR]`: writes a plugin crate from `templates/plugin`,
//! with NAME filled in and `ccmux-plugin-api` by path or by git tag. The
//! template's files are compiled into host-shim, so an installed host-shim
//! needs no checkout.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::NewPluginArgs;
use crate::exit;

/// The template, as it is in this checkout when host-shim was built.
const TEMPLATE_CARGO_TOML: &str = include_str!("../../templates/plugin/Cargo.toml");
const TEMPLATE_LIB_RS: &str = include_str!("../../templates/plugin/src/lib.rs");

/// The template's own names, replaced by the new plugin's.
const T_PACKAGE: &str = "hello-plugin";
const T_LIB: &str = "hello_plugin";
const T_TYPE: &str = "HelloPlugin";
const T_CONFIG: &str = "HelloConfig";
const T_ENV: &str = "HELLO_GREETING";
const T_NAME: &str = "const NAME: &'static str = \"hello\";";
const T_DESCRIPTION: &str =
    "description = \"A minimal ccmux plugin: greets each pane through its environment\"";
/// The template's dependency lines (path into this checkout).
const T_DEP: &str = "ccmux-plugin-api = { path = \"../../plugin-api\", version = \"";
const T_DEV_DEP_TAIL: &str = "\", features = [\"test-host\"] }";

/// Where the new crate gets `ccmux-plugin-api` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiSource {
    Path(PathBuf),
    Git { url: String, tag: String },
}

impl ApiSource {
    /// The inside of the dependency's `{ ... }`, without features.
    fn spec(&self) -> String {
        match self {
            ApiSource::Path(path) => format!(
                "path = {}, version = \"{}\"",
                toml_string(&path.display().to_string()),
                api_minor()
            ),
            ApiSource::Git { url, tag } => {
                format!("git = {}, tag = {}", toml_string(url), toml_string(tag))
            }
        }
    }
}

/// `1.3` of plugin-api `1.3.0`: what the new crate requires.
fn api_minor() -> String {
    let version = ccmux_plugin_api::API_VERSION;
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => version.to_string(),
    }
}

/// The tag a release of plugin-api is published under.
pub fn default_tag() -> String {
    format!("plugin-api-v{}", ccmux_plugin_api::API_VERSION)
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Checks NAME as a package name a plugin can have: lowercase ASCII
/// letters, digits, `-` and `_`, starting with a letter, at most 64.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if name.is_empty() || name.len() > 64 || !ok_chars || !starts {
        return Err(format!(
            "`{name}` cannot name a plugin crate: use lowercase ASCII letters, digits, `-` and `_`, starting with a letter (for example `my-policy`)"
        ));
    }
    Ok(())
}

/// `my-policy` → `MyPolicy`.
fn camel(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The template's two files with `name` and `api` filled in.
pub fn render(name: &str, api: &ApiSource) -> Result<(String, String), String> {
    let lib = name.replace('-', "_");
    let camel = camel(name);
    let plugin_type = if camel.ends_with("Plugin") {
        camel.clone()
    } else {
        format!("{camel}Plugin")
    };
    let config_type = format!("{}Config", camel.trim_end_matches("Plugin"));
    let env_var = format!("{}_GREETING", lib.to_ascii_uppercase());
    let short = name
        .trim_end_matches("-plugin")
        .trim_end_matches("_plugin")
        .to_string();

    let minor = api_minor();
    let dep = format!("{T_DEP}{minor}\" }}");
    let dev_dep = format!("{T_DEP}{minor}{T_DEV_DEP_TAIL}");
    for needed in [T_PACKAGE, T_DESCRIPTION, dep.as_str(), dev_dep.as_str()] {
        if !TEMPLATE_CARGO_TOML.contains(needed) {
            return Err(format!(
                "this host-shim's plugin template has no `{needed}` in its Cargo.toml; it was built from a changed template: rebuild host-shim"
            ));
        }
    }
    for needed in [T_LIB, T_TYPE, T_CONFIG, T_ENV, T_NAME] {
        if !TEMPLATE_LIB_RS.contains(needed) {
            return Err(format!(
                "this host-shim's plugin template has no `{needed}` in its src/lib.rs; it was built from a changed template: rebuild host-shim"
            ));
        }
    }
    let spec = api.spec();
    let cargo_toml = TEMPLATE_CARGO_TOML
        .replace(
            &dev_dep,
            &format!("ccmux-plugin-api = {{ {spec}, features = [\"test-host\"] }}"),
        )
        .replace(&dep, &format!("ccmux-plugin-api = {{ {spec} }}"))
        .replace(
            T_DESCRIPTION,
            &format!("description = \"The {short} plugin for ccmux\""),
        )
        .replace(
            &format!("name = \"{T_PACKAGE}\""),
            &format!("name = \"{name}\""),
        )
        .replace(T_LIB, &lib);
    let lib_rs = TEMPLATE_LIB_RS
        .replace(T_NAME, &format!("const NAME: &'static str = \"{short}\";"))
        .replace(T_TYPE, &plugin_type)
        .replace(T_CONFIG, &config_type)
        .replace(T_ENV, &env_var)
        .replace(T_LIB, &lib)
        .replace("name = \"hello\"", &format!("name = \"{short}\""));
    Ok((cargo_toml, lib_rs))
}

/// `host-shim new-plugin`.
pub fn new_plugin(args: &NewPluginArgs) -> u8 {
    match write_plugin(args) {
        Ok(dir) => {
            say!(
                "host-shim: wrote the plugin crate `{}` in {}; next: cd there and run `cargo test`, then `cargo build --release` and add its library to plugins.toml (README: \"Writing a plugin\")",
                args.name,
                dir.display()
            );
            exit::SUCCESS
        }
        Err(err) => {
            say!("host-shim: new-plugin: {err}");
            exit::USAGE
        }
    }
}

fn write_plugin(args: &NewPluginArgs) -> Result<PathBuf, String> {
    check_name(&args.name)?;
    let api = api_source(args)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let (cargo_toml, lib_rs) = render(&args.name, &api)?;
    if let Ok(mut entries) = std::fs::read_dir(&dir) {
        if entries.next().is_some() {
            return Err(format!(
                "{} exists and is not empty; name a new or empty directory",
                dir.display()
            ));
        }
    } else if dir.exists() {
        return Err(format!(
            "{} exists and is not a directory; name a new or empty directory",
            dir.display()
        ));
    }
    let src = dir.join("src");
    std::fs::create_dir_all(&src)
        .map_err(|err| format!("cannot create {}: {err}", src.display()))?;
    write_new(&dir.join("Cargo.toml"), &cargo_toml)?;
    write_new(&src.join("lib.rs"), &lib_rs)?;
    write_new(&dir.join(".gitignore"), "/target\n")?;
    Ok(dir)
}

/// Creates `file`, refusing to replace anything.
fn write_new(file: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut opened = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
        .map_err(|err| format!("cannot create {}: {err}", file.display()))?;
    opened
        .write_all(text.as_bytes())
        .map_err(|err| format!("cannot write {}: {err}", file.display()))
}

/// `--api-path`, `--api-git` (with `--api-tag`), else the checkout this
/// host-shim was built from, if it is still there.
fn api_source(args: &NewPluginArgs) -> Result<ApiSource, String> {
    if let Some(url) = &args.api_git {
        let tag = args.api_tag.clone().unwrap_or_else(default_tag);
        return Ok(ApiSource::Git {
            url: url.clone(),
            tag,
        });
    }
    let (path, what) = match &args.api_path {
        Some(path) => (path.clone(), "--api-path"),
        None => (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api"),
            "the checkout host-shim was built from",
        ),
    };
    let manifest = path.join("Cargo.toml");
    let is_api = std::fs::read_to_string(&manifest)
        .is_ok_and(|text| text.contains("name = \"ccmux-plugin-api\""));
    if !is_api {
        return Err(format!(
            "{} ({what}) is not plugin-api: it has no Cargo.toml of package ccmux-plugin-api; pass --api-path to a ccmux checkout's plugin-api/ directory, or --api-git URL for a git dependency (tag {})",
            path.display(),
            default_tag()
        ));
    }
    let absolute = std::fs::canonicalize(&path)
        .map_err(|err| format!("cannot resolve {}: {err}", path.display()))?;
    Ok(ApiSource::Path(absolute))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("my-policy").is_ok());
        assert!(check_name("p2_x").is_ok());
        for bad in ["", "My", "1x", "a b", "a/b", "../x", &"x".repeat(65)] {
            let err = check_name(bad).unwrap_err();
            assert!(err.contains("lowercase ASCII"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_template_is_filled_in_everywhere() {
        let (cargo, lib) = render(
            "my-policy",
            &ApiSource::Path(PathBuf::from("/src/ccmux/plugin-api")),
        )
        .unwrap();
        assert!(cargo.contains("name = \"my-policy\""), "{cargo}");
        assert!(cargo.contains("libmy_policy.so"), "{cargo}");
        assert!(
            cargo.contains(&format!(
                "ccmux-plugin-api = {{ path = \"/src/ccmux/plugin-api\", version = \"{}\" }}",
                api_minor()
            )),
            "{cargo}"
        );
        assert!(cargo.contains("features = [\"test-host\"] }"), "{cargo}");
        assert!(!cargo.contains("hello"), "{cargo}");
        assert!(!cargo.contains("../../plugin-api"), "{cargo}");
        assert!(lib.contains("pub struct MyPolicyPlugin"), "{lib}");
        assert!(lib.contains("pub struct MyPolicyConfig"), "{lib}");
        assert!(
            lib.contains("const NAME: &'static str = \"my-policy\";"),
            "{lib}"
        );
        assert!(lib.contains("MY_POLICY_GREETING"), "{lib}");
        assert!(
            !lib.contains("Hello") && !lib.contains("hello_plugin"),
            "{lib}"
        );

        let (cargo, _) = render(
            "x",
            &ApiSource::Git {
                url: "https://example.org/ccmux.git".into(),
                tag: "plugin-api-v1.3.0".into(),
            },
        )
        .unwrap();
        assert!(
            cargo.contains("ccmux-plugin-api = { git = \"https://example.org/ccmux.git\", tag = \"plugin-api-v1.3.0\" }"),
            "{cargo}"
        );
        assert!(
            cargo.contains("ccmux-plugin-api = { git = \"https://example.org/ccmux.git\", tag = \"plugin-api-v1.3.0\", features = [\"test-host\"] }"),
            "{cargo}"
        );
    }

    #[test]
    fn a_plugin_name_ending_in_plugin_is_not_doubled() {
        let (_, lib) = render("audit-plugin", &ApiSource::Path("/x".into())).unwrap();
        assert!(lib.contains("pub struct AuditPlugin"), "{lib}");
        assert!(lib.contains("pub struct AuditConfig"), "{lib}");
        assert!(
            lib.contains("const NAME: &'static str = \"audit\";"),
            "{lib}"
        );
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(toml_string("x\ny"), "\"x\\u000Ay\"");
    }
}
