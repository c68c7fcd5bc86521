//! Asking the kernel again for names it could not send: a key whose `NameEvent` found the
//! ring buffer full goes into `NAME_REQUESTS`, and the `keyed` program sends its names on
//! the key's next hit. `NAMES_WANTED` tells the program whether to look there at all.

use aya::maps::{Array, HashMap as AyaHashMap, MapData};
use ustat_common::{KeyedKey, maps};

use super::{LoadError, load::Loaded, map_error, missing_map};

fn requests(ebpf: &mut Loaded) -> Result<AyaHashMap<&mut MapData, KeyedKey, u8>, LoadError> {
    let map = ebpf
        .map_mut(maps::NAME_REQUESTS)
        .ok_or_else(|| missing_map(maps::NAME_REQUESTS))?;
    AyaHashMap::try_from(map).map_err(|e| map_error(maps::NAME_REQUESTS, e))
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
    let map = ebpf
        .map_mut(maps::NAMES_WANTED)
        .ok_or_else(|| missing_map(maps::NAMES_WANTED))?;
    let mut flag: Array<&mut MapData, u32> =
        Array::try_from(map).map_err(|e| map_error(maps::NAMES_WANTED, e))?;
    flag.set(0, u32::from(wanted), 0)
        .map_err(|e| map_error(maps::NAMES_WANTED, e))
}
