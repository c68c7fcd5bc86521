//! One process in detail: what is not traced and why, rate charts, GC pauses, hot functions
//! from sampled stacks (`sampled.rs`), top methods and allocated classes, live threads.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Style, Stylize as _},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table, Wrap},
};
use ustat_common::category;

use super::{ACCENT, WARN, fit, sampled};
use crate::{
    category::CHARTED,
    format,
    snapshot::{ProcessSnapshot, Ranked},
    tui::app::App,
};

/// Entries of "Top methods" and "Top allocated classes" kept in sight beside the sampled
/// section.
const RANKED_KEPT: usize = 4;

/// Below this many lines, the lower half of the detail view is too small for both the
/// sampled functions and lists that only say they are not traced.
const SMALL_LOWER: u16 = 8;

pub(super) fn draw_detail(frame: &mut Frame, area: Rect, app: &App, process: &ProcessSnapshot) {
    let facts = format!(
        " · PID {} · {} · {}{} ",
        process.pid,
        process.runtime,
        format::plural(process.threads_live, "thread", "threads"),
        if process.exited { " · exited" } else { "" }
    );
    // The command is cut first: the PID and the rest always show.
    let room = usize::from(area.width.saturating_sub(2)).saturating_sub(fit::width(&facts) + 1);
    let title = format!(" {}{facts}", fit::ellipsis(&process.command, room));
    let block = Block::bordered()
        .title(title.bold())
        .border_style(Style::new().fg(ACCENT));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    // Each note wraps to as many lines as it needs.
    let width = usize::from(inner.width.max(1));
    // Refusals first: a probe the kernel refused, named with its file and reason.
    let refused: Vec<String> = process
        .refused
        .iter()
        .map(|m| format!("! refused: {}", m.text))
        .collect();
    let note_lines: Vec<String> = refused
        .into_iter()
        .chain(process.missing.iter().map(|m| format!("! {}", m.text)))
        .collect();
    let missing: u16 = note_lines
        .iter()
        .map(|line| line.chars().count().div_ceil(width) as u16)
        .sum();
    let [notes, upper, lower, threads] = Layout::vertical([
        Constraint::Length(missing),
        Constraint::Length(8),
        Constraint::Min(4),
        Constraint::Length(3),
    ])
    .areas(inner);
    let notes_text: Vec<Line> = note_lines
        .into_iter()
        .map(|n| Line::from(n).fg(WARN))
        .collect();
    frame.render_widget(Paragraph::new(notes_text).wrap(Wrap { trim: false }), notes);

    let [charts, pauses] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(upper);
    draw_charts(frame, charts, app, process);
    let interval = app.snapshot.as_ref().map_or(app.interval, |s| s.interval);
    draw_pauses(frame, pauses, process, interval);

    // Sampled shares above exact call counts: two answers, never mixed. On a small terminal
    // where neither exact list is traced (a JVM without its flags: the `!` lines above say
    // so), sampled functions, where there are some to list, take the lists' room.
    let nothing_exact =
        process.untraced(category::METHOD_CALL) && process.untraced(category::OBJECT_ALLOC);
    match sampled::height(app, process) {
        Some(Constraint::Fill(_)) if nothing_exact && lower.height < SMALL_LOWER => {
            sampled::draw_hot(frame, lower, app, process);
        }
        height => draw_exact_lists(frame, lower, app, process, height, interval),
    }

    let names = if process.threads.is_empty() {
        "–".to_string()
    } else {
        process.threads.join(", ")
    };
    frame.render_widget(
        Paragraph::new(names).wrap(Wrap { trim: true }).block(
            Block::new()
                .borders(Borders::TOP)
                .title(format!(" Threads ({} live) ", process.threads_live)),
        ),
        threads,
    );
}

/// "Top methods" and "Top allocated classes", under the sampled section where there is one
/// (`sampled`: its height). The exact counts keep room for their first few entries (title,
/// header, rows): on a small terminal the sampled shares give way, as they are an estimate
/// and the counts are not.
fn draw_exact_lists(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    process: &ProcessSnapshot,
    sampled: Option<Constraint>,
    interval: std::time::Duration,
) {
    let area = if let Some(height) = sampled {
        let listed = process
            .top_methods
            .len()
            .max(process.top_allocations.len())
            .min(RANKED_KEPT) as u16;
        let room = Constraint::Min(if listed == 0 { 2 } else { listed + 2 });
        let [hot, ranked] = Layout::vertical([height, room]).areas(area);
        sampled::draw_hot(frame, hot, app, process);
        ranked
    } else {
        area
    };
    let [methods, allocations] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    draw_ranked(
        frame,
        methods,
        " Top methods ",
        &process.top_methods,
        interval,
        false,
        process,
        category::METHOD_CALL,
    );
    draw_ranked(
        frame,
        allocations,
        " Top allocated classes ",
        &process.top_allocations,
        interval,
        true,
        process,
        category::OBJECT_ALLOC,
    );
}

fn draw_charts(frame: &mut Frame, area: Rect, app: &App, process: &ProcessSnapshot) {
    let block = Block::new()
        .borders(Borders::RIGHT)
        .title(" Per interval (newest right) ".bold());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(history) = app.history.get(&process.pid) else {
        return;
    };
    let rows = Layout::vertical(CHARTED.iter().map(|_| Constraint::Length(1))).split(inner);
    for (category, row) in CHARTED.iter().zip(rows.iter()) {
        let values = history.of(*category);
        let [name, chart, last] = Layout::horizontal([
            Constraint::Length(8),
            Constraint::Min(1),
            Constraint::Length(7),
        ])
        .areas(*row);
        frame.render_widget(Span::raw(category.chart_label().unwrap_or("?")), name);
        if process.untraced(category.raw()) {
            frame.render_widget(Span::raw("not traced").dim(), chart);
            continue;
        }
        let width = usize::from(chart.width);
        let data: Vec<u64> = values
            .iter()
            .skip(values.len().saturating_sub(width))
            .copied()
            .collect();
        frame.render_widget(
            Sparkline::default()
                .data(&data)
                .style(Style::new().fg(ACCENT)),
            chart,
        );
        let newest = values.back().copied().unwrap_or(0);
        frame.render_widget(Span::raw(format!("{:>7}", format::count(newest))), last);
    }
}

fn pause_row(label: &'static str, stats: Option<crate::snapshot::PauseStats>) -> Row<'static> {
    match stats {
        None => Row::new(vec![
            Cell::from(label),
            Cell::from("0"),
            Cell::from("–"),
            Cell::from("–"),
            Cell::from("–"),
        ]),
        Some(s) => Row::new(vec![
            Cell::from(label),
            Cell::from(format::count(s.count)),
            Cell::from(format::nanos(s.p50_ns)),
            Cell::from(format::nanos(s.p99_ns)),
            Cell::from(format::nanos(s.max_ns)),
        ]),
    }
}

fn draw_pauses(
    frame: &mut Frame,
    area: Rect,
    process: &ProcessSnapshot,
    interval: std::time::Duration,
) {
    let block = Block::new()
        .title(" GC pauses ".bold())
        .padding(ratatui::widgets::Padding::horizontal(1));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [table_area, rest] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(inner);
    let table = Table::new(
        [
            pause_row("this interval", process.pause),
            pause_row("since attach", process.pause_total),
        ],
        [
            Constraint::Length(13),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
        ],
    )
    .header(Row::new(["", "GCs", "p50", "p99", "max"]).style(Style::new().fg(ACCENT)));
    frame.render_widget(table, table_area);
    let mut lines = Vec::new();
    if !process.collectors.is_empty() {
        let collectors: Vec<String> = process
            .collectors
            .iter()
            .map(|c| format!("{} {}", c.name, format::count(c.total)))
            .collect();
        lines.push(Line::from(format!(
            "collections: {} · pauses {} (since attach)",
            collectors.join(" · "),
            format::count(process.total.gc_count)
        )));
    }
    if !process.gc_kinds.is_empty() {
        let kinds: Vec<String> = process
            .gc_kinds
            .iter()
            .map(|k| match k.collected_total {
                0 => format!("{} {}", k.kind, format::count(k.total)),
                n => format!(
                    "{} {} ({} collected)",
                    k.kind,
                    format::count(k.total),
                    format::count(n)
                ),
            })
            .collect();
        lines.push(Line::from(format!("by kind: {}", kinds.join(" · "))));
    }
    let total = &process.total;
    if total.imports > 0 {
        let time = if process.untraced(category::IMPORT_TIME) {
            "their time not traced".to_string()
        } else {
            format!("{} in all", format::nanos(total.import_ns))
        };
        lines.push(Line::from(format!(
            "imports: {} since attach, {time}",
            format::count(total.imports),
        )));
    }
    if total.gc_sweeps > 0 {
        lines.push(Line::from(format!(
            "GC sweep: {} steps since attach, {} in all (pauses above are the mark phase)",
            format::count(total.gc_sweeps),
            format::nanos(total.gc_sweep_ns)
        )));
    }
    if !process.top_exceptions.is_empty() {
        let classes: Vec<String> = process
            .top_exceptions
            .iter()
            .take(5)
            .map(|e| format!("{} {}", e.name, format::count(e.total)))
            .collect();
        lines.push(Line::from(format!(
            "exceptions: {} since attach ({})",
            format::count(total.exceptions),
            classes.join(" · ")
        )));
    }
    if total.exceptions_caught > 0 || total.errors > 0 {
        lines.push(Line::from(format!(
            "exceptions caught: {} · errors: {} since attach",
            format::count(total.exceptions_caught),
            format::count(total.errors)
        )));
    }
    if total.requests > 0 {
        // php-fpm's requests: their rate now, and their mean duration.
        lines.push(Line::from(format!(
            "requests: {}/s, {} since attach, {} mean",
            format::rate(format::per_second(process.interval.requests, interval)),
            format::count(total.requests),
            format::nanos(total.request_ns / total.requests)
        )));
    }
    if total.http_requests > 0 {
        lines.push(Line::from(format!(
            "HTTP requests: {} since attach",
            format::count(total.http_requests)
        )));
    }
    for pool in &process.pools {
        // `manager: pool`; the pool and its figures first, so a narrow panel cuts the
        // manager's name, not them.
        let (manager, name) = pool.name.split_once(": ").unwrap_or(("", &pool.name));
        let text = format!(
            "{name}: {}, {} freed{}",
            format::plural(pool.gcs, "GC", "GCs"),
            format::signed_bytes(pool.reclaimed_bytes),
            if manager.is_empty() {
                String::new()
            } else {
                format!(" ({manager})")
            }
        );
        lines.push(Line::from(fit::ellipsis(&text, usize::from(rest.width))));
    }
    for monitor in &process.top_monitors {
        lines.push(Line::from(format!(
            "contended monitor: {} ({} waits)",
            monitor.name,
            format::count(monitor.total)
        )));
    }
    frame.render_widget(Paragraph::new(lines), rest);
}

#[allow(clippy::too_many_arguments)]
fn draw_ranked(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    entries: &[Ranked],
    interval: std::time::Duration,
    with_bytes: bool,
    process: &ProcessSnapshot,
    category: u32,
) {
    let block = Block::new().borders(Borders::TOP).title(title.bold());
    if process.untraced(category) {
        let text = process.why_untraced(category).map_or_else(
            || format!("not traced: {} has no such probes", process.runtime),
            |m| m.text.clone(),
        );
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .dim()
                .block(block),
            area,
        );
        return;
    }
    if entries.is_empty() {
        frame.render_widget(Paragraph::new("none yet").dim().block(block), area);
        return;
    }
    let header = if with_bytes {
        ["/s", "bytes/s", "class"]
    } else {
        ["/s", "total", "method"]
    };
    // The name takes what the two figures leave; a longer one ends in `…`.
    let name_width = usize::from(area.width.saturating_sub(7 + 9 + 2));
    let rows: Vec<Row> = entries
        .iter()
        .map(|e| {
            // Sizes the runtime cannot be trusted with: `–` (the notes above say why).
            let second = if with_bytes && process.bytes_untraced() {
                "–".to_string()
            } else if with_bytes {
                format::bytes(format::per_second(e.interval_value, interval) as u64)
            } else {
                format::count(e.total)
            };
            Row::new(vec![
                Cell::from(format::rate(format::per_second(e.interval, interval))),
                Cell::from(second),
                Cell::from(fit::ellipsis(&e.name, name_width)),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(header).style(Style::new().fg(ACCENT)))
    .block(block);
    frame.render_widget(table, area);
}
