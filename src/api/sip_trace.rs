//! A call's SIP trace (`GET /api/v1/calls/{id}/sip`): every message of both legs as it crossed
//! the wire, as JSON or as text (`?format=text` or `Accept: text/plain`, like a sngrep/Homer
//! export). Roles: compliance sees both legs; a carrier sees the outside leg of its own trunks'
//! calls — what crossed its side of the trunk, which it saw anyway — never the inside leg (the
//! call center's PBX addresses, Call-IDs and headers, which the gateway's topology hiding keeps
//! from it). The audit row is written by the guard like every read.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Principal, Role};
use super::error::{ApiError, ErrorBody};
use super::ApiState;
use crate::model::{Side, SipTrace};
use crate::store::sip_trace::{self, ReadSipTraceError};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SipTraceParams {
    /// `json` (default) or `text`; without it, `Accept: text/plain` asks for text.
    #[param(schema_with = super::schemas::sip_trace_format)]
    format: Option<String>,
}

/// The call's trace as `who` may see it: 404 when the call or its trace is unknown, 403 for a
/// carrier token and another trunk's call; a carrier gets the outside leg only.
pub(crate) async fn visible_trace(
    state: &ApiState,
    who: &Principal,
    id: &str,
) -> Result<SipTrace, ApiError> {
    let store = state.store();
    let Some(cdr) = store.get_cdr(id).await? else {
        return Err(ApiError::NotFound(format!("no call {id}")));
    };
    let carrier = who.role == Role::Carrier;
    if carrier {
        let trunk = cdr.attempt.trunk.as_deref().unwrap_or_default();
        if trunk.is_empty() || !who.sees_trunk(trunk) {
            return Err(ApiError::Forbidden(format!(
                "token {} may not read the calls of trunk {}",
                who.name,
                if trunk.is_empty() { "(none)" } else { trunk }
            )));
        }
    }
    let mut trace = match sip_trace::read(store, id).await {
        Ok(Some(trace)) => trace,
        Ok(None) => {
            return Err(ApiError::NotFound(format!(
                "no SIP trace stored for call {id} (tracing off, purged by retention, or the \
                 call ended less than a few seconds ago)"
            )))
        }
        Err(ReadSipTraceError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::error!(call_id = %id, error = %e, "stored SIP trace unreadable");
            return Err(ApiError::Unavailable(e.to_string()));
        }
    };
    if carrier {
        trace.messages.retain(|m| m.leg == Side::Outside);
    }
    Ok(trace)
}

fn wants_text(params: &SipTraceParams, headers: &HeaderMap) -> Result<bool, ApiError> {
    match params.format.as_deref() {
        Some("text") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::bad("format", format!("`{other}`: json or text"))),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| {
                accept.contains("text/plain") && !accept.contains("application/json")
            })),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/calls/{id}/sip",
    tag = "compliance",
    description = "A call's SIP trace: every SIP message of both legs (inside: PBX ↔ gateway, \
                   outside: gateway ↔ carrier) in the order it crossed the wire, with its time \
                   (µs), direction, addresses and transport; refused attempts too. At most 256 \
                   messages / 256 KB per call are kept (`dropped_messages` counts the rest). \
                   Stored a few seconds after the call's CDR and deleted with its recording by \
                   the retention purge (kept under legal hold). `format=text` or `Accept: \
                   text/plain`: a text export, one block per message. Roles: compliance (both \
                   legs), carrier (its trunks' calls, the outside leg only).",
    params(("id" = String, Path, description = "The call id (the CDR's id)"), SipTraceParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The call's SIP trace", body = SipTrace,
         content_type = "application/json"),
        (status = 200, description = "The same as text", body = String, content_type = "text/plain"),
        (status = 400, description = "A bad `format`", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Role or trunk not allowed", body = ErrorBody),
        (status = 404, description = "No such call, or no trace stored for it", body = ErrorBody),
    )
)]
pub(crate) async fn sip_trace(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    params: Result<Query<SipTraceParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // A query axum cannot read (a repeated `format`…) is the API's JSON 400, not axum's text.
    let Query(params) = params.map_err(|e| ApiError::bad("query", e.body_text()))?;
    let text = wants_text(&params, &headers)?;
    let trace = visible_trace(&state, &who, &id).await?;
    Ok(if text {
        (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            trace.to_text(),
        )
            .into_response()
    } else {
        Json(trace).into_response()
    })
}
