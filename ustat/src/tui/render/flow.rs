//! The flow view: the calls as an indented tree, the per-method timing of the
//! process, the filter being typed.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style, Stylize as _},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap},
};

use super::{ACCENT, badge, fit};
use crate::{
    flow::Kind,
    format,
    snapshot::Ranked,
    tui::{
        app::App,
        flow::{Field, FlowView},
    },
};

const SLOW: Color = Color::Red;

/// Rows of the timing table under the calls.
const TIMING_ROWS: u16 = 6;

pub fn draw(frame: &mut Frame, area: Rect, app: &mut App) {
    let page = usize::from(area.height.saturating_sub(TIMING_ROWS + 4)).max(1);
    app.page = page;
    let timing = app
        .flow
        .as_ref()
        .and_then(|f| {
            app.snapshot
                .as_ref()?
                .processes
                .iter()
                .find(|p| p.pid == f.pid)
        })
        .map(|p| p.top_methods.clone())
        .unwrap_or_default();
    let Some(flow) = &mut app.flow else { return };
    let [status, body, stats, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(TIMING_ROWS + 2),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_status(frame, status, flow);
    draw_calls(frame, body, flow);
    if flow.picking.is_some() {
        draw_picker(frame, body, flow);
    }
    draw_timing(frame, stats, &timing);
    draw_input(frame, input, flow);
}

fn draw_status(frame: &mut Frame, area: Rect, flow: &FlowView) {
    let thread = match flow.thread {
        None => "all".to_string(),
        Some(tid) => match flow.thread_name(tid) {
            Some(name) => format!("{tid} {name}"),
            None => tid.to_string(),
        },
    };
    let filter = |prefix: &str| {
        if prefix.is_empty() {
            "any".to_string()
        } else {
            format!("{prefix}*")
        }
    };
    // The live count, then what the keys change, the process (chosen before) last: a narrow
    // terminal cuts the end, and a threshold or filter just set must stay in sight.
    let text = format!(
        " {} {} · slow ≥ {} · thread {thread} · {} {} · {} {} · {}",
        format::count(flow.calls),
        if flow.calls == 1 { "call" } else { "calls" },
        format::nanos(flow.slow_ns),
        flow.slots[0],
        filter(&flow.class_prefix),
        flow.slots[1],
        filter(&flow.method_prefix),
        flow.title,
    );
    let mut after = Vec::new();
    if flow.dropped > 0 {
        after.push(Span::styled(
            format!(" · {} dropped", format::count(flow.dropped)),
            Style::new().fg(Color::Yellow),
        ));
    }
    after.push(if flow.paused {
        Span::styled("  PAUSED", Style::new().fg(Color::Yellow).bold())
    } else if flow.follow {
        Span::styled("  live", Style::new().dim())
    } else {
        Span::styled("  scrolled back (End: live)", Style::new().dim())
    });
    // The badge and the state always show; the description is cut with `…`.
    frame.render_widget(
        fit::line(vec![badge(" flow ")], &text, after, usize::from(area.width)),
        area,
    );
}

/// The thread picker over the calls: all threads, then each live one, oldest first, by id
/// and name.
fn draw_picker(frame: &mut Frame, area: Rect, flow: &FlowView) {
    let Some(row) = flow.picking else { return };
    let mut rows = vec!["all threads".to_string()];
    rows.extend(
        flow.live_threads
            .iter()
            .map(|(tid, name)| format!("{tid:>7}  {name}")),
    );
    let width = (rows.iter().map(|r| fit::width(r)).max().unwrap_or(0) + 4)
        .clamp(38, usize::from(area.width)) as u16;
    let height = (rows.len() as u16 + 2).min(area.height);
    let inner_height = usize::from(height.saturating_sub(2)).max(1);
    // The selected row stays in the box.
    let start = (row + 1).saturating_sub(inner_height);
    let lines: Vec<Line> = rows
        .into_iter()
        .enumerate()
        .skip(start)
        .take(inner_height)
        .map(|(i, text)| {
            let line = Line::from(fit::ellipsis(&text, usize::from(width.saturating_sub(2))));
            if i == row {
                line.patch_style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                line
            }
        })
        .collect();
    let popup = Rect {
        x: area.x + area.width.saturating_sub(width) / 2,
        y: area.y,
        width,
        height,
    };
    frame.render_widget(ratatui::widgets::Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(" Threads: Enter shows, Esc closes ")
                .border_style(Style::new().fg(ACCENT)),
        ),
        popup,
    );
}

fn draw_calls(frame: &mut Frame, area: Rect, flow: &mut FlowView) {
    let visible_count = flow.visible().len();
    flow.clamp_cursor(visible_count);
    let height = usize::from(area.height);
    // The window keeps the cursor in view, at the bottom while following.
    let start = flow.window_top(height);
    let visible = flow.visible();
    if visible.is_empty() {
        let text = if flow.received == 0 {
            vec![Line::from("Waiting for calls…"), Line::from(flow.hint)]
        } else {
            vec![Line::from("No calls of this thread kept.")]
        };
        frame.render_widget(Paragraph::new(text).dim().wrap(Wrap { trim: true }), area);
        return;
    }
    let origin = flow.origin_ns.unwrap_or(0);
    let lines: Vec<Line> = visible
        .iter()
        .enumerate()
        .skip(start)
        .take(height)
        .map(|(index, line)| {
            let time = format!(
                "{:>10.6} {:>7} ",
                line.ts_ns.saturating_sub(origin) as f64 / 1e9,
                line.tid
            );
            let indent = "  ".repeat(line.depth as usize);
            let name = flow.label(line.method);
            let (text, style) = match line.kind {
                Kind::Entry if flow.folded.contains(&line.seq) => {
                    (format!("{indent}-> {name} ▸ folded"), Style::new().italic())
                }
                Kind::Entry => (format!("{indent}-> {name}"), Style::new()),
                Kind::Return | Kind::Unwound => {
                    let unwound = if line.kind == Kind::Unwound {
                        " (unwound)"
                    } else {
                        ""
                    };
                    let style = if line.duration_ns >= flow.slow_ns {
                        Style::new().fg(SLOW).bold()
                    } else {
                        Style::new()
                    };
                    (
                        format!(
                            "{indent}<- {name} {}{unwound}",
                            format::nanos(line.duration_ns)
                        ),
                        style,
                    )
                }
            };
            let room = usize::from(area.width).saturating_sub(fit::width(&time));
            let mut line = Line::from(vec![
                Span::styled(time, Style::new().dim()),
                Span::styled(fit::ellipsis(&text, room), style),
            ]);
            if index == flow.cursor {
                line = line.patch_style(Style::new().add_modifier(Modifier::REVERSED));
            }
            line
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_timing(frame: &mut Frame, area: Rect, methods: &[Ranked]) {
    let block = Block::new()
        .borders(Borders::TOP)
        .title(" Per method since the flow first opened (by self time) ".bold());
    let mut timed: Vec<&Ranked> = methods
        .iter()
        .filter(|m| m.timing_total.is_some_and(|t| t.calls > 0))
        .collect();
    timed.sort_by_key(|m| std::cmp::Reverse(m.timing_total.map_or(0, |t| t.self_ns)));
    if timed.is_empty() {
        frame.render_widget(
            Paragraph::new("no call has returned yet")
                .dim()
                .block(block),
            area,
        );
        return;
    }
    // The name takes what the five figures leave; a longer one ends in `…`.
    let name_width = usize::from(area.width.saturating_sub(8 + 4 * 9 + 5));
    let rows: Vec<Row> = timed
        .iter()
        .take(usize::from(TIMING_ROWS))
        .map(|m| {
            let t = m.timing_total.unwrap_or_default();
            Row::new(vec![
                Cell::from(format::count(t.calls)),
                Cell::from(format::nanos(t.total_ns)),
                Cell::from(format::nanos(t.self_ns)),
                Cell::from(format::nanos(t.mean_ns)),
                Cell::from(format::nanos(t.p99_ns)),
                Cell::from(fit::ellipsis(&m.name, name_width)),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Min(10),
    ];
    let table = Table::new(rows, widths)
        .header(
            Row::new(["calls", "total", "self", "mean", "p99", "method"])
                .style(Style::new().fg(ACCENT)),
        )
        .block(block);
    frame.render_widget(table, area);
}

fn draw_input(frame: &mut Frame, area: Rect, flow: &FlowView) {
    let line = match &flow.editing {
        Some((field, text)) => {
            let what = match field {
                Field::Class => "class (or file) prefix",
                Field::Method => "method (or function) prefix",
            };
            Line::from(vec![
                Span::styled(format!("{what}: "), Style::new().fg(ACCENT)),
                Span::raw(format!("{text}█")),
                Span::styled(
                    "  Enter applies, Esc cancels, Ctrl-U clears, empty shows all",
                    Style::new().dim(),
                ),
            ])
        }
        None => match &flow.status {
            Some(status) => Line::from(Span::styled(status.clone(), Style::new().fg(ACCENT))),
            None => Line::default(),
        },
    };
    frame.render_widget(line, area);
}
