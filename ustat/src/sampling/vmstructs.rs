//! HotSpot's own description of its layout: the `gHotSpotVMStructs` and `gHotSpotVMTypes`
//! tables libjvm.so exports for serviceability tools, read once from a JVM's memory. Each
//! struct entry names a type and a field and gives its offset (or, for a static field, its
//! address); each type entry gives a type's size. Every count and length read is bounded:
//! the tables are in memory the traced process could have changed.

use std::collections::HashMap;

use super::memory::{Remote, field_u64};

/// The exported symbols that locate the tables and their entries' fields.
pub const SYMBOLS: [&str; 12] = [
    "gHotSpotVMStructs",
    "gHotSpotVMStructEntryArrayStride",
    "gHotSpotVMStructEntryTypeNameOffset",
    "gHotSpotVMStructEntryFieldNameOffset",
    "gHotSpotVMStructEntryTypeStringOffset",
    "gHotSpotVMStructEntryIsStaticOffset",
    "gHotSpotVMStructEntryOffsetOffset",
    "gHotSpotVMStructEntryAddressOffset",
    "gHotSpotVMTypes",
    "gHotSpotVMTypeEntryArrayStride",
    "gHotSpotVMTypeEntryTypeNameOffset",
    "gHotSpotVMTypeEntrySizeOffset",
];

/// Most entries read of one table (real ones hold a few thousand).
const MAX_ENTRIES: usize = 1 << 16;
/// Longest entry (real ones are under 64 bytes).
const MAX_STRIDE: u64 = 256;
/// Longest type or field name read.
const MAX_NAME: usize = 256;

/// One field: its offset in its type, or the address of a static field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Offset(u64),
    Static(u64),
}

/// The tables, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VmStructs {
    pub fields: HashMap<(String, String), Field>,
    /// Each field's C++ type, as the table spells it (`int`, `int16_t`, `address`).
    pub field_types: HashMap<(String, String), String>,
    pub sizes: HashMap<String, u64>,
}

impl VmStructs {
    /// The offset of `type_name::field`.
    pub fn offset(&self, type_name: &str, field: &str) -> Result<u64, String> {
        match self.fields.get(&(type_name.to_string(), field.to_string())) {
            Some(Field::Offset(offset)) => Ok(*offset),
            Some(Field::Static(_)) => Err(format!("{type_name}::{field} is static")),
            None => Err(format!("its gHotSpotVMStructs has no {type_name}::{field}")),
        }
    }

    /// The first of `fields` of `type_name` that exists (fields renamed between versions).
    pub fn offset_of_any(&self, type_name: &str, fields: &[&str]) -> Result<(u64, usize), String> {
        fields
            .iter()
            .enumerate()
            .find_map(|(i, field)| self.offset(type_name, field).ok().map(|o| (o, i)))
            .ok_or_else(|| {
                format!(
                    "its gHotSpotVMStructs has no {type_name}::{}",
                    fields.join(" or ")
                )
            })
    }

    /// The address of the static field `type_name::field`.
    pub fn address(&self, type_name: &str, field: &str) -> Result<u64, String> {
        match self.fields.get(&(type_name.to_string(), field.to_string())) {
            Some(Field::Static(address)) => Ok(*address),
            Some(Field::Offset(_)) => Err(format!("{type_name}::{field} is not static")),
            None => Err(format!("its gHotSpotVMStructs has no {type_name}::{field}")),
        }
    }

    /// The C++ type of `type_name::field`, as the table spells it.
    pub fn field_type(&self, type_name: &str, field: &str) -> Option<&str> {
        self.field_types
            .get(&(type_name.to_string(), field.to_string()))
            .map(String::as_str)
    }

    pub fn size(&self, type_name: &str) -> Result<u64, String> {
        self.sizes
            .get(type_name)
            .copied()
            .ok_or_else(|| format!("its gHotSpotVMTypes has no {type_name}"))
    }
}

/// Reads both tables, `symbols` being the process addresses of `SYMBOLS`, in order.
pub fn read(memory: &Remote, symbols: &[u64; 12]) -> Result<VmStructs, String> {
    let value = |i: usize| {
        memory
            .u64(symbols[i])
            .map_err(|e| format!("cannot read {}: {e}", SYMBOLS[i]))
    };
    let mut out = VmStructs::default();
    let structs = Entries {
        base: value(0)?,
        stride: value(1)?,
        type_name: value(2)?,
        field_name: value(3)?,
    };
    let (type_string, is_static, offset, address) = (value(4)?, value(5)?, value(6)?, value(7)?);
    structs.each(memory, |entry, type_name| {
        let Some(field_name) = read_name(memory, field_u64(entry, structs.field_name as u32)?)
        else {
            return Some(());
        };
        if let Some(text) =
            field_u64(entry, type_string as u32).and_then(|at| read_name(memory, at))
        {
            out.field_types
                .insert((type_name.clone(), field_name.clone()), text);
        }
        let is_static = entry.get(is_static as usize).copied()? != 0;
        let field = if is_static {
            Field::Static(field_u64(entry, address as u32)?)
        } else {
            Field::Offset(field_u64(entry, offset as u32)?)
        };
        out.fields.insert((type_name, field_name), field);
        Some(())
    })?;
    let types = Entries {
        base: value(8)?,
        stride: value(9)?,
        type_name: value(10)?,
        field_name: 0,
    };
    let size = value(11)?;
    types.each(memory, |entry, type_name| {
        out.sizes.insert(type_name, field_u64(entry, size as u32)?);
        Some(())
    })?;
    if out.fields.is_empty() || out.sizes.is_empty() {
        return Err("its gHotSpotVMStructs or gHotSpotVMTypes table is empty".into());
    }
    Ok(out)
}

/// A table: where it is, how long an entry is, and where in an entry its type's name is.
struct Entries {
    base: u64,
    stride: u64,
    type_name: u64,
    field_name: u64,
}

impl Entries {
    /// Calls `each` with every entry and its type's name, up to the entry without one.
    fn each(
        &self,
        memory: &Remote,
        mut each: impl FnMut(&[u8], String) -> Option<()>,
    ) -> Result<(), String> {
        if self.base == 0 || self.stride == 0 || self.stride > MAX_STRIDE {
            return Err(format!(
                "its HotSpot tables are not set up (base {:#x}, entries of {} bytes)",
                self.base, self.stride
            ));
        }
        if self.type_name + 8 > self.stride || self.field_name + 8 > self.stride {
            return Err("its HotSpot tables' entries are malformed".into());
        }
        for i in 0..MAX_ENTRIES as u64 {
            let entry = memory
                .bytes(self.base + i * self.stride, self.stride as usize)
                .map_err(|e| format!("cannot read its HotSpot tables: {e}"))?;
            let name_at = field_u64(&entry, self.type_name as u32).unwrap_or(0);
            if name_at == 0 {
                return Ok(());
            }
            let Some(type_name) = read_name(memory, name_at) else {
                continue;
            };
            if each(&entry, type_name).is_none() {
                return Err("its HotSpot tables' entries are malformed".into());
            }
        }
        Err("its HotSpot tables have no end".into())
    }
}

/// A type or field name, when it is printable ASCII (anything else is not one of HotSpot's).
fn read_name(memory: &Remote, address: u64) -> Option<String> {
    if address == 0 {
        return None;
    }
    let bytes = memory.c_string(address, MAX_NAME).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.bytes()
        .all(|b| b.is_ascii_graphic() || b == b' ')
        .then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a table in this process's memory, laid out as HotSpot's, and reads it back
    /// through `process_vm_readv` as ustat reads a JVM's.
    #[test]
    fn reads_fields_statics_and_sizes_to_the_terminating_entry() {
        // Struct entries: typeName, fieldName, typeString, isStatic (i32), offset, address.
        let names: Vec<std::ffi::CString> =
            ["CodeBlob", "_frame_size", "CodeCache", "_heaps", "int"]
                .iter()
                .map(|s| std::ffi::CString::new(*s).unwrap())
                .collect();
        let ptr = |i: usize| names[i].as_ptr() as u64;
        let mut structs: Vec<u64> = Vec::new();
        // Entry: [type, field, type string, is_static, offset, address] (6 words).
        structs.extend([ptr(0), ptr(1), ptr(4), 0, 28, 0]);
        structs.extend([ptr(2), ptr(3), 0, 1, 0, 0x7f00_1234]);
        structs.extend([0; 6]);
        let types: Vec<u64> = vec![ptr(0), 104, 0, 0];
        let struct_base = structs.as_ptr() as u64;
        let type_base = types.as_ptr() as u64;
        let values: [u64; 12] = [struct_base, 48, 0, 8, 16, 24, 32, 40, type_base, 16, 0, 8];
        let symbols: [u64; 12] = std::array::from_fn(|i| &values[i] as *const u64 as u64);
        let read = read(&Remote::new(std::process::id()), &symbols).unwrap();
        assert_eq!(read.offset("CodeBlob", "_frame_size"), Ok(28));
        assert_eq!(read.address("CodeCache", "_heaps"), Ok(0x7f00_1234));
        assert_eq!(read.size("CodeBlob"), Ok(104));
        assert_eq!(read.field_type("CodeBlob", "_frame_size"), Some("int"));
        assert!(read.offset("CodeBlob", "_name").is_err());
        assert_eq!(
            read.offset_of_any("CodeBlob", &["_code_offset", "_frame_size"]),
            Ok((28, 1))
        );
    }

    #[test]
    fn an_oversized_or_unset_table_is_refused() {
        let values: [u64; 12] = [0, 48, 0, 8, 16, 24, 32, 40, 0, 16, 0, 8];
        let symbols: [u64; 12] = std::array::from_fn(|i| &values[i] as *const u64 as u64);
        let error = read(&Remote::new(std::process::id()), &symbols).unwrap_err();
        assert!(error.contains("not set up"), "{error}");
    }
}
