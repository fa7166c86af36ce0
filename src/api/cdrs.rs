//! `GET /api/v1/cdrs`: CDR search with keyset paging, and the CDR shape the API shows
//! (`CdrView`, also part of a call's full record).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use chrono::DateTime;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::params::{limit_param, number_param, text_param, time_param, unique};
use super::ApiState;
use crate::model::{Attempt, Cdr, Disposition, Outcome};
use crate::store::{CdrQuery, CdrSearchKey};

/// A page's size when none is asked for, and the largest allowed.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// One call attempt (admitted or refused), as stored: the CDR without its media, recording
/// and DTMF (a call's full record has them). The same two parts as the stored record, flat.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CdrView {
    #[serde(flatten)]
    pub attempt: Attempt,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl From<&Cdr> for CdrView {
    fn from(c: &Cdr) -> CdrView {
        CdrView {
            attempt: c.attempt.clone(),
            outcome: c.outcome.clone(),
        }
    }
}

/// A page of CDRs.
#[derive(Debug, Serialize, ToSchema)]
pub struct CdrPage {
    /// Ordered by INVITE time, then id.
    pub items: Vec<CdrView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// The search's parameters (all optional). Unknown parameters are refused.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters; they are parsed by `parse_query`.
pub struct CdrSearchParams {
    /// A caller or callee number (normalized like the numbers of calls).
    #[param(schema_with = super::schemas::number)]
    number: Option<String>,
    /// A trunk (a carrier token limited to trunks may only name its own).
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
    /// A reason code as stored in the CDR: the refusal reason (`caller_id_not_authorized`,
    /// `number_blocked`, `trunk_suspended`…) or the end reason (`normal_clearing`, `busy`,
    /// `refused`…).
    #[param(schema_with = super::schemas::reason_code)]
    reason: Option<String>,
    /// An anomaly's id (`GET /api/v1/anomalies`): the calls it names.
    #[param(schema_with = super::schemas::anomaly_id)]
    anomaly: Option<String>,
    /// The `next` of the previous page (opaque).
    #[param(schema_with = super::schemas::cdr_cursor)]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(schema_with = super::schemas::cdr_page_size)]
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/v1/cdrs",
    tag = "compliance",
    description = "CDR search. Roles: compliance (every trunk), carrier (its trunks only: a \
                   carrier token limited to trunks that names another trunk gets 403). Pages \
                   are ordered by (invite_at, id); follow `next` until it is absent.",
    params(CdrSearchParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of CDRs", body = CdrPage),
        (status = 400, description = "A bad parameter (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Role or trunk not allowed", body = ErrorBody),
    )
)]
pub(crate) async fn search(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<CdrPage>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad("query", e.body_text()))?;
    let mut q = parse_query(&pairs)?;
    restrict_to_own_trunks(&mut q, &who)?;
    let limit = q.limit;
    // One more than asked: whether a next page exists.
    q.limit = limit + 1;
    let mut rows = state.store().search_cdrs(&q).await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|last| {
            encode_cursor(&CdrSearchKey {
                invite_at: last.attempt.invite_at,
                id: last.attempt.id.clone(),
            })
        })
    } else {
        None
    };
    Ok(Json(CdrPage {
        items: rows.iter().map(CdrView::from).collect(),
        next,
    }))
}

/// A carrier token limited to trunks reads only those: naming another is a 403, naming none
/// means its own.
pub(crate) fn restrict_to_own_trunks(q: &mut CdrQuery, who: &Principal) -> Result<(), ApiError> {
    let asked = q.trunks.take();
    q.trunks = match (asked, who.trunk_limit()) {
        (Some(asked), Some(limit)) => {
            if let Some(t) = asked.iter().find(|t| !limit.contains(t)) {
                return Err(ApiError::Forbidden(format!(
                    "token {} may not read trunk {t}",
                    who.name
                )));
            }
            Some(asked)
        }
        (None, Some(limit)) => Some(limit.to_vec()),
        (asked, None) => asked,
    };
    Ok(())
}

/// The query string as a store query; each error names its parameter.
pub(crate) fn parse_query(pairs: &[(String, String)]) -> Result<CdrQuery, ApiError> {
    let mut q = CdrQuery {
        limit: DEFAULT_LIMIT,
        ..CdrQuery::default()
    };
    unique(pairs)?;
    for (key, value) in pairs {
        match key.as_str() {
            "number" => q.number = Some(number_param("number", value)?),
            "trunk" => q.trunks = Some(vec![text_param("trunk", value)?]),
            "from" => q.from = Some(time_param("from", value)?),
            "to" => q.to = Some(time_param("to", value)?),
            "disposition" => {
                let d: Disposition = value.parse().map_err(|_| {
                    ApiError::bad(
                        "disposition",
                        "one of answered, busy, no_answer, cancelled, rejected, failed, refused",
                    )
                })?;
                q.disposition = Some(d.as_str().to_string());
            }
            "reason" => {
                if !CdrQuery::is_reason_code(value) {
                    return Err(ApiError::bad(
                        "reason",
                        "a reason code: lowercase letters, digits and _ (e.g. number_blocked)",
                    ));
                }
                q.reason = Some(value.clone());
            }
            "anomaly" => {
                if !CdrQuery::is_anomaly_id(value) {
                    return Err(ApiError::bad("anomaly", "an anomaly id (digits)"));
                }
                q.anomaly = Some(value.clone());
            }
            "cursor" => q.after = Some(decode_cursor(value)?),
            "limit" => q.limit = limit_param(value, MAX_LIMIT)?,
            other => return Err(ApiError::bad(other, "unknown parameter")),
        }
    }
    Ok(q)
}

/// The cursor: the last row's key as hex text (`invite_at` in ms, a space, the id). Opaque to
/// clients; anything else is a 400 naming `cursor`.
pub(crate) fn encode_cursor(k: &CdrSearchKey) -> String {
    let text = format!("{} {}", k.invite_at.timestamp_millis(), k.id);
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn decode_cursor(s: &str) -> Result<CdrSearchKey, ApiError> {
    let bad = || ApiError::bad("cursor", "not a cursor this API returned");
    // What `schemas::CDR_CURSOR_PATTERN` says: lowercase hex of `-?<ms> <printable id>`.
    if !s.len().is_multiple_of(2)
        || s.len() > 1024
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (ms, id) = text.split_once(' ').ok_or_else(bad)?;
    let digits = ms.strip_prefix('-').unwrap_or(ms);
    if !(1..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !(1..=400).contains(&id.len())
        || !id.bytes().all(|b| (0x20..0x80).contains(&b))
    {
        return Err(bad());
    }
    let ms: i64 = ms.parse().map_err(|_| bad())?;
    let invite_at = DateTime::from_timestamp_millis(ms).ok_or_else(bad)?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(CdrSearchKey {
        invite_at,
        id: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::params::test_support::*;

    #[test]
    fn parameters_parse_and_errors_name_the_field() {
        let q = parse_query(&pairs(&[
            ("number", "+86 139 0000 0001"),
            ("trunk", "demo"),
            ("from", "2026-11-27"),
            ("to", "2026-11-28T00:00:00Z"),
            ("disposition", "no_answer"),
            ("reason", "caller_id_not_authorized"),
            ("anomaly", "1795000000123000"),
            ("limit", "500"),
        ]))
        .unwrap();
        assert_eq!(q.reason.as_deref(), Some("caller_id_not_authorized"));
        assert_eq!(q.anomaly.as_deref(), Some("1795000000123000"));
        assert_eq!(q.limit, 500);
        assert_eq!(q.trunks, Some(vec!["demo".to_string()]));
        assert_eq!(q.disposition.as_deref(), Some("no_answer"));
        assert!(q.number.is_some());
        assert_eq!(parse_query(&[]).unwrap().limit, DEFAULT_LIMIT);

        for (k, v) in [
            ("limit", "0"),
            ("limit", "501"),
            ("limit", "x"),
            ("from", "yesterday"),
            ("disposition", "maybe"),
            ("reason", ""),
            ("reason", "Number Blocked"),
            ("anomaly", "x1"),
            ("anomaly", ""),
            ("cursor", "zz"),
            ("cursor", "41"),
            ("number", "abc"),
            ("colour", "red"),
        ] {
            assert_eq!(field(parse_query(&pairs(&[(k, v)]))), k, "{k}={v}");
        }
        // A period that ends before it starts is empty, not an error (the document cannot say
        // "after from").
        assert!(parse_query(&pairs(&[("from", "2026-11-28"), ("to", "2026-11-27")])).is_ok());
        assert_eq!(
            field(parse_query(&pairs(&[("limit", "1"), ("limit", "2")]))),
            "limit"
        );
    }

    #[test]
    fn cursor_round_trips() {
        let k = CdrSearchKey {
            invite_at: DateTime::from_timestamp_millis(1_795_000_000_123).unwrap(),
            // Printable ASCII, as SIP Call-IDs are (`schemas::CDR_CURSOR_PATTERN`).
            id: "call id/x~".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&k)).unwrap(), k);
    }
}
