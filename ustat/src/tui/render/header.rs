//! The top line (view, scope, sort, losses), the notice line (an export, a warning), the
//! footer of keys, and the one-line summary of a terminal too small for anything else.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Paragraph, Wrap},
};

use super::{ACCENT, MIN_HEIGHT, MIN_WIDTH, WARN, badge, fit};
use crate::{
    format,
    tui::app::{App, View},
};

pub(super) fn draw_tiny(frame: &mut Frame, area: Rect, app: &App) {
    let text = format!(
        "ustat: {}; enlarge the terminal ({MIN_WIDTH}x{MIN_HEIGHT} at least); q quits",
        format::plural(app.rows().len() as u64, "process", "processes")
    );
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

pub(super) fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let arrow = if app.descending { "▼" } else { "▲" };
    let mut before = vec![badge(" ustat ")];
    if app.paused {
        before.push(Span::styled(
            " PAUSED",
            Style::new().fg(WARN).add_modifier(Modifier::BOLD),
        ));
    }
    let text = format!(
        " {} · {} · every {} · sort {} {arrow} · runtime {}",
        app.scope,
        format::plural(app.rows().len() as u64, "process", "processes"),
        format_interval(app.interval),
        app.sort.title(),
        app.runtime.unwrap_or("all"),
    );
    let mut after = Vec::new();
    if let Some(snapshot) = &app.snapshot {
        let lost = snapshot.lost;
        let parts: Vec<String> = [
            (lost.ring_full, "events dropped"),
            (lost.map_full, "hits not counted (map full)"),
            (lost.too_deep, "spans too deep"),
            (lost.bad_values, "bad sizes ignored"),
            (
                lost.unlisted_events,
                "events of processes gone before listed",
            ),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{} {what}", format::count(*n)))
        .collect();
        if !parts.is_empty() {
            // The losses always show; on a narrow terminal their detail is cut.
            let room = usize::from(area.width) / 2;
            after.push(Span::styled(
                fit::ellipsis(&format!("  lost: {}", parts.join(", ")), room),
                Style::new().fg(WARN),
            ));
        }
    }
    frame.render_widget(
        fit::line(before, &text, after, usize::from(area.width)),
        area,
    );
}

fn format_interval(interval: std::time::Duration) -> String {
    let seconds = interval.as_secs_f64();
    if seconds.fract() == 0.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{seconds} s")
    }
}

/// The export result, or the first warning.
pub(super) fn draw_notice(frame: &mut Frame, area: Rect, app: &App) {
    let line = if let Some(status) = &app.status {
        Line::from(Span::styled(status.clone(), Style::new().fg(ACCENT)))
    } else if let Some(first) = app.snapshot.as_ref().and_then(|s| s.warnings.first()) {
        let more = app.snapshot.as_ref().map_or(0, |s| s.warnings.len() - 1);
        let suffix = if more > 0 {
            format!(" (+{more} more)")
        } else {
            String::new()
        };
        Line::from(Span::styled(
            format!("! {first}{suffix}"),
            Style::new().fg(WARN),
        ))
    } else {
        Line::default()
    };
    frame.render_widget(line, area);
}

pub(super) fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
    let keys = footer_keys(app.view, app.flow_only);
    frame.render_widget(footer_line(keys, usize::from(area.width)), area);
}

/// The keys the footer shows in a view.
fn footer_keys(view: View, flow_only: bool) -> &'static [(&'static str, &'static str)] {
    match view {
        View::Table => &[
            ("q", "quit"),
            ("?", "help"),
            ("↑↓", "select"),
            ("⏎", "details"),
            ("s", "sort"),
            ("r", "runtime"),
            ("e", "export"),
            ("f", "flow"),
            ("␣", "pause"),
        ],
        View::Detail => &[
            ("q", "quit"),
            ("?", "help"),
            ("Esc", "back"),
            ("↑↓", "other process"),
            ("e", "export"),
            ("f", "flow"),
            ("x", "sampled stacks"),
            ("␣", "pause"),
        ],
        // A flow of its own (`ustat --flow`) has nothing to go back to: Esc quits it.
        View::Flow if flow_only => &[
            ("?", "help"),
            ("Esc", "quit"),
            ("↑↓", ""),
            ("End", "live"),
            ("z", "fold"),
            ("t", "thread"),
            ("/ m", "filter"),
            ("x", "save"),
            ("␣", "pause"),
        ],
        View::Flow => &[
            ("q", "quit"),
            ("?", "help"),
            ("Esc", "back"),
            ("↑↓", ""),
            ("End", "live"),
            ("z", "fold"),
            ("t", "thread"),
            ("/ m", "filter"),
            ("x", "save"),
            ("␣", "pause"),
        ],
    }
}

/// The keys as badges with what they do: spaced out where the width allows, packed where
/// not, and cut with `…` only where even that does not fit.
fn footer_line(keys: &[(&str, &str)], width: usize) -> Line<'static> {
    let key_style = Style::new().fg(Color::Black).bg(Color::Gray);
    // Arrows need no word; the last entry needs no gap behind it.
    let spaced = |pad: &str, gap: &str| -> Vec<Span<'static>> {
        let mut spans: Vec<Span<'static>> = keys
            .iter()
            .flat_map(|(key, what)| {
                [
                    Span::styled(format!("{pad}{key}{pad}"), key_style),
                    Span::raw(if what.is_empty() {
                        gap.to_string()
                    } else {
                        format!(" {what}{gap}")
                    }),
                ]
            })
            .collect();
        if let Some(last) = spans.last_mut() {
            *last = Span::raw(last.content.trim_end().to_string());
        }
        spans
    };
    for spans in [spaced(" ", "  "), spaced("", " ")] {
        let line = Line::from(spans);
        if line.width() <= width {
            return line;
        }
    }
    let packed = Line::from(spaced("", " "));
    let mut spans = Vec::new();
    let mut used = 0;
    for span in packed.spans {
        let w = span.width();
        if used + w > width.saturating_sub(1) {
            let room = width.saturating_sub(used);
            spans.push(Span::styled(fit::ellipsis(&span.content, room), span.style));
            break;
        }
        used += w;
        spans.push(span);
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_footer_shows_every_key_at_80_columns() {
        for view in [View::Table, View::Detail, View::Flow] {
            let line = footer_line(footer_keys(view, false), 80);
            assert!(line.width() <= 80, "{view:?}: {line}");
            assert!(!line.to_string().contains('…'), "{view:?}: {line}");
        }
        let line = footer_line(footer_keys(View::Flow, true), 80);
        assert!(line.to_string().contains("Esc quit"), "{line}");
    }
}
