//! Reading complaints from a CSV file, as carriers and regulators hand them over.
//!
//! The file has a header row naming at least these columns, in any order (extra columns are
//! ignored, names are case-insensitive):
//!
//! | column | what |
//! |---|---|
//! | `complainant` | the number of the person who complained (the called party) |
//! | `caller_id` | the number complained about (our caller ID); `complained_about` is accepted too |
//! | `time` | when: RFC 3339 (`2026-11-27T09:30:00+08:00`), or `YYYY-MM-DD HH:MM[:SS]` / `YYYY-MM-DD` in UTC |
//! | `category` | `harassment`, `fraud`, `false_information` or `other` |
//! | `source` | `carrier`, `regulator` or `internal` |
//! | `text` | free text (optional column) |
//!
//! The whole file is checked before anything is stored: one bad row stops the import and every
//! bad row is reported with its line number, so a file is either imported whole or not at all.

use std::io::Read;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::model::normalize_number;

/// Complaint categories, as stored.
pub const CATEGORIES: [&str; 4] = ["harassment", "fraud", "false_information", "other"];
/// Who filed a complaint, as stored.
pub const SOURCES: [&str; 3] = ["carrier", "regulator", "internal"];

/// Rows past this are refused: an import is a file a person handed over, not a stream.
pub const MAX_ROWS: usize = 100_000;
/// Free text is cut to this many characters.
const MAX_TEXT_CHARS: usize = 2_000;

/// One complaint read from the file (numbers normalized).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintRow {
    /// The file's line the row starts on.
    pub line: u64,
    pub complainant: String,
    pub caller_id: String,
    pub time: DateTime<Utc>,
    pub category: String,
    pub source: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ComplaintCsvError {
    #[error("the file is not readable CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("the header has no `{0}` column")]
    MissingColumn(&'static str),
    #[error("more than {MAX_ROWS} rows")]
    TooManyRows,
    #[error("{} bad row(s):\n{}", .0.len(), .0.join("\n"))]
    BadRows(Vec<String>),
}

/// Reads and checks every row. On any bad row, returns all the problems and no rows.
pub fn read_complaints(input: impl Read) -> Result<Vec<ComplaintRow>, ComplaintCsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let headers = reader.headers()?.clone();
    let find = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
    };
    let col = |name: &'static str, aliases: &[&str]| {
        let mut names = vec![name];
        names.extend_from_slice(aliases);
        find(&names).ok_or(ComplaintCsvError::MissingColumn(name))
    };
    let complainant = col("complainant", &[])?;
    let caller_id = col("caller_id", &["complained_about"])?;
    let time = col("time", &[])?;
    let category = col("category", &[])?;
    let source = col("source", &[])?;
    let text = find(&["text"]);

    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        let record = record?;
        if rows.len() + problems.len() >= MAX_ROWS {
            return Err(ComplaintCsvError::TooManyRows);
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: usize| record.get(i).unwrap_or("");
        let mut bad = Vec::new();
        let number = |i: usize, what: &str, bad: &mut Vec<String>| {
            let raw = field(i);
            normalize_number(raw).unwrap_or_else(|| {
                bad.push(format!("{what} `{raw}` is not a phone number"));
                String::new()
            })
        };
        let row_complainant = number(complainant, "complainant", &mut bad);
        let row_caller = number(caller_id, "caller_id", &mut bad);
        let row_time = parse_time(field(time)).unwrap_or_else(|| {
            bad.push(format!(
                "time `{}` is not RFC 3339, `YYYY-MM-DD HH:MM[:SS]` or `YYYY-MM-DD`",
                field(time)
            ));
            DateTime::<Utc>::MIN_UTC
        });
        let code = |i: usize, what: &str, allowed: &[&str], bad: &mut Vec<String>| {
            let v = field(i).to_ascii_lowercase();
            if !allowed.contains(&v.as_str()) {
                bad.push(format!(
                    "{what} `{}` is not one of {}",
                    field(i),
                    allowed.join(", ")
                ));
            }
            v
        };
        let row_category = code(category, "category", &CATEGORIES, &mut bad);
        let row_source = code(source, "source", &SOURCES, &mut bad);
        if bad.is_empty() {
            rows.push(ComplaintRow {
                line,
                complainant: row_complainant,
                caller_id: row_caller,
                time: row_time,
                category: row_category,
                source: row_source,
                text: text
                    .map(|i| field(i).chars().take(MAX_TEXT_CHARS).collect())
                    .unwrap_or_default(),
            });
        } else {
            problems.push(format!("line {line}: {}", bad.join("; ")));
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(ComplaintCsvError::BadRows(problems))
    }
}

/// RFC 3339, or a naive date-time / date taken as UTC.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_carrier_file() {
        let csv = "Complainant,Complained_About,Time,Category,Source,Text,Ticket\n\
                   +86 139 0000 0001,tel:+861012345678,2026-11-27T09:30:00+08:00,Harassment,carrier,\"called twice, rude\",T1\n\
                   8613900000002,861012345678,2026-11-26 10:00,fraud,regulator,,T2\n";
        let rows = read_complaints(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].complainant, "8613900000001");
        assert_eq!(rows[0].caller_id, "861012345678");
        assert_eq!(rows[0].time.to_rfc3339(), "2026-11-27T01:30:00+00:00");
        assert_eq!(rows[0].category, "harassment");
        assert_eq!(rows[0].text, "called twice, rude");
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[1].time.to_rfc3339(), "2026-11-26T10:00:00+00:00");
        assert_eq!(rows[1].source, "regulator");
    }

    #[test]
    fn every_bad_row_is_reported_and_nothing_is_returned() {
        let csv = "complainant,caller_id,time,category,source\n\
                   8613900000001,861012345678,2026-11-27,other,internal\n\
                   abc,861012345678,yesterday,spam,carrier\n\
                   8613900000001,861012345678,2026-11-27,fraud,police\n";
        let err = read_complaints(csv.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("2 bad row(s)"), "{err}");
        assert!(err.contains("line 3: complainant `abc`"), "{err}");
        assert!(err.contains("time `yesterday`"), "{err}");
        assert!(err.contains("category `spam`"), "{err}");
        assert!(err.contains("line 4: source `police`"), "{err}");
    }

    #[test]
    fn a_missing_column_is_named() {
        let err = read_complaints("complainant,caller_id,time,source\n".as_bytes()).unwrap_err();
        assert!(matches!(err, ComplaintCsvError::MissingColumn("category")));
    }
}
