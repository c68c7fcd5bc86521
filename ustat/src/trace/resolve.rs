//! From a spec's BINARY and WHERE to opened files and probe sites. Every file is opened as
//! `binary` explains (a path the user gave, or a process's mapping checked against its maps
//! entry and owner), and attached through its descriptor.

use std::{path::PathBuf, sync::Arc};

use object::{Object as _, ObjectSymbol as _, SymbolKind};

use super::spec::{BinaryRef, glob};
use crate::{
    binary::{self, Binary, Identity, OpenError},
    process::{self, ProcessError},
};

/// Why a spec's binary or function cannot be found (exit code 4: a bad target).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("`{spec}` names the executable of -p PID (an empty BINARY), but no -p was given")]
    NoProcess { spec: String },
    #[error("process {pid} maps no library {name} (lib{name}.so)")]
    LibraryNotMapped { pid: u32, name: String },
    #[error("no library lib{name}.so in the linker's directories ({dirs})")]
    LibraryNotFound { name: String, dirs: String },
    #[error("process {pid} does not map {path}", path = path.display())]
    NotMapped { pid: u32, path: PathBuf },
    #[error("no function matches `{pattern}` in {path}", path = path.display())]
    NoFunction { pattern: String, path: PathBuf },
    #[error("no USDT probe matches `{pattern}` in {path}", path = path.display())]
    NoProbe { pattern: String, path: PathBuf },
}

/// Where the linker looks for libraries on Debian and most distributions, in its order.
const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

/// Whether `file_name` is library `name` as the linker names it: `libNAME.so`,
/// `libNAME.so.6`, `libNAME-2.36.so`.
pub fn is_library(file_name: &str, name: &str) -> bool {
    let Some(rest) = file_name
        .strip_prefix("lib")
        .and_then(|r| r.strip_prefix(name))
    else {
        return false;
    };
    rest == ".so"
        || rest.starts_with(".so.")
        || (rest.starts_with('-') && (rest.ends_with(".so") || rest.contains(".so.")))
}

/// The files BINARY stands for: one per distinct file (several `-p` processes may map the
/// same library). `spec` names the spec in errors.
pub fn binaries(
    binary: &BinaryRef,
    pids: &[u32],
    spec: &str,
    skipped: &mut Vec<String>,
) -> Result<Vec<Arc<Binary>>, ResolveError> {
    let mut found: Vec<Arc<Binary>> = Vec::new();
    let mut add = |b: Arc<Binary>| {
        if !found.iter().any(|f| f.identity() == b.identity()) {
            found.push(b);
        }
    };
    match binary {
        BinaryRef::Path(path) => {
            let opened = Binary::open_given(path)?;
            for &pid in pids {
                let mapped = process::mapped_objects(pid)?
                    .iter()
                    .any(|o| Identity::of_mapping(o) == opened.identity());
                if !mapped {
                    return Err(ResolveError::NotMapped {
                        pid,
                        path: path.clone(),
                    });
                }
            }
            add(opened);
        }
        BinaryRef::Library(name) if pids.is_empty() => {
            add(library_on_disk(name)?);
        }
        BinaryRef::Library(name) => {
            for &pid in pids {
                let uid = process::uid(pid)?;
                let mut any = false;
                for object in process::mapped_objects(pid)? {
                    let file_name = object
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if !is_library(&file_name, name) {
                        continue;
                    }
                    match Binary::open_mapped(pid, &object, uid) {
                        Ok(b) => {
                            any = true;
                            add(b);
                        }
                        Err(OpenError::Refused { path, reason }) => {
                            skipped.push(binary::skip_line(pid, &path, &reason));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                if !any && skipped.is_empty() {
                    return Err(ResolveError::LibraryNotMapped {
                        pid,
                        name: name.clone(),
                    });
                }
            }
        }
        BinaryRef::Executable => {
            if pids.is_empty() {
                return Err(ResolveError::NoProcess {
                    spec: spec.to_string(),
                });
            }
            for &pid in pids {
                add(executable(pid, skipped)?);
            }
        }
    }
    Ok(found)
}

/// The executable of `pid`: the mapping whose file is the one `/proc/PID/exe` names.
fn executable(pid: u32, skipped: &mut Vec<String>) -> Result<Arc<Binary>, ResolveError> {
    let exe = std::fs::metadata(format!("/proc/{pid}/exe"))
        .map_err(|e| ProcessError::from_io(pid, "exe", e))?;
    let identity = Identity::of(&exe);
    let uid = process::uid(pid)?;
    let object = process::mapped_objects(pid)?
        .into_iter()
        .find(|o| Identity::of_mapping(o) == identity)
        .ok_or(ProcessError::NotFound(pid))?;
    Binary::open_mapped(pid, &object, uid).map_err(|e| {
        if let OpenError::Refused { path, reason } = &e {
            skipped.push(binary::skip_line(pid, path, reason));
        }
        e.into()
    })
}

/// `libNAME.so*` in the linker's directories: the versioned name the linker loads
/// (`libc.so.6`) before the development link (`libc.so`, often a linker script).
fn library_on_disk(name: &str) -> Result<Arc<Binary>, ResolveError> {
    for dir in LIBRARY_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| is_library(n, name))
            .collect();
        // `libc.so.6` before `libc.so`; among versions, the shortest (the soname).
        names.sort_by_key(|n| (n.ends_with(".so"), n.len(), n.clone()));
        for file in names {
            if let Ok(b) = Binary::open_given(&PathBuf::from(dir).join(&file)) {
                let data = b.data();
                if b.elf(&data).is_ok() {
                    return Ok(b);
                }
            }
        }
    }
    Err(ResolveError::LibraryNotFound {
        name: name.to_string(),
        dirs: LIBRARY_DIRS.join(" "),
    })
}

/// A function found in a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// File offset of its first instruction.
    pub offset: u64,
}

/// The functions of `binary` whose names match `pattern`, one per address (aliases are one
/// function: the first name in the symbol table), sorted by name.
pub fn functions(binary: &Binary, pattern: &str) -> Result<Vec<Function>, ResolveError> {
    let data = binary.data();
    let elf = binary.elf(&data)?;
    let mut by_address: std::collections::BTreeMap<u64, String> = Default::default();
    for symbol in elf.file.symbols().chain(elf.file.dynamic_symbols()) {
        if symbol.kind() != SymbolKind::Text || symbol.is_undefined() || symbol.address() == 0 {
            continue;
        }
        let Ok(name) = symbol.name() else { continue };
        if glob(pattern, name) {
            by_address
                .entry(symbol.address())
                .or_insert_with(|| name.to_string());
        }
    }
    let mut found: Vec<Function> = by_address
        .into_iter()
        .filter_map(|(address, name)| {
            Some(Function {
                offset: elf.file_offset(address, true)?,
                name,
            })
        })
        .collect();
    if found.is_empty() {
        return Err(ResolveError::NoFunction {
            pattern: crate::sanitize::text(pattern),
            path: binary.shown().to_path_buf(),
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        assert!(is_library("libc.so.6", "c"));
        assert!(is_library("libc.so", "c"));
        assert!(is_library("libc-2.36.so", "c"));
        assert!(is_library("libpthread.so.0", "pthread"));
        assert!(!is_library("libcrypt.so.1", "c"));
        assert!(!is_library("libc.a", "c"));
    }

    #[test]
    fn libc_on_disk_has_malloc() {
        let libc = library_on_disk("c").expect("this host has libc");
        let found = functions(&libc, "malloc").unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].offset > 0);
    }
}
