//! A call's part of the package, everything read but the files' bytes: its record, its audit
//! trail, its SIP trace (or why there is none) and its recording files opened inside the
//! recordings folder (or why they could not be).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::api::audit_log::AuditEntryView;
use crate::api::calls::{record_of, CallRecord};
use crate::api::error::ApiError;
use crate::model::Cdr;
use crate::model::SipTrace;
use crate::recording::locate::{download_name, open_contained, LocateError, OpenedRecording};
use crate::store::sip_trace::{self, ReadSipTraceError};
use crate::store::{AuditFilter, Store};

/// The most audit rows kept per call (the newest beyond are left out, and `audit.json` says so).
const MAX_AUDIT_ROWS: u32 = 10_000;

/// A recording file to pack.
pub(super) struct Source {
    /// Its path under the recordings folder.
    pub(super) name: String,
    pub(super) stored_sha256: Option<String>,
    pub(super) opened: Result<OpenedRecording, String>,
}

/// One call, everything read but the files' bytes.
pub(super) struct CallParts {
    pub(super) id: String,
    pub(super) folder: String,
    pub(super) record: CallRecord,
    pub(super) audit: AuditTrail,
    pub(super) recording_status: Option<String>,
    pub(super) purged_at: Option<DateTime<Utc>>,
    pub(super) wav: Option<Source>,
    pub(super) pcap: Option<Source>,
    /// The SIP trace, or why the package has none (the manifest says it).
    pub(super) sip_trace: Result<SipTrace, String>,
    pub(super) invite_at: DateTime<Utc>,
    /// The call's inclusion proof in its day's signed manifest, when the day is sealed.
    pub(super) proof: Option<crate::evidence::proof::ManifestProof>,
}

/// What `audit.json` holds.
#[derive(Serialize)]
pub(super) struct AuditTrail {
    /// Oldest first.
    items: Vec<AuditEntryView>,
    /// More rows exist than a package keeps (`MAX_AUDIT_ROWS`): the oldest are here.
    truncated: bool,
}

/// A call id as a folder name: characters unsafe in a path replaced by `_` (never `..`).
pub(super) fn folder_of(id: &str) -> String {
    download_name(id, "")
        .trim_end_matches('.')
        .chars()
        .take(100)
        .collect()
}

pub(super) async fn read_call(
    store: &Store,
    root: &std::path::Path,
    cdr: Cdr,
) -> Result<CallParts, ApiError> {
    let id = cdr.attempt.id.clone();
    let invite_at = cdr.attempt.invite_at;
    let info = cdr.recording.clone();
    let record = record_of(store, cdr).await?;
    let audit = audit_trail(store, &id).await?;
    let sip_trace = trace_of(store, &id).await?;
    let purged_at = record.recording.as_ref().and_then(|r| r.purged_at);
    let (mut wav, mut pcap) = (None, None);
    if let (Some(info), None) = (&info, purged_at) {
        if let Some(p) = info.path.as_deref() {
            wav = Some(open_source(root, p, info.sha256.clone()).await);
        }
        if let Some(p) = info.pcap_path.as_deref() {
            pcap = Some(open_source(root, p, info.pcap_sha256.clone()).await);
        }
    }
    Ok(CallParts {
        folder: folder_of(&id),
        id,
        recording_status: info.map(|i| i.status.as_str().to_string()),
        record,
        audit,
        purged_at,
        wav,
        pcap,
        sip_trace,
        invite_at,
        proof: None,
    })
}

/// The call's SIP trace, or why there is none: a package is still made without it (a refused
/// call traced off, a trace purged), and says so rather than holding an empty file.
async fn trace_of(store: &Store, id: &str) -> Result<Result<SipTrace, String>, ApiError> {
    match sip_trace::read(store, id).await {
        Ok(Some(trace)) => Ok(Ok(trace)),
        Ok(None) => Ok(Err(
            "none stored (tracing off, deleted by the retention purge, or \
                            the call ended less than a few seconds ago)"
                .into(),
        )),
        Err(ReadSipTraceError::Store(e)) => Err(e.into()),
        Err(e) => {
            tracing::warn!(call_id = %id, error = %e, "api: evidence: stored SIP trace unreadable");
            Ok(Err(format!("unreadable: {e}")))
        }
    }
}

async fn audit_trail(store: &Store, id: &str) -> Result<AuditTrail, ApiError> {
    let mut items: Vec<AuditEntryView> = Vec::new();
    let mut after_id = None;
    loop {
        let want = (MAX_AUDIT_ROWS - items.len() as u32).min(1000);
        let rows = store
            .audit_entries(&AuditFilter {
                call_id: Some(id.to_string()),
                after_id,
                limit: want,
                ..AuditFilter::default()
            })
            .await?;
        let got = rows.len() as u32;
        after_id = rows.last().map(|r| r.id);
        items.extend(rows.into_iter().map(AuditEntryView::from));
        if got < want {
            return Ok(AuditTrail {
                items,
                truncated: false,
            });
        }
        if items.len() as u32 >= MAX_AUDIT_ROWS {
            return Ok(AuditTrail {
                items,
                truncated: true,
            });
        }
    }
}

async fn open_source(root: &std::path::Path, stored: &str, sha256: Option<String>) -> Source {
    let stored = PathBuf::from(stored);
    let name = stored
        .strip_prefix(root)
        .unwrap_or(&stored)
        .display()
        .to_string();
    let dir = root.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || open_contained(&dir, &stored))
        .await
        .map_err(|e| format!("the file cannot be read: {e}"))
        .and_then(|r| r.map_err(|e| problem(&e)));
    if let Err(p) = &opened {
        tracing::warn!(recording = %name, problem = %p, "api: evidence: recording file not readable");
    }
    Source {
        name,
        stored_sha256: sha256,
        opened,
    }
}

fn problem(e: &LocateError) -> String {
    match e {
        LocateError::Missing { .. } => "the file is missing".to_string(),
        LocateError::Outside { .. } | LocateError::NotRegular { .. } => {
            "not a regular file inside the recordings folder (replaced or moved)".to_string()
        }
        LocateError::Dir { .. } | LocateError::Io { .. } => "the file cannot be read".to_string(),
    }
}
