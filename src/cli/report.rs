//! `trunkguard report`: the KPIs of a period from the persisted buckets.

use std::io::Write;

use super::{number_arg, time_arg, CliError};
use crate::monitor::report::{kpi_report, render, Bucket, Format, ReportQuery};
use crate::store::Store;

/// The command's arguments, as given.
#[derive(Debug, Clone)]
pub struct ReportArgs {
    pub from: String,
    pub to: String,
    pub trunk: Option<String>,
    pub number: Option<String>,
    pub kind: Option<String>,
    pub bucket: String,
    pub format: String,
}

pub async fn run(store: &Store, args: &ReportArgs, out: &mut impl Write) -> Result<(), CliError> {
    let from = time_arg("from", &args.from)?;
    let to = time_arg("to", &args.to)?;
    if to <= from {
        return Err(CliError::Usage("--to must be after --from".into()));
    }
    if let Some(k) = &args.kind {
        if !["trunk", "caller_id", "callee"].contains(&k.as_str()) {
            return Err(CliError::Usage(format!(
                "--kind `{k}` is not trunk, caller_id or callee"
            )));
        }
    }
    let q = ReportQuery {
        from,
        to,
        trunk: args.trunk.clone(),
        number: args
            .number
            .as_deref()
            .map(|n| number_arg("number", n))
            .transpose()?,
        kind: args.kind.clone(),
        bucket: args.bucket.parse::<Bucket>().map_err(CliError::Usage)?,
    };
    let format = args.format.parse::<Format>().map_err(CliError::Usage)?;
    let rows = kpi_report(store, &q).await?;
    out.write_all(render(&rows, format).as_bytes())
        .map_err(|e| CliError::io("writing the report", e))?;
    Ok(())
}
