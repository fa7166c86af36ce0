//! One retention purge at a given `now`: expired recordings' files, then expired CDRs, in
//! batches (a short transaction each), skipping calls on hold and calls still running. File
//! deletion runs off the async runtime and never outside the recordings folder.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use crate::config::RetentionConfig;
use crate::recording::locate::{deletable, LocateError};
use crate::store::{PurgedRecording, RetentionCursor, Store, StoreError};

/// Rows read and written per transaction.
pub const BATCH: u32 = 200;
/// Batches of each kind per run (a run stops there; the next one goes on).
pub const MAX_BATCHES: u32 = 5_000;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Recordings whose files were deleted (or found gone) and marked purged.
    pub recordings_purged: u64,
    /// Files deleted (a recording may have a WAV and a pcap).
    pub files_deleted: u64,
    /// Files that were already missing (the recording is marked purged all the same).
    pub files_missing: u64,
    /// Recordings kept because a file could not be deleted or lies outside the recordings
    /// folder (logged at error level; tried again next run).
    pub recordings_failed: u64,
    /// CDRs deleted.
    pub cdrs_deleted: u64,
    /// SIP traces deleted (with the recordings' retention; calls on hold keep theirs).
    pub sip_traces_deleted: u64,
    /// Calls skipped because they are still running, or were put on hold during the run.
    pub skipped: u64,
    /// The run stopped at `MAX_BATCHES`: more is left for the next one.
    pub capped: bool,
}

/// Purges what has expired at `now`. `is_running` tells a call still in progress (its
/// recording is never touched). Stops at the first database error (what was done stays done).
pub async fn purge(
    store: &Store,
    recordings_dir: &Path,
    retention: &RetentionConfig,
    now: DateTime<Utc>,
    is_running: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Result<PurgeReport, StoreError> {
    purge_on(store, recordings_dir, None, retention, now, is_running).await
}

/// `purge` on cluster node `node` (`[cluster] node_id`): a recording another node made whose
/// files this node cannot see (a recordings folder that is not shared) is left for that node
/// to purge, not marked purged with its files still on the other node's disk (skipped; its
/// CDR stays until then too). In a shared folder every node purges every recording.
pub async fn purge_on(
    store: &Store,
    recordings_dir: &Path,
    node: Option<&str>,
    retention: &RetentionConfig,
    now: DateTime<Utc>,
    is_running: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Result<PurgeReport, StoreError> {
    let mut report = PurgeReport::default();
    // A recording never outlives its CDR.
    let recording_days = retention.recordings_days.min(retention.cdrs_days);
    let recordings_cutoff = now - Duration::days(i64::from(recording_days));
    let cdrs_cutoff = now - Duration::days(i64::from(retention.cdrs_days));

    let mut cursor = RetentionCursor::default();
    let mut batches = 0;
    loop {
        if batches == MAX_BATCHES {
            report.capped = true;
            break;
        }
        batches += 1;
        let rows = store
            .expired_recordings(recordings_cutoff, &cursor, BATCH)
            .await?;
        let Some(last) = rows.last() else {
            break;
        };
        cursor = last.cursor.clone();
        let full = rows.len() == BATCH as usize;
        let mut work = Vec::new();
        for row in rows {
            // A hold placed since the rows were read wins.
            if is_running(&row.call_id) || store.is_on_hold(&row.call_id).await? {
                report.skipped += 1;
                continue;
            }
            let files: Vec<String> = [row.path, row.pcap_path].into_iter().flatten().collect();
            let elsewhere = row.node.is_some() && row.node.as_deref() != node;
            work.push(Work {
                call_id: row.call_id,
                files,
                elsewhere,
            });
        }
        let dir = recordings_dir.to_path_buf();
        let outcomes = tokio::task::spawn_blocking(move || delete_files(&dir, work))
            .await
            .unwrap_or_default();
        let mut purged = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(p) => {
                    for (_, note) in &p.files {
                        if note.is_some() {
                            report.files_missing += 1;
                        } else {
                            report.files_deleted += 1;
                        }
                    }
                    purged.push(p);
                }
                Err(Kept::Failed) => report.recordings_failed += 1,
                Err(Kept::Elsewhere) => report.skipped += 1,
            }
        }
        report.recordings_purged += store.mark_recordings_purged(&purged, now).await?;
        if !full {
            break;
        }
    }

    // The SIP traces go with the recordings: the same cutoff, the same holds. A running
    // call has no stored trace yet.
    let mut batches = 0;
    loop {
        if batches == MAX_BATCHES {
            report.capped = true;
            break;
        }
        batches += 1;
        let deleted = store
            .delete_expired_sip_traces(recordings_cutoff, BATCH)
            .await?;
        report.sip_traces_deleted += deleted;
        if deleted < u64::from(BATCH) {
            break;
        }
    }

    let mut cursor = RetentionCursor::default();
    let mut batches = 0;
    loop {
        if batches == MAX_BATCHES {
            report.capped = true;
            break;
        }
        batches += 1;
        let rows = store.expired_cdrs(cdrs_cutoff, &cursor, BATCH).await?;
        let Some(last) = rows.last() else {
            break;
        };
        cursor = last.cursor.clone();
        let full = rows.len() == BATCH as usize;
        let total = rows.len();
        let ids: Vec<String> = rows
            .into_iter()
            .map(|r| r.call_id)
            .filter(|id| !is_running(id))
            .collect();
        let deleted = store.delete_expired_cdrs(&ids, now).await?;
        report.skipped += (total - deleted.len()) as u64;
        report.cdrs_deleted += deleted.len() as u64;
        if !full {
            break;
        }
    }

    tracing::info!(
        recordings_purged = report.recordings_purged,
        files_deleted = report.files_deleted,
        files_missing = report.files_missing,
        recordings_failed = report.recordings_failed,
        cdrs_deleted = report.cdrs_deleted,
        sip_traces_deleted = report.sip_traces_deleted,
        skipped = report.skipped,
        capped = report.capped,
        recordings_days = recording_days,
        cdrs_days = retention.cdrs_days,
        "retention purge done"
    );
    Ok(report)
}

/// One recording to purge.
struct Work {
    call_id: String,
    files: Vec<String>,
    /// Recorded by another cluster node.
    elsewhere: bool,
}

/// Why a recording was not purged.
enum Kept {
    /// A file could not be deleted or lies outside the folder (logged).
    Failed,
    /// Another node recorded it and none of its files is here: that node purges it.
    Elsewhere,
}

/// Deletes each recording's files (blocking). A recording is purged when every file is gone
/// (deleted now or missing already); one that could not be deleted, or lies outside the
/// recordings folder, is kept whole for the next run, and one of another node none of whose
/// files is here is left to that node.
fn delete_files(dir: &Path, work: Vec<Work>) -> Vec<Result<PurgedRecording, Kept>> {
    work.into_iter()
        .map(
            |Work {
                 call_id,
                 files,
                 elsewhere,
             }| {
                let here = |f: &String| {
                    deletable(dir, Path::new(f)).is_ok_and(|p| p.symlink_metadata().is_ok())
                };
                if elsewhere && !files.iter().any(here) {
                    return Err(Kept::Elsewhere);
                }
                let mut done = Vec::new();
                for file in files {
                    match delete_one(dir, Path::new(&file)) {
                        Ok(note) => done.push((file, note)),
                        Err(e) => {
                            tracing::error!(call_id = %call_id, file = %file, error = %e,
                            "retention: recording file not deleted; kept for the next run");
                            return Err(Kept::Failed);
                        }
                    }
                }
                Ok(PurgedRecording {
                    call_id,
                    files: done,
                })
            },
        )
        .collect()
}

/// None: deleted; Some(note): there was nothing to delete.
fn delete_one(dir: &Path, stored: &Path) -> Result<Option<String>, LocateError> {
    let path: PathBuf = match deletable(dir, stored) {
        Ok(p) => p,
        // The folder it was in is gone: so is the file.
        Err(LocateError::Missing { .. }) => return Ok(Some("already missing".to_string())),
        Err(e) => return Err(e),
    };
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Some("already missing".to_string()))
        }
        Err(source) => Err(LocateError::Io { path, source }),
    }
}

#[cfg(test)]
#[path = "purge_tests.rs"]
mod tests;
