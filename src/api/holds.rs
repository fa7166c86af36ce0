//! Legal hold on a call (`PUT`/`DELETE /api/v1/calls/{id}/hold`, role compliance): a call on
//! hold is exempt from the retention purge (its CDR and recording stay). Every hold and release
//! is kept with who, when and why (`legal_holds`), and shown in the call's record.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::ApiState;
use crate::store::{LegalHold, PlaceHold};

/// The longest reason kept.
const MAX_REASON: usize = 2000;

/// A hold order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldOrder {
    /// Why the call is held (a case, a court order): required.
    #[schema(schema_with = super::schemas::hold_reason)]
    pub reason: String,
}

/// A release (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseOrder {
    #[schema(schema_with = super::schemas::optional_hold_reason)]
    pub reason: Option<String>,
}

/// A legal hold, active or released.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub id: i64,
    pub call_id: String,
    pub placed_at: DateTime<Utc>,
    /// The token's name.
    pub placed_by: String,
    pub reason: String,
    /// Null while the hold is in force.
    pub released_at: Option<DateTime<Utc>>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
    pub active: bool,
}

impl From<LegalHold> for HoldView {
    fn from(h: LegalHold) -> HoldView {
        HoldView {
            active: h.is_active(),
            id: h.id,
            call_id: h.call_id,
            placed_at: h.placed_at,
            placed_by: h.placed_by,
            reason: h.reason,
            released_at: h.released_at,
            released_by: h.released_by,
            release_reason: h.release_reason,
        }
    }
}

/// A call can be held once it is known: stored, or still running (its CDR is on the way).
async fn known_call(state: &ApiState, id: &str) -> Result<(), ApiError> {
    if state.deps().registry.is_running(id) || state.store().get_cdr(id).await?.is_some() {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no call {id}")))
    }
}

fn reason_of(text: &str, field: &str) -> Result<String, ApiError> {
    let reason = text.trim();
    if reason.is_empty() {
        return Err(ApiError::bad(field, "must say why"));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::bad(
            field,
            format!("at most {MAX_REASON} characters"),
        ));
    }
    Ok(reason.to_string())
}

#[utoipa::path(
    put,
    path = "/api/v1/calls/{id}/hold",
    tag = "compliance",
    description = "Put a call on legal hold: its CDR and recording are exempt from the \
                   retention purge until the hold is released. A reason is required; the \
                   token's name is kept as who placed it. 201 with the new hold; 200 with the \
                   hold in force when the call is held already (nothing changes). Role: \
                   compliance.",
    params(("id" = String, Path, description = "The call id (the CDR's id)")),
    request_body = HoldOrder,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Held", body = HoldView),
        (status = 200, description = "Held already: the hold in force", body = HoldView),
        (status = 400, description = "A bad field (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a compliance token", body = ErrorBody),
        (status = 404, description = "No such call", body = ErrorBody),
    )
)]
pub(crate) async fn place(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<HoldView>), ApiError> {
    let body = body.map_err(ApiError::bytes)?;
    known_call(&state, &id).await?;
    let order: HoldOrder =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad("body", e.to_string()))?;
    let reason = reason_of(&order.reason, "reason")?;
    match state
        .store()
        .place_hold(&id, &who.name, &reason, Utc::now())
        .await?
    {
        PlaceHold::Placed(h) => {
            tracing::info!(call_id = %id, by = %who.name, reason = %reason, "api: legal hold placed");
            Ok((StatusCode::CREATED, Json(h.into())))
        }
        PlaceHold::AlreadyHeld(h) => Ok((StatusCode::OK, Json(h.into()))),
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/calls/{id}/hold",
    tag = "compliance",
    description = "Release the call's legal hold (retention applies to it again). The hold \
                   stays in the call's record with who released it, when, and the optional \
                   reason. 404 when the call is not on hold. Role: compliance.",
    params(("id" = String, Path, description = "The call id (the CDR's id)")),
    request_body(content = Option<ReleaseOrder>, description = "Optional: why"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Released", body = HoldView),
        (status = 400, description = "A bad field (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a compliance token", body = ErrorBody),
        (status = 404, description = "The call is not on hold", body = ErrorBody),
    )
)]
pub(crate) async fn release(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<HoldView>, ApiError> {
    let body = body.map_err(ApiError::bytes)?;
    let order: ReleaseOrder = if body.iter().all(u8::is_ascii_whitespace) {
        ReleaseOrder::default()
    } else {
        // `null` is no body (the document's optional body is `ReleaseOrder` or null).
        serde_json::from_slice::<Option<ReleaseOrder>>(&body)
            .map_err(|e| ApiError::bad("body", e.to_string()))?
            .unwrap_or_default()
    };
    let reason = order
        .reason
        .as_deref()
        .map(|r| reason_of(r, "reason"))
        .transpose()?;
    let Some(h) = state
        .store()
        .release_hold(&id, &who.name, reason.as_deref(), Utc::now())
        .await?
    else {
        return Err(ApiError::NotFound(format!("call {id} is not on hold")));
    };
    tracing::info!(call_id = %id, by = %who.name, "api: legal hold released");
    Ok(Json(h.into()))
}
