//! A file a process maps, as a runtime's detection hook (`Runtime::detect`) sees it: its
//! name at once, its ELF facts and symbols only if a hook asks (then the file is opened once,
//! through `binary::Binary`, the one way ustat opens a process's binaries: trusted files
//! only, the very file the process maps).

use std::{cell::OnceCell, sync::Arc};

use object::{Object as _, ObjectSection as _, ReadRef};
use ustat_runtimes::{Candidate, ElfFacts};

use crate::{
    binary::Binary,
    process::{self, MappedObject},
};

/// `DT_NEEDED` in a dynamic section entry.
const DT_NEEDED: u64 = 1;
const DT_NULL: u64 = 0;

pub struct MappedCandidate<'a> {
    pid: u32,
    object: &'a MappedObject,
    name: &'a str,
    binary: OnceCell<Option<Arc<Binary>>>,
    facts: OnceCell<Option<ElfFacts>>,
}

impl<'a> MappedCandidate<'a> {
    /// `object` as process `pid` maps it, called `name`.
    pub fn new(pid: u32, object: &'a MappedObject, name: &'a str) -> Self {
        Self {
            pid,
            object,
            name,
            binary: OnceCell::new(),
            facts: OnceCell::new(),
        }
    }

    fn binary(&self) -> Option<&Arc<Binary>> {
        self.binary
            .get_or_init(|| {
                let uid = process::uid(self.pid).ok()?;
                Binary::open_mapped(self.pid, self.object, uid).ok()
            })
            .as_ref()
    }
}

impl Candidate for MappedCandidate<'_> {
    fn file_name(&self) -> &str {
        self.name
    }

    fn elf(&self) -> Option<&ElfFacts> {
        self.facts
            .get_or_init(|| {
                let data = self.binary()?.data();
                facts(&data)
            })
            .as_ref()
    }

    fn has_symbol(&self, name: &str) -> bool {
        self.binary().is_some_and(|binary| {
            let data = binary.data();
            binary
                .elf(&data)
                .is_ok_and(|elf| elf.symbol_address(name).is_ok())
        })
    }
}

/// Section names, needed libraries and build id of an ELF file; `None` when it is not one.
pub fn facts<'data, R: ReadRef<'data>>(data: R) -> Option<ElfFacts> {
    let file = object::File::parse(data).ok()?;
    let section_data = |name: &str| file.section_by_name(name).and_then(|s| s.data().ok());
    let sections = file
        .sections()
        .filter_map(|s| s.name().ok().map(str::to_string))
        .filter(|n| !n.is_empty())
        .collect();
    let needed = match (section_data(".dynamic"), section_data(".dynstr")) {
        (Some(dynamic), Some(strings)) => needed(dynamic, strings),
        _ => Vec::new(),
    };
    let build_id = section_data(".note.gnu.build-id").and_then(build_id);
    Some(ElfFacts {
        sections,
        needed,
        build_id,
    })
}

/// The `DT_NEEDED` names of a 64-bit little-endian dynamic section.
fn needed(dynamic: &[u8], strings: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for entry in dynamic.chunks_exact(16) {
        let (tag, value) = entry.split_at(8);
        let tag = u64::from_le_bytes(tag.try_into().unwrap_or_default());
        let value = u64::from_le_bytes(value.try_into().unwrap_or_default());
        match tag {
            DT_NULL => break,
            DT_NEEDED => {
                let Some(rest) = usize::try_from(value).ok().and_then(|v| strings.get(v..)) else {
                    continue;
                };
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                names.push(String::from_utf8_lossy(&rest[..end]).into_owned());
            }
            _ => {}
        }
    }
    names
}

/// The descriptor of a GNU build-id note: namesz, descsz, type, "GNU\0", id.
fn build_id(note: &[u8]) -> Option<Vec<u8>> {
    let word = |at: usize| -> Option<usize> {
        let bytes = note.get(at..at + 4)?;
        usize::try_from(u32::from_le_bytes(bytes.try_into().ok()?)).ok()
    };
    let (name_size, desc_size) = (word(0)?, word(4)?);
    let desc_start = 12 + name_size.next_multiple_of(4);
    note.get(desc_start..desc_start.checked_add(desc_size)?)
        .map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary itself: an ELF file that needs libc and has a build id (Rust's
    /// linker asks for one on Linux) and a `.text`.
    #[test]
    fn facts_of_a_real_binary() {
        let me = std::fs::read("/proc/self/exe").unwrap();
        let facts = facts(me.as_slice()).unwrap();
        assert!(facts.sections.iter().any(|s| s == ".text"), "{facts:?}");
        assert!(facts.needs("libc.so"), "{:?}", facts.needed);
        assert!(facts.build_id.as_ref().is_some_and(|id| !id.is_empty()));
        assert_eq!(super::facts(&b"not an elf file"[..]), None);
    }

    #[test]
    fn needed_stops_at_the_end_and_skips_bad_offsets() {
        let strings = b"\0libpython3.12.so.1.0\0";
        let mut dynamic = Vec::new();
        for (tag, value) in [
            (DT_NEEDED, 1u64),
            (DT_NEEDED, 999),
            (DT_NULL, 0),
            (DT_NEEDED, 1),
        ] {
            dynamic.extend_from_slice(&tag.to_le_bytes());
            dynamic.extend_from_slice(&value.to_le_bytes());
        }
        assert_eq!(needed(&dynamic, strings), ["libpython3.12.so.1.0"]);
    }

    /// What a runtime recognised by content (a Go binary by `.go.buildinfo`, a libnode build
    /// by `DT_NEEDED`) does: here, this test binary, as this process maps it, by its libc and
    /// a symbol it defines.
    #[test]
    fn a_hook_can_detect_by_content_whatever_the_name() {
        let me = std::process::id();
        let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
        let object = process::mapped_objects(me)
            .unwrap()
            .into_iter()
            .find(|o| o.path == exe)
            .unwrap();
        let candidate = MappedCandidate::new(me, &object, "any-name");
        let detect = |c: &dyn Candidate| -> Option<u8> {
            let elf = c.elf()?;
            (elf.needs("libc.so") && !elf.sections.iter().any(|s| s == ".go.buildinfo"))
                .then_some(2)
        };
        assert_eq!(detect(&candidate), Some(2));
        assert!(candidate.has_symbol("main"));
        assert!(!candidate.has_symbol("no_such_symbol_anywhere"));
        let missing = MappedObject {
            path: "/nonexistent/file".into(),
            host_path: format!("/proc/{me}/root/nonexistent/file").into(),
            ..object.clone()
        };
        assert_eq!(detect(&MappedCandidate::new(me, &missing, "file")), None);
    }
}
