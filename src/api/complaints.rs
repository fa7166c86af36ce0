//! Complaints over HTTP: `POST /api/v1/complaints` files one (a carrier or the compliance team),
//! `GET /api/v1/complaints` lists those of a period. A complaint is stored once, linked to the
//! calls it is about, counted in the KPI buckets, and fed to the complaint rules at once.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Principal, Role};
use super::error::{ApiError, ErrorBody};
use super::params::{number_param, time_param, unique};
use super::ApiState;
use crate::monitor::complaint_csv::{CATEGORIES, SOURCES};
use crate::monitor::persist::complaint_rollup;
use crate::store::{NewComplaint, StoredComplaint};

/// Calls from the caller ID to the complainant this long before a complaint are linked to it.
const LINK_DAYS: i64 = 7;
/// Free text is cut to this many characters.
const MAX_TEXT_CHARS: usize = 2_000;

/// A complaint as filed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintFiling {
    /// Who complained (the called party's number).
    #[schema(schema_with = super::schemas::number)]
    pub complainant: String,
    /// The number complained about: one of the call center's caller IDs.
    #[schema(schema_with = super::schemas::number)]
    pub caller_id: String,
    /// When (RFC 3339 or YYYY-MM-DD, UTC); default: now.
    #[schema(schema_with = super::schemas::optional_time)]
    pub time: Option<String>,
    /// `harassment`, `fraud`, `false_information` or `other`.
    #[schema(schema_with = super::schemas::complaint_category)]
    pub category: String,
    /// `carrier`, `regulator` or `internal`; a carrier token always files as `carrier`
    /// (default `internal` otherwise).
    #[schema(schema_with = super::schemas::optional_complaint_source)]
    pub source: Option<String>,
    pub text: Option<String>,
}

/// A stored complaint.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplaintView {
    pub id: i64,
    pub complainant: String,
    pub caller_id: String,
    pub trunk: Option<String>,
    pub time: DateTime<Utc>,
    pub category: String,
    pub source: String,
    pub text: String,
    /// The calls it is linked to.
    pub calls: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Complaints {
    pub items: Vec<ComplaintView>,
}

/// The parameters of the list. Unknown parameters are refused.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters; they are parsed in `list`.
pub struct ComplaintParams {
    /// Start (inclusive), RFC 3339 or YYYY-MM-DD (UTC). Default: 7 days ago.
    #[param(schema_with = super::schemas::time)]
    from: Option<String>,
    /// End (exclusive). Default: now.
    #[param(schema_with = super::schemas::time)]
    to: Option<String>,
    /// One caller ID.
    #[param(schema_with = super::schemas::number)]
    number: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/complaints",
    tag = "carrier",
    description = "File a complaint about one of the call center's caller IDs. It is stored once \
                   (the same complaint again answers 200 with the stored one), linked to the \
                   calls from that caller ID to the complainant in the 7 days before, counted \
                   in the KPIs and judged by the complaint rules at once. Roles: carrier (about \
                   its trunks' numbers only), compliance.",
    request_body = ComplaintFiling,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored", body = ComplaintView),
        (status = 200, description = "Already stored", body = ComplaintView),
        (status = 400, description = "A bad field (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Role or trunk not allowed", body = ErrorBody),
    )
)]
pub(crate) async fn file(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    body: Result<Json<ComplaintFiling>, JsonRejection>,
) -> Result<(StatusCode, Json<ComplaintView>), ApiError> {
    let Json(f) = body.map_err(ApiError::body)?;
    let complainant = number_param("complainant", &f.complainant)?;
    let caller_id = number_param("caller_id", &f.caller_id)?;
    let time = match &f.time {
        Some(t) => time_param("time", t)?,
        None => Utc::now(),
    };
    let category = f.category.clone();
    if !CATEGORIES.contains(&category.as_str()) {
        return Err(ApiError::bad("category", CATEGORIES.join(", ")));
    }
    let source = match (who.role, &f.source) {
        (Role::Carrier, _) => "carrier".to_string(),
        (_, Some(s)) if SOURCES.contains(&s.as_str()) => s.clone(),
        (_, Some(_)) => return Err(ApiError::bad("source", SOURCES.join(", "))),
        (_, None) => "internal".to_string(),
    };
    let trunk = state.deps().policy.number_owner(&caller_id);
    match &trunk {
        Some(t) if !who.sees_trunk(t) => {
            return Err(ApiError::Forbidden(format!(
                "token {} may not file complaints about trunk {t}",
                who.name
            )))
        }
        None if who.trunk_limit().is_some() => {
            return Err(ApiError::Forbidden(format!(
                "{caller_id} is no number of token {}'s trunks",
                who.name
            )))
        }
        _ => {}
    }
    let c = NewComplaint {
        complainant,
        caller_id,
        trunk: trunk.clone(),
        received_at: time,
        category,
        source,
        text: f
            .text
            .unwrap_or_default()
            .chars()
            .take(MAX_TEXT_CHARS)
            .collect(),
    };
    let deltas = trunk
        .as_deref()
        .map(|t| complaint_rollup(t, &c.caller_id, c.received_at))
        .unwrap_or_default();
    let store = state.store();
    let stored = store
        .insert_complaint_counted(&c, Duration::days(LINK_DAYS), Utc::now(), deltas)
        .await?;
    let (status, view) = match stored {
        Some(s) => {
            // The rules see it now rather than at the monitor's next tick.
            if let Err(e) = state.deps().monitor.poll().await {
                tracing::warn!(error = %e, "monitor did not take the complaint at once");
            }
            (StatusCode::CREATED, view_of(s))
        }
        None => {
            let existing = store
                .complaints(
                    c.received_at,
                    c.received_at + Duration::milliseconds(1),
                    Some(&c.caller_id),
                )
                .await?
                .into_iter()
                .find(|s| {
                    s.complaint.complainant == c.complainant && s.complaint.category == c.category
                })
                .ok_or_else(|| ApiError::Unavailable("the complaint vanished".into()))?;
            (StatusCode::OK, view_of(existing))
        }
    };
    tracing::info!(complaint = view.id, caller_id = %view.caller_id, category = %view.category, by = %who.name, "complaint filed");
    Ok((status, Json(view)))
}

#[utoipa::path(
    get,
    path = "/api/v1/complaints",
    tag = "carrier",
    description = "Complaints of a period with the calls they are linked to. Roles: carrier \
                   (its trunks' numbers only), compliance.",
    params(ComplaintParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The complaints, oldest first", body = Complaints),
        (status = 400, description = "A bad parameter (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Complaints>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad("query", e.body_text()))?;
    let now = Utc::now();
    let (mut from, mut to, mut number) = (now - Duration::days(7), now, None);
    unique(&pairs)?;
    for (key, value) in &pairs {
        match key.as_str() {
            "from" => from = time_param("from", value)?,
            "to" => to = time_param("to", value)?,
            "number" => number = Some(number_param("number", value)?),
            other => return Err(ApiError::bad(other, "unknown parameter")),
        }
    }
    let rows = state
        .store()
        .complaints(from, to, number.as_deref())
        .await?;
    Ok(Json(Complaints {
        items: rows
            .into_iter()
            .filter(|s| match &s.complaint.trunk {
                Some(t) => who.sees_trunk(t),
                None => who.trunk_limit().is_none(),
            })
            .map(view_of)
            .collect(),
    }))
}

fn view_of(s: StoredComplaint) -> ComplaintView {
    let c = s.complaint;
    ComplaintView {
        id: s.id,
        complainant: c.complainant,
        caller_id: c.caller_id,
        trunk: c.trunk,
        time: c.received_at,
        category: c.category,
        source: c.source,
        text: c.text,
        calls: s.cdr_ids,
    }
}
