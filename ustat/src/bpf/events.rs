//! The one decoder of the `EVENTS` ring buffer: each record starts with an `EventHeader`
//! whose kind says which event follows; a record shorter than its kind's event, or of a kind
//! this ustat does not know, is refused with why, never read past its end.

use aya::Pod;
use ustat_common::{ArgsEvent, EventHeader, FlowEvent, NameEvent, TraceEvent, event_kind};

/// One record of the ring buffer.
#[derive(Debug, Clone)]
pub enum Event {
    /// A probe hit and its arguments (`record`, for `ustat trace`).
    Args(ArgsEvent),
    /// The names of a new key (`keyed`); boxed, being seven times the others' size.
    Names(Box<NameEvent>),
    /// A method entered or returned (`flow_entry`, `flow_return`).
    Flow(FlowEvent),
    /// A `ustat trace` spec's hit (`trace`); boxed for its size.
    Trace(Box<TraceEvent>),
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("a ring buffer record of {len} bytes is shorter than an event header ({need})")]
    NoHeader { len: usize, need: usize },
    #[error("a ring buffer record of kind {kind} has {len} bytes, its event {need}")]
    Short { kind: u32, len: usize, need: usize },
    #[error("a ring buffer record of unknown kind {kind}")]
    UnknownKind { kind: u32 },
}

impl Event {
    /// Decodes one record.
    pub fn decode(bytes: &[u8]) -> Result<Self, EventError> {
        let header: EventHeader = read(bytes).ok_or(EventError::NoHeader {
            len: bytes.len(),
            need: size_of::<EventHeader>(),
        })?;
        let kind = header.kind;
        match kind {
            event_kind::ARGS => read_kind(kind, bytes).map(Self::Args),
            event_kind::NAMES => read_kind(kind, bytes).map(|e| Self::Names(Box::new(e))),
            event_kind::FLOW => read_kind(kind, bytes).map(Self::Flow),
            event_kind::TRACE => read_kind(kind, bytes).map(|e| Self::Trace(Box::new(e))),
            _ => Err(EventError::UnknownKind { kind }),
        }
    }
}

fn read_kind<T: Pod>(kind: u32, bytes: &[u8]) -> Result<T, EventError> {
    read(bytes).ok_or(EventError::Short {
        kind,
        len: bytes.len(),
        need: size_of::<T>(),
    })
}

/// The `T` at the start of `bytes`, if they are long enough.
fn read<T: Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: `bytes` holds at least size_of::<T>() bytes; T is Pod (repr(C) integers, no
    // padding), so any bytes are a valid T; read_unaligned copes with the record's alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

#[cfg(test)]
mod tests {
    use ustat_common::{KEY_SLOTS, MAX_ARGS, NAME_LEN, flow_kind};

    use super::*;

    /// An event header's bytes, laid out as the kernel writes them (little-endian x86-64).
    fn header(kind: u32, pid: u32, tid: u32, ts_ns: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        for field in [kind, pid, tid, 3] {
            bytes.extend(field.to_le_bytes());
        }
        bytes.extend(ts_ns.to_le_bytes());
        bytes
    }

    fn flow_record() -> Vec<u8> {
        let mut bytes = header(event_kind::FLOW, 41, 42, 1_000);
        bytes.extend(flow_kind::RETURN.to_le_bytes());
        bytes.extend(2u32.to_le_bytes()); // depth
        bytes.extend(0xfeed_u64.to_le_bytes()); // method
        bytes.extend(750u64.to_le_bytes()); // duration
        bytes
    }

    #[test]
    fn a_flow_record_decodes_field_by_field() {
        let Ok(Event::Flow(event)) = Event::decode(&flow_record()) else {
            panic!("not a flow event");
        };
        assert_eq!(
            (event.header.pid, event.header.tid, event.header.ts_ns),
            (41, 42, 1_000)
        );
        assert_eq!(
            (event.kind, event.depth, event.method, event.duration_ns),
            (flow_kind::RETURN, 2, 0xfeed, 750)
        );
    }

    #[test]
    fn a_names_record_decodes_with_its_key_and_names() {
        let mut bytes = header(event_kind::NAMES, 7, 8, 5);
        for field in [7u32, ustat_common::category::METHOD_CALL] {
            bytes.extend(field.to_le_bytes());
        }
        for key in [0x10u64, 0x20, 0] {
            bytes.extend(key.to_le_bytes());
        }
        bytes.extend(99u64.to_le_bytes()); // epoch
        for len in [4u16, 3, 0] {
            bytes.extend(len.to_le_bytes());
        }
        bytes.extend(0u16.to_le_bytes()); // failed
        for name in [&b"Main"[..], b"run", b""] {
            let mut slot = [0u8; NAME_LEN];
            slot[..name.len()].copy_from_slice(name);
            bytes.extend(slot);
        }
        let Ok(Event::Names(event)) = Event::decode(&bytes) else {
            panic!("not a names event");
        };
        assert_eq!((event.key.pid, event.key.epoch), (7, 99));
        assert_eq!(event.key.keys, [0x10, 0x20, 0]);
        assert_eq!(event.lens, [4, 3, 0]);
        assert_eq!(&event.names[0][..4], b"Main");
        assert_eq!(&event.names[1][..3], b"run");
        assert_eq!(KEY_SLOTS, 3);
    }

    #[test]
    fn an_args_record_decodes_its_arguments() {
        let mut bytes = header(event_kind::ARGS, 1, 2, 3);
        bytes.extend(5u32.to_le_bytes()); // tag
        bytes.extend(2u16.to_le_bytes()); // nargs
        bytes.extend(0b10u16.to_le_bytes()); // failed: the second
        for i in 0..MAX_ARGS as u64 {
            bytes.extend((100 + i).to_le_bytes());
        }
        let Ok(Event::Args(event)) = Event::decode(&bytes) else {
            panic!("not an args event");
        };
        assert_eq!((event.tag, event.nargs, event.failed), (5, 2, 0b10));
        assert_eq!(event.args[..2], [100, 101]);
    }

    #[test]
    fn short_and_unknown_records_are_refused_with_why() {
        let flow = flow_record();
        assert_eq!(
            Event::decode(&flow[..10]).unwrap_err(),
            EventError::NoHeader { len: 10, need: 24 }
        );
        assert_eq!(
            Event::decode(&flow[..47]).unwrap_err(),
            EventError::Short {
                kind: event_kind::FLOW,
                len: 47,
                need: 48
            }
        );
        let names_header = header(event_kind::NAMES, 1, 1, 1);
        assert!(matches!(
            Event::decode(&names_header),
            Err(EventError::Short {
                kind: event_kind::NAMES,
                ..
            })
        ));
        assert_eq!(
            Event::decode(&header(99, 1, 1, 1)).unwrap_err(),
            EventError::UnknownKind { kind: 99 }
        );
    }
}
