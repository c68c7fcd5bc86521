//! `count`: counts hits per process and category (split by the subkey argument), and sums
//! the value argument.

use aya_ebpf::{macros::uprobe, programs::ProbeContext};
use ustat_common::{CountKey, CountValue, category};

use super::{COUNTS, accumulate, current_process, hotspot, spec_of, subkey, summed_value};

#[uprobe]
pub fn count(ctx: ProbeContext) -> u32 {
    let Some(spec) = spec_of(&ctx) else { return 0 };
    let Some((process, _)) = current_process(spec) else {
        return 0;
    };
    let key = CountKey {
        pid: process.pid,
        category: spec.tag,
        subkey: subkey(&ctx, spec),
        epoch: process.epoch,
    };
    let value = summed_value(&ctx, spec);
    accumulate(&COUNTS, &key, |v: &mut CountValue| {
        v.count += 1;
        v.sum += value;
    });
    // The CPU sampler names a JVM's methods only while no class unloaded since the sample.
    if spec.tag == category::CLASS_UNLOADED {
        hotspot::count_unload(process.pid);
    }
    0
}
