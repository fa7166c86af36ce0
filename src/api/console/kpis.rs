//! The carrier's view (`/console/kpis`, carrier and compliance): the API's KPI report
//! (`GET /api/v1/reports/kpis`: the buckets persisted with the CDRs; a carrier limited to trunks
//! sees its own) for a period and bucket, as two charts drawn on the server as SVG — attempts
//! and answered calls per bucket; ASR and NER in percent — with the table beside them and the
//! same report as CSV. The charts are the trunks' (summed) or, with a caller ID, that caller
//! ID's; a table of every caller ID of the period links to each one's charts, and a link leads
//! to the period's anomalies (`anomalies.rs`). Charts carry their figures as text too (a title
//! per bar and point, the table), so nothing is only in the picture.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde_json::Value;

use super::anomalies::subject;
use super::calls::urlencoded;
use super::fields::{period_and_trunk, query_pairs, value, Field};
use super::format::figure;
use super::guard::Ctx;
use super::i18n::T;
use super::layout::{error_page, frame, html_response, notice};
use crate::api::reports::kpis as api_kpis;
use crate::api::{ApiError, ApiState, Principal};

/// The report's parameters the form sends, in order (others are ignored).
const FIELDS: &[&str] = &["from", "to", "trunk", "number", "bucket", "kind"];

/// One bucket of a trunk's figures, summed over the trunks shown.
#[derive(Debug, Clone, Default, PartialEq)]
struct Point {
    start: String,
    attempts: u64,
    offered: u64,
    answered: u64,
    invalid: u64,
    network_errors: u64,
}

impl Point {
    fn asr(&self) -> Option<f64> {
        (self.offered > 0).then(|| self.answered as f64 / self.offered as f64 * 100.0)
    }

    /// NER: offered calls that did not fail in the network.
    fn ner(&self) -> Option<f64> {
        (self.offered > 0).then(|| {
            (self.offered - self.network_errors.min(self.offered)) as f64 / self.offered as f64
                * 100.0
        })
    }
}

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

/// The rows of one kind of subject (`trunk`: every trunk shown; `caller_id`: the caller ID
/// asked for) summed per bucket, in time order.
fn points(rows: &[Value], subject: &str) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    for r in rows.iter().filter(|r| r["subject"] == subject) {
        let start = r["bucket_start"].as_str().unwrap_or("").to_string();
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let p = match out.iter_mut().find(|p| p.start == start) {
            Some(p) => p,
            None => {
                out.push(Point {
                    start,
                    ..Point::default()
                });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        p.attempts += n("attempts");
        p.offered += n("offered");
        p.answered += n("answered");
        p.invalid += n("invalid_number");
        p.network_errors += n("network_errors");
    }
    out.sort_by(|a, b| a.start.cmp(&b.start));
    out
}

/// A bucket's start as a short label (`11-27 09:00`).
fn label(start: &str) -> String {
    DateTime::parse_from_rfc3339(start)
        .map(|t| t.with_timezone(&Utc).format("%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| start.to_string())
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

/// One caller ID's figures over the whole period.
#[derive(Debug, Clone, Default, PartialEq)]
struct CallerTotal {
    trunk: String,
    number: String,
    point: Point,
}

/// The caller IDs' rows summed over the period, busiest first.
fn caller_totals(rows: &[Value]) -> Vec<CallerTotal> {
    let mut out: Vec<CallerTotal> = Vec::new();
    for r in rows.iter().filter(|r| r["subject"] == "caller_id") {
        let trunk = r["trunk"].as_str().unwrap_or("").to_string();
        let number = r["number"].as_str().unwrap_or("").to_string();
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let i = match out
            .iter()
            .position(|c| c.trunk == trunk && c.number == number)
        {
            Some(i) => i,
            None => {
                out.push(CallerTotal {
                    trunk,
                    number,
                    point: Point::default(),
                });
                out.len() - 1
            }
        };
        let p = &mut out[i].point;
        p.attempts += n("attempts");
        p.offered += n("offered");
        p.answered += n("answered");
        p.invalid += n("invalid_number");
        p.network_errors += n("network_errors");
    }
    out.sort_by(|a, b| {
        b.point
            .attempts
            .cmp(&a.point.attempts)
            .then_with(|| a.number.cmp(&b.number))
    });
    out
}

/// Each caller ID of the period with its totals and a link to its own charts.
fn per_caller(ctx: &Ctx, rows: &[Value], pairs: &[(String, String)]) -> Markup {
    let t = |k: T| ctx.t(k);
    let totals = caller_totals(rows);
    let base = without(pairs, "number");
    html! {
        @if !totals.is_empty() {
            div.table-wrap {
                table.callers {
                    caption { (t(T::PerCallerTitle)) }
                    thead {
                        tr {
                            th scope="col" { (t(T::CallerIdLabel)) }
                            th scope="col" { (t(T::TrunkLabel)) }
                            th scope="col" { (t(T::Attempts)) }
                            th scope="col" { (t(T::Answered)) }
                            th scope="col" { "ASR %" }
                            th scope="col" { "NER %" }
                            th scope="col" { (t(T::ChartsLabel)) }
                        }
                    }
                    tbody {
                        @for c in &totals {
                            tr data-caller=(c.number) {
                                td.number { (c.number) }
                                td { (c.trunk) }
                                td.figure { (c.point.attempts) }
                                td.figure { (c.point.answered) }
                                td.figure { (figure(c.point.asr(), 1)) }
                                td.figure { (figure(c.point.ner(), 1)) }
                                td {
                                    a href={ "/console/kpis?" (base) @if !base.is_empty() { "&" } "number=" (urlencoded(&c.number)) }
                                        aria-label=(T::ChartsOfCaller.fill(ctx.lang, &[("number", &c.number)])) {
                                        (t(T::ChartsLabel))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 36.0;
const TOP: f64 = 12.0;

/// The x position and width of bucket `i` of `n`.
fn slot(i: usize, n: usize) -> (f64, f64) {
    let width = (W - LEFT - 8.0) / n.max(1) as f64;
    (LEFT + width * i as f64, width)
}

fn axis(ctx: &Ctx, points: &[Point], max: f64, unit: &str) -> Markup {
    let plot = H - BOTTOM - TOP;
    let every = points.len().div_ceil(8).max(1);
    html! {
        line x1=(LEFT) y1=(H - BOTTOM) x2=(W - 4.0) y2=(H - BOTTOM) stroke="#6b7480" {}
        line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) stroke="#6b7480" {}
        @for k in 0..=4u32 {
            @let v = max * f64::from(k) / 4.0;
            @let y = H - BOTTOM - plot * f64::from(k) / 4.0;
            line x1=(LEFT - 4.0) y1=(y) x2=(W - 4.0) y2=(y) stroke="#e3e6ea" {}
            text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" font-size="11" fill="#4a5360" { (figure(Some(v), 0)) (unit) }
        }
        @for (i, p) in points.iter().enumerate() {
            @if i % every == 0 {
                @let (x, w) = slot(i, points.len());
                text x=(x + w / 2.0) y=(H - BOTTOM + 14.0) text-anchor="middle" font-size="11" fill="#4a5360" { (label(&p.start)) }
            }
        }
        text x=(W / 2.0) y=(H - 4.0) text-anchor="middle" font-size="11" fill="#4a5360" { (ctx.t(T::TimeUtc)) }
    }
}

fn attempts_chart(ctx: &Ctx, points: &[Point]) -> Markup {
    let max = points.iter().map(|p| p.attempts).max().unwrap_or(0).max(1) as f64;
    // At least 4, so that the five ticks are whole numbers.
    let max = nice(max).max(4.0);
    let plot = H - BOTTOM - TOP;
    html! {
        figure.chart {
            svg #chart-attempts viewBox={ "0 0 " (W) " " (H) } role="img"
                aria-labelledby="chart-attempts-title" {
                title #chart-attempts-title { (ctx.t(T::ChartAttempts)) }
                (axis(ctx, points, max, ""))
                @for (i, p) in points.iter().enumerate() {
                    @let (x, w) = slot(i, points.len());
                    @let ha = plot * p.attempts as f64 / max;
                    @let hb = plot * p.answered as f64 / max;
                    @let bar = (w * 0.35).min(28.0);
                    @let mid = x + w / 2.0;
                    g data-bucket=(p.start) data-attempts=(p.attempts) data-answered=(p.answered) {
                        title { (label(&p.start)) ": " (ctx.t(T::Attempts)) " " (p.attempts) ", " (ctx.t(T::Answered)) " " (p.answered) }
                        rect x=(mid - bar) y=(H - BOTTOM - ha) width=(bar) height=(ha) fill="#0b57a4" {}
                        rect x=(mid) y=(H - BOTTOM - hb) width=(bar) height=(hb) fill="#1d6b34" {}
                    }
                }
            }
            figcaption {
                span.key.blue { "■" } " " (ctx.t(T::Attempts)) "  "
                span.key.green { "■" } " " (ctx.t(T::Answered))
            }
        }
    }
}

fn ratio_chart(ctx: &Ctx, points: &[Point]) -> Markup {
    let plot = H - BOTTOM - TOP;
    let path = |f: fn(&Point) -> Option<f64>| -> String {
        let mut d = String::new();
        for (i, p) in points.iter().enumerate() {
            if let Some(v) = f(p) {
                let (x, w) = slot(i, points.len());
                let y = H - BOTTOM - plot * v / 100.0;
                d.push_str(&format!(
                    "{}{:.1},{:.1} ",
                    if d.is_empty() { "M" } else { "L" },
                    x + w / 2.0,
                    y
                ));
            }
        }
        d
    };
    html! {
        figure.chart {
            svg #chart-ratios viewBox={ "0 0 " (W) " " (H) } role="img" aria-labelledby="chart-ratios-title" {
                title #chart-ratios-title { (ctx.t(T::ChartRatios)) }
                (axis(ctx, points, 100.0, "%"))
                path d=(path(Point::asr)) fill="none" stroke="#0b57a4" stroke-width="2" {}
                path d=(path(Point::ner)) fill="none" stroke="#a4161a" stroke-width="2" stroke-dasharray="5 3" {}
                @for (i, p) in points.iter().enumerate() {
                    @let (x, w) = slot(i, points.len());
                    @if let Some(v) = p.asr() {
                        circle cx=(x + w / 2.0) cy=(H - BOTTOM - plot * v / 100.0) r="3.5" fill="#0b57a4" data-asr=(figure(Some(v), 1)) {
                            title { (label(&p.start)) ": ASR " (figure(Some(v), 1)) "%" }
                        }
                    }
                    @if let Some(v) = p.ner() {
                        circle cx=(x + w / 2.0) cy=(H - BOTTOM - plot * v / 100.0) r="3" fill="#a4161a" {
                            title { (label(&p.start)) ": NER " (figure(Some(v), 1)) "%" }
                        }
                    }
                }
            }
            figcaption {
                span.key.blue { "—" } " ASR  "
                span.key.red { "- -" } " NER"
            }
        }
    }
}

/// A round top for an axis (1, 2, 5 × 10ⁿ).
fn nice(max: f64) -> f64 {
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(max)
}

fn table(ctx: &Ctx, rows: &[Value]) -> Markup {
    let t = |k: T| ctx.t(k);
    let pct = |v: &Value| figure(v.as_f64().map(|x| x * 100.0), 1);
    html! {
        div.table-wrap {
            table.kpis {
                caption { (t(T::KpisTable)) }
                thead {
                    tr {
                        th scope="col" { (t(T::BucketLabel)) " (UTC)" }
                        th scope="col" { (t(T::SubjectLabel)) }
                        th scope="col" { (t(T::Attempts)) }
                        th scope="col" { (t(T::Answered)) }
                        th scope="col" { "ASR %" }
                        th scope="col" { "NER %" }
                        th scope="col" { "ACD (s)" }
                        th scope="col" { (t(T::InvalidRate)) }
                        th scope="col" { (t(T::ShortCalls)) }
                        th scope="col" { (t(T::ComplaintsPer1000)) }
                    }
                }
                tbody {
                    @for r in rows {
                        @let offered = r["offered"].as_u64().unwrap_or(0);
                        @let invalid = r["invalid_number"].as_u64().unwrap_or(0);
                        tr {
                            td.time { (label(r["bucket_start"].as_str().unwrap_or(""))) }
                            td { (subject(r["subject"].as_str().unwrap_or(""), r["trunk"].as_str().unwrap_or(""), r["number"].as_str().unwrap_or(""), ctx.lang)) }
                            td.figure { (r["attempts"].as_u64().unwrap_or(0)) }
                            td.figure { (r["answered"].as_u64().unwrap_or(0)) }
                            td.figure { (pct(&r["asr"])) }
                            td.figure { (pct(&r["ner"])) }
                            td.figure { (figure(r["acd_secs"].as_f64(), 1)) }
                            td.figure { (figure((offered > 0).then(|| invalid as f64 / offered as f64 * 100.0), 1)) "%" }
                            td.figure { (r["short_calls"].as_u64().unwrap_or(0)) }
                            td.figure { (figure(r["complaints_per_1000_answered"].as_f64(), 1)) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
