//! Frame semantics of multi-frequency records, as the WFDB C library defines them
//! (`lib/signal.c`, `rgetvec` and `meansamp`; issue 14 item 2).
//!
//! A signal with `spf > 1` samples per frame is oversampled. Reading one value per
//! frame ("low resolution", WFDB C's default and `rdsamp` without `-H`), the frame's
//! value is the mean of its samples **rounded to the nearest integer, halves up**
//! (`floor(mean + 1/2)`), as WFDB C **10.7.0** does (commit `bbfecc1`, "round to nearest
//! integer in low-resolution mode"); WFDB 10.5.24 and earlier truncated toward zero
//! (`sum / n` in C), which biases every mean toward zero by half an ADC unit on
//! average. physio follows 10.7.0, the current release; [`FrameMean::Wfdb10_5`]
//! reproduces the older outputs (wfdb-python's `tests/target-output/` were made with
//! 10.5.24). A frame holding any invalid sample is invalid (`meansamp` returns
//! `WFDB_INVALID_SAMPLE`), in every output type.
//!
//! Reading every sample at the highest rate ("high resolution", `rdsamp -H`,
//! `setgvmode(WFDB_HIGHRES)`), a record yields `max_spf` values per frame and signal;
//! a signal with fewer samples per frame repeats each sample (zero-order hold) with
//! WFDB's step rule ([`high_resolution`]).

/// Which WFDB C release's rule averages an oversampled frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameMean {
    /// WFDB C 10.7.0 and later: nearest integer, halves rounded up (`floor(m + 1/2)`).
    #[default]
    Wfdb10_7,
    /// WFDB C 10.5.24 and earlier: truncated toward zero.
    Wfdb10_5,
}

/// The mean of one frame's valid samples under `rule` (the caller checks validity).
/// Computed in i64, so no sum of i32 samples overflows.
pub fn frame_mean(frame: &[i32], rule: FrameMean) -> i32 {
    let n = frame.len().max(1) as i64;
    let sum: i64 = frame.iter().map(|&x| i64::from(x)).sum();
    let mean = match rule {
        FrameMean::Wfdb10_7 => (sum + n / 2).div_euclid(n),
        FrameMean::Wfdb10_5 => sum / n,
    };
    // The mean of i32 values lies between their min and max, so it fits.
    mean as i32
}

/// One value per frame from a signal's `spf` samples per frame: the [`frame_mean`] of
/// each frame, or, for a frame holding a sample for which `invalid(index)` is true, the
/// value of that sample (the format's invalid value), so the frame stays invalid.
pub fn smooth_frames(
    samples: &[i32],
    spf: usize,
    rule: FrameMean,
    invalid: impl Fn(usize) -> bool,
) -> Vec<i32> {
    let spf = spf.max(1);
    samples
        .chunks(spf)
        .enumerate()
        .map(|(f, frame)| {
            let base = f * spf;
            match (0..frame.len()).find(|&k| invalid(base + k)) {
                Some(k) => frame[k],
                None => frame_mean(frame, rule),
            }
        })
        .collect()
}

/// A signal with `spf` samples per frame at `max_spf` samples per frame (`max_spf >=
/// spf`), as WFDB C's high-resolution mode returns it: sample `k` of each frame's
/// `max_spf` is the signal's sample `i`, where `i` starts at 0 and steps by one
/// whenever a counter, started at `-max_spf` and raised by `spf` per output sample,
/// reaches 0 (then lowered by `max_spf`) — `rgetvec`'s `gvindex`/`gvcount`.
pub fn high_resolution<T: Copy>(samples: &[T], spf: usize, max_spf: usize) -> Vec<T> {
    let spf = spf.max(1);
    let max_spf = max_spf.max(spf);
    if spf == max_spf {
        return samples.to_vec();
    }
    let frames = samples.len() / spf;
    let mut out = Vec::with_capacity(frames * max_spf);
    for frame in samples.chunks_exact(spf) {
        let (mut index, mut count) = (0usize, -(max_spf as i64));
        for k in 0..max_spf {
            if k > 0 {
                count += spf as i64;
                if count >= 0 {
                    index += 1;
                    count -= max_spf as i64;
                }
            }
            out.push(frame[index.min(spf - 1)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! mean {
        ($($samples:expr, $v107:expr, $v105:expr;)*) => {$(
            assert_eq!(frame_mean(&$samples, FrameMean::Wfdb10_7), $v107, "{:?}", $samples);
            assert_eq!(frame_mean(&$samples, FrameMean::Wfdb10_5), $v105, "{:?}", $samples);
        )*};
    }

    #[test]
    fn means_follow_each_release() {
        mean! {
            // The first frame of mimicdb/041 from the 10.7.0 commit message.
            [-59, -60, -60, -60], -60, -59;
            [265, 287, 265, 265], 271, 270;
            [23, 23, 23, 23], 23, 23;
            // Halves round up, also below zero.
            [-1, 0], 0, 0;
            [-3, 0], -1, -1;
            [1, 2], 2, 1;
            [-2, -1, -1], -1, -1;
            [-2, -2, -1], -2, -1;
            [i32::MAX, i32::MAX], i32::MAX, i32::MAX;
            [i32::MIN + 1, i32::MIN + 1, i32::MIN + 1], i32::MIN + 1, i32::MIN + 1;
        }
    }

    #[test]
    fn an_invalid_sample_makes_the_frame_invalid() {
        // The case: -32768 averaged with 40 must not give -16364.
        let s = [-32768, 40, 10, 12];
        let out = smooth_frames(&s, 2, FrameMean::Wfdb10_7, |i| s[i] == -32768);
        assert_eq!(out, vec![-32768, 11]);
    }

    #[test]
    fn high_resolution_repeats_like_rgetvec() {
        // spf 1 of max 4: each sample four times.
        assert_eq!(high_resolution(&[1, 2], 1, 4), vec![1, 1, 1, 1, 2, 2, 2, 2]);
        // spf 2 of max 4: the index steps after 2 output samples.
        assert_eq!(
            high_resolution(&[1, 2, 3, 4], 2, 4),
            vec![1, 1, 2, 2, 3, 3, 4, 4]
        );
        // spf 2 of max 3 (rgetvec: counts -3, -1, 1 -> step at the third sample).
        assert_eq!(high_resolution(&[1, 2], 2, 3), vec![1, 1, 2]);
        assert_eq!(high_resolution(&[5, 6, 7], 3, 3), vec![5, 6, 7]);
    }
}
