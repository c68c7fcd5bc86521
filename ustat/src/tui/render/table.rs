//! The process table: one row per traced process, a column per figure, and what to show
//! when there is no process yet.

use ratatui::{
    Frame,
    layout::{Alignment, Constraint, Rect},
    style::{Modifier, Style, Stylize as _},
    text::Line,
    widgets::{Block, Borders, Cell, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap},
};

use super::{ACCENT, WARN, fit};
use crate::{
    format,
    snapshot::ProcessSnapshot,
    tui::{
        app::{App, Column},
        sampled::cpu_percent,
    },
};

/// A process's cell in a column `width` wide: `–` where its category is not traced in the
/// process; a command cut to the width ends in `…`.
fn cell(column: Column, width: usize, app: &App, p: &ProcessSnapshot) -> Cell<'static> {
    match column {
        // `!`: the kernel refused one of its probes; the detail view says which and why.
        Column::Pid if !p.refused.is_empty() => Cell::from(Line::from(vec![
            p.pid.to_string().into(),
            "!".fg(WARN).bold(),
        ])),
        Column::Pid => Cell::from(p.pid.to_string()),
        Column::Command if p.exited => {
            // What tells the row apart stays; the command is cut before "(exited)" is.
            let suffix = " (exited)";
            let command = fit::ellipsis(&p.command, width.saturating_sub(suffix.len()));
            Cell::from(format!("{command}{suffix}"))
        }
        Column::Command => Cell::from(fit::ellipsis(&p.command, width)),
        Column::Runtime => Cell::from(p.runtime),
        Column::CpuPercent => {
            let interval = app.snapshot.as_ref().map_or(app.interval, |s| s.interval);
            match p.sampled.as_ref().and_then(|s| cpu_percent(s, interval)) {
                Some(percent) => Cell::from(format::percent(percent)),
                None => Cell::from("–").dim(),
            }
        }
        Column::PauseP99 => {
            Cell::from(p.pause.map_or("–".to_string(), |s| format::nanos(s.p99_ns)))
        }
        Column::Rate(category) => {
            if p.untraced(category.raw()) {
                return Cell::from("–").dim();
            }
            // GCs as collections: a ZGC cycle once, not once per pause.
            let count = if category == crate::category::Category::Gc {
                p.collections()
            } else {
                category.count(&p.interval).unwrap_or(0)
            };
            let interval = app.snapshot.as_ref().map_or(app.interval, |s| s.interval);
            Cell::from(format::rate(format::per_second(count, interval)))
        }
    }
}

/// The selection marker's width in front of every row.
const MARKER: u16 = 1;

/// The columns that fit `width`, in display order, each with its width: every column when
/// they fit, else the least important go (`Column::priority`) until the rest fit with the
/// command at its least; the command takes what is left. The `sorted` column has room for
/// its arrow.
pub(super) fn layout(columns: &[Column], sorted: Column, width: u16) -> Vec<(Column, u16)> {
    let width_of = |c: Column| c.width() + u16::from(c == sorted && c != Column::Command);
    let mut shown: Vec<Column> = columns.to_vec();
    let needed = |shown: &[Column]| -> u16 {
        let cells: u16 = shown.iter().map(|c| width_of(*c)).sum();
        cells + shown.len().saturating_sub(1) as u16 + MARKER
    };
    while needed(&shown) > width {
        let Some(least) = shown
            .iter()
            .enumerate()
            .filter(|(_, c)| c.priority() < u8::MAX)
            .min_by_key(|(i, c)| (c.priority(), std::cmp::Reverse(*i)))
            .map(|(i, _)| i)
        else {
            break;
        };
        shown.remove(least);
    }
    let spare = width.saturating_sub(needed(&shown));
    shown
        .into_iter()
        .map(|c| match c {
            Column::Command => (c, c.width() + spare),
            _ => (c, width_of(c)),
        })
        .collect()
}

pub(super) fn draw_table(frame: &mut Frame, area: Rect, app: &mut App) {
    let rows = app.rows();
    if rows.is_empty() {
        draw_empty(frame, area, app);
        return;
    }
    let columns = layout(&Column::ALL, app.sort, area.width);
    let arrow = if app.descending { "▼" } else { "▲" };
    // The sorted column is underlined; its arrow shows where the title leaves room.
    let header = Row::new(columns.iter().map(|(c, width)| {
        let title = c.title();
        if *c == app.sort {
            let text = if fit::width(title) < usize::from(*width) {
                format!("{title}{arrow}")
            } else {
                title.to_string()
            };
            Cell::from(text).underlined()
        } else {
            Cell::from(title)
        }
    }))
    .style(Style::new().add_modifier(Modifier::BOLD).fg(ACCENT));
    let body: Vec<Row> = rows
        .iter()
        .map(|p| {
            let row = Row::new(
                columns
                    .iter()
                    .map(|(c, width)| cell(*c, usize::from(*width), app, p)),
            );
            if p.exited { row.dim() } else { row }
        })
        .collect();
    let widths = columns.iter().map(|(_, width)| Constraint::Length(*width));
    let table = Table::new(body, widths)
        .header(header)
        .block(
            Block::new()
                .borders(Borders::TOP | Borders::BOTTOM)
                .border_style(Style::new().dim()),
        )
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(app.selected_index());
    app.page = usize::from(area.height.saturating_sub(3)).max(1);
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_empty(frame: &mut Frame, area: Rect, app: &App) {
    let runtimes: Vec<String> = ustat_runtimes::ALL
        .iter()
        .map(|r| format!("{} ({})", r.name, r.binary_hint))
        .collect();
    let lines = if app.snapshot.is_none() {
        vec![Line::from("Waiting for the first interval…")]
    } else if app.runtime.is_some() {
        vec![Line::from(format!(
            "No {} processes; press r for the next runtime.",
            app.runtime.unwrap_or("")
        ))]
    } else if app.scope.starts_with("PID") {
        vec![
            Line::from("The traced processes have exited."),
            Line::from("q quits."),
        ]
    } else {
        vec![
            Line::from("No runtime processes on this host yet.").bold(),
            Line::from(""),
            Line::from(format!(
                "ustat finds processes by the runtime they load: {}.",
                runtimes.join(", ")
            )),
            Line::from("Start one and it shows up within one interval, or give -p PID."),
        ]
    };
    let block = Block::new()
        .borders(Borders::TOP | Borders::BOTTOM)
        .border_style(Style::new().dim());
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        area,
    );
}
