//! `.note.stapsdt` notes: one per probe call site.

use object::{Endianness, ReadRef, read::elf::SectionHeader as _};

use crate::elf::Elf;

/// The note's owner name.
pub const OWNER: &[u8] = b"stapsdt";
/// The note type of version-3 SystemTap SDT notes.
pub const NT_STAPSDT: u32 = 3;

/// At most this many notes are read from a file: libjvm.so has 531, and each note costs a
/// few hundred bytes once parsed, so a file cannot make ustat hold more than about 40 MB.
pub const MAX_NOTES: usize = 1 << 17;
/// The largest `.note.stapsdt` section read (libjvm.so's is 52 KB).
pub const MAX_SECTION: u64 = 16 << 20;

/// One call site, as the note describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub provider: String,
    pub name: String,
    /// Address of the probe's nop, before any prelink adjustment.
    pub pc: u64,
    /// Link-time address of `.stapsdt.base`, for the prelink adjustment.
    pub base: u64,
    /// Address of the probe's u16 semaphore, or 0.
    pub semaphore: u64,
    /// The argument spec text (`-4@%eax 8@%rdx`).
    pub args: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the USDT notes are malformed: {0}")]
    Section(String),
    #[error("USDT note {index} is {len} bytes, too short for its three addresses")]
    Truncated { index: usize, len: usize },
    #[error("USDT note {index}: its {field} is not NUL-terminated")]
    Unterminated { index: usize, field: &'static str },
    #[error("the USDT notes are {size} bytes, more than ustat reads ({MAX_SECTION})")]
    SectionTooLarge { size: u64 },
    #[error("there are more than {MAX_NOTES} USDT notes")]
    TooMany,
}

/// Parses one note's descriptor: three little-endian u64 addresses (pc, base, semaphore), then
/// provider, name and argument spec as NUL-terminated strings.
pub fn parse_desc(index: usize, desc: &[u8]) -> Result<Note, NoteError> {
    let truncated = NoteError::Truncated {
        index,
        len: desc.len(),
    };
    let (addresses, mut rest) = desc.split_at_checked(24).ok_or(truncated)?;
    let word = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&addresses[i * 8..i * 8 + 8]);
        u64::from_le_bytes(bytes)
    };
    let mut next_string = |field| {
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(NoteError::Unterminated { index, field })?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 1..];
        Ok(text)
    };
    Ok(Note {
        pc: word(0),
        base: word(1),
        semaphore: word(2),
        provider: next_string("provider")?,
        name: next_string("name")?,
        args: next_string("argument spec")?,
    })
}

/// Every stapsdt note of the file, in file order. `Ok(None)` when there is no
/// `.note.stapsdt` section.
pub fn read_notes<'data, R: ReadRef<'data>>(
    elf: &Elf<'data, R>,
) -> Result<Option<Vec<Note>>, NoteError> {
    let file = &elf.file;
    let endian: Endianness = file.endian();
    let data = file.data();
    let sections = file.elf_section_table();
    let malformed = |e: object::Error| NoteError::Section(e.to_string());
    let mut found = false;
    let mut notes = Vec::new();
    for section in sections.iter() {
        let name = sections.section_name(endian, section).map_err(malformed)?;
        if name != b".note.stapsdt" {
            continue;
        }
        found = true;
        let size = section.sh_size(endian);
        if size > MAX_SECTION {
            return Err(NoteError::SectionTooLarge { size });
        }
        let Some(mut iter) = section.notes(endian, data).map_err(malformed)? else {
            return Err(NoteError::Section(
                ".note.stapsdt is not a note section".into(),
            ));
        };
        while let Some(note) = iter.next().map_err(malformed)? {
            if note.name() != OWNER || note.n_type(endian) != NT_STAPSDT {
                continue;
            }
            if notes.len() == MAX_NOTES {
                return Err(NoteError::TooMany);
            }
            notes.push(parse_desc(notes.len(), note.desc())?);
        }
    }
    Ok(found.then_some(notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(pc: u64, base: u64, sem: u64, strings: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [pc, base, sem] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        for s in strings {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        out
    }

    #[test]
    fn parses_the_three_addresses_and_three_strings() {
        let bytes = desc(0x1234, 0x5000, 0x6010, &["hotspot", "gc__begin", "1@%dil"]);
        assert_eq!(
            parse_desc(0, &bytes),
            Ok(Note {
                provider: "hotspot".into(),
                name: "gc__begin".into(),
                pc: 0x1234,
                base: 0x5000,
                semaphore: 0x6010,
                args: "1@%dil".into(),
            })
        );
    }

    #[test]
    fn an_empty_argument_spec_is_fine() {
        let note = parse_desc(0, &desc(1, 0, 0, &["p", "n", ""])).unwrap();
        assert_eq!(note.args, "");
    }

    #[test]
    fn truncation_is_an_error_at_every_length() {
        let bytes = desc(1, 2, 3, &["provider", "name", "8@%rax"]);
        for len in 0..bytes.len() {
            let err = parse_desc(7, &bytes[..len]).unwrap_err();
            match err {
                NoteError::Truncated { index: 7, len: l } => assert!(l < 24 && l == len),
                NoteError::Unterminated { index: 7, .. } => assert!(len >= 24),
                other => panic!("{other:?}"),
            }
        }
        assert!(parse_desc(0, &bytes).is_ok());
    }
}
