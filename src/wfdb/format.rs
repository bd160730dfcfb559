//! WFDB signal storage formats and the byte-level decoders and encoders for the
//! uncompressed ones.
//!
//! Bit layouts are those of the WFDB Programmer's Guide, "signal(5)"
//! (<https://physionet.org/physiotools/wag/signal-5.htm>); invalid-sample values are
//! wfdb-python 4.3.1's `INVALID_SAMPLE_VALUE` table (`wfdb/io/_signal.py`). The FLAC
//! formats (508/516/524) are decoded in `wfdb::flac`.
//!
//! Packed formats (212: 2 samples in 3 bytes; 310/311: 3 samples in 4 bytes) are decoded
//! from a block boundary; a final incomplete block is decoded as if padded with zero
//! bytes, which is what wfdb-python does for records that end mid-block.

use std::fmt;

/// A WFDB signal storage format (the number in a signal line's format field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalFormat {
    /// Null signal: nothing is stored (used by the layout header of variable-layout
    /// multi-segment records, `~ 0`). It has no samples to read.
    F0,
    /// 8-bit first differences (sample = previous + difference, from the initial value).
    F8,
    /// 16-bit two's complement, little-endian.
    F16,
    /// 24-bit two's complement, little-endian.
    F24,
    /// 32-bit two's complement, little-endian.
    F32,
    /// 16-bit two's complement, big-endian.
    F61,
    /// 8-bit offset binary.
    F80,
    /// 16-bit offset binary, little-endian.
    F160,
    /// 12-bit two's complement, two samples packed in three bytes.
    F212,
    /// 10-bit two's complement, three samples in 32 bits (bits 1–10, 11–15+27–31…).
    F310,
    /// 10-bit two's complement, three samples in the low 30 bits of 32.
    F311,
    /// FLAC, up to 8 bits per sample.
    F508,
    /// FLAC, up to 16 bits per sample.
    F516,
    /// FLAC, up to 24 bits per sample.
    F524,
}

impl SignalFormat {
    /// Every supported format.
    pub const ALL: [SignalFormat; 14] = [
        SignalFormat::F0,
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
        SignalFormat::F508,
        SignalFormat::F516,
        SignalFormat::F524,
    ];

    /// The format for a header's format number, `None` if unsupported.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }

    /// The format number as written in headers.
    pub fn code(self) -> u16 {
        match self {
            SignalFormat::F0 => 0,
            SignalFormat::F8 => 8,
            SignalFormat::F16 => 16,
            SignalFormat::F24 => 24,
            SignalFormat::F32 => 32,
            SignalFormat::F61 => 61,
            SignalFormat::F80 => 80,
            SignalFormat::F160 => 160,
            SignalFormat::F212 => 212,
            SignalFormat::F310 => 310,
            SignalFormat::F311 => 311,
            SignalFormat::F508 => 508,
            SignalFormat::F516 => 516,
            SignalFormat::F524 => 524,
        }
    }

    /// The digital value that marks an invalid (missing) sample; `None` for format 8,
    /// which has none.
    pub fn invalid_value(self) -> Option<i32> {
        match self {
            SignalFormat::F0 | SignalFormat::F8 => None,
            SignalFormat::F80 | SignalFormat::F508 => Some(-(1 << 7)),
            SignalFormat::F310 | SignalFormat::F311 => Some(-(1 << 9)),
            SignalFormat::F212 => Some(-(1 << 11)),
            SignalFormat::F16 | SignalFormat::F61 | SignalFormat::F160 | SignalFormat::F516 => {
                Some(-(1 << 15))
            }
            SignalFormat::F24 | SignalFormat::F524 => Some(-(1 << 23)),
            SignalFormat::F32 => Some(i32::MIN),
        }
    }

    /// Bits per stored sample value (the format's resolution).
    pub fn bits(self) -> u32 {
        match self {
            SignalFormat::F0 => 0,
            SignalFormat::F8 | SignalFormat::F80 | SignalFormat::F508 => 8,
            SignalFormat::F310 | SignalFormat::F311 => 10,
            SignalFormat::F212 => 12,
            SignalFormat::F16 | SignalFormat::F61 | SignalFormat::F160 | SignalFormat::F516 => 16,
            SignalFormat::F24 | SignalFormat::F524 => 24,
            SignalFormat::F32 => 32,
        }
    }

    /// True for the FLAC-compressed formats.
    pub fn is_flac(self) -> bool {
        matches!(
            self,
            SignalFormat::F508 | SignalFormat::F516 | SignalFormat::F524
        )
    }

    /// Samples per block and bytes per block for uncompressed formats (`None` for FLAC):
    /// a read must start on a block boundary.
    pub fn block(self) -> Option<(u64, u64)> {
        Some(match self {
            SignalFormat::F8 | SignalFormat::F80 => (1, 1),
            SignalFormat::F16 | SignalFormat::F61 | SignalFormat::F160 => (1, 2),
            SignalFormat::F24 => (1, 3),
            SignalFormat::F32 => (1, 4),
            SignalFormat::F212 => (2, 3),
            SignalFormat::F310 | SignalFormat::F311 => (3, 4),
            SignalFormat::F0 | SignalFormat::F508 | SignalFormat::F516 | SignalFormat::F524 => {
                return None;
            }
        })
    }

    /// Bytes needed to hold `n` samples starting at a block boundary (the last block may
    /// be partial: 212 and 310/311 records may end mid-block). `None` for FLAC.
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        let (spb, bpb) = self.block()?;
        let full = n / spb * bpb;
        let extra = match (self, n % spb) {
            (_, 0) => 0,
            (SignalFormat::F212, _) => 2,
            // 310: sample 0 of a block is in bytes 0–1, sample 1 in bytes 2–3.
            (SignalFormat::F310, 1) => 2,
            (SignalFormat::F310, _) => 4,
            // 311: sample 0 is in bytes 0–1, sample 1 in bytes 1–2.
            (SignalFormat::F311, 1) => 2,
            (SignalFormat::F311, _) => 3,
            _ => 0,
        };
        Some(full + extra)
    }

    /// How many whole samples `bytes` bytes hold (how wfdb-python infers a signal
    /// length from the file size: `int(bytes / bytes_per_sample)`). `None` for FLAC.
    pub fn samples_in(self, bytes: u64) -> Option<u64> {
        let (spb, bpb) = self.block()?;
        Some(bytes * spb / bpb)
    }
}

impl fmt::Display for SignalFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// Decodes the raw stored values of `n` samples of an uncompressed format from `bytes`,
/// which starts on a block boundary, appending them to `out`. Bytes missing at the end
/// are taken as zero. Format 8 yields the raw differences (integration happens per
/// signal, see the reader). FLAC formats yield nothing.
pub fn decode(format: SignalFormat, bytes: &[u8], n: usize, out: &mut Vec<i32>) {
    out.reserve(n);
    let start = out.len();
    match format {
        SignalFormat::F8 => out.extend(bytes.iter().take(n).map(|&b| i32::from(b as i8))),
        SignalFormat::F80 => out.extend(bytes.iter().take(n).map(|&b| i32::from(b) - 128)),
        SignalFormat::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .take(n)
                .map(|c| i32::from(i16::from_le_bytes([c[0], c[1]]))),
        ),
        SignalFormat::F61 => out.extend(
            bytes
                .chunks_exact(2)
                .take(n)
                .map(|c| i32::from(i16::from_be_bytes([c[0], c[1]]))),
        ),
        SignalFormat::F160 => out.extend(
            bytes
                .chunks_exact(2)
                .take(n)
                .map(|c| i32::from(u16::from_le_bytes([c[0], c[1]])) - 32768),
        ),
        SignalFormat::F24 => out.extend(
            bytes
                .chunks_exact(3)
                .take(n)
                .map(|c| i32::from_le_bytes([0, c[0], c[1], c[2]]) >> 8),
        ),
        SignalFormat::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .take(n)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        SignalFormat::F212 => {
            // Whole blocks into a pre-sized slice (no per-sample capacity checks).
            let pairs = (n / 2).min(bytes.len() / 3);
            out.resize(start + 2 * pairs, 0);
            for (d, c) in out[start..].chunks_exact_mut(2).zip(bytes.chunks_exact(3)) {
                let (b0, b1, b2) = (i32::from(c[0]), i32::from(c[1]), i32::from(c[2]));
                d[0] = sign_extend(b0 | ((b1 & 0x0f) << 8), 12);
                d[1] = sign_extend(b2 | ((b1 & 0xf0) << 4), 12);
            }
            let mut done = out.len() - start;
            if done < n {
                let mut c = [0u8; 3];
                let tail = &bytes[(done / 2 * 3).min(bytes.len())..];
                for (d, s) in c.iter_mut().zip(tail) {
                    *d = *s;
                }
                let (b0, b1, b2) = (i32::from(c[0]), i32::from(c[1]), i32::from(c[2]));
                out.push(sign_extend(b0 | ((b1 & 0x0f) << 8), 12));
                done += 1;
                if done < n {
                    out.push(sign_extend(b2 | ((b1 & 0xf0) << 4), 12));
                }
            }
        }
        SignalFormat::F310 | SignalFormat::F311 => {
            let unpack = |c: [u8; 4]| -> [i32; 3] {
                let b = c.map(i32::from);
                let v = if format == SignalFormat::F310 {
                    [
                        (b[0] >> 1) | ((b[1] & 0x07) << 7),
                        (b[2] >> 1) | ((b[3] & 0x07) << 7),
                        ((b[1] >> 3) & 0x1f) | (((b[3] >> 3) & 0x1f) << 5),
                    ]
                } else {
                    [
                        b[0] | ((b[1] & 0x03) << 8),
                        (b[1] >> 2) | ((b[2] & 0x0f) << 6),
                        (b[2] >> 4) | ((b[3] & 0x3f) << 4),
                    ]
                };
                v.map(|x| sign_extend(x, 10))
            };
            let mut blocks = bytes.chunks_exact(4);
            for c in blocks.by_ref().take(n / 3) {
                out.extend(unpack([c[0], c[1], c[2], c[3]]));
            }
            let done = out.len() - start;
            if done < n {
                let mut c = [0u8; 4];
                let tail = &bytes[(done / 3 * 4).min(bytes.len())..];
                for (d, s) in c.iter_mut().zip(tail) {
                    *d = *s;
                }
                out.extend(unpack(c).into_iter().take(n - done));
            }
        }
        SignalFormat::F0 | SignalFormat::F508 | SignalFormat::F516 | SignalFormat::F524 => {}
    }
    // Samples whose bytes are missing entirely read as zero bytes.
    let short = n - (out.len() - start).min(n);
    if short > 0 {
        let zero = match format {
            SignalFormat::F80 => -128,
            SignalFormat::F160 => -32768,
            _ => 0,
        };
        out.extend(std::iter::repeat_n(zero, short));
    }
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: i32, bits: u32) -> i32 {
    let shift = 32 - bits;
    (v << shift) >> shift
}

/// Encodes `samples` (already clamped to the format's range) in an uncompressed format,
/// appending to `out`. Used by the writer. Format 8 expects the differences.
pub fn encode(format: SignalFormat, samples: &[i32], out: &mut Vec<u8>) {
    match format {
        SignalFormat::F8 => out.extend(samples.iter().map(|&s| s as i8 as u8)),
        SignalFormat::F80 => out.extend(samples.iter().map(|&s| (s + 128) as u8)),
        SignalFormat::F16 => {
            for &s in samples {
                out.extend_from_slice(&(s as i16).to_le_bytes());
            }
        }
        SignalFormat::F61 => {
            for &s in samples {
                out.extend_from_slice(&(s as i16).to_be_bytes());
            }
        }
        SignalFormat::F160 => {
            for &s in samples {
                out.extend_from_slice(&((s + 32768) as u16).to_le_bytes());
            }
        }
        SignalFormat::F24 => {
            for &s in samples {
                out.extend_from_slice(&s.to_le_bytes()[..3]);
            }
        }
        SignalFormat::F32 => {
            for &s in samples {
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
        SignalFormat::F212 => {
            for pair in samples.chunks(2) {
                let a = pair[0] & 0xfff;
                let b = pair.get(1).map_or(0, |&b| b & 0xfff);
                out.push(a as u8);
                out.push(((a >> 8) | ((b >> 8) << 4)) as u8);
                if pair.len() == 2 {
                    out.push(b as u8);
                }
            }
        }
        SignalFormat::F310 | SignalFormat::F311 => {
            for tri in samples.chunks(3) {
                let v = [0, 1, 2].map(|i| tri.get(i).map_or(0, |&s| s & 0x3ff));
                let block: [u8; 4] = if format == SignalFormat::F310 {
                    [
                        (v[0] << 1) as u8,
                        ((v[0] >> 7) | ((v[2] & 0x1f) << 3)) as u8,
                        (v[1] << 1) as u8,
                        ((v[1] >> 7) | ((v[2] >> 5) << 3)) as u8,
                    ]
                } else {
                    [
                        v[0] as u8,
                        ((v[0] >> 8) | (v[1] << 2)) as u8,
                        ((v[1] >> 6) | (v[2] << 4)) as u8,
                        (v[2] >> 4) as u8,
                    ]
                };
                let len = format.bytes_for(tri.len() as u64).map_or(4, |b| b as usize);
                out.extend_from_slice(&block[..len]);
            }
        }
        SignalFormat::F0 | SignalFormat::F508 | SignalFormat::F516 | SignalFormat::F524 => {}
    }
}

/// The inclusive range of values a format can store.
pub fn value_range(format: SignalFormat) -> (i64, i64) {
    match format {
        SignalFormat::F0 => (0, 0),
        SignalFormat::F8 | SignalFormat::F32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        f => {
            let b = f.bits();
            (-(1i64 << (b - 1)), (1i64 << (b - 1)) - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_212_bytes() {
        // signal(5): "each sample is represented by a 12-bit two's complement amplitude.
        // The first sample is obtained from the 12 least significant bits of the first byte
        // pair ... The second sample is formed from the 4 remaining bits of the first pair
        // (which are the 4 high bits of the 12-bit sample) and the next byte".
        let mut out = Vec::new();
        decode(SignalFormat::F212, &[0xe3, 0x03, 0xf3], 2, &mut out);
        assert_eq!(out, vec![995, 243]);
        out.clear();
        decode(SignalFormat::F212, &[0xff, 0xff, 0x00], 2, &mut out);
        assert_eq!(out, vec![-1, -256]);
    }

    #[test]
    fn bytes_for_partial_blocks() {
        assert_eq!(SignalFormat::F212.bytes_for(3), Some(5));
        assert_eq!(SignalFormat::F310.bytes_for(5), Some(8));
        assert_eq!(SignalFormat::F311.bytes_for(5), Some(7));
        assert_eq!(SignalFormat::F311.bytes_for(4), Some(6));
        assert_eq!(SignalFormat::F24.bytes_for(4), Some(12));
        assert_eq!(SignalFormat::F516.bytes_for(4), None);
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            fmt_idx in 1usize..11,
            raw in proptest::collection::vec(any::<i32>(), 0..50),
        ) {
            let format = SignalFormat::ALL[fmt_idx];
            let (lo, hi) = value_range(format);
            let lo = if format == SignalFormat::F8 { -128 } else { lo };
            let hi = if format == SignalFormat::F8 { 127 } else { hi };
            let samples: Vec<i32> = raw
                .iter()
                .map(|&v| (i64::from(v).rem_euclid(hi - lo + 1) + lo) as i32)
                .collect();
            let mut bytes = Vec::new();
            encode(format, &samples, &mut bytes);
            prop_assert_eq!(Some(bytes.len() as u64), format.bytes_for(samples.len() as u64));
            let mut back = Vec::new();
            decode(format, &bytes, samples.len(), &mut back);
            prop_assert_eq!(back, samples);
        }
    }
}
