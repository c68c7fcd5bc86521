//! The text of the one line ustat prints for an error: long runs of digits (a 40-digit "PID"
//! someone pasted) are cut, so the line stays readable.

/// A usage error found after parsing (for example a probe pattern that matches nothing):
/// exit code 2. It lives here, below every module that can raise it, so none of them imports
/// `exit`, which maps every error type to its code.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A command-line error from clap (`error: ...`, tips, usage, a pointer to --help) as the one
/// line ustat prints for every error, without the `ustat: ` prefix.
pub fn one_line_usage_error(rendered: &str) -> String {
    let mut line = String::new();
    for part in rendered.lines().map(str::trim) {
        if part.is_empty() || part.starts_with("Usage:") || part.starts_with("For more information")
        {
            continue;
        }
        let part = part.strip_prefix("error: ").unwrap_or(part);
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(part);
    }
    shorten_numbers(&line)
}

/// Runs of digits longer than this are cut.
const LONGEST_NUMBER: usize = 12;
/// Digits kept before the ellipsis.
const KEPT_DIGITS: usize = 8;

/// `text` with every run of more than 12 ASCII digits cut to its first 8 and an ellipsis,
/// followed by how many digits the run had: `12345678… (40 digits)`.
pub fn shorten_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..start]);
        let digits = &rest[start..];
        let len = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if len > LONGEST_NUMBER {
            out.push_str(&digits[..KEPT_DIGITS]);
            out.push_str(&format!("… ({len} digits)"));
        } else {
            out.push_str(&digits[..len]);
        }
        rest = &digits[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_numbers_are_cut() {
        let pid = "1234567890".repeat(4);
        assert_eq!(
            shorten_numbers(&format!("no process with PID {pid}")),
            "no process with PID 12345678… (40 digits)"
        );
        assert_eq!(
            shorten_numbers(&format!("`{pid}`, `{pid}x`")),
            "`12345678… (40 digits)`, `12345678… (40 digits)x`"
        );
    }

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: unexpected argument '--foo' found\n\n  tip: to pass '--foo' as a \
                        value, use '-- --foo'\n\nUsage: ustat [OPTIONS] [COMMAND]\n\nFor more \
                        information, try '--help'.\n";
        assert_eq!(
            one_line_usage_error(rendered),
            "unexpected argument '--foo' found; tip: to pass '--foo' as a value, use '-- --foo'"
        );
        let rendered = "error: the following required arguments were not provided:\n  \
                        <TARGET>\n\nUsage: ustat list <TARGET>\n";
        assert_eq!(
            one_line_usage_error(rendered),
            "the following required arguments were not provided: <TARGET>"
        );
    }

    #[test]
    fn ordinary_numbers_and_text_stay() {
        for text in [
            "no process with PID 4194304",
            "a 12-digit 123456789012 stays",
            "2026-11-30T16:00:05.310Z",
            "",
            "名前 999",
        ] {
            assert_eq!(shorten_numbers(text), text);
        }
    }
}
