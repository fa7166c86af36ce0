//! A call's recording: the file itself (`GET /api/v1/calls/{id}/recording`, with HTTP Range) and
//! its integrity check (`GET /api/v1/calls/{id}/recording/verify`). Role: compliance.
//!
//! The file is found through the call's `recordings` row and opened inside the recordings folder
//! only (`recording::locate`): whatever the id or the stored path contains, nothing outside it is
//! read; a stored path that leads outside, or a symlink, is refused (404 to the caller, an error
//! in the log: someone changed the folder or the database). Decisions:
//! - a call still running (live, or closing its recording) → 409: the file is not final and its
//!   digest not yet known; it can be downloaded once the call has ended and its CDR is stored;
//! - a recording purged by retention → 410 (the row says when);
//! - the raw RTP capture kept when the codec could not be decoded is served with `?format=pcap`
//!   (`application/vnd.tcpdump.pcap`); the WAV (silence where audio was not decodable) stays the
//!   default;
//! - `ETag` is the stored SHA-256 (the recording as it was closed), `If-Range` is honoured,
//!   several ranges get the first one (`api::range`).
//!
//! The audit row names the recording (its path under the recordings folder).
//!
//! This file holds what both answers share (finding the row, refusing, opening the file inside
//! the folder); `recordings/download.rs` serves the file, `recordings/verify.rs` checks it.

use std::io;
use std::path::{Path as FsPath, PathBuf};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::audit::AuditedRecording;
use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::ApiState;
use crate::model::RecordingInfo;
use crate::recording::locate::{open_contained, LocateError, OpenedRecording};

mod download;
mod verify;

pub(crate) use download::{__path_download, download};
pub(crate) use verify::{__path_verify, verify};
pub use verify::{FileCheck, RecordingCheck};

/// Which of a call's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Wav,
    Pcap,
}

impl FileKind {
    fn content_type(self) -> &'static str {
        match self {
            FileKind::Wav => "audio/wav",
            FileKind::Pcap => "application/vnd.tcpdump.pcap",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            FileKind::Wav => "wav",
            FileKind::Pcap => "pcap",
        }
    }

    fn stored_path(self, info: &RecordingInfo) -> Option<&str> {
        match self {
            FileKind::Wav => info.path.as_deref(),
            FileKind::Pcap => info.pcap_path.as_deref(),
        }
    }

    fn stored_digest(self, info: &RecordingInfo) -> Option<&str> {
        match self {
            FileKind::Wav => info.sha256.as_deref(),
            FileKind::Pcap => info.pcap_sha256.as_deref(),
        }
    }
}

/// Why a request gets no file: an `ApiError`, or a status `ApiError` has no variant for (409,
/// 410, 416), with the recording it concerned when known (for the audit row).
struct Refusal {
    kind: RefusalKind,
    recording: Option<String>,
    /// The cluster node that recorded the call, when its file is not reachable from this one
    /// (the `X-Recording-Node` header: where to ask).
    node: Option<String>,
}

enum RefusalKind {
    Api(ApiError),
    Plain {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl Refusal {
    fn plain(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            kind: RefusalKind::Plain {
                status,
                code,
                message: message.into(),
            },
            recording: None,
            node: None,
        }
    }

    fn not_found(message: impl Into<String>) -> Refusal {
        ApiError::NotFound(message.into()).into()
    }

    fn naming(mut self, recording: &str) -> Refusal {
        self.recording = Some(recording.to_string());
        self
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        Refusal {
            kind: RefusalKind::Api(e),
            recording: None,
            node: None,
        }
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Refusal {
        ApiError::from(e).into()
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = match self.kind {
            RefusalKind::Api(e) => e.into_response(),
            RefusalKind::Plain {
                status,
                code,
                message,
            } => {
                let body = ErrorBody {
                    error: ErrorDetail {
                        code: code.to_string(),
                        message,
                        field: None,
                    },
                };
                (status, Json(body)).into_response()
            }
        };
        if let Some(name) = self.recording {
            response.extensions_mut().insert(AuditedRecording(name));
        }
        if let Some(value) = self
            .node
            .and_then(|n| axum::http::HeaderValue::from_str(&n).ok())
        {
            response.headers_mut().insert(RECORDING_NODE, value);
        }
        response
    }
}

/// The header naming the node that recorded a call whose file this node cannot reach.
const RECORDING_NODE: &str = "x-recording-node";

/// A recording this node cannot reach because another node of the cluster recorded it (its
/// recordings folder is not shared with this one): 404 naming that node, in the message and
/// in `X-Recording-Node`, so that the caller asks it.
fn recorded_elsewhere(id: &str, node: String) -> Refusal {
    let mut refusal = Refusal::not_found(format!(
        "the recording of call {id} is on node {node}: its file is not reachable from this          node (the recordings folder is not shared); ask node {node}"
    ));
    refusal.node = Some(node);
    refusal
}

/// The node that recorded call `id` when it is another one than this node (from its CDR):
/// asked only when its file is missing here.
async fn recording_node(state: &ApiState, id: &str) -> Option<String> {
    let own = state.deps().cluster.as_ref().map(|c| c.node_id());
    let cdr = state.store().get_cdr(id).await.ok().flatten()?;
    cdr.attempt.node.filter(|node| Some(node.as_str()) != own)
}

/// A call's stored recording and the file asked for.
struct Found {
    info: RecordingInfo,
    stored: PathBuf,
    /// The name the audit row and the answer give it: its path under the recordings folder.
    name: String,
}

/// The recording's row, refusing a running call, a call without one and a purged one.
async fn find(state: &ApiState, id: &str, kind: FileKind) -> Result<Found, Refusal> {
    if state.deps().registry.is_running(id) {
        return Err(Refusal::plain(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "call {id} is in progress: its recording is still being written (it can be \
                 fetched once the call has ended)"
            ),
        ));
    }
    let store = state.store();
    let Some(info) = store.recording(id).await? else {
        return Err(match store.get_cdr(id).await? {
            Some(_) => Refusal::not_found(format!("call {id} has no recording")),
            None => Refusal::not_found(format!("no call {id}")),
        });
    };
    let Some(stored) = kind.stored_path(&info).map(PathBuf::from) else {
        let what = match kind {
            FileKind::Wav => format!(
                "call {id} has no recording file (status {}{})",
                info.status.as_str(),
                info.note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ),
            FileKind::Pcap => format!(
                "call {id} has no pcap (one is kept only when the codec could not be decoded)"
            ),
        };
        return Err(Refusal::not_found(what));
    };
    let name = recording_name(state.deps().recordings.root(), &stored);
    if let Some(at) = store.recording_purged_at(id).await? {
        return Err(Refusal::plain(
            StatusCode::GONE,
            "gone",
            format!("the recording of call {id} was deleted by the retention purge at {at}"),
        )
        .naming(&name));
    }
    Ok(Found { info, stored, name })
}

/// A stored path as the audit log and the answers name it: under the recordings folder (as
/// stored now; a row stored before holds an absolute path).
fn recording_name(dir: &FsPath, stored: &FsPath) -> String {
    stored
        .strip_prefix(dir)
        .unwrap_or(stored)
        .display()
        .to_string()
}

/// Opens a stored file inside the recordings folder, off the runtime.
async fn open_file(dir: &FsPath, stored: &FsPath) -> Result<OpenedRecording, LocateError> {
    let (dir, stored) = (dir.to_path_buf(), stored.to_path_buf());
    let path = stored.clone();
    tokio::task::spawn_blocking(move || open_contained(&dir, &stored))
        .await
        .unwrap_or_else(|e| {
            Err(LocateError::Io {
                path,
                source: io::Error::other(e),
            })
        })
}
