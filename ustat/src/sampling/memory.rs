//! Reading a traced process's memory from outside, read-only, with `process_vm_readv`: the
//! process is neither written to nor stopped. A read of memory it does not map fails; it
//! never faults ustat.

use std::io;

/// The memory of one process.
#[derive(Debug, Clone, Copy)]
pub struct Remote {
    pid: u32,
}

/// Longest string (in bytes) ustat reads for one name.
pub const MAX_TEXT: usize = 1024;

impl Remote {
    pub fn new(pid: u32) -> Self {
        Self { pid }
    }

    /// Fills `buffer` from `address`; a short read is an error.
    pub fn read(&self, address: u64, buffer: &mut [u8]) -> io::Result<()> {
        if buffer.is_empty() {
            return Ok(());
        }
        let local = libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        };
        let remote = libc::iovec {
            iov_base: address as *mut libc::c_void,
            iov_len: buffer.len(),
        };
        // SAFETY: `local` describes `buffer`, which is exclusively borrowed and outlives the
        // call; the kernel checks `remote` against the target's mappings and only reads it.
        let read =
            unsafe { libc::process_vm_readv(self.pid as libc::pid_t, &local, 1, &remote, 1, 0) };
        if read < 0 {
            return Err(io::Error::last_os_error());
        }
        if read as usize != buffer.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read {read} of {} bytes at {address:#x}", buffer.len()),
            ));
        }
        Ok(())
    }

    pub fn u64(&self, address: u64) -> io::Result<u64> {
        self.array(address).map(u64::from_le_bytes)
    }

    pub fn u32(&self, address: u64) -> io::Result<u32> {
        self.array(address).map(u32::from_le_bytes)
    }

    pub fn u16(&self, address: u64) -> io::Result<u16> {
        self.array(address).map(u16::from_le_bytes)
    }

    /// `N` bytes at `address`, for a fixed-width field.
    fn array<const N: usize>(&self, address: u64) -> io::Result<[u8; N]> {
        let mut bytes = [0u8; N];
        self.read(address, &mut bytes)?;
        Ok(bytes)
    }

    pub fn bytes(&self, address: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0u8; len];
        self.read(address, &mut bytes)?;
        Ok(bytes)
    }

    /// A NUL-terminated string of at most `max` bytes (without its NUL), read in small steps
    /// so a string near the end of a mapping is still read.
    pub fn c_string(&self, address: u64, max: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = address;
        while out.len() < max {
            // Up to the next 64-byte boundary, never across a page the string may not reach.
            let step = 64 - (at % 64) as usize;
            let chunk = self.bytes(at, step)?;
            if let Some(end) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..end]);
                out.truncate(max);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            at += step as u64;
        }
        out.truncate(max);
        Ok(out)
    }
}

/// A little-endian integer field of `bytes` at `offset`; None past the end.
pub fn field_u64(bytes: &[u8], offset: u32) -> Option<u64> {
    let at = offset as usize;
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

pub fn field_u32(bytes: &[u8], offset: u32) -> Option<u32> {
    let at = offset as usize;
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_memory_and_refuses_unmapped_addresses() {
        let value: u64 = 0x1122_3344_5566_7788;
        let text = b"co_name\0rest";
        let me = Remote::new(std::process::id());
        assert_eq!(me.u64(&value as *const u64 as u64).unwrap(), value);
        assert_eq!(me.c_string(text.as_ptr() as u64, 32).unwrap(), b"co_name");
        assert_eq!(me.c_string(text.as_ptr() as u64, 3).unwrap(), b"co_");
        assert!(me.u64(8).is_err());
        assert_eq!(field_u64(&value.to_le_bytes(), 0), Some(value));
        assert_eq!(field_u32(&[1, 0, 0, 0], 1), None);
    }
}
