//! Parsing ELF binaries and answering what probing needs from them: which file offset holds a
//! virtual address, and where a symbol is.
//!
//! Files are read with `pread` into buffers (`FileData`), never mapped: a file another user
//! truncates while ustat parses it gives a read error, not a SIGBUS, and only the parts parsed
//! are read (node is about 100 MB; its headers, notes and symbol tables about 18 MB).

use std::{
    cell::{OnceCell, RefCell},
    collections::{BTreeMap, HashMap},
    fs::File,
    ops::Range,
    os::unix::fs::FileExt as _,
};

use object::{
    Endianness, Object as _, ObjectSymbol as _, ReadRef, elf,
    read::elf::{ElfFile64, FileHeader as _, ProgramHeader as _, SectionHeader as _},
};

/// Positions in `e_ident` (the object crate reads them but does not export them).
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
/// The length of `e_ident`.
const EI_NIDENT: u64 = 16;

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

/// A loadable segment (`PT_LOAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    /// Bytes the file has for it (the rest, to `memsz`, is zero-filled: `.bss`).
    pub filesz: u64,
    pub offset: u64,
    pub executable: bool,
}

/// Where each defined symbol is, by exact name; `None` for a name defined at several
/// addresses.
type SymbolIndex<'data> = HashMap<&'data str, Option<u64>>;

/// A parsed ELF image of this host's kind (64-bit, little-endian, x86-64, executable or
/// shared object), over bytes in memory or a `FileData`.
pub struct Elf<'data, R: ReadRef<'data> = &'data [u8]> {
    pub(crate) file: ElfFile64<'data, Endianness, R>,
    segments: Vec<Segment>,
    /// Built on the first exact lookup, so a lookup per USDT note stays linear overall.
    symbols: OnceCell<SymbolIndex<'data>>,
}

impl<'data, R: ReadRef<'data>> Elf<'data, R> {
    pub fn parse(data: R) -> Result<Self, ElfError> {
        let len = data.len().map_err(|()| ElfError::NotElf)?;
        let ident = data
            .read_bytes_at(0, len.min(EI_NIDENT))
            .map_err(|()| ElfError::Malformed("the file cannot be read".into()))?;
        if !ident.starts_with(&elf::ELFMAG) {
            return Err(ElfError::NotElf);
        }
        match ident.get(EI_CLASS) {
            Some(&elf::ELFCLASS64) => {}
            Some(&elf::ELFCLASS32) => return Err(ElfError::Unsupported("a 32-bit ELF file")),
            _ => return Err(ElfError::Malformed("unknown ELF class".into())),
        }
        if ident.get(EI_DATA) != Some(&elf::ELFDATA2LSB) {
            return Err(ElfError::Unsupported("a big-endian ELF file"));
        }
        let file = ElfFile64::<Endianness, R>::parse(data)
            .map_err(|e| ElfError::Malformed(e.to_string()))?;
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
        // Read each string table whole before its strings are looked up one by one, so a
        // `FileData` serves every name from one buffer instead of a read per name.
        for section in file.elf_section_table().iter() {
            if section.sh_type(endian) == elf::SHT_STRTAB {
                let _ = data.read_bytes_at(section.sh_offset(endian), section.sh_size(endian));
            }
        }
        let segments = file
            .elf_program_headers()
            .iter()
            .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
            .map(|ph| Segment {
                vaddr: ph.p_vaddr(endian),
                memsz: ph.p_memsz(endian),
                filesz: ph.p_filesz(endian),
                offset: ph.p_offset(endian),
                executable: ph.p_flags(endian) & elf::PF_X != 0,
            })
            .collect();
        Ok(Self {
            file,
            segments,
            symbols: OnceCell::new(),
        })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The file offset of `vaddr`, which must lie in an executable segment (code) or a
    /// non-executable one (data, such as a USDT semaphore).
    pub fn file_offset(&self, vaddr: u64, executable: bool) -> Option<u64> {
        file_offset(&self.segments, vaddr, executable)
    }

    /// The 8-byte little-endian value the file holds at `vaddr` (in a data segment, within
    /// the bytes the file has for it), as the linker wrote it.
    pub fn pointer_at(&self, vaddr: u64) -> Option<u64> {
        let end = vaddr.checked_add(8)?;
        let segment = self.segments.iter().find(|s| {
            !s.executable
                && vaddr >= s.vaddr
                && s.vaddr.checked_add(s.filesz).is_some_and(|e| end <= e)
        })?;
        let offset = segment.offset + (vaddr - segment.vaddr);
        let bytes = self.file.data().read_bytes_at(offset, 8).ok()?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }

    /// Up to `len` bytes of code the file holds from `vaddr` on (in an executable segment).
    pub fn code_at(&self, vaddr: u64, len: usize) -> Option<&'data [u8]> {
        let segment = self
            .segments
            .iter()
            .find(|s| s.executable && vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz)?;
        let into = vaddr - segment.vaddr;
        let len = (len as u64).min(segment.filesz - into);
        self.file
            .data()
            .read_bytes_at(segment.offset.checked_add(into)?, len)
            .ok()
    }

    /// The section's address and contents, if the file has one by that name.
    pub fn section(&self, name: &str) -> Option<(u64, &'data [u8])> {
        use object::ObjectSection as _;
        let section = self.file.section_by_name(name)?;
        Some((section.address(), section.data().ok()?))
    }

    /// The address of the symbol named `pattern` (a trailing `*` matches any suffix), from
    /// `.symtab` and `.dynsym`; defined symbols only. Several symbols may match if they are
    /// aliases of one address; matches at different addresses are ambiguous.
    pub fn symbol_address(&self, pattern: &str) -> Result<u64, SymbolError> {
        let Some(prefix) = pattern.strip_suffix('*') else {
            return match self.symbol_index().get(pattern) {
                Some(Some(address)) => Ok(*address),
                Some(None) => Err(SymbolError::Ambiguous(pattern.to_string())),
                None => Err(SymbolError::NotFound(pattern.to_string())),
            };
        };
        let mut found: Option<u64> = None;
        for (name, address) in self.defined_symbols() {
            if !name.starts_with(prefix) {
                continue;
            }
            match found {
                Some(found) if found != address => {
                    return Err(SymbolError::Ambiguous(pattern.to_string()));
                }
                _ => found = Some(address),
            }
        }
        found.ok_or_else(|| SymbolError::NotFound(pattern.to_string()))
    }

    fn defined_symbols(&self) -> impl Iterator<Item = (&'data str, u64)> + '_ {
        self.file
            .symbols()
            .chain(self.file.dynamic_symbols())
            .filter(|symbol| !symbol.is_undefined() && symbol.address() != 0)
            .filter_map(|symbol| Some((symbol.name().ok()?, symbol.address())))
    }

    fn symbol_index(&self) -> &SymbolIndex<'data> {
        self.symbols.get_or_init(|| {
            let mut index = SymbolIndex::new();
            for (name, address) in self.defined_symbols() {
                index
                    .entry(name)
                    .and_modify(|known| {
                        if *known != Some(address) {
                            *known = None;
                        }
                    })
                    .or_insert(Some(address));
            }
            index
        })
    }
}

impl<'data, R: ReadRef<'data>> Elf<'data, R> {
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

/// At most this many bytes of one file are read while parsing it: node's headers, notes and
/// symbol tables take about 18 MB; a file that claims more is refused, not read.
pub const READ_BUDGET: u64 = 64 << 20;
/// Strings outside a string table read whole (section names are in one) end within this.
const MAX_STRING: u64 = 4096;

/// A file's bytes for the object crate, read with `pread` on demand and kept until it is
/// dropped. The length is fixed when it is made: a file that shrinks later gives read errors.
pub struct FileData<'f> {
    file: &'f File,
    len: u64,
    read: RefCell<Extents>,
}

/// The parts of the file read so far, by file offset.
#[derive(Default)]
struct Extents {
    /// By offset and length: an extent is never replaced, as its bytes may be borrowed.
    by_offset: BTreeMap<(u64, usize), Extent>,
    /// Bytes read so far, against `READ_BUDGET`.
    total: u64,
}

/// Bytes of the file from some offset, stored so that their address has the alignment their
/// file offset has (mod 8): the object crate reads 8-byte fields in place.
struct Extent {
    /// A `Vec`, not a `Box`: a Box asserts unique access when moved (as the map moves its
    /// values), while slices of these bytes are lent out.
    words: Vec<u64>,
    pad: usize,
    len: usize,
}

impl Extent {
    fn bytes(&self) -> &[u8] {
        // SAFETY: the words are initialised plain data, and u8 has no alignment; the slice
        // covers exactly the words' bytes.
        let all = unsafe {
            std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.words.len() * 8)
        };
        &all[self.pad..self.pad + self.len]
    }
}

impl<'f> FileData<'f> {
    /// The file's bytes up to `len` (its size when it was opened).
    pub fn new(file: &'f File, len: u64) -> Self {
        Self {
            file,
            len,
            read: RefCell::new(Extents::default()),
        }
    }

    /// The bytes at `range`, from an extent already read if one holds them.
    fn get(&self, range: Range<u64>) -> Result<&[u8], ()> {
        if range.start > range.end || range.end > self.len {
            return Err(());
        }
        let mut extents = self.read.borrow_mut();
        if let Some(bytes) = extents.containing(range.clone()) {
            // SAFETY: extents are never removed or changed while `self` lives, and each one's
            // words are a separate heap allocation that does not move when the map does.
            return Ok(unsafe { std::mem::transmute::<&[u8], &[u8]>(bytes) });
        }
        let len = usize::try_from(range.end - range.start).map_err(|_| ())?;
        if extents.total.saturating_add(len as u64) > READ_BUDGET {
            return Err(());
        }
        let pad = (range.start % 8) as usize;
        let mut words = Vec::new();
        words
            .try_reserve_exact((pad + len).div_ceil(8))
            .map_err(|_| ())?;
        words.resize((pad + len).div_ceil(8), 0u64);
        let mut extent = Extent { words, pad, len };
        {
            // SAFETY: as in `Extent::bytes`, mutably: the words are plain data and any byte
            // pattern is a valid u64.
            let all = unsafe {
                std::slice::from_raw_parts_mut(
                    extent.words.as_mut_ptr().cast::<u8>(),
                    extent.words.len() * 8,
                )
            };
            self.file
                .read_exact_at(&mut all[pad..pad + len], range.start)
                .map_err(|_| ())?;
        }
        extents.total += len as u64;
        let bytes = extents
            .by_offset
            .entry((range.start, len))
            .or_insert(extent);
        let bytes: &[u8] = &bytes.bytes()[..len];
        // SAFETY: as above.
        Ok(unsafe { std::mem::transmute::<&[u8], &[u8]>(bytes) })
    }
}

impl Extents {
    /// The bytes from `range.start` up to `range.end` or the end of the extent that holds
    /// `range.start`, whichever comes first.
    fn from(&self, range: Range<u64>) -> Option<&[u8]> {
        let (&(start, _), extent) = self
            .by_offset
            .range(..=(range.start, usize::MAX))
            .next_back()?;
        let from = usize::try_from(range.start - start).ok()?;
        let to = usize::try_from(range.end - start).ok()?.min(extent.len);
        extent.bytes().get(from..to)
    }

    fn containing(&self, range: Range<u64>) -> Option<&[u8]> {
        let (&(start, _), extent) = self
            .by_offset
            .range(..=(range.start, usize::MAX))
            .next_back()?;
        let from = usize::try_from(range.start - start).ok()?;
        let to = usize::try_from(range.end - start).ok()?;
        extent.bytes().get(from..to)
    }
}

impl<'a> ReadRef<'a> for &'a FileData<'_> {
    fn len(self) -> Result<u64, ()> {
        Ok(self.len)
    }

    fn read_bytes_at(self, offset: u64, size: u64) -> Result<&'a [u8], ()> {
        if size == 0 {
            return Ok(&[]);
        }
        self.get(offset..offset.checked_add(size).ok_or(())?)
    }

    fn read_bytes_at_until(self, range: Range<u64>, delimiter: u8) -> Result<&'a [u8], ()> {
        if range.start > range.end || range.end > self.len {
            return Err(());
        }
        // Within bytes read already (a string table read whole), else within MAX_STRING.
        if let Some(held) = self.read.borrow().from(range.clone())
            && let Some(len) = held.iter().position(|&b| b == delimiter)
        {
            // SAFETY: as in `get`: extents live, unchanged, as long as `self`.
            return Ok(unsafe { std::mem::transmute::<&[u8], &[u8]>(&held[..len]) });
        }
        let end = range.end.min(range.start.saturating_add(MAX_STRING));
        let bytes = self.get(range.start..end)?;
        let len = bytes.iter().position(|&b| b == delimiter).ok_or(())?;
        Ok(&bytes[..len])
    }
}

#[cfg(test)]
mod tests {
    use object::ReadRef as _;

    use super::*;

    const SEGMENTS: &[Segment] = &[
        Segment {
            vaddr: 0x400000,
            memsz: 0x1000,
            filesz: 0x1000,
            offset: 0,
            executable: false,
        },
        Segment {
            vaddr: 0x401000,
            memsz: 0x2000,
            filesz: 0x2000,
            offset: 0x1000,
            executable: true,
        },
        Segment {
            vaddr: 0x404e10,
            memsz: 0x300,
            filesz: 0x300,
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
            filesz: 2,
            offset: u64::MAX,
            executable: true,
        }];
        assert_eq!(file_offset(&top, u64::MAX, true), None);
        assert_eq!(file_offset(&top, u64::MAX - 1, true), Some(u64::MAX));
    }

    fn read_file(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut named = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut named, bytes).unwrap();
        let file = named.reopen().unwrap();
        (named, file)
    }

    #[test]
    fn file_data_reads_ranges_and_strings_and_nothing_past_the_end() {
        let (_named, file) = read_file(b"0123456789abc\0def\0");
        let data = FileData::new(&file, 18);
        let data = &data;
        assert_eq!(data.read_bytes_at(3, 4), Ok(&b"3456"[..]));
        assert_eq!(
            data.read_bytes_at(4, 2),
            Ok(&b"45"[..]),
            "served from the first read"
        );
        assert_eq!(data.read_bytes_at_until(10..18, 0), Ok(&b"abc"[..]));
        assert_eq!(data.read_bytes_at_until(14..18, 0), Ok(&b"def"[..]));
        assert_eq!(data.read_bytes_at(17, 2), Err(()));
        assert_eq!(data.read_bytes_at(u64::MAX, 2), Err(()));
        assert_eq!(
            data.read_bytes_at_until(0..10, 0),
            Err(()),
            "no NUL in range"
        );
    }

    #[test]
    fn a_file_that_shrinks_is_a_read_error_not_a_crash() {
        let (named, file) = read_file(&[7u8; 8192]);
        // The length was taken when the file was opened; then someone truncates it.
        let data = FileData::new(&file, 8192);
        named.as_file().set_len(100).unwrap();
        assert_eq!((&data).read_bytes_at(4096, 16), Err(()));
        assert_eq!((&data).read_bytes_at(0, 16), Ok(&[7u8; 16][..]));
    }

    #[test]
    fn reading_stops_at_the_budget() {
        let (named, file) = read_file(b"");
        named.as_file().set_len(READ_BUDGET + 4096).unwrap();
        let data = FileData::new(&file, READ_BUDGET + 4096);
        assert_eq!((&data).read_bytes_at(0, READ_BUDGET + 1), Err(()));
        assert!((&data).read_bytes_at(0, 4096).is_ok());
    }

    #[test]
    fn a_real_binary_parses_alike_from_memory_and_from_file_data() {
        let path = "/usr/bin/python3.11";
        let bytes = std::fs::read(path).unwrap();
        let in_memory = crate::usdt::probes_in(&Elf::<&[u8]>::parse(&bytes).unwrap()).unwrap();
        let file = File::open(path).unwrap();
        let data = FileData::new(&file, bytes.len() as u64);
        let elf = Elf::parse(&data).unwrap();
        assert_eq!(crate::usdt::probes_in(&elf).unwrap(), in_memory);
        assert_eq!(
            elf.symbol_address("PyThread_start_new_thread"),
            Elf::<&[u8]>::parse(&bytes)
                .unwrap()
                .symbol_address("PyThread_start_new_thread")
        );
        assert!(in_memory.is_some_and(|probes| !probes.is_empty()));
    }

    #[test]
    fn rejects_what_is_not_a_probeable_elf() {
        assert!(matches!(
            Elf::<&[u8]>::parse(b"#!/bin/sh\n"),
            Err(ElfError::NotElf)
        ));
        assert!(matches!(Elf::<&[u8]>::parse(b""), Err(ElfError::NotElf)));
        let mut header = [0u8; 64];
        header[..4].copy_from_slice(&elf::ELFMAG);
        header[EI_CLASS] = elf::ELFCLASS32;
        assert!(
            matches!(Elf::<&[u8]>::parse(&header), Err(ElfError::Unsupported(m)) if m.contains("32-bit"))
        );
        header[EI_CLASS] = elf::ELFCLASS64;
        header[EI_DATA] = elf::ELFDATA2MSB;
        assert!(
            matches!(Elf::<&[u8]>::parse(&header), Err(ElfError::Unsupported(m)) if m.contains("big-endian"))
        );
        header[EI_DATA] = elf::ELFDATA2LSB;
        assert!(matches!(
            Elf::<&[u8]>::parse(&header[..20]),
            Err(ElfError::Malformed(_))
        ));
    }
}
