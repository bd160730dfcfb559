//! MIT-format annotation files (annotation(5),
//! <https://physionet.org/physiotools/wag/annot-5.htm>), so converters can emit beat and
//! rhythm labels.
//!
//! The file is a sequence of 16-bit little-endian words: the high 6 bits are a code `A`,
//! the low 10 bits a value `I`. `A` in 1–49 starts an annotation of that type, `I`
//! samples after the previous one. Pseudo-codes modify it: `SKIP` (59; a 32-bit interval
//! follows, high half first), `NUM` (60), `SUB` (61), `CHN` (62), `AUX` (63; `I` bytes of
//! text follow, padded to an even length). `A = 0, I = 0` ends the file. `num` and `chan`
//! carry over to following annotations; `subtype` and `aux` do not.
//!
//! As wfdb-python's `rdann` does, NOTE annotations at sample 0 (which hold the
//! `## time resolution` and custom label definitions) and `A = 0` entries are not
//! returned as annotations; the definitions are returned separately.

use std::path::{Path, PathBuf};

use super::WfdbError;

/// One annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Sample (frame) number.
    pub sample: i64,
    /// Annotation type code (1–49; `label_store` in wfdb-python).
    pub code: u8,
    /// Mnemonic symbol (`N`, `V`, `+`, ...; from custom definitions where given).
    pub symbol: String,
    /// Subtype.
    pub subtype: i8,
    /// Signal (channel) number.
    pub chan: u8,
    /// Annotator number.
    pub num: i8,
    /// Auxiliary bytes as stored (rhythm labels such as `(N` live here).
    pub aux: Vec<u8>,
}

/// A custom annotation type defined in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomLabel {
    /// Code.
    pub code: u8,
    /// Symbol.
    pub symbol: String,
    /// Description.
    pub description: String,
}

/// An annotation file's contents.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotationFile {
    /// The annotations (definitions removed).
    pub annotations: Vec<Annotation>,
    /// Sampling frequency declared in the file (`## time resolution: ...`), if any.
    pub fs: Option<f64>,
    /// Custom label definitions, if any.
    pub custom_labels: Vec<CustomLabel>,
}

/// Standard mnemonics by code (WFDB `ecgcodes.h`; wfdb-python `ann_labels`).
const SYMBOLS: [&str; 42] = [
    " ", "N", "L", "R", "a", "V", "F", "J", "A", "S", "E", "j", "/", "Q", "~", "", "|", "", "s",
    "T", "*", "D", "\"", "=", "p", "B", "^", "t", "+", "u", "?", "!", "[", "]", "e", "n", "@", "x",
    "f", "(", ")", "r",
];

/// The standard symbol of an annotation code (`[code]` where WFDB defines none).
pub fn standard_symbol(code: u8) -> String {
    match SYMBOLS.get(code as usize) {
        Some(s) if !s.is_empty() => (*s).to_string(),
        _ => format!("[{code}]"),
    }
}

/// Reads `<record_path>.<extension>` (e.g. `mitdb/100` + `atr`) and returns its
/// annotations as wfdb-python's `rdann` does.
pub fn read_annotations(record_path: &Path, extension: &str) -> Result<Vec<Annotation>, WfdbError> {
    Ok(read_annotation_file(&annotation_path(record_path, extension))?.annotations)
}

/// The annotation file path for a record path and annotator extension.
pub fn annotation_path(record_path: &Path, extension: &str) -> PathBuf {
    let base = if record_path.extension().is_some_and(|e| e == "hea") {
        record_path.with_extension("")
    } else {
        record_path.to_path_buf()
    };
    let mut s = base.into_os_string();
    s.push(".");
    s.push(extension);
    PathBuf::from(s)
}

/// Reads and parses one annotation file.
pub fn read_annotation_file(path: &Path) -> Result<AnnotationFile, WfdbError> {
    let bytes = std::fs::read(path).map_err(|source| WfdbError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_annotations(&bytes, path)
}

/// Parses annotation file bytes; `path` is used in errors.
pub fn parse_annotations(bytes: &[u8], path: &Path) -> Result<AnnotationFile, WfdbError> {
    const SKIP: u16 = 59;
    const NUM: u16 = 60;
    const SUB: u16 = 61;
    const CHN: u16 = 62;
    const AUX: u16 = 63;
    let err = |offset: usize, reason: &str| WfdbError::Annotation {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: reason.to_string(),
    };
    let word = |at: usize| -> Option<(u16, u16)> {
        let w = u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]);
        Some((w >> 10, w & 0x3ff))
    };
    // (annotation, is_definition_candidate)
    let mut raw: Vec<Annotation> = Vec::new();
    let mut time: i64 = 0;
    let mut chan: u8 = 0;
    let mut num: i8 = 0;
    let mut pos = 0usize;
    while let Some((mut a, mut i)) = word(pos) {
        if a == 0 && i == 0 {
            break; // end of file
        }
        while a == SKIP {
            let b = bytes
                .get(pos + 2..pos + 6)
                .ok_or_else(|| err(pos, "truncated SKIP"))?;
            let hi = u32::from(u16::from_le_bytes([b[0], b[1]]));
            let lo = u32::from(u16::from_le_bytes([b[2], b[3]]));
            time += i64::from(((hi << 16) | lo) as i32);
            pos += 6;
            (a, i) = word(pos).ok_or_else(|| err(pos, "file ends after SKIP"))?;
        }
        if a > SKIP {
            return Err(err(pos, "modifier without an annotation"));
        }
        time += i64::from(i);
        pos += 2;
        let mut ann = Annotation {
            sample: time,
            code: a as u8,
            symbol: String::new(),
            subtype: 0,
            chan,
            num,
            aux: Vec::new(),
        };
        while let Some((m, v)) = word(pos) {
            if m <= SKIP {
                break;
            }
            let low = bytes[pos];
            pos += 2;
            match m {
                NUM => num = low as i8,
                SUB => ann.subtype = low as i8,
                CHN => chan = low,
                AUX => {
                    let len = usize::from(v & 0xff);
                    let padded = len + (len & 1);
                    let text = bytes
                        .get(pos..pos + padded)
                        .ok_or_else(|| err(pos, "truncated AUX text"))?;
                    ann.aux = text[..len].to_vec();
                    pos += padded;
                }
                _ => {}
            }
            ann.num = num;
            ann.chan = chan;
        }
        raw.push(ann);
    }
    // Definitions: NOTE (22) annotations at sample 0.
    let mut fs = None;
    let mut custom_labels = Vec::new();
    let defs: Vec<&Annotation> = raw
        .iter()
        .filter(|a| a.sample == 0 && a.code == 22)
        .collect();
    let mut k = 0;
    while k < defs.len() {
        let text = String::from_utf8_lossy(&defs[k].aux);
        if let Some(rest) = text.strip_prefix("## time resolution: ") {
            let num: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            if fs.is_none() {
                fs = num.parse::<f64>().ok();
            }
        } else if text == "## annotation type definitions" {
            k += 1;
            while k < defs.len() {
                let line = String::from_utf8_lossy(&defs[k].aux).into_owned();
                if line == "## end of definitions" {
                    break;
                }
                let mut parts = line.splitn(3, ' ');
                if let (Some(c), Some(s), Some(d)) = (parts.next(), parts.next(), parts.next())
                    && let Ok(code) = c.parse::<u8>()
                {
                    custom_labels.push(CustomLabel {
                        code,
                        symbol: s.to_string(),
                        description: d.to_string(),
                    });
                }
                k += 1;
            }
        }
        k += 1;
    }
    let annotations = raw
        .into_iter()
        .filter(|a| a.code != 0 && !(a.sample == 0 && a.code == 22))
        .map(|mut a| {
            a.symbol = custom_labels
                .iter()
                .find(|c| c.code == a.code)
                .map_or_else(|| standard_symbol(a.code), |c| c.symbol.clone());
            a
        })
        .collect();
    Ok(AnnotationFile {
        annotations,
        fs,
        custom_labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(a: u16, i: u16) -> [u8; 2] {
        ((a << 10) | i).to_le_bytes()
    }

    #[test]
    fn pseudo_codes() {
        let mut b = Vec::new();
        b.extend(w(1, 10)); // N at 10
        b.extend(w(62, 1)); // chan 1
        b.extend(w(60, 5)); // num 5
        b.extend(w(63, 3)); // aux "(N\0" padded
        b.extend(b"(N\0\0");
        b.extend(w(59, 0)); // skip 70000
        b.extend(1u16.to_le_bytes());
        b.extend(4464u16.to_le_bytes());
        b.extend(w(5, 2)); // V at 10 + 70000 + 2
        b.extend(w(61, 0xff)); // subtype -1
        b.extend(w(0, 0));
        let f = parse_annotations(&b, Path::new("x.atr")).unwrap();
        let a = &f.annotations;
        assert_eq!(a.len(), 2);
        assert_eq!(
            (a[0].sample, a[0].symbol.as_str(), a[0].chan, a[0].num),
            (10, "N", 1, 5)
        );
        assert_eq!(a[0].aux, b"(N\0");
        assert_eq!((a[1].sample, a[1].symbol.as_str()), (70012, "V"));
        assert_eq!((a[1].chan, a[1].num, a[1].subtype), (1, 5, -1));
        assert!(a[1].aux.is_empty());
    }

    #[test]
    fn truncated_aux_is_an_error() {
        let mut b = Vec::new();
        b.extend(w(1, 10));
        b.extend(w(63, 9));
        b.extend(b"ab");
        assert!(matches!(
            parse_annotations(&b, Path::new("x.atr")),
            Err(WfdbError::Annotation { .. })
        ));
    }
}
