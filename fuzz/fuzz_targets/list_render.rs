//! `ustat list` on any file, large ones included (run with `-max_len=8388608`): read through
//! the reader ustat uses on untrusted files (pread, a read budget), parsed, and rendered as a
//! table, CSV and JSON without a panic, whatever the names' lengths.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ustat::{binary::Binary, cli::ListFormat, commands::list, target::ProbedBinary, usdt};

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("ustat-fuzz-list-{}", std::process::id()));
    std::fs::write(&path, data).expect("write the input to a file");
    let Ok(binary) = Binary::open_given(&path) else {
        return;
    };
    let Ok(probes) = usdt::probes_in_binary(&binary) else {
        return;
    };
    let binaries = [ProbedBinary {
        path: path.clone(),
        binary,
        probes,
    }];
    for format in [ListFormat::Table, ListFormat::Csv, ListFormat::Json] {
        list::render(format, &binaries, &mut std::io::sink()).expect("render to a sink");
    }
});
