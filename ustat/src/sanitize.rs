//! Strings from traced processes and probed binaries (class, method and file names, command
//! lines, probe names) are untrusted. Before they reach a terminal or a CSV cell, they pass
//! through here.

/// Replaces control characters (C0, DEL, C1) and bidirectional-override characters with `?`,
/// so a string cannot move the cursor, change colours, or reorder what the user reads.
pub fn text(input: &str) -> String {
    input
        .chars()
        .map(|c| if is_unsafe(c) { '?' } else { c })
        .collect()
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// A CSV cell: `text`, and a leading `'` when a spreadsheet would otherwise read the cell as a
/// formula (`=`, `+`, `-`, `@`, or a tab or carriage return before them).
pub fn csv_cell(input: &str) -> String {
    let clean = text(input);
    if clean.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{clean}")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_cannot_reach_the_terminal() {
        assert_eq!(text("java/lang/\x1b[2JThread"), "java/lang/?[2JThread");
        assert_eq!(text("a\x07b\x7fc\u{9b}d"), "a?b?c?d");
        assert_eq!(text("line\nbreak\ttab\r"), "line?break?tab?");
        assert_eq!(text("abc\u{202e}cba"), "abc?cba");
        assert_eq!(text("名前/Ünïcode"), "名前/Ünïcode");
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-cmd"), "'-cmd");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("java"), "java");
        // A tab is replaced first, so it cannot hide a formula behind it.
        assert_eq!(csv_cell("\t=1"), "?=1");
    }
}
