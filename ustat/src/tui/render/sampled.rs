//! The detail view's "Hot functions (sampled)" ("Hot methods" for a JVM): where a process's
//! CPU time went, from its sampled stacks since the dashboard first saw it — beside, never
//! mixed with, the exact call counts of "Top methods".

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Style, Stylize as _},
    text::Line,
    widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap},
};

use super::{ACCENT, WARN, fit};
use crate::{
    format, samples, sanitize,
    snapshot::{FrameKind, ProcessSnapshot},
    tui::{
        app::App,
        sampled::{MAX_STACKS, SampledSince, cpu_percent},
    },
};

/// The runtimes whose detail view has the section even when the process is not sampled, to
/// say why it is not: those ustat samples. Others leave the lines to their exact figures;
/// their CPU% cell says `–`.
const SAMPLED_RUNTIMES: [&str; 2] = ["python", "jvm"];

/// The section's height in the detail view of `process`: `None` where it has none, a few
/// lines where it says only why there is no function to list, a share of the rest where it
/// lists functions.
pub(super) fn height(app: &App, process: &ProcessSnapshot) -> Option<Constraint> {
    match app.sampled.get(&process.pid) {
        Some(since) if since.samples > since.samples_not_kept && since.unreadable.is_none() => {
            Some(Constraint::Fill(3))
        }
        // The title, the rate and one line, which may wrap.
        Some(_) => Some(Constraint::Length(4)),
        None if SAMPLED_RUNTIMES.contains(&process.runtime) => Some(Constraint::Length(2)),
        None => None,
    }
}

pub(super) fn draw_hot(frame: &mut Frame, area: Rect, app: &App, process: &ProcessSnapshot) {
    let title = if process.runtime == "jvm" {
        " Hot methods (sampled, since attach) "
    } else {
        " Hot functions (sampled, since attach) "
    };
    let block = Block::new().borders(Borders::TOP).title(title.bold());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(since) = app.sampled.get(&process.pid) else {
        // A CPython or a JVM is sampled unless sampling is off or could not start (a warning
        // says why then).
        let text = match process.runtime {
            "python" | "jvm" => {
                "not sampled: sampling is off (--sample-hz 0) or could not start".to_string()
            }
            runtime => format!(
                "not sampled: ustat samples only CPython's and HotSpot's stacks, not {runtime}'s"
            ),
        };
        frame.render_widget(Paragraph::new(text).dim(), inner);
        return;
    };
    let interval = app.snapshot.as_ref().map_or(app.interval, |s| s.interval);
    let now = process
        .sampled
        .as_ref()
        .and_then(|s| cpu_percent(s, interval))
        .map_or("–".to_string(), format::percent);
    let mut notes = vec![Line::from(format!(
        "{} Hz, {} samples in {} interval{} · CPU now {now}% (100 = one CPU)",
        since.hz,
        format::count(since.samples),
        since.intervals,
        if since.intervals == 1 { "" } else { "s" }
    ))];
    if let Some(reason) = &since.unreadable {
        // The reason may quote the process's binary (a version string): untrusted text.
        let reason = sanitize::text(reason);
        notes.push(
            Line::from(format!(
                "! frames not readable: {reason}; samples are counted, no function is named"
            ))
            .fg(WARN),
        );
    } else if since.samples == 0 {
        notes.push(Line::from("no samples yet: not on a CPU since sampling began").dim());
    }
    if since.samples_not_kept > 0 {
        notes.push(
            Line::from(format!(
                "{} samples fell in stacks beyond the {} kept: in the percentages' total, not listed",
                format::count(since.samples_not_kept),
                format::count(MAX_STACKS as u64)
            ))
            .fg(WARN),
        );
    }
    let width = usize::from(inner.width.max(1));
    let notes_height: u16 = notes
        .iter()
        .map(|l| l.width().max(1).div_ceil(width) as u16)
        .sum();
    let [notes_area, table_area] =
        Layout::vertical([Constraint::Length(notes_height), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(notes).wrap(Wrap { trim: false }), notes_area);
    draw_functions(frame, table_area, since);
}

/// Functions by self share, with their total share and sample counts.
fn draw_functions(frame: &mut Frame, area: Rect, since: &SampledSince) {
    let hot = samples::functions(&since.as_sampled());
    if hot.is_empty() {
        return;
    }
    // Shares of every sample, also those in stacks not kept.
    let share = |percent: f64| format!("{percent:.1}");
    // The two named columns share what the four numbers (and the gaps) leave.
    let named = usize::from(area.width.saturating_sub(NUMBERS_WIDTH + 5) / 2);
    let rows: Vec<Row> = hot
        .iter()
        .take(usize::from(area.height.saturating_sub(1)))
        .map(|h| {
            let place = match (h.frame.kind, h.frame.file.as_str(), h.frame.line) {
                (FrameKind::Native, _, _) => "native".to_string(),
                (_, "", _) => "–".to_string(),
                (_, file, 0) => file.to_string(),
                (_, file, line) => format!("{file}:{line}"),
            };
            let place = keep_the_end(&place, named);
            let row = Row::new(vec![
                Cell::from(share(h.self_percent(since.samples))),
                Cell::from(share(h.total_percent(since.samples))),
                Cell::from(format::count(h.self_samples)),
                Cell::from(format::count(h.total_samples)),
                // A name cut short says so (Java's parameter lists run long).
                Cell::from(fit::ellipsis(&h.frame.function, named)),
                Cell::from(place),
            ]);
            if h.frame.kind == FrameKind::Unknown {
                row.dim()
            } else {
                row
            }
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ],
    )
    .header(
        Row::new(["self%", "total%", "self", "total", "function", "file:line"])
            .style(Style::new().fg(ACCENT)),
    );
    frame.render_widget(table, area);
}

/// The widths of the four number columns.
const NUMBERS_WIDTH: u16 = 6 + 7 + 6 + 6;

/// `text` in at most `width` characters, its end kept: a path's file name and line matter
/// more than its first directories.
fn keep_the_end(text: &str, width: usize) -> String {
    let chars = text.chars().count();
    if chars <= width || width == 0 {
        return text.to_string();
    }
    let tail: String = text.chars().skip(chars - (width - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::keep_the_end;

    #[test]
    fn long_paths_keep_their_file_name_and_line() {
        assert_eq!(
            keep_the_end("/srv/app/handlers.py:12", 15),
            "…handlers.py:12"
        );
        assert_eq!(keep_the_end("app.py:3", 14), "app.py:3");
    }
}
