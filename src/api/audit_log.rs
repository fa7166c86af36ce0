//! `GET /api/v1/audit`: the audit log itself, for compliance officers (who read or changed
//! what, when, from where, with what outcome). Reading it is audited like any other request.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::params::{limit_param, text_param, time_param, unique};
use super::ApiState;
use crate::store::{AuditFilter, AuditRow};

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// One API request as the audit log holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    /// Increases with every row; the order of the log.
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The token's name, or `unknown` when no valid token was presented.
    pub actor: String,
    /// The token's role (absent for `unknown`).
    pub role: Option<String>,
    pub method: String,
    pub path: String,
    /// The raw query string ('' when none).
    pub query: String,
    /// The operation, e.g. `cdrs.search`, `calls.get`.
    pub action: String,
    /// The call the request named, if any.
    pub call_id: Option<String>,
    /// The recording the request read, if any.
    pub recording: Option<String>,
    /// The client's address and port.
    pub client: String,
    /// The HTTP status answered.
    pub status: u16,
}

impl From<AuditRow> for AuditEntryView {
    fn from(r: AuditRow) -> AuditEntryView {
        let e = r.entry;
        AuditEntryView {
            id: r.id,
            at: e.at,
            actor: e.actor,
            role: e.role,
            method: e.method,
            path: e.path,
            query: e.query,
            action: e.action,
            call_id: e.call_id,
            recording: e.recording,
            client: e.client,
            status: e.status,
        }
    }
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// In log order (oldest first).
    pub items: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// The filters (all optional). Unknown parameters are refused.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters; they are parsed by `parse_query`.
pub struct AuditParams {
    /// A token name (`unknown` for requests without a valid token).
    #[param(schema_with = super::schemas::name)]
    actor: Option<String>,
    /// A call id: every request that named this call.
    #[param(schema_with = super::schemas::name)]
    call: Option<String>,
    /// An operation, e.g. `calls.recording`.
    #[param(schema_with = super::schemas::name)]
    action: Option<String>,
    /// At or after: RFC 3339 or YYYY-MM-DD (UTC).
    #[param(schema_with = super::schemas::time)]
    from: Option<String>,
    /// Before: RFC 3339 or YYYY-MM-DD (UTC).
    #[param(schema_with = super::schemas::time)]
    to: Option<String>,
    /// The `next` of the previous page.
    #[param(schema_with = super::schemas::audit_cursor)]
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(schema_with = super::schemas::audit_page_size)]
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "compliance",
    description = "The audit log: one row for every API request that read or changed data \
                   (refused ones included), oldest first. The log is append-only: the database \
                   refuses to change or delete its rows.",
    params(AuditParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the audit log", body = AuditPage),
        (status = 400, description = "A bad parameter (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a compliance token", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad("query", e.body_text()))?;
    let mut filter = parse_query(&pairs)?;
    let limit = filter.limit;
    // One more than asked: whether a next page exists.
    filter.limit = limit + 1;
    let mut rows = state.store().audit_entries(&filter).await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(Json(AuditPage {
        items: rows.into_iter().map(AuditEntryView::from).collect(),
        next,
    }))
}

fn parse_query(pairs: &[(String, String)]) -> Result<AuditFilter, ApiError> {
    unique(pairs)?;
    let mut f = AuditFilter {
        limit: DEFAULT_LIMIT,
        ..AuditFilter::default()
    };
    let text = text_param;
    for (key, value) in pairs {
        match key.as_str() {
            "actor" => f.actor = Some(text("actor", value)?),
            "call" => f.call_id = Some(text("call", value)?),
            "action" => f.action = Some(text("action", value)?),
            "from" => f.from = Some(time_param("from", value)?),
            "to" => f.to = Some(time_param("to", value)?),
            "cursor" => {
                f.after_id = Some(
                    Some(value)
                        .filter(|v| (1..=18).contains(&v.len()))
                        .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|v| v.parse::<i64>().ok())
                        .ok_or_else(|| ApiError::bad("cursor", "not a cursor this API returned"))?,
                )
            }
            "limit" => f.limit = limit_param(value, MAX_LIMIT)?,
            other => return Err(ApiError::bad(other, "unknown parameter")),
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::params::test_support::*;

    #[test]
    fn filters_parse_and_errors_name_the_field() {
        let f = parse_query(&pairs(&[
            ("actor", "alice"),
            ("call", "c-1"),
            ("action", "calls.get"),
            ("from", "2026-11-27"),
            ("to", "2026-11-28"),
            ("cursor", "41"),
            ("limit", "1000"),
        ]))
        .unwrap();
        assert_eq!(f.actor.as_deref(), Some("alice"));
        assert_eq!(f.call_id.as_deref(), Some("c-1"));
        assert_eq!(f.action.as_deref(), Some("calls.get"));
        assert_eq!(f.after_id, Some(41));
        assert_eq!(f.limit, 1000);
        assert_eq!(parse_query(&[]).unwrap().limit, DEFAULT_LIMIT);
        for (k, v) in [
            ("actor", ""),
            ("limit", "0"),
            ("limit", "1001"),
            ("cursor", "-1"),
            ("cursor", "abc"),
            ("from", "then"),
            ("who", "x"),
        ] {
            assert_eq!(field(parse_query(&pairs(&[(k, v)]))), k, "{k}={v}");
        }
        // A period that ends before it starts is empty, not an error (the document cannot say
        // "after from").
        assert!(parse_query(&pairs(&[("from", "2026-11-28"), ("to", "2026-11-27")])).is_ok());
    }
}
