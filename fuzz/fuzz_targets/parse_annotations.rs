//! Fuzzes the MIT annotation parser with arbitrary bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = physio::wfdb::annotation::parse_annotations(data, std::path::Path::new("fuzz.atr"));
});
