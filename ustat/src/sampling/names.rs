//! Names of code objects, read once from the process and cached. A cached name is used only
//! while the code object at that address still looks the same (its type is `PyCode_Type`,
//! and its name, qualified name and file pointers and first line are those cached), so a
//! code object freed and replaced by another at the same address is named afresh, and
//! memory that is no longer a code object is `Unknown`, never a stale name.

use std::collections::HashMap;

use super::{
    memory::{Remote, field_u32, field_u64},
    python::{Prepared, read_str},
};
use crate::{
    sanitize,
    snapshot::{FrameKind, SampledFrame},
};

/// Most characters kept of a name or file.
const MAX_CHARS: usize = 512;

/// Most code objects remembered per process; the cache starts over beyond.
const MAX_CACHED: usize = 65_536;

/// `PyObject.ob_type`.
const OB_TYPE: u32 = 8;

/// What identifies a code object's contents cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    name: u64,
    qualname: u64,
    filename: u64,
    firstlineno: u32,
}

#[derive(Debug, Default)]
pub struct CodeNames {
    cache: HashMap<u64, (Fingerprint, SampledFrame)>,
}

/// A frame that names nothing, with why.
pub fn unknown(why: &str) -> SampledFrame {
    SampledFrame {
        function: why.to_string(),
        file: String::new(),
        line: 0,
        kind: FrameKind::Unknown,
    }
}

impl CodeNames {
    /// The frame of the code object at `address`.
    pub fn frame(&mut self, memory: &Remote, process: &Prepared, address: u64) -> SampledFrame {
        let code = &process.layout.code;
        let end = [code.name, code.filename, code.firstlineno, OB_TYPE]
            .into_iter()
            .chain(code.qualname)
            .max()
            .unwrap_or(0)
            + 8;
        let header = match memory.bytes(address, end as usize) {
            Ok(header) => header,
            // The process is gone (its last interval is read after it exited): its memory
            // can no longer change, so a name read while it ran is still its name.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                return match self.cache.get(&address) {
                    Some((_, frame)) => frame.clone(),
                    None => unknown("(process exited before its code was named)"),
                };
            }
            Err(_) => {
                self.cache.remove(&address);
                return unknown("(code object unreadable)");
            }
        };
        if field_u64(&header, OB_TYPE) != Some(process.code_type) {
            self.cache.remove(&address);
            return unknown("(not a code object)");
        }
        let pointer = |offset: u32| field_u64(&header, offset).unwrap_or(0);
        let fingerprint = Fingerprint {
            name: pointer(code.name),
            qualname: code.qualname.map_or(0, pointer),
            filename: pointer(code.filename),
            firstlineno: field_u32(&header, code.firstlineno).unwrap_or(0),
        };
        if let Some((known, frame)) = self.cache.get(&address)
            && *known == fingerprint
        {
            return frame.clone();
        }
        let unicode = &process.layout.unicode;
        let name = code
            .qualname
            .and_then(|_| read_str(memory, unicode, fingerprint.qualname, MAX_CHARS))
            .or_else(|| read_str(memory, unicode, fingerprint.name, MAX_CHARS));
        let Some(name) = name else {
            self.cache.remove(&address);
            return unknown("(code object name unreadable)");
        };
        let file = read_str(memory, unicode, fingerprint.filename, MAX_CHARS).unwrap_or_default();
        let frame = SampledFrame {
            function: sanitize::text(&name),
            file: sanitize::text(&file),
            line: fingerprint.firstlineno,
            kind: FrameKind::Managed,
        };
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache.insert(address, (fingerprint, frame.clone()));
        frame
    }
}
