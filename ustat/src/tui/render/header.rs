//! The top line (view, scope, sort, losses), the notice line (an export, a warning), the
//! footer of keys, and the one-line summary of a terminal too small for anything else.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Paragraph, Wrap},
};

use super::{ACCENT, MIN_HEIGHT, MIN_WIDTH, WARN, badge};
use crate::{
    format,
    tui::app::{App, View},
};

pub(super) fn draw_tiny(frame: &mut Frame, area: Rect, app: &App) {
    let processes = app.rows().len();
    let text = format!(
        "ustat: {processes} processes; enlarge the terminal ({MIN_WIDTH}x{MIN_HEIGHT} at least); q quits"
    );
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

pub(super) fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let arrow = if app.descending { "▼" } else { "▲" };
    let mut spans = vec![
        badge(" ustat "),
        Span::raw(format!(
            " {} · {} processes · every {} · sort {} {arrow} · runtime {}",
            app.scope,
            app.rows().len(),
            format_interval(app.interval),
            app.sort.title(),
            app.runtime.unwrap_or("all"),
        )),
    ];
    if app.paused {
        spans.push(Span::styled(
            "  PAUSED",
            Style::new().fg(WARN).add_modifier(Modifier::BOLD),
        ));
    }
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
            spans.push(Span::styled(
                format!("  lost: {}", parts.join(", ")),
                Style::new().fg(WARN),
            ));
        }
    }
    frame.render_widget(Line::from(spans), area);
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
    let keys: &[(&str, &str)] = match app.view {
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
        View::Flow => &[
            ("q", "quit"),
            ("?", "help"),
            ("Esc", "back"),
            ("↑↓", "move"),
            ("End", "follow"),
            ("z", "fold"),
            ("t", "thread"),
            ("/ m", "filter"),
            ("x", "folded"),
            ("␣", "pause"),
        ],
    };
    let mut spans = Vec::new();
    for (key, what) in keys {
        spans.push(Span::styled(
            format!(" {key} "),
            Style::new().fg(Color::Black).bg(Color::Gray),
        ));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    frame.render_widget(Line::from(spans), area);
}
