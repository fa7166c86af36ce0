//! `trunkguard report`: the KPIs of a period from the persisted buckets.

use std::io::Write;

use clap::Args;

use super::args::Period;
use super::values::{number_value, OutputFormat};
use super::CliError;
use crate::model::SubjectKind;
use crate::monitor::report::{kpi_report, render, Bucket, ReportQuery};
use crate::store::Store;

/// The command's arguments.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub period: Period,
    #[arg(long)]
    pub trunk: Option<String>,
    /// A caller ID or called number: its rows.
    #[arg(long, value_parser = number_value)]
    pub number: Option<String>,
    /// Only this kind of subject: trunk, caller_id or callee.
    #[arg(long, hide_possible_values = true)]
    pub kind: Option<SubjectKind>,
    /// hour or day (UTC days).
    #[arg(long, default_value = "hour", hide_possible_values = true)]
    pub bucket: Bucket,
    /// csv, json or table.
    #[arg(long, default_value = "table", hide_possible_values = true)]
    pub format: OutputFormat,
}

pub async fn run(store: &Store, args: &ReportArgs, out: &mut impl Write) -> Result<(), CliError> {
    let Period { from, to } = args.period;
    if to <= from {
        return Err(CliError::Usage("--to must be after --from".into()));
    }
    let q = ReportQuery {
        from,
        to,
        trunk: args.trunk.clone(),
        number: args.number.clone(),
        kind: args.kind.map(|k| k.as_str().to_string()),
        bucket: args.bucket,
    };
    let rows = kpi_report(store, &q).await?;
    out.write_all(render(&rows, args.format.into()).as_bytes())
        .map_err(|e| CliError::io("writing the report", e))?;
    Ok(())
}
