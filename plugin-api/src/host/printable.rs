//! Text from plugins and files, made safe to print on a terminal.
//!
//! A plugin's error, refusal reason or log line, and a path read from a
//! file, can hold control characters (an ANSI escape sequence in a file
//! name, say). Printed raw, they would move the cursor, recolour or clear
//! the user's terminal, or forge output. Every such string is passed
//! through [`printable`] where it enters the host, so nothing downstream
//! (host-shim's messages, the log) has to remember to.

use std::borrow::Cow;

/// `text` with every control character but newline and tab, and every
/// bidirectional override, shown as an escape (`\u{1b}`) instead of
/// obeyed; borrowed when there is none.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1) but newline and tab, and the
/// bidirectional formatting characters, which reorder what a person reads
/// (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C).
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(
            printable("plain text\nand a line"),
            "plain text\nand a line"
        );
        assert_eq!(
            printable("red \u{1b}[31mtext\u{7}\r"),
            "red \\u{1b}[31mtext\\u{7}\\r"
        );
        assert_eq!(printable("\u{9b}2J\u{7f}"), "\\u{9b}2J\\u{7f}");
        assert_eq!(printable("abc\u{202e}txt.exe"), "abc\\u{202e}txt.exe");
    }
}
