//! Turning the kernel's `TraceEvent`s and summaries into text lines and JSON objects.
//! Everything a traced process wrote (strings, its thread name) is sanitised here.

use serde_json::{Value as Json, json};
use ustat_common::{TRACE_STR_LEN, TraceEvent};

use super::{
    plan::FieldShape,
    spec::{Conversion, Piece},
};
use crate::sanitize;

/// What printing a probe's hits needs.
#[derive(Debug, Clone)]
pub struct Printed {
    /// The FUNC column: the function (or `provider:name`).
    pub name: String,
    /// The format's pieces; empty: the fields separated by spaces.
    pub format: Vec<Piece>,
    pub fields: Vec<FieldShape>,
}

/// One field's value as text and as JSON.
fn field(event: &TraceEvent, i: usize, shape: &FieldShape) -> (String, Json) {
    if event.failed & (1 << i) != 0 {
        return ("?".into(), Json::Null);
    }
    let value = event.values[i];
    if let (Conversion::Str, Some(s)) = (shape.conversion, shape.string) {
        let s = usize::from(s);
        let len = usize::from(event.lens[s]).min(TRACE_STR_LEN);
        let text = sanitize::text(&String::from_utf8_lossy(&event.strings[s][..len]));
        let text = if event.truncated & (1 << s) != 0 {
            format!("{text}…")
        } else {
            text
        };
        return (text.clone(), Json::String(text));
    }
    match shape.conversion {
        Conversion::Signed { wide: false } => {
            let v = value as u32 as i32;
            (v.to_string(), json!(v))
        }
        Conversion::Signed { wide: true } if shape.signed => {
            let v = value as i64;
            (v.to_string(), json!(v))
        }
        Conversion::Signed { wide: true } => {
            // `u:` probes without a format: unsigned locations print unsigned.
            let v = value as i64;
            if shape.signed || v >= 0 {
                (v.to_string(), json!(v))
            } else {
                (value.to_string(), json!(value))
            }
        }
        Conversion::Unsigned { wide: false } => {
            let v = value as u32;
            (v.to_string(), json!(v))
        }
        Conversion::Unsigned { wide: true } | Conversion::Str => (value.to_string(), json!(value)),
        Conversion::Hex { wide: false } => (format!("{:x}", value as u32), json!(value as u32)),
        Conversion::Hex { wide: true } => (format!("{value:x}"), json!(value)),
        Conversion::Pointer => (format!("0x{value:x}"), json!(value)),
        Conversion::Char => {
            let byte = value as u8;
            let text = if byte.is_ascii_graphic() || byte == b' ' {
                char::from(byte).to_string()
            } else {
                format!("\\x{byte:02x}")
            };
            (text, json!(byte))
        }
    }
}

/// The VALUES column and the values as JSON.
pub fn values(event: &TraceEvent, printed: &Printed) -> (String, Vec<Json>) {
    let fields: Vec<(String, Json)> = printed
        .fields
        .iter()
        .enumerate()
        .map(|(i, shape)| field(event, i, shape))
        .collect();
    let json = fields.iter().map(|(_, j)| j.clone()).collect();
    if printed.format.is_empty() {
        let text: Vec<&str> = fields.iter().map(|(t, _)| t.as_str()).collect();
        return (text.join(" "), json);
    }
    let mut text = String::new();
    let mut next = fields.iter();
    for piece in &printed.format {
        match piece {
            Piece::Text(t) => text.push_str(&sanitize::text(t)),
            Piece::Conversion(_) => {
                if let Some((t, _)) = next.next() {
                    text.push_str(t);
                }
            }
        }
    }
    (text, json)
}

/// The thread's name.
pub fn comm(event: &TraceEvent) -> String {
    let end = event
        .comm
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(event.comm.len());
    sanitize::text(&String::from_utf8_lossy(&event.comm[..end]))
}

/// A text line: `TIME PID TID COMM FUNC VALUES`.
pub fn line(event: &TraceEvent, printed: &Printed, time: &str) -> String {
    let (values, _) = values(event, printed);
    let header = event.header;
    let mut line = format!(
        "{time} {} {} {} {}",
        header.pid,
        header.tid,
        comm(event),
        printed.name
    );
    if !values.is_empty() {
        line.push(' ');
        line.push_str(&values);
    }
    line
}

/// A JSON object: time_ns, pid, tid, comm, probe, args, text.
pub fn json_event(event: &TraceEvent, printed: &Printed) -> Json {
    let (text, args) = values(event, printed);
    json!({
        "time_ns": event.header.ts_ns,
        "pid": event.header.pid,
        "tid": event.header.tid,
        "comm": comm(event),
        "probe": printed.name,
        "args": args,
        "text": text,
    })
}

/// A duration for people: ns, µs, ms or s with three significant digits.
pub fn duration(ns: u64) -> String {
    let ns_f = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.3} µs", ns_f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.3} ms", ns_f / 1e6)
    } else {
        format!("{:.3} s", ns_f / 1e9)
    }
}

/// A log2 histogram of (bucket, count) pairs as BCC prints one: a line per power of two
/// from the first occupied to the last.
pub fn histogram(buckets: &[(u64, u64)]) -> Vec<String> {
    let mut log2: Vec<u64> = Vec::new();
    for &(bucket, count) in buckets {
        let slot = (64 - bucket.leading_zeros()) as usize;
        if log2.len() <= slot {
            log2.resize(slot + 1, 0);
        }
        log2[slot] += count;
    }
    let Some(first) = log2.iter().position(|&c| c > 0) else {
        return Vec::new();
    };
    let most = log2.iter().copied().max().unwrap_or(1).max(1);
    let mut lines = vec![format!("{:>24} : {:<8} distribution", "ns", "count")];
    for (slot, &count) in log2.iter().enumerate().skip(first) {
        let (low, high) = if slot == 0 {
            (0, 0)
        } else {
            (
                1u64 << (slot - 1),
                (1u64 << (slot - 1)).saturating_mul(2) - 1,
            )
        };
        let stars = (count * 40).div_ceil(most) as usize;
        lines.push(format!(
            "{:>24} : {count:<8} |{:<40}|",
            format!("{low} -> {high}"),
            "*".repeat(stars.min(40))
        ));
    }
    lines
}

/// An event with nothing read yet: the base `--count` rebuilds an event on from its key.
pub fn empty_event() -> TraceEvent {
    TraceEvent {
        header: Default::default(),
        probe: 0,
        failed: 0,
        truncated: 0,
        values: [0; ustat_common::TRACE_FIELDS],
        lens: [0; ustat_common::TRACE_STRINGS],
        _pad: 0,
        comm: [0; 16],
        strings: [[0; TRACE_STR_LEN]; ustat_common::TRACE_STRINGS],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::spec::Conversion;

    fn event() -> TraceEvent {
        empty_event()
    }

    #[test]
    fn formats_values_and_strings() {
        let mut e = event();
        e.values[0] = (-5i32) as u32 as u64 | 0xdead_0000_0000;
        e.values[1] = 0x1234;
        e.strings[0][..6].copy_from_slice(b"oc\x1bti!");
        e.lens[0] = 5;
        e.comm[..5].copy_from_slice(b"redis");
        let shape = |conversion, string| FieldShape {
            conversion,
            string,
            signed: false,
        };
        let printed = Printed {
            name: "f".into(),
            format: vec![
                Piece::Conversion(Conversion::Signed { wide: false }),
                Piece::Text(" ".into()),
                Piece::Conversion(Conversion::Pointer),
                Piece::Text(" [".into()),
                Piece::Conversion(Conversion::Str),
                Piece::Text("]".into()),
            ],
            fields: vec![
                shape(Conversion::Signed { wide: false }, None),
                shape(Conversion::Pointer, None),
                shape(Conversion::Str, Some(0)),
            ],
        };
        assert_eq!(line(&e, &printed, "T"), "T 0 0 redis f -5 0x1234 [oc?ti]");
        let j = json_event(&e, &printed);
        assert_eq!(j["args"], json!([-5, 0x1234, "oc?ti"]));
        assert_eq!(j["text"], "-5 0x1234 [oc?ti]");
    }

    #[test]
    fn histogram_lines() {
        let lines = histogram(&[(1000, 2), (3000, 1)]);
        assert_eq!(lines.len(), 4);
        assert!(lines[1].contains("512 -> 1023") && lines[1].contains(" 2 "));
        assert!(lines[3].contains("2048 -> 4095"));
    }
}
