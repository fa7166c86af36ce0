//! `GET /api/v1/calls/{id}/recording/verify`: the SHA-256 of the recording (and of its pcap)
//! recomputed and compared with the digest stored when it was closed.

use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    find, open_file, recorded_elsewhere, recording_name, recording_node, FileKind, Refusal,
};
use crate::api::audit::AuditedRecording;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::ApiState;
use crate::evidence::verify::verify_opened;
use crate::model::RecordingInfo;
use crate::recording::locate::{LocateError, OpenedRecording};

/// One file's check.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileCheck {
    /// The file's path under the recordings folder.
    pub file: String,
    /// The SHA-256 stored when the recording was closed (hex).
    pub stored_sha256: Option<String>,
    /// The SHA-256 of the file now (null when it cannot be read).
    pub computed_sha256: Option<String>,
    pub matches: bool,
    /// Why it could not be read (missing, not a regular file inside the recordings folder).
    pub problem: Option<String>,
}

/// The integrity check of a call's recording.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingCheck {
    pub call_id: String,
    /// `ok`: every file has the digest stored for it; `mismatch` otherwise.
    pub result: String,
    pub ok: bool,
    /// The recording's status: `complete` (audio from both legs), `one_way` (from one leg only),
    /// `no_media` (no audio at all), `incomplete`, `failed`. `ok` is about the digests only.
    #[schema(example = "complete")]
    pub status: String,
    /// What the file holds when it is not a complete recording (null when complete): a file
    /// whose digests match can still hold silence.
    pub caveat: Option<String>,
    pub wav: FileCheck,
    /// The raw RTP capture, when the call has one.
    pub pcap: Option<FileCheck>,
    pub checked_at: DateTime<Utc>,
}

#[utoipa::path(
    get,
    path = "/api/v1/calls/{id}/recording/verify",
    tag = "compliance",
    description = "Recompute the SHA-256 of the call's recording (and of its pcap, when it has \
                   one) and compare it with the digest stored when the recording was closed. \
                   `ok` only when every file matches; a missing or replaced file is a \
                   mismatch with its `problem`. 409 while the call is in progress; 410 once \
                   the retention purge deleted it. Role: compliance.",
    params(("id" = String, Path, description = "The call id (the CDR's id)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The check (ok or mismatch)", body = RecordingCheck),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a compliance token", body = ErrorBody),
        (status = 404, description = "No such call or no recording; or another cluster node \
            recorded the call and its file is not reachable from this one (the message and the \
            `X-Recording-Node` header name that node)", body = ErrorBody),
        (status = 409, description = "The call is in progress", body = ErrorBody),
        (status = 410, description = "Deleted by the retention purge", body = ErrorBody),
    )
)]
pub(crate) async fn verify(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match check(&state, &id).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn check(state: &ApiState, id: &str) -> Result<Response, Refusal> {
    let found = find(state, id, FileKind::Wav).await?;
    let dir = state.deps().recordings.root();
    let wav = open_file(dir, &found.stored).await;
    // Not here because another node recorded it (a folder that is not shared): nothing to
    // check on this node; say which node can.
    if matches!(wav, Err(LocateError::Missing { .. })) {
        if let Some(node) = recording_node(state, id).await {
            return Err(recorded_elsewhere(id, node).naming(&found.name));
        }
    }
    let pcap = match found.info.pcap_path.as_deref().map(PathBuf::from) {
        Some(p) => {
            let opened = open_file(dir, &p).await;
            Some((p, opened))
        }
        None => None,
    };
    let problem = |e: &LocateError| match e {
        LocateError::Missing { .. } => "the file is missing".to_string(),
        LocateError::Outside { .. } | LocateError::NotRegular { .. } => {
            "not a regular file inside the recordings folder (replaced or moved)".to_string()
        }
        LocateError::Dir { .. } | LocateError::Io { .. } => "the file cannot be read".to_string(),
    };
    let pcap_name = pcap.as_ref().map(|(p, _)| recording_name(dir, p));
    let pcap_problem = pcap
        .as_ref()
        .and_then(|(_, o)| o.as_ref().err().map(problem));
    let wav_problem = wav.as_ref().err().map(problem);
    if let Err(e) = &wav {
        tracing::warn!(call_id = %id, recording = %found.name, error = %e, "api: verify: recording file not readable");
    }
    let (info, call_id) = (found.info.clone(), id.to_string());
    // Hashing reads whole files: off the runtime.
    let digests = tokio::task::spawn_blocking(move || digests_of(&call_id, info, wav, pcap))
        .await
        .map_err(|e| ApiError::Unavailable(format!("the check did not finish: {e}")))?;
    let file_check = |name: String,
                      stored: Option<&str>,
                      computed: Option<String>,
                      problem: Option<String>| {
        let matches = matches!((stored, computed.as_deref()), (Some(s), Some(c)) if s.eq_ignore_ascii_case(c));
        FileCheck {
            file: name,
            stored_sha256: stored.map(str::to_string),
            problem: match (&computed, problem) {
                (None, None) => Some("the file cannot be read".to_string()),
                (_, p) => p,
            },
            computed_sha256: computed,
            matches,
        }
    };
    let wav_check = file_check(
        found.name.clone(),
        found.info.sha256.as_deref(),
        digests.0,
        wav_problem,
    );
    let pcap_check = pcap_name.map(|name| {
        file_check(
            name,
            found.info.pcap_sha256.as_deref(),
            digests.1,
            pcap_problem,
        )
    });
    let ok = wav_check.matches && pcap_check.as_ref().is_none_or(|p| p.matches);
    if !ok {
        tracing::warn!(call_id = %id, recording = %found.name, "api: verify: recording does not match its stored digest");
    }
    let report = RecordingCheck {
        call_id: id.to_string(),
        result: if ok { "ok" } else { "mismatch" }.to_string(),
        ok,
        status: found.info.status.as_str().to_string(),
        caveat: found.info.status.caveat().map(str::to_string),
        wav: wav_check,
        pcap: pcap_check,
        checked_at: Utc::now(),
    };
    let mut response = Json(report).into_response();
    response
        .extensions_mut()
        .insert(AuditedRecording(found.name));
    Ok(response)
}

/// The SHA-256 of the WAV and of the pcap as they are now (None: unreadable), through
/// `evidence::verify_opened` when the WAV opened. Blocking.
fn digests_of(
    call_id: &str,
    info: RecordingInfo,
    wav: Result<OpenedRecording, LocateError>,
    pcap: Option<(PathBuf, Result<OpenedRecording, LocateError>)>,
) -> (Option<String>, Option<String>) {
    let pcap = pcap.map(|(p, o)| (p, o.ok()));
    match wav {
        Ok(w) => match verify_opened(call_id, info, w, pcap) {
            Ok(v) => (Some(v.actual_sha256), v.pcap.and_then(|p| p.actual_sha256)),
            Err(_) => (None, None),
        },
        Err(_) => {
            let pcap_digest = pcap.and_then(|(p, o)| {
                o.and_then(|mut o| crate::recording::digest::sha256_of(&mut o.file, &p).ok())
            });
            (None, pcap_digest)
        }
    }
}
