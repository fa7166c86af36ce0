//! `GET /api/v1/calls/{id}/recording`: the file, streamed, with HTTP Range, `ETag` and
//! `If-Range` (`api::range`), as a WAV or with `?format=pcap` the raw RTP capture.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncSeekExt, ReadBuf};

use super::{find, open_file, recorded_elsewhere, recording_node, FileKind, Refusal};
use crate::api::audit::AuditedRecording;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::params::unique;
use crate::api::range::{self, RangeAnswer};
use crate::api::ApiState;
use crate::recording::locate::{download_name, LocateError};

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
        ("format" = inline(Option<crate::api::schemas::RecordingFormat>), Query, description = "`wav` (default) or `pcap`"),
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
        (status = 404, description = "No such call, no recording, or its file is missing; when \
            another cluster node recorded the call and its file is not reachable from this one, \
            the message and the `X-Recording-Node` header name that node", body = ErrorBody),
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
    let opened = match open_file(state.deps().recordings.root(), &found.stored).await {
        Ok(opened) => opened,
        Err(e) => {
            // Not here because another node recorded it (a folder that is not shared): say
            // which.
            if matches!(e, LocateError::Missing { .. }) {
                if let Some(node) = recording_node(state, id).await {
                    return Err(recorded_elsewhere(id, node).naming(&found.name));
                }
            }
            return Err(unopenable(id, &found.name, &e));
        }
    };
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
