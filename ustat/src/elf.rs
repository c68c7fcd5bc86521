//! Opening ELF binaries and answering what probing needs from them: which file offset holds a
//! virtual address, and where a symbol is.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use object::{
    Endianness, Object as _, ObjectSymbol as _, elf,
    read::elf::{ElfFile64, FileHeader as _, ProgramHeader as _},
};

/// Positions in `e_ident` (the object crate reads them but does not export them).
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;

/// Why a file cannot be probed.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("{0}; ustat probes x86-64 executables and shared libraries")]
    Unsupported(&'static str),
    #[error("malformed ELF file: {0}")]
    Malformed(String),
}

/// An error about a named file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot read {path}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}", path = path.display())]
    Elf {
        path: PathBuf,
        #[source]
        source: ElfError,
    },
}

/// A loadable segment (`PT_LOAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub offset: u64,
    pub executable: bool,
}

/// A parsed ELF image of this host's kind (64-bit, little-endian, x86-64, executable or
/// shared object).
pub struct Elf<'data> {
    pub(crate) file: ElfFile64<'data, Endianness>,
    segments: Vec<Segment>,
}

impl<'data> Elf<'data> {
    pub fn parse(data: &'data [u8]) -> Result<Self, ElfError> {
        if !data.starts_with(&elf::ELFMAG) {
            return Err(ElfError::NotElf);
        }
        match data.get(EI_CLASS) {
            Some(&elf::ELFCLASS64) => {}
            Some(&elf::ELFCLASS32) => return Err(ElfError::Unsupported("a 32-bit ELF file")),
            _ => return Err(ElfError::Malformed("unknown ELF class".into())),
        }
        if data.get(EI_DATA) != Some(&elf::ELFDATA2LSB) {
            return Err(ElfError::Unsupported("a big-endian ELF file"));
        }
        let file =
            ElfFile64::<Endianness>::parse(data).map_err(|e| ElfError::Malformed(e.to_string()))?;
        let endian = file.endian();
        let header = file.elf_header();
        match header.e_machine(endian) {
            elf::EM_X86_64 => {}
            elf::EM_AARCH64 => return Err(ElfError::Unsupported("built for aarch64")),
            _ => return Err(ElfError::Unsupported("built for another architecture")),
        }
        match header.e_type(endian) {
            elf::ET_EXEC | elf::ET_DYN => {}
            elf::ET_REL => return Err(ElfError::Unsupported("a relocatable object, not linked")),
            elf::ET_CORE => return Err(ElfError::Unsupported("a core dump")),
            _ => {
                return Err(ElfError::Unsupported(
                    "neither an executable nor a shared library",
                ));
            }
        }
        let segments = file
            .elf_program_headers()
            .iter()
            .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
            .map(|ph| Segment {
                vaddr: ph.p_vaddr(endian),
                memsz: ph.p_memsz(endian),
                offset: ph.p_offset(endian),
                executable: ph.p_flags(endian) & elf::PF_X != 0,
            })
            .collect();
        Ok(Self { file, segments })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The file offset of `vaddr`, which must lie in an executable segment (code) or a
    /// non-executable one (data, such as a USDT semaphore).
    pub fn file_offset(&self, vaddr: u64, executable: bool) -> Option<u64> {
        file_offset(&self.segments, vaddr, executable)
    }

    /// The section's address and contents, if the file has one by that name.
    pub fn section(&self, name: &str) -> Option<(u64, &'data [u8])> {
        use object::{ObjectSection as _, read::Object as _};
        let section = self.file.section_by_name(name)?;
        Some((section.address(), section.data().ok()?))
    }

    /// The address of the symbol named `pattern` (a trailing `*` matches any suffix), from
    /// `.symtab` and `.dynsym`; defined symbols only. Several symbols may match if they are
    /// aliases of one address; matches at different addresses are ambiguous.
    pub fn symbol_address(&self, pattern: &str) -> Result<u64, SymbolError> {
        let matches = |name: &str| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        };
        let mut found: Option<u64> = None;
        for symbol in self.file.symbols().chain(self.file.dynamic_symbols()) {
            if symbol.is_undefined() || symbol.address() == 0 {
                continue;
            }
            let Ok(name) = symbol.name() else { continue };
            if !matches(name) {
                continue;
            }
            match found {
                Some(address) if address != symbol.address() => {
                    return Err(SymbolError::Ambiguous(pattern.to_string()));
                }
                _ => found = Some(symbol.address()),
            }
        }
        found.ok_or_else(|| SymbolError::NotFound(pattern.to_string()))
    }
}

impl Elf<'_> {
    /// The entry addresses of the function named `pattern` (as in `symbol_address`) and of
    /// its compiler clones of the kinds in `clones` (`constprop`: `f.constprop.N`), sorted.
    /// A clone of another kind (the arguments may have moved) is not an entry; when only such
    /// clones exist the error names one, so the user learns the true reason.
    pub fn function_entries(
        &self,
        pattern: &str,
        clones: &[&str],
    ) -> Result<Vec<u64>, SymbolError> {
        let matches = |name: &str| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        };
        let mut function: Option<u64> = None;
        let mut entries = Vec::new();
        let mut unusable_clone: Option<String> = None;
        for symbol in self.file.symbols().chain(self.file.dynamic_symbols()) {
            if symbol.is_undefined() || symbol.address() == 0 {
                continue;
            }
            let Ok(name) = symbol.name() else { continue };
            let (base, kinds) = crate::clone_name::split(name);
            if !matches(base) {
                continue;
            }
            let address = symbol.address();
            if kinds.is_empty() {
                match function {
                    Some(found) if found != address => {
                        return Err(SymbolError::Ambiguous(pattern.to_string()));
                    }
                    _ => function = Some(address),
                }
            } else if kinds.iter().all(|k| clones.contains(k)) {
                entries.push(address);
            } else {
                unusable_clone.get_or_insert_with(|| name.to_string());
            }
        }
        entries.extend(function);
        entries.sort_unstable();
        entries.dedup();
        match (entries.is_empty(), unusable_clone) {
            (false, _) => Ok(entries),
            (true, Some(clone)) => Err(SymbolError::OnlyClones {
                pattern: pattern.to_string(),
                clone,
            }),
            (true, None) => Err(SymbolError::NotFound(pattern.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("no symbol {0}")]
    NotFound(String),
    #[error(
        "{pattern} exists only as a compiler clone ({clone}) whose arguments ustat cannot vouch for"
    )]
    OnlyClones { pattern: String, clone: String },
    #[error("symbol {0} matches functions at several addresses")]
    Ambiguous(String),
}

/// Translates a virtual address through the loadable segments, with checked arithmetic.
pub fn file_offset(segments: &[Segment], vaddr: u64, executable: bool) -> Option<u64> {
    segments
        .iter()
        .filter(|s| s.executable == executable)
        .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.memsz)
        .and_then(|s| (vaddr - s.vaddr).checked_add(s.offset))
}

/// A file mapped read-only, to parse without copying (node is about 100 MB).
pub struct MappedFile {
    pub path: PathBuf,
    map: memmap2::Mmap,
}

impl MappedFile {
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let io = |source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.is_dir() {
            return Err(io(std::io::Error::other("it is a directory")));
        }
        // SAFETY: the mapping is private and read-only. If another process truncates the file
        // while it is mapped, reads fault; binaries and libraries in use are not rewritten in
        // place (package managers replace them), and ustat parses them once at start.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            map,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    pub fn elf(&self) -> Result<Elf<'_>, OpenError> {
        Elf::parse(&self.map).map_err(|source| OpenError::Elf {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEGMENTS: &[Segment] = &[
        Segment {
            vaddr: 0x400000,
            memsz: 0x1000,
            offset: 0,
            executable: false,
        },
        Segment {
            vaddr: 0x401000,
            memsz: 0x2000,
            offset: 0x1000,
            executable: true,
        },
        Segment {
            vaddr: 0x404e10,
            memsz: 0x300,
            offset: 0x3e10,
            executable: false,
        },
    ];

    #[test]
    fn code_addresses_need_an_executable_segment() {
        assert_eq!(file_offset(SEGMENTS, 0x401234, true), Some(0x1234));
        assert_eq!(file_offset(SEGMENTS, 0x402fff, true), Some(0x2fff));
        assert_eq!(file_offset(SEGMENTS, 0x403000, true), None);
        assert_eq!(file_offset(SEGMENTS, 0x400010, true), None);
    }

    #[test]
    fn data_addresses_need_a_data_segment() {
        assert_eq!(file_offset(SEGMENTS, 0x404e20, false), Some(0x3e20));
        assert_eq!(file_offset(SEGMENTS, 0x401234, false), None);
    }

    #[test]
    fn no_overflow_at_the_top_of_the_address_space() {
        let top = [Segment {
            vaddr: u64::MAX - 1,
            memsz: 2,
            offset: u64::MAX,
            executable: true,
        }];
        assert_eq!(file_offset(&top, u64::MAX, true), None);
        assert_eq!(file_offset(&top, u64::MAX - 1, true), Some(u64::MAX));
    }

    #[test]
    fn rejects_what_is_not_a_probeable_elf() {
        assert!(matches!(Elf::parse(b"#!/bin/sh\n"), Err(ElfError::NotElf)));
        assert!(matches!(Elf::parse(b""), Err(ElfError::NotElf)));
        let mut header = [0u8; 64];
        header[..4].copy_from_slice(&elf::ELFMAG);
        header[EI_CLASS] = elf::ELFCLASS32;
        assert!(
            matches!(Elf::parse(&header), Err(ElfError::Unsupported(m)) if m.contains("32-bit"))
        );
        header[EI_CLASS] = elf::ELFCLASS64;
        header[EI_DATA] = elf::ELFDATA2MSB;
        assert!(
            matches!(Elf::parse(&header), Err(ElfError::Unsupported(m)) if m.contains("big-endian"))
        );
        header[EI_DATA] = elf::ELFDATA2LSB;
        assert!(matches!(
            Elf::parse(&header[..20]),
            Err(ElfError::Malformed(_))
        ));
    }
}
