//! Which login a pane's Claude uses: the value of
//! `CLAUDE_SECURESTORAGE_CONFIG_DIR` that selects the user's own
//! credentials, whatever the pane's `CLAUDE_CONFIG_DIR`.
//!
//! What Claude 2.1.197 does with it (read from the JS bundled in the Linux
//! and darwin-arm64 packages; not run on a Mac):
//!
//! - Linux reads `.credentials.json` from `CLAUDE_SECURESTORAGE_CONFIG_DIR`
//!   when the variable is defined (`""` meaning `~/.claude`), else from
//!   `CLAUDE_CONFIG_DIR`.
//! - macOS keeps the login in the Keychain entry `Claude Code-credentials`,
//!   suffixed with `-` and the first 8 hex digits of the SHA-256 of the raw
//!   variable's value: of `CLAUDE_SECURESTORAGE_CONFIG_DIR` if it is
//!   defined (no suffix only when it is `""`), else of `CLAUDE_CONFIG_DIR`
//!   (no suffix when that is unset or empty). The raw string is hashed: a
//!   resolved path or a trailing slash names another entry.
//!
//! So the one value that gives a pane the user's login on both is the
//! user's own `CLAUDE_CONFIG_DIR`, byte for byte, or `""` when the user has
//! none. The user's resolved `~/.claude` would work on Linux and log every
//! pane out on macOS; leaving the variable unset would hash the pane's dir.

/// The value to set in a pane, or `None` to leave the one it inherits.
///
/// `inherited`: the variable in the server's environment, if defined
/// (even empty): the user chose it, so it stays. `user_config_dir`: the
/// user's own `CLAUDE_CONFIG_DIR`, raw, if they have one.
pub(crate) fn securestorage_value(
    inherited: Option<&str>,
    user_config_dir: Option<&str>,
) -> Option<String> {
    if inherited.is_some() {
        return None;
    }
    Some(
        user_config_dir
            .filter(|dir| !dir.is_empty())
            .unwrap_or_default()
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::securestorage_value;

    #[test]
    fn the_users_own_choice_stays() {
        assert_eq!(securestorage_value(Some("/vault"), None), None);
        assert_eq!(securestorage_value(Some(""), Some("/x")), None);
    }

    #[test]
    fn a_user_without_claude_config_dir_gets_the_empty_value() {
        // macOS: the bare `Claude Code-credentials` entry; Linux:
        // ~/.claude/.credentials.json. Never the resolved ~/.claude path,
        // which hashes to another Keychain entry.
        assert_eq!(securestorage_value(None, None), Some(String::new()));
        assert_eq!(securestorage_value(None, Some("")), Some(String::new()));
    }

    #[test]
    fn a_user_with_claude_config_dir_gets_it_byte_for_byte() {
        assert_eq!(
            securestorage_value(None, Some("/Users/me/claude-work/")),
            Some("/Users/me/claude-work/".to_string())
        );
        assert_eq!(
            securestorage_value(None, Some("~/not-expanded")),
            Some("~/not-expanded".to_string())
        );
    }
}
