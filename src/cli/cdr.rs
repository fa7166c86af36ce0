//! `trunkguard cdr search`: the API's CDR search from a shell, reading the database directly.
//! Output: a text table (the most read columns), JSON lines (whole CDRs) or CSV (the export's
//! columns, `monitor::cdr_csv`). JSON and CSV are written page by page, so a large `--limit`
//! does not gather everything in memory first.

use std::fmt::Write as _;
use std::io::Write;

use super::{number_arg, time_arg, CliError};
use crate::model::{Cdr, Disposition};
use crate::monitor::cdr_csv;
use crate::store::{CdrQuery, CdrSearchKey, Store};

/// Rows read from the database at a time.
const PAGE_ROWS: u64 = 1000;

/// The command's arguments, as given.
#[derive(Debug, Clone, Default)]
pub struct SearchArgs {
    pub number: Option<String>,
    pub trunk: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub disposition: Option<String>,
    pub reason: Option<String>,
    pub anomaly: Option<String>,
    /// At most this many CDRs.
    pub limit: u64,
    /// `table`, `json` or `csv`.
    pub format: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Table,
    Json,
    Csv,
}

/// The arguments as a store query (its `limit` is set per page).
fn query(args: &SearchArgs) -> Result<(CdrQuery, Output), CliError> {
    let usage = |m: String| CliError::Usage(m);
    let output = match args.format.as_str() {
        "table" => Output::Table,
        "json" => Output::Json,
        "csv" => Output::Csv,
        other => {
            return Err(usage(format!(
                "--format `{other}` is not table, json or csv"
            )))
        }
    };
    if args.limit == 0 {
        return Err(usage("--limit must be at least 1".into()));
    }
    let mut q = CdrQuery {
        number: args
            .number
            .as_deref()
            .map(|n| number_arg("number", n))
            .transpose()?,
        trunks: args.trunk.clone().map(|t| vec![t]),
        from: args
            .from
            .as_deref()
            .map(|t| time_arg("from", t))
            .transpose()?,
        to: args.to.as_deref().map(|t| time_arg("to", t)).transpose()?,
        ..CdrQuery::default()
    };
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if to <= from {
            return Err(usage("--to must be after --from".into()));
        }
    }
    if let Some(d) = &args.disposition {
        let d: Disposition = d.parse().map_err(|_| {
            usage(format!(
                "--disposition `{d}` is not answered, busy, no_answer, cancelled, rejected, \
                 failed or refused"
            ))
        })?;
        q.disposition = Some(d.as_str().to_string());
    }
    if let Some(r) = &args.reason {
        if !CdrQuery::is_reason_code(r) {
            return Err(usage(format!(
                "--reason `{r}` is not a reason code (e.g. number_blocked, busy)"
            )));
        }
        q.reason = Some(r.clone());
    }
    if let Some(a) = &args.anomaly {
        if !CdrQuery::is_anomaly_id(a) {
            return Err(usage(format!("--anomaly `{a}` is not an anomaly id")));
        }
        q.anomaly = Some(a.clone());
    }
    Ok((q, output))
}

pub async fn search(
    store: &Store,
    args: &SearchArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let (mut q, output) = query(args)?;
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
            Output::Csv => out.write_all(&cdr_csv::to_csv(&rows, first).map_err(io)?),
            Output::Json => rows.iter().try_for_each(|c| {
                serde_json::to_writer(&mut *out, c)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
            }),
            Output::Table => {
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
    if output == Output::Table {
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

    fn args(format: &str, limit: u64) -> SearchArgs {
        SearchArgs {
            limit,
            format: format.into(),
            ..SearchArgs::default()
        }
    }

    #[tokio::test]
    async fn filters_limit_and_formats() {
        let store = store_with(2 * PAGE_ROWS as usize + 10).await;
        // CSV across pages: one header, every row, in order.
        let csv = run(&store, args("csv", 100_000)).await;
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        let ids: Vec<String> = r.records().map(|r| r.unwrap()[0].to_string()).collect();
        assert_eq!(ids.len(), 2 * PAGE_ROWS as usize + 10);
        assert_eq!(ids[0], "c0000");
        assert_eq!(csv.matches("invite_at").count(), 1);
        // The limit cuts across a page boundary.
        let csv = run(&store, args("csv", PAGE_ROWS + 5)).await;
        assert_eq!(csv.lines().count(), PAGE_ROWS as usize + 5 + 1);
        // Filters: the reason, the trunk, both.
        let mut a = args("json", 100_000);
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
        let mut a = args("table", 3);
        a.disposition = Some("refused".into());
        let table = run(&store, a).await;
        assert_eq!(table.lines().count(), 4, "{table}");
        assert!(table.lines().nth(1).unwrap().contains("number_blocked"));
        let mut a = args("table", 3);
        a.from = Some("2000-01-01".into());
        a.to = Some("2000-01-02".into());
        assert!(run(&store, a).await.contains("(no CDRs match)"));
    }

    #[tokio::test]
    async fn bad_arguments_are_usage_errors() {
        let store = store_with(1).await;
        let mut bad = Vec::new();
        for (f, v) in [
            ("format", "xml"),
            ("limit", "0"),
            ("number", "abc"),
            ("from", "yesterday"),
            ("disposition", "maybe"),
            ("reason", "Number Blocked"),
            ("anomaly", "x"),
        ] {
            let mut a = args("table", 10);
            match f {
                "format" => a.format = v.into(),
                "limit" => a.limit = 0,
                "number" => a.number = Some(v.into()),
                "from" => a.from = Some(v.into()),
                "disposition" => a.disposition = Some(v.into()),
                "reason" => a.reason = Some(v.into()),
                _ => a.anomaly = Some(v.into()),
            }
            match search(&store, &a, &mut bad).await {
                Err(CliError::Usage(m)) => assert!(m.contains(&format!("--{f}")), "{m}"),
                other => panic!("{f}={v}: {other:?}"),
            }
        }
        assert!(bad.is_empty(), "nothing written before the error");
    }
}
