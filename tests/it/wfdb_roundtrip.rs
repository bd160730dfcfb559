//! Property tests: random records of any shape (formats, signals per file, samples
//! per frame, lengths including 0 and odd ones, invalid values) round-trip through
//! physio's writer and reader bit-exactly, also when read in arbitrary sub-ranges.

use physio::wfdb::{RecordReader, SignalFormat, WriteSignal, write_record};
use proptest::prelude::*;

const FORMATS: [SignalFormat; 10] = [
    SignalFormat::F8,
    SignalFormat::F16,
    SignalFormat::F24,
    SignalFormat::F32,
    SignalFormat::F61,
    SignalFormat::F80,
    SignalFormat::F160,
    SignalFormat::F212,
    SignalFormat::F310,
    SignalFormat::F311,
];

#[derive(Debug, Clone)]
struct Shape {
    n_frames: u64,
    /// (format index, samples per frame, file number)
    signals: Vec<(usize, u32, usize)>,
    seed: u64,
    range: (u64, u64),
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        0u64..300,
        proptest::collection::vec((0usize..FORMATS.len(), 1u32..4, 0usize..3), 1..6),
        any::<u64>(),
        any::<(u64, u64)>(),
    )
        .prop_map(|(n_frames, signals, seed, range)| Shape {
            n_frames,
            signals,
            seed,
            range,
        })
}

fn build(shape: &Shape) -> Vec<WriteSignal> {
    let mut rng = fastrand::Rng::with_seed(shape.seed);
    // Signals of one file must share a format: the file's format is its first signal's.
    let mut file_format = [None; 3];
    shape
        .signals
        .iter()
        .enumerate()
        .map(|(j, &(fi, spf, file))| {
            let format = *file_format[file].get_or_insert(FORMATS[fi]);
            let n = (shape.n_frames * u64::from(spf)) as usize;
            let digital: Vec<i32> = if format == SignalFormat::F8 {
                // Differences must fit a signed byte.
                let mut v = rng.i32(-1000..1000);
                (0..n)
                    .map(|_| {
                        v += rng.i32(-128..=127);
                        v
                    })
                    .collect()
            } else {
                let bits = format.bits();
                let (lo, hi) = if bits == 32 {
                    (i64::from(i32::MIN), i64::from(i32::MAX))
                } else {
                    (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
                };
                (0..n).map(|_| rng.i64(lo..=hi) as i32).collect()
            };
            WriteSignal {
                name: format!("s{j}"),
                units: "mV".into(),
                format,
                adc_gain: 100.0 + j as f64,
                baseline: j as i64,
                adc_res: format.bits(),
                samps_per_frame: spf,
                file_name: format!("r_{file}.dat"),
                digital,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn written_records_read_back_bit_exactly(shape in shape()) {
        let dir = tempfile::tempdir().unwrap();
        let signals = build(&shape);
        write_record(dir.path(), "r", 500.0, shape.n_frames, &signals).unwrap();
        let rec = RecordReader::open(&dir.path().join("r")).unwrap();
        prop_assert_eq!(rec.n_frames(), shape.n_frames);
        let all = rec.read_digital(0..shape.n_frames).unwrap();
        for (j, s) in signals.iter().enumerate() {
            prop_assert_eq!(&all[j], &s.digital, "signal {}", j);
        }
        // Any sub-range equals the slice of the whole.
        let n = shape.n_frames;
        let (a, b) = if n == 0 { (0, 0) } else { (shape.range.0 % (n + 1), shape.range.1 % (n + 1)) };
        let (a, b) = (a.min(b), a.max(b));
        let part = rec.read_digital(a..b).unwrap();
        let phys = rec.read_physical(a..b).unwrap();
        for (j, s) in signals.iter().enumerate() {
            let spf = s.samps_per_frame as usize;
            let want = &s.digital[a as usize * spf..b as usize * spf];
            prop_assert_eq!(&part[j][..], want, "signal {} range {}..{}", j, a, b);
            for (p, &d) in phys[j].iter().zip(want) {
                if Some(d) == s.format.invalid_value() {
                    prop_assert!(p.is_nan());
                } else {
                    prop_assert_eq!(p.to_bits(), ((f64::from(d) - s.baseline as f64) / s.adc_gain).to_bits());
                }
            }
        }
        // The header checksums the writer stored verify.
        for c in physio::wfdb::verify_checksums(&rec).unwrap() {
            prop_assert!(c.ok, "{:?}", c);
        }
    }
}

#[test]
fn read_digital_into_reuses_buffers_and_equals_read_digital() {
    let dir = tempfile::tempdir().unwrap();
    let shape = Shape {
        n_frames: 257,
        signals: vec![(1, 1, 0), (1, 1, 0), (7, 1, 1), (7, 2, 1), (0, 1, 2)],
        seed: 3,
        range: (0, 0),
    };
    let signals = build(&shape);
    write_record(dir.path(), "r", 360.0, shape.n_frames, &signals).unwrap();
    let rec = RecordReader::open(&dir.path().join("r")).unwrap();
    let mut buf = Vec::new();
    // Shrinking, growing and repeated ranges all give what a fresh read gives.
    for range in [0..257, 10..20, 0..257, 256..257, 5..5, 100..250] {
        rec.read_digital_into(range.clone(), &mut buf).unwrap();
        assert_eq!(buf, rec.read_digital(range.clone()).unwrap(), "{range:?}");
    }
}
