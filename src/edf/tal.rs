//! EDF+ Time-stamped Annotation Lists (EDF+ spec section 2.2.2): the bytes of an
//! `EDF Annotations` signal in one data record are a series of TALs, each
//!
//! ```text
//! +Onset[\x15Duration]\x14[Text\x14]...\x00
//! ```
//!
//! padded with NULs. The first TAL of every data record is a time-keeping TAL with no
//! text; its onset is the data record's start in seconds after the header's start time.

/// One annotation from a TAL.
#[derive(Debug, Clone, PartialEq)]
pub struct Tal {
    /// Seconds after the file's start time (as written: `+12.5`).
    pub onset: f64,
    /// Seconds, when the TAL gives a duration.
    pub duration: Option<f64>,
    /// The annotation's text (UTF-8 per the EDF+ spec; invalid bytes replaced).
    /// Empty for the time-keeping TAL.
    pub text: String,
}

/// What went wrong in a TAL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset}: {reason}")]
pub struct TalError {
    /// Byte offset in the annotation bytes of the data record.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

fn number(s: &[u8], what: &str, offset: usize, signed: bool) -> Result<f64, TalError> {
    let bad = || TalError {
        offset,
        reason: format!("{what} {:?} is not a number", String::from_utf8_lossy(s)),
    };
    let text = std::str::from_utf8(s).map_err(|_| bad())?;
    if signed && !(text.starts_with('+') || text.starts_with('-')) {
        return Err(TalError {
            offset,
            reason: format!("{what} {text:?} does not start with + or -"),
        });
    }
    // Only digits, one `.`, and the sign: `f64::from_str` would accept `inf`, `1e9`.
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    text.parse::<f64>().map_err(|_| bad())
}

/// Parses the annotation bytes of one data record into its TALs, in order. Each
/// text of a TAL with several texts is its own [`Tal`]; a TAL with no text gives one
/// with empty text (the time-keeping TAL).
pub fn parse_tals(bytes: &[u8]) -> Result<Vec<Tal>, TalError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == 0 {
            at += 1;
            continue;
        }
        let end = bytes[at..]
            .iter()
            .position(|&b| b == 0)
            .map_or(bytes.len(), |p| at + p);
        let tal = &bytes[at..end];
        let Some(ts_end) = tal.iter().position(|&b| b == 0x14) else {
            return Err(TalError {
                offset: at,
                reason: "TAL without the 0x14 after its onset".to_string(),
            });
        };
        let ts = &tal[..ts_end];
        let (onset, duration) = match ts.iter().position(|&b| b == 0x15) {
            Some(p) => (
                number(&ts[..p], "onset", at, true)?,
                Some(number(&ts[p + 1..], "duration", at, false)?),
            ),
            None => (number(ts, "onset", at, true)?, None),
        };
        let texts: Vec<&[u8]> = tal[ts_end + 1..]
            .split(|&b| b == 0x14)
            .filter(|t| !t.is_empty())
            .collect();
        if texts.is_empty() {
            out.push(Tal {
                onset,
                duration,
                text: String::new(),
            });
        }
        for t in texts {
            out.push(Tal {
                onset,
                duration,
                text: String::from_utf8_lossy(t).into_owned(),
            });
        }
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keeping_and_annotations() {
        let b =
            b"+0\x14\x14\x00+1.5\x150.25\x14Apnea\x14Snore\x14\x00+3\x14Lights off\x14\x00\x00\x00";
        let t = parse_tals(b).unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(
            (t[0].onset, t[0].duration, t[0].text.as_str()),
            (0.0, None, "")
        );
        assert_eq!(
            (t[1].onset, t[1].duration, t[1].text.as_str()),
            (1.5, Some(0.25), "Apnea")
        );
        assert_eq!(t[2].text, "Snore");
        assert_eq!((t[3].onset, t[3].text.as_str()), (3.0, "Lights off"));
    }

    #[test]
    fn negative_onsets_and_utf8() {
        let t = parse_tals("-0.5\x14\x14Ω\x14\x00".as_bytes()).unwrap();
        assert_eq!(t[0].onset, -0.5);
        assert_eq!(t[0].text, "Ω");
    }

    #[test]
    fn malformed_tals_are_errors() {
        assert!(parse_tals(b"0\x14\x14\x00").is_err()); // no sign
        assert!(parse_tals(b"+1e9\x14\x14\x00").is_err());
        assert!(parse_tals(b"+inf\x14\x14\x00").is_err());
        assert!(parse_tals(b"+1\x00").is_err()); // no 0x14
        assert!(parse_tals(b"+1\x15\x14x\x14\x00").is_err()); // empty duration
        assert_eq!(parse_tals(b"\x00\x00").unwrap(), vec![]);
    }
}
