//! The evidence package (role compliance, like a recording download: a carrier never gets one):
//! `GET /api/v1/calls/{id}/evidence` for one call, `GET /api/v1/evidence?…` for the calls of a
//! CDR search (the filters of `GET /api/v1/cdrs`, at most `MAX_CALLS`). One ZIP
//! (`evidence::package`): per call `calls/<id>/` with `cdr.json`, `legs.json` (media figures per
//! leg, DTMF), `holds.json`, `anomalies.json` (the anomalies naming the call and the
//! enforcement they caused), `audit.json` (the call's audit trail before this package),
//! `sip_trace.json` and `sip_trace.txt` (every SIP message of both legs, `store::sip_trace`;
//! a call without a stored trace has neither, and the manifest's `calls[].sip_trace` says why),
//! `recording.wav` and `recording.pcap` as stored, `verification.json` (the stored SHA-256,
//! the SHA-256 of the file as packed, the result) and, when the call's day is sealed,
//! `manifest_proof.json` (`evidence::proof`: its inclusion in the signed manifest); then
//! `README.txt` and `manifest.json` (who,
//! when, the gateway's version, the search, every file's size and SHA-256).
//!
//! Everything but the files' bytes is read before the answer starts (a refusal is a clean 4xx);
//! the files are opened inside the recordings folder only (`recording::locate`), then copied into
//! the body on a blocking thread through a bounded channel: memory stays at a few buffers
//! whatever the recordings' size. Limits: `MAX_CALLS` calls and `MAX_BYTES` of recordings per
//! package (400 naming the limit). Each call packed is a row of the audit log (`AuditedCalls`).
//!
//! This file holds the package's formats, the handlers and the assembly of one package;
//! `evidence/gather.rs` reads a call's parts, `evidence/write.rs` writes the ZIP on the blocking
//! thread, `evidence/body.rs` carries its bytes to the response.

use std::io;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};

use super::audit::AuditedCalls;
use super::auth::Principal;
use super::cdrs::{parse_query, restrict_to_own_trunks};
use super::error::{ApiError, ErrorBody};
use super::ApiState;
use crate::evidence::package::PackedFile;
use crate::model::Cdr;
use crate::recording::locate::download_name;
use crate::store::CdrQuery;

mod body;
mod gather;
mod write;

use body::{ChannelWriter, Chunks, CHANNEL_CHUNKS, CHUNK};
use gather::{read_call, CallParts};
use write::write_package;

/// The most calls one package holds.
pub const MAX_CALLS: u32 = 50;
/// The most recording bytes (WAV and pcap) one package holds: 2 GiB.
pub const MAX_BYTES: u64 = 2 << 30;

/// What `manifest.json` holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceManifest {
    /// `trunkguard-evidence/1`.
    pub format: String,
    pub created_at: DateTime<Utc>,
    /// The token's name that asked for the package.
    pub created_by: String,
    pub role: String,
    /// The gateway's version.
    pub gateway_version: String,
    /// The search (query string) of a package of several calls; null for one call.
    pub query: Option<String>,
    /// The calls packed, oldest first, each in `calls/<folder>/`.
    pub calls: Vec<PackedCall>,
    /// Every file of the package but this manifest, in order, with its size and SHA-256.
    pub files: Vec<PackedFile>,
}

/// A call in the package.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackedCall {
    pub call_id: String,
    /// Its folder under `calls/` (the id with characters unsafe in a file name replaced by `_`).
    pub folder: String,
    /// `packed` (`sip_trace.json` and `sip_trace.txt` are in its folder), or why not: `none
    /// stored (…)` or `unreadable: …`.
    pub sip_trace: String,
}

/// What `verification.json` holds: the recording checked as it was packed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub call_id: String,
    /// `ok` (every file has the SHA-256 stored for it), `mismatch` (a file differs or cannot be
    /// read), `purged` (the retention purge deleted the files) or `none` (the call has no
    /// recording file).
    pub result: String,
    /// The recording's status (`complete`, `incomplete`, `failed`); null without a recording.
    pub recording_status: Option<String>,
    pub wav: Option<FileVerification>,
    pub pcap: Option<FileVerification>,
    pub purged_at: Option<DateTime<Utc>>,
    pub checked_at: DateTime<Utc>,
    /// The token's name that asked for the package.
    pub checked_by: String,
}

/// One file's check.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileVerification {
    /// Its path in the package; null when it could not be packed.
    pub packed_as: Option<String>,
    /// Its path under the recordings folder.
    pub stored_as: String,
    /// The SHA-256 stored when the recording was closed.
    pub stored_sha256: Option<String>,
    /// The SHA-256 of the bytes packed; null when the file could not be read.
    pub computed_sha256: Option<String>,
    pub matches: bool,
    /// Why it could not be read.
    pub problem: Option<String>,
}

/// The search's filters for a package of several calls.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters; they are parsed by `cdrs::parse_query`.
pub struct EvidenceParams {
    /// A caller or callee number.
    #[param(schema_with = super::schemas::number)]
    number: Option<String>,
    /// A trunk.
    #[param(schema_with = super::schemas::name)]
    trunk: Option<String>,
    /// INVITE time at or after: RFC 3339 or YYYY-MM-DD (UTC).
    #[param(schema_with = super::schemas::time)]
    from: Option<String>,
    /// INVITE time before: RFC 3339 or YYYY-MM-DD (UTC).
    #[param(schema_with = super::schemas::time)]
    to: Option<String>,
    /// `answered`, `busy`, `no_answer`, `cancelled`, `rejected`, `failed` or `refused`.
    #[param(schema_with = super::schemas::disposition)]
    disposition: Option<String>,
    /// A refusal or end reason code as stored.
    #[param(schema_with = super::schemas::reason_code)]
    reason: Option<String>,
    /// An anomaly's id: the calls it names.
    #[param(schema_with = super::schemas::anomaly_id)]
    anomaly: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/calls/{id}/evidence",
    tag = "compliance",
    description = "The call's evidence package: one ZIP (application/zip, streamed) with \
                   `calls/<id>/cdr.json`, `legs.json`, `holds.json`, `anomalies.json`, \
                   `audit.json`, `sip_trace.json` and `sip_trace.txt` (both legs' SIP \
                   messages; without a stored trace neither, and the manifest's \
                   `calls[].sip_trace` says why), `recording.wav` (and `recording.pcap` when kept), \
                   `verification.json` (`Verification`: the stored SHA-256 against the SHA-256 \
                   of the bytes packed), `README.txt` and `manifest.json` (`EvidenceManifest`: \
                   every file's path, size and SHA-256; check with `sha256sum`). Audited with \
                   the recording's name. 409 while the call is in progress. Role: compliance.",
    params(("id" = String, Path, description = "The call id (the CDR's id)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The package", content_type = "application/zip", body = Vec<u8>),
        (status = 400, description = "The recording is over the package's size limit", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a compliance token", body = ErrorBody),
        (status = 404, description = "No such call", body = ErrorBody),
        (status = 409, description = "The call is in progress", body = ErrorBody),
    )
)]
pub(crate) async fn call_package(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if state.deps().registry.is_running(&id) {
        return Err(ApiError::Conflict(format!(
            "call {id} is in progress: its package can be made once it has ended"
        )));
    }
    let Some(cdr) = state.store().get_cdr(&id).await? else {
        return Err(ApiError::NotFound(format!("no call {id}")));
    };
    package(&state, &who, vec![cdr], None).await
}

#[utoipa::path(
    get,
    path = "/api/v1/evidence",
    tag = "compliance",
    description = "The evidence package of the calls a CDR search finds (the filters of \
                   `GET /api/v1/cdrs`; no paging): one ZIP laid out like a call's package, a \
                   folder per call, oldest first; the manifest keeps the search. At most 50 \
                   calls and 2 GiB of recordings: a search finding more is refused (400, the \
                   limit in the message: narrow it). Every call packed is a row of the audit \
                   log. Role: compliance.",
    params(EvidenceParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The package", content_type = "application/zip", body = Vec<u8>),
        (status = 400, description = "A bad parameter (named in `error.field`), or over a limit", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a compliance token", body = ErrorBody),
        (status = 404, description = "No call matches", body = ErrorBody),
    )
)]
pub(crate) async fn search_package(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad("query", e.body_text()))?;
    if let Some((key, _)) = pairs.iter().find(|(k, _)| k == "cursor" || k == "limit") {
        return Err(ApiError::bad(
            key,
            "not a parameter of the evidence package",
        ));
    }
    let mut q = parse_query(&pairs)?;
    restrict_to_own_trunks(&mut q, &who)?;
    let text = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    package_of_search(&state, &who, q, text).await
}

/// The package of a search's calls (the console's search too), oldest first; refused beyond
/// `MAX_CALLS`. `text` is the search as the manifest keeps it.
pub(crate) async fn package_of_search(
    state: &ApiState,
    who: &Principal,
    mut q: CdrQuery,
    text: String,
) -> Result<Response, ApiError> {
    q.after = None;
    q.newest_first = false;
    q.limit = MAX_CALLS + 1;
    let cdrs = state.store().search_cdrs(&q).await?;
    if cdrs.is_empty() {
        return Err(ApiError::NotFound("no call matches the search".into()));
    }
    if cdrs.len() > MAX_CALLS as usize {
        return Err(ApiError::bad(
            "query",
            format!(
                "more than {MAX_CALLS} calls match: an evidence package holds at most \
                 {MAX_CALLS}; narrow the search"
            ),
        ));
    }
    // The search's rows are the CDRs alone: each call read whole (media, DTMF, recording).
    let mut whole = Vec::with_capacity(cdrs.len());
    for cdr in cdrs {
        let id = cdr.attempt.id.clone();
        match state.store().get_cdr(&id).await? {
            Some(c) => whole.push(c),
            None => return Err(ApiError::NotFound(format!("no call {id}"))),
        }
    }
    package(state, who, whole, Some(text)).await
}

async fn package(
    state: &ApiState,
    who: &Principal,
    cdrs: Vec<Cdr>,
    query: Option<String>,
) -> Result<Response, ApiError> {
    let store = state.store();
    let root = state.deps().recordings.root().to_path_buf();
    let mut calls: Vec<CallParts> = Vec::with_capacity(cdrs.len());
    let mut bytes = 0u64;
    for cdr in cdrs {
        let mut parts = read_call(store, &root, cdr).await?;
        // Two ids that read the same as file names get distinct folders.
        if calls.iter().any(|c| c.folder == parts.folder) {
            parts.folder = format!("{}-{}", parts.folder, calls.len() + 1);
        }
        bytes += [&parts.wav, &parts.pcap]
            .into_iter()
            .flatten()
            .filter_map(|s| s.opened.as_ref().ok().map(|o| o.len))
            .sum::<u64>();
        if bytes > MAX_BYTES {
            return Err(ApiError::bad(
                "query",
                format!(
                    "the recordings come to more than {MAX_BYTES} bytes: an evidence package \
                     holds at most {MAX_BYTES} bytes of recordings; ask for fewer calls"
                ),
            ));
        }
        calls.push(parts);
    }
    let mut proofs = crate::evidence::proof::proofs_for_calls(
        store,
        &calls
            .iter()
            .map(|c| (c.id.clone(), c.invite_at))
            .collect::<Vec<_>>(),
    )
    .await?;
    for c in &mut calls {
        c.proof = proofs.remove(&c.id);
    }
    let created_at = Utc::now();
    let audited = AuditedCalls(
        calls
            .iter()
            .map(|c| (c.id.clone(), c.wav.as_ref().map(|w| w.name.clone())))
            .collect(),
    );
    let manifest = EvidenceManifest {
        format: "trunkguard-evidence/1".into(),
        created_at,
        created_by: who.name.clone(),
        role: who.role.as_str().to_string(),
        gateway_version: env!("CARGO_PKG_VERSION").into(),
        query,
        calls: calls
            .iter()
            .map(|c| PackedCall {
                call_id: c.id.clone(),
                folder: c.folder.clone(),
                sip_trace: match &c.sip_trace {
                    Ok(_) => "packed".into(),
                    Err(why) => why.clone(),
                },
            })
            .collect(),
        files: Vec::new(),
    };
    let filename = match calls.as_slice() {
        [one] => download_name(&format!("evidence-{}", one.id), "zip"),
        _ => format!("evidence-{}.zip", created_at.format("%Y%m%dT%H%M%SZ")),
    };
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let actor = who.name.clone();
    let count = calls.len();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let written = write_package(&mut out, calls, &manifest, &actor);
        match written {
            Ok(files) => {
                tracing::info!(actor = %actor, calls = count, files, "api: evidence package written")
            }
            Err(e) => {
                // The client sees a cut body (the ZIP has no end record): never a package that
                // looks whole.
                tracing::warn!(actor = %actor, error = %e, "api: evidence package not finished");
                let _ = out.tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
    });
    let mut response = Body::from_stream(Chunks(rx)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response.extensions_mut().insert(audited);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::gather::folder_of;
    use super::*;

    #[test]
    fn a_call_id_is_a_safe_folder() {
        assert_eq!(folder_of("abc-123"), "abc-123");
        assert!(!folder_of("../../etc").contains('/'));
        assert!(!folder_of("..").is_empty());
    }

    #[test]
    fn the_consoles_refusal_names_the_limit() {
        use crate::api::console::i18n::{Lang, T};
        for lang in [Lang::En, Lang::Zh] {
            assert!(T::EvidenceTooMany
                .text(lang)
                .contains(&MAX_CALLS.to_string()));
        }
    }
}
