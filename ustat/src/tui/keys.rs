//! Keys to actions: a pure function, and the help text that documents it (tested to agree).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::Action;

/// The help overlay: every key, and what it does.
pub const HELP: &[(&str, &str)] = &[
    ("↑ ↓  k j", "move the selection"),
    ("PgUp PgDn", "move a page"),
    ("Home End  g G", "first / last process"),
    ("Enter → l", "details of the selected process"),
    ("Esc ← Backspace", "back to the table"),
    ("s", "sort by the next column"),
    ("S", "reverse the sort order"),
    ("r", "show one runtime, the next, ... then all"),
    ("e", "write the current snapshot to a new CSV file"),
    ("Space", "pause or resume the display (counting goes on)"),
    ("?  F1", "this help"),
    ("q  Ctrl-C", "quit"),
];

pub fn action(key: KeyEvent) -> Action {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Action::Quit,
            _ => Action::None,
        };
    }
    match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::First,
        KeyCode::End | KeyCode::Char('G') => Action::Last,
        KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => Action::OpenDetail,
        KeyCode::Esc | KeyCode::Left | KeyCode::Backspace => Action::Back,
        KeyCode::Char('s') => Action::NextSort,
        KeyCode::Char('S') => Action::ReverseSort,
        KeyCode::Char('r') => Action::NextRuntime,
        KeyCode::Char('e') => Action::Export,
        KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('?') | KeyCode::F(1) => Action::ToggleHelp,
        _ => Action::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> Action {
        action(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn the_key_table() {
        let table = [
            (KeyCode::Char('q'), Action::Quit),
            (KeyCode::Up, Action::Up),
            (KeyCode::Char('k'), Action::Up),
            (KeyCode::Down, Action::Down),
            (KeyCode::Char('j'), Action::Down),
            (KeyCode::PageUp, Action::PageUp),
            (KeyCode::PageDown, Action::PageDown),
            (KeyCode::Home, Action::First),
            (KeyCode::Char('g'), Action::First),
            (KeyCode::End, Action::Last),
            (KeyCode::Char('G'), Action::Last),
            (KeyCode::Enter, Action::OpenDetail),
            (KeyCode::Right, Action::OpenDetail),
            (KeyCode::Char('l'), Action::OpenDetail),
            (KeyCode::Esc, Action::Back),
            (KeyCode::Left, Action::Back),
            (KeyCode::Backspace, Action::Back),
            (KeyCode::Char('s'), Action::NextSort),
            (KeyCode::Char('S'), Action::ReverseSort),
            (KeyCode::Char('r'), Action::NextRuntime),
            (KeyCode::Char('e'), Action::Export),
            (KeyCode::Char(' '), Action::TogglePause),
            (KeyCode::Char('?'), Action::ToggleHelp),
            (KeyCode::F(1), Action::ToggleHelp),
            (KeyCode::Char('x'), Action::None),
        ];
        for (code, expected) in table {
            assert_eq!(press(code), expected, "{code:?}");
        }
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Action::Quit
        );
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            Action::None
        );
    }

    /// Every single-character key the help names does something.
    #[test]
    fn the_help_names_only_keys_that_work() {
        for (keys, what) in HELP {
            for key in keys.split_whitespace() {
                let mut chars = key.chars();
                if let (Some(c), None) = (chars.next(), chars.next()) {
                    let code = match c {
                        '↑' => KeyCode::Up,
                        '↓' => KeyCode::Down,
                        '→' => KeyCode::Right,
                        '←' => KeyCode::Left,
                        c => KeyCode::Char(c),
                    };
                    assert_ne!(press(code), Action::None, "`{key}` ({what})");
                }
            }
        }
    }
}
