//! Reading a whole per-CPU hash map with `BPF_MAP_LOOKUP_BATCH`: thousands of entries a
//! system call, where aya 0.14's iterator makes two per entry (next key, then lookup). With
//! 100k methods (and their duration buckets) that was most of a poll.

use std::{
    io,
    os::fd::{AsRawFd as _, BorrowedFd},
};

use aya::Pod;
use aya_obj::generated::bpf_cmd;

use super::sys::bpf_in_out;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Entries asked for per call; a hash bucket holding more makes the kernel ask for room
/// (ENOSPC), and the buffers grow.
const FIRST_BATCH: usize = 4096;

/// Calls `each` with every key of the per-CPU hash map `map` and its values, one per
/// possible CPU. An entry deleted meanwhile is simply not seen.
pub(super) fn per_cpu_entries<K: Pod, V: Pod>(
    map: BorrowedFd<'_>,
    mut each: impl FnMut(K, &[V]),
) -> io::Result<()> {
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
    // The kernel lays each CPU's value out 8-byte aligned.
    let stride = size_of::<V>().next_multiple_of(8);
    let mut batch = FIRST_BATCH;
    let mut keys: Vec<K> = Vec::new();
    let mut values: Vec<u8> = Vec::new();
    let mut values_of_key: Vec<V> = Vec::with_capacity(cpus);
    // The batch tokens of hash maps are bucket numbers (u32); u64 leaves room.
    let mut token_in = 0u64;
    let mut token_out = 0u64;
    let mut first = true;
    loop {
        keys.resize(batch, K::zeroed());
        values.resize(batch * cpus * stride, 0);
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { &raw const token_in as u64 },
            out_batch: &raw mut token_out as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: batch as u32,
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        let result = bpf_in_out(bpf_cmd::BPF_MAP_LOOKUP_BATCH, &mut attr);
        let done = match result {
            Ok(_) => false,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && attr.count == 0 => {
                batch *= 2;
                continue;
            }
            Err(e) => return Err(e),
        };
        for (i, key) in keys.iter().take(attr.count as usize).enumerate() {
            values_of_key.clear();
            for cpu in 0..cpus {
                let at = (i * cpus + cpu) * stride;
                // SAFETY: `values` holds batch * cpus * stride bytes and `at + size_of::<V>()`
                // is within them; V is Pod, so any bytes are a valid V; read_unaligned copes
                // with the byte buffer's alignment.
                values_of_key
                    .push(unsafe { std::ptr::read_unaligned(values.as_ptr().add(at).cast()) });
            }
            each(*key, &values_of_key);
        }
        if done {
            return Ok(());
        }
        token_in = token_out;
        first = false;
    }
}

/// A `Pod` type's all-zero value.
trait Zeroed {
    fn zeroed() -> Self;
}

impl<T: Pod> Zeroed for T {
    fn zeroed() -> Self {
        // SAFETY: Pod types are plain integers and arrays of them: all zeroes is valid.
        unsafe { std::mem::zeroed() }
    }
}
