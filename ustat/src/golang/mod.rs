//! Go binaries: recognising one (its build info), finding a function (symbol table, or
//! `.gopclntab` when stripped), where its parameters and results are under Go's register ABI
//! (typed from DWARF), its `RET` instructions for return probes, and where it was inlined.
//!
//! What this gives the tracer is addresses and registers; the tracer turns them into probe
//! points and argument specs. Go functions never get uretprobes (see `returns`); returns are
//! matched to their entries by the goroutine (`g`, in R14 under the register ABI), since a
//! goroutine moves between threads.

pub mod abi;
pub mod buildinfo;
pub mod dwarf;
pub mod pclntab;
pub mod returns;

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, ReadRef};

pub use abi::{G_REGISTER, INT_REGISTERS, Piece, Placement};
pub use buildinfo::BuildInfo;
pub use dwarf::{InlineArg, InlineSite};

use crate::elf::Elf;

/// Why a Go function cannot be analysed or traced as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoError {
    #[error("its Go build info cannot be read: {0}")]
    BadBuildInfo(String),
    #[error("its DWARF cannot be read: {0}")]
    BadDwarf(String),
    #[error("no Go function {name} in it (neither in its symbol table nor in .gopclntab)")]
    NoFunction { name: String },
    #[error("the code of {name} cannot be read")]
    NoCode { name: String },
    #[error("its code has bytes at {address:#x} that do not decode as x86-64 instructions")]
    Undecodable { address: u64 },
    #[error(
        "{name} has no RET instruction (it never returns, or only through a tail jump), so its returns cannot be probed"
    )]
    NoReturns { name: String },
}

/// A Go function, ready to be probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoFunction {
    pub name: String,
    /// Its out-of-line code `[start, end)`; `None` when it exists only inlined.
    pub code: Option<(u64, u64)>,
    /// Every `RET` in that code.
    pub returns: Vec<u64>,
    /// Where an entry probe goes: past the stack check, which restarts the function when
    /// the stack must grow (see `returns::Decoded::body`); the first instruction otherwise.
    pub entry: Option<u64>,
    /// Receiver first, then the parameters; empty without DWARF.
    pub params: Vec<GoValue>,
    pub results: Vec<GoValue>,
    /// Whether DWARF describes it (otherwise arguments are raw registers).
    pub typed: bool,
    /// The copies of it inlined into other functions.
    pub inlined: Vec<InlineSite>,
}

/// A parameter or result and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoValue {
    pub name: String,
    pub type_name: String,
    pub placement: Placement,
    /// A Go `string`: (pointer, length) in its two registers.
    pub is_string: bool,
}

/// A binary recognised as Go.
pub struct GoBinary {
    pub build: BuildInfo,
    debug: Option<dwarf::Debug>,
}

impl GoBinary {
    /// The binary's Go build info and DWARF, or `None` when it is not a Go binary (it has no
    /// `.go.buildinfo` section).
    pub fn recognise<'data, D: ReadRef<'data>>(
        elf: &Elf<'data, D>,
    ) -> Result<Option<Self>, GoError> {
        let Some(section) = elf.file.section_by_name(".go.buildinfo") else {
            return Ok(None);
        };
        let bytes = section
            .data()
            .map_err(|e| GoError::BadBuildInfo(e.to_string()))?;
        let read = |address: u64, len: u64| read_at(elf, address, len);
        let build = buildinfo::parse(bytes, &read)?;
        let debug = dwarf::Debug::load(elf)?;
        Ok(Some(Self { build, debug }))
    }

    /// Whether its arguments are in registers (Go 1.17+); `false` for older Go, whose
    /// arguments are on the stack and whose `g` is not in R14.
    pub fn register_abi(&self) -> bool {
        self.build.register_abi().unwrap_or(false)
    }

    /// Whether it has DWARF (not built with `-ldflags=-w`, not stripped).
    pub fn has_dwarf(&self) -> bool {
        self.debug.is_some()
    }

    /// The function named exactly `name`: its code, returns, typed parameters, inline sites.
    pub fn function<'data, D: ReadRef<'data>>(
        &self,
        elf: &Elf<'data, D>,
        name: &str,
    ) -> Result<GoFunction, GoError> {
        match self.functions(elf, &[name])?.pop() {
            Some(found) => found,
            None => Err(GoError::NoFunction { name: name.into() }),
        }
    }

    /// Each function of `names`, as `function` gives it, reading the DWARF once for all.
    pub fn functions<'data, D: ReadRef<'data>>(
        &self,
        elf: &Elf<'data, D>,
        names: &[&str],
    ) -> Result<Vec<Result<GoFunction, GoError>>, GoError> {
        let infos = match &self.debug {
            Some(debug) => debug.functions(names)?,
            None => vec![None; names.len()],
        };
        // Built once: a wildcard can name thousands of functions.
        let ranges = std::cell::OnceCell::new();
        Ok(names
            .iter()
            .zip(infos)
            .map(|(name, info)| {
                let code = info.as_ref().and_then(|i| i.code).or_else(|| {
                    ranges
                        .get_or_init(|| function_ranges(elf))
                        .get(*name)
                        .copied()
                });
                self.assemble(elf, name, code, info)
            })
            .collect())
    }

    fn assemble<'data, D: ReadRef<'data>>(
        &self,
        elf: &Elf<'data, D>,
        name: &str,
        code: Option<(u64, u64)>,
        info: Option<dwarf::FunctionInfo>,
    ) -> Result<GoFunction, GoError> {
        if code.is_none() && info.as_ref().is_none_or(|i| i.inlined.is_empty()) {
            return Err(GoError::NoFunction { name: name.into() });
        }
        let (returns, entry) = match code {
            Some((start, end)) => {
                let bytes = read_at(elf, start, end - start)
                    .ok_or_else(|| GoError::NoCode { name: name.into() })?;
                let decoded = returns::decode(start, &bytes)?;
                (decoded.returns, Some(decoded.body.unwrap_or(start)))
            }
            None => (Vec::new(), None),
        };
        let (params, results, inlined) = match info {
            Some(info) => (values(&info.params), values(&info.results), info.inlined),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        Ok(GoFunction {
            name: name.into(),
            code,
            returns,
            entry,
            typed: self.debug.is_some(),
            params,
            results,
            inlined,
        })
    }

    /// The out-of-line functions that `site`'s inlined code calls, by name (runtime helpers
    /// left out): what can be traced instead of a function that exists only inlined.
    pub fn callees_of<'data, D: ReadRef<'data>>(
        &self,
        elf: &Elf<'data, D>,
        site: &InlineSite,
    ) -> Vec<String> {
        let Some(bytes) = read_at(elf, site.entry, site.end.saturating_sub(site.entry)) else {
            return Vec::new();
        };
        let Ok(decoded) = returns::decode(site.entry, &bytes) else {
            return Vec::new();
        };
        decoded
            .calls
            .iter()
            .filter_map(|&target| function_at(elf, target))
            .filter(|name| !name.starts_with("runtime."))
            .collect()
    }
}

fn values(values: &[dwarf::Value]) -> Vec<GoValue> {
    let shapes: Vec<abi::Shape> = values.iter().map(|v| v.shape.clone()).collect();
    abi::assign(&shapes)
        .into_iter()
        .zip(values)
        .map(|(placement, value)| GoValue {
            name: value.name.clone(),
            type_name: value.type_name.clone(),
            is_string: value.shape == abi::Shape::String,
            placement,
        })
        .collect()
}

/// `len` bytes at virtual address `address`, read from the file (loadable segments only).
fn read_at<'data, D: ReadRef<'data>>(
    elf: &Elf<'data, D>,
    address: u64,
    len: u64,
) -> Option<Vec<u8>> {
    let segment = elf
        .segments()
        .iter()
        .find(|s| address >= s.vaddr && address - s.vaddr < s.memsz)?;
    if address.checked_add(len)? > segment.vaddr + segment.memsz {
        return None;
    }
    let offset = segment.offset.checked_add(address - segment.vaddr)?;
    elf.file
        .data()
        .read_bytes_at(offset, len)
        .ok()
        .map(<[u8]>::to_vec)
}

/// `[start, end)` of every function, by name: from the symbol table, or from `.gopclntab`
/// when it has none (stripped with `-ldflags=-s`).
fn function_ranges<'data, D: ReadRef<'data>>(
    elf: &Elf<'data, D>,
) -> std::collections::HashMap<String, (u64, u64)> {
    let mut ranges: std::collections::HashMap<String, (u64, u64)> = elf
        .file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0 && s.size() > 0)
        .filter_map(|s| {
            let name = s.name().ok()?.to_string();
            Some((name, (s.address(), s.address() + s.size())))
        })
        .collect();
    if ranges.is_empty() {
        ranges = pcln_functions(elf)
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.name, (f.start, f.end)))
            .collect();
    }
    ranges
}

/// The function whose code starts at `address`.
fn function_at<'data, D: ReadRef<'data>>(elf: &Elf<'data, D>, address: u64) -> Option<String> {
    let from_symbols = elf.file.symbols().find_map(|symbol| {
        (symbol.address() == address && symbol.kind() == object::SymbolKind::Text)
            .then(|| symbol.name().ok().map(str::to_string))
            .flatten()
    });
    from_symbols.or_else(|| {
        pcln_functions(elf)?
            .into_iter()
            .find(|f| f.start == address)
            .map(|f| f.name)
    })
}

fn pcln_functions<'data, D: ReadRef<'data>>(elf: &Elf<'data, D>) -> Option<Vec<pclntab::Function>> {
    let section = elf.file.section_by_name(".gopclntab")?;
    pclntab::functions(section.data().ok()?)
}

/// Every Go function name in the binary (symbol table, else `.gopclntab`), for wildcards.
pub fn function_names<'data, D: ReadRef<'data>>(elf: &Elf<'data, D>) -> Vec<String> {
    let mut names: Vec<String> = elf
        .file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
        .filter_map(|s| s.name().ok().map(str::to_string))
        .collect();
    if names.is_empty() {
        names = pcln_functions(elf)
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.name)
            .collect();
    }
    names
}
