//! Drawing. Reads `App`; changes only view state (the page size for PgUp/PgDn).

use ratatui::{
    Frame,
    layout::{Alignment, Constraint, Layout, Rect},
    style::{Color, Modifier, Style, Stylize as _},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState, Wrap},
};
use ustat_common::category;

use super::{
    app::{App, Column, View},
    format,
    keys::{FLOW_HELP, HELP},
};
use crate::snapshot::{ProcessSnapshot, Ranked};

/// Below this, only a one-line summary fits.
const MIN_WIDTH: u16 = 40;
const MIN_HEIGHT: u16 = 8;

pub(super) const ACCENT: Color = Color::Cyan;
const WARN: Color = Color::Yellow;

pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        draw_tiny(frame, area, app);
        return;
    }
    let [header, body, notice, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, app);
    match app.view {
        View::Table => draw_table(frame, body, app),
        View::Detail => match app.selected_process() {
            Some(process) => draw_detail(frame, body, app, process),
            None => draw_table(frame, body, app),
        },
        View::Flow => super::flow_ui::draw(frame, body, app),
    }
    draw_notice(frame, notice, app);
    draw_footer(frame, footer, app);
    if app.help {
        let help = if app.view == View::Flow {
            FLOW_HELP
        } else {
            HELP
        };
        draw_help(frame, area, help);
    }
}

fn draw_tiny(frame: &mut Frame, area: Rect, app: &App) {
    let processes = app.rows().len();
    let text = format!(
        "ustat: {processes} processes; enlarge the terminal ({MIN_WIDTH}x{MIN_HEIGHT} at least); q quits"
    );
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

/// The view's name at the start of its header line.
pub(super) fn badge(name: &'static str) -> Span<'static> {
    Span::styled(
        name,
        Style::new()
            .fg(Color::Black)
            .bg(ACCENT)
            .add_modifier(Modifier::BOLD),
    )
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
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
fn draw_notice(frame: &mut Frame, area: Rect, app: &App) {
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

fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
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

fn rate_cell(app: &App, process: &ProcessSnapshot, count: u64, category: u32) -> Cell<'static> {
    if process.untraced(category) {
        return Cell::from("–").dim();
    }
    let interval = app.snapshot.as_ref().map_or(app.interval, |s| s.interval);
    Cell::from(format::rate(format::per_second(count, interval)))
}

fn draw_table(frame: &mut Frame, area: Rect, app: &mut App) {
    let rows = app.rows();
    if rows.is_empty() {
        draw_empty(frame, area, app);
        return;
    }
    let arrow = if app.descending { "▼" } else { "▲" };
    let header = Row::new(Column::ALL.iter().map(|c| {
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
            let i = &p.interval;
            let command = if p.exited {
                format!("{} (exited)", p.command)
            } else {
                p.command.clone()
            };
            let pause = p.pause.map_or("–".to_string(), |s| format::nanos(s.p99_ns));
            let row = Row::new(vec![
                Cell::from(p.pid.to_string()),
                Cell::from(command),
                Cell::from(p.runtime),
                rate_cell(app, p, i.gc_count, category::GC),
                Cell::from(pause),
                rate_cell(app, p, i.class_loaded, category::CLASS_LOADED),
                rate_cell(app, p, i.threads_started, category::THREAD_STARTED),
                rate_cell(app, p, i.objects_allocated, category::OBJECT_ALLOC),
                rate_cell(app, p, i.method_calls, category::METHOD_CALL),
            ]);
            if p.exited { row.dim() } else { row }
        })
        .collect();
    let widths = [
        Constraint::Length(8),
        Constraint::Min(12),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(9),
    ];
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

fn draw_detail(frame: &mut Frame, area: Rect, app: &App, process: &ProcessSnapshot) {
    let title = format!(
        " {} · PID {} · {} · {} threads{} ",
        process.command,
        process.pid,
        process.runtime,
        process.threads_live,
        if process.exited { " · exited" } else { "" }
    );
    let block = Block::bordered()
        .title(title.bold())
        .border_style(Style::new().fg(ACCENT));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    // Each note wraps to as many lines as it needs.
    let width = usize::from(inner.width.max(1));
    let missing: u16 = process
        .missing
        .iter()
        .map(|m| (m.text.chars().count() + 2).div_ceil(width) as u16)
        .sum();
    let [notes, upper, lower, threads] = Layout::vertical([
        Constraint::Length(missing),
        Constraint::Length(8),
        Constraint::Min(4),
        Constraint::Length(3),
    ])
    .areas(inner);
    let notes_text: Vec<Line> = process
        .missing
        .iter()
        .map(|m| Line::from(format!("! {}", m.text)).fg(WARN))
        .collect();
    frame.render_widget(Paragraph::new(notes_text).wrap(Wrap { trim: false }), notes);

    let [charts, pauses] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(upper);
    draw_charts(frame, charts, app, process);
    draw_pauses(frame, pauses, process);

    let [methods, allocations] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(lower);
    let interval = app.snapshot.as_ref().map_or(app.interval, |s| s.interval);
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

fn draw_charts(frame: &mut Frame, area: Rect, app: &App, process: &ProcessSnapshot) {
    let block = Block::new()
        .borders(Borders::RIGHT)
        .title(" Per interval (newest right) ".bold());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(history) = app.history.get(&process.pid) else {
        return;
    };
    let series = [
        ("GC", &history.gc, category::GC),
        ("alloc", &history.allocations, category::OBJECT_ALLOC),
        ("calls", &history.calls, category::METHOD_CALL),
        ("classes", &history.classes, category::CLASS_LOADED),
        ("threads", &history.threads, category::THREAD_STARTED),
    ];
    let rows = Layout::vertical(series.iter().map(|_| Constraint::Length(1))).split(inner);
    for ((label, values, cat), row) in series.iter().zip(rows.iter()) {
        let [name, chart, last] = Layout::horizontal([
            Constraint::Length(8),
            Constraint::Min(1),
            Constraint::Length(7),
        ])
        .areas(*row);
        frame.render_widget(Span::raw(*label), name);
        if process.untraced(*cat) {
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

fn draw_pauses(frame: &mut Frame, area: Rect, process: &ProcessSnapshot) {
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
        lines.push(Line::from(format!(
            "imports: {} since attach, {} in all",
            format::count(total.imports),
            format::nanos(total.import_ns)
        )));
    }
    if total.http_requests > 0 {
        lines.push(Line::from(format!(
            "HTTP requests: {} since attach",
            format::count(total.http_requests)
        )));
    }
    for pool in &process.pools {
        lines.push(Line::from(format!(
            "{}: {} GCs, {} freed",
            pool.name,
            pool.gcs,
            format::signed_bytes(pool.reclaimed_bytes)
        )));
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
        let text = process
            .missing
            .iter()
            .find(|m| m.categories.contains(&category))
            .map_or_else(
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
    let rows: Vec<Row> = entries
        .iter()
        .map(|e| {
            let second = if with_bytes {
                format::bytes(format::per_second(e.interval_value, interval) as u64)
            } else {
                format::count(e.total)
            };
            Row::new(vec![
                Cell::from(format::rate(format::per_second(e.interval, interval))),
                Cell::from(second),
                Cell::from(e.name.clone()),
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

fn draw_help(frame: &mut Frame, area: Rect, help: &[(&str, &str)]) {
    let width = 76.min(area.width);
    let height = (help.len() as u16 + 4).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = help
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!("{keys:>16}  "), Style::new().fg(ACCENT).bold()),
                Span::raw(*what),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(" Keys (Esc closes) ".bold())
                .border_style(Style::new().fg(ACCENT)),
        ),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend};
    use ustat_runtimes::Missing;

    use super::*;
    use crate::{
        snapshot::{GcKind, PauseStats, PoolUsage},
        tui::app::{
            Action, App,
            tests::{process, snapshot},
        },
    };

    fn ranked(name: &str, interval: u64, total: u64, bytes: u64) -> Ranked {
        Ranked {
            name: name.into(),
            interval,
            total,
            interval_value: bytes,
            total_value: bytes * 10,
            timing: None,
            timing_total: None,
        }
    }

    /// Three processes: a JVM with everything on, a JVM without the extra probes, and one
    /// whose command tried to smuggle an escape sequence (sanitized by the source).
    fn busy_app() -> App {
        let mut app = App::new(
            std::time::Duration::from_secs(1),
            "all runtime processes".into(),
        );
        let mut rich = process(4242, "jvm", "java", 3, 2_100_000);
        rich.interval.class_loaded = 7;
        rich.interval.threads_started = 2;
        rich.interval.objects_allocated = 15_300;
        rich.interval.bytes_allocated = 2_400_000;
        rich.pause = Some(PauseStats {
            count: 3,
            p50_ns: 950_000,
            p99_ns: 2_650_000,
            max_ns: 2_650_000,
        });
        rich.pause_total = Some(PauseStats {
            count: 30,
            p50_ns: 900_000,
            p99_ns: 3_100_000,
            max_ns: 4_000_000,
        });
        rich.gc_kinds = vec![
            GcKind {
                kind: "major",
                interval: 1,
                total: 4,
                pause_ns_total: 0,
                collected_total: 0,
            },
            GcKind {
                kind: "minor",
                interval: 2,
                total: 26,
                pause_ns_total: 0,
                collected_total: 0,
            },
        ];
        rich.pools = vec![PoolUsage {
            name: "Copy: Eden Space".into(),
            gcs: 2,
            reclaimed_bytes: 64 << 20,
        }];
        rich.top_methods = vec![
            ranked("Workload.marker", 2_000_000, 9_000_000, 0),
            ranked("java.lang.Thread.sleep", 1000, 4000, 0),
            ranked("java.lang.String.hashCode", 12, 91, 0),
        ];
        rich.top_allocations = vec![
            ranked("[B", 9000, 90_000, 1_200_000),
            ranked("java.lang.String", 6300, 63_000, 151_200),
        ];
        rich.threads = vec![
            "java".into(),
            "VM Thread".into(),
            "C2 CompilerThre".into(),
            "Thread-0".into(),
        ];
        rich.threads_live = 4;
        let mut plain = process(5151, "jvm", "kafka", 0, 0);
        plain.missing = vec![
            Missing {
                categories: vec![category::METHOD_CALL],
                text: "method calls: not traced; start the JVM with -XX:+ExtendedDTraceProbes"
                    .into(),
            },
            Missing {
                categories: vec![category::OBJECT_ALLOC],
                text: "allocations: not traced; start the JVM with -XX:+ExtendedDTraceProbes"
                    .into(),
            },
        ];
        let odd = process(6000, "jvm", "?[2Jevil", 1, 10);
        let mut python = process(7070, "python", "gunicorn", 5, 0);
        python.gc_kinds = vec![
            GcKind {
                kind: "gen0",
                interval: 4,
                total: 40,
                pause_ns_total: 0,
                collected_total: 0,
            },
            GcKind {
                kind: "gen2",
                interval: 1,
                total: 5,
                pause_ns_total: 0,
                collected_total: 12_345,
            },
        ];
        python.missing = vec![
            Missing {
                categories: vec![category::IMPORT],
                text: "imports: not traced: this CPython was built without USDT probes (--with-dtrace)".into(),
            },
            Missing {
                categories: vec![category::METHOD_CALL],
                text: "function calls: not traced: this CPython has no function__entry probe".into(),
            },
        ];
        let mut node = process(8080, "node", "node", 2, 0);
        node.total.http_requests = 1234;
        let all = vec![rich, plain, odd, python, node];
        for _ in 0..20 {
            app.apply(snapshot(all.clone()));
        }
        let mut last = snapshot(all);
        last.warnings = vec![
            "cannot attach hotspot:object__alloc in /usr/lib/jvm/x/libjvm.so: not permitted".into(),
        ];
        app.apply(last);
        app
    }

    fn render(app: &mut App, width: u16, height: u16) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| draw(frame, app)).unwrap();
        terminal
    }

    #[test]
    fn table() {
        let mut app = busy_app();
        insta::assert_snapshot!(render(&mut app, 100, 12).backend());
    }

    #[test]
    fn detail_of_a_jvm_with_every_probe() {
        let mut app = busy_app();
        app.update(Action::OpenDetail);
        insta::assert_snapshot!(render(&mut app, 110, 30).backend());
    }

    #[test]
    fn detail_of_a_jvm_without_the_flags_says_why() {
        let mut app = busy_app();
        app.selected = Some(5151);
        app.update(Action::OpenDetail);
        insta::assert_snapshot!(render(&mut app, 110, 30).backend());
    }

    #[test]
    fn detail_of_a_python_without_usdt_says_why() {
        let mut app = busy_app();
        app.selected = Some(7070);
        app.update(Action::OpenDetail);
        insta::assert_snapshot!(render(&mut app, 110, 30).backend());
    }

    /// The flow view after a() -> b, b and a recursive d(), with per-method timing.
    fn flow_app() -> App {
        use crate::{
            flow::{FlowLine, Kind},
            snapshot::Timing,
            tui::flow::FlowView,
        };
        let mut app = busy_app();
        let mut view = FlowView::new(4242, "java (PID 4242, jvm)".into());
        let calls = [
            (Kind::Entry, 0, 1, 0),
            (Kind::Entry, 1, 2, 0),
            (Kind::Return, 1, 2, 4_000),
            (Kind::Entry, 1, 2, 0),
            (Kind::Return, 1, 2, 2_500_000),
            (Kind::Return, 0, 1, 2_600_000),
            (Kind::Entry, 0, 3, 0),
            (Kind::Entry, 1, 3, 0),
            (Kind::Return, 1, 3, 2_000),
            (Kind::Unwound, 0, 3, 9_000),
        ];
        view.push(
            calls
                .iter()
                .enumerate()
                .map(|(i, &(kind, depth, method, duration_ns))| FlowLine {
                    seq: i as u64,
                    ts_ns: 1_000_000_000 + i as u64 * 1_500,
                    pid: 4242,
                    tid: 4243,
                    kind,
                    depth,
                    method,
                    duration_ns,
                })
                .collect(),
        );
        for (method, name) in [(1, "Tree.a"), (2, "Tree.b"), (3, "Tree.d")] {
            view.labels.insert(method, name.into());
        }
        app.selected = Some(4242);
        app.flow_opened(Ok(view));
        if let Some(snapshot) = &mut app.snapshot {
            let timing = Timing {
                calls: 2,
                total_ns: 2_504_000,
                self_ns: 2_504_000,
                mean_ns: 1_252_000,
                p99_ns: 2_500_000,
            };
            snapshot.processes[0].top_methods[0].timing_total = Some(timing);
        }
        app
    }

    #[test]
    fn flow_view() {
        let mut app = flow_app();
        insta::assert_snapshot!(render(&mut app, 100, 24).backend());
    }

    #[test]
    fn flow_view_folded_and_filtering() {
        let mut app = flow_app();
        app.update(Action::First);
        app.update(Action::Fold);
        app.update(Action::EditClass);
        for c in "Tree".chars() {
            app.update(Action::Type(c));
        }
        insta::assert_snapshot!(render(&mut app, 100, 24).backend());
    }

    #[test]
    fn help_overlay() {
        let mut app = busy_app();
        app.update(Action::ToggleHelp);
        insta::assert_snapshot!(render(&mut app, 100, 20).backend());
    }

    #[test]
    fn empty_host() {
        let mut app = App::new(
            std::time::Duration::from_secs(1),
            "all runtime processes".into(),
        );
        app.apply(snapshot(vec![]));
        insta::assert_snapshot!(render(&mut app, 100, 10).backend());
    }

    #[test]
    fn a_20_by_5_terminal() {
        let mut app = busy_app();
        insta::assert_snapshot!(render(&mut app, 20, 5).backend());
    }

    #[test]
    fn no_size_panics() {
        for view in [
            Action::Back,
            Action::OpenDetail,
            Action::ToggleHelp,
            Action::OpenFlow,
        ] {
            let mut app = if view == Action::OpenFlow {
                flow_app()
            } else {
                busy_app()
            };
            app.update(view);
            for width in (0..130).step_by(13) {
                for height in (0..45).step_by(5) {
                    render(&mut app, width, height);
                }
            }
        }
    }
}
