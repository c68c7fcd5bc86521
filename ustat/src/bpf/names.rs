//! Asking the kernel again for names it could not send: a key whose `NameEvent` found the
//! ring buffer full goes into `NAME_REQUESTS`, and the `keyed` program sends its names on
//! the key's next hit. `NAMES_WANTED` tells the program whether to look there at all.

use aya::maps::{HashMap as AyaHashMap, MapData};
use ustat_common::{KeyedKey, maps};

use super::{LoadError, load::Loaded, maps::hash_map};

fn requests(ebpf: &mut Loaded) -> Result<AyaHashMap<&mut MapData, KeyedKey, u8>, LoadError> {
    hash_map(ebpf, maps::NAME_REQUESTS)
}

/// Asks for the names of `keys` again. Returns how many requests the map took (it is as big
/// as `KEYED`, so all of them unless something else went wrong).
pub(super) fn request(ebpf: &mut Loaded, keys: &[KeyedKey]) -> Result<usize, LoadError> {
    let mut map = requests(ebpf)?;
    Ok(keys
        .iter()
        .filter(|k| map.insert(**k, 1, 0).is_ok())
        .count())
}

/// Withdraws the requests for `keys` (their names arrived, or their process exited). The
/// kernel withdraws a request itself when it sends the names; those are already gone.
pub(super) fn withdraw(ebpf: &mut Loaded, keys: &[KeyedKey]) -> Result<(), LoadError> {
    let mut map = requests(ebpf)?;
    for key in keys {
        let _ = map.remove(key);
    }
    Ok(())
}

/// Tells the `keyed` program whether any request is open.
pub(super) fn set_wanted(ebpf: &mut Loaded, wanted: bool) -> Result<(), LoadError> {
    super::maps::set(ebpf, maps::NAMES_WANTED, 0, u32::from(wanted))
}
