//! What a Go binary's DWARF says about one function: its parameters and results with their
//! types (as `abi::Shape`s), its code range, and where it was inlined, with where its
//! arguments are at each inlined copy's entry.
//!
//! Go compresses its DWARF sections (zlib, `SHF_COMPRESSED` or `.zdebug_*`); they are
//! decompressed here, up to `MAX_SECTION` bytes each. Go puts its types in their own unit and
//! refers to them across units, so references are resolved by their offset in `.debug_info`.

use std::{collections::HashMap, io::Read as _};

use gimli::{AttributeValue, DebugInfoOffset, EndianSlice, LittleEndian, UnitOffset};
use object::{Object as _, ObjectSection as _, ReadRef};

use super::{
    GoError,
    abi::{Piece, Shape},
};
use crate::elf::Elf;

type R<'a> = EndianSlice<'a, LittleEndian>;
/// `[low, high)` of a function's out-of-line code, if it has any.
type CodeRange = Option<(u64, u64)>;

/// A decompressed DWARF section larger than this is refused rather than held in memory.
const MAX_SECTION: u64 = 512 << 20;
/// `DW_AT_go_kind`: the `reflect.Kind` of a Go type.
const DW_AT_GO_KIND: gimli::DwAt = gimli::DwAt(0x2900);
/// Nested types (a struct of structs) are followed this deep at most.
const MAX_TYPE_DEPTH: usize = 16;

/// A parameter or result as DWARF declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// `url`, or `~r0` for an unnamed result.
    pub name: String,
    /// `string`, `*net/http.Client`.
    pub type_name: String,
    pub shape: Shape,
}

/// Where an argument is at an inlined copy's first instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InlineArg {
    /// In these registers (a string: pointer, length).
    Registers(Vec<Piece>),
    /// Not in registers there, or DWARF does not say.
    Unknown,
}

/// One place a function was inlined into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSite {
    /// The out-of-line function containing the copy.
    pub caller: String,
    /// The copy's first address (its entry), and the end of its first range.
    pub entry: u64,
    pub end: u64,
    /// Each parameter of the function at `entry`, in declaration order.
    pub args: Vec<InlineArg>,
}

/// What DWARF says about one function.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FunctionInfo {
    /// Its out-of-line code, `[low, high)`, if it has any.
    pub code: Option<(u64, u64)>,
    /// Receiver first, then the parameters, in declaration order.
    pub params: Vec<Value>,
    pub results: Vec<Value>,
    pub inlined: Vec<InlineSite>,
}

/// The decompressed DWARF sections of a binary.
pub struct Debug {
    sections: HashMap<gimli::SectionId, Vec<u8>>,
}

impl Debug {
    /// The binary's DWARF, or `None` when it has no `.debug_info` (built with `-ldflags=-w`,
    /// or stripped).
    pub fn load<'data, D: ReadRef<'data>>(elf: &Elf<'data, D>) -> Result<Option<Self>, GoError> {
        if elf.file.section_by_name(".debug_info").is_none() {
            return Ok(None);
        }
        let mut sections = HashMap::new();
        for id in [
            gimli::SectionId::DebugInfo,
            gimli::SectionId::DebugAbbrev,
            gimli::SectionId::DebugStr,
            gimli::SectionId::DebugLoc,
            gimli::SectionId::DebugRanges,
            gimli::SectionId::DebugLine,
        ] {
            let Some(section) = elf.file.section_by_name(id.name()) else {
                continue;
            };
            let bad = |why: String| GoError::BadDwarf(format!("{}: {why}", id.name()));
            let compressed = section.compressed_data().map_err(|e| bad(e.to_string()))?;
            let bytes = match compressed.format {
                object::CompressionFormat::None => compressed.data.to_vec(),
                object::CompressionFormat::Zlib => {
                    if compressed.uncompressed_size > MAX_SECTION {
                        return Err(bad(format!(
                            "{} bytes uncompressed, more than ustat reads",
                            compressed.uncompressed_size
                        )));
                    }
                    let mut out = Vec::with_capacity(compressed.uncompressed_size as usize);
                    flate2::read::ZlibDecoder::new(compressed.data)
                        .take(MAX_SECTION)
                        .read_to_end(&mut out)
                        .map_err(|e| bad(e.to_string()))?;
                    out
                }
                other => return Err(bad(format!("compressed as {other:?}"))),
            };
            sections.insert(id, bytes);
        }
        Ok(Some(Self { sections }))
    }

    fn dwarf(&self) -> gimli::Dwarf<R<'_>> {
        let empty: &[u8] = &[];
        let loaded = gimli::Dwarf::load(|id| -> Result<R<'_>, std::convert::Infallible> {
            Ok(EndianSlice::new(
                self.sections.get(&id).map_or(empty, Vec::as_slice),
                LittleEndian,
            ))
        });
        match loaded {
            Ok(dwarf) => dwarf,
            Err(never) => match never {},
        }
    }

    /// What DWARF says about the function named exactly `name` (`net/http.(*Client).Get`),
    /// or `None` if it does not describe it.
    pub fn function(&self, name: &str) -> Result<Option<FunctionInfo>, GoError> {
        Ok(self.functions(&[name])?.pop().flatten())
    }

    /// What DWARF says about each of `names`, in two passes over it whatever their number
    /// (a wildcard can name thousands).
    pub fn functions(&self, names: &[&str]) -> Result<Vec<Option<FunctionInfo>>, GoError> {
        Reader::new(self.dwarf())?.functions(names)
    }
}

/// The units of one DWARF, parsed once, for lookups by `.debug_info` offset.
struct Reader<'a> {
    dwarf: gimli::Dwarf<R<'a>>,
    units: Vec<gimli::Unit<R<'a>>>,
}

fn dwarf_error(e: gimli::Error) -> GoError {
    GoError::BadDwarf(e.to_string())
}

impl<'a> Reader<'a> {
    fn new(dwarf: gimli::Dwarf<R<'a>>) -> Result<Self, GoError> {
        let mut units = Vec::new();
        let mut headers = dwarf.units();
        while let Some(header) = headers.next().map_err(dwarf_error)? {
            units.push(dwarf.unit(header).map_err(dwarf_error)?);
        }
        Ok(Self { dwarf, units })
    }

    fn global(unit: &gimli::Unit<R<'a>>, offset: UnitOffset) -> Option<DebugInfoOffset> {
        offset.to_debug_info_offset(&unit.header)
    }

    /// The unit holding a `.debug_info` offset, and the offset within it.
    fn locate(&self, offset: DebugInfoOffset) -> Option<(usize, UnitOffset)> {
        self.units
            .iter()
            .enumerate()
            .find_map(|(i, unit)| Some((i, offset.to_unit_offset(&unit.header)?)))
    }

    /// A reference attribute as a `.debug_info` offset.
    fn reference(
        &self,
        unit: &gimli::Unit<R<'a>>,
        value: AttributeValue<R<'a>>,
    ) -> Option<DebugInfoOffset> {
        match value {
            AttributeValue::UnitRef(offset) => Self::global(unit, offset),
            AttributeValue::DebugInfoRef(offset) => Some(offset),
            _ => None,
        }
    }

    fn name(
        &self,
        unit: &gimli::Unit<R<'a>>,
        entry: &gimli::DebuggingInformationEntry<'_, '_, R<'a>>,
    ) -> Option<String> {
        let value = entry.attr_value(gimli::DW_AT_name).ok()??;
        let text = self.dwarf.attr_string(unit, value).ok()?;
        Some(String::from_utf8_lossy(text.slice()).into_owned())
    }

    fn functions(&self, wanted: &[&str]) -> Result<Vec<Option<FunctionInfo>>, GoError> {
        let index: HashMap<&str, usize> = wanted.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        // First pass: each function's own entry (concrete, with code, or abstract, inlined):
        // (unit index, offset in it, code range), and the abstract ones' offsets.
        let mut found: Vec<Option<(usize, UnitOffset, CodeRange)>> = vec![None; wanted.len()];
        let mut origins: HashMap<DebugInfoOffset, usize> = HashMap::new();
        for (unit_index, unit) in self.units.iter().enumerate() {
            let mut entries = unit.entries();
            while let Some((_, entry)) = entries.next_dfs().map_err(dwarf_error)? {
                if entry.tag() != gimli::DW_TAG_subprogram {
                    continue;
                }
                let Some(&i) = self.name(unit, entry).as_deref().and_then(|n| index.get(n)) else {
                    continue;
                };
                let code = self.code_range(unit, entry)?;
                let inlined = entry
                    .attr_value(gimli::DW_AT_inline)
                    .ok()
                    .flatten()
                    .is_some();
                if inlined && let Some(origin) = Self::global(unit, entry.offset()) {
                    origins.insert(origin, i);
                }
                if found[i].as_ref().is_none_or(|(_, _, c)| c.is_none()) {
                    found[i] = Some((unit_index, entry.offset(), code));
                }
            }
        }
        let mut infos: Vec<Option<FunctionInfo>> = Vec::with_capacity(wanted.len());
        for place in &found {
            infos.push(match place {
                Some((unit_index, offset, code)) => {
                    let (params, results) = self.values(&self.units[*unit_index], *offset)?;
                    Some(FunctionInfo {
                        code: *code,
                        params,
                        results,
                        inlined: Vec::new(),
                    })
                }
                None => None,
            });
        }
        if !origins.is_empty() {
            let nparams: Vec<usize> = infos
                .iter()
                .map(|i| i.as_ref().map_or(0, |i| i.params.len()))
                .collect();
            for (i, site) in self.inline_sites(&origins, &nparams)? {
                if let Some(info) = infos[i].as_mut() {
                    info.inlined.push(site);
                }
            }
            for info in infos.iter_mut().flatten() {
                info.inlined.sort_by_key(|s| s.entry);
                info.inlined.dedup_by_key(|s| s.entry);
            }
        }
        Ok(infos)
    }

    fn code_range(
        &self,
        unit: &gimli::Unit<R<'a>>,
        entry: &gimli::DebuggingInformationEntry<'_, '_, R<'a>>,
    ) -> Result<Option<(u64, u64)>, GoError> {
        let low = match entry.attr_value(gimli::DW_AT_low_pc).map_err(dwarf_error)? {
            Some(AttributeValue::Addr(low)) => low,
            _ => return Ok(None),
        };
        let high = match entry
            .attr_value(gimli::DW_AT_high_pc)
            .map_err(dwarf_error)?
        {
            Some(AttributeValue::Addr(high)) => high,
            Some(AttributeValue::Udata(len)) => low.saturating_add(len),
            _ => return Ok(None),
        };
        let _ = unit;
        Ok((high > low).then_some((low, high)))
    }

    /// The formal parameters under a subprogram: inputs (`DW_AT_variable_parameter` 0 or
    /// absent) and results (1).
    fn values(
        &self,
        unit: &gimli::Unit<R<'a>>,
        offset: UnitOffset,
    ) -> Result<(Vec<Value>, Vec<Value>), GoError> {
        let mut params = Vec::new();
        let mut results = Vec::new();
        let mut tree = unit.entries_tree(Some(offset)).map_err(dwarf_error)?;
        let root = tree.root().map_err(dwarf_error)?;
        let mut children = root.children();
        while let Some(child) = children.next().map_err(dwarf_error)? {
            let entry = child.entry();
            if entry.tag() != gimli::DW_TAG_formal_parameter {
                continue;
            }
            let name = self.name(unit, entry).unwrap_or_default();
            let is_result = matches!(
                entry.attr_value(gimli::DW_AT_variable_parameter),
                Ok(Some(AttributeValue::Flag(true)))
            );
            let (type_name, shape) = match entry
                .attr_value(gimli::DW_AT_type)
                .ok()
                .flatten()
                .and_then(|v| self.reference(unit, v))
            {
                Some(type_offset) => {
                    let type_name = self
                        .type_name(type_offset)
                        .unwrap_or_else(|| "?".to_string());
                    (type_name, self.shape(type_offset, 0))
                }
                None => ("?".into(), Shape::Unknown("DWARF gives it no type".into())),
            };
            let value = Value {
                name,
                type_name,
                shape,
            };
            if is_result {
                results.push(value);
            } else {
                params.push(value);
            }
        }
        Ok((params, results))
    }

    fn type_name(&self, offset: DebugInfoOffset) -> Option<String> {
        let (index, offset) = self.locate(offset)?;
        let unit = &self.units[index];
        let entry = unit.entry(offset).ok()?;
        self.name(unit, &entry)
    }

    /// The register-assignment shape of the type at `offset`.
    fn shape(&self, offset: DebugInfoOffset, depth: usize) -> Shape {
        let unknown = |why: &str| Shape::Unknown(why.to_string());
        if depth > MAX_TYPE_DEPTH {
            return unknown("its type nests too deep to follow");
        }
        let Some((index, unit_offset)) = self.locate(offset) else {
            return unknown("its type is outside the DWARF");
        };
        let unit = &self.units[index];
        let Ok(entry) = unit.entry(unit_offset) else {
            return unknown("its type cannot be read");
        };
        let size = entry
            .attr_value(gimli::DW_AT_byte_size)
            .ok()
            .flatten()
            .and_then(|v| v.udata_value())
            .unwrap_or(8);
        let target = entry
            .attr_value(gimli::DW_AT_type)
            .ok()
            .flatten()
            .and_then(|v| self.reference(unit, v));
        let kind = entry
            .attr_value(DW_AT_GO_KIND)
            .ok()
            .flatten()
            .and_then(|v| v.udata_value());
        let int = |signed| Shape::Int {
            size: u8::try_from(size).unwrap_or(8),
            signed,
        };
        match kind {
            Some(1) => Shape::Bool,
            Some(2..=6) => int(true),
            Some(7..=12) => int(false),
            Some(13 | 14) => Shape::Float,
            Some(15 | 16) => Shape::Complex,
            Some(17) => {
                let len = self.array_len(unit, unit_offset).unwrap_or(u64::MAX);
                match target {
                    Some(element) => Shape::Array {
                        len,
                        element: Box::new(self.shape(element, depth + 1)),
                    },
                    None => unknown("its array type has no element type"),
                }
            }
            Some(18 | 19 | 21 | 22 | 26) => Shape::Pointer,
            Some(20) => Shape::Interface,
            Some(23) => Shape::Slice,
            Some(24) => Shape::String,
            Some(25) => self.struct_shape(unit, unit_offset, depth),
            Some(other) => Shape::Unknown(format!("its type has Go kind {other}")),
            None => match entry.tag() {
                gimli::DW_TAG_typedef => match target {
                    Some(target) => self.shape(target, depth + 1),
                    None => unknown("its type is a typedef of nothing"),
                },
                gimli::DW_TAG_pointer_type => Shape::Pointer,
                gimli::DW_TAG_structure_type => self.struct_shape(unit, unit_offset, depth),
                gimli::DW_TAG_base_type => {
                    match entry.attr_value(gimli::DW_AT_encoding).ok().flatten() {
                        Some(AttributeValue::Encoding(gimli::DW_ATE_float)) => Shape::Float,
                        Some(AttributeValue::Encoding(gimli::DW_ATE_complex_float)) => {
                            Shape::Complex
                        }
                        Some(AttributeValue::Encoding(gimli::DW_ATE_boolean)) => Shape::Bool,
                        Some(AttributeValue::Encoding(gimli::DW_ATE_signed)) => int(true),
                        _ => int(false),
                    }
                }
                _ => unknown("its type is of a kind ustat does not read"),
            },
        }
    }

    fn struct_shape(&self, unit: &gimli::Unit<R<'a>>, offset: UnitOffset, depth: usize) -> Shape {
        let mut fields = Vec::new();
        let Ok(mut tree) = unit.entries_tree(Some(offset)) else {
            return Shape::Unknown("its struct type cannot be read".into());
        };
        let Ok(root) = tree.root() else {
            return Shape::Unknown("its struct type cannot be read".into());
        };
        let mut children = root.children();
        while let Ok(Some(child)) = children.next() {
            let entry = child.entry();
            if entry.tag() != gimli::DW_TAG_member {
                continue;
            }
            match entry
                .attr_value(gimli::DW_AT_type)
                .ok()
                .flatten()
                .and_then(|v| self.reference(unit, v))
            {
                Some(field) => fields.push(self.shape(field, depth + 1)),
                None => return Shape::Unknown("a field of its struct has no type".into()),
            }
        }
        if let Some(Shape::Unknown(why)) = fields.iter().find(|f| matches!(f, Shape::Unknown(_))) {
            return Shape::Unknown(why.clone());
        }
        Shape::Struct(fields)
    }

    fn array_len(&self, unit: &gimli::Unit<R<'a>>, offset: UnitOffset) -> Option<u64> {
        let mut tree = unit.entries_tree(Some(offset)).ok()?;
        let root = tree.root().ok()?;
        let mut children = root.children();
        while let Ok(Some(child)) = children.next() {
            let entry = child.entry();
            if entry.tag() == gimli::DW_TAG_subrange_type {
                if let Some(count) = entry
                    .attr_value(gimli::DW_AT_count)
                    .ok()
                    .flatten()
                    .and_then(|v| v.udata_value())
                {
                    return Some(count);
                }
                if let Some(upper) = entry
                    .attr_value(gimli::DW_AT_upper_bound)
                    .ok()
                    .flatten()
                    .and_then(|v| v.udata_value())
                {
                    return upper.checked_add(1);
                }
            }
        }
        None
    }

    /// Every inlined copy whose abstract origin is one of `origins` (each the index of a
    /// wanted function), with the caller it sits in and where each of that function's
    /// `nparams` parameters is at its entry.
    fn inline_sites(
        &self,
        origins: &HashMap<DebugInfoOffset, usize>,
        nparams: &[usize],
    ) -> Result<Vec<(usize, InlineSite)>, GoError> {
        let mut sites = Vec::new();
        for unit in &self.units {
            let mut entries = unit.entries();
            // The out-of-line function each depth is in.
            let mut depth: isize = 0;
            let mut callers: Vec<(isize, String)> = Vec::new();
            while let Some((delta, entry)) = entries.next_dfs().map_err(dwarf_error)? {
                depth += delta;
                while callers.last().is_some_and(|(d, _)| *d >= depth) {
                    callers.pop();
                }
                match entry.tag() {
                    gimli::DW_TAG_subprogram => {
                        if let Some(name) = self.name(unit, entry) {
                            callers.push((depth, name));
                        }
                    }
                    gimli::DW_TAG_inlined_subroutine => {
                        let origin = entry
                            .attr_value(gimli::DW_AT_abstract_origin)
                            .ok()
                            .flatten()
                            .and_then(|v| self.reference(unit, v));
                        let Some(&function) = origin.and_then(|o| origins.get(&o)) else {
                            continue;
                        };
                        let nparams = nparams[function];
                        let Some((entry_pc, end)) = self.inline_range(unit, entry)? else {
                            continue;
                        };
                        let caller = callers
                            .last()
                            .map_or_else(|| "?".to_string(), |(_, n)| n.clone());
                        let args = self.inline_args(unit, entry.offset(), entry_pc, nparams)?;
                        sites.push((
                            function,
                            InlineSite {
                                caller,
                                entry: entry_pc,
                                end,
                                args,
                            },
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(sites)
    }

    /// An inlined copy's entry (`DW_AT_entry_pc`, else its lowest address) and the end of
    /// the range that holds it.
    fn inline_range(
        &self,
        unit: &gimli::Unit<R<'a>>,
        entry: &gimli::DebuggingInformationEntry<'_, '_, R<'a>>,
    ) -> Result<Option<(u64, u64)>, GoError> {
        let mut ranges = Vec::new();
        let mut iter = self.dwarf.die_ranges(unit, entry).map_err(dwarf_error)?;
        while let Some(range) = iter.next().map_err(dwarf_error)? {
            if range.end > range.begin {
                ranges.push((range.begin, range.end));
            }
        }
        ranges.sort_unstable();
        let entry_pc = match entry.attr_value(gimli::DW_AT_entry_pc).ok().flatten() {
            Some(AttributeValue::Addr(pc)) => Some(pc),
            _ => None,
        };
        Ok(match entry_pc {
            Some(pc) => ranges
                .iter()
                .find(|(b, e)| (*b..*e).contains(&pc))
                .map(|&(_, e)| (pc, e)),
            None => ranges.first().copied(),
        })
    }

    /// Where each parameter of an inlined copy is at `pc`, from its location lists.
    fn inline_args(
        &self,
        unit: &gimli::Unit<R<'a>>,
        offset: UnitOffset,
        pc: u64,
        nparams: usize,
    ) -> Result<Vec<InlineArg>, GoError> {
        let mut args = Vec::new();
        let mut tree = unit.entries_tree(Some(offset)).map_err(dwarf_error)?;
        let root = tree.root().map_err(dwarf_error)?;
        let mut children = root.children();
        while let Some(child) = children.next().map_err(dwarf_error)? {
            let entry = child.entry();
            if entry.tag() != gimli::DW_TAG_formal_parameter {
                continue;
            }
            if args.len() == nparams {
                break;
            }
            let location = entry
                .attr_value(gimli::DW_AT_location)
                .map_err(dwarf_error)?;
            let expression = match location {
                Some(AttributeValue::Exprloc(expression)) => Some(expression),
                Some(AttributeValue::LocationListsRef(list)) => {
                    let mut found = None;
                    let mut iter = self.dwarf.locations(unit, list).map_err(dwarf_error)?;
                    while let Some(location) = iter.next().map_err(dwarf_error)? {
                        if (location.range.begin..location.range.end).contains(&pc) {
                            found = Some(location.data);
                            break;
                        }
                    }
                    found
                }
                _ => None,
            };
            args.push(
                expression
                    .and_then(|e| registers_of(e, unit.encoding()))
                    .map_or(InlineArg::Unknown, InlineArg::Registers),
            );
        }
        args.resize(nparams, InlineArg::Unknown);
        Ok(args)
    }
}

/// The registers of an expression made only of `DW_OP_regN` and pieces of 8 bytes (or a
/// single register); `None` for anything else (a piece with no location, memory).
fn registers_of(
    expression: gimli::Expression<R<'_>>,
    encoding: gimli::Encoding,
) -> Option<Vec<Piece>> {
    let mut ops = expression.operations(encoding);
    let mut pieces = Vec::new();
    let mut pending: Option<u16> = None;
    while let Ok(Some(op)) = ops.next() {
        match op {
            gimli::Operation::Register { register } => {
                if pending.is_some() {
                    return None;
                }
                pending = Some(register.0);
            }
            gimli::Operation::Piece {
                size_in_bits: 64,
                bit_offset: None,
            } => {
                let (register, reg_off) = dwarf_register(pending.take()?)?;
                pieces.push(Piece {
                    register,
                    reg_off,
                    size: 8,
                    signed: false,
                });
            }
            _ => return None,
        }
    }
    if let Some(number) = pending {
        let (register, reg_off) = dwarf_register(number)?;
        pieces.push(Piece {
            register,
            reg_off,
            size: 8,
            signed: false,
        });
    }
    (!pieces.is_empty()).then_some(pieces)
}

/// DWARF's x86-64 register numbers (0 rax, 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi, 6 rbp, 7 rsp,
/// 8-15 r8-r15) as names and `pt_regs` offsets.
fn dwarf_register(number: u16) -> Option<(&'static str, u16)> {
    use ustat_common::pt_regs;
    Some(match number {
        0 => ("rax", pt_regs::RAX),
        1 => ("rdx", pt_regs::RDX),
        2 => ("rcx", pt_regs::RCX),
        3 => ("rbx", pt_regs::RBX),
        4 => ("rsi", pt_regs::RSI),
        5 => ("rdi", pt_regs::RDI),
        6 => ("rbp", pt_regs::RBP),
        7 => ("rsp", pt_regs::SP),
        8 => ("r8", pt_regs::R8),
        9 => ("r9", pt_regs::R9),
        10 => ("r10", pt_regs::R10),
        11 => ("r11", pt_regs::R11),
        12 => ("r12", pt_regs::R12),
        13 => ("r13", pt_regs::R13),
        14 => ("r14", pt_regs::R14),
        15 => ("r15", pt_regs::R15),
        _ => return None,
    })
}
