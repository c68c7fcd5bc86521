//! Finding runtime processes: a process runs a runtime when it maps the runtime's binary
//! (libjvm.so, libpython, node), whatever its command is called. Each runtime's `detect`
//! says which mapped file is its binary, by name or by content.

use std::collections::HashMap;

use ustat_runtimes::Runtime;

use crate::{
    candidate::MappedCandidate,
    process::{self, MappedObject, ProcessError},
};

/// A process running a runtime.
#[derive(Debug, Clone)]
pub struct Found {
    pub pid: u32,
    pub start_time: u64,
    pub runtime: &'static Runtime,
    /// The runtime's binary as this process maps it.
    pub binary: MappedObject,
}

/// The runtime of `pid`, if it maps a runtime's binary: the best-ranked one it maps
/// (libpython over the python executable that links it).
pub fn runtime_of(pid: u32) -> Result<Option<(&'static Runtime, MappedObject)>, ProcessError> {
    runtime_of_with(pid, &mut Ranks::default())
}

/// Each file's rank per runtime, by the file's identity and the name it is mapped by (hooks
/// look at both): a hook that reads a file's content (node's looks for V8 in a 100 MB binary)
/// does so once per file, not once per process and scan.
#[derive(Debug, Default)]
struct Ranks(HashMap<(RankKey, &'static str), Option<u8>>);

/// Files ranked before the cache starts over.
const MAX_RANKS: usize = 16_384;

/// Device, inode and file name.
type RankKey = ((i32, i32), u64, String);

fn runtime_of_with(
    pid: u32,
    ranks: &mut Ranks,
) -> Result<Option<(&'static Runtime, MappedObject)>, ProcessError> {
    let mut best: Option<(u8, &'static Runtime, MappedObject)> = None;
    for object in process::mapped_objects(pid)? {
        let Some(name) = object.path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let candidate = MappedCandidate::new(pid, &object, name);
        for runtime in ustat_runtimes::ALL {
            if ranks.0.len() >= MAX_RANKS {
                // Files come and go (a JIT's libraries in /tmp): start over rather than grow.
                ranks.0.clear();
            }
            let key = ((object.dev, object.inode, name.to_string()), runtime.name);
            let rank = *ranks
                .0
                .entry(key)
                .or_insert_with(|| (runtime.detect)(&candidate));
            if let Some(rank) = rank
                && best.as_ref().is_none_or(|(r, _, _)| rank < *r)
            {
                best = Some((rank, runtime, object.clone()));
            }
        }
    }
    Ok(best.map(|(_, runtime, object)| (runtime, object)))
}

/// What a scan remembers of a process.
#[derive(Debug)]
struct Known {
    start_time: u64,
    found: Option<Found>,
    /// Scans since first seen.
    age: u64,
}

/// Keeps track of processes across scans, so each scan reads little: a runtime process is
/// only checked to be alive; another process's mappings are read again often while it is
/// young (a launcher loads libjvm.so some milliseconds after exec) and rarely after.
#[derive(Debug, Default)]
pub struct Discovery {
    known: HashMap<u32, Known>,
    ranks: Ranks,
}

/// How often (in scans) an old process without a runtime is looked at again, in case it
/// loads one (an embedded interpreter).
const RECHECK_EVERY: u64 = 10;
/// Scans during which a new process is looked at every time.
const YOUNG: u64 = 5;

impl Discovery {
    /// The runtime processes now, among `pids` (every process when `None`), by PID.
    pub fn scan(&mut self, pids: Option<&[u32]>) -> Vec<Found> {
        let candidates = match pids {
            Some(pids) => pids.to_vec(),
            None => process::all_pids(),
        };
        let own = std::process::id();
        let mut alive = HashMap::with_capacity(candidates.len());
        for pid in candidates {
            if pid == own {
                continue;
            }
            let Ok(start_time) = process::start_time(pid) else {
                continue;
            };
            let known = match self.known.remove(&pid) {
                Some(k) if k.start_time == start_time => k,
                _ => Known {
                    start_time,
                    found: None,
                    age: 0,
                },
            };
            alive.insert(pid, refresh(pid, known, &mut self.ranks));
        }
        self.known = alive;
        let mut found: Vec<Found> = self
            .known
            .values()
            .filter_map(|k| k.found.clone())
            .collect();
        found.sort_by_key(|f| f.pid);
        found
    }
}

/// Looks at a process's mappings again when it is due.
fn refresh(pid: u32, mut known: Known, ranks: &mut Ranks) -> Known {
    let due =
        known.found.is_none() && (known.age < YOUNG || known.age.is_multiple_of(RECHECK_EVERY));
    if due && let Ok(Some((runtime, binary))) = runtime_of_with(pid, ranks) {
        known.found = Some(Found {
            pid,
            start_time: known.start_time,
            runtime,
            binary,
        });
    }
    known.age += 1;
    known
}
