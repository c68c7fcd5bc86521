//! What ustat reads about a process from /proc: whether it exists, its command, and the
//! binaries it maps.

use std::{
    collections::HashSet,
    io,
    path::{Path, PathBuf},
};

use procfs::{
    FromBufRead as _,
    process::{MMapPath, MemoryMaps},
};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("no process with PID {0}")]
    NotFound(u32),
    #[error("cannot read /proc/{pid}/{file}: permission denied; run ustat as root")]
    Permission { pid: u32, file: &'static str },
    #[error("cannot read /proc/{pid}/{file}")]
    Io {
        pid: u32,
        file: &'static str,
        #[source]
        source: io::Error,
    },
}

impl ProcessError {
    fn from_io(pid: u32, file: &'static str, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound => Self::NotFound(pid),
            io::ErrorKind::PermissionDenied => Self::Permission { pid, file },
            // A process that exits while being read.
            _ if source.raw_os_error() == Some(libc::ESRCH) => Self::NotFound(pid),
            _ => Self::Io { pid, file, source },
        }
    }
}

/// A file with executable code mapped by a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedObject {
    /// The path as the process sees it (in its own mount namespace).
    pub path: PathBuf,
    /// A path ustat can open and probe from here: through `/proc/PID/root`, or through
    /// `/proc/PID/map_files` when the file was deleted or replaced since it was mapped.
    pub host_path: PathBuf,
    pub inode: u64,
}

/// Does the process exist?
pub fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn read_proc(pid: u32, file: &'static str) -> Result<Vec<u8>, ProcessError> {
    std::fs::read(format!("/proc/{pid}/{file}")).map_err(|e| ProcessError::from_io(pid, file, e))
}

/// The files with executable mappings in `pid`, in address order, each once.
pub fn mapped_objects(pid: u32) -> Result<Vec<MappedObject>, ProcessError> {
    let maps = read_proc(pid, "maps")?;
    parse_mapped_objects(pid, &maps).map_err(|e| ProcessError::Io {
        pid,
        file: "maps",
        source: io::Error::other(e),
    })
}

/// Parses the bytes of `/proc/PID/maps`.
pub fn parse_mapped_objects(pid: u32, maps: &[u8]) -> Result<Vec<MappedObject>, String> {
    let maps = MemoryMaps::from_buf_read(maps).map_err(|e| e.to_string())?;
    let mut seen = HashSet::new();
    let mut objects = Vec::new();
    for map in maps {
        let MMapPath::Path(path) = &map.pathname else {
            continue;
        };
        if !map.perms.contains(procfs::process::MMPermissions::EXECUTE) || map.inode == 0 {
            continue;
        }
        if !seen.insert((map.dev, map.inode)) {
            continue;
        }
        let text = path.to_string_lossy();
        let (path, host_path) = match text.strip_suffix(" (deleted)") {
            Some(original) => (
                PathBuf::from(original),
                PathBuf::from(format!(
                    "/proc/{pid}/map_files/{:x}-{:x}",
                    map.address.0, map.address.1
                )),
            ),
            None => (
                path.clone(),
                Path::new(&format!("/proc/{pid}/root"))
                    .join(path.strip_prefix("/").unwrap_or(path)),
            ),
        };
        objects.push(MappedObject {
            path,
            host_path,
            inode: map.inode,
        });
    }
    Ok(objects)
}

/// The command name (`comm`), with anything unprintable removed.
pub fn command(pid: u32) -> Result<String, ProcessError> {
    let comm = read_proc(pid, "comm")?;
    Ok(crate::sanitize::text(
        String::from_utf8_lossy(&comm).trim_end(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &[u8] = b"\
00400000-00401000 r--p 00000000 fe:01 1234 /usr/bin/python3.11
00401000-00600000 r-xp 00001000 fe:01 1234 /usr/bin/python3.11
00600000-00700000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000100000 r-xp 00000000 fe:01 777 /usr/lib/jvm/lib/server/libjvm.so
7f0000200000-7f0000300000 r-xp 00000000 fe:01 888 /tmp/libold.so (deleted)
7f0000300000-7f0000301000 rw-s 00000000 fe:01 999 /tmp/hsperfdata_root/42
7ffd00000000-7ffd00001000 r-xp 00000000 00:00 0 [vdso]
";

    #[test]
    fn lists_each_executable_file_once() {
        let objects = parse_mapped_objects(42, MAPS).unwrap();
        let paths: Vec<_> = objects.iter().map(|o| o.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/usr/bin/python3.11",
                "/usr/lib/jvm/lib/server/libjvm.so",
                "/tmp/libold.so"
            ]
        );
        assert_eq!(
            objects[0].host_path,
            Path::new("/proc/42/root/usr/bin/python3.11")
        );
        assert_eq!(objects[1].inode, 777);
    }

    #[test]
    fn a_deleted_file_is_reached_through_map_files() {
        let objects = parse_mapped_objects(42, MAPS).unwrap();
        assert_eq!(
            objects[2].host_path,
            Path::new("/proc/42/map_files/7f0000200000-7f0000300000")
        );
    }

    #[test]
    fn missing_processes_are_not_found() {
        assert!(matches!(
            mapped_objects(u32::MAX),
            Err(ProcessError::NotFound(_))
        ));
        assert!(!exists(u32::MAX));
    }
}
