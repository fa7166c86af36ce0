//! `trunkguard retention run [--now TIME]`: one retention purge against the database, as the
//! gateway runs daily (`retention::purge`). Calls in progress have no CDR yet, so nothing of
//! theirs can be touched from here.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::CliError;
use crate::config::RetentionConfig;
use crate::retention::{purge_on, PurgeReport};
use crate::store::Store;

/// One purge as node `node` would run it (`[cluster] node_id` of the config: another node's
/// recordings not in this folder are left to it).
pub async fn run(
    store: &Store,
    recordings_dir: &Path,
    node: Option<&str>,
    retention: &RetentionConfig,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<PurgeReport, CliError> {
    let r = purge_on(store, recordings_dir, node, retention, now, &|_: &str| {
        false
    })
    .await?;
    writeln!(
        out,
        "retention purge at {now} (recordings {} days, CDRs {} days): {} recordings purged \
         ({} files deleted, {} already missing), {} not deleted (see the log), {} CDRs \
         deleted, {} skipped{}",
        retention.recordings_days.min(retention.cdrs_days),
        retention.cdrs_days,
        r.recordings_purged,
        r.files_deleted,
        r.files_missing,
        r.recordings_failed,
        r.cdrs_deleted,
        r.skipped,
        if r.capped {
            "; more left for the next run"
        } else {
            ""
        }
    )
    .map_err(|e| CliError::io("writing the output", e))?;
    Ok(r)
}
