//! Function names and ranges from `.gopclntab`, the table the Go runtime itself uses for
//! stack traces: it is there even when the symbol table is stripped (`-ldflags=-s`).
//! Only the layout of Go 1.18 and later is read (magic 0xfffffff0, 0xfffffff1).

/// A function in the table: `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub start: u64,
    pub end: u64,
}

const MAGIC_118: u32 = 0xffff_fff0;
const MAGIC_120: u32 = 0xffff_fff1;

fn word(table: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(table.get(at..at + 8)?.try_into().ok()?))
}

fn u32_at(table: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(table.get(at..at + 4)?.try_into().ok()?))
}

/// Every function in the table, or `None` when its layout is not one ustat reads.
pub fn functions(table: &[u8]) -> Option<Vec<Function>> {
    let magic = u32_at(table, 0)?;
    if (magic != MAGIC_118 && magic != MAGIC_120) || table.get(7) != Some(&8) {
        return None;
    }
    let nfunc = usize::try_from(word(table, 8)?).ok()?;
    let text_start = word(table, 24)?;
    let names = usize::try_from(word(table, 32)?).ok()?;
    let pcln = usize::try_from(word(table, 64)?).ok()?;
    // Each function takes 8 bytes of the function table: more than fit is a corrupt count.
    if nfunc > table.len() / 8 {
        return None;
    }
    let mut functions = Vec::with_capacity(nfunc);
    for i in 0..nfunc {
        let at = pcln.checked_add(i * 8)?;
        let entry = u32_at(table, at)?;
        let func_offset = usize::try_from(u32_at(table, at + 4)?).ok()?;
        let next = u32_at(table, at + 8)?;
        let name_offset = u32_at(table, pcln.checked_add(func_offset)?.checked_add(4)?)?;
        let name_at = names.checked_add(usize::try_from(name_offset).ok()?)?;
        let rest = table.get(name_at..)?;
        let name = &rest[..rest.iter().position(|&b| b == 0)?];
        functions.push(Function {
            name: String::from_utf8_lossy(name).into_owned(),
            start: text_start + u64::from(entry),
            end: text_start + u64::from(next),
        });
    }
    Some(functions)
}
