//! FLAC signal files (WFDB formats 508, 516 and 524), decoded with the pure-Rust
//! `claxon` crate. This is the only file that names claxon.
//!
//! signal(5): "Formats 508, 516, and 524 store samples in FLAC format ... Each channel
//! of the FLAC stream is one signal; all signals in the file must have the same number
//! of samples per frame". As in wfdb-python (`_rd_compressed_file`), the header's byte
//! offset of a FLAC signal counts samples (per channel), not bytes, the stream must have
//! one channel per signal, and its bits per sample must not exceed the format's.
//! FLAC cannot be seeked cheaply without a seek table, so a range read decodes from the
//! start of the stream and discards the samples before the range.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::WfdbError;
use super::format::SignalFormat;

fn data_err(path: &Path, reason: String) -> WfdbError {
    WfdbError::Data {
        path: path.to_path_buf(),
        reason,
    }
}

fn open(
    path: &Path,
    format: SignalFormat,
    n_channels: usize,
) -> Result<claxon::FlacReader<BufReader<File>>, WfdbError> {
    let file = File::open(path).map_err(|source| WfdbError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file_len = file.metadata().map_or(0, |m| m.len());
    let reader = claxon::FlacReader::new(BufReader::new(file))
        .map_err(|e| data_err(path, format!("not a valid FLAC stream: {e}")))?;
    let info = reader.streaminfo();
    let max_bits = format.bits();
    if info.bits_per_sample > max_bits {
        return Err(data_err(
            path,
            format!(
                "FLAC stream has {} bits per sample, format {} allows at most {max_bits}",
                info.bits_per_sample,
                format.code()
            ),
        ));
    }
    if info.channels as usize != n_channels {
        return Err(data_err(
            path,
            format!(
                "FLAC stream has {} channels, the header lists {n_channels} signals in it",
                info.channels
            ),
        ));
    }
    // A FLAC frame takes at least a few bytes and holds at most 65535 samples per
    // channel, so no stream holds more than ~6554 samples per byte: a larger claim is
    // corrupt (and must not drive allocations).
    if let Some(total) = info.samples
        && total > file_len.saturating_mul(MAX_SAMPLES_PER_BYTE)
    {
        return Err(data_err(
            path,
            format!("FLAC stream declares {total} samples, more than {file_len} bytes can hold"),
        ));
    }
    Ok(reader)
}

/// Upper bound on samples per channel per byte of a FLAC file (see `open`).
const MAX_SAMPLES_PER_BYTE: u64 = 8192;

/// Number of samples per channel the stream's STREAMINFO declares (`None` if unknown).
pub fn total_samples(
    path: &Path,
    format: SignalFormat,
    n_channels: usize,
) -> Result<Option<u64>, WfdbError> {
    Ok(open(path, format, n_channels)?.streaminfo().samples)
}

/// Decodes samples `[start, end)` (per-channel sample indices) of every channel.
/// Errors if the stream ends before `end`.
pub fn read_range(
    path: &Path,
    format: SignalFormat,
    n_channels: usize,
    start: u64,
    end: u64,
) -> Result<Vec<Vec<i32>>, WfdbError> {
    let mut reader = open(path, format, n_channels)?;
    let want = usize::try_from(end.saturating_sub(start))
        .map_err(|_| data_err(path, "range too large".into()))?;
    // Grown as samples are decoded: the requested length may exceed what the stream
    // really holds, and memory should follow the data, not the claim.
    let mut out: Vec<Vec<i32>> = (0..n_channels)
        .map(|_| Vec::with_capacity(want.min(1 << 20)))
        .collect();
    let mut blocks = reader.blocks();
    let mut pos = 0u64;
    let mut buffer = Vec::new();
    while pos < end {
        let block = match blocks.read_next_or_eof(buffer) {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => return Err(data_err(path, format!("corrupt FLAC data: {e}"))),
        };
        if block.channels() as usize != n_channels {
            return Err(data_err(
                path,
                format!(
                    "FLAC frame at sample {pos} has {} channels",
                    block.channels()
                ),
            ));
        }
        let len = u64::from(block.duration());
        let lo = start.max(pos);
        let hi = end.min(pos + len);
        if lo < hi {
            let (a, b) = ((lo - pos) as usize, (hi - pos) as usize);
            for (ch, dst) in out.iter_mut().enumerate() {
                dst.extend_from_slice(&block.channel(ch as u32)[a..b]);
            }
        }
        pos += len;
        buffer = block.into_buffer();
    }
    if out.first().map_or(0, Vec::len) < want {
        return Err(WfdbError::ShortSignalFile {
            path: path.to_path_buf(),
            reason: format!("FLAC stream ends at sample {pos}, the header needs {end}"),
        });
    }
    Ok(out)
}
