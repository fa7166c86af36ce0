//! `GET /api/v1/reports/kpis`: the carrier's figures for a period from the persisted hourly
//! buckets (`monitor::report`), as JSON or CSV with the stable columns of `report::COLUMNS`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{Duration, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::params::{number_param, text_param, time_param, unique};
use super::ApiState;
use crate::model::SubjectKind;
use crate::monitor::kpi::day_start;
use crate::monitor::report::{kpi_report, render, Bucket, Format, ReportQuery, ReportRow};

/// The report's parameters (all optional). Unknown parameters are refused.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters; they are parsed by `parse_query`.
pub struct KpiParams {
    /// Start (inclusive): RFC 3339 or YYYY-MM-DD (UTC). Default: today 00:00 UTC.
    #[param(schema_with = super::schemas::time)]
    from: Option<String>,
    /// End (exclusive). Default: `from` plus one day.
    #[param(schema_with = super::schemas::time)]
    to: Option<String>,
    /// One trunk (a carrier token limited to trunks may only name its own).
    #[param(schema_with = super::schemas::name)]
    trunk: Option<String>,
    /// A caller ID or called number: its caller-ID and callee rows.
    #[param(schema_with = super::schemas::number)]
    number: Option<String>,
    /// `trunk`, `caller_id` or `callee`; default trunks and caller IDs.
    #[param(schema_with = super::schemas::subject_kind)]
    kind: Option<String>,
    /// `hour` (default) or `day` (UTC days).
    #[param(schema_with = super::schemas::bucket)]
    bucket: Option<String>,
    /// `json` (default) or `csv`.
    #[param(schema_with = super::schemas::report_format)]
    format: Option<String>,
}

/// The figures of a period, one row per subject and bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiReport {
    pub items: Vec<ReportRow>,
}

#[utoipa::path(
    get,
    path = "/api/v1/reports/kpis",
    tag = "carrier",
    description = "KPIs per trunk, caller ID and called number for a period, hourly or daily, \
                   from the buckets persisted with the CDRs. Roles: carrier (its trunks only), \
                   compliance. Ratios are over the attempts offered to the carrier (attempts \
                   minus refused_by_gateway); empty when there is no sample. CSV columns, in \
                   order: bucket_start, subject, trunk, number, attempts, offered, \
                   refused_by_gateway, answered, busy, no_answer, rejected_by_user, \
                   invalid_number, network_errors, asr, ner, acd_secs, short_calls, \
                   short_call_ratio, over_long, error_rate, network_error_ratio, pdd_mean_ms, \
                   pdd_p95_ms, peak_concurrency, complaints, complaints_per_1000_answered.",
    params(KpiParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report (JSON, or text/csv with format=csv)",
            content((KpiReport = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad parameter (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Role or trunk not allowed", body = ErrorBody),
    )
)]
pub(crate) async fn kpis(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad("query", e.body_text()))?;
    let (q, format) = parse_query(&pairs)?;
    if let (Some(t), Some(_)) = (&q.trunk, who.trunk_limit()) {
        if !who.sees_trunk(t) {
            return Err(ApiError::Forbidden(format!(
                "token {} may not read trunk {t}",
                who.name
            )));
        }
    }
    let mut rows = kpi_report(state.store(), &q).await?;
    rows.retain(|r| who.sees_trunk(&r.trunk));
    Ok(match format {
        Format::Csv => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"kpis.csv\"",
                ),
            ],
            render(&rows, Format::Csv),
        )
            .into_response(),
        _ => Json(KpiReport { items: rows }).into_response(),
    })
}

fn parse_query(pairs: &[(String, String)]) -> Result<(ReportQuery, Format), ApiError> {
    let today = day_start(Utc::now());
    let mut q = ReportQuery {
        from: today,
        to: today + Duration::days(1),
        trunk: None,
        number: None,
        kind: None,
        bucket: Bucket::Hour,
    };
    let mut format = Format::Json;
    let mut to_given = false;
    unique(pairs)?;
    for (key, value) in pairs {
        match key.as_str() {
            "from" => q.from = time_param("from", value)?,
            "to" => {
                q.to = time_param("to", value)?;
                to_given = true;
            }
            "trunk" => q.trunk = Some(text_param("trunk", value)?),
            "number" => q.number = Some(number_param("number", value)?),
            "kind" => {
                if value.parse::<SubjectKind>().is_err() {
                    return Err(ApiError::bad("kind", "one of trunk, caller_id, callee"));
                }
                q.kind = Some(value.clone());
            }
            "bucket" => {
                q.bucket = value
                    .parse()
                    .map_err(|e: String| ApiError::bad("bucket", e))?
            }
            "format" => {
                format = match value.as_str() {
                    "json" => Format::Json,
                    "csv" => Format::Csv,
                    _ => return Err(ApiError::bad("format", "json or csv")),
                }
            }
            other => return Err(ApiError::bad(other, "unknown parameter")),
        }
    }
    if !to_given {
        q.to = q.from + Duration::days(1);
    }
    Ok((q, format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::params::test_support::*;

    #[test]
    fn defaults_and_errors_name_the_field() {
        let (q, f) = parse_query(&[]).unwrap();
        assert_eq!(q.to - q.from, Duration::days(1));
        assert_eq!(f, Format::Json);
        let (q, f) = parse_query(&pairs(&[
            ("from", "2026-11-27"),
            ("bucket", "day"),
            ("format", "csv"),
            ("kind", "callee"),
        ]))
        .unwrap();
        assert_eq!(q.from.to_rfc3339(), "2026-11-27T00:00:00+00:00");
        assert_eq!(q.to.to_rfc3339(), "2026-11-28T00:00:00+00:00");
        assert_eq!((q.bucket, f), (Bucket::Day, Format::Csv));
        for (k, v) in [
            ("from", "x"),
            ("bucket", "week"),
            ("format", "xml"),
            ("kind", "planet"),
            ("number", "abc"),
            ("trunk", ""),
            ("colour", "red"),
        ] {
            match parse_query(&pairs(&[(k, v)])) {
                Err(ApiError::BadRequest { field, .. }) => assert_eq!(field, k, "{k}={v}"),
                other => panic!("{k}={v}: {other:?}"),
            }
        }
    }
}
