//! Opening the files ustat parses and attaches to, when other users may control them.
//!
//! A binary is opened once, checked, parsed from that descriptor, and attached through it
//! (`/proc/self/fd/N`, which the kernel resolves to exactly the open file), so nothing can
//! swap another file in between. For a file a process maps, ustat
//! - resolves the path from `/proc/PID/maps` inside the process's root and follows no
//!   symbolic link on the way (`openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS`): a
//!   link there may be another user's, made to point ustat elsewhere. The kernel shows the
//!   path from the reader's root where the file is reachable from it, so for a process
//!   chrooted inside ustat's mount namespace (without `pivot_root`) it is looked up in
//!   ustat's own root next, the same way;
//! - opens only regular files, and never a device or FIFO for reading (it looks with
//!   `O_PATH` first, then reopens the same file non-blocking);
//! - checks device and inode against the maps entry: a file replaced since it was mapped is
//!   skipped;
//! - trusts the file only if it is owned by root or by the process's user and no one else
//!   can write to it (`trust`).
//!
//! A path given on the command line is the user's own choice: links in it are followed, but
//! it must still be a regular file.

use std::{
    ffi::CString,
    fmt,
    fs::File,
    io::{self, Read as _},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::{ffi::OsStrExt as _, fs::MetadataExt as _},
    },
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    elf::{Elf, ElfError, FileData},
    process::MappedObject,
};

/// The error of looking up `path` without following links: a link on it is a refusal.
fn located_error(path: &Path, e: io::Error) -> OpenError {
    match e.raw_os_error() {
        Some(libc::ELOOP) => OpenError::Refused {
            path: path.to_path_buf(),
            reason: Refusal::Link,
        },
        _ => OpenError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// An error about a named file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot read {path}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not one ustat opens (not a regular file, reached through a link another
    /// user made, changed since it was mapped, or not trusted).
    #[error("{path}", path = path.display())]
    Refused {
        path: PathBuf,
        #[source]
        reason: Refusal,
    },
    #[error("{path}", path = path.display())]
    Elf {
        path: PathBuf,
        #[source]
        source: ElfError,
    },
}

impl OpenError {
    /// A symbolic link on the path: said as it is, never looked around.
    fn is_link(&self) -> bool {
        matches!(
            self,
            OpenError::Refused {
                reason: Refusal::Link,
                ..
            }
        )
    }
}

/// A file's identity: its device (major, minor) and inode, whatever path reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity {
    pub major: u32,
    pub minor: u32,
    pub inode: u64,
}

impl Identity {
    /// The identity of a `stat` result.
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        let dev = metadata.dev();
        Self {
            major: libc::major(dev),
            minor: libc::minor(dev),
            inode: metadata.ino(),
        }
    }

    /// The identity in a `/proc/PID/maps` entry (device as `major:minor`).
    pub fn of_mapping(object: &MappedObject) -> Self {
        Self {
            major: object.dev.0 as u32,
            minor: object.dev.1 as u32,
            inode: object.inode,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device {:x}:{:x} inode {}",
            self.major, self.minor, self.inode
        )
    }
}

/// Why ustat does not open a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it is not a regular file but {kind}")]
    NotRegular { kind: &'static str },
    #[error(
        "a symbolic link is on its path, and ustat does not follow links another user may have made"
    )]
    Link,
    #[error("it changed since the process mapped it ({mapped}, now {found})")]
    Changed { mapped: Identity, found: Identity },
    #[error("it is owned by user {owner}, neither root nor the process's user {process_uid}")]
    Owner { owner: u32, process_uid: u32 },
    #[error("users other than its owner can write to it (mode {mode:o})")]
    Writable { mode: u32 },
    #[error("it is larger than {cap} bytes")]
    TooLarge { cap: u64 },
}

/// Whether root's ustat may parse and attach to a file a process with `process_uid` maps:
/// the file must be owned by root or by that user (who can change it anyway), and writable by
/// no one else (who could rewrite it between parsing and attaching, in every process that
/// maps it). `mode` is `st_mode`.
pub fn trust(owner: u32, mode: u32, process_uid: u32) -> Result<(), Refusal> {
    if owner != 0 && owner != process_uid {
        return Err(Refusal::Owner { owner, process_uid });
    }
    if mode & (libc::S_IWGRP | libc::S_IWOTH) != 0 {
        return Err(Refusal::Writable {
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// `skipping FILE of process PID: REASON`, the one line that says a file was not used,
/// cleaned for a terminal.
pub fn skip_line(pid: u32, path: &Path, reason: &Refusal) -> String {
    crate::sanitize::text(&format!(
        "skipping {} of process {pid}: {reason}",
        path.display()
    ))
}

/// Whether the file found is the one mapped.
pub fn check_identity(mapped: Identity, found: Identity) -> Result<(), Refusal> {
    if mapped == found {
        Ok(())
    } else {
        Err(Refusal::Changed { mapped, found })
    }
}

/// A binary opened for parsing and attaching. Shared (`Arc`) by the probe points planned in
/// it, so its descriptor stays open until they are attached.
#[derive(Debug)]
pub struct Binary {
    file: File,
    /// The path to show: as the process sees it, or as the user gave it.
    shown: PathBuf,
    identity: Identity,
    len: u64,
}

impl PartialEq for Binary {
    fn eq(&self, other: &Self) -> bool {
        self.identity == other.identity
    }
}

impl Binary {
    /// Opens a path the user gave: links are followed (the user chose the path), but only a
    /// regular file is opened.
    pub fn open_given(path: &Path) -> Result<Arc<Self>, OpenError> {
        let io = |source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let located = open_path(path).map_err(io)?;
        Self::reopen(located, path)
    }

    /// Opens the file `object` of process `pid` (whose effective user is `process_uid`) as
    /// the module explains; a refusal names the reason.
    pub fn open_mapped(
        pid: u32,
        object: &MappedObject,
        process_uid: u32,
    ) -> Result<Arc<Self>, OpenError> {
        if object.deleted {
            // Only the mapping itself still reaches a deleted file.
            let located = open_path(&object.host_path).map_err(|source| OpenError::Io {
                path: object.path.clone(),
                source,
            })?;
            return Self::checked(located, object, process_uid);
        }
        // The process's root first: a process in another mount namespace (a container) has
        // its paths shown as it sees them. A chrooted one in ustat's has them shown from
        // ustat's root, where they are looked up next; only the mapped file is taken.
        let in_process_root = open_in_root(pid, &object.path)
            .map_err(|e| located_error(&object.path, e))
            .and_then(|located| Self::checked(located, object, process_uid));
        match in_process_root {
            Err(first @ (OpenError::Io { .. } | OpenError::Refused { .. })) if !first.is_link() => {
                open_in_root(std::process::id(), &object.path)
                    .map_err(|e| located_error(&object.path, e))
                    .and_then(|located| Self::checked(located, object, process_uid))
                    .map_err(|_| first)
            }
            other => other,
        }
    }

    /// The file an `O_PATH` descriptor found for the mapped `object`, opened if it is the
    /// mapped file (its device and inode) and trusted.
    fn checked(
        located: OwnedFd,
        object: &MappedObject,
        process_uid: u32,
    ) -> Result<Arc<Self>, OpenError> {
        let shown = &object.path;
        let binary = Self::reopen(located, shown)?;
        let refused = |reason| OpenError::Refused {
            path: shown.clone(),
            reason,
        };
        check_identity(Identity::of_mapping(object), binary.identity).map_err(refused)?;
        let metadata = binary.file.metadata().map_err(|source| OpenError::Io {
            path: shown.clone(),
            source,
        })?;
        trust(metadata.uid(), metadata.mode(), process_uid).map_err(refused)?;
        Ok(binary)
    }

    /// Checks what an `O_PATH` descriptor found, then opens that same file for reading.
    fn reopen(located: OwnedFd, shown: &Path) -> Result<Arc<Self>, OpenError> {
        let io = |source| OpenError::Io {
            path: shown.to_path_buf(),
            source,
        };
        let file = reopen_regular(located).map_err(|e| match e {
            Reopen::Io(e) => io(e),
            Reopen::Refused(reason) => OpenError::Refused {
                path: shown.to_path_buf(),
                reason,
            },
        })?;
        let metadata = file.metadata().map_err(io)?;
        Ok(Arc::new(Self {
            identity: Identity::of(&metadata),
            len: metadata.len(),
            file,
            shown: shown.to_path_buf(),
        }))
    }

    /// The path to show in messages.
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// The path to hand the kernel: it resolves it, in ustat's own context, to exactly this
    /// open file.
    pub fn kernel_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// The file's bytes, read on demand (see `FileData`).
    pub fn data(&self) -> FileData<'_> {
        FileData::new(&self.file, self.len)
    }

    /// Parses `data` (from `self.data()`) as ELF.
    pub fn elf<'d>(&self, data: &'d FileData<'_>) -> Result<Elf<'d, &'d FileData<'d>>, OpenError> {
        // The borrow of `data` is all `Elf` needs; shorten FileData's file lifetime to match.
        let data: &'d FileData<'d> = data;
        Elf::parse(data).map_err(|source| OpenError::Elf {
            path: self.shown.clone(),
            source,
        })
    }
}

/// Files beside a binary that a runtime module reads (the JDK's `release`) are small: this
/// much is plenty, and more is refused rather than read.
pub const SMALL_FILE_CAP: u64 = 64 << 10;

/// The text of a small file at `path` as process `pid` sees it, opened like a mapped binary
/// (inside its root, no links, regular files only), when it is at most `SMALL_FILE_CAP` bytes.
pub fn read_small_text(pid: u32, path: &Path) -> Result<String, OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let refused = |reason| OpenError::Refused {
        path: path.to_path_buf(),
        reason,
    };
    // As for a mapped file's path: the process's root, then ustat's (a chroot).
    let located = open_in_root(pid, path)
        .or_else(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => open_in_root(std::process::id(), path).map_err(|_| e),
            _ => Err(e),
        })
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused(Refusal::Link),
            _ => io(e),
        })?;
    let file = reopen_regular(located).map_err(|e| match e {
        Reopen::Io(e) => io(e),
        Reopen::Refused(reason) => refused(reason),
    })?;
    let mut bytes = Vec::new();
    // One byte over the cap tells a file at the cap from a larger one (which may grow while
    // being read: the size from fstat is not enough).
    file.take(SMALL_FILE_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > SMALL_FILE_CAP {
        return Err(refused(Refusal::TooLarge {
            cap: SMALL_FILE_CAP,
        }));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"))
}

/// An `O_PATH` descriptor for `path` (following links: used for the user's own paths and for
/// `/proc/PID/map_files`, whose entries are the kernel's links to the mapped file).
fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let c_path = c_path(path)?;
    // SAFETY: c_path is a valid C string for the duration of the call.
    let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `O_PATH` descriptor for `path` resolved inside process `pid`'s root directory, without
/// following any symbolic link (ELOOP if there is one) or leaving that root.
fn open_in_root(pid: u32, path: &Path) -> io::Result<OwnedFd> {
    let root = open_path(Path::new(&format!("/proc/{pid}/root")))?;
    let relative = path.strip_prefix("/").unwrap_or(path);
    let c_path = c_path(relative)?;
    // SAFETY: open_how is plain data; all-zero is "no flags, no mode, no restrictions".
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: root is an open descriptor, c_path a valid C string and how an initialised
    // open_how whose size is passed; all outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c_path.as_ptr(),
            &how as *const libc::open_how,
            size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat2 just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

enum Reopen {
    Io(io::Error),
    Refused(Refusal),
}

/// Opens the file an `O_PATH` descriptor refers to for reading, if it is a regular file:
/// non-blocking and without becoming a controlling terminal, so even a file that turns into
/// something else cannot hang ustat. A device or FIFO is never opened.
fn reopen_regular(located: OwnedFd) -> Result<File, Reopen> {
    let kind = |metadata: &std::fs::Metadata| {
        let file_type = metadata.file_type();
        if file_type.is_file() {
            return None;
        }
        use std::os::unix::fs::FileTypeExt as _;
        Some(if file_type.is_dir() {
            "a directory"
        } else if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_char_device() {
            "a character device"
        } else if file_type.is_block_device() {
            "a block device"
        } else if file_type.is_socket() {
            "a socket"
        } else {
            "a symbolic link"
        })
    };
    // fstat works on an O_PATH descriptor; nothing is read through it.
    let located = File::from(located);
    let before = located.metadata().map_err(Reopen::Io)?;
    if let Some(kind) = kind(&before) {
        return Err(Reopen::Refused(Refusal::NotRegular { kind }));
    }
    // The kernel's link to the descriptor's own file: nothing on the way can be swapped.
    let own =
        c_path(Path::new(&format!("/proc/self/fd/{}", located.as_raw_fd()))).map_err(Reopen::Io)?;
    // SAFETY: own is a valid C string for the duration of the call.
    let fd = unsafe {
        libc::open(
            own.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Reopen::Io(io::Error::last_os_error()));
    }
    // SAFETY: open just returned this descriptor; nothing else owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    let after = file.metadata().map_err(Reopen::Io)?;
    if Identity::of(&after) != Identity::of(&before) || kind(&after).is_some() {
        return Err(Reopen::Refused(Refusal::Changed {
            mapped: Identity::of(&before),
            found: Identity::of(&after),
        }));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const ME: u32 = 1000;

    #[test]
    fn trusts_files_of_root_or_the_process_user_that_no_one_else_can_write() {
        assert_eq!(trust(0, 0o100755, ME), Ok(()));
        assert_eq!(trust(ME, 0o100755, ME), Ok(()));
        assert_eq!(trust(ME, 0o100700, ME), Ok(()));
        assert_eq!(trust(0, 0o100755, 0), Ok(()));
        assert_eq!(
            trust(ME, 0o100755, 0),
            Err(Refusal::Owner {
                owner: ME,
                process_uid: 0
            }),
            "a root process mapping a user's file"
        );
        assert_eq!(
            trust(1001, 0o100755, ME),
            Err(Refusal::Owner {
                owner: 1001,
                process_uid: ME
            })
        );
        assert_eq!(
            trust(0, 0o100777, ME),
            Err(Refusal::Writable { mode: 0o777 })
        );
        assert_eq!(
            trust(ME, 0o100775, ME),
            Err(Refusal::Writable { mode: 0o775 })
        );
        assert_eq!(
            trust(0, 0o100757, 0),
            Err(Refusal::Writable { mode: 0o757 })
        );
    }

    #[test]
    fn identity_must_match_the_mapping() {
        let mapped = Identity {
            major: 0xfe,
            minor: 1,
            inode: 1234,
        };
        assert_eq!(check_identity(mapped, mapped), Ok(()));
        for found in [
            Identity {
                inode: 1235,
                ..mapped
            },
            Identity { minor: 2, ..mapped },
            Identity {
                major: 0xfd,
                ..mapped
            },
        ] {
            assert_eq!(
                check_identity(mapped, found),
                Err(Refusal::Changed { mapped, found })
            );
        }
        assert_eq!(
            Refusal::Changed {
                mapped,
                found: Identity { inode: 9, ..mapped }
            }
            .to_string(),
            "it changed since the process mapped it (device fe:1 inode 1234, now device fe:1 inode 9)"
        );
    }

    /// A maps entry of this process for `path`, as `/proc/self/maps` would show it.
    fn mapping_of(path: &Path) -> MappedObject {
        let metadata = std::fs::metadata(path).unwrap();
        let identity = Identity::of(&metadata);
        MappedObject {
            path: path.to_path_buf(),
            host_path: path.to_path_buf(),
            deleted: false,
            dev: (identity.major as i32, identity.minor as i32),
            inode: identity.inode,
        }
    }

    fn my_uid() -> u32 {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() }
    }

    fn refusal(result: Result<Arc<Binary>, OpenError>) -> Refusal {
        match result {
            Err(OpenError::Refused { reason, .. }) => reason,
            Err(other) => panic!("expected a refusal, got {other:#}"),
            Ok(_) => panic!("expected a refusal, got the file"),
        }
    }

    #[test]
    fn a_mapped_file_is_opened_when_it_is_the_one_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.so");
        std::fs::write(&path, b"\x7fELF").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let me = std::process::id();
        let binary = Binary::open_mapped(me, &mapping_of(&path), my_uid()).unwrap();
        assert_eq!(binary.shown(), path);
        let through_kernel_path = std::fs::metadata(binary.kernel_path()).unwrap();
        assert_eq!(Identity::of(&through_kernel_path), binary.identity());
    }

    #[test]
    fn a_replaced_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.so");
        std::fs::write(&path, b"one").unwrap();
        let mapped = mapping_of(&path);
        let other = dir.path().join("other");
        std::fs::write(&other, b"two").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let me = std::process::id();
        assert!(matches!(
            refusal(Binary::open_mapped(me, &mapped, my_uid())),
            Refusal::Changed { .. }
        ));
    }

    #[test]
    fn links_on_a_mapped_path_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let target = real.join("lib.so");
        std::fs::write(&target, b"x").unwrap();
        let linked_dir = dir.path().join("linked");
        std::os::unix::fs::symlink(&real, &linked_dir).unwrap();
        let linked_file = dir.path().join("lib.so");
        std::os::unix::fs::symlink(&target, &linked_file).unwrap();
        let me = std::process::id();
        for path in [linked_dir.join("lib.so"), linked_file] {
            let mut mapped = mapping_of(&target);
            mapped.path = path;
            assert_eq!(
                refusal(Binary::open_mapped(me, &mapped, my_uid())),
                Refusal::Link
            );
        }
    }

    #[test]
    fn untrusted_mapped_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.so");
        std::fs::write(&path, b"x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let me = std::process::id();
        assert_eq!(
            refusal(Binary::open_mapped(me, &mapping_of(&path), my_uid())),
            Refusal::Writable { mode: 0o666 }
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        if my_uid() != 0 {
            println!("not root: cannot give the file to another user; owner check skipped");
            return;
        }
        // A file of user 4243 mapped by a process of user 4242.
        std::os::unix::fs::chown(&path, Some(4243), None).unwrap();
        assert_eq!(
            refusal(Binary::open_mapped(me, &mapping_of(&path), 4242)),
            Refusal::Owner {
                owner: 4243,
                process_uid: 4242
            }
        );
        assert!(Binary::open_mapped(me, &mapping_of(&path), 4243).is_ok());
    }

    #[test]
    fn only_regular_files_are_opened_and_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = c_path(&fifo).unwrap();
        // SAFETY: c is a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let started = std::time::Instant::now();
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (dir.path(), "a directory"),
        ] {
            assert_eq!(
                refusal(Binary::open_given(path)),
                Refusal::NotRegular { kind },
                "{}",
                path.display()
            );
        }
        let me = std::process::id();
        assert!(matches!(
            read_small_text(me, &fifo),
            Err(OpenError::Refused {
                reason: Refusal::NotRegular { kind: "a FIFO" },
                ..
            })
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn small_files_are_read_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("release");
        std::fs::write(&path, b"JAVA_VERSION=\"17.0.15\"\n").unwrap();
        let me = std::process::id();
        assert_eq!(
            read_small_text(me, &path).unwrap(),
            "JAVA_VERSION=\"17.0.15\"\n"
        );
        std::fs::write(&path, vec![b'x'; SMALL_FILE_CAP as usize + 1]).unwrap();
        assert!(matches!(
            read_small_text(me, &path),
            Err(OpenError::Refused {
                reason: Refusal::TooLarge { .. },
                ..
            })
        ));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        assert!(matches!(
            read_small_text(me, &link),
            Err(OpenError::Refused {
                reason: Refusal::Link,
                ..
            })
        ));
    }

    #[test]
    fn a_given_path_may_be_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("file");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let binary = Binary::open_given(&link).unwrap();
        assert_eq!(binary.shown(), link);
        assert_eq!(
            binary.identity(),
            Identity::of(&std::fs::metadata(&target).unwrap())
        );
    }
}
