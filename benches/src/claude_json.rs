//! A realistic `~/.claude.json` of a chosen size.
//!
//! Claude Code keeps a few dozen user-level keys (account, onboarding,
//! theme, MCP servers, ...) and a `projects` map with one entry per
//! directory it ever ran in: allowed tools, prompt history, costs and
//! token counts of the last session. `projects` is what makes the file
//! big, so the generator grows it until the file reaches the size asked
//! for. User keys come both before and after `projects`, so a reader that
//! wants them has to get past it. Output is deterministic.

use serde_json::{json, Map, Value};

/// A pretty-printed (2-space, as Claude writes it) `.claude.json` of about
/// `target_bytes` (a little more: whole projects only).
pub fn generate(target_bytes: usize) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut root = Map::new();
    for (key, value) in user_keys_before(&mut rng) {
        root.insert(key.to_string(), value);
    }
    // Placeholder: filled below, once the size of the rest is known.
    root.insert("projects".into(), Value::Object(Map::new()));
    for (key, value) in user_keys_after(&mut rng) {
        root.insert(key.to_string(), value);
    }
    let skeleton = serde_json::to_vec_pretty(&Value::Object(root.clone()))
        .expect("JSON")
        .len();
    let mut projects = Map::new();
    let mut size = skeleton;
    let mut index = 0;
    while size < target_bytes {
        let (path, project) = project(&mut rng, index);
        // Pretty-printed at depth 2: each line indented 4 more spaces.
        let text = serde_json::to_string_pretty(&project).expect("JSON");
        size += path.len() + 8 + text.len() + 4 * text.lines().count();
        projects.insert(path, project);
        index += 1;
    }
    root.insert("projects".into(), Value::Object(projects));
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(root)).expect("JSON");
    bytes.push(b'\n');
    bytes
}

/// A `.claude.json` with exactly `projects` projects, each with its full
/// setup (trust, tools, MCP lists) and caches, and with prompt history
/// grown evenly until the file reaches about `target_bytes` (none if the
/// projects alone are bigger). Two files made with the same `projects`
/// hold the same project setups and differ only in history: what a pane
/// seeds from them is the same.
pub fn generate_with_projects(projects: usize, target_bytes: usize) -> Vec<u8> {
    let build = |history: usize| {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut root = Map::new();
        for (key, value) in user_keys_before(&mut rng) {
            root.insert(key.to_string(), value);
        }
        let map: Map<String, Value> = (0..projects)
            .map(|index| project_with_history(&mut rng, index, Some(history)))
            .collect();
        root.insert("projects".into(), Value::Object(map));
        for (key, value) in user_keys_after(&mut rng) {
            root.insert(key.to_string(), value);
        }
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(root)).expect("JSON");
        bytes.push(b'\n');
        bytes
    };
    let bare = build(0);
    if bare.len() >= target_bytes || projects == 0 {
        return bare;
    }
    // One history entry's size, measured, then enough of them per project.
    let one = build(1).len().saturating_sub(bare.len()) / projects;
    let per_project = (target_bytes - bare.len()) / projects / one.max(1);
    build(per_project)
}

fn user_keys_before(rng: &mut Rng) -> Vec<(&'static str, Value)> {
    vec![
        ("numStartups", json!(1423)),
        ("installMethod", json!("native")),
        ("autoUpdates", json!(false)),
        ("theme", json!("dark")),
        ("verbose", json!(false)),
        ("preferredNotifChannel", json!("terminal_bell")),
        ("editorMode", json!("vim")),
        ("hasCompletedOnboarding", json!(true)),
        ("lastOnboardingVersion", json!("2.0.14")),
        ("firstStartTime", json!("2025-03-02T10:11:12.345Z")),
        ("userID", json!(rng.hex(64))),
        (
            "oauthAccount",
            json!({
                "accountUuid": rng.uuid(),
                "emailAddress": "someone@example.com",
                "organizationUuid": rng.uuid(),
                "organizationRole": "admin",
                "workspaceRole": null,
                "organizationName": "Example Org",
                "displayName": "Someone",
                "hasExtraUsageEnabled": false
            }),
        ),
        (
            "mcpServers",
            json!({
                "github": {
                    "type": "stdio",
                    "command": "npx",
                    "args": ["-y", "@modelcontextprotocol/server-github"],
                    "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": rng.hex(40)}
                },
                "postgres": {
                    "type": "stdio",
                    "command": "uvx",
                    "args": ["mcp-server-postgres", "postgresql://localhost/dev"],
                    "env": {}
                }
            }),
        ),
        (
            "customApiKeyResponses",
            json!({"approved": [rng.hex(20)], "rejected": []}),
        ),
        (
            "tipsHistory",
            json!({
                "new-user-warmup": 7, "memory-command": 12, "theme-command": 20,
                "prompt-queue": 31, "enter-to-steer-in-relatime": 40,
                "todo-list": 55, "git-worktrees": 70, "shift-tab": 84
            }),
        ),
    ]
}

fn user_keys_after(rng: &mut Rng) -> Vec<(&'static str, Value)> {
    vec![
        ("hasAvailableSubscription", json!(false)),
        ("bypassPermissionsModeAccepted", json!(true)),
        ("hasAcknowledgedCostThreshold", json!(true)),
        ("isQualifiedForDataSharing", json!(false)),
        ("fallbackAvailableWarningThreshold", json!(0.5)),
        (
            "cachedStatsigGates",
            json!({
                "tengu_disable_bypass_permissions_mode": false,
                "tengu_use_file_checkpoints": true,
                "tengu_tool_pear": false
            }),
        ),
        (
            "cachedChangelog",
            json!((0..40)
                .map(|i| format!("## 2.0.{i}\n\n- {}\n", rng.sentence(12)))
                .collect::<String>()),
        ),
        ("changelogLastFetched", json!(1_760_000_000_000u64)),
        ("lastReleaseNotesSeen", json!("2.0.14")),
        ("subscriptionNoticeCount", json!(0)),
    ]
}

/// One `projects` entry: path and state.
fn project(rng: &mut Rng, index: usize) -> (String, Value) {
    project_with_history(rng, index, None)
}

/// One `projects` entry with `history` prompts (a random count if `None`).
fn project_with_history(rng: &mut Rng, index: usize, history: Option<usize>) -> (String, Value) {
    let (a, b) = (rng.below(WORDS.len()), rng.below(WORDS.len()));
    let path = format!("/home/someone/src/{}-{index}/{}", WORDS[a], WORDS[b]);
    let count = history.unwrap_or_else(|| rng.range(5, 60));
    let history: Vec<Value> = (0..count)
        .map(|_| {
            let words = rng.range(4, 40);
            let mut display = rng.sentence(words);
            // Real prompts have quotes, newlines and the odd non-ASCII char.
            if rng.below(4) == 0 {
                display.push_str("\n\"see src/main.rs\" — then run `cargo test`");
            }
            let pasted = if rng.below(8) == 0 {
                json!({"1": {"id": 1, "type": "text", "content": rng.sentence(80)}})
            } else {
                json!({})
            };
            json!({"display": display, "pastedContents": pasted})
        })
        .collect();
    let allowed: Vec<Value> = (0..rng.range(0, 8))
        .map(|_| {
            let (tool, arg) = (rng.below(WORDS.len()), rng.below(WORDS.len()));
            json!(format!("Bash({} {}:*)", WORDS[tool], WORDS[arg]))
        })
        .collect();
    let examples: Vec<Value> = (0..5)
        .map(|_| json!(format!("src/{}.rs", WORDS[rng.below(WORDS.len())])))
        .collect();
    let project = json!({
        "allowedTools": allowed,
        "history": history,
        "mcpContextUris": [],
        "mcpServers": {},
        "enabledMcpjsonServers": [],
        "disabledMcpjsonServers": [],
        "hasTrustDialogAccepted": true,
        "projectOnboardingSeenCount": rng.range(0, 5),
        "hasClaudeMdExternalIncludesApproved": false,
        "hasClaudeMdExternalIncludesWarningShown": false,
        "exampleFiles": examples,
        "exampleFilesGeneratedAt": 1_750_000_000_000u64 + rng.below(10_000_000_000) as u64,
        "lastCost": rng.below(10_000) as f64 / 1000.0,
        "lastAPIDuration": rng.below(900_000),
        "lastDuration": rng.below(9_000_000),
        "lastLinesAdded": rng.below(2000),
        "lastLinesRemoved": rng.below(800),
        "lastTotalInputTokens": rng.below(200_000),
        "lastTotalOutputTokens": rng.below(50_000),
        "lastTotalCacheCreationInputTokens": rng.below(100_000),
        "lastTotalCacheReadInputTokens": rng.below(5_000_000),
        "lastSessionId": rng.uuid()
    });
    (path, project)
}

const WORDS: &[&str] = &[
    "refactor",
    "the",
    "parser",
    "so",
    "that",
    "errors",
    "carry",
    "spans",
    "add",
    "tests",
    "for",
    "pane",
    "close",
    "fix",
    "flaky",
    "ci",
    "build",
    "why",
    "does",
    "this",
    "panic",
    "when",
    "config",
    "is",
    "empty",
    "explain",
    "lifetime",
    "borrow",
    "checker",
    "async",
    "runtime",
    "tokio",
    "serde",
    "json",
    "migrate",
    "database",
    "schema",
    "rename",
    "module",
    "update",
    "readme",
    "benchmark",
    "plugin",
    "loader",
    "terminal",
    "multiplexer",
    "window",
    "session",
    "history",
    "server",
    "client",
    "socket",
    "protocol",
    "render",
    "layout",
];

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low)
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from_digit(self.below(16) as u32, 16).unwrap_or('0'))
            .collect()
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    fn sentence(&mut self, words: usize) -> String {
        let mut text = String::new();
        for i in 0..words {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(WORDS[self.below(WORDS.len())]);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_the_size_and_keeps_user_keys_around_projects() {
        let bytes = generate(200_000);
        assert!(
            bytes.len() >= 200_000 && bytes.len() < 260_000,
            "{}",
            bytes.len()
        );
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        let projects = keys.iter().position(|k| *k == "projects").unwrap();
        assert!(projects > 0 && projects < keys.len() - 1);
    }
}
