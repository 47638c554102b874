//! Every entry the supported Claude Code releases (2.1.197 to 2.1.337) are
//! known to write at the top of a config dir, and what the isolation plugin
//! does with it by default. The README's table ("Every entry of a Claude
//! config dir") gives the evidence for each.
//!
//! This file has no dependencies: `host-shim doctor` includes it too
//! (`#[path]`), so both judge "unknown" the same way. A top-level name that
//! matches no row and no configured list is *unknown*: at a pane's removal
//! it is moved into the user's Claude dir, never deleted (`drift`).

/// The one file every pane has its own of: Claude rewrites it whole, so
/// it is seeded into a pane and its changes carried back, never linked.
pub(crate) const CLAUDE_JSON: &str = ".claude.json";

/// What the plugin does with an entry by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Each pane's own, removed with its dir: the file concurrent
    /// instances rewrite whole, caches, locks, per-process state.
    PerPane,
    /// Linked to the user's dir (`share_data`): per-session or append-only data.
    SharedData,
    /// Each pane's own while it runs, moved home before removal (`move_home`).
    MoveHome,
    /// Linked to the user's dir if the user has it (`share`): configuration.
    Configuration,
}

/// `(name, class)`; a name ending in `*` is a prefix.
pub const ENTRIES: &[(&str, Class)] = &[
    // The file instances corrupt, its lock, temp files and backups.
    (".claude.json*", Class::PerPane),
    ("backups", Class::PerPane),
    (".config.json", Class::PerPane),
    // Only with `share_credentials = false` (else in the user's dir).
    (".credentials.json", Class::PerPane),
    ("image-cache", Class::PerPane),
    ("shell-snapshots", Class::PerPane),
    ("statsig", Class::PerPane),
    ("telemetry", Class::PerPane),
    ("jobs", Class::PerPane),
    ("daemon*", Class::PerPane),
    ("stats-cache.json", Class::PerPane),
    ("gh-pr-status-cache.json", Class::PerPane),
    ("policy-limits.json", Class::PerPane),
    ("remote-settings.json", Class::PerPane),
    ("mcp-needs-auth-cache.json", Class::PerPane),
    ("cache", Class::PerPane),
    (".last-cleanup", Class::PerPane),
    (".update.lock", Class::PerPane),
    ("computer-use.lock", Class::PerPane),
    ("local", Class::PerPane),
    ("chrome", Class::PerPane),
    ("uploads", Class::PerPane),
    // 2.1.337: caches and per-install state (`state/deleted-transcripts`
    // below it is shared data).
    ("state", Class::PerPane),
    ("mcp-discovery-cache", Class::PerPane),
    ("remote-control", Class::PerPane),
    ("feedback", Class::PerPane),
    ("cowork_plugins", Class::PerPane),
    ("dev-mods", Class::PerPane),
    ("seed-admin", Class::PerPane),
    ("ccr", Class::PerPane),
    ("logs", Class::PerPane),
    ("traces", Class::PerPane),
    ("startup-perf", Class::PerPane),
    ("api-dumps", Class::PerPane),
    ("dump-prompts", Class::PerPane),
    ("feedback-bundles", Class::PerPane),
    ("file-transfers", Class::PerPane),
    ("mcp-skill-archives", Class::PerPane),
    ("scratch", Class::PerPane),
    ("downloads", Class::PerPane),
    ("remote", Class::PerPane),
    ("systemd", Class::PerPane),
    ("bridge-spawn", Class::PerPane),
    ("server.lock", Class::PerPane),
    ("server-sessions.json", Class::PerPane),
    ("active-time.json", Class::PerPane),
    (".session_ingress_token", Class::PerPane),
    ("antproto.json", Class::PerPane),
    ("hfi-auth.json", Class::PerPane),
    // Shared data (`share_data`'s defaults).
    ("projects", Class::SharedData),
    ("history.jsonl", Class::SharedData),
    ("file-history", Class::SharedData),
    ("todos", Class::SharedData),
    ("tasks", Class::SharedData),
    ("paste-cache", Class::SharedData),
    ("session-env", Class::SharedData),
    ("sessions", Class::SharedData),
    ("teams", Class::SharedData),
    ("debug", Class::SharedData),
    ("ide", Class::SharedData),
    ("memory", Class::SharedData),
    // `move_home`'s default.
    ("plans", Class::MoveHome),
    // `share`'s defaults.
    ("settings.json", Class::Configuration),
    ("CLAUDE.md", Class::Configuration),
    ("rules", Class::Configuration),
    ("agents", Class::Configuration),
    ("commands", Class::Configuration),
    ("skills", Class::Configuration),
    ("output-styles", Class::Configuration),
    ("workflows", Class::Configuration),
    ("routines", Class::Configuration),
    ("themes", Class::Configuration),
    ("keybindings.json", Class::Configuration),
    ("loop.md", Class::Configuration),
    ("plugins", Class::Configuration),
];

/// The class of the top-level entry `name`, if the table knows it.
pub fn class_of(name: &str) -> Option<Class> {
    ENTRIES.iter().find_map(|(pattern, class)| {
        let hit = match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *pattern,
        };
        hit.then_some(*class)
    })
}
