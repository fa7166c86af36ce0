//! `trunkguard cdr search`: the API's CDR search from a shell, reading the database directly.
//! Output: a text table (the most read columns), JSON lines (whole CDRs) or CSV (the export's
//! columns, `monitor::cdr_csv`). JSON and CSV are written page by page, so a large `--limit`
//! does not gather everything in memory first.

use std::fmt::Write as _;
use std::io::Write;

use chrono::{DateTime, Utc};
use clap::Args;

use super::values::{
    anomaly_value, disposition_value, limit_value, number_value, reason_value, time_value,
    OutputFormat,
};
use super::CliError;
use crate::model::{Cdr, Disposition};
use crate::monitor::cdr_csv;
use crate::store::{CdrQuery, CdrSearchKey, Store};

/// Rows read from the database at a time.
const PAGE_ROWS: u64 = 1000;

/// The command's arguments: every filter given must match.
#[derive(Debug, Clone, Default, Args)]
pub struct SearchArgs {
    /// A caller or callee number.
    #[arg(long, value_parser = number_value)]
    pub number: Option<String>,
    #[arg(long)]
    pub trunk: Option<String>,
    /// INVITE time at or after: RFC 3339 or YYYY-MM-DD (UTC).
    #[arg(long, value_parser = time_value)]
    pub from: Option<DateTime<Utc>>,
    /// INVITE time before: RFC 3339 or YYYY-MM-DD (UTC).
    #[arg(long, value_parser = time_value)]
    pub to: Option<DateTime<Utc>>,
    /// answered, busy, no_answer, cancelled, rejected, failed or refused.
    #[arg(long, value_parser = disposition_value)]
    pub disposition: Option<Disposition>,
    /// A refusal or end reason code (number_blocked, caller_id_not_authorized, busy…).
    #[arg(long, value_parser = reason_value)]
    pub reason: Option<String>,
    /// An anomaly's id: the calls it names.
    #[arg(long, value_parser = anomaly_value)]
    pub anomaly: Option<String>,
    /// At most this many CDRs.
    #[arg(long, default_value_t = 100, value_parser = limit_value)]
    pub limit: u64,
    /// table, json (JSON lines) or csv (the export's columns).
    #[arg(long, default_value = "table", hide_possible_values = true)]
    pub format: OutputFormat,
}

/// The arguments as a store query (its `limit` is set per page).
fn query(args: &SearchArgs) -> Result<CdrQuery, CliError> {
    if let (Some(from), Some(to)) = (args.from, args.to) {
        if to <= from {
            return Err(CliError::Usage("--to must be after --from".into()));
        }
    }
    Ok(CdrQuery {
        number: args.number.clone(),
        trunks: args.trunk.clone().map(|t| vec![t]),
        from: args.from,
        to: args.to,
        disposition: args.disposition.map(|d| d.as_str().to_string()),
        reason: args.reason.clone(),
        anomaly: args.anomaly.clone(),
        ..CdrQuery::default()
    })
}

pub async fn search(
    store: &Store,
    args: &SearchArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let mut q = query(args)?;
    let output = args.format;
    let io = |e| CliError::io("writing the CDRs", e);
    let mut left = args.limit;
    let mut table_rows: Vec<Cdr> = Vec::new();
    let mut first = true;
    while left > 0 {
        let page = left.min(PAGE_ROWS);
        q.limit = page as u32;
        let rows = store.search_cdrs(&q).await?;
        left -= rows.len() as u64;
        match output {
            OutputFormat::Csv => out.write_all(&cdr_csv::to_csv(&rows, first).map_err(io)?),
            OutputFormat::Json => rows.iter().try_for_each(|c| {
                serde_json::to_writer(&mut *out, c)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
            }),
            OutputFormat::Table => {
                table_rows.extend(rows.iter().cloned());
                Ok(())
            }
        }
        .map_err(io)?;
        first = false;
        match rows.last() {
            Some(last) if rows.len() as u64 == page => {
                q.after = Some(CdrSearchKey {
                    invite_at: last.attempt.invite_at,
                    id: last.attempt.id.clone(),
                })
            }
            _ => break,
        }
    }
    if output == OutputFormat::Table {
        out.write_all(table(&table_rows).as_bytes()).map_err(io)?;
    }
    Ok(())
}

/// A text table of the most read columns (all of them are in CSV and JSON).
fn table(rows: &[Cdr]) -> String {
    const HEADER: [&str; 9] = [
        "invite_at",
        "id",
        "trunk",
        "caller",
        "callee",
        "disposition",
        "status",
        "reason",
        "talk_s",
    ];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|c| {
            [
                c.attempt.invite_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                c.attempt.id.clone(),
                c.attempt.trunk.clone().unwrap_or_default(),
                c.attempt.caller.clone().unwrap_or_default(),
                c.attempt.callee.clone().unwrap_or_default(),
                c.outcome.disposition.as_str().to_string(),
                c.outcome.final_status.to_string(),
                c.outcome
                    .refusal_reason
                    .map_or(c.outcome.end_reason.as_str(), |r| r.as_str())
                    .to_string(),
                format!("{:.1}", c.outcome.talk_ms as f64 / 1000.0),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain(std::iter::once(HEADER[i].len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, values: &[&str]| {
        for (v, w) in values.iter().zip(&widths) {
            let _ = write!(out, "{v:<w$}  ");
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    };
    line(&mut out, &HEADER);
    for r in &cells {
        let v: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&mut out, &v);
    }
    if rows.is_empty() {
        out.push_str("(no CDRs match)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{sample_cdr, EndReason, RefusalReason};

    async fn store_with(n: usize) -> Store {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let cdrs: Vec<Cdr> = (0..n)
            .map(|i| {
                let mut c = sample_cdr(&format!("c{i:04}"));
                c.attempt.invite_at += chrono::Duration::seconds(i as i64);
                if i % 2 == 1 {
                    c.outcome.disposition = Disposition::Refused;
                    c.outcome.refusal_reason = Some(RefusalReason::NumberBlocked);
                    c.outcome.end_reason = EndReason::Refused;
                    c.attempt.trunk = Some("other".into());
                }
                c
            })
            .collect();
        store.insert_cdrs(&cdrs).await.unwrap();
        store
    }

    async fn run(store: &Store, args: SearchArgs) -> String {
        let mut out = Vec::new();
        search(store, &args, &mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    fn args(format: OutputFormat, limit: u64) -> SearchArgs {
        SearchArgs {
            limit,
            format,
            ..SearchArgs::default()
        }
    }

    fn day(s: &str) -> Option<DateTime<Utc>> {
        Some(crate::cli::values::time_value(s).unwrap())
    }

    #[tokio::test]
    async fn filters_limit_and_formats() {
        let store = store_with(2 * PAGE_ROWS as usize + 10).await;
        // CSV across pages: one header, every row, in order.
        let csv = run(&store, args(OutputFormat::Csv, 100_000)).await;
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        let ids: Vec<String> = r.records().map(|r| r.unwrap()[0].to_string()).collect();
        assert_eq!(ids.len(), 2 * PAGE_ROWS as usize + 10);
        assert_eq!(ids[0], "c0000");
        assert_eq!(csv.matches("invite_at").count(), 1);
        // The limit cuts across a page boundary.
        let csv = run(&store, args(OutputFormat::Csv, PAGE_ROWS + 5)).await;
        assert_eq!(csv.lines().count(), PAGE_ROWS as usize + 5 + 1);
        // Filters: the reason, the trunk, both.
        let mut a = args(OutputFormat::Json, 100_000);
        a.reason = Some("number_blocked".into());
        a.trunk = Some("other".into());
        let json = run(&store, a.clone()).await;
        assert_eq!(json.lines().count(), PAGE_ROWS as usize + 5);
        for line in json.lines() {
            let c: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(c["refusal_reason"], "number_blocked");
        }
        a.trunk = Some("demo".into());
        assert!(run(&store, a).await.is_empty());
        // The table: a header, the rows, a note when there are none.
        let mut a = args(OutputFormat::Table, 3);
        a.disposition = Some(Disposition::Refused);
        let table = run(&store, a).await;
        assert_eq!(table.lines().count(), 4, "{table}");
        assert!(table.lines().nth(1).unwrap().contains("number_blocked"));
        let mut a = args(OutputFormat::Table, 3);
        a.from = day("2000-01-01");
        a.to = day("2000-01-02");
        assert!(run(&store, a).await.contains("(no CDRs match)"));
    }

    /// The values are checked by clap (`cli::args`); what is left is a period the wrong way round.
    #[tokio::test]
    async fn a_period_the_wrong_way_round_is_a_usage_error() {
        let store = store_with(1).await;
        let mut a = args(OutputFormat::Table, 10);
        a.from = day("2026-11-28");
        a.to = day("2026-11-27");
        let mut out = Vec::new();
        match search(&store, &a, &mut out).await {
            Err(CliError::Usage(m)) => assert!(m.contains("--to"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(out.is_empty(), "nothing written before the error");
    }
}
