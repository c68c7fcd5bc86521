//! The help overlay: every key of the current view.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Style, Stylize as _},
    text::{Line, Span},
    widgets::{Block, Clear, Paragraph},
};

use super::ACCENT;

pub(super) fn draw_help(frame: &mut Frame, area: Rect, help: &[(&str, &str)]) {
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
