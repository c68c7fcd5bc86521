//! The one home of map access: finding a map of the loaded object by name, as the aya type
//! its definition has, reading per-CPU maps whole (in batches), deleting the keys a
//! predicate picks, and setting the one entry of a config array. The other `bpf` modules say
//! which map and what to do with its entries; this says how.

use std::{collections::HashMap, hash::Hash, os::fd::AsFd as _};

use aya::{
    Pod,
    maps::{Array, HashMap as AyaHashMap, Map, MapData, PerCpuArray, PerCpuHashMap},
};

use super::{LoadError, load::Loaded};

/// The error for a map the object does not have.
pub(super) fn missing(name: &str) -> LoadError {
    LoadError::Kernel {
        what: "maps",
        detail: format!("map {name} is missing from the object"),
    }
}

/// The error for a map the kernel or aya refused to read or write.
pub(super) fn failed(name: &str, e: impl std::fmt::Display) -> LoadError {
    LoadError::Kernel {
        what: "maps",
        detail: format!("{name}: {e}"),
    }
}

fn map<'a>(ebpf: &'a Loaded, name: &str) -> Result<&'a Map, LoadError> {
    ebpf.map(name).ok_or_else(|| missing(name))
}

fn map_mut<'a>(ebpf: &'a mut Loaded, name: &str) -> Result<&'a mut Map, LoadError> {
    ebpf.map_mut(name).ok_or_else(|| missing(name))
}

/// The hash map `name`, to change.
pub(super) fn hash_map<'a, K: Pod, V: Pod>(
    ebpf: &'a mut Loaded,
    name: &str,
) -> Result<AyaHashMap<&'a mut MapData, K, V>, LoadError> {
    AyaHashMap::try_from(map_mut(ebpf, name)?).map_err(|e| failed(name, e))
}

/// The value at `key` of the hash map `name`, if it has one.
pub(super) fn hash_value<K: Pod, V: Pod>(
    ebpf: &Loaded,
    name: &str,
    key: &K,
) -> Result<Option<V>, LoadError> {
    let map: AyaHashMap<&MapData, K, V> =
        AyaHashMap::try_from(map(ebpf, name)?).map_err(|e| failed(name, e))?;
    Ok(map.get(key, 0).ok())
}

/// Every key of the hash map `name`.
pub(super) fn keys<K: Pod, V: Pod>(ebpf: &Loaded, name: &str) -> Result<Vec<K>, LoadError> {
    let map: AyaHashMap<&MapData, K, V> =
        AyaHashMap::try_from(map(ebpf, name)?).map_err(|e| failed(name, e))?;
    Ok(map.keys().filter_map(Result::ok).collect())
}

/// Deletes the keys `doomed` picks from the hash map `name`, in one pass; returns them.
pub(super) fn remove_where<K: Pod, V: Pod>(
    ebpf: &mut Loaded,
    name: &str,
    doomed: impl Fn(&K) -> bool,
) -> Result<Vec<K>, LoadError> {
    let mut map = hash_map::<K, V>(ebpf, name)?;
    let picked: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| doomed(k))
        .collect();
    for key in &picked {
        // Deleted meanwhile (by the kernel, say): gone either way.
        let _ = map.remove(key);
    }
    Ok(picked)
}

/// Deletes the keys `doomed` picks from the per-CPU hash map `name`, in one pass.
pub(super) fn remove_per_cpu_where<K: Pod, V: Pod>(
    ebpf: &mut Loaded,
    name: &str,
    doomed: impl Fn(&K) -> bool,
) -> Result<(), LoadError> {
    let mut map: PerCpuHashMap<&mut MapData, K, V> =
        PerCpuHashMap::try_from(map_mut(ebpf, name)?).map_err(|e| failed(name, e))?;
    let picked: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| doomed(k))
        .collect();
    for key in picked {
        let _ = map.remove(&key);
    }
    Ok(())
}

/// Every entry of the per-CPU hash map `name`, its CPU copies combined by `fold`, read in
/// batches.
pub(super) fn read_per_cpu<K, V>(
    ebpf: &Loaded,
    name: &str,
    fold: impl Fn(&mut V, &V),
) -> Result<HashMap<K, V>, LoadError>
where
    K: Pod + Eq + Hash,
    V: Pod + Default,
{
    let Map::PerCpuHashMap(data) = map(ebpf, name)? else {
        return Err(failed(name, "not a per-CPU hash map"));
    };
    let mut out = HashMap::new();
    super::batch::per_cpu_entries(data.fd().as_fd(), |key: K, per_cpu: &[V]| {
        let mut total = V::default();
        for value in per_cpu {
            fold(&mut total, value);
        }
        out.insert(key, total);
    })
    .map_err(|e| failed(name, e))?;
    Ok(out)
}

/// Slot `index` of the per-CPU array `name`, summed over CPUs.
pub(super) fn per_cpu_sum(ebpf: &Loaded, name: &str, index: u32) -> Result<u64, LoadError> {
    let array: PerCpuArray<&MapData, u64> =
        PerCpuArray::try_from(map(ebpf, name)?).map_err(|e| failed(name, e))?;
    let values = array.get(&index, 0).map_err(|e| failed(name, e))?;
    Ok(values.iter().sum())
}

/// The array `name`, to change.
pub(super) fn array_mut<'a, V: Pod>(
    ebpf: &'a mut Loaded,
    name: &str,
) -> Result<Array<&'a mut MapData, V>, LoadError> {
    Array::try_from(map_mut(ebpf, name)?).map_err(|e| failed(name, e))
}

/// Sets entry `index` of the array `name`.
pub(super) fn set<V: Pod>(
    ebpf: &mut Loaded,
    name: &str,
    index: u32,
    value: V,
) -> Result<(), LoadError> {
    array_mut(ebpf, name)?
        .set(index, value, 0)
        .map_err(|e| failed(name, e))
}
