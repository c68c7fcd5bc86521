//! The process table: one row per traced process, a column per figure, and what to show
//! when there is no process yet.

use ratatui::{
    Frame,
    layout::{Alignment, Constraint, Rect},
    style::{Modifier, Style, Stylize as _},
    text::Line,
    widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState, Wrap},
};

use super::{ACCENT, WARN};
use crate::{
    format,
    snapshot::ProcessSnapshot,
    tui::{
        app::{App, Column},
        sampled::cpu_percent,
    },
};

/// The columns that fit `width`: CPU% is the first to go when not all do.
fn columns(width: u16) -> Vec<Column> {
    // Each column, its one-space gap, and the selection mark.
    let all: u16 = Column::ALL.iter().map(|c| c.width() + 1).sum::<u16>() + 2;
    Column::ALL
        .into_iter()
        .filter(|c| width >= all || *c != Column::CpuPercent)
        .collect()
}

/// A process's cell in a column: `–` where its category is not traced in the process.
fn cell(column: Column, app: &App, p: &ProcessSnapshot) -> Cell<'static> {
    match column {
        // `!`: the kernel refused one of its probes; the detail view says which and why.
        Column::Pid if !p.refused.is_empty() => Cell::from(Line::from(vec![
            p.pid.to_string().into(),
            "!".fg(WARN).bold(),
        ])),
        Column::Pid => Cell::from(p.pid.to_string()),
        Column::Command if p.exited => Cell::from(format!("{} (exited)", p.command)),
        Column::Command => Cell::from(p.command.clone()),
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

pub(super) fn draw_table(frame: &mut Frame, area: Rect, app: &mut App) {
    let rows = app.rows();
    if rows.is_empty() {
        draw_empty(frame, area, app);
        return;
    }
    let arrow = if app.descending { "▼" } else { "▲" };
    let columns = columns(area.width);
    let header = Row::new(columns.iter().map(|c| {
        let title = if *c == app.sort {
            format!("{}{arrow}", c.title())
        } else {
            c.title().to_string()
        };
        Cell::from(title)
    }))
    .style(Style::new().add_modifier(Modifier::BOLD).fg(ACCENT));
    let body: Vec<Row> = rows
        .iter()
        .map(|p| {
            let row = Row::new(columns.iter().map(|c| cell(*c, app, p)));
            if p.exited { row.dim() } else { row }
        })
        .collect();
    let widths = columns.iter().map(|c| match c {
        Column::Command => Constraint::Min(c.width()),
        _ => Constraint::Length(c.width()),
    });
    let table = Table::new(body, widths)
        .header(header)
        .block(
            Block::new()
                .borders(Borders::TOP | Borders::BOTTOM)
                .border_style(Style::new().dim()),
        )
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ");
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
