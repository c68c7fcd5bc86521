//! Keys to actions: a pure function, and the help text that documents it (tested to agree).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::Action;

/// What the keys act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The table and the detail view.
    Dashboard,
    /// The flow view.
    Flow,
    /// Typing a flow filter.
    Typing,
}

/// The help overlay of the flow view.
pub const FLOW_HELP: &[(&str, &str)] = &[
    ("↑ ↓  k j", "move through the calls (stops following)"),
    ("PgUp PgDn", "move a page"),
    ("Home g", "the oldest call kept"),
    ("End G", "follow the newest call"),
    ("Enter z", "fold or unfold the call under the cursor"),
    (
        "t",
        "pick a thread to show (its live threads by name), or all",
    ),
    ("/", "filter by class (JVM) or file (Python) prefix"),
    ("m", "filter by method or function prefix"),
    (
        "+ -",
        "highlight calls slower / faster than twice the threshold",
    ),
    ("x", "write the call tree as folded stacks to a new file"),
    ("Space", "pause or resume (calls keep arriving)"),
    (
        "Esc ← Backspace",
        "back to the dashboard (quits `ustat --flow`)",
    ),
    ("Ctrl-U", "clear the filter being typed"),
    ("?  F1", "this help"),
    ("q  Ctrl-C", "quit"),
];

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
    ("f", "follow the method calls of the selected process"),
    ("o", "turn on the selected process's on-demand probes"),
    (
        "x",
        "write its sampled stacks as folded stacks to a new file",
    ),
    ("Space", "pause or resume the display (counting goes on)"),
    ("?  F1", "this help"),
    ("q  Ctrl-C", "quit"),
];

pub fn action(key: KeyEvent, mode: Mode) -> Action {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Action::Quit,
            // As in a shell: Ctrl-U clears what was typed.
            KeyCode::Char('u') if mode == Mode::Typing => Action::Clear,
            _ => Action::None,
        };
    }
    match mode {
        Mode::Typing => typing(key.code),
        Mode::Flow => flow(key.code).unwrap_or_else(|| dashboard(key.code)),
        Mode::Dashboard => dashboard(key.code),
    }
}

fn typing(code: KeyCode) -> Action {
    match code {
        KeyCode::Enter => Action::Commit,
        KeyCode::Esc => Action::Back,
        KeyCode::Backspace => Action::Erase,
        KeyCode::Char(c) => Action::Type(c),
        _ => Action::None,
    }
}

/// The keys that mean something else, or only something, in the flow view.
fn flow(code: KeyCode) -> Option<Action> {
    Some(match code {
        KeyCode::Enter | KeyCode::Char('z') => Action::Fold,
        KeyCode::Char('t') => Action::NextThread,
        KeyCode::Char('/') => Action::EditClass,
        KeyCode::Char('m') => Action::EditMethod,
        KeyCode::Char('+') => Action::Slower,
        KeyCode::Char('-') => Action::Faster,
        KeyCode::Char('x') => Action::ExportFolded,
        KeyCode::Right | KeyCode::Char('l') => Action::None,
        _ => return None,
    })
}

fn dashboard(code: KeyCode) -> Action {
    match code {
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
        KeyCode::Char('f') => Action::OpenFlow,
        KeyCode::Char('o') => Action::TraceOnDemand,
        KeyCode::Char('x') => Action::ExportFolded,
        KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('?') | KeyCode::F(1) => Action::ToggleHelp,
        _ => Action::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> Action {
        action(KeyEvent::new(code, KeyModifiers::NONE), Mode::Dashboard)
    }

    fn press_in(mode: Mode, code: KeyCode) -> Action {
        action(KeyEvent::new(code, KeyModifiers::NONE), mode)
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
            (KeyCode::Char('f'), Action::OpenFlow),
            (KeyCode::Char('o'), Action::TraceOnDemand),
            (KeyCode::Char(' '), Action::TogglePause),
            (KeyCode::Char('?'), Action::ToggleHelp),
            (KeyCode::F(1), Action::ToggleHelp),
            (KeyCode::Char('x'), Action::ExportFolded),
            (KeyCode::Char('z'), Action::None),
        ];
        for (code, expected) in table {
            assert_eq!(press(code), expected, "{code:?}");
        }
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(action(ctrl('c'), Mode::Dashboard), Action::Quit);
        assert_eq!(action(ctrl('c'), Mode::Typing), Action::Quit);
        assert_eq!(action(ctrl('q'), Mode::Dashboard), Action::None);
        assert_eq!(action(ctrl('u'), Mode::Typing), Action::Clear);
        assert_eq!(action(ctrl('u'), Mode::Flow), Action::None);
    }

    #[test]
    fn the_flow_key_table() {
        let table = [
            (KeyCode::Enter, Action::Fold),
            (KeyCode::Char('z'), Action::Fold),
            (KeyCode::Char('t'), Action::NextThread),
            (KeyCode::Char('/'), Action::EditClass),
            (KeyCode::Char('m'), Action::EditMethod),
            (KeyCode::Char('+'), Action::Slower),
            (KeyCode::Char('-'), Action::Faster),
            (KeyCode::Char('x'), Action::ExportFolded),
            (KeyCode::Char(' '), Action::TogglePause),
            (KeyCode::End, Action::Last),
            (KeyCode::Esc, Action::Back),
            (KeyCode::Char('q'), Action::Quit),
            (KeyCode::Right, Action::None),
        ];
        for (code, expected) in table {
            assert_eq!(press_in(Mode::Flow, code), expected, "{code:?}");
        }
        let typing = [
            (KeyCode::Char('q'), Action::Type('q')),
            (KeyCode::Char('/'), Action::Type('/')),
            (KeyCode::Backspace, Action::Erase),
            (KeyCode::Enter, Action::Commit),
            (KeyCode::Esc, Action::Back),
        ];
        for (code, expected) in typing {
            assert_eq!(press_in(Mode::Typing, code), expected, "{code:?}");
        }
    }

    /// Every single-character key the help names does something.
    #[test]
    fn the_help_names_only_keys_that_work() {
        for (mode, help) in [(Mode::Dashboard, HELP), (Mode::Flow, FLOW_HELP)] {
            help_keys_work(mode, help);
        }
    }

    fn help_keys_work(mode: Mode, help: &[(&str, &str)]) {
        for (keys, what) in help {
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
                    assert_ne!(press_in(mode, code), Action::None, "`{key}` ({what})");
                }
            }
        }
    }
}
