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
    #[error("cannot read /proc/{pid}/{file}: permission denied; {}", if *may_ptrace {
        "the kernel refuses it even with CAP_SYS_PTRACE (the process runs in a user \
         namespace ustat cannot inspect)"
    } else {
        "ustat needs CAP_SYS_PTRACE to read another user's process (run it as root)"
    })]
    Permission {
        pid: u32,
        file: &'static str,
        /// Whether ustat holds CAP_SYS_PTRACE, so advice to get it would not help.
        may_ptrace: bool,
    },
    #[error("cannot read /proc/{pid}/{file}")]
    Io {
        pid: u32,
        file: &'static str,
        #[source]
        source: io::Error,
    },
}

impl ProcessError {
    pub fn from_io(pid: u32, file: &'static str, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound => Self::NotFound(pid),
            io::ErrorKind::PermissionDenied => Self::Permission {
                pid,
                file,
                may_ptrace: crate::capabilities::holds(crate::capabilities::Capability::SysPtrace),
            },
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
    /// Whether the file was deleted or replaced since it was mapped (maps says `(deleted)`).
    pub deleted: bool,
    /// Device and inode: the file's identity, whatever path reaches it.
    pub dev: (i32, i32),
    pub inode: u64,
}

/// Does the process exist?
pub fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Is the process still running: it exists and has not exited (a zombie its parent has not
/// reaped yet has).
pub fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
        return false;
    };
    !matches!(parse_state(&stat), Some(b'Z' | b'X' | b'x'))
}

/// The state letter of `/proc/PID/stat`, after the command (which may hold `)`).
fn parse_state(stat: &[u8]) -> Option<u8> {
    let after_command = stat.iter().rposition(|&b| b == b')')?;
    stat.get(after_command + 2).copied()
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

/// Where the process mapped the start of the file with this device and inode (its mapping
/// at file offset 0), to place the file's addresses in the process; None when it maps none.
pub fn load_address(pid: u32, dev: (i32, i32), inode: u64) -> Result<Option<u64>, ProcessError> {
    let maps = read_proc(pid, "maps")?;
    let maps = MemoryMaps::from_buf_read(&maps[..]).map_err(|e| ProcessError::Io {
        pid,
        file: "maps",
        source: io::Error::other(MapsError(e)),
    })?;
    Ok(maps
        .into_iter()
        .filter(|m| m.dev == dev && m.inode == inode && m.offset == 0)
        .map(|m| m.address.0)
        .min())
}

/// `/proc/PID/maps` did not read as maps.
#[derive(Debug, thiserror::Error)]
#[error("malformed maps")]
pub struct MapsError(#[source] procfs::ProcError);

/// Parses the bytes of `/proc/PID/maps`.
pub fn parse_mapped_objects(pid: u32, maps: &[u8]) -> Result<Vec<MappedObject>, MapsError> {
    let maps = MemoryMaps::from_buf_read(maps).map_err(MapsError)?;
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
        let deleted = text.ends_with(" (deleted)");
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
            deleted,
            dev: map.dev,
            inode: map.inode,
        });
    }
    Ok(objects)
}

/// When the process started (clock ticks since boot): with the PID, it tells a process from a
/// later one that reused its PID.
pub fn start_time(pid: u32) -> Result<u64, ProcessError> {
    let stat = read_proc(pid, "stat")?;
    parse_start_time(&stat).ok_or_else(|| ProcessError::Io {
        pid,
        file: "stat",
        source: io::Error::other("unexpected format"),
    })
}

/// Field 22 of `/proc/PID/stat`, counted after the command, which may hold spaces and `)`.
fn parse_start_time(stat: &[u8]) -> Option<u64> {
    let after_command = stat.iter().rposition(|&b| b == b')')? + 1;
    let rest = std::str::from_utf8(&stat[after_command..]).ok()?;
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// The process's effective user id (the second `Uid:` field of `/proc/PID/status`).
pub fn uid(pid: u32) -> Result<u32, ProcessError> {
    let status = read_proc(pid, "status")?;
    parse_effective_uid(&status).ok_or_else(|| ProcessError::Io {
        pid,
        file: "status",
        source: io::Error::other("no Uid line"),
    })
}

fn parse_effective_uid(status: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(status).ok()?;
    let uids = text.lines().find_map(|line| line.strip_prefix("Uid:"))?;
    uids.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// The command-line arguments.
pub fn args(pid: u32) -> Result<Vec<String>, ProcessError> {
    Ok(split_nul(&read_proc(pid, "cmdline")?))
}

/// The values of the named environment variables, where set.
pub fn env(pid: u32, names: &[&str]) -> Result<Vec<(String, String)>, ProcessError> {
    Ok(split_nul(&read_proc(pid, "environ")?)
        .into_iter()
        .filter_map(|entry| {
            let (name, value) = entry.split_once('=')?;
            names
                .contains(&name)
                .then(|| (name.to_string(), value.to_string()))
        })
        .collect())
}

fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}

/// The names of the process's threads, cleaned of control characters, oldest first.
pub fn threads(pid: u32) -> Result<Vec<String>, ProcessError> {
    Ok(threads_by_start(pid)?
        .into_iter()
        .map(|(_, name)| name)
        .collect())
}

/// The process's threads, (thread id, name cleaned of control characters), oldest first:
/// by start time, then id. Not by id alone: thread ids wrap around, so the newest thread
/// can have the smallest.
pub fn threads_by_start(pid: u32) -> Result<Vec<(u32, String)>, ProcessError> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| ProcessError::from_io(pid, "task", e))?;
    let mut threads: Vec<(u64, u32, String)> = dir
        .filter_map(|entry| {
            let tid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
            let stat = std::fs::read(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
            Some((
                start_time_of(&stat).unwrap_or(u64::MAX),
                tid,
                crate::sanitize::text(String::from_utf8_lossy(&comm).trim_end()),
            ))
        })
        .collect();
    threads.sort();
    Ok(threads
        .into_iter()
        .map(|(_, tid, name)| (tid, name))
        .collect())
}

/// Field 22 of a `stat` file, the start time in clock ticks since boot. The name before it
/// (in parentheses) is the task's own and may hold spaces or `)`, so fields are counted from
/// the last `)`.
fn start_time_of(stat: &[u8]) -> Option<u64> {
    let after_name = stat.iter().rposition(|&b| b == b')')? + 1;
    std::str::from_utf8(&stat[after_name..])
        .ok()?
        .split_ascii_whitespace()
        .nth(22 - 3)?
        .parse()
        .ok()
}

/// All processes now.
pub fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The first `limit` bytes of the command line, split into arguments (the last one may be
/// cut): the process writes its own command line, so it is never read whole.
pub fn args_bounded(pid: u32, limit: u64) -> Result<Vec<String>, ProcessError> {
    use std::io::Read as _;
    let file = std::fs::File::open(format!("/proc/{pid}/cmdline"))
        .map_err(|e| ProcessError::from_io(pid, "cmdline", e))?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| ProcessError::from_io(pid, "cmdline", e))?;
    Ok(split_nul(&bytes))
}

/// What tells the process apart: `comm` and what it runs, from its command line
/// (`java com.acme.Main`, `python3 -m http.server`; see `command_label`), sanitised.
pub fn label(pid: u32, runtime: &str) -> Result<String, ProcessError> {
    let comm = command(pid)?;
    let args = args_bounded(pid, crate::command_label::READ_LIMIT).unwrap_or_default();
    Ok(crate::command_label::label(runtime, &comm, &args))
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
    #[test]
    fn a_start_time_is_counted_from_the_last_parenthesis() {
        let stat = b"42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(super::start_time_of(stat), Some(98765));
        assert_eq!(super::start_time_of(b"42 (cut"), None);
    }

    use super::*;

    #[test]
    fn permission_advice_fits_who_asks() {
        let denied = |may_ptrace| {
            ProcessError::Permission {
                pid: 1,
                file: "maps",
                may_ptrace,
            }
            .to_string()
        };
        assert_eq!(
            denied(false),
            "cannot read /proc/1/maps: permission denied; ustat needs CAP_SYS_PTRACE to read \
             another user's process (run it as root)"
        );
        assert_eq!(
            denied(true),
            "cannot read /proc/1/maps: permission denied; the kernel refuses it even with \
             CAP_SYS_PTRACE (the process runs in a user namespace ustat cannot inspect)"
        );
    }

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
        assert!(!objects[1].deleted);
        assert!(objects[2].deleted);
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
    fn the_state_comes_after_the_command() {
        assert_eq!(parse_state(b"42 (a) b) Z 1 2"), Some(b'Z'));
        assert_eq!(parse_state(b"42 (java) S 1 2"), Some(b'S'));
        assert_eq!(parse_state(b"garbage"), None);
        assert!(running(std::process::id()));
    }

    #[test]
    fn start_time_is_field_22_even_with_odd_commands() {
        let stat =
            b"1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 98765 1000 200";
        assert_eq!(parse_start_time(stat), Some(98765));
        assert_eq!(parse_start_time(b"garbage"), None);
    }

    #[test]
    fn the_effective_uid_is_the_second_of_four() {
        let status = b"Name:\tsu\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_effective_uid(status), Some(0));
        assert_eq!(parse_effective_uid(b"Name:\tx\n"), None);
        // SAFETY: geteuid has no preconditions.
        assert_eq!(uid(std::process::id()).unwrap(), unsafe { libc::geteuid() });
    }

    #[test]
    fn this_process_can_be_read() {
        let me = std::process::id();
        assert!(start_time(me).unwrap() > 0);
        assert!(!args(me).unwrap().is_empty());
        assert!(!threads(me).unwrap().is_empty());
        assert!(all_pids().contains(&me));
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
