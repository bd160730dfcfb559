//! Fuzzes the EDF/EDF+ reader end to end. The first byte chooses how the input is
//! used: as a whole file (the header parser on arbitrary bytes), or as the data records
//! and TALs behind a well-formed header whose shape (signals, samples per record,
//! record count, EDF/EDF+C/EDF+D) the next bytes choose, so that the sample decoder,
//! the EDF+D record placement and the TAL parser are reached. Opening, reading all
//! frames, annotations and the `info --json` view must return values or errors, never
//! panic, and nothing may be allocated beyond what the file holds.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use physio::edf::EdfReader;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir")).path()
}

fn field(s: &str, n: usize) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.resize(n, b' ');
    v
}

/// A header for `samples` per signal (the last an annotation signal when `plus`).
fn header(reserved: &str, n_records: &str, samples: &[u8], plus: bool) -> Vec<u8> {
    let ns = samples.len();
    let mut h = Vec::new();
    h.extend(field("0", 8));
    h.extend(field("X X X X", 80));
    h.extend(field("Startdate X X X X", 80));
    h.extend(field("01.01.20", 8));
    h.extend(field("00.00.00", 8));
    h.extend(field(&(256 * (ns + 1)).to_string(), 8));
    h.extend(field(reserved, 44));
    h.extend(field(n_records, 8));
    h.extend(field("1", 8));
    h.extend(field(&ns.to_string(), 4));
    let last = ns - 1;
    let each = |h: &mut Vec<u8>, f: &dyn Fn(usize) -> String, w: usize| {
        for i in 0..ns {
            h.extend(field(&f(i), w));
        }
    };
    each(&mut h, &|i| if plus && i == last { "EDF Annotations".into() } else { format!("S{i}") }, 16);
    each(&mut h, &|_| String::new(), 80);
    each(&mut h, &|_| "uV".into(), 8);
    each(&mut h, &|i| if i == 1 { "0".into() } else { "-100".into() }, 8);
    each(&mut h, &|i| if i == 1 { "0".into() } else { "100".into() }, 8);
    each(&mut h, &|i| if i == 1 { "0".into() } else { "-32768".into() }, 8);
    each(&mut h, &|i| if i == 1 { "0".into() } else { "32767".into() }, 8);
    each(&mut h, &|_| String::new(), 80);
    each(&mut h, &|i| samples[i].to_string(), 8);
    each(&mut h, &|_| String::new(), 32);
    h
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let file = if data[0] & 1 == 0 {
        data[1..].to_vec()
    } else {
        let ns = 1 + (data[1] % 4) as usize;
        let samples: Vec<u8> = (0..ns).map(|i| 1 + data[2].rotate_left(i as u32) % 16).collect();
        let (reserved, plus) = match data[3] % 3 {
            0 => ("", false),
            1 => ("EDF+C", true),
            _ => ("EDF+D", true),
        };
        let n_records = if data[0] & 2 == 0 { "-1".to_string() } else { (data[0] >> 2).to_string() };
        let mut f = header(reserved, &n_records, &samples, plus);
        f.extend_from_slice(&data[4..]);
        f
    };
    let path = dir().join("fuzz.edf");
    if std::fs::write(&path, &file).is_err() {
        return;
    }
    let Ok(r) = EdfReader::open(&path) else {
        return;
    };
    let h = r.header();
    assert!(h.n_records * h.record_bytes() <= file.len() as u64 - h.header_bytes);
    let tspf: u64 = r.samps_per_frame().iter().map(|&s| u64::from(s)).sum();
    if r.n_frames().saturating_mul(tspf) <= 1 << 22 {
        let _ = r.read_physical_f32(0..r.n_frames());
        let _ = r.read_digital(r.n_frames() / 3..r.n_frames());
    }
    let _ = r.annotations();
    let _ = r.wfdb_python_fields();
});
