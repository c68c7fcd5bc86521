//! The bpf(2) system call, for the commands aya 0.14 does not offer the way ustat needs them.

use std::{
    io,
    os::fd::{FromRawFd as _, OwnedFd},
};

use aya_obj::generated::bpf_cmd;

/// Runs `command` with `attr`, a `#[repr(C)]` prefix of `union bpf_attr`; returns what the
/// kernel returned (0, or a descriptor for the commands that create one).
pub(super) fn bpf<T>(command: bpf_cmd, attr: &T) -> io::Result<i64> {
    // SAFETY: attr is a valid prefix of union bpf_attr; callers keep every buffer it points
    // to alive across the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command as libc::c_int,
            attr as *const T,
            size_of::<T>() as u32,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(result)
}

/// Like `bpf`, for commands where the kernel writes results back into `attr` (batch counts).
pub(super) fn bpf_in_out<T>(command: bpf_cmd, attr: &mut T) -> io::Result<i64> {
    // SAFETY: as in `bpf`; `attr` is exclusively borrowed, so the kernel may write into it.
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command as libc::c_int,
            attr as *mut T,
            size_of::<T>() as u32,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(result)
}

/// Runs a command that creates a descriptor (a program, a link), and owns it.
pub(super) fn bpf_fd<T>(command: bpf_cmd, attr: &T) -> io::Result<OwnedFd> {
    let fd = bpf(command, attr)?;
    // SAFETY: a fresh descriptor from the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
