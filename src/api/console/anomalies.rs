//! Anomalies (`/console/anomalies`, every role; a carrier limited to trunks sees its own): the
//! API's `GET /api/v1/anomalies` for a period, a trunk and a caller ID, narrowed here to one
//! kind (rule), each with its evidence (what was observed against the threshold, over which
//! window and sample, the step it caused) and a link to the calls that show it — the calls
//! search filtered by the anomaly (`/console/calls?anomaly=<id>`) for the roles that may search
//! calls. The KPI page links here with its period, trunk and caller ID.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use maud::{html, Markup};

use super::fields::{period_and_trunk, query_pairs, value, Field};
use super::format::{figure, local_time};
use super::guard::{api_allows, Ctx};
use super::i18n::codes::{words, RULES, STEPS, SUBJECTS};
use super::i18n::T;
use super::layout::{error_page, frame, html_response, notice};
use crate::api::enforcement::{anomalies as api_anomalies, AnomalyView};
use crate::api::{ApiError, ApiState, Principal};
use crate::config::RuleId;

/// The form's fields, in order; all but `rule` go to the API as they are.
const FIELDS: &[&str] = &["from", "to", "trunk", "number", "rule"];

/// The message shown beside a field the API (or this page) refused.
fn field_words(field: &str) -> T {
    match field {
        "from" | "to" => T::BadTime,
        "number" => T::BadNumber,
        _ => T::BadChoice,
    }
}

pub(crate) async fn page(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let pairs = query_pairs(query, FIELDS);
    let rule = value(&pairs, "rule").to_string();
    let mut error =
        (!rule.is_empty() && RuleId::from_code(&rule).is_none()).then(|| "rule".to_string());
    let mut items: Vec<AnomalyView> = Vec::new();
    if error.is_none() {
        let to_api: Vec<(String, String)> =
            pairs.iter().filter(|(k, _)| k != "rule").cloned().collect();
        match api_anomalies(
            State(state.clone()),
            Extension(who.clone()),
            Ok(Query(to_api)),
        )
        .await
        {
            Ok(Json(a)) => items = a.items,
            Err(ApiError::BadRequest { field, .. }) => error = Some(field),
            Err(ApiError::Forbidden(_)) => {
                return error_page(
                    ctx.lang,
                    StatusCode::FORBIDDEN,
                    T::ForbiddenTitle,
                    T::ForbiddenText,
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "console: anomalies failed");
                return error_page(
                    ctx.lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    T::UnavailableTitle,
                    T::UnavailableText,
                );
            }
        }
    }
    if !rule.is_empty() {
        items.retain(|a| a.rule == rule);
    }
    // Newest first: what a person looks for first.
    items.reverse();
    let trunks: Vec<String> = state
        .deps()
        .trunks
        .trunks()
        .await
        .into_iter()
        .filter(|t| who.sees_trunk(&t.name))
        .map(|t| t.name)
        .collect();
    let calls = api_allows(&state, &Method::GET, super::CDR_SEARCH, who.role);
    let body = html! {
        (form(&ctx, &pairs, &trunks, error.as_deref()))
        @if error.is_some() {
            (notice(ctx.t(T::FixTheForm), true))
        } @else {
            (table(&ctx, &items, calls))
        }
    };
    html_response(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        frame(Some(&state), &ctx, ctx.t(T::AnomaliesPageTitle), body),
    )
}

fn form(ctx: &Ctx, pairs: &[(String, String)], trunks: &[String], error: Option<&str>) -> Markup {
    let t = |k: T| ctx.t(k);
    let f = |name: &'static str, label: T| {
        Field::new(name, t(label)).error((error == Some(name)).then(|| t(field_words(name))))
    };
    let v = |name: &str| value(pairs, name);
    html! {
        form.search #anomaly-filter method="get" action="/console/anomalies" {
            fieldset {
                legend { (t(T::AnomaliesLegend)) }
                div.grid {
                    (period_and_trunk(
                        [
                            f("from", T::FromLabel).described_also("anomalies-help"),
                            f("to", T::ToLabel).described_also("anomalies-help"),
                        ],
                        f("trunk", T::TrunkLabel),
                        pairs,
                        trunks,
                        t(T::Any),
                    ))
                    @let number = f("number", T::CallerIdLabel);
                    (number.render(html! {
                        input #number name="number" type="text" inputmode="tel" value=(v("number"))
                            aria-describedby=[number.described_by()] aria-invalid=[number.invalid()] autocomplete="off";
                    }))
                    @let rule = f("rule", T::AnomalyKind);
                    (rule.render(html! {
                        select #rule name="rule" aria-invalid=[rule.invalid()] aria-describedby=[rule.described_by()] {
                            option value="" { (t(T::Any)) }
                            @for r in RuleId::ALL {
                                option value=(r.code()) selected[v("rule") == r.code()] { (words(RULES, r.code(), ctx.lang)) }
                            }
                        }
                    }))
                }
                p #anomalies-help .help { (t(T::AnomaliesHelp)) }
                div.actions { button type="submit" { (t(T::ShowButton)) } }
            }
        }
    }
}

/// What a row is about in words: `caller ID 861012345678 (trunk test)`, `trunk test`.
pub(crate) fn subject(kind: &str, trunk: &str, number: &str, lang: super::i18n::Lang) -> Markup {
    html! {
        (words(SUBJECTS, kind, lang)) " "
        @if number.is_empty() {
            (trunk)
        } @else {
            span.number { (number) } " " (T::OnTrunk.fill(lang, &[("trunk", trunk)]))
        }
    }
}

fn table(ctx: &Ctx, items: &[AnomalyView], calls: bool) -> Markup {
    let t = |k: T| ctx.t(k);
    let lang = ctx.lang;
    let utc = chrono_tz::UTC;
    html! {
        @if items.is_empty() {
            p.empty role="status" { (t(T::NoAnomalies)) }
        } @else {
            div.table-wrap {
                table.anomalies {
                    caption { (t(T::AnomaliesCaption)) }
                    thead {
                        tr {
                            th scope="col" { (t(T::DetectedAt)) " (UTC)" }
                            th scope="col" { (t(T::AnomalyKind)) }
                            th scope="col" { (t(T::SubjectLabel)) }
                            th scope="col" { (t(T::ObservedLabel)) }
                            th scope="col" { (t(T::ThresholdLabel)) }
                            th scope="col" { (t(T::SampleLabel)) }
                            th scope="col" { (t(T::StepLabel)) }
                            th scope="col" { (t(T::EvidenceCalls)) }
                        }
                    }
                    tbody {
                        @for a in items {
                            tr data-anomaly=(a.id) data-rule=(a.rule) {
                                td.time { (local_time(a.detected_at, utc)) }
                                td {
                                    (words(RULES, &a.rule, lang))
                                    // The monitor writes its details in English.
                                    @if !a.detail.is_empty() { br; small.help lang="en" { (a.detail) } }
                                }
                                td { (subject(&a.subject, &a.trunk, &a.number, lang)) }
                                td.figure { (figure(Some(a.observed), 2)) }
                                td.figure { (figure(Some(a.threshold), 2)) }
                                td.figure { (a.sample) " / " (T::WindowSecs.fill(lang, &[("secs", &a.window_secs.to_string())])) }
                                td.nowrap {
                                    @if a.step == "none" { (t(T::StepNone)) } @else { (words(STEPS, &a.step, lang)) }
                                }
                                td {
                                    @if calls && !a.call_ids.is_empty() {
                                        a.calls href={ "/console/calls?anomaly=" (a.id) "&order=oldest" } {
                                            (T::ItsCalls.fill(lang, &[("count", &a.call_ids.len().to_string())]))
                                        }
                                    } @else {
                                        (a.call_ids.len())
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
