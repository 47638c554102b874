//! Pane ids are used as directory names by plugins, so the host runtime
//! ([`PluginHost`](crate::host::PluginHost)'s pane hooks) checks them before
//! any plugin sees them, and careful plugins check them again.

/// The longest pane id accepted; a UUID is 36 characters.
pub const MAX_PANE_ID_LEN: usize = 128;

/// Why a pane id was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPaneId {
    pub id: String,
    pub reason: &'static str,
}

impl std::fmt::Display for InvalidPaneId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid pane id {:?}: {}; use `{{session}}_{{window}}_{{index}}` or a UUID (letters, digits, `_` and `-`, at most {MAX_PANE_ID_LEN} characters)",
            self.id, self.reason
        )
    }
}

impl std::error::Error for InvalidPaneId {}

/// Accepts ids made of ASCII letters, digits, `_` and `-`, 1 to
/// [`MAX_PANE_ID_LEN`] long: safe as one path component on every platform,
/// with no `/`, `..`, NUL or leading dot possible.
pub fn check_pane_id(id: &str) -> Result<(), InvalidPaneId> {
    // One pass for the ids a host passes (every pane hook checks one); the
    // passes below only find the words for a refusal. The allowed bytes
    // hold no NUL, separator or dot, so nothing below can refuse this.
    if (1..=MAX_PANE_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Ok(());
    }
    let refuse = |reason| {
        Err(InvalidPaneId {
            id: id.chars().take(MAX_PANE_ID_LEN + 8).collect(),
            reason,
        })
    };
    if id.is_empty() {
        return refuse("it is empty");
    }
    if id.len() > MAX_PANE_ID_LEN {
        return refuse("it is too long");
    }
    if id.contains('\0') {
        return refuse("it contains a NUL byte");
    }
    if id.contains('/') || id.contains('\\') {
        return refuse("it contains a path separator");
    }
    if id.contains("..") {
        return refuse("it contains `..`");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return refuse("it contains a character other than letters, digits, `_` and `-`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_forms_are_accepted() {
        for id in [
            "main_0_1",
            "a1b2c3d4_12_3",
            "0b4c1f9e-5c7d-4a8e-9f00-1234567890ab",
        ] {
            assert_eq!(check_pane_id(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn the_documented_maximum_length_is_accepted_and_one_more_is_not() {
        let longest = "a".repeat(MAX_PANE_ID_LEN);
        assert_eq!(MAX_PANE_ID_LEN, 128, "PaneInfo's docs promise 128");
        assert_eq!(check_pane_id(&longest), Ok(()));
        let too_long = "a".repeat(MAX_PANE_ID_LEN + 1);
        let err = check_pane_id(&too_long).unwrap_err();
        assert_eq!(err.reason, "it is too long");
        assert!(err.to_string().contains("at most 128 characters"), "{err}");
        // The shortest: one character.
        assert_eq!(check_pane_id("a"), Ok(()));
    }

    #[test]
    fn unsafe_ids_are_refused_with_a_reason() {
        let long = "a".repeat(MAX_PANE_ID_LEN + 1);
        for (id, reason) in [
            ("", "empty"),
            ("..", "`..`"),
            ("a/b", "separator"),
            ("../etc", "separator"),
            ("a\0b", "NUL"),
            (".hidden", "character"),
            ("a b", "character"),
            ("pané", "character"),
            (long.as_str(), "too long"),
        ] {
            let err = check_pane_id(id).unwrap_err();
            assert!(err.reason.contains(reason), "{id:?}: {}", err.reason);
            assert!(err.to_string().contains("invalid pane id"));
        }
    }
}
