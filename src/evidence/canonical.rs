//! The canonical JSON of what a manifest seals (issue 17), so that the same facts always hash to
//! the same bytes, on either backend, after `migrate-sqlite`, and on an auditor's machine:
//!
//! - objects with their keys sorted by their UTF-8 bytes, no whitespace anywhere;
//! - strings as serde_json writes them (only `"`, `\` and control characters escaped; other
//!   characters as they are, UTF-8);
//! - integers in decimal, `true`/`false`/`null`; no floating-point numbers in sealed content;
//! - times as UTC text with milliseconds, `YYYY-MM-DDTHH:MM:SS.mmmZ` (the store keeps
//!   milliseconds, so nothing is lost).
//!
//! A CDR's canonical form (`cdr/1`) is its row of `cdrs`: the call's attempt and outcome, the
//! fields named below, nothing else (media legs, DTMF and the recording are sealed as their own
//! entries or not at all). A field added to the CDR later gets a `cdr/2`, never a changed
//! `cdr/1`, so that manifests sealed before still verify.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::model::{ms_precision, Attempt, Outcome};

/// A CDR's row as the API writes it (`CdrView`, an evidence package's `cdr.json`): one flat
/// object, read back by whoever checks a package.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CdrRow {
    #[serde(flatten)]
    pub attempt: Attempt,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A time as sealed content writes it.
pub fn time(t: DateTime<Utc>) -> String {
    ms_precision(t).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `value` as canonical JSON text.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(v, out);
            }
            out.push(']');
        }
        // Scalars: serde_json's own text is already canonical for them.
        other => out.push_str(&other.to_string()),
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A code as serde writes it (the enums of the CDR serialize as their stored text).
fn code<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A CDR's canonical JSON (`cdr/1`).
pub fn cdr_content(a: &Attempt, o: &Outcome) -> String {
    to_string(&json!({
        "format": "cdr/1",
        "id": a.id,
        "inside_call_id": a.inside_call_id,
        "outside_call_id": a.outside_call_id,
        "trunk": a.trunk,
        "direction": code(&a.direction),
        "source": a.source,
        "caller": a.caller,
        "callee": a.callee,
        "presented_from": a.presented_from,
        "pai": a.pai,
        "invite_at": time(a.invite_at),
        "ringing_at": a.ringing_at.map(time),
        "answer_at": a.answer_at.map(time),
        "trunk_active": a.trunk_active,
        "caller_active": a.caller_active,
        "node": a.node,
        "end_at": time(o.end_at),
        "talk_ms": o.talk_ms,
        "final_status": o.final_status,
        "final_reason": o.final_reason,
        "q850_cause": o.q850_cause,
        "hangup_side": code(&o.hangup_side),
        "disposition": code(&o.disposition),
        "end_reason": code(&o.end_reason),
        "refusal_reason": code(&o.refusal_reason),
    }))
}

/// The SHA-256 of a CDR's canonical JSON: what a manifest seals for it.
pub fn cdr_sha256(a: &Attempt, o: &Outcome) -> String {
    sha256_hex(cdr_content(a, o).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample_cdr;

    #[test]
    fn keys_are_sorted_and_nothing_is_spaced() {
        let v = json!({"b": [1, {"z": null, "a": "x\"y"}], "a": true, "é": "ü", "B": 2});
        assert_eq!(
            to_string(&v),
            r#"{"B":2,"a":true,"b":[1,{"a":"x\"y","z":null}],"é":"ü"}"#
        );
        // The same facts, parsed back from any layout, give the same bytes.
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        assert_eq!(
            to_string(&serde_json::from_str(&pretty).unwrap()),
            to_string(&v)
        );
    }

    #[test]
    fn a_cdrs_canonical_form_is_its_row_and_changes_with_any_field() {
        let c = sample_cdr("C1");
        let text = cdr_content(&c.attempt, &c.outcome);
        assert!(
            text.starts_with(r#"{"answer_at":"2026-11-27T09:15:37.254Z","callee":"#),
            "{text}"
        );
        assert!(text.contains(r#""direction":"outbound""#), "{text}");
        assert!(text.contains(r#""talk_ms":95999"#), "{text}");
        let mut edited = c.clone();
        edited.outcome.talk_ms += 1;
        assert_ne!(
            cdr_sha256(&c.attempt, &c.outcome),
            cdr_sha256(&edited.attempt, &edited.outcome)
        );
        // Media, recording and DTMF are not part of it.
        let mut other = c.clone();
        other.media.clear();
        other.recording = None;
        assert_eq!(
            cdr_sha256(&c.attempt, &c.outcome),
            cdr_sha256(&other.attempt, &other.outcome)
        );
        // As the API writes it (cdr.json of an evidence package) and reads back: the same.
        let row = CdrRow {
            attempt: c.attempt.clone(),
            outcome: c.outcome.clone(),
        };
        let json = serde_json::to_string_pretty(&row).unwrap();
        let back: CdrRow = serde_json::from_str(&json).unwrap();
        assert_eq!(cdr_content(&back.attempt, &back.outcome), text);
    }
}
