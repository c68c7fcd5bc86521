//! One stapsdt note descriptor: never panics, and what parses keeps its three addresses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ustat::usdt::note::parse_desc;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = parse_desc(0, data) {
        assert!(data.len() >= 24);
        assert_eq!(note.pc.to_le_bytes(), data[..8]);
    }
});
