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

use std::io;
use std::path::{Path as FsPath, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncSeekExt, ReadBuf};
use utoipa::ToSchema;

use super::audit::AuditedRecording;
use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::params::unique;
use super::range::{self, RangeAnswer};
use super::ApiState;
use crate::evidence::verify::verify_opened;
use crate::model::RecordingInfo;
use crate::recording::locate::{download_name, open_contained, LocateError, OpenedRecording};

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
        response
    }
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
    let name = recording_name(state.deps().recordings.dir(), &stored);
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

/// A stored path as the audit log and the answers name it: under the recordings folder.
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

/// A file that cannot be opened: what the caller hears (never the path) and what the log says.
fn unopenable(id: &str, name: &str, e: &LocateError) -> Refusal {
    let refusal = match e {
        LocateError::Missing { .. } => {
            tracing::warn!(call_id = %id, recording = %name, error = %e, "api: recording file missing");
            Refusal::not_found(format!("the recording file of call {id} is missing"))
        }
        LocateError::Outside { .. } | LocateError::NotRegular { .. } => {
            tracing::error!(call_id = %id, recording = %name, error = %e,
                "api: refused a recording path that is not a regular file inside the recordings folder");
            Refusal::not_found(format!("the recording file of call {id} is not available"))
        }
        LocateError::Dir { .. } | LocateError::Io { .. } => {
            tracing::error!(call_id = %id, recording = %name, error = %e, "api: recording file unreadable");
            ApiError::Unavailable(format!("the recording file of call {id} cannot be read")).into()
        }
    };
    refusal.naming(name)
}

fn file_kind(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<FileKind, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad("query", e.body_text()))?;
    unique(&pairs)?;
    let mut kind = FileKind::Wav;
    for (key, value) in &pairs {
        match key.as_str() {
            "format" => {
                kind = match value.as_str() {
                    "wav" => FileKind::Wav,
                    "pcap" => FileKind::Pcap,
                    _ => return Err(ApiError::bad("format", "wav or pcap")),
                }
            }
            _ => return Err(ApiError::bad(key, "unknown parameter")),
        }
    }
    Ok(kind)
}

#[utoipa::path(
    get,
    path = "/api/v1/calls/{id}/recording",
    tag = "compliance",
    description = "The call's recording: a stereo WAV (left the inside/agent leg, right the \
                   outside/customer leg) as `audio/wav`, or with `format=pcap` the raw RTP \
                   capture kept when the codec could not be decoded \
                   (`application/vnd.tcpdump.pcap`). Sent as an attachment named after the \
                   call. HTTP Range: one range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) → 206 with \
                   `Content-Range`; of several ranges only the first is served; a range \
                   beyond the end → 416 with `Content-Range: bytes */length`; an invalid Range \
                   header is ignored (200). `ETag` is the SHA-256 stored when the recording was \
                   closed; `If-Range` with another value gets the whole file. 409 while the \
                   call is in progress (the file is not final yet); 410 once the retention \
                   purge deleted it. Role: compliance.",
    params(
        ("id" = String, Path, description = "The call id (the CDR's id)"),
        ("format" = Option<String>, Query, description = "`wav` (default) or `pcap`"),
        ("Range" = Option<String>, Header, description = "`bytes=a-b`, `bytes=a-` or `bytes=-n`"),
        ("If-Range" = Option<String>, Header, description = "The ETag a resumed download expects"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The whole file", content_type = "audio/wav", body = Vec<u8>),
        (status = 206, description = "The requested range", content_type = "audio/wav", body = Vec<u8>),
        (status = 400, description = "A bad parameter (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a compliance token", body = ErrorBody),
        (status = 404, description = "No such call, no recording, or its file is missing", body = ErrorBody),
        (status = 409, description = "The call is in progress", body = ErrorBody),
        (status = 410, description = "Deleted by the retention purge", body = ErrorBody),
        (status = 416, description = "The range starts beyond the end", body = ErrorBody),
    )
)]
pub(crate) async fn download(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    match serve(&state, &id, query, &headers).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn serve(
    state: &ApiState,
    id: &str,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: &HeaderMap,
) -> Result<Response, Refusal> {
    let kind = file_kind(query)?;
    let found = find(state, id, kind).await?;
    let opened = open_file(state.deps().recordings.dir(), &found.stored)
        .await
        .map_err(|e| unopenable(id, &found.name, &e))?;
    let len = opened.len;
    let etag = kind
        .stored_digest(&found.info)
        .map(|d| format!("\"{}\"", d.to_ascii_lowercase()));
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // If-Range naming another version: the whole file (RFC 9110 §13.1.5).
    let same_version = match headers.get(header::IF_RANGE) {
        None => true,
        Some(v) => etag
            .as_deref()
            .is_some_and(|e| v.as_bytes() == e.as_bytes()),
    };
    let answer = if same_version {
        range::answer(range_header, len)
    } else {
        RangeAnswer::Full
    };
    if answer == RangeAnswer::Unsatisfiable {
        let mut response = Refusal::plain(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("the file has {len} bytes"),
        )
        .naming(&found.name)
        .into_response();
        set(
            &mut response,
            header::CONTENT_RANGE,
            &format!("bytes */{len}"),
        );
        set(&mut response, header::ACCEPT_RANGES, "bytes");
        return Ok(response);
    }
    let (status, start) = match answer {
        RangeAnswer::Partial { start, .. } => (StatusCode::PARTIAL_CONTENT, start),
        _ => (StatusCode::OK, 0),
    };
    let body_len = answer.body_len(len);
    let mut file = tokio::fs::File::from_std(opened.file);
    if start > 0 {
        file.seek(io::SeekFrom::Start(start)).await.map_err(|e| {
            unopenable(
                id,
                &found.name,
                &LocateError::Io {
                    path: found.stored.clone(),
                    source: e,
                },
            )
        })?;
    }
    let body = Body::from_stream(FileStream {
        file,
        remaining: body_len,
        buf: vec![0u8; STREAM_CHUNK].into_boxed_slice(),
    });
    let mut response = Response::new(body);
    *response.status_mut() = status;
    set(&mut response, header::CONTENT_TYPE, kind.content_type());
    set(&mut response, header::CONTENT_LENGTH, &body_len.to_string());
    set(&mut response, header::ACCEPT_RANGES, "bytes");
    let filename = download_name(id, kind.extension());
    set(
        &mut response,
        header::CONTENT_DISPOSITION,
        &format!("attachment; filename=\"{filename}\""),
    );
    // Evidence: not to be kept by caches or sniffed into something else.
    set(&mut response, header::CACHE_CONTROL, "private, no-store");
    set(&mut response, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if let Some(etag) = &etag {
        set(&mut response, header::ETAG, etag);
    }
    if let RangeAnswer::Partial { start, end } = answer {
        set(
            &mut response,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{end}/{len}"),
        );
    }
    response
        .extensions_mut()
        .insert(AuditedRecording(found.name.clone()));
    tracing::info!(call_id = %id, recording = %found.name, status = status.as_u16(), bytes = body_len, "api: recording served");
    Ok(response)
}

fn set(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

/// How much of the file one body chunk carries.
const STREAM_CHUNK: usize = 64 * 1024;

/// The response body: `remaining` bytes of the file from where it stands, a chunk at a time (the
/// file is never held in memory whole; tokio's file reads run on its blocking pool).
struct FileStream {
    file: tokio::fs::File,
    remaining: u64,
    buf: Box<[u8]>,
}

impl futures_core::Stream for FileStream {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining)
            .unwrap_or(usize::MAX)
            .min(this.buf.len());
        let mut read = ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                this.remaining = 0;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Ok(())) if read.filled().is_empty() => {
                // The file shrank since it was opened: end the body short (the client sees it).
                this.remaining = 0;
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "recording shorter than when opened",
                ))))
            }
            Poll::Ready(Ok(())) => {
                let chunk = Bytes::copy_from_slice(read.filled());
                this.remaining -= chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
        }
    }
}

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
    /// The recording's status (`complete`, `incomplete`, `failed`).
    pub status: String,
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
        (status = 404, description = "No such call or no recording", body = ErrorBody),
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
    let dir = state.deps().recordings.dir();
    let wav = open_file(dir, &found.stored).await;
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
