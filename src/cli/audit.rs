//! `trunkguard audit verify`: the audit and enforcement logs' hash chains walked from their
//! first row (`evidence::chain`). Prints one JSON line per log (rows, chained rows, head, every
//! finding); exit status 1 when anything was edited, deleted or put in outside the gateway.

use std::io::Write;

use clap::{Args, ValueEnum};

use super::CliError;
use crate::evidence::chain::verify_chain;
use crate::store::chain::ChainedLog;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogChoice {
    All,
    Audit,
    Enforcement,
}

#[derive(Debug, Clone, Args)]
pub struct AuditVerifyArgs {
    /// Which log: audit, enforcement or all.
    #[arg(long, value_enum, default_value_t = LogChoice::All)]
    pub log: LogChoice,
    /// A head sealed earlier (`head_sha256` of a previous run or a manifest): it must still be a
    /// link of the chain, else rows after it were deleted or the chain rewritten. Only with one
    /// log (--log audit or --log enforcement).
    #[arg(long)]
    pub head: Option<String>,
}

/// Verifies the chosen logs; true when every one is intact.
pub async fn verify(
    store: &Store,
    args: &AuditVerifyArgs,
    out: &mut impl Write,
) -> Result<bool, CliError> {
    let logs: &[ChainedLog] = match args.log {
        LogChoice::All => &ChainedLog::ALL,
        LogChoice::Audit => &[ChainedLog::Audit],
        LogChoice::Enforcement => &[ChainedLog::Enforcement],
    };
    if args.head.is_some() && logs.len() != 1 {
        return Err(CliError::Usage(
            "--head names one log's head: add --log audit or --log enforcement".into(),
        ));
    }
    let mut intact = true;
    for log in logs {
        let report = verify_chain(store, *log, args.head.as_deref()).await?;
        intact &= report.ok();
        serde_json::to_writer(&mut *out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| CliError::io("writing the report", e))?;
    }
    Ok(intact)
}
