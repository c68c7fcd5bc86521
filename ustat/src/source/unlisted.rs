//! Processes that started and exited between two of ustat's looks at the host: discovery
//! never listed them, but the kernel counted their hits and, when they exited, recorded what
//! identifies them (`ExitRecord`): the runtime binary of the first site they hit (its
//! `origin`, numbered here when ustat attaches to the binary) and their name. From that they
//! get a row like any process that exited, with everything they did.

use std::collections::HashMap;

use ustat_common::{ExitRecord, ProcessKey};
use ustat_runtimes::{ProcessFacts, Runtime};

use super::{
    KernelSource, Selection,
    attach::Attached,
    processes::{self, Tracked},
};
use crate::{discovery::Found, process::MappedObject, sanitize};

/// The runtime binaries ustat attached to, numbered from 1 (`ProbeSpec::origin`; 0 is
/// none), by the file's identity.
#[derive(Debug, Default)]
pub(super) struct Origins {
    by_file: HashMap<((i32, i32), u64), u32>,
    origins: Vec<Origin>,
}

/// What a binary's number stands for.
#[derive(Debug)]
struct Origin {
    runtime: &'static Runtime,
    binary: MappedObject,
    /// Where the binary's coverage is kept (`KernelSource::attached`).
    attached: Attached,
}

impl Origins {
    /// The number of the runtime binary `found` maps, given one if it has none yet;
    /// `attached` is where its coverage is kept.
    pub(super) fn number(&mut self, found: &Found, attached: &Attached) -> u32 {
        let file = (found.binary.dev, found.binary.inode);
        if let Some(&number) = self.by_file.get(&file) {
            return number;
        }
        self.origins.push(Origin {
            runtime: found.runtime,
            binary: found.binary.clone(),
            attached: attached.clone(),
        });
        let number = self.origins.len() as u32;
        self.by_file.insert(file, number);
        number
    }

    /// The number of the binary `found` maps, if ustat attached to it.
    pub(super) fn of(&self, found: &Found) -> u32 {
        let file = (found.binary.dev, found.binary.inode);
        self.by_file.get(&file).copied().unwrap_or(0)
    }

    fn get(&self, number: u32) -> Option<&Origin> {
        self.origins.get((number as usize).checked_sub(1)?)
    }
}

/// A process's name as the kernel recorded it: `comm`, up to its first NUL.
fn name_of(record: &ExitRecord) -> String {
    let comm = &record.process.comm;
    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    sanitize::text(&String::from_utf8_lossy(&comm[..len]))
}

impl KernelSource {
    /// The process that exited as `record` says, never listed, as a tracked process that
    /// went: `None` when it cannot be shown as one (its runtime binary is not known, or not
    /// one of the selected runtimes).
    pub(super) fn unlisted(&self, process: ProcessKey, record: &ExitRecord) -> Option<Tracked> {
        if self.options.selection != Selection::All {
            return None;
        }
        let origin = self.origins.get(record.process.origin)?;
        if self
            .options
            .runtime
            .is_some_and(|runtime| runtime != origin.runtime.name)
        {
            return None;
        }
        // Its binary's coverage, without the on-demand plans (a process that went cannot
        // ask for them): a short-lived process costs a few lines, however many come and go.
        let (resolved, traced, unavailable, missing, refused) =
            match self.attached.get(&origin.attached) {
                Some(c) => (
                    c.resolved.clone(),
                    c.traced.clone(),
                    c.unavailable.clone(),
                    // What the binary lacks, and what was not asked for; not what the
                    // process's own settings leave out, since its command line and
                    // environment are gone.
                    processes::binary_missing_lines(&c.unavailable, &c.deferred),
                    c.refused.clone(),
                ),
                None => Default::default(),
            };
        let tracked = Tracked {
            found: Found {
                pid: process.pid,
                // Not known (its /proc entry was gone when ustat looked), and not needed:
                // the start time ties a listed process to its epoch, and this one has its
                // epoch from the kernel.
                start_time: 0,
                runtime: origin.runtime,
                binary: origin.binary.clone(),
            },
            command: name_of(record),
            facts: ProcessFacts {
                resolved,
                ..ProcessFacts::default()
            },
            unavailable,
            deferred: Vec::new(),
            refused,
            missing,
            traced,
            epoch: Some(process.epoch),
        };
        Some(tracked)
    }
}
