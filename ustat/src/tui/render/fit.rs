//! Text that must fit a width: cut with `…` where it does not, by display width (a CJK
//! character takes two cells), so a narrow terminal shows that something was cut.

use ratatui::text::{Line, Span};
use unicode_width::{UnicodeWidthChar as _, UnicodeWidthStr as _};

/// Display width of `text`.
pub fn width(text: &str) -> usize {
    text.width()
}

/// `text` cut to `max` cells, its last cell `…` when anything was cut.
pub fn ellipsis(text: &str, max: usize) -> String {
    if text.width() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// A line of `pinned` spans that always show (badges, warnings) and one `flexible` text
/// between them that is cut with `…` to what the width leaves. `before` go in front of the
/// text, `after` behind it.
pub fn line<'a>(
    before: Vec<Span<'a>>,
    flexible: &str,
    after: Vec<Span<'a>>,
    max: usize,
) -> Line<'a> {
    let pinned: usize = before.iter().chain(&after).map(Span::width).sum();
    let text = ellipsis(flexible, max.saturating_sub(pinned));
    let mut spans = before;
    spans.push(Span::raw(text));
    spans.extend(after);
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_text_ends_in_an_ellipsis_and_fits() {
        assert_eq!(ellipsis("python3 manage.py", 20), "python3 manage.py");
        assert_eq!(ellipsis("python3 manage.py", 10), "python3 m…");
        assert_eq!(ellipsis("名前名前", 5), "名前…");
        assert_eq!(width(&ellipsis("名前名前", 5)), 5);
        assert_eq!(ellipsis("abc", 0), "");
        assert_eq!(ellipsis("abc", 1), "…");
    }

    #[test]
    fn pinned_spans_stay_whole() {
        let l = line(
            vec![Span::raw(" ustat ")],
            " a long description of what is traced",
            vec![Span::raw("  PAUSED")],
            30,
        );
        assert_eq!(l.width(), 30);
        assert!(l.to_string().starts_with(" ustat "));
        assert!(l.to_string().ends_with("…  PAUSED"));
    }
}
