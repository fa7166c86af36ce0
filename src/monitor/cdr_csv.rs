//! CDRs as CSV with stable columns (`COLUMNS`): the carrier's export
//! (`GET /api/v1/cdrs/export`) and `trunkguard cdr search --format csv`. Inside-only details
//! (the PBX's address and Call-ID, the From as the PBX wrote it) stay out: a carrier sees its
//! own leg. Times are UTC RFC 3339 with milliseconds; an absent value is an empty cell.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::Cdr;

/// The columns, in order. Add new ones at the end only: consumers read them by position too.
pub const COLUMNS: [&str; 18] = [
    "id",
    "trunk",
    "direction",
    "caller",
    "callee",
    "invite_at",
    "ringing_at",
    "answer_at",
    "end_at",
    "talk_ms",
    "final_status",
    "final_reason",
    "q850_cause",
    "hangup_side",
    "disposition",
    "end_reason",
    "refusal_reason",
    "outside_call_id",
];

/// One CDR's cells, in `COLUMNS` order.
pub fn cells(c: &Cdr) -> [String; 18] {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    [
        c.attempt.id.clone(),
        opt(&c.attempt.trunk),
        c.attempt.direction.as_str().to_string(),
        opt(&c.attempt.caller),
        opt(&c.attempt.callee),
        time(Some(c.attempt.invite_at)),
        time(c.attempt.ringing_at),
        time(c.attempt.answer_at),
        time(Some(c.outcome.end_at)),
        c.outcome.talk_ms.to_string(),
        c.outcome.final_status.to_string(),
        c.outcome.final_reason.clone(),
        c.outcome
            .q850_cause
            .map(|q| q.to_string())
            .unwrap_or_default(),
        c.outcome
            .hangup_side
            .map(|h| h.as_str().to_string())
            .unwrap_or_default(),
        c.outcome.disposition.as_str().to_string(),
        c.outcome.end_reason.as_str().to_string(),
        c.outcome
            .refusal_reason
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        opt(&c.attempt.outside_call_id),
    ]
}

/// `rows` as CSV text, preceded by the header line when `header` (the first chunk of a file).
pub fn to_csv(rows: &[Cdr], header: bool) -> std::io::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 200 + 256));
    if header {
        w.write_record(COLUMNS)?;
    }
    for r in rows {
        w.write_record(cells(r))?;
    }
    w.into_inner().map_err(|e| e.into_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample_cdr;

    #[test]
    fn header_then_one_line_per_cdr_with_quoting() {
        let mut refused = sample_cdr("b");
        refused.outcome.final_reason = "Caller ID, Not Authorized".into();
        refused.attempt.answer_at = None;
        let text = String::from_utf8(to_csv(&[sample_cdr("a"), refused], true).unwrap()).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
        assert_eq!(header, COLUMNS);
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][0], "a");
        assert_eq!(&rows[0][5], "2026-11-27T09:15:30.250Z");
        assert_eq!(&rows[0][17], "a-out");
        assert_eq!(&rows[1][7], "", "no answer time");
        assert_eq!(&rows[1][11], "Caller ID, Not Authorized");
        // No inside-only detail.
        assert!(!text.contains("10.0.0.5"), "{text}");
        // Later chunks carry no header.
        let more = String::from_utf8(to_csv(&[sample_cdr("c")], false).unwrap()).unwrap();
        assert_eq!(more.lines().count(), 1);
        assert!(more.starts_with("c,"));
    }
}
