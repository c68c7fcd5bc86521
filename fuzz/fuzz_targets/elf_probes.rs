//! A whole file as ustat reads it: ELF checks, notes, addresses, argument specs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ustat::{elf::Elf, usdt};

fuzz_target!(|data: &[u8]| {
    let Ok(elf) = Elf::parse(data) else { return };
    let Ok(Some(probes)) = usdt::probes_in(&elf) else { return };
    for site in probes.iter().flat_map(|p| &p.sites) {
        if let Ok(target) = &site.target {
            assert!(target.args.len() <= 12);
            let spec = target.probe_spec(0);
            assert_eq!(usize::from(spec.nargs), target.args.len());
        }
    }
});
