//! ClaudeJsonSeed: a new pane's `.claude.json`, made of the user-level keys
//! of the user's own `.claude.json` and, for every project the user has,
//! the per-project keys the user set up (trust, local MCP servers, allowed
//! tools, onboarding).
//!
//! Why: with an empty `.claude.json` Claude replays onboarding, forgets the
//! user's theme, MCP servers and account, and asks again whether every
//! folder is trusted. Why only some keys: the rest is per-project history
//! and caches, which is what two instances fight over, and can reach
//! hundreds of megabytes.
//!
//! Why every project and not only the pane's folder: Claude started
//! anywhere in the pane (after a `cd`) must find that folder's trust and
//! MCP servers too. Only the allow-listed keys of each project are kept,
//! so the seed grows with the number of projects, not with the size of the
//! user's file (BENCHMARKS.md, row 9).
//!
//! Why a cache: the user's file can be 50 MB, and panes are created in
//! bursts (a restored layout). It is parsed once, and the *serialized*
//! seed is kept, keyed by the file's path, modification time and length, so
//! each further pane costs one `stat` and one small write. Parsing skips
//! the values of unwanted keys without building them.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use ccmux_plugin_api::HookError;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::classification::CLAUDE_JSON;
use crate::floor::private_fs::{create_private_file, read_bounded, Links, ReadFailure};

/// The largest user `.claude.json` read. Real ones reach a few hundred
/// megabytes (mostly `projects` history); past this it is not Claude's.
pub(crate) const USER_CLAUDE_JSON_LIMIT: u64 = 1 << 30;

/// Claude rewrites its file in place, so a read can catch it half-written.
/// A read that fails to parse while the file changed under it is retried.
const READ_ATTEMPTS: usize = 3;

/// Identifies one version of the user's file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl Stamp {
    fn of(path: &Path) -> io::Result<Stamp> {
        let meta = fs::metadata(path)?;
        Ok(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }
}

struct Cached {
    stamp: Stamp,
    /// `None`: no seed (no wanted key in the file, or never a valid file).
    seed: Option<Arc<[u8]>>,
}

/// The top-level key holding per-project state.
pub(crate) const PROJECTS: &str = "projects";

/// What a pane's seed was, kept in the pane dir (beside `.pane-metadata`,
/// out of Claude's reach) for the merge back at close.
pub(crate) const SEED_RECORD: &str = ".claude-json.seed";

pub(crate) struct ClaudeJsonSeed {
    /// The user's `.claude.json`; fixed for the life of the cache, so the
    /// stamp is the rest of the key.
    source: PathBuf,
    keys: BTreeSet<String>,
    project_keys: BTreeSet<String>,
    cache: Mutex<Option<Cached>>,
    parses: AtomicUsize,
}

impl ClaudeJsonSeed {
    pub(crate) fn new(source: PathBuf, keys: &[String], project_keys: &[String]) -> Self {
        ClaudeJsonSeed {
            source,
            keys: keys.iter().cloned().collect(),
            project_keys: project_keys.iter().cloned().collect(),
            cache: Mutex::new(None),
            parses: AtomicUsize::new(0),
        }
    }

    /// Writes `config_dir/.claude.json` from the seed, and the same bytes
    /// as the pane's seed record in `pane_root`, unless the pane has a
    /// `.claude.json` already (a restored pane keeps its own, and the record
    /// of what it started with). Returns whether it wrote.
    ///
    /// Claude is not running in the pane yet, so the files are written in
    /// place, without the rename and fsyncs of an atomic replace: they are
    /// derived data, made again from the user's file if need be. The record
    /// goes first: a pane never has a seeded file without its record.
    pub(crate) fn seed_pane(&self, pane_root: &Path, config_dir: &Path) -> Result<bool, HookError> {
        if fs::symlink_metadata(config_dir.join(CLAUDE_JSON)).is_ok() {
            return Ok(false);
        }
        let seed = self.current();
        // A record left by an earlier seeding that was interrupted is
        // replaced: it describes no file. With no seed (the user has no
        // file yet), the record says so: everything the pane sets up is
        // then new to the user.
        let _ = fs::remove_file(pane_root.join(SEED_RECORD));
        create_private_file(pane_root, SEED_RECORD, seed.as_deref().unwrap_or(b"{}\n"))?;
        match seed {
            Some(seed) => create_private_file(config_dir, CLAUDE_JSON, &seed),
            None => Ok(false),
        }
    }

    /// The seed for the user's file as it is now; parses it only if it
    /// changed since the last call. A missing file means no seed; an
    /// unreadable or invalid one is a warning, and the last good seed (if
    /// any) is used instead.
    pub(crate) fn current(&self) -> Option<Arc<[u8]>> {
        let stamp = match Stamp::of(&self.source) {
            Ok(stamp) => stamp,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
            Err(err) => {
                tracing::warn!(path = %self.source.display(), "not seeding .claude.json: cannot read the user's file: {err}");
                return None;
            }
        };
        // Held while parsing: panes created together wait for one parse
        // rather than each doing their own.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.as_ref() {
            if cached.stamp == stamp {
                return cached.seed.clone();
            }
        }
        let last_good = cache.as_ref().and_then(|cached| cached.seed.clone());
        let (stamp, seed) = self.parse(stamp, last_good);
        *cache = Some(Cached {
            stamp,
            seed: seed.clone(),
        });
        seed
    }

    /// How many times the user's file was parsed; for tests.
    #[cfg(test)]
    pub(crate) fn parse_count(&self) -> usize {
        self.parses.load(Ordering::Relaxed)
    }

    /// Reads and filters the user's file. Returns the seed together with
    /// the stamp it was read under: the stamp from *before* the read, so a
    /// change during the read makes the next call parse again.
    fn parse(&self, mut stamp: Stamp, last_good: Option<Arc<[u8]>>) -> (Stamp, Option<Arc<[u8]>>) {
        let path = &self.source;
        for attempt in 1..=READ_ATTEMPTS {
            self.parses.fetch_add(1, Ordering::Relaxed);
            let bytes = match read_bounded(path, USER_CLAUDE_JSON_LIMIT, Links::Follow) {
                Ok(bytes) => bytes,
                Err(ReadFailure::Io(err)) if err.kind() == io::ErrorKind::NotFound => {
                    return (stamp, None)
                }
                Err(failure) => {
                    tracing::warn!(
                        path = %path.display(),
                        "not seeding .claude.json from the user's file: {}; new panes get {}",
                        describe_read_failure(&failure),
                        if last_good.is_some() { "the last valid seed" } else { "no seeded .claude.json" }
                    );
                    return (stamp, last_good);
                }
            };
            match pick_keys(&bytes, &self.keys, &self.project_keys) {
                Ok(picked) => {
                    if !picked.unreadable.is_empty() {
                        tracing::warn!(
                            path = %path.display(),
                            "new panes are seeded without these items of the user's .claude.json, which cannot be read as they stand: {}; everything else is seeded",
                            list(&picked.unreadable)
                        );
                    }
                    return (stamp, serialize(picked.map));
                }
                Err(err) => {
                    let now = Stamp::of(path).ok();
                    if attempt < READ_ATTEMPTS && now.as_ref() != Some(&stamp) {
                        if let Some(now) = now {
                            stamp = now;
                        }
                        continue;
                    }
                    tracing::warn!(
                        path = %path.display(),
                        "the user's .claude.json is not valid JSON ({err}); new panes get {}",
                        if last_good.is_some() { "the last valid seed" } else { "no seeded .claude.json" }
                    );
                    return (stamp, last_good);
                }
            }
        }
        (stamp, last_good)
    }
}

/// What a person reads about a user file that could not be read, with
/// what to do.
pub(crate) fn describe_read_failure(failure: &ReadFailure) -> String {
    match failure {
        ReadFailure::Io(err) => format!("cannot read it: {err}"),
        ReadFailure::NotRegular => "it is not a regular file (a FIFO, socket or device?); \
             replace it with a regular file, or remove it and let Claude make a new one"
            .to_string(),
        ReadFailure::TooLarge(len) => format!(
            "it is {len} bytes, more than the {USER_CLAUDE_JSON_LIMIT}-byte limit; \
             it is not Claude's file, or it needs trimming (its `projects` history)"
        ),
    }
}

/// Items for a log line: `a, b, c`, at most a few, then how many more.
pub(crate) fn list<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    const SHOWN: usize = 8;
    let mut shown = Vec::new();
    let mut more = 0;
    for item in items {
        if shown.len() < SHOWN {
            shown.push(item.to_string());
        } else {
            more += 1;
        }
    }
    let mut text = shown.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

fn serialize(picked: Map<String, Value>) -> Option<Arc<[u8]>> {
    if picked.is_empty() {
        return None;
    }
    // Compact: the seed is written twice per pane (the file and its record)
    // and holds every project's setup; Claude reads it the same and writes
    // its own (pretty) file at its first save.
    let mut bytes = serde_json::to_vec(&Value::Object(picked)).ok()?;
    bytes.push(b'\n');
    Some(Arc::from(bytes))
}

/// An item of a `.claude.json` that was left out of a pick because its
/// value could not be taken as it stands: the rest of the file is picked
/// all the same, so one bad item never stops the others.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Unreadable {
    /// A top-level key whose value is not valid JSON for a strict parser
    /// (a lone UTF-16 surrogate escape, say).
    Top(String),
    /// `projects` is there but is not an object.
    Projects,
    /// A project entry that is not an object.
    Project(String),
    /// A project's key whose value cannot be parsed.
    ProjectKey(String, String),
    /// One entry (a server) of a top-level `mcpServers` that cannot be
    /// parsed; the other entries are read.
    TopEntry(String, String),
    /// One entry of a project's `mcpServers` that cannot be parsed.
    ProjectEntry(String, String, String),
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreadable::Top(key) => write!(f, "{key}"),
            Unreadable::Projects => write!(f, "{PROJECTS} (not an object)"),
            Unreadable::Project(project) => write!(f, "{PROJECTS}[{project:?}] (not an object)"),
            Unreadable::ProjectKey(project, key) => write!(f, "{PROJECTS}[{project:?}].{key}"),
            Unreadable::TopEntry(key, entry) => write!(f, "{key}.{entry}"),
            Unreadable::ProjectEntry(project, key, entry) => {
                write!(f, "{PROJECTS}[{project:?}].{key}.{entry}")
            }
        }
    }
}

/// What [`pick_keys`] took from a file, and what it had to leave out.
#[derive(Debug, Default)]
pub(crate) struct Picked {
    pub map: Map<String, Value>,
    pub unreadable: BTreeSet<Unreadable>,
}

/// Parses a JSON object, keeping only the top-level `keys` and, under
/// `projects`, only the `project_keys` of each project (a project with none
/// of them is left out). A wanted value that cannot be parsed, a `projects`
/// or a project entry that is not an object, is left out and named in
/// [`Picked::unreadable`]; only a file that is not a JSON object at all is
/// an error.
pub(crate) fn pick_keys(
    bytes: &[u8],
    keys: &BTreeSet<String>,
    project_keys: &BTreeSet<String>,
) -> Result<Picked, serde_json::Error> {
    let unreadable = RefCell::new(BTreeSet::new());
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let map = PickKeys {
        keys,
        project_keys,
        depth: Depth::Top,
        unreadable: &unreadable,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(Picked {
        map,
        unreadable: unreadable.into_inner(),
    })
}

#[derive(Clone)]
enum Depth {
    /// The file's top level: `keys`, and `projects` walked into.
    Top,
    /// The `projects` map: one object per project path.
    Projects,
    /// One project (its path): `project_keys`.
    Project(String),
}

impl PickKeys<'_> {
    /// A value that is not an object: an error for the file itself; below
    /// it, nothing to pick, and said so (a project entry of `null`,
    /// `"projects": []`), which Claude reads the same.
    fn not_an_object<E: serde::de::Error>(self) -> Result<Map<String, Value>, E> {
        let what = match self.depth {
            Depth::Top => return Err(E::custom("the file is not a JSON object")),
            Depth::Projects => Unreadable::Projects,
            Depth::Project(project) => Unreadable::Project(project),
        };
        self.unreadable.borrow_mut().insert(what);
        Ok(Map::new())
    }

    /// A wanted value, parsed on its own: one that a strict parser refuses
    /// is left out and named, rather than failing the whole file.
    fn take<'de, A: MapAccess<'de>>(
        &self,
        map: &mut A,
        key: &str,
        picked: &mut Map<String, Value>,
    ) -> Result<(), A::Error> {
        let raw: Box<RawValue> = map.next_value()?;
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(value) => {
                picked.insert(key.to_string(), value);
            }
            Err(_) => {
                // A map of entries (servers) keeps those that can be read.
                let entries = if key == PER_ENTRY {
                    serde_json::from_str::<EntryMap>(raw.get()).ok()
                } else {
                    None
                };
                let project = match &self.depth {
                    Depth::Project(project) => Some(project.clone()),
                    Depth::Top | Depth::Projects => None,
                };
                let Some(EntryMap(entries)) = entries else {
                    let what = match project {
                        Some(project) => Unreadable::ProjectKey(project, key.to_string()),
                        None => Unreadable::Top(key.to_string()),
                    };
                    self.unreadable.borrow_mut().insert(what);
                    return Ok(());
                };
                let mut readable = Map::new();
                for (entry, raw) in entries {
                    match serde_json::from_str::<Value>(raw.get()) {
                        Ok(value) => {
                            readable.insert(entry, value);
                        }
                        Err(_) => {
                            let what = match &project {
                                Some(project) => Unreadable::ProjectEntry(
                                    project.clone(),
                                    key.to_string(),
                                    entry,
                                ),
                                None => Unreadable::TopEntry(key.to_string(), entry),
                            };
                            self.unreadable.borrow_mut().insert(what);
                        }
                    }
                }
                picked.insert(key.to_string(), Value::Object(readable));
            }
        }
        Ok(())
    }
}

/// The key whose value is a map of entries compared one by one.
pub(crate) const PER_ENTRY: &str = "mcpServers";

/// A JSON object's members as raw values, in order: what is left of a map
/// of entries when one of them cannot be parsed.
struct EntryMap(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for EntryMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = EntryMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EntryMap, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    members.push((key, map.next_value::<Box<RawValue>>()?));
                }
                Ok(EntryMap(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// A serde seed that builds values only for the wanted keys and skips the
/// others (per-project history is most of a big file) with `IgnoredAny`.
struct PickKeys<'a> {
    keys: &'a BTreeSet<String>,
    project_keys: &'a BTreeSet<String>,
    depth: Depth,
    unreadable: &'a RefCell<BTreeSet<Unreadable>>,
}

impl<'de> DeserializeSeed<'de> for PickKeys<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PickKeys<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.not_an_object()
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        self.not_an_object()
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        self.not_an_object()
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        self.not_an_object()
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        self.not_an_object()
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        self.not_an_object()
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_an_object()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut picked = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let nested = |depth| PickKeys {
                keys: self.keys,
                project_keys: self.project_keys,
                depth,
                unreadable: self.unreadable,
            };
            match &self.depth {
                Depth::Top if key == PROJECTS && !self.project_keys.is_empty() => {
                    let projects = map.next_value_seed(nested(Depth::Projects))?;
                    if !projects.is_empty() {
                        picked.insert(key, Value::Object(projects));
                    }
                }
                Depth::Top if self.keys.contains(&key) => self.take(&mut map, &key, &mut picked)?,
                Depth::Projects => {
                    let project = map.next_value_seed(nested(Depth::Project(key.clone())))?;
                    if !project.is_empty() {
                        picked.insert(key, Value::Object(project));
                    }
                }
                Depth::Project(_) if self.project_keys.contains(&key) => {
                    self.take(&mut map, &key, &mut picked)?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(picked)
    }
}
