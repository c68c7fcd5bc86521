//! USDT probes in a binary: every provider:name, every call site of it, where each site is in
//! the file, its semaphore, and how to read its arguments.

pub mod note;
pub mod spec;

use std::path::Path;

use object::ReadRef;
use ustat_common::{ArgSpec, ProbeSpec};

use crate::{
    binary::{Binary, OpenError},
    elf::Elf,
};
pub use note::{Note, NoteError};
pub use spec::{Arg, Location, SpecError};

/// One call site of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Virtual address of the probe's nop, after the prelink adjustment.
    pub address: u64,
    /// Virtual address of the semaphore, after the prelink adjustment.
    pub semaphore_address: Option<u64>,
    /// The argument spec as written in the note.
    pub arg_text: String,
    /// Where to attach and how to read the arguments, or why this site cannot be traced.
    pub target: Result<SiteTarget, SiteError>,
}

/// Why a site cannot be traced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiteError {
    #[error("its address {address:#x} is not in an executable segment")]
    NotCode { address: u64 },
    #[error("its semaphore address {address:#x} is not in a data segment")]
    SemaphoreNotData { address: u64 },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Lower(#[from] spec::LowerError),
}

/// What attaching a site needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteTarget {
    /// File offset of the probe's nop.
    pub offset: u64,
    /// File offset of the u16 semaphore, which the kernel raises while the probe is attached.
    pub semaphore_offset: Option<u64>,
    pub args: Vec<ArgSpec>,
    /// Signedness of each argument, for printing.
    pub signed: Vec<bool>,
}

impl SiteTarget {
    /// The `SPECS` entry for this site, with `tag` for the program to report.
    pub fn probe_spec(&self, tag: u32) -> ProbeSpec {
        let mut spec = ProbeSpec::EMPTY;
        spec.args[..self.args.len()].copy_from_slice(&self.args);
        spec.nargs = self.args.len() as u8;
        spec.tag = tag;
        spec
    }
}

/// A probe: a provider:name and all of its call sites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub provider: String,
    pub name: String,
    pub sites: Vec<Site>,
}

impl Probe {
    pub fn has_semaphore(&self) -> bool {
        self.sites.iter().any(|s| s.semaphore_address.is_some())
    }

    /// `provider:name`
    pub fn full_name(&self) -> String {
        format!("{}:{}", self.provider, self.name)
    }
}

/// Why a file's probes cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum UsdtError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("{path} has no USDT probes (no .note.stapsdt section)", path = path.display())]
    NoProbes { path: std::path::PathBuf },
    #[error("{path}", path = path.display())]
    BadNotes {
        path: std::path::PathBuf,
        #[source]
        source: NoteError,
    },
}

/// The probes of the file at `path` (a path the user gave), sorted by provider and name,
/// sites in file order.
pub fn probes_in_file(path: &Path) -> Result<Vec<Probe>, UsdtError> {
    probes_in_binary(&*Binary::open_given(path)?)
}

/// The probes of an opened binary, sorted by provider and name, sites in file order.
pub fn probes_in_binary(binary: &Binary) -> Result<Vec<Probe>, UsdtError> {
    let path = || binary.shown().to_path_buf();
    let data = binary.data();
    let elf = binary.elf(&data)?;
    match probes_in(&elf) {
        Ok(Some(probes)) if !probes.is_empty() => Ok(probes),
        Ok(_) => Err(UsdtError::NoProbes { path: path() }),
        Err(source) => Err(UsdtError::BadNotes {
            path: path(),
            source,
        }),
    }
}

/// The probes of a parsed binary; `Ok(None)` when it has no note section. Linear in the
/// number of notes.
pub fn probes_in<'data, R: ReadRef<'data>>(
    elf: &Elf<'data, R>,
) -> Result<Option<Vec<Probe>>, NoteError> {
    let Some(mut notes) = note::read_notes(elf)? else {
        return Ok(None);
    };
    let base = elf.section(".stapsdt.base").map(|(addr, _)| addr);
    let symbols = ElfSymbols(elf);
    // Grouped by sorting (stable: sites stay in file order), not by a search per note.
    let mut order: Vec<usize> = (0..notes.len()).collect();
    order.sort_by(|&a, &b| {
        (&notes[a].provider, &notes[a].name).cmp(&(&notes[b].provider, &notes[b].name))
    });
    let mut probes: Vec<Probe> = Vec::new();
    for i in order {
        let site = resolve_site(elf, base, &symbols, &notes[i]);
        let note = &mut notes[i];
        match probes.last_mut() {
            Some(probe) if probe.provider == note.provider && probe.name == note.name => {
                probe.sites.push(site)
            }
            _ => probes.push(Probe {
                provider: std::mem::take(&mut note.provider),
                name: std::mem::take(&mut note.name),
                sites: vec![site],
            }),
        }
    }
    Ok(Some(probes))
}

struct ElfSymbols<'a, 'data, R: ReadRef<'data>>(&'a Elf<'data, R>);

impl<'data, R: ReadRef<'data>> spec::SymbolLookup for ElfSymbols<'_, 'data, R> {
    /// Exact names only: a name in a note is not a pattern.
    fn address_of(&self, name: &str) -> Option<u64> {
        if name.ends_with('*') {
            return None;
        }
        self.0.symbol_address(name).ok()
    }
}

/// The prelink adjustment: when both `.stapsdt.base` and the note's base are set, addresses
/// move by the distance between them.
fn adjust(address: u64, section_base: Option<u64>, note_base: u64) -> u64 {
    match section_base {
        Some(section_base) if section_base != 0 && note_base != 0 => {
            address.wrapping_add(section_base.wrapping_sub(note_base))
        }
        _ => address,
    }
}

fn resolve_site<'data, R: ReadRef<'data>>(
    elf: &Elf<'data, R>,
    section_base: Option<u64>,
    symbols: &dyn spec::SymbolLookup,
    note: &Note,
) -> Site {
    let address = adjust(note.pc, section_base, note.base);
    let semaphore_address =
        (note.semaphore != 0).then(|| adjust(note.semaphore, section_base, note.base));
    let target = (|| {
        let offset = elf
            .file_offset(address, true)
            .ok_or(SiteError::NotCode { address })?;
        let semaphore_offset = match semaphore_address {
            Some(address) => Some(
                elf.file_offset(address, false)
                    .ok_or(SiteError::SemaphoreNotData { address })?,
            ),
            None => None,
        };
        let parsed = spec::parse(&note.args)?;
        let args = spec::lower(&parsed, address, symbols)?;
        Ok(SiteTarget {
            offset,
            semaphore_offset,
            signed: parsed.iter().map(|a| a.signed).collect(),
            args,
        })
    })();
    Site {
        address,
        semaphore_address,
        arg_text: note.args.clone(),
        target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelink_adjustment_needs_both_bases() {
        assert_eq!(adjust(0x1000, Some(0x5000), 0x4000), 0x2000);
        assert_eq!(adjust(0x1000, Some(0x3000), 0x4000), 0x0000);
        assert_eq!(adjust(0x1000, None, 0x4000), 0x1000);
        assert_eq!(adjust(0x1000, Some(0x5000), 0), 0x1000);
        assert_eq!(adjust(0x1000, Some(0), 0x4000), 0x1000);
    }
}
