//! CPython's layouts for the sampler: where the interpreter keeps its thread states, frames,
//! code objects and strings, per version. 3.6 to 3.12 come from each version's own headers
//! (offsetof over `Include/` and `Include/internal/`, cross-checked with py-spy's
//! `python_bindings`); 3.13 publishes them in `_Py_DebugOffsets`, the first field of
//! `_PyRuntime`, read from the process and checked (cookie, version, sizes) before use.
//!
//! Nothing here is trusted blindly: the code object's fields are checked against the member
//! table of the running binary's `PyCode_Type` (and the frame's against `PyFrame_Type`'s up to
//! 3.10), the version against `Py_Version` where the binary has it, and the first thread state
//! must point back at its interpreter. A layout that fails a check makes the process
//! unreadable (its samples are counted, no name is guessed).

use std::collections::HashMap;

use ustat_common::{NO_OFFSET, SampleTarget, frame_layout};

use super::memory::{Remote, field_u32, field_u64};

/// Fields of a code object (`PyCodeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeFields {
    pub name: u32,
    /// 3.11+: the qualified name (`Class.method`); before, only `name`.
    pub qualname: Option<u32>,
    pub filename: u32,
    pub firstlineno: u32,
}

/// Fields of a string (`PyASCIIObject`, `PyCompactUnicodeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnicodeFields {
    pub length: u32,
    pub state: u32,
    /// Where an ASCII string's characters start, and a compact non-ASCII one's.
    pub ascii_size: u32,
    pub compact_size: u32,
}

/// Where the main interpreter's address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterpAt {
    /// `_PyRuntime.interpreters.head` (3.7+): this offset in `_PyRuntime`.
    Runtime(u64),
    /// The static `interp_head` (3.6).
    InterpHead,
}

/// One version's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub version: (u32, u32),
    /// What the kernel walks with (`start` and `interp` are the process's).
    pub kernel: SampleTarget,
    pub code: CodeFields,
    pub unicode: UnicodeFields,
    pub interp: InterpAt,
    /// `PyThreadState.interp`: checked against the interpreter.
    pub tstate_interp: u32,
    /// `PyFrameObject`'s `f_back` and `f_code` (up to 3.10), checked against `PyFrame_Type`.
    pub frame_object: Option<(u32, u32)>,
}

const UNICODE_WITH_WSTR: UnicodeFields = UnicodeFields {
    length: 16,
    state: 32,
    ascii_size: 48,
    compact_size: 72,
};

const UNICODE_3_12: UnicodeFields = UnicodeFields {
    length: 16,
    state: 32,
    ascii_size: 40,
    compact_size: 56,
};

/// `PyTypeObject.tp_members`, the same from 3.0 on (x86-64).
const TP_MEMBERS: u64 = 240;

/// A 3.6-3.10 layout: `PyFrameObject`s from `PyThreadState.frame`.
fn frame_object_layout(
    version: (u32, u32),
    interp: InterpAt,
    thread_id: u32,
    code: CodeFields,
) -> Layout {
    Layout {
        version,
        kernel: SampleTarget {
            interp_threads: 8,
            tstate_next: 8,
            tstate_thread_id: thread_id,
            tstate_frame: 24,
            cframe_frame: NO_OFFSET,
            frame_previous: 24,
            frame_code: 32,
            // Read but unused: any byte of the frame.
            frame_owner: 32,
            layout: frame_layout::FRAME_OBJECT,
            ..SampleTarget::default()
        },
        code,
        unicode: UNICODE_WITH_WSTR,
        interp,
        tstate_interp: 16,
        frame_object: Some((24, 32)),
    }
}

/// The layout of CPython `major.minor` from its headers, for 3.6 to 3.12.
pub fn known(version: (u32, u32)) -> Option<Layout> {
    let code_3_6 = CodeFields {
        name: 104,
        qualname: None,
        filename: 96,
        firstlineno: 36,
    };
    let code_3_8 = CodeFields {
        name: 112,
        qualname: None,
        filename: 104,
        firstlineno: 40,
    };
    Some(match version {
        (3, 6) => frame_object_layout(version, InterpAt::InterpHead, 152, code_3_6),
        (3, 7) => frame_object_layout(version, InterpAt::Runtime(24), 176, code_3_6),
        (3, 8..=10) => frame_object_layout(version, InterpAt::Runtime(32), 176, code_3_8),
        (3, 11) => Layout {
            version,
            kernel: SampleTarget {
                interp_threads: 16,
                tstate_next: 8,
                tstate_thread_id: 152,
                tstate_frame: 56,
                cframe_frame: 8,
                frame_previous: 48,
                frame_code: 32,
                frame_owner: 68,
                layout: frame_layout::ENTRY_FLAG,
                ..SampleTarget::default()
            },
            code: CodeFields {
                name: 120,
                qualname: Some(128),
                filename: 112,
                firstlineno: 72,
            },
            unicode: UNICODE_WITH_WSTR,
            interp: InterpAt::Runtime(40),
            tstate_interp: 16,
            frame_object: None,
        },
        (3, 12) => Layout {
            version,
            kernel: SampleTarget {
                interp_threads: 72,
                tstate_next: 8,
                tstate_thread_id: 136,
                tstate_frame: 56,
                cframe_frame: 0,
                frame_previous: 8,
                frame_code: 0,
                frame_owner: 70,
                layout: frame_layout::OWNER,
                owner_cstack: 3,
                ..SampleTarget::default()
            },
            code: CodeFields {
                name: 120,
                qualname: Some(128),
                filename: 112,
                firstlineno: 68,
            },
            unicode: UNICODE_3_12,
            interp: InterpAt::Runtime(40),
            tstate_interp: 16,
            frame_object: None,
        },
        _ => return None,
    })
}

/// Bytes of 3.13's `_Py_DebugOffsets` (73 64-bit words).
pub const DEBUG_OFFSETS_LEN: usize = 73 * 8;

/// The layout `_Py_DebugOffsets` gives, after checking it: the cookie `xdebugpy`, a version
/// equal to the binary's, a build with the GIL, and every offset inside the size its struct
/// declares. `bytes` are the first `DEBUG_OFFSETS_LEN` bytes of `_PyRuntime`.
pub fn from_debug_offsets(bytes: &[u8], expected: (u32, u32)) -> Result<Layout, String> {
    let word = |index: u32| field_u64(bytes, index * 8).ok_or("too short");
    if bytes.get(..8) != Some(b"xdebugpy".as_slice()) {
        return Err("_PyRuntime does not start with the _Py_DebugOffsets cookie `xdebugpy`".into());
    }
    let hex = word(1)?;
    let version = ((hex >> 24) as u32 & 0xff, (hex >> 16) as u32 & 0xff);
    if version != expected {
        return Err(format!(
            "its _Py_DebugOffsets say version {}.{}, its binary's name {}.{}",
            version.0, version.1, expected.0, expected.1
        ));
    }
    if version != (3, 13) {
        return Err(format!(
            "the _Py_DebugOffsets of CPython {}.{} have a layout ustat does not know yet (it reads 3.13's)",
            version.0, version.1
        ));
    }
    if word(2)? != 0 {
        return Err("free-threaded CPython builds are not sampled yet".into());
    }
    // Each struct's offsets lie within the size it declares, and sizes are plausible.
    let checked = |size_index: u32, fields: &[u32]| -> Result<Vec<u32>, String> {
        let size = word(size_index)?;
        if size == 0 || size > 1 << 20 {
            return Err(format!(
                "_Py_DebugOffsets gives a struct size of {size}: not a layout ustat trusts"
            ));
        }
        fields
            .iter()
            .map(|&i| {
                let offset = word(i)?;
                if offset + 8 > size {
                    return Err(format!(
                        "_Py_DebugOffsets gives offset {offset} in a struct of {size} bytes"
                    ));
                }
                Ok(offset as u32)
            })
            .collect()
    };
    let runtime = checked(3, &[5])?;
    let interp = checked(6, &[9])?;
    let thread = checked(19, &[21, 22, 23, 24])?;
    let frame = checked(28, &[29, 30, 33])?;
    let code = checked(34, &[35, 36, 37, 39])?;
    let unicode = checked(67, &[68, 69])?;
    let ascii_size = word(70)?;
    if !(16..=256).contains(&ascii_size) {
        return Err(format!(
            "_Py_DebugOffsets gives an ASCII string header of {ascii_size} bytes"
        ));
    }
    Ok(Layout {
        version,
        kernel: SampleTarget {
            interp_threads: interp[0],
            tstate_next: thread[0],
            tstate_thread_id: thread[3],
            tstate_frame: thread[2],
            cframe_frame: NO_OFFSET,
            frame_previous: frame[0],
            frame_code: frame[1],
            frame_owner: frame[2],
            layout: frame_layout::OWNER,
            // FRAME_OWNED_BY_CSTACK: 3 in 3.12 and 3.13 (4 from 3.14).
            owner_cstack: 3,
            ..SampleTarget::default()
        },
        code: CodeFields {
            filename: code[0],
            name: code[1],
            qualname: Some(code[2]),
            firstlineno: code[3],
        },
        unicode: UnicodeFields {
            state: unicode[0],
            length: unicode[1],
            ascii_size: ascii_size as u32,
            // PyCompactUnicodeObject adds utf8_length and utf8 to the ASCII header.
            compact_size: ascii_size as u32 + 16,
        },
        interp: InterpAt::Runtime(u64::from(runtime[0])),
        tstate_interp: thread[1],
        frame_object: None,
    })
}

/// Runtime addresses (in the process) of the symbols the sampler uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Symbols {
    pub runtime: Option<u64>,
    pub interp_head: Option<u64>,
    pub code_type: Option<u64>,
    pub frame_type: Option<u64>,
    /// `Py_Version` (3.11+), the version as PY_VERSION_HEX.
    pub py_version: Option<u64>,
}

/// A process whose interpreter the kernel can walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    pub layout: Layout,
    pub interp: u64,
    pub code_type: u64,
}

/// Why a process is not walked (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The interpreter is not set up yet: try again next interval.
    Later(String),
    /// Its layout is unknown or failed a check: its samples are only counted.
    Unreadable(String),
}

/// `3.12` as (3, 12).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Finds and checks the layout of the CPython in `memory`, `version` as its binary names it.
pub fn prepare(
    memory: &Remote,
    version: Option<(u32, u32)>,
    symbols: &Symbols,
) -> Result<Prepared, NotReady> {
    let unreadable = |text: String| NotReady::Unreadable(text);
    let Some(version) = version else {
        return Err(unreadable(
            "its CPython version is not in its binary's name, so ustat does not know its layout"
                .into(),
        ));
    };
    if version < (3, 6) {
        return Err(unreadable(format!(
            "CPython {}.{} is not sampled: ustat reads the frames of 3.6 and later",
            version.0, version.1
        )));
    }
    let layout = if version >= (3, 13) {
        let runtime = symbols.runtime.ok_or_else(|| {
            unreadable("its binary has no _PyRuntime symbol, where _Py_DebugOffsets are".into())
        })?;
        let bytes = memory
            .bytes(runtime, DEBUG_OFFSETS_LEN)
            .map_err(|e| unreadable(format!("cannot read its _Py_DebugOffsets: {e}")))?;
        from_debug_offsets(&bytes, version).map_err(unreadable)?
    } else {
        known(version).ok_or_else(|| {
            unreadable(format!(
                "ustat does not know the layout of CPython {}.{}",
                version.0, version.1
            ))
        })?
    };
    if let Some(at) = symbols.py_version {
        let mut hex = [0u8; 4];
        memory
            .read(at, &mut hex)
            .map_err(|e| unreadable(format!("cannot read its Py_Version: {e}")))?;
        let hex = u32::from_le_bytes(hex);
        let running = (hex >> 24, (hex >> 16) & 0xff);
        if running != version {
            return Err(unreadable(format!(
                "its Py_Version says {}.{}, its binary's name {}.{}",
                running.0, running.1, version.0, version.1
            )));
        }
    }
    let code_type = symbols
        .code_type
        .ok_or_else(|| unreadable("its binary has no PyCode_Type symbol".into()))?;
    check_code_members(memory, code_type, &layout.code).map_err(unreadable)?;
    if let Some((back, code)) = layout.frame_object {
        let frame_type = symbols
            .frame_type
            .ok_or_else(|| unreadable("its binary has no PyFrame_Type symbol".into()))?;
        let members = members(memory, frame_type).map_err(unreadable)?;
        for (name, expected) in [("f_back", back), ("f_code", code)] {
            if members.get(name) != Some(&u64::from(expected)) {
                return Err(unreadable(format!(
                    "its frame's {name} is not where CPython {}.{} keeps it",
                    version.0, version.1
                )));
            }
        }
    }
    let interp_address = match layout.interp {
        InterpAt::Runtime(offset) => symbols
            .runtime
            .map(|runtime| runtime + offset)
            .ok_or_else(|| unreadable("its binary has no _PyRuntime symbol".into()))?,
        InterpAt::InterpHead => symbols
            .interp_head
            .ok_or_else(|| unreadable("its binary has no interp_head symbol".into()))?,
    };
    let interp = memory
        .u64(interp_address)
        .map_err(|e| unreadable(format!("cannot read its interpreter's address: {e}")))?;
    if interp == 0 {
        return Err(NotReady::Later(
            "its interpreter is not initialised yet".into(),
        ));
    }
    let tstate = memory
        .u64(interp + u64::from(layout.kernel.interp_threads))
        .map_err(|e| unreadable(format!("cannot read its interpreter: {e}")))?;
    if tstate == 0 {
        return Err(NotReady::Later("its interpreter has no thread yet".into()));
    }
    let back = memory
        .u64(tstate + u64::from(layout.tstate_interp))
        .map_err(|e| unreadable(format!("cannot read its thread state: {e}")))?;
    if back != interp {
        return Err(unreadable(format!(
            "its thread state does not point back at its interpreter: not the layout of CPython {}.{}",
            version.0, version.1
        )));
    }
    Ok(Prepared {
        layout,
        interp,
        code_type,
    })
}

/// Checks the code object's fields against `PyCode_Type`'s member table in the process: the
/// name and file must be listed there, where the layout says (the first line and qualified
/// name too, where listed).
fn check_code_members(memory: &Remote, code_type: u64, code: &CodeFields) -> Result<(), String> {
    let members = members(memory, code_type)?;
    let mut wanted = vec![
        ("co_name", Some(code.name), true),
        ("co_filename", Some(code.filename), true),
        ("co_firstlineno", Some(code.firstlineno), false),
    ];
    if let Some(qualname) = code.qualname {
        wanted.push(("co_qualname", Some(qualname), false));
    }
    for (name, offset, required) in wanted {
        match (members.get(name), offset) {
            (Some(&found), Some(expected)) if found == u64::from(expected) => {}
            (None, _) if !required => {}
            (found, _) => {
                return Err(format!(
                    "its code objects' {name} is at {} where ustat expects {}: an unknown layout",
                    found.map_or("no listed offset".to_string(), |f| f.to_string()),
                    offset.unwrap_or(0)
                ));
            }
        }
    }
    Ok(())
}

/// A type's `tp_members` as name -> offset (`PyMemberDef`: name, type, offset, flags, doc).
fn members(memory: &Remote, type_object: u64) -> Result<HashMap<String, u64>, String> {
    const ENTRY: u64 = 40;
    let table = memory
        .u64(type_object + TP_MEMBERS)
        .map_err(|e| format!("cannot read a type's member table: {e}"))?;
    let mut out = HashMap::new();
    if table == 0 {
        return Ok(out);
    }
    for index in 0..64 {
        let entry = memory
            .bytes(table + index * ENTRY, ENTRY as usize)
            .map_err(|e| format!("cannot read a type's member table: {e}"))?;
        let (Some(name), Some(offset)) = (field_u64(&entry, 0), field_u64(&entry, 16)) else {
            break;
        };
        if name == 0 {
            break;
        }
        let name = memory
            .c_string(name, 64)
            .map_err(|e| format!("cannot read a member's name: {e}"))?;
        out.insert(String::from_utf8_lossy(&name).into_owned(), offset);
    }
    Ok(out)
}

/// The text of a compact `str` at `address` (every code object's names are), at most
/// `max_chars` characters; None when it is not one.
pub fn read_str(
    memory: &Remote,
    unicode: &UnicodeFields,
    address: u64,
    max_chars: usize,
) -> Option<String> {
    if address == 0 {
        return None;
    }
    let header = memory.bytes(address, unicode.compact_size as usize).ok()?;
    let length = field_u64(&header, unicode.length)?;
    let state = field_u32(&header, unicode.state)?;
    let kind = (state >> 2) & 7;
    let compact = (state >> 5) & 1 == 1;
    let ascii = (state >> 6) & 1 == 1;
    if !compact || !matches!(kind, 1 | 2 | 4) {
        return None;
    }
    let start = address
        + u64::from(if ascii {
            unicode.ascii_size
        } else {
            unicode.compact_size
        });
    let chars = (length as usize).min(max_chars);
    let bytes = memory.bytes(start, chars * kind as usize).ok()?;
    Some(decode(&bytes, kind))
}

/// Characters of `kind` bytes each (Latin-1, UCS-2, UCS-4) as a String; an invalid code
/// point (a lone surrogate) becomes U+FFFD.
fn decode(bytes: &[u8], kind: u32) -> String {
    match kind {
        1 => bytes.iter().map(|&b| char::from(b)).collect(),
        2 => bytes
            .chunks_exact(2)
            .map(|c| {
                char::from_u32(u32::from(u16::from_le_bytes([c[0], c[1]]))).unwrap_or('\u{fffd}')
            })
            .collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|c| {
                char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])).unwrap_or('\u{fffd}')
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3.13's `_Py_DebugOffsets` as pyenv's 3.13.0 has them (from its headers).
    fn debug_offsets_3_13() -> Vec<u8> {
        let mut words = [0u64; 73];
        words[1] = 0x030d_00f0;
        words[3] = 1_000; // runtime size
        words[5] = 632; // interpreters.head
        words[6] = 90_000; // interpreter size
        words[9] = 7_344; // threads.head
        words[19] = 800; // thread state size
        words[21] = 8; // next
        words[22] = 16; // interp
        words[23] = 72; // current_frame
        words[24] = 144; // thread_id
        words[28] = 80; // frame size
        words[29] = 8; // previous
        words[30] = 0; // executable
        words[33] = 70; // owner
        words[34] = 200; // code size
        words[35] = 112; // filename
        words[36] = 120; // name
        words[37] = 128; // qualname
        words[39] = 68; // firstlineno
        words[67] = 64; // unicode size
        words[68] = 32; // state
        words[69] = 16; // length
        words[70] = 40; // ascii header
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes[..8].copy_from_slice(b"xdebugpy");
        bytes
    }

    #[test]
    fn debug_offsets_are_read_when_every_check_passes() {
        let layout = from_debug_offsets(&debug_offsets_3_13(), (3, 13)).unwrap();
        assert_eq!(layout.kernel.interp_threads, 7_344);
        assert_eq!(layout.kernel.tstate_frame, 72);
        assert_eq!(layout.kernel.cframe_frame, NO_OFFSET);
        assert_eq!(layout.kernel.tstate_thread_id, 144);
        assert_eq!(layout.kernel.frame_owner, 70);
        assert_eq!(layout.code.qualname, Some(128));
        assert_eq!(layout.unicode.compact_size, 56);
        assert_eq!(layout.interp, InterpAt::Runtime(632));
    }

    #[test]
    fn debug_offsets_that_fail_a_check_are_refused_with_the_reason() {
        let mut bad_cookie = debug_offsets_3_13();
        bad_cookie[0] = b'X';
        assert!(
            from_debug_offsets(&bad_cookie, (3, 13))
                .unwrap_err()
                .contains("cookie")
        );
        let err = from_debug_offsets(&debug_offsets_3_13(), (3, 14)).unwrap_err();
        assert!(err.contains("binary's name 3.14"), "{err}");
        let mut newer = debug_offsets_3_13();
        newer[8..16].copy_from_slice(&0x030e_00f0u64.to_le_bytes());
        let err = from_debug_offsets(&newer, (3, 14)).unwrap_err();
        assert!(err.contains("does not know"), "{err}");
        let mut free_threaded = debug_offsets_3_13();
        free_threaded[16] = 1;
        assert!(
            from_debug_offsets(&free_threaded, (3, 13))
                .unwrap_err()
                .contains("free-threaded")
        );
        // An offset beyond its struct's size.
        let mut outside = debug_offsets_3_13();
        outside[23 * 8..24 * 8].copy_from_slice(&5_000u64.to_le_bytes());
        assert!(
            from_debug_offsets(&outside, (3, 13))
                .unwrap_err()
                .contains("offset 5000")
        );
        assert!(from_debug_offsets(&debug_offsets_3_13()[..100], (3, 13)).is_err());
    }

    #[test]
    fn every_version_from_3_6_to_3_12_has_a_layout_and_others_do_not() {
        for minor in 6..=12 {
            let layout = known((3, minor)).unwrap();
            assert_eq!(layout.version, (3, minor));
            assert_ne!(layout.kernel.layout, frame_layout::NONE);
            assert_eq!(layout.frame_object.is_some(), minor <= 10);
            assert_eq!(layout.code.qualname.is_some(), minor >= 11);
        }
        assert!(known((2, 7)).is_none());
        assert!(known((3, 13)).is_none());
        assert_eq!(parse_version("3.12"), Some((3, 12)));
        assert_eq!(parse_version("3"), None);
    }

    /// `PyMemberDef`, as CPython lays it out.
    #[repr(C)]
    struct MemberDef {
        name: *const u8,
        kind: i32,
        offset: isize,
        flags: i32,
        doc: *const u8,
    }

    /// A type object whose `tp_members` lists these (name, offset) members, in this process.
    fn type_with_members(members: &[(&'static [u8], isize)]) -> (Vec<u64>, Vec<MemberDef>) {
        let mut table: Vec<MemberDef> = members
            .iter()
            .map(|&(name, offset)| MemberDef {
                name: name.as_ptr(),
                kind: 0,
                offset,
                flags: 0,
                doc: std::ptr::null(),
            })
            .collect();
        table.push(MemberDef {
            name: std::ptr::null(),
            kind: 0,
            offset: 0,
            flags: 0,
            doc: std::ptr::null(),
        });
        let mut type_object = vec![0u64; 64];
        type_object[(TP_MEMBERS / 8) as usize] = table.as_ptr() as u64;
        (type_object, table)
    }

    #[test]
    fn code_fields_are_checked_against_the_running_binarys_member_table() {
        let me = Remote::new(std::process::id());
        // 3.12's code object, as its PyCode_Type lists it: the check passes, and preparing
        // goes on to the interpreter (which this process has none of).
        let (code_type, _table) = type_with_members(&[
            (b"co_filename\0", 112),
            (b"co_name\0", 120),
            (b"co_qualname\0", 128),
            (b"co_firstlineno\0", 68),
        ]);
        let symbols = Symbols {
            code_type: Some(code_type.as_ptr() as u64),
            ..Symbols::default()
        };
        let err = prepare(&me, Some((3, 12)), &symbols).unwrap_err();
        assert!(
            matches!(&err, NotReady::Unreadable(t) if t.contains("_PyRuntime")),
            "{err:?}"
        );
        // A binary whose code objects keep their name elsewhere: refused, with the field.
        let (moved, _table) = type_with_members(&[(b"co_filename\0", 112), (b"co_name\0", 999)]);
        let symbols = Symbols {
            code_type: Some(moved.as_ptr() as u64),
            ..Symbols::default()
        };
        let err = prepare(&me, Some((3, 12)), &symbols).unwrap_err();
        assert!(
            matches!(&err, NotReady::Unreadable(t) if t.contains("co_name is at 999 where ustat expects 120")),
            "{err:?}"
        );
        // Up to 3.10 the frame's fields are checked too.
        let (code_3_10, _table) = type_with_members(&[
            (b"co_filename\0", 104),
            (b"co_name\0", 112),
            (b"co_firstlineno\0", 40),
        ]);
        let (frame_type, _frames) = type_with_members(&[(b"f_back\0", 24), (b"f_code\0", 40)]);
        let symbols = Symbols {
            code_type: Some(code_3_10.as_ptr() as u64),
            frame_type: Some(frame_type.as_ptr() as u64),
            ..Symbols::default()
        };
        let err = prepare(&me, Some((3, 10)), &symbols).unwrap_err();
        assert!(
            matches!(&err, NotReady::Unreadable(t) if t.contains("f_code")),
            "{err:?}"
        );
    }

    #[test]
    fn strings_decode_per_kind() {
        assert_eq!(decode(b"caf\xe9", 1), "café");
        assert_eq!(decode(&[0x0d, 0x54, 0x00, 0xd8], 2), "名\u{fffd}");
        assert_eq!(decode(&0x1f600u32.to_le_bytes(), 4), "😀");
    }

    #[test]
    fn a_python_2_or_unnamed_version_is_unreadable_with_its_reason() {
        let me = Remote::new(std::process::id());
        let symbols = Symbols::default();
        let err = prepare(&me, Some((2, 7)), &symbols).unwrap_err();
        assert!(matches!(&err, NotReady::Unreadable(t) if t.contains("2.7 is not sampled")));
        let err = prepare(&me, None, &symbols).unwrap_err();
        assert!(matches!(&err, NotReady::Unreadable(t) if t.contains("not in its binary's name")));
        let err = prepare(&me, Some((3, 12)), &symbols).unwrap_err();
        assert!(matches!(&err, NotReady::Unreadable(t) if t.contains("PyCode_Type")));
    }
}
