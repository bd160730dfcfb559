//! What `physio info x.edf --json` prints: wfdb-python's `Record` attribute names where
//! they apply to an EDF file (the contract's keys), plus an `edf` object holding every
//! header field as written, so nothing of the header is lost or reinterpreted.

use serde_json::{Map, Value, json};

use super::EdfReader;
use super::header::EdfSignal;

/// Splits an EDF+ identification field into its space-separated subfields (EDF+ spec
/// 2.1.3: `X` means unknown, `_` stands for a space within a subfield).
fn subfields(field: &str, names: &[&str]) -> Value {
    let mut parts = field.split(' ').filter(|p| !p.is_empty());
    let mut m = Map::new();
    for name in names {
        let v = match parts.next() {
            None | Some("X") => Value::Null,
            Some(p) => json!(p.replace('_', " ")),
        };
        m.insert((*name).into(), v);
    }
    let rest: Vec<&str> = parts.collect();
    m.insert("additional".into(), json!(rest.join(" ")));
    Value::Object(m)
}

fn signal_json(s: &EdfSignal) -> Value {
    json!({
        "label": s.label,
        "transducer": s.transducer,
        "physical_dimension": s.physical_dimension,
        "physical_min": s.physical_min,
        "physical_max": s.physical_max,
        "digital_min": s.digital_min,
        "digital_max": s.digital_max,
        "prefiltering": s.prefiltering,
        "samples_per_record": s.samples_per_record,
        "reserved": s.reserved,
    })
}

impl EdfReader {
    /// The header as one JSON object: wfdb-python's attribute names for what an EDF
    /// record has (`record_name` is the file name without `.edf`; `sig_name`, `units`,
    /// `samps_per_frame`, `adc_gain` and `baseline` list the channels, `EDF
    /// Annotations` signals excluded; `adc_gain` is digital units per physical unit and
    /// `baseline` the digital value of physical zero, both exact, not rounded to
    /// integers; `fmt` is `16`, EDF's little-endian 16-bit samples), then `edf` with
    /// every header field as written, the EDF+ patient and recording subfields, and the
    /// sub-second start (`start_offset`).
    pub fn wfdb_python_fields(&self) -> Value {
        let h = self.header();
        let chans: Vec<&EdfSignal> = self.channels().iter().map(|&i| &h.signals[i]).collect();
        let file_name = self
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let record_name = self
            .path()
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut base_time = h.base_time;
        if let Some(t) = base_time.as_mut() {
            let off = self.start_offset();
            if (0.0..1.0).contains(&off) {
                t.microsecond = (off * 1e6).round().min(999_999.0) as u32;
            }
        }
        let scales = self.scales();
        let mut m = Map::new();
        m.insert("record_name".into(), json!(record_name));
        m.insert("n_sig".into(), json!(chans.len()));
        m.insert("fs".into(), json!(self.fs()));
        m.insert("counter_freq".into(), Value::Null);
        m.insert("base_counter".into(), Value::Null);
        m.insert("sig_len".into(), json!(self.n_frames()));
        m.insert("base_time".into(), json!(base_time.map(|t| t.to_string())));
        m.insert(
            "base_date".into(),
            json!(h.base_date.map(|d| d.to_string())),
        );
        m.insert("comments".into(), json!(Vec::<String>::new()));
        m.insert(
            "sig_name".into(),
            json!(chans.iter().map(|s| &s.label).collect::<Vec<_>>()),
        );
        m.insert("file_name".into(), json!(vec![file_name; chans.len()]));
        m.insert("fmt".into(), json!(vec!["16"; chans.len()]));
        m.insert("samps_per_frame".into(), json!(self.samps_per_frame()));
        m.insert(
            "adc_gain".into(),
            json!(scales.iter().map(|(g, _)| 1.0 / g).collect::<Vec<_>>()),
        );
        m.insert(
            "baseline".into(),
            json!(scales.iter().map(|(g, o)| -o / g).collect::<Vec<_>>()),
        );
        m.insert(
            "units".into(),
            json!(
                chans
                    .iter()
                    .map(|s| &s.physical_dimension)
                    .collect::<Vec<_>>()
            ),
        );
        let plus = h.variant.is_plus();
        m.insert(
            "edf".into(),
            json!({
                "version": h.version,
                "variant": h.variant,
                "patient_id": h.patient_id,
                "recording_id": h.recording_id,
                "patient": if plus {
                    subfields(&h.patient_id, &["code", "sex", "birthdate", "name"])
                } else { Value::Null },
                "recording": if plus {
                    let r = h.recording_id.strip_prefix("Startdate ").unwrap_or(&h.recording_id);
                    subfields(r, &["startdate", "admin_code", "technician", "equipment"])
                } else { Value::Null },
                "start_date": h.start_date,
                "start_time": h.start_time,
                "start_offset": self.start_offset(),
                "header_bytes": h.header_bytes,
                "reserved": h.reserved,
                "n_records": h.n_records_declared,
                "n_records_in_file": h.n_records,
                "record_duration": h.record_duration,
                "frames_per_record": self.frames_per_record(),
                "n_signals": h.signals.len(),
                "signals": h.signals.iter().map(signal_json).collect::<Vec<_>>(),
            }),
        );
        Value::Object(m)
    }
}
