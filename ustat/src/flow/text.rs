//! The flow as plain text, one line per event:
//! `TIME_NS PID TID  -> Class.method` and `... <- Class.method 1.25ms`, indented by depth.

use super::{FlowLine, Kind};
use crate::format;

/// One event as a line of text; `label` is the method's name.
pub fn line(event: &FlowLine, label: &str) -> String {
    let indent = "  ".repeat(event.depth as usize);
    match event.kind {
        Kind::Entry => format!(
            "{} {} {} {indent}-> {label}",
            event.ts_ns, event.pid, event.tid
        ),
        Kind::Return => format!(
            "{} {} {} {indent}<- {label} {}",
            event.ts_ns,
            event.pid,
            event.tid,
            format::nanos(event.duration_ns)
        ),
        Kind::Unwound => format!(
            "{} {} {} {indent}<- {label} {} (unwound)",
            event.ts_ns,
            event.pid,
            event.tid,
            format::nanos(event.duration_ns)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: Kind, depth: u32, duration_ns: u64) -> FlowLine {
        FlowLine {
            seq: 0,
            ts_ns: 1000,
            pid: 7,
            tid: 8,
            kind,
            depth,
            method: 1,
            duration_ns,
        }
    }

    #[test]
    fn entries_and_returns_indent_by_depth() {
        assert_eq!(
            line(&event(Kind::Entry, 0, 0), "Tree.a"),
            "1000 7 8 -> Tree.a"
        );
        assert_eq!(
            line(&event(Kind::Entry, 2, 0), "Tree.b"),
            "1000 7 8     -> Tree.b"
        );
        assert_eq!(
            line(&event(Kind::Return, 1, 1_250_000), "Tree.b"),
            "1000 7 8   <- Tree.b 1.25ms"
        );
        assert_eq!(
            line(&event(Kind::Unwound, 0, 900), "Tree.c"),
            "1000 7 8 <- Tree.c 900ns (unwound)"
        );
    }
}
