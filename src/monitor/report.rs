//! KPI reports from the persisted hourly buckets: one row per subject and bucket (hour or UTC
//! day), with the counts and the ratios derived from them, as CSV, JSON or a text table. The
//! columns (`COLUMNS`) are stable: carriers load them into their own tools.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::kpi::{day_start, KpiCounters};
use crate::store::{BucketKey, Store, StoreError, SubjectKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl std::str::FromStr for Bucket {
    type Err = String;
    fn from_str(s: &str) -> Result<Bucket, String> {
        match s {
            "hour" => Ok(Bucket::Hour),
            "day" => Ok(Bucket::Day),
            _ => Err(format!("bucket `{s}` is not `hour` or `day`")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Table,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "table" => Ok(Format::Table),
            _ => Err(format!("format `{s}` is not `csv`, `json` or `table`")),
        }
    }
}

/// Which subjects and which period.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub trunk: Option<String>,
    /// A caller ID or called number (normalized): its caller-ID and callee rows.
    pub number: Option<String>,
    /// `trunk`, `caller_id` or `callee`; none: trunks and caller IDs (and, with `number`, that
    /// number's rows of both kinds).
    pub kind: Option<String>,
    pub bucket: Bucket,
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReportRow {
    pub bucket_start: DateTime<Utc>,
    pub subject: String,
    pub trunk: String,
    pub number: String,
    pub attempts: u64,
    pub offered: u64,
    pub refused_by_gateway: u64,
    pub answered: u64,
    pub busy: u64,
    pub no_answer: u64,
    pub rejected_by_user: u64,
    pub invalid_number: u64,
    pub network_errors: u64,
    pub asr: Option<f64>,
    pub ner: Option<f64>,
    pub acd_secs: Option<f64>,
    pub short_calls: u64,
    pub short_call_ratio: Option<f64>,
    pub over_long: u64,
    pub error_rate: Option<f64>,
    pub network_error_ratio: Option<f64>,
    pub pdd_mean_ms: Option<f64>,
    pub pdd_p95_ms: Option<u64>,
    pub peak_concurrency: u32,
    pub complaints: u64,
    pub complaints_per_1000_answered: Option<f64>,
}

/// The columns, in order (CSV header and table).
pub const COLUMNS: [&str; 26] = [
    "bucket_start",
    "subject",
    "trunk",
    "number",
    "attempts",
    "offered",
    "refused_by_gateway",
    "answered",
    "busy",
    "no_answer",
    "rejected_by_user",
    "invalid_number",
    "network_errors",
    "asr",
    "ner",
    "acd_secs",
    "short_calls",
    "short_call_ratio",
    "over_long",
    "error_rate",
    "network_error_ratio",
    "pdd_mean_ms",
    "pdd_p95_ms",
    "peak_concurrency",
    "complaints",
    "complaints_per_1000_answered",
];

impl ReportRow {
    pub fn new(bucket_start: DateTime<Utc>, subject: &SubjectKey, k: &KpiCounters) -> ReportRow {
        ReportRow {
            bucket_start,
            subject: subject.kind.clone(),
            trunk: subject.trunk.clone(),
            number: subject.number.clone(),
            attempts: k.attempts,
            offered: k.offered(),
            refused_by_gateway: k.refused_by_gateway,
            answered: k.answered,
            busy: k.busy,
            no_answer: k.no_answer,
            rejected_by_user: k.rejected_by_user,
            invalid_number: k.invalid_number,
            network_errors: k.network_errors,
            asr: k.asr(),
            ner: k.ner(),
            acd_secs: k.acd_secs(),
            short_calls: k.short_calls,
            short_call_ratio: k.short_call_ratio(),
            over_long: k.over_long,
            error_rate: k.error_rate(),
            network_error_ratio: k.network_error_ratio(),
            pdd_mean_ms: k.pdd_mean_ms(),
            pdd_p95_ms: k.pdd_p95_ms(),
            peak_concurrency: k.peak_concurrency,
            complaints: k.complaints,
            complaints_per_1000_answered: k.complaints_per_1000_answered(),
        }
    }

    /// The row's values as text, in `COLUMNS` order (ratios with 4 decimals, empty when
    /// undefined: no sample).
    pub fn cells(&self) -> Vec<String> {
        let r = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
        vec![
            self.bucket_start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            self.subject.clone(),
            self.trunk.clone(),
            self.number.clone(),
            self.attempts.to_string(),
            self.offered.to_string(),
            self.refused_by_gateway.to_string(),
            self.answered.to_string(),
            self.busy.to_string(),
            self.no_answer.to_string(),
            self.rejected_by_user.to_string(),
            self.invalid_number.to_string(),
            self.network_errors.to_string(),
            r(self.asr),
            r(self.ner),
            r(self.acd_secs),
            self.short_calls.to_string(),
            r(self.short_call_ratio),
            self.over_long.to_string(),
            r(self.error_rate),
            r(self.network_error_ratio),
            r(self.pdd_mean_ms),
            self.pdd_p95_ms.map(|v| v.to_string()).unwrap_or_default(),
            self.peak_concurrency.to_string(),
            self.complaints.to_string(),
            r(self.complaints_per_1000_answered),
        ]
    }
}

/// The report's rows, ordered by subject kind, trunk, number, then bucket.
pub async fn kpi_report(store: &Store, q: &ReportQuery) -> Result<Vec<ReportRow>, StoreError> {
    let rows: Vec<(BucketKey, KpiCounters)> = store
        .kpi_buckets(
            q.from,
            q.to,
            q.kind.as_deref(),
            q.trunk.as_deref(),
            q.number.as_deref(),
        )
        .await?;
    Ok(aggregate(rows, q))
}

/// Hour rows into the report's buckets, filtered as the query says.
pub fn aggregate(rows: Vec<(BucketKey, KpiCounters)>, q: &ReportQuery) -> Vec<ReportRow> {
    let mut merged: BTreeMap<(SubjectKey, DateTime<Utc>), KpiCounters> = BTreeMap::new();
    for (key, k) in rows {
        let wanted = match (&q.kind, &q.number) {
            (Some(kind), _) => &key.subject.kind == kind,
            (None, Some(_)) => key.subject.kind != "trunk",
            (None, None) => key.subject.kind != "callee",
        };
        if !wanted {
            continue;
        }
        let start = match q.bucket {
            Bucket::Hour => key.hour_start,
            Bucket::Day => day_start(key.hour_start),
        };
        merged.entry((key.subject, start)).or_default().merge(&k);
    }
    merged
        .iter()
        .map(|((subject, start), k)| ReportRow::new(*start, subject, k))
        .collect()
}

/// The rows in the chosen format.
pub fn render(rows: &[ReportRow], format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".to_string()),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut ok = w.write_record(COLUMNS).is_ok();
            for r in rows {
                ok &= w.write_record(r.cells()).is_ok();
            }
            match (ok, w.into_inner()) {
                (true, Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                _ => String::new(),
            }
        }
        Format::Table => table(rows),
    }
}

/// A text table of the most read columns (all of them are in CSV and JSON).
fn table(rows: &[ReportRow]) -> String {
    const SHOWN: [usize; 13] = [0, 1, 2, 3, 4, 7, 13, 15, 19, 20, 22, 23, 24];
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.cells()).collect();
    let widths: Vec<usize> = SHOWN
        .iter()
        .map(|&c| {
            cells
                .iter()
                .map(|r| r[c].len())
                .chain(std::iter::once(COLUMNS[c].len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, values: &[&str]| {
        for (i, v) in values.iter().enumerate() {
            let _ = write!(out, "{:<w$}  ", v, w = widths[i]);
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    };
    let header: Vec<&str> = SHOWN.iter().map(|&c| COLUMNS[c]).collect();
    line(&mut out, &header);
    for r in &cells {
        let v: Vec<&str> = SHOWN.iter().map(|&c| r[c].as_str()).collect();
        line(&mut out, &v);
    }
    if rows.is_empty() {
        out.push_str("(no calls in this period)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key(kind: &str, number: &str, day: u32, hour: u32) -> BucketKey {
        BucketKey {
            subject: SubjectKey {
                kind: kind.into(),
                trunk: "demo".into(),
                number: number.into(),
            },
            hour_start: Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap(),
        }
    }

    fn counters(attempts: u64, answered: u64, invalid: u64, peak: u32) -> KpiCounters {
        KpiCounters {
            attempts,
            answered,
            invalid_number: invalid,
            talk_ms: answered * 30_000,
            peak_concurrency: peak,
            ..KpiCounters::default()
        }
    }

    fn query(bucket: Bucket, kind: Option<&str>, number: Option<&str>) -> ReportQuery {
        ReportQuery {
            from: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
            to: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            trunk: None,
            number: number.map(str::to_string),
            kind: kind.map(str::to_string),
            bucket,
        }
    }

    fn sample() -> Vec<(BucketKey, KpiCounters)> {
        vec![
            (key("trunk", "", 26, 9), counters(10, 4, 2, 3)),
            (key("trunk", "", 26, 10), counters(5, 1, 0, 7)),
            (key("trunk", "", 27, 0), counters(1, 1, 0, 1)),
            (
                key("caller_id", "861012345678", 26, 9),
                counters(10, 4, 2, 2),
            ),
            (key("callee", "8613900000001", 26, 9), counters(2, 0, 2, 0)),
        ]
    }

    #[test]
    fn days_sum_their_hours_and_keep_the_peak() {
        let rows = aggregate(sample(), &query(Bucket::Day, Some("trunk"), None));
        assert_eq!(rows.len(), 2);
        let d26 = &rows[0];
        assert_eq!(d26.bucket_start.to_rfc3339(), "2026-11-26T00:00:00+00:00");
        assert_eq!((d26.attempts, d26.answered, d26.invalid_number), (15, 5, 2));
        assert_eq!(d26.peak_concurrency, 7, "max, not sum");
        assert_eq!(d26.asr, Some(5.0 / 15.0));
        assert_eq!(d26.acd_secs, Some(30.0));
        assert_eq!(rows[1].attempts, 1);
    }

    #[test]
    fn default_subjects_and_number_filter() {
        let rows = aggregate(sample(), &query(Bucket::Hour, None, None));
        let kinds: Vec<&str> = rows.iter().map(|r| r.subject.as_str()).collect();
        assert_eq!(kinds, ["caller_id", "trunk", "trunk", "trunk"]);
        let rows = aggregate(sample(), &query(Bucket::Hour, None, Some("8613900000001")));
        // The store filters by number; here both number kinds pass, trunks do not.
        assert!(rows.iter().all(|r| r.subject != "trunk"));
    }

    #[test]
    fn csv_has_the_stable_header_and_one_line_per_row() {
        let rows = aggregate(sample(), &query(Bucket::Hour, Some("trunk"), None));
        let csv = render(&rows, Format::Csv);
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(COLUMNS.join(",").as_str()));
        let first: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(first[0], "2026-11-26T09:00:00Z");
        assert_eq!(first[4], "10");
        assert_eq!(first[13], "0.4000", "asr");
        assert_eq!(csv.lines().count(), 1 + rows.len());
        let json: serde_json::Value = serde_json::from_str(&render(&rows, Format::Json)).unwrap();
        assert_eq!(json.as_array().unwrap().len(), rows.len());
        let table = render(&rows, Format::Table);
        assert!(table.starts_with("bucket_start"), "{table}");
        assert_eq!(table.lines().count(), 1 + rows.len());
    }
}
