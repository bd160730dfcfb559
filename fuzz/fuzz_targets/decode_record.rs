//! Fuzzes the sample decoders end to end: the first bytes choose a record shape
//! (format, signals, samples per frame, skew, byte offset, whether the header gives a
//! length), the rest is the signal file. Opening, reading all frames, a sub-range,
//! physical values and checksums must return values or errors, never panic.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use physio::wfdb::{self, RecordReader};

const FORMATS: [u16; 13] = [8, 16, 24, 32, 61, 80, 160, 212, 310, 311, 508, 516, 524];

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir")).path()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let (p, body) = data.split_at(6);
    let fmt = FORMATS[p[0] as usize % FORMATS.len()];
    let n_sig = 1 + p[1] as usize % 4;
    let spf = 1 + p[2] % 4;
    let skew = p[3] % 4;
    let offset = p[4] % 8;
    let len = if p[5] & 1 == 0 {
        format!(" {}", p[5] >> 1)
    } else {
        String::new()
    };
    let mut hea = format!("f {n_sig} 100{len}\n");
    for j in 0..n_sig {
        let s = if j == 1 { skew } else { 0 };
        hea.push_str(&format!("f.dat {fmt}x{spf}:{s}+{offset} 100 12 0 3 0 0 s{j}\n"));
    }
    let d = dir();
    if std::fs::write(d.join("f.hea"), hea).is_err() || std::fs::write(d.join("f.dat"), body).is_err() {
        return;
    }
    if let Ok(rec) = RecordReader::open(&d.join("f")) {
        let n = rec.n_frames();
        let _ = rec.read_digital(0..n);
        let _ = rec.read_physical(n / 3..n / 2 + 1);
        let _ = rec.read_physical_f32(n / 4..n);
        // Reused buffers: a long read, then a shorter one into the same vectors.
        let mut buf = Vec::new();
        let _ = rec.read_digital_into(0..n, &mut buf);
        let _ = rec.read_digital_into(n / 2..n, &mut buf);
        let _ = wfdb::verify_checksums(&rec);
    }
});
