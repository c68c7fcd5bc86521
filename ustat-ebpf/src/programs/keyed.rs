//! `keyed`: counts hits per process, category and key (a method, a class), and sums the value
//! argument. Keys are the arguments' values (for names: their pointers, which stay fixed
//! while the runtime keeps the name), so a hit costs a hash update, not a string copy. The
//! first hit of a key sends its strings to userspace. When that send failed (the ring buffer
//! was full), userspace asks for the key in `NAME_REQUESTS` and the next hit sends it again.

use aya_ebpf::{
    helpers::{
        bpf_get_smp_processor_id, bpf_ktime_get_ns,
        generated::{bpf_probe_read_user, bpf_probe_read_user_str},
    },
    macros::uprobe,
    programs::ProbeContext,
};
use ustat_common::{
    CountValue, EventHeader, KEY_SLOTS, KeyedKey, NAME_LEN, NameEvent, ProbeSpec, event_kind,
    key_kind, lost,
};

use super::{
    EVENTS, KEYED, NAME_REQUESTS, NAMES_WANTED, accumulate, count_lost, current_process, key_value,
    optional_arg, spec_of, summed_value,
};

#[uprobe]
pub fn keyed(ctx: ProbeContext) -> u32 {
    let Some(spec) = spec_of(&ctx) else { return 0 };
    let Some((process, tid)) = current_process(spec) else {
        return 0;
    };
    let mut key = KeyedKey {
        pid: process.pid,
        category: spec.tag,
        keys: [0; KEY_SLOTS],
        epoch: process.epoch,
    };
    for slot in 0..KEY_SLOTS {
        let k = &spec.keys[slot];
        if k.kind != key_kind::NONE {
            key.keys[slot] = key_value(&ctx, spec, k);
        }
    }
    let value = summed_value(&ctx, spec);
    let created = accumulate(&KEYED, &key, |v: &mut CountValue| {
        v.count += 1;
        v.sum += value;
    });
    if created {
        send_names(&ctx, spec, &key, tid);
    } else if names_wanted()
        // SAFETY: only whether the entry exists is used.
        && unsafe { NAME_REQUESTS.get(&key) }.is_some()
        && send_names(&ctx, spec, &key, tid)
    {
        let _ = NAME_REQUESTS.remove(&key);
    }
    0
}

/// Whether userspace asked for any names again (an array lookup, so hits of keys that
/// already have names pay nothing else).
#[inline(always)]
fn names_wanted() -> bool {
    NAMES_WANTED.get(0).is_some_and(|wanted| *wanted != 0)
}

/// Sends the key's strings; false when the ring buffer had no room (counted).
fn send_names(ctx: &ProbeContext, spec: &ProbeSpec, key: &KeyedKey, tid: u32) -> bool {
    let Some(mut entry) = EVENTS.reserve::<NameEvent>(0) else {
        count_lost(lost::RING_FULL);
        return false;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: `event` points at a reserved ring buffer entry of the right size; every field
    // read by userspace is written below (names only up to their length).
    unsafe {
        (*event).header = EventHeader {
            kind: event_kind::NAMES,
            pid: key.pid,
            tid,
            cpu: bpf_get_smp_processor_id(),
            ts_ns: bpf_ktime_get_ns(),
        };
        (*event).key = *key;
        (*event).failed = 0;
        for slot in 0..KEY_SLOTS {
            (*event).lens[slot] = 0;
            let k = &spec.keys[slot];
            let dst = (*event).names[slot].as_mut_ptr().cast();
            // A text key is a hash: its string is where the argument points.
            let src = if k.kind == key_kind::CSTR_TEXT {
                optional_arg(ctx, spec, k.arg)
            } else {
                key.keys[slot]
            } as *const core::ffi::c_void;
            let read = match k.kind {
                key_kind::PTR_LEN => {
                    let len = optional_arg(ctx, spec, k.len_arg) as i64;
                    let len = if len < 0 {
                        0
                    } else if len > NAME_LEN as i64 {
                        NAME_LEN as i64
                    } else {
                        len
                    };
                    if bpf_probe_read_user(dst, len as u32, src) == 0 {
                        len
                    } else {
                        -1
                    }
                }
                key_kind::CSTR | key_kind::CSTR_TEXT => {
                    // Returns the length with the NUL.
                    let n = bpf_probe_read_user_str(dst, NAME_LEN as u32, src);
                    if n > 0 { n - 1 } else { -1 }
                }
                _ => 0,
            };
            if read < 0 {
                (*event).failed |= 1 << slot;
            } else {
                (*event).lens[slot] = read as u16;
            }
        }
    }
    entry.submit(0);
    true
}
