//! Key names: the names the kernel sends for each new key (methods, classes, ...), kept by
//! key and, for methods, as labels by flow hash. Names the kernel could not send (its ring
//! buffer was full when the key was new) are asked for again, so a key never stays nameless
//! for good while it is still being hit.

use std::collections::HashSet;

use ustat_common::{KeyedKey, NameEvent, OfProcess as _, ProcessKey, category};

use super::KernelSource;
use crate::{bpf::Totals, flow, sanitize};

/// A `NameEvent`'s names, as text safe to show: each slot cut at its length, invalid UTF-8
/// replaced, control characters stripped.
fn names_of(event: &NameEvent) -> [String; 3] {
    std::array::from_fn(|slot| {
        let len = usize::from(event.lens[slot]).min(event.names[slot].len());
        sanitize::text(&String::from_utf8_lossy(&event.names[slot][..len]))
    })
}

/// Keys whose names were asked for again and have not arrived yet.
#[derive(Debug, Default)]
pub(super) struct NameRequests {
    open: HashSet<KeyedKey>,
    /// What the kernel was last told: whether any request is open.
    wanted: bool,
}

impl NameRequests {
    /// A key's names arrived.
    pub(super) fn answered(&mut self, key: &KeyedKey) {
        self.open.remove(key);
    }
}

impl KernelSource {
    /// Keeps the names the kernel sent for a key, and for a method also its label by flow
    /// hash.
    pub(super) fn receive_names(&mut self, event: &NameEvent) {
        let key = event.key;
        let names = names_of(event);
        if key.category == category::METHOD_CALL
            && let Some(tracked) = self.tracked.get(&key.pid)
        {
            let runtime = tracked.found.runtime;
            if let Some(hash) = flow::flow_hash(runtime, &key) {
                let [a, b, c] = &names;
                let label = (runtime.key_label)(key.category, [a, b, c], key.keys);
                self.flow.label(key.pid, hash, label);
            }
        }
        self.name_requests.answered(&key);
        self.names.insert(key, names);
    }

    /// Asks again for the names of keys in `totals` that have none.
    pub(super) fn request_missing_names(&mut self, totals: &Totals) -> anyhow::Result<()> {
        let missing: Vec<KeyedKey> = totals
            .keyed
            .keys()
            .filter(|k| !self.names.contains_key(k) && !self.name_requests.open.contains(k))
            .copied()
            .collect();
        if !missing.is_empty() {
            self.tracer.request_names(&missing)?;
            self.name_requests.open.extend(missing);
        }
        self.tell_wanted()
    }

    /// Withdraws the requests of processes that exited.
    pub(super) fn forget_name_requests(
        &mut self,
        processes: &HashSet<ProcessKey>,
    ) -> anyhow::Result<()> {
        let gone: Vec<KeyedKey> = self
            .name_requests
            .open
            .iter()
            .filter(|k| processes.contains(&k.process()))
            .copied()
            .collect();
        if !gone.is_empty() {
            self.tracer.withdraw_name_requests(&gone)?;
            for key in &gone {
                self.name_requests.open.remove(key);
            }
        }
        self.tell_wanted()
    }

    fn tell_wanted(&mut self) -> anyhow::Result<()> {
        let wanted = !self.name_requests.open.is_empty();
        if wanted != self.name_requests.wanted {
            self.tracer.set_names_wanted(wanted)?;
            self.name_requests.wanted = wanted;
        }
        Ok(())
    }
}
