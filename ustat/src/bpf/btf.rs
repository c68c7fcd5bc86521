//! A minimal reader of BPF Type Format (BTF) data, enough to find where a member sits in a
//! kernel struct (the sampler needs `task_struct.thread.fsbase`).
//!
//! aya-obj 0.3 parses BTF too but keeps its types and their members crate-private, and
//! btf-rs is LGPL-2.1+ where ustat is MIT OR Apache-2.0; hence these few hundred lines.
//! The format is <https://docs.kernel.org/bpf/btf.html>: a header, a type section (each
//! type a 12-byte `btf_type` followed by kind-dependent data; ids count from 1 in section
//! order) and a string section of NUL-terminated names. Only the kernel's own
//! (native-endian) layout is read. Every read is bounds-checked: a malformed file gives a
//! [`BtfError`], never a panic.

use std::{io, path::Path};

/// `btf_header.magic` in the writer's byte order.
const MAGIC: u16 = 0xeb9f;
/// The only BTF version there is.
const VERSION: u8 = 1;
/// `struct btf_header`: magic, version, flags, hdr_len, then four u32 offsets/lengths.
const HEADER_LEN: usize = 24;
/// `struct btf_type`: name_off, info, size-or-type.
const TYPE_LEN: usize = 12;
/// `struct btf_member`: name_off, type, offset.
const MEMBER_LEN: usize = 12;
/// How deep anonymous members and type modifiers may nest before the data is called a loop.
const MAX_DEPTH: usize = 32;

// Type kinds (`BTF_INFO_KIND`), those this reader looks into or must step over.
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Why BTF data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("not BTF: magic {found:#06x}, expected {MAGIC:#06x} (or another byte order)")]
    Magic { found: u16 },
    #[error("BTF version {found} is not the known version {VERSION}")]
    Version { found: u8 },
    #[error("BTF is truncated: {what} ends at byte {end}, past the end of the {len} bytes")]
    Truncated {
        what: &'static str,
        end: u64,
        len: usize,
    },
    #[error("BTF type {id} has kind {kind}, whose layout this reader does not know")]
    UnknownKind { id: u32, kind: u32 },
    #[error("BTF header length {found} is shorter than the {HEADER_LEN} bytes of its fields")]
    HeaderLen { found: u32 },
    #[error("BTF refers to type {id}, which does not exist")]
    NoSuchType { id: u32 },
    #[error("BTF name offset {offset} is not a NUL-terminated string in the string section")]
    BadName { offset: u32 },
    #[error("BTF types nest more than {MAX_DEPTH} deep from type {id}")]
    TooDeep { id: u32 },
}

/// A member found in a struct: where it starts and what type it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Bits from the start of the outermost struct searched (anonymous members included).
    pub bit_offset: u32,
    /// The member's type id.
    pub type_id: u32,
}

/// Parsed BTF: the raw bytes plus where each type starts.
#[derive(Debug)]
pub struct Btf {
    data: Vec<u8>,
    /// Byte range of the string section in `data`.
    strings: std::ops::Range<usize>,
    /// `type_starts[id - 1]` is where type `id`'s `btf_type` starts in `data`.
    type_starts: Vec<usize>,
}

/// One type's fixed part.
#[derive(Debug, Clone, Copy)]
struct TypeHeader {
    name_off: u32,
    kind: u32,
    /// `vlen`: how many members, parameters, enumerators... follow.
    vlen: u32,
    kind_flag: bool,
    /// `size` for structs and unions, `type` for modifiers and typedefs.
    size_or_type: u32,
}

impl Btf {
    /// Reads and parses a BTF file, e.g. `/sys/kernel/btf/vmlinux`.
    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(data)
    }

    /// Checks the header and indexes every type by id.
    pub fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        let magic = u16::from_ne_bytes(array(&data, 0, "the header")?);
        if magic != MAGIC {
            return Err(BtfError::Magic { found: magic });
        }
        let version = array::<1>(&data, 2, "the header")?[0];
        if version != VERSION {
            return Err(BtfError::Version { found: version });
        }
        // hdr_len may exceed the fields known here (newer kernels append some); the
        // sections are placed relative to its end.
        let hdr_len = u32_at(&data, 4, "the header")?;
        let [type_off, type_len, str_off, str_len] =
            [8, 12, 16, 20].map(|at| u32_at(&data, at, "the header"));
        if (hdr_len as usize) < HEADER_LEN {
            return Err(BtfError::HeaderLen { found: hdr_len });
        }
        let types = section(&data, hdr_len, type_off?, type_len?, "the type section")?;
        let strings = section(&data, hdr_len, str_off?, str_len?, "the string section")?;

        let mut type_starts = Vec::new();
        let mut at = types.start;
        while at < types.end {
            let id = u32::try_from(type_starts.len() + 1).unwrap_or(u32::MAX);
            let header = type_header(&data[..types.end], at)?;
            let extra = extra_len(id, &header)?;
            let end = (at as u64) + (TYPE_LEN as u64) + extra;
            if end > types.end as u64 {
                return Err(truncated("the type section", end, types.end));
            }
            type_starts.push(at);
            at = end as usize;
        }
        Ok(Self {
            data,
            strings,
            type_starts,
        })
    }

    /// The id of the first struct called `name`, if any (a forward declaration of it is
    /// another kind, skipped).
    pub fn struct_by_name(&self, name: &str) -> Result<Option<u32>, BtfError> {
        for (index, &start) in self.type_starts.iter().enumerate() {
            let header = type_header(&self.data, start)?;
            if header.kind == KIND_STRUCT && self.name(header.name_off)? == name.as_bytes() {
                return Ok(Some(index as u32 + 1));
            }
        }
        Ok(None)
    }

    /// The member called `name` of the struct or union `type_id` (through typedefs and
    /// qualifiers), looking inside anonymous struct and union members too: their offsets
    /// add up. `None` when there is no such member.
    pub fn member(&self, type_id: u32, name: &str) -> Result<Option<Member>, BtfError> {
        self.member_within(type_id, name.as_bytes(), 0, 0)
    }

    fn member_within(
        &self,
        type_id: u32,
        name: &[u8],
        base_bits: u32,
        depth: usize,
    ) -> Result<Option<Member>, BtfError> {
        if depth > MAX_DEPTH {
            return Err(BtfError::TooDeep { id: type_id });
        }
        let (id, header) = self.resolve(type_id)?;
        if header.kind != KIND_STRUCT && header.kind != KIND_UNION {
            return Ok(None);
        }
        let first = self.start(id)? + TYPE_LEN;
        for index in 0..header.vlen as usize {
            // In range: parse() checked the members fit in the type section.
            let at = first + index * MEMBER_LEN;
            let member_name = self.name(u32_at(&self.data, at, "a member")?)?;
            let member_type = u32_at(&self.data, at + 4, "a member")?;
            let offset = u32_at(&self.data, at + 8, "a member")?;
            // With kind_flag set, the top 8 bits are a bitfield's size, the rest the offset.
            let bits = if header.kind_flag {
                offset & 0x00ff_ffff
            } else {
                offset
            };
            let bit_offset = base_bits.saturating_add(bits);
            if member_name == name {
                return Ok(Some(Member {
                    bit_offset,
                    type_id: member_type,
                }));
            }
            if member_name.is_empty() {
                let found = self.member_within(member_type, name, bit_offset, depth + 1)?;
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
    }

    /// Follows typedefs and qualifiers from `type_id` to the type they name.
    fn resolve(&self, type_id: u32) -> Result<(u32, TypeHeader), BtfError> {
        let mut id = type_id;
        for _ in 0..=MAX_DEPTH {
            let header = type_header(&self.data, self.start(id)?)?;
            match header.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = header.size_or_type;
                }
                _ => return Ok((id, header)),
            }
        }
        Err(BtfError::TooDeep { id: type_id })
    }

    /// Where type `id` starts; id 0 (void) has no entry.
    fn start(&self, id: u32) -> Result<usize, BtfError> {
        (id as usize)
            .checked_sub(1)
            .and_then(|index| self.type_starts.get(index))
            .copied()
            .ok_or(BtfError::NoSuchType { id })
    }

    /// The NUL-terminated name at `offset` in the string section (empty for anonymous).
    fn name(&self, offset: u32) -> Result<&[u8], BtfError> {
        let bad = || BtfError::BadName { offset };
        let strings = self.data.get(self.strings.clone()).ok_or_else(bad)?;
        let rest = strings.get(offset as usize..).ok_or_else(bad)?;
        let len = rest.iter().position(|&b| b == 0).ok_or_else(bad)?;
        Ok(&rest[..len])
    }
}

/// How many bytes follow a type's `btf_type`, by kind.
fn extra_len(id: u32, header: &TypeHeader) -> Result<u64, BtfError> {
    let vlen = u64::from(header.vlen);
    Ok(match header.kind {
        KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
        // A u32 of encoding, offset and bits; a variable's linkage; a tag's component index.
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        // struct btf_array: element type, index type, element count.
        KIND_ARRAY => 12,
        // struct btf_member: name, type, offset.
        KIND_STRUCT | KIND_UNION => vlen * MEMBER_LEN as u64,
        // struct btf_enum: name, value; struct btf_param: name, type.
        KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
        // struct btf_var_secinfo: type, offset, size; struct btf_enum64: name, lo32, hi32.
        KIND_DATASEC | KIND_ENUM64 => vlen * 12,
        kind => return Err(BtfError::UnknownKind { id, kind }),
    })
}

/// Decodes the `btf_type` at `at`.
fn type_header(data: &[u8], at: usize) -> Result<TypeHeader, BtfError> {
    let name_off = u32_at(data, at, "a type")?;
    let info = u32_at(data, at + 4, "a type")?;
    let size_or_type = u32_at(data, at + 8, "a type")?;
    Ok(TypeHeader {
        name_off,
        // info: bits 0-15 vlen, bits 24-28 kind, bit 31 kind_flag.
        vlen: info & 0xffff,
        kind: (info >> 24) & 0x1f,
        kind_flag: info >> 31 == 1,
        size_or_type,
    })
}

/// The byte range of a section `off` bytes after the header, checked to lie in `data`.
fn section(
    data: &[u8],
    hdr_len: u32,
    off: u32,
    len: u32,
    what: &'static str,
) -> Result<std::ops::Range<usize>, BtfError> {
    let start = u64::from(hdr_len) + u64::from(off);
    let end = start + u64::from(len);
    if end > data.len() as u64 {
        return Err(truncated(what, end, data.len()));
    }
    Ok(start as usize..end as usize)
}

fn u32_at(data: &[u8], at: usize, what: &'static str) -> Result<u32, BtfError> {
    array(data, at, what).map(u32::from_ne_bytes)
}

/// `N` bytes at `at`, or a truncation error naming `what` was being read.
fn array<const N: usize>(data: &[u8], at: usize, what: &'static str) -> Result<[u8; N], BtfError> {
    at.checked_add(N)
        .and_then(|end| data.get(at..end))
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| truncated(what, at as u64 + N as u64, data.len()))
}

fn truncated(what: &'static str, end: u64, len: usize) -> BtfError {
    BtfError::Truncated { what, end, len }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes BTF the way the kernel lays it out: header, types, strings.
    struct Writer {
        types: Vec<u8>,
        strings: Vec<u8>,
        next_id: u32,
    }

    impl Writer {
        fn new() -> Self {
            Self {
                types: Vec::new(),
                // Offset 0 is the empty name of anonymous types and members.
                strings: vec![0],
                next_id: 1,
            }
        }

        fn name(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let offset = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            offset
        }

        /// Appends a type and returns its id; `extra` is its kind-dependent data.
        fn add(
            &mut self,
            name: &str,
            kind: u32,
            kind_flag: bool,
            vlen: u32,
            size_or_type: u32,
            extra: &[u32],
        ) -> u32 {
            let name_off = self.name(name);
            let info = (u32::from(kind_flag) << 31) | (kind << 24) | vlen;
            for word in [name_off, info, size_or_type].iter().chain(extra) {
                self.types.extend_from_slice(&word.to_ne_bytes());
            }
            self.next_id += 1;
            self.next_id - 1
        }

        /// A struct or union from (name, type, offset word) members.
        fn aggregate(
            &mut self,
            name: &str,
            kind: u32,
            kind_flag: bool,
            size: u32,
            members: &[(&str, u32, u32)],
        ) -> u32 {
            let mut extra = Vec::new();
            for &(member, type_id, offset) in members {
                extra.extend([self.name(member), type_id, offset]);
            }
            self.add(name, kind, kind_flag, members.len() as u32, size, &extra)
        }

        fn finish(self) -> Vec<u8> {
            let type_len = self.types.len() as u32;
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC.to_ne_bytes());
            out.extend_from_slice(&[VERSION, 0]);
            for word in [
                HEADER_LEN as u32,
                0,
                type_len,
                type_len,
                self.strings.len() as u32,
            ] {
                out.extend_from_slice(&word.to_ne_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// Ids of the sample's interesting types.
    struct Sample {
        bytes: Vec<u8>,
        outer: u32,
        outer_typedef: u32,
        int: u32,
    }

    /// struct outer {                    // kind_flag: members carry bitfield sizes
    ///     int flags:3;                  // bit 0
    ///     union {                       // bit 32, anonymous
    ///         int either;
    ///         struct { int pad; int target; };  // target at bit 32 + 32
    ///     };
    ///     int last:5;                   // bit 96
    /// };
    /// preceded by types of every variable-length kind, so a wrong size for any of them
    /// misplaces every id after it, and a forward declaration of `outer`.
    fn sample() -> Sample {
        let mut w = Writer::new();
        w.add("outer", KIND_FWD, false, 0, 0, &[]);
        let int = w.add("int", KIND_INT, false, 0, 4, &[(1 << 24) | 32]);
        w.add("", KIND_PTR, false, 0, int, &[]);
        w.add("", KIND_ARRAY, false, 0, 0, &[int, int, 4]);
        w.add("colour", KIND_ENUM, false, 2, 4, &[0, 0, 0, 1]);
        w.add("big", KIND_ENUM64, false, 1, 8, &[0, 1, 2]);
        w.add("", KIND_FUNC_PROTO, false, 2, int, &[0, int, 0, int]);
        w.add("f", KIND_FUNC, false, 0, int + 5, &[]);
        w.add("v", KIND_VAR, false, 0, int, &[1]);
        w.add(".data", KIND_DATASEC, false, 1, 4, &[int + 7, 0, 4]);
        w.add("tag", KIND_DECL_TAG, false, 0, int, &[u32::MAX]);
        w.add("double", KIND_FLOAT, false, 0, 8, &[]);
        let padded = w.aggregate(
            "",
            KIND_STRUCT,
            false,
            8,
            &[("pad", int, 0), ("target", int, 32)],
        );
        let union = w.aggregate(
            "",
            KIND_UNION,
            false,
            8,
            &[("either", int, 0), ("", padded, 0)],
        );
        let volatile_union = w.add("", KIND_VOLATILE, false, 0, union, &[]);
        let outer = w.aggregate(
            "outer",
            KIND_STRUCT,
            true,
            16,
            &[
                ("flags", int, 3 << 24),
                ("", volatile_union, 32),
                ("last", int, (5 << 24) | 96),
            ],
        );
        let outer_typedef = w.add("outer_t", KIND_TYPEDEF, false, 0, outer, &[]);
        Sample {
            bytes: w.finish(),
            outer,
            outer_typedef,
            int,
        }
    }

    fn offset(btf: &Btf, type_id: u32, name: &str) -> Option<u32> {
        btf.member(type_id, name)
            .expect("well-formed")
            .map(|m| m.bit_offset)
    }

    #[test]
    fn finds_members_directly_in_anonymous_members_and_through_typedefs() {
        let sample = sample();
        let btf = Btf::parse(sample.bytes).expect("well-formed");
        // The forward declaration comes first but has no members.
        assert_eq!(btf.struct_by_name("outer").unwrap(), Some(sample.outer));
        assert_eq!(btf.struct_by_name("inner").unwrap(), None);
        // Bitfield sizes in the top 8 bits are masked off.
        assert_eq!(offset(&btf, sample.outer, "flags"), Some(0));
        assert_eq!(offset(&btf, sample.outer, "last"), Some(96));
        // Inside the anonymous union, then the anonymous struct within it: offsets add.
        assert_eq!(offset(&btf, sample.outer, "either"), Some(32));
        assert_eq!(offset(&btf, sample.outer, "target"), Some(64));
        assert_eq!(
            btf.member(sample.outer_typedef, "target").unwrap(),
            Some(Member {
                bit_offset: 64,
                type_id: sample.int
            })
        );
        assert_eq!(offset(&btf, sample.outer, "missing"), None);
        // Not a struct: no members at all.
        assert_eq!(offset(&btf, sample.int, "flags"), None);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().bytes;
        for len in 0..bytes.len() {
            assert!(
                Btf::parse(bytes[..len].to_vec()).is_err(),
                "{len} bytes parsed"
            );
        }
    }

    #[test]
    fn a_wrong_magic_or_version_is_refused() {
        let mut swapped = sample().bytes;
        swapped.swap(0, 1);
        assert!(matches!(Btf::parse(swapped), Err(BtfError::Magic { .. })));
        let mut version = sample().bytes;
        version[2] = 2;
        assert!(matches!(
            Btf::parse(version),
            Err(BtfError::Version { found: 2 })
        ));
    }

    #[test]
    fn an_unknown_kind_is_refused_rather_than_misread() {
        let mut w = Writer::new();
        w.add("int", KIND_INT, false, 0, 4, &[32]);
        w.add("new", 31, false, 0, 0, &[]);
        assert!(matches!(
            Btf::parse(w.finish()),
            Err(BtfError::UnknownKind { id: 2, kind: 31 })
        ));
    }

    #[test]
    fn bad_references_and_loops_are_errors() {
        let mut w = Writer::new();
        // A typedef that names itself, and a struct whose member's name is past the strings.
        let looped = w.add("loop", KIND_TYPEDEF, false, 0, 1, &[]);
        let dangling = w.add("dangling", KIND_TYPEDEF, false, 0, 99, &[]);
        let bad_name = w.add("s", KIND_STRUCT, false, 1, 4, &[1 << 20, 0, 0]);
        let btf = Btf::parse(w.finish()).expect("well-formed layout");
        assert!(matches!(
            btf.member(looped, "x"),
            Err(BtfError::TooDeep { .. })
        ));
        assert!(matches!(
            btf.member(dangling, "x"),
            Err(BtfError::NoSuchType { id: 99 })
        ));
        assert!(matches!(
            btf.member(bad_name, "x"),
            Err(BtfError::BadName { .. })
        ));
        assert!(matches!(
            btf.member(0, "x"),
            Err(BtfError::NoSuchType { id: 0 })
        ));
    }

    #[test]
    fn no_corrupted_byte_makes_it_panic() {
        let bytes = sample().bytes;
        for at in 0..bytes.len() {
            for value in [0x00, 0x7f, 0xff] {
                let mut corrupt = bytes.clone();
                corrupt[at] = value;
                if let Ok(btf) = Btf::parse(corrupt) {
                    for id in 0..20 {
                        let _ = btf.member(id, "target");
                    }
                    let _ = btf.struct_by_name("outer");
                }
            }
        }
    }
}
