//! Fuzzes the WFDB header parser with arbitrary bytes: it must return a header or an
//! error, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = physio::wfdb::parse_header(data, std::path::Path::new("fuzz.hea")) {
        // Formatting the contract's JSON view must not panic either.
        let _ = h.wfdb_python_fields(None);
    }
});
