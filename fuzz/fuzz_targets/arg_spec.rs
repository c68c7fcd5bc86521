//! Argument specs: never panic; what parses has 1 to 12 arguments of a valid size, and
//! lowers to kernel specs with valid register offsets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ustat::usdt::spec::{self, SymbolLookup};

struct AnySymbol;
impl SymbolLookup for AnySymbol {
    fn address_of(&self, name: &str) -> Option<u64> {
        (name.len() % 2 == 0).then_some(0x1000 + name.len() as u64)
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(args) = spec::parse(text) {
        assert!(args.len() <= 12);
        for arg in &args {
            assert!(matches!(arg.size, 1 | 2 | 4 | 8));
        }
        if let Ok(lowered) = spec::lower(&args, 0x401000, &AnySymbol) {
            assert_eq!(lowered.len(), args.len());
            for a in lowered {
                assert!(a.reg_off <= 160 || a.reg_off == 0xffff);
                assert!(a.index_reg_off <= 160);
            }
        }
    }
});
