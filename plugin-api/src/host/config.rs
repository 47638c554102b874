//! plugins.toml: which plugin libraries to load, in which order, and each
//! one's own config table. The format is documented on [`PluginsConfig`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::host::faults::FaultPolicy;
use crate::host::order::{effective_order, OrderError};
use crate::host::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginsFile {
    #[serde(default)]
    search_dirs: Vec<PathBuf>,
    #[serde(default)]
    faults: FaultPolicy,
    #[serde(default)]
    plugins: Vec<PluginEntry>,
}

/// One `[[plugins]]` entry: see [`PluginsConfig`] for each key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// Unique; used in logs, errors and `before`/`after`.
    pub name: String,
    /// A library file, relative to plugins.toml.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A bare library name (`foo` for `libfoo.so`), looked up in the search dirs.
    #[serde(default)]
    pub library: Option<String>,
    /// False: the library is never opened.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// True: the plugin's failures fail what they happen in.
    #[serde(default)]
    pub required: bool,
    /// Plugins this one runs before.
    #[serde(default)]
    pub before: Vec<String>,
    /// Plugins this one runs after.
    #[serde(default)]
    pub after: Vec<String>,
    /// What the plugin's faults mean for panes: see [`OnFault`]. `None`:
    /// the plugin's own declaration decides.
    #[serde(default)]
    pub on_fault: Option<OnFault>,
    /// The plugin's `[plugins.config]` table, handed to it as TOML.
    #[serde(default)]
    pub config: toml::Table,
}

impl PluginEntry {
    /// Whether an instance built for `other` serves this entry as well:
    /// everything the plugin is constructed from is the same. (Its place
    /// in the order is not something it is constructed from.)
    pub(crate) fn constructs_like(&self, other: &PluginEntry) -> bool {
        self.name == other.name
            && self.path == other.path
            && self.library == other.library
            && self.enabled == other.enabled
            && self.required == other.required
            && self.on_fault == other.on_fault
            && self.config == other.config
    }
}

/// plugins.toml's `on_fault` for one entry: what happens to panes while an
/// optional plugin cannot be asked whether to admit them.
///
/// The plugin cannot be asked when it failed to load (its library, or its
/// constructor), when one of its pane hooks (`admit_pane`,
/// `on_pane_create`, `on_pre_spawn`) returned an error or panicked, and
/// after `[faults] switch_off_after` switched it off. `enabled = false` is
/// not a fault: the operator turned the plugin off, and panes are admitted
/// without it whatever `on_fault` says. A `required` plugin's faults
/// already stop the pane (or the server's start), so `on_fault` changes
/// nothing for it.
///
/// Without `on_fault`: `refuse` for a plugin that declares it refuses panes
/// ([`Plugin::REFUSES_PANES`](crate::Plugin::REFUSES_PANES)) and for one
/// whose library could not be read (the host cannot tell whether it is a
/// policy), `admit` for a plugin that loaded and declares no refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFault {
    /// Fail closed: every pane is refused, naming the plugin and its fault.
    Refuse,
    /// Fail open: panes start without the plugin; its fault is logged.
    Admit,
}

impl OnFault {
    /// What applies to an entry: `on_fault` if set, else by declaration
    /// (`None`: unknown, the library could not be read).
    pub fn resolve(set: Option<OnFault>, refuses_panes: Option<bool>) -> OnFault {
        match (set, refuses_panes) {
            (Some(set), _) => set,
            (None, Some(false)) => OnFault::Admit,
            (None, _) => OnFault::Refuse,
        }
    }

    /// As written in plugins.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFault::Refuse => "refuse",
            OnFault::Admit => "admit",
        }
    }
}

/// Every key plugins.toml has, as a path: `search_dirs` at the top,
/// `faults.KEY` in `[faults]`, `plugins.KEY` in each `[[plugins]]` entry
/// (`plugins.config` is its `[plugins.config]` table, the plugin's own). A
/// test checks it against what the parser accepts, and another checks the
/// README's table of keys against it.
pub const KEYS: &[&str] = &[
    "search_dirs",
    "faults.slow_hook_ms",
    "faults.switch_off_after",
    "plugins.name",
    "plugins.path",
    "plugins.library",
    "plugins.enabled",
    "plugins.required",
    "plugins.on_fault",
    "plugins.before",
    "plugins.after",
    "plugins.config",
];

fn default_enabled() -> bool {
    true
}

/// A parsed, validated plugins.toml: which plugin libraries to load, in
/// which order, and each one's own config table.
///
/// ```toml
/// search_dirs = ["lib"]          # where `library = NAME` is looked up, relative to
///                                # this file; the host executable's dir is searched last
///
/// [faults]                       # optional; see FaultPolicy
/// slow_hook_ms = 1000            # a hook slower than this is logged as a warning
/// switch_off_after = 5           # an optional plugin failing 5 times in a row is switched off
///
/// [[plugins]]
/// name = "isolation"             # unique; used in logs, errors and before/after
/// library = "ccmux_isolation_plugin"  # the platform's file for this name (libNAME.so,
///                                # libNAME.dylib, NAME.dll) in search_dirs ...
/// # path = "lib/libx.so"         # ... or a file, relative to this file (one of the two)
/// enabled = true                 # default true; false never opens the library
/// required = true                # default false; see below
/// # on_fault = "refuse"          # optional: "refuse" or "admit"; see OnFault
/// after = ["policy"]             # optional: plugins this one runs after ...
/// # before = ["other"]           # ... or before (names of other entries)
/// [plugins.config]               # handed to the plugin as-is: its own keys
/// grace_period_ms = 3000
/// ```
///
/// **Order.** Hooks run on plugins in the *effective order*: every
/// `before` and `after` holds, and otherwise declaration order decides: at
/// each step the earliest-declared entry whose predecessors have all run
/// comes next (so with `a`, `b`, `c` declared and `c` `before = ["a"]`,
/// the order is `b`, `c`, `a`). A name no entry has, or constraints that go
/// round in a cycle, make the file invalid, naming them. `host-shim
/// plugins` lists the entries in this order.
///
/// **Required.** A `required` plugin that fails to load, or whose
/// constructor, `on_server_start`, `on_pane_create` or `on_pre_spawn`
/// fails, fails what it happens in (the server's start, the pane); an
/// optional one is logged and left out of that step. A refusal of a pane
/// (`admit_pane`, `SpawnEnv::refuse`) stops the pane whatever `required`
/// says.
///
/// **On fault.** What panes get while an optional plugin cannot be asked
/// (it did not load, failed, panicked or was switched off) is its
/// `on_fault`: see [`OnFault`]. Every key: [`KEYS`].
#[derive(Debug, Clone, PartialEq)]
pub struct PluginsConfig {
    /// The file it was read from.
    pub file: PathBuf,
    /// The directory relative paths resolve against.
    pub dir: PathBuf,
    /// `search_dirs`, resolved against `dir`.
    pub search_dirs: Vec<PathBuf>,
    /// `[faults]`, or its defaults.
    pub faults: FaultPolicy,
    /// The entries, in effective order.
    pub plugins: Vec<PluginEntry>,
}

impl PluginsConfig {
    /// Reads and validates `file`. The read never blocks (a FIFO is
    /// refused, not waited on) and is capped at [`MAX_CONFIG_BYTES`].
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = read_bounded(file)?;
        Self::parse(&text, file)
    }

    /// Parses `text` as if read from `file`.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ConfigError> {
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let deserializer =
            toml::Deserializer::parse(text).map_err(|err| syntax(&file, text, &err))?;
        let parsed: PluginsFile =
            serde_path_to_error::deserialize(deserializer).map_err(|err| {
                let key = err.path().to_string();
                let inner = err.into_inner();
                let (line, column) = line_column(text, inner.span());
                ConfigError::Invalid {
                    file: file.clone(),
                    line,
                    column,
                    key,
                    message: inner.message().to_string(),
                }
            })?;
        let dir = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut seen = HashSet::new();
        for (index, entry) in parsed.plugins.iter().enumerate() {
            let invalid = |message: String| ConfigError::Entry {
                file: file.clone(),
                index,
                name: entry.name.clone(),
                message,
            };
            if entry.name.trim().is_empty() {
                return Err(invalid(
                    "`name` is empty; give every plugin a unique name".into(),
                ));
            }
            if !seen.insert(entry.name.as_str()) {
                return Err(invalid(
                    "another [[plugins]] entry has the same `name`; names must be unique".into(),
                ));
            }
            match (&entry.path, &entry.library) {
                (Some(_), None) | (None, Some(_)) => {}
                (None, None) => {
                    return Err(invalid(
                        "neither `path` nor `library` is set; set one to say which file to load"
                            .into(),
                    ))
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "both `path` and `library` are set; keep only one".into(),
                    ))
                }
            }
        }
        let order = effective_order(&parsed.plugins).map_err(|err| match err {
            OrderError::Unknown { index, key, names } => ConfigError::Entry {
                file: file.clone(),
                index,
                name: parsed.plugins[index].name.clone(),
                message: format!(
                    "`{key}` names {}, which no [[plugins]] entry has; fix the name or remove it",
                    quoted_list(&names)
                ),
            },
            OrderError::Cycle { names } => ConfigError::OrderCycle {
                file: file.clone(),
                cycle: names.join(" -> "),
            },
        })?;
        let mut entries: Vec<Option<PluginEntry>> = parsed.plugins.into_iter().map(Some).collect();
        let plugins = order
            .into_iter()
            .filter_map(|i| entries[i].take())
            .collect();
        Ok(PluginsConfig {
            search_dirs: parsed.search_dirs.iter().map(|d| dir.join(d)).collect(),
            faults: parsed.faults,
            plugins,
            file,
            dir,
        })
    }

    /// The file an entry names. For `library = NAME`, the first of
    /// `search_dirs` and then the host executable's directory that holds
    /// the platform's file name for NAME.
    pub fn library_file(&self, entry: &PluginEntry) -> PathBuf {
        if let Some(path) = &entry.path {
            return self.dir.join(path);
        }
        let name = entry.library.as_deref().unwrap_or_default();
        let file_name = format!(
            "{}{name}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        let candidates: Vec<PathBuf> = self
            .search_dirs
            .iter()
            .cloned()
            .chain(exe_dir())
            .map(|dir| dir.join(&file_name))
            .collect();
        candidates
            .iter()
            .find(|c| c.is_file())
            .or(candidates.first())
            .cloned()
            .unwrap_or_else(|| PathBuf::from(file_name))
    }

    /// Where `library = NAME` entries are looked up, in order.
    pub fn library_search_path(&self) -> Vec<PathBuf> {
        self.search_dirs.iter().cloned().chain(exe_dir()).collect()
    }
}

/// `a`, `b` and `c` as "`a`, `b`, `c`".
fn quoted_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// The largest plugins.toml read. Real ones are a few hundred bytes; the
/// cap keeps a wrong `--config` (a log, a link to `/dev/zero`) from
/// filling memory.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads `file` as text: opened non-blocking (a FIFO with no writer would
/// otherwise block the open forever), refused unless the opened file is a
/// regular file, and read no further than [`MAX_CONFIG_BYTES`]. The type is
/// checked on the opened descriptor, so a file swapped after a check
/// cannot slip through.
fn read_bounded(file: &Path) -> Result<String, ConfigError> {
    use std::io::Read;

    let unreadable = |source| ConfigError::Unreadable {
        file: file.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let opened = match options.open(file) {
        Ok(opened) => opened,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::Missing {
                file: file.to_path_buf(),
            })
        }
        Err(source) => return Err(unreadable(source)),
    };
    let metadata = opened.metadata().map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(ConfigError::NotAFile {
            file: file.to_path_buf(),
            what: describe_file_type(&metadata.file_type()),
        });
    }
    let too_large = || ConfigError::TooLarge {
        file: file.to_path_buf(),
    };
    if metadata.len() > MAX_CONFIG_BYTES {
        return Err(too_large());
    }
    // The file may grow after the check: read one byte past the cap to
    // tell.
    let mut bytes = Vec::new();
    opened
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|err| {
        unreadable(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is not UTF-8 text ({err}); plugins.toml must be TOML"),
        ))
    })
}

/// What a file that is not a regular file is, for an error message.
pub(crate) fn describe_file_type(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
}

fn syntax(file: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
    let (line, column) = line_column(text, err.span());
    ConfigError::Syntax {
        file: file.to_path_buf(),
        line,
        column,
        message: err.message().to_string(),
    }
}

/// 1-based line and column of a byte span's start.
fn line_column(text: &str, span: Option<std::ops::Range<usize>>) -> (usize, usize) {
    let Some(span) = span else { return (0, 0) };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PluginsConfig, ConfigError> {
        PluginsConfig::parse(text, Path::new("/etc/ccmux/plugins.toml"))
    }

    #[test]
    fn entries_keep_order_defaults_and_config() {
        let cfg = parse(
            r#"
            search_dirs = ["lib"]
            [[plugins]]
            name = "a"
            path = "liba.so"
            [plugins.config]
            x = 1
            [[plugins]]
            name = "b"
            library = "b"
            enabled = false
            required = true
            "#,
        )
        .unwrap();
        assert_eq!(cfg.plugins.len(), 2);
        assert_eq!(cfg.plugins[0].name, "a");
        assert!(cfg.plugins[0].enabled && !cfg.plugins[0].required);
        assert_eq!(cfg.plugins[0].config["x"].as_integer(), Some(1));
        assert!(!cfg.plugins[1].enabled && cfg.plugins[1].required);
        assert_eq!(cfg.search_dirs, vec![PathBuf::from("/etc/ccmux/lib")]);
        assert_eq!(
            cfg.library_file(&cfg.plugins[0]),
            PathBuf::from("/etc/ccmux/liba.so")
        );
        assert_eq!(
            cfg.library_file(&cfg.plugins[1]),
            PathBuf::from(format!(
                "/etc/ccmux/lib/{}b{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            ))
        );
    }

    #[test]
    fn entries_come_in_effective_order_and_faults_have_defaults() {
        let cfg = parse(
            r#"
            [[plugins]]
            name = "a"
            path = "a.so"
            [[plugins]]
            name = "b"
            path = "b.so"
            [[plugins]]
            name = "c"
            path = "c.so"
            before = ["a"]
            "#,
        )
        .unwrap();
        let names: Vec<&str> = cfg.plugins.iter().map(|p| p.name.as_str()).collect();
        // a waits for c; b, free, keeps its place ahead of both.
        assert_eq!(names, ["b", "c", "a"]);
        assert_eq!(cfg.faults, FaultPolicy::default());
        assert_eq!(cfg.faults.slow_hook_ms, 1000);
        assert_eq!(cfg.faults.switch_off_after, 5);

        let cfg = parse("[faults]\nslow_hook_ms = 5\nswitch_off_after = 0\n").unwrap();
        assert_eq!(
            (cfg.faults.slow_hook_ms, cfg.faults.switch_off_after),
            (5, 0)
        );
        let err = parse("[faults]\nslow_hook = 5\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `slow_hook`"), "{err}");
    }

    #[test]
    fn unknown_names_and_cycles_in_the_order_are_config_errors_naming_them() {
        let err = parse("[[plugins]]\nname = \"a\"\npath = \"a.so\"\nafter = [\"isolatoin\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/ccmux/plugins.toml"), "{err}");
        assert!(err.contains("entry 0 (`a`)"), "{err}");
        assert!(err.contains("`after` names `isolatoin`"), "{err}");
        assert!(err.contains("fix the name or remove it"), "{err}");

        let err = parse(
            "[[plugins]]\nname = \"a\"\npath = \"a.so\"\nbefore = [\"b\"]\n\
             [[plugins]]\nname = \"b\"\npath = \"b.so\"\nbefore = [\"a\"]\n",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::OrderCycle { .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.contains("a -> b -> a"), "{err}");
        assert!(err.contains("remove one of them"), "{err}");
    }

    /// The fields serde expects in one table, from its "unknown field"
    /// error: the parser's own list.
    fn parser_fields(prefix: &str, text: &str) -> Vec<String> {
        let err = parse(text).unwrap_err().to_string();
        let (_, expected) = err
            .split_once("expected one of ")
            .or_else(|| err.split_once("expected "))
            .unwrap_or_else(|| panic!("no field list in: {err}"));
        // serde: "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
        expected
            .split(", ")
            .flat_map(|part| part.split(" or "))
            .map(|field| format!("{prefix}{}", field.trim().trim_matches('`')))
            .collect()
    }

    #[test]
    fn keys_are_exactly_what_the_parser_accepts() {
        let mut parser: Vec<String> = Vec::new();
        for field in parser_fields("", "zz_not_a_key = 1\n") {
            if field != "faults" && field != "plugins" {
                parser.push(field);
            }
        }
        parser.extend(parser_fields("faults.", "[faults]\nzz_not_a_key = 1\n"));
        parser.extend(parser_fields(
            "plugins.",
            "[[plugins]]\nname = \"a\"\npath = \"a.so\"\nzz_not_a_key = 1\n",
        ));
        let mut keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
        parser.sort();
        keys.sort();
        assert_eq!(keys, parser);
    }

    #[test]
    fn on_fault_takes_refuse_or_admit_and_says_so_otherwise() {
        let entry = |value: &str| {
            parse(&format!(
                "[[plugins]]\nname = \"a\"\npath = \"a.so\"\non_fault = {value}\n"
            ))
        };
        assert_eq!(
            entry("\"refuse\"").unwrap().plugins[0].on_fault,
            Some(OnFault::Refuse)
        );
        assert_eq!(
            entry("\"admit\"").unwrap().plugins[0].on_fault,
            Some(OnFault::Admit)
        );
        let err = entry("\"closed\"").unwrap_err().to_string();
        assert!(err.contains("at `plugins[0].on_fault`"), "{err}");
        assert!(err.contains("unknown variant `closed`"), "{err}");
        assert!(err.contains("`refuse`") && err.contains("`admit`"), "{err}");
        assert_eq!(OnFault::resolve(None, None), OnFault::Refuse);
        assert_eq!(OnFault::resolve(None, Some(true)), OnFault::Refuse);
        assert_eq!(OnFault::resolve(None, Some(false)), OnFault::Admit);
        assert_eq!(
            OnFault::resolve(Some(OnFault::Admit), Some(true)),
            OnFault::Admit
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let err = parse("[[plugins]]\nname = \"a\"\npath = \n").unwrap_err();
        match &err {
            ConfigError::Syntax { line, column, .. } => assert_eq!((*line, *column), (3, 8)),
            other => panic!("unexpected {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("/etc/ccmux/plugins.toml:3:8"), "{text}");
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let err = parse("[[plugins]]\nname = \"a\"\npath = \"x\"\nenable = false\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown field `enable`"), "{text}");
        assert!(text.contains("plugins[0]"), "{text}");
        assert!(text.contains(":4:1"), "{text}");
    }

    #[test]
    fn entries_must_name_exactly_one_file_and_be_unique() {
        let both = parse("[[plugins]]\nname = \"a\"\npath = \"x\"\nlibrary = \"y\"\n").unwrap_err();
        assert!(
            both.to_string().contains("both `path` and `library`"),
            "{both}"
        );
        let none = parse("[[plugins]]\nname = \"a\"\n").unwrap_err();
        assert!(
            none.to_string().contains("neither `path` nor `library`"),
            "{none}"
        );
        let dup = parse(
            "[[plugins]]\nname = \"a\"\npath = \"x\"\n[[plugins]]\nname = \"a\"\npath = \"y\"\n",
        )
        .unwrap_err();
        assert!(dup.to_string().contains("same `name`"), "{dup}");
    }

    /// Runs `load` on another thread and fails, rather than hang, if it
    /// has not returned within 20 s.
    fn load_with_deadline(file: &Path) -> Result<PluginsConfig, ConfigError> {
        let (done, result) = std::sync::mpsc::channel();
        let file = file.to_path_buf();
        std::thread::spawn(move || {
            let _ = done.send(PluginsConfig::load(&file));
        });
        result
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("PluginsConfig::load blocked")
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("plugins.toml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let err = load_with_deadline(&fifo).unwrap_err();
        assert!(matches!(err, ConfigError::NotAFile { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&fifo.display().to_string()), "{text}");
        assert!(text.contains("a FIFO"), "{text}");
        assert!(text.contains("not a regular file"), "{text}");
    }

    #[test]
    fn a_link_to_dev_zero_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("plugins.toml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = load_with_deadline(&link).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ConfigError::NotAFile { .. }), "{err:?}");
        assert!(text.contains(&link.display().to_string()), "{text}");
        assert!(text.contains("a character device"), "{text}");
    }

    #[test]
    fn an_oversized_file_is_refused_naming_file_and_cap() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plugins.toml");
        // Valid TOML all along, so only the size can refuse it.
        let comment = format!("# {}\n", "x".repeat(1000));
        let text = comment.repeat((MAX_CONFIG_BYTES as usize / comment.len()) + 1);
        std::fs::write(&file, &text).unwrap();
        assert!(parse(&text).is_ok(), "the text itself is fine");
        let err = PluginsConfig::load(&file).unwrap_err();
        assert!(matches!(err, ConfigError::TooLarge { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("1048576 bytes"), "{message}");

        // Exactly at the cap is fine.
        let mut text = text.into_bytes();
        text.truncate(MAX_CONFIG_BYTES as usize);
        let last_line = text.iter().rposition(|&b| b == b'\n').unwrap();
        text[last_line + 1..].fill(b' ');
        std::fs::write(&file, &text).unwrap();
        PluginsConfig::load(&file).expect("a file of exactly the cap loads");
    }

    #[test]
    fn a_missing_file_says_which() {
        let err = PluginsConfig::load(Path::new("/nonexistent/plugins.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }));
        assert!(err.to_string().contains("/nonexistent/plugins.toml"));
    }
}
