//! What a pane changed in its own `.claude.json`, found by a three-way
//! comparison: the seed it started with, its file at close, and the user's
//! file now.
//!
//! Only what the user sets up on purpose is compared: the user-level
//! `seed_keys` and, in each project, the `project_keys` (trust, local MCP
//! servers, allowed tools, onboarding). `mcpServers`, at either level, is
//! compared per server, so two panes adding different servers both land.
//! History, caches and costs are never looked at.
//!
//! The rules, for each compared item:
//! - unchanged in the pane (seed = pane): nothing, whatever the user's file
//!   says;
//! - changed in the pane: the pane's value is written; if the user's file
//!   changed the same item since the seed, the pane's value still wins, and
//!   the user's old value is logged;
//! - removed in the pane (in the seed, not at close): removed from the
//!   user's file, but only if the user's file still has the seed's value;
//! - added in the pane (not in the seed): written, unless the user's file
//!   got a (non-empty) value of its own meanwhile, which stays;
//! - added in the pane with an empty value (`false`, `0`, `[]`, `{}`,
//!   `null`): nothing. That is Claude filling in defaults for a folder it
//!   opened, not a choice; carried back it could untrust a folder the user
//!   trusted meanwhile.
//!
//! Guard rails, so that a pane carries back what a person did in it and
//! never what a reset or a bug did (see [`guard`] and [`apply`]):
//! - a pane whose file lost more than half of its seed's items at once
//!   (Claude's "reset with default configuration", a crash that left `{}`)
//!   is a *reset*: none of its removals are carried, nor its changes to
//!   what the seed had (a reset writes defaults and a new `userID`, which
//!   cannot be told from a person's choice); they are held back for the
//!   user to see and apply (`host-shim carry-back`). What it added goes in;
//! - a value of another JSON type where the user's file holds an object or
//!   an array (`mcpServers` set to `null`, `5` or `"str"`) is refused for
//!   that item alone;
//! - an item that cannot be read, in either file, is left as the user's
//!   file has it; every other item goes on.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::into_pane::seed::{Picked, Unreadable, PROJECTS};

/// The user-level and per-project key compared entry by entry.
use crate::into_pane::seed::PER_ENTRY;

/// A pane is taken for reset when it lost at least this many of its seed's
/// items (see [`guard`]).
const RESET_MIN_LOST: usize = 2;

/// Where in `.claude.json` an item is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemPath {
    /// `key`
    Top(String),
    /// `key.entry` (a server of `mcpServers`)
    TopEntry(String, String),
    /// `projects[project].key`
    Project(String, String),
    /// `projects[project].key.entry`
    ProjectEntry(String, String, String),
}

impl std::fmt::Display for ItemPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ItemPath::Top(key) => write!(f, "{key}"),
            ItemPath::TopEntry(key, entry) => write!(f, "{key}.{entry}"),
            ItemPath::Project(project, key) => write!(f, "projects[{project:?}].{key}"),
            ItemPath::ProjectEntry(project, key, entry) => {
                write!(f, "projects[{project:?}].{key}.{entry}")
            }
        }
    }
}

/// One item the pane changed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub path: ItemPath,
    /// What the pane started with (`None`: absent).
    pub seed: Option<Value>,
    /// What the pane ended with (`None`: removed).
    pub pane: Option<Value>,
}

/// Whose value stays where both the pane and the user's file changed an
/// item since the pane's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precedence {
    /// A pane closing now: the pane's value, the latest choice, wins.
    PaneWins,
    /// A pending change merged late: the user's value, made since, stays.
    UserWins,
    /// A pane without a record of its seed: only what the user's file
    /// lacks is added.
    OnlyAdditions,
}

/// What applying changes to the user's file did, for the log.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Applied {
    pub written: usize,
    /// Items the user's file had changed too; the pane's value won.
    pub conflicts: usize,
    /// Removals not carried because the user's file changed the item.
    pub removals_kept: usize,
    /// Additions not carried because the user's file got its own value.
    pub additions_kept: usize,
    /// Items refused by the guard rails (a value of the wrong type).
    pub refused: Vec<Held>,
    /// Changes left out because the user's file cannot read their item.
    pub unreadable: usize,
    /// Which write of this process into the file took the change (0: none
    /// did): see [`UserClaudeJson::superseded`](crate::out_of_pane::user_claude_json::UserClaudeJson::still_ours).
    pub write: u64,
}

/// One item not carried back until a person says so, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Held {
    pub change: Change,
    pub why: HeldWhy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeldWhy {
    /// The pane lost most of its seed at once: a removal, or a change of
    /// what its seed had, after a reset.
    Reset,
    /// The pane's value is of another JSON type than the user's.
    WrongType,
}

impl std::fmt::Display for HeldWhy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HeldWhy::Reset => "the pane's file was reset (it lost most of its seed at once)",
            HeldWhy::WrongType => {
                "the pane's value is of another JSON type than the user's file has"
            }
        })
    }
}

/// A pane's changes split by the reset rule: what goes in, and what waits
/// for the user.
#[derive(Debug, Default)]
pub(crate) struct Guarded {
    pub carried: Vec<Change>,
    pub held: Vec<Held>,
    /// Seed items the pane lost, and how many the seed had (for the log).
    pub lost: usize,
    pub seed_items: usize,
}

/// The keys compared.
#[derive(Debug, Clone)]
pub(crate) struct CarriedKeys {
    pub top: BTreeSet<String>,
    pub project: BTreeSet<String>,
}

impl CarriedKeys {
    /// The items that differ between the seed and the pane's final file.
    /// An item either file could not read is not compared: it stays as the
    /// user's file has it.
    pub(crate) fn changes(&self, seed: &Picked, pane: &Picked) -> Vec<Change> {
        let unreadable =
            |what: &Unreadable| seed.unreadable.contains(what) || pane.unreadable.contains(what);
        let (seed_unreadable, pane_unreadable) = (&seed.unreadable, &pane.unreadable);
        let (seed, pane) = (&seed.map, &pane.map);
        let mut changes = Vec::new();
        for key in &self.top {
            if unreadable(&Unreadable::Top(key.clone())) {
                continue;
            }
            compare(
                seed.get(key),
                pane.get(key),
                key == PER_ENTRY,
                |entry| match entry {
                    Some(entry) => ItemPath::TopEntry(key.clone(), entry.to_string()),
                    None => ItemPath::Top(key.clone()),
                },
                &mut changes,
            );
        }
        if self.project.is_empty() || unreadable(&Unreadable::Projects) {
            return readable_only(changes, seed_unreadable, pane_unreadable);
        }
        let empty = Map::new();
        let projects = |file: &Map<String, Value>| -> Map<String, Value> {
            file.get(PROJECTS)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let (seed_projects, pane_projects) = (projects(seed), projects(pane));
        let paths: BTreeSet<&String> = seed_projects.keys().chain(pane_projects.keys()).collect();
        for project in paths {
            if unreadable(&Unreadable::Project(project.clone())) {
                continue;
            }
            let in_seed = seed_projects
                .get(project)
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let in_pane = pane_projects
                .get(project)
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            for key in &self.project {
                if unreadable(&Unreadable::ProjectKey(project.clone(), key.clone())) {
                    continue;
                }
                compare(
                    in_seed.get(key),
                    in_pane.get(key),
                    key == PER_ENTRY,
                    |entry| match entry {
                        Some(entry) => {
                            ItemPath::ProjectEntry(project.clone(), key.clone(), entry.to_string())
                        }
                        None => ItemPath::Project(project.clone(), key.clone()),
                    },
                    &mut changes,
                );
            }
        }
        readable_only(changes, seed_unreadable, pane_unreadable)
    }
}

/// Splits a pane's `changes` by the reset rule (module docs): a pane that
/// looks reset carries back only what it added; its removals and changes of
/// what the seed had are held.
///
/// A pane looks reset when, of the items its seed set up (non-empty values:
/// an empty one is a default, not a setup), it lost (no longer has, has
/// emptied, or can no longer be read):
/// - at least [`RESET_MIN_LOST`], and half of them or more; or
/// - its `userID` (Claude makes a new one only in a fresh file; `/logout`
///   keeps it); or
/// - every setup of every project (at least [`RESET_MIN_LOST`]).
pub(crate) fn guard(
    keys: &CarriedKeys,
    seed: &Picked,
    pane: &Picked,
    changes: Vec<Change>,
) -> Guarded {
    let mut seed_items = 0;
    let (mut lost, mut project_items, mut projects_lost) = (0, 0, 0);
    let mut lost_user_id = false;
    for (path, value) in keys.items(&seed.map) {
        if is_empty(value) {
            continue;
        }
        seed_items += 1;
        let in_project = matches!(path, ItemPath::Project(..) | ItemPath::ProjectEntry(..));
        project_items += usize::from(in_project);
        let gone = blocked(&pane.unreadable, &path) || get(&pane.map, &path).is_none_or(is_empty);
        if gone {
            lost += 1;
            projects_lost += usize::from(in_project);
            lost_user_id |= path == ItemPath::Top(USER_ID.to_string());
        }
    }
    let reset = (lost >= RESET_MIN_LOST && lost * 2 >= seed_items)
        || lost_user_id
        || (projects_lost >= RESET_MIN_LOST && projects_lost == project_items);
    let mut guarded = Guarded {
        lost,
        seed_items,
        ..Guarded::default()
    };
    for change in changes {
        // After a reset, a value the seed had and the pane has otherwise
        // is Claude's default as likely as a person's choice.
        if reset && change.seed.is_some() {
            guarded.held.push(Held {
                change,
                why: HeldWhy::Reset,
            });
        } else {
            guarded.carried.push(change);
        }
    }
    guarded
}

/// `changes` without those to an entry either file could not read: it
/// stays as the user's file has it.
fn readable_only(
    mut changes: Vec<Change>,
    seed: &BTreeSet<Unreadable>,
    pane: &BTreeSet<Unreadable>,
) -> Vec<Change> {
    changes.retain(|change| !blocked(seed, &change.path) && !blocked(pane, &change.path));
    changes
}

/// Who the user is to Claude: never removed but by a fresh file.
const USER_ID: &str = "userID";

/// Whether `path` is in, or under, an item that could not be read.
pub(crate) fn blocked(unreadable: &BTreeSet<Unreadable>, path: &ItemPath) -> bool {
    match path {
        ItemPath::Top(key) => unreadable.contains(&Unreadable::Top(key.clone())),
        ItemPath::TopEntry(key, entry) => {
            unreadable.contains(&Unreadable::Top(key.clone()))
                || unreadable.contains(&Unreadable::TopEntry(key.clone(), entry.clone()))
        }
        ItemPath::Project(project, key) => {
            unreadable.contains(&Unreadable::Projects)
                || unreadable.contains(&Unreadable::Project(project.clone()))
                || unreadable.contains(&Unreadable::ProjectKey(project.clone(), key.clone()))
        }
        ItemPath::ProjectEntry(project, key, entry) => {
            blocked(unreadable, &ItemPath::Project(project.clone(), key.clone()))
                || unreadable.contains(&Unreadable::ProjectEntry(
                    project.clone(),
                    key.clone(),
                    entry.clone(),
                ))
        }
    }
}

impl CarriedKeys {
    /// Every compared item `file` has, with its value (each server of an
    /// `mcpServers` is one item).
    fn items<'a>(&self, file: &'a Map<String, Value>) -> Vec<(ItemPath, &'a Value)> {
        let mut items = Vec::new();
        let mut push =
            |value: &'a Value, key: &str, whole: ItemPath, entry: &dyn Fn(&str) -> ItemPath| {
                match value {
                    Value::Object(entries) if key == PER_ENTRY && !entries.is_empty() => {
                        items.extend(entries.iter().map(|(name, value)| (entry(name), value)));
                    }
                    _ => items.push((whole, value)),
                }
            };
        for key in &self.top {
            if let Some(value) = file.get(key) {
                push(value, key, ItemPath::Top(key.clone()), &|name| {
                    ItemPath::TopEntry(key.clone(), name.to_string())
                });
            }
        }
        if let Some(projects) = file.get(PROJECTS).and_then(Value::as_object) {
            for (project, setup) in projects {
                let Some(setup) = setup.as_object() else {
                    continue;
                };
                for key in &self.project {
                    if let Some(value) = setup.get(key) {
                        push(
                            value,
                            key,
                            ItemPath::Project(project.clone(), key.clone()),
                            &|name| {
                                ItemPath::ProjectEntry(
                                    project.clone(),
                                    key.clone(),
                                    name.to_string(),
                                )
                            },
                        );
                    }
                }
            }
        }
        items
    }
}

fn compare(
    seed: Option<&Value>,
    pane: Option<&Value>,
    per_entry: bool,
    path: impl Fn(Option<&str>) -> ItemPath,
    changes: &mut Vec<Change>,
) {
    if seed == pane {
        return;
    }
    if per_entry {
        if let (Some(seed_map), Some(pane_map)) = (as_map(seed), as_map(pane)) {
            let empty = Map::new();
            let (seed_map, pane_map) = (seed_map.unwrap_or(&empty), pane_map.unwrap_or(&empty));
            let entries: BTreeSet<&String> = seed_map.keys().chain(pane_map.keys()).collect();
            for entry in entries {
                push(
                    seed_map.get(entry),
                    pane_map.get(entry),
                    path(Some(entry)),
                    changes,
                );
            }
            return;
        }
    }
    push(seed, pane, path(None), changes);
}

/// `Some(None)` for an absent value, `Some(Some(map))` for an object,
/// `None` for anything else.
fn as_map(value: Option<&Value>) -> Option<Option<&Map<String, Value>>> {
    match value {
        None => Some(None),
        Some(Value::Object(map)) => Some(Some(map)),
        Some(_) => None,
    }
}

fn object_mut(value: Option<&mut Value>) -> Option<&mut Map<String, Value>> {
    value.and_then(Value::as_object_mut)
}

fn push(seed: Option<&Value>, pane: Option<&Value>, path: ItemPath, changes: &mut Vec<Change>) {
    if seed == pane {
        return;
    }
    if seed.is_none() && pane.is_none_or(is_empty) {
        // Claude's defaults for something it opened: not a choice.
        return;
    }
    changes.push(Change {
        path,
        seed: seed.cloned(),
        pane: pane.cloned(),
    });
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Applies `changes` to the user's file `user` (a JSON object), by the
/// rules in the module docs. `pane_id` names the pane in the log.
///
/// `precedence` says whose value stays in a conflict. With `check_types`,
/// a value of another JSON type where the user's file holds an object or
/// an array (a map of servers, a project's setup, a list of tools) is
/// refused (and returned in [`Applied::refused`]); without, a person
/// applying a held change has chosen it.
pub(crate) fn apply(
    user: &mut Map<String, Value>,
    changes: &[Change],
    pane_id: &str,
    precedence: Precedence,
    check_types: bool,
) -> Applied {
    let only_additions = precedence == Precedence::OnlyAdditions;
    let mut applied = Applied::default();
    for change in changes {
        let current = get(user, &change.path).cloned();
        if current == change.pane || (only_additions && current.is_some()) {
            continue;
        }
        if check_types {
            if let (Some(current), Some(value)) = (&current, &change.pane) {
                if wrong_type(current, value) {
                    applied.refused.push(Held {
                        change: change.clone(),
                        why: HeldWhy::WrongType,
                    });
                    continue;
                }
            }
        }
        // Something the pane's seed did not have, which the user's file got
        // meanwhile (a Claude outside ccmux made a fresh file, the seed
        // could not be read): the user's value stays, unless it is empty.
        if change.seed.is_none() && current.as_ref().is_some_and(|value| !is_empty(value)) {
            tracing::info!(
                pane = pane_id,
                item = %change.path,
                "not carrying back: the pane added it, but the user's file has its own since"
            );
            applied.additions_kept += 1;
            continue;
        }
        let user_changed_it = current != change.seed;
        match &change.pane {
            None if user_changed_it => {
                tracing::info!(
                    pane = pane_id,
                    item = %change.path,
                    "not removing from the user's .claude.json: the pane removed it, but the user's file changed it since"
                );
                applied.removals_kept += 1;
            }
            None => {
                remove(user, &change.path);
                applied.written += 1;
            }
            Some(value) if user_changed_it && precedence == Precedence::UserWins => {
                tracing::info!(
                    pane = pane_id,
                    item = %change.path,
                    dropped = %truncated(Some(value)),
                    "not carrying back a late change: the user's .claude.json changed it since"
                );
                applied.conflicts += 1;
            }
            Some(value) => {
                if user_changed_it {
                    tracing::info!(
                        pane = pane_id,
                        item = %change.path,
                        old = %truncated(current.as_ref()),
                        "both the pane and the user's .claude.json changed this; the pane's value wins"
                    );
                    applied.conflicts += 1;
                }
                set(user, &change.path, value.clone());
                applied.written += 1;
            }
        }
    }
    applied
}

/// The type rule: `value` may not replace `current`, an object or an array
/// of the user's, with a value of another JSON type.
pub(crate) fn wrong_type(current: &Value, value: &Value) -> bool {
    (current.is_object() || current.is_array())
        && std::mem::discriminant(current) != std::mem::discriminant(value)
}

/// An old value for the log, cut short: it may be a whole MCP server
/// definition.
pub(crate) fn truncated(value: Option<&Value>) -> String {
    const MAX: usize = 300;
    let text = value.map_or_else(|| "(absent)".to_string(), Value::to_string);
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

pub(crate) fn get<'a>(file: &'a Map<String, Value>, path: &ItemPath) -> Option<&'a Value> {
    match path {
        ItemPath::Top(key) => file.get(key),
        ItemPath::TopEntry(key, entry) => file.get(key)?.as_object()?.get(entry),
        ItemPath::Project(project, key) => file.get(PROJECTS)?.get(project)?.get(key),
        ItemPath::ProjectEntry(project, key, entry) => file
            .get(PROJECTS)?
            .get(project)?
            .get(key)?
            .as_object()?
            .get(entry),
    }
}

/// The object at `key` of `map`, made an (empty) object if it is absent or
/// not one.
fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    if !map.get(key).is_some_and(Value::is_object) {
        map.insert(key.to_string(), Value::Object(Map::new()));
    }
    map.get_mut(key).and_then(Value::as_object_mut)
}

fn set(file: &mut Map<String, Value>, path: &ItemPath, value: Value) {
    let (target, key) = match path {
        ItemPath::Top(key) => (Some(file), key),
        ItemPath::TopEntry(key, entry) => (object_at(file, key), entry),
        ItemPath::Project(project, key) => (
            object_at(file, PROJECTS).and_then(|projects| object_at(projects, project)),
            key,
        ),
        ItemPath::ProjectEntry(project, key, entry) => (
            object_at(file, PROJECTS)
                .and_then(|projects| object_at(projects, project))
                .and_then(|p| object_at(p, key)),
            entry,
        ),
    };
    if let Some(target) = target {
        target.insert(key.clone(), value);
    }
}

fn remove(file: &mut Map<String, Value>, path: &ItemPath) {
    match path {
        ItemPath::Top(key) => {
            file.remove(key);
        }
        ItemPath::TopEntry(key, entry) => {
            if let Some(map) = object_mut(file.get_mut(key)) {
                map.remove(entry);
            }
        }
        ItemPath::Project(project, key) => {
            if let Some(map) = object_mut(file.get_mut(PROJECTS))
                .and_then(|projects| object_mut(projects.get_mut(project)))
            {
                map.remove(key);
            }
        }
        ItemPath::ProjectEntry(project, key, entry) => {
            if let Some(map) = object_mut(file.get_mut(PROJECTS))
                .and_then(|projects| object_mut(projects.get_mut(project)))
                .and_then(|p| object_mut(p.get_mut(key)))
            {
                map.remove(entry);
            }
        }
    }
}
