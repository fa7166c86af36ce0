//! Signed daily manifests over the API (issue 17): `GET /api/v1/manifests/{day}` (compliance,
//! carrier) answers the day's manifest as signed (its final seal, else its latest partial one),
//! for whoever holds the deployment's public key to check; `GET /api/v1/manifests/{day}/verify`
//! (compliance) recomputes the day from the database and the recording files
//! (`evidence::manifest_verify`) and answers the report.

use axum::extract::{Path, State};
use axum::Json;
use chrono::NaiveDate;

use super::error::{ApiError, ErrorBody};
use super::ApiState;
use crate::evidence::manifest::SignedManifest;
use crate::evidence::manifest_verify::{context_of, verify_day, DayReport};
use crate::evidence::seal::{current_manifest, signed_of_row, ManifestError};

fn day_param(day: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| ApiError::bad("day", "not a day: YYYY-MM-DD (UTC)"))
}

fn internal(e: ManifestError) -> ApiError {
    match e {
        ManifestError::Store(e) => ApiError::Store(e),
        other => ApiError::Unavailable(other.to_string()),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/manifests/{day}",
    tag = "compliance",
    description = "The signed manifest of a UTC day: its final seal, else (today) its latest \
                   partial seal. Check it with the deployment's public key: \
                   `trunkguard manifest verify --file M.json --public-key P.pem`. Roles: \
                   compliance, carrier.",
    params(("day" = String, Path, format = Date, description = "The day, YYYY-MM-DD (UTC)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The manifest as signed", body = SignedManifest),
        (status = 400, description = "Not a day", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a compliance or carrier token", body = ErrorBody),
        (status = 404, description = "The day is not sealed", body = ErrorBody),
    )
)]
pub(crate) async fn manifest(
    State(state): State<ApiState>,
    Path(day): Path<String>,
) -> Result<Json<SignedManifest>, ApiError> {
    let day = day_param(&day)?;
    let text = crate::evidence::seal::day_text(day);
    let Some(row) = current_manifest(state.store(), &text).await? else {
        return Err(ApiError::NotFound(format!("{text} is not sealed")));
    };
    Ok(Json(signed_of_row(&row.manifest).map_err(internal)?))
}

#[utoipa::path(
    get,
    path = "/api/v1/manifests/{day}/verify",
    tag = "compliance",
    description = "The day recomputed from the database and the recording files and compared \
                   with its manifest: `ok`, or each CDR or recording altered, deleted or added \
                   after the seal, a broken chain of manifests, a bad signature (`findings`); \
                   deletions the retention purge logged are listed apart (`retention`). Role: \
                   compliance.",
    params(("day" = String, Path, format = Date, description = "The day, YYYY-MM-DD (UTC)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The verification report", body = DayReport),
        (status = 400, description = "Not a day", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a compliance token", body = ErrorBody),
        (status = 404, description = "The day is not sealed", body = ErrorBody),
    )
)]
pub(crate) async fn verify(
    State(state): State<ApiState>,
    Path(day): Path<String>,
) -> Result<Json<DayReport>, ApiError> {
    let day = day_param(&day)?;
    let evidence = state.deps().evidence.clone();
    let root = state.deps().recordings.root().to_path_buf();
    let ctx = tokio::task::spawn_blocking(move || context_of(&evidence, &root))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .map_err(internal)?;
    let report = verify_day(state.store(), &ctx, day)
        .await
        .map_err(internal)?;
    if !report.sealed {
        return Err(ApiError::NotFound(format!("{} is not sealed", report.day)));
    }
    Ok(Json(report))
}
