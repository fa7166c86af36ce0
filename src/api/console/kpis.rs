//! The carrier's view (`/console/kpis`, carrier and compliance): the API's KPI report
//! (`GET /api/v1/reports/kpis`: the buckets persisted with the CDRs; a carrier limited to trunks
//! sees its own) for a period and bucket, as two charts drawn on the server as SVG — attempts
//! and answered calls per bucket; ASR and NER in percent — with the table beside them and the
//! same report as CSV. The charts are the trunks' (summed) or, with a caller ID, that caller
//! ID's; a table of every caller ID of the period links to each one's charts, and a link leads
//! to the period's anomalies (`anomalies.rs`). Charts carry their figures as text too (a title
//! per bar and point, the table), so nothing is only in the picture.
//!
//! This file holds the handlers and the form; `kpis/figures.rs` sums the report's rows,
//! `kpis/charts.rs` draws the charts, `kpis/tables.rs` the tables.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use serde_json::Value;

use super::fields::{period_and_trunk, query_pairs, value, Field};
use super::guard::Ctx;
use super::i18n::T;
use super::layout::{error_page, frame, html_response, notice};
use crate::api::reports::kpis as api_kpis;
use crate::api::{ApiError, ApiState, Principal};

mod charts;
mod figures;
mod tables;
use charts::{attempts_chart, ratio_chart};
use figures::points;
use tables::{per_caller, table};

/// The report's parameters the form sends, in order (others are ignored).
const FIELDS: &[&str] = &["from", "to", "trunk", "number", "bucket", "kind"];

/// The API's answer as JSON rows, or the field it refused.
async fn report(
    state: &ApiState,
    who: &Principal,
    pairs: Vec<(String, String)>,
) -> Result<Vec<Value>, ApiError> {
    let answer = api_kpis(
        State(state.clone()),
        Extension(who.clone()),
        Ok(Query(pairs)),
    )
    .await?;
    let bytes = axum::body::to_bytes(answer.into_body(), 16 * 1024 * 1024)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the KPI report could not be read: {e}")))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Unavailable(format!("the KPI report is not JSON: {e}")))?;
    Ok(v["items"].as_array().cloned().unwrap_or_default())
}

pub(crate) async fn page(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let pairs = query_pairs(query, FIELDS);
    let (rows, error) = match report(&state, &who, pairs.clone()).await {
        Ok(rows) => (rows, None),
        Err(ApiError::BadRequest { field, .. }) => (Vec::new(), Some(field)),
        Err(ApiError::Forbidden(_)) => {
            return error_page(
                ctx.lang,
                StatusCode::FORBIDDEN,
                T::ForbiddenTitle,
                T::ForbiddenText,
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "console: KPI report failed");
            return error_page(
                ctx.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                T::UnavailableTitle,
                T::UnavailableText,
            );
        }
    };
    let trunks: Vec<String> = state
        .deps()
        .trunks
        .trunks()
        .await
        .into_iter()
        .filter(|t| who.sees_trunk(&t.name))
        .map(|t| t.name)
        .collect();
    let number = value(&pairs, "number");
    let points = points(
        &rows,
        if number.is_empty() {
            "trunk"
        } else {
            "caller_id"
        },
    );
    let link = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let period: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "from" | "to" | "trunk" | "number"))
        .collect();
    let anomalies_link = serde_urlencoded::to_string(&period).unwrap_or_default();
    let body = html! {
        (form(&ctx, &pairs, &trunks, error.as_deref()))
        @if error.is_some() {
            (notice(ctx.t(T::FixTheForm), true))
        } @else {
            p.actions {
                a.button.secondary href={ "/console/kpis/export?" (link) } download { (ctx.t(T::ExportKpis)) }
                " "
                a.button.secondary #anomalies-link href={ "/console/anomalies?" (anomalies_link) } { (ctx.t(T::AnomaliesOfPeriod)) }
            }
            h2 #charts-of {
                @if number.is_empty() {
                    (ctx.t(T::ChartsOfTrunks))
                } @else {
                    (T::ChartsOfCaller.fill(ctx.lang, &[("number", number)]))
                    " "
                    a.small href={ "/console/kpis?" (without(&pairs, "number")) } { (ctx.t(T::BackToTrunks)) }
                }
            }
            @if points.is_empty() {
                p.empty { (ctx.t(T::NoFigures)) }
            } @else {
                div.charts {
                    (attempts_chart(&ctx, &points))
                    (ratio_chart(&ctx, &points))
                }
            }
            @if number.is_empty() {
                (per_caller(&ctx, &rows, &pairs))
            }
            (table(&ctx, &rows))
        }
    };
    html_response(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        frame(Some(&state), &ctx, ctx.t(T::KpisTitle), body),
    )
}

/// `/console/kpis/export`: the same report as the API's CSV.
pub(crate) async fn export(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let mut pairs = query_pairs(query, FIELDS);
    pairs.push(("format".into(), "csv".into()));
    match api_kpis(State(state), Extension(who), Ok(Query(pairs))).await {
        Ok(r) => r,
        Err(ApiError::Forbidden(_)) => error_page(
            ctx.lang,
            StatusCode::FORBIDDEN,
            T::ForbiddenTitle,
            T::ForbiddenText,
        ),
        Err(_) => error_page(
            ctx.lang,
            StatusCode::BAD_REQUEST,
            T::BadRequestTitle,
            T::FixTheForm,
        ),
    }
}

fn form(ctx: &Ctx, pairs: &[(String, String)], trunks: &[String], error: Option<&str>) -> Markup {
    let t = |k: T| ctx.t(k);
    let f = |name: &'static str, label: T| {
        let why = match name {
            "from" | "to" => T::BadTime,
            "number" => T::BadNumber,
            _ => T::BadChoice,
        };
        Field::new(name, t(label)).error((error == Some(name)).then(|| t(why)))
    };
    let v = |name: &str| value(pairs, name);
    html! {
        form.search method="get" action="/console/kpis" {
            fieldset {
                legend { (t(T::KpisLegend)) }
                div.grid {
                    (period_and_trunk(
                        [
                            f("from", T::FromLabel).described_also("kpis-help"),
                            f("to", T::ToLabel).described_also("kpis-help"),
                        ],
                        f("trunk", T::TrunkLabel),
                        pairs,
                        trunks,
                        t(T::Any),
                    ))
                    @let number = f("number", T::CallerIdLabel).help(t(T::CallerIdHelp));
                    (number.render(html! {
                        input #number name="number" type="text" inputmode="tel" value=(v("number"))
                            aria-describedby=[number.described_by()] aria-invalid=[number.invalid()] autocomplete="off";
                    }))
                    @let bucket = f("bucket", T::BucketLabel);
                    (bucket.render(html! {
                        select #bucket name="bucket" aria-invalid=[bucket.invalid()] aria-describedby=[bucket.described_by()] {
                            option value="hour" selected[v("bucket") != "day"] { (t(T::BucketHour)) }
                            option value="day" selected[v("bucket") == "day"] { (t(T::BucketDay)) }
                        }
                    }))
                }
                // A refusal of no field of the form (an unknown parameter in a typed URL).
                @if let Some(e) = error.filter(|e| !["from", "to", "trunk", "number", "bucket"].contains(e)) {
                    p.field-error role="alert" { (e) ": " (t(T::BadChoice)) }
                }
                p #kpis-help .help { (t(T::KpisHelp)) }
                div.actions { button type="submit" { (t(T::ShowButton)) } }
            }
        }
    }
}

/// The query string of `pairs` without `name`.
fn without(pairs: &[(String, String)], name: &str) -> String {
    let kept: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != name).collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::charts::nice;
    use super::figures::{caller_totals, label, Point};
    use super::*;
    use serde_json::json;

    #[test]
    fn caller_ids_sum_over_the_period_busiest_first() {
        let rows = vec![
            json!({"bucket_start": "2026-11-27T09:00:00Z", "subject": "caller_id", "trunk": "t", "number": "861", "attempts": 1, "offered": 1, "answered": 1}),
            json!({"bucket_start": "2026-11-27T10:00:00Z", "subject": "caller_id", "trunk": "t", "number": "862", "attempts": 2, "offered": 2}),
            json!({"bucket_start": "2026-11-27T11:00:00Z", "subject": "caller_id", "trunk": "t", "number": "861", "attempts": 3, "offered": 2, "answered": 1}),
            json!({"bucket_start": "2026-11-27T11:00:00Z", "subject": "trunk", "trunk": "t", "attempts": 6}),
        ];
        let c = caller_totals(&rows);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (
                c[0].number.as_str(),
                c[0].point.attempts,
                c[0].point.answered
            ),
            ("861", 4, 2)
        );
        assert_eq!(c[0].point.asr(), Some(2.0 / 3.0 * 100.0));
        assert_eq!((c[1].number.as_str(), c[1].point.attempts), ("862", 2));
        let pairs = vec![
            ("from".to_string(), "2026-11-27".to_string()),
            ("number".to_string(), "861".to_string()),
        ];
        assert_eq!(without(&pairs, "number"), "from=2026-11-27");
    }

    #[test]
    fn trunk_rows_sum_per_bucket_and_ratios_follow() {
        let rows = vec![
            json!({"bucket_start": "2026-11-27T10:00:00Z", "subject": "trunk", "attempts": 3, "offered": 2, "answered": 1, "network_errors": 1}),
            json!({"bucket_start": "2026-11-27T09:00:00Z", "subject": "trunk", "attempts": 4, "offered": 4, "answered": 3}),
            json!({"bucket_start": "2026-11-27T10:00:00Z", "subject": "trunk", "attempts": 1, "offered": 1, "answered": 1}),
            json!({"bucket_start": "2026-11-27T10:00:00Z", "subject": "caller_id", "attempts": 9, "offered": 9}),
        ];
        let p = points(&rows, "trunk");
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].attempts, p[0].answered), (4, 3));
        assert_eq!((p[1].attempts, p[1].offered, p[1].answered), (4, 3, 2));
        assert!((p[1].asr().unwrap() - 66.666).abs() < 0.01);
        assert!((p[1].ner().unwrap() - 66.666).abs() < 0.01);
        assert_eq!(Point::default().asr(), None);
        let callers = points(&rows, "caller_id");
        assert_eq!(callers.len(), 1);
        assert_eq!((callers[0].attempts, callers[0].offered), (9, 9));
        assert_eq!(label("2026-11-27T10:00:00Z"), "11-27 10:00");
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(1.0), 1.0);
        assert_eq!(nice(130.0), 200.0);
    }
}
