//! Enforcement (`/console/enforcement`): the steps in force and the last 24 hours of the log
//! (the API's `GET /api/v1/enforcement`: any role, a carrier limited to its trunks), and for
//! admins the forms to impose a step and to lift one (the API's orders to the running monitor:
//! a reason is required, the operator is the signed-in token's name). A refused order is shown
//! next to the field the API names.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use maud::{html, Markup};
use serde::Deserialize;

use super::format::time_in;
use super::guard::{api_allows, Ctx};
use super::i18n::codes::{words, ENFORCEMENT_ACTIONS, STEPS};
use super::i18n::T;
use super::layout::{csrf_field, error_page, frame, html_response, notice};
use super::sign_in::see_other;
use crate::api::enforcement::{enforcement, impose as api_impose, lift as api_lift};
use crate::api::enforcement::{Enforcement, ImposeOrder, LiftOrder};
use crate::api::{ApiError, ApiState, Principal};
use crate::model::Step;

/// The form as sent and the field the API refused, if any.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ImposeForm {
    trunk: Option<String>,
    number: Option<String>,
    step: Option<String>,
    duration: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Default)]
struct Refused {
    form: ImposeForm,
    /// (field, message) of the API's 400.
    field: Option<(String, T)>,
    /// The step whose lift was refused.
    lift: Option<(String, T)>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

pub(crate) async fn page(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    q: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let done = q.ok().and_then(|Query(q)| q.done);
    let message = match done.as_deref() {
        Some("imposed") => Some((T::StepImposed, false)),
        Some("lifted") => Some((T::StepLifted, false)),
        _ => None,
    };
    render(
        &state,
        &ctx,
        &who,
        Refused::default(),
        message,
        StatusCode::OK,
    )
    .await
}

async fn render(
    state: &ApiState,
    ctx: &Ctx,
    who: &Principal,
    refused: Refused,
    message: Option<(T, bool)>,
    status: StatusCode,
) -> Response {
    let answer = enforcement(
        State(state.clone()),
        Extension(who.clone()),
        Ok(Query(Vec::new())),
    )
    .await;
    let Json(e) = match answer {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "console: enforcement page failed");
            return error_page(
                ctx.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                T::UnavailableTitle,
                T::UnavailableText,
            );
        }
    };
    let admin = api_allows(state, &Method::POST, "/api/v1/enforcement", who.role);
    let trunks: Vec<String> = state
        .deps()
        .trunks
        .trunks()
        .await
        .into_iter()
        .filter(|t| who.sees_trunk(&t.name))
        .map(|t| t.name)
        .collect();
    let body = html! {
        @if let Some((text, alert)) = message {
            (notice(ctx.t(text), alert))
        }
        (in_force(ctx, &e, admin, &refused))
        @if admin {
            (impose_form(ctx, &trunks, &refused))
        }
        (log(ctx, &e))
    };
    html_response(
        status,
        frame(Some(state), ctx, ctx.t(T::EnforcementPageTitle), body),
    )
}

fn in_force(ctx: &Ctx, e: &Enforcement, admin: bool, refused: &Refused) -> Markup {
    let utc = chrono_tz::UTC;
    html! {
        section aria-labelledby="in-force" {
            h2 #in-force { (ctx.t(T::InForceTitle)) }
            @if e.in_force.is_empty() {
                p { (ctx.t(T::NothingInForce)) }
            } @else {
                div.table-wrap {
                    table {
                        thead {
                            tr {
                                th scope="col" { (ctx.t(T::SubjectLabel)) }
                                th scope="col" { (ctx.t(T::StepLabel)) }
                                th scope="col" { (ctx.t(T::SinceLabel)) }
                                th scope="col" { (ctx.t(T::UntilLabel)) }
                                th scope="col" { (ctx.t(T::CauseLabel)) }
                                @if admin { th scope="col" { (ctx.t(T::LiftStep)) } }
                            }
                        }
                        tbody {
                            @for s in &e.in_force {
                                tr data-step=(s.id) {
                                    td { (s.trunk) " " (s.number) }
                                    td { (words(STEPS, &s.step, ctx.lang)) }
                                    td.time { (time_in(s.since, utc)) }
                                    td.time { (s.until.map(|t| time_in(t, utc)).unwrap_or_else(|| "–".into())) }
                                    td { (s.cause) @if !s.detail.is_empty() { ": " (s.detail) } }
                                    @if admin {
                                        td {
                                            form.row method="post" action={ "/console/enforcement/" (s.id) "/lift" } {
                                                (csrf_field(ctx))
                                                label.sr for={ "lift-" (s.id) } { (ctx.t(T::HoldReason)) }
                                                input id={ "lift-" (s.id) } type="text" name="reason" required
                                                    placeholder=(ctx.t(T::HoldReason));
                                                button type="submit" { (ctx.t(T::LiftStep)) }
                                                @if let Some((id, err)) = &refused.lift {
                                                    @if *id == s.id {
                                                        p.field-error { (ctx.t(*err)) }
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
            }
        }
    }
}

fn impose_form(ctx: &Ctx, trunks: &[String], refused: &Refused) -> Markup {
    let f = &refused.form;
    let err = |name: &str| -> Option<T> {
        refused
            .field
            .as_ref()
            .filter(|(field, _)| field == name)
            .map(|(_, t)| *t)
    };
    let field_error = |name: &str| -> Markup {
        html! {
            @if let Some(e) = err(name) {
                p.field-error id={ "impose-" (name) "-error" } { (ctx.t(e)) }
            }
        }
    };
    html! {
        section aria-labelledby="impose" {
            h2 #impose { (ctx.t(T::ImposeTitle)) }
            form.stacked #impose-form method="post" action="/console/enforcement" {
                (csrf_field(ctx))
                label for="impose-trunk" { (ctx.t(T::TrunkLabel)) }
                select #impose-trunk name="trunk" aria-invalid=[err("trunk").map(|_| "true")] {
                    @for t in trunks {
                        option value=(t) selected[f.trunk.as_deref() == Some(t.as_str())] { (t) }
                    }
                }
                (field_error("trunk"))
                label for="impose-number" { (ctx.t(T::ImposeNumber)) }
                input #impose-number type="text" name="number" inputmode="tel"
                    value=(f.number.as_deref().unwrap_or("")) aria-invalid=[err("number").map(|_| "true")];
                (field_error("number"))
                label for="impose-step" { (ctx.t(T::StepLabel)) }
                select #impose-step name="step" {
                    @for s in Step::ALL {
                        option value=(s.as_str()) selected[f.step.as_deref() == Some(s.as_str())] {
                            (words(STEPS, s.as_str(), ctx.lang))
                        }
                    }
                }
                (field_error("step"))
                label for="impose-duration" { (ctx.t(T::DurationLabel)) }
                input #impose-duration type="text" name="duration" placeholder="2h"
                    value=(f.duration.as_deref().unwrap_or("")) aria-describedby="impose-duration-help"
                    aria-invalid=[err("duration").map(|_| "true")];
                p #impose-duration-help .help { (ctx.t(T::DurationHelp)) }
                (field_error("duration"))
                label for="impose-reason" { (ctx.t(T::HoldReason)) }
                input #impose-reason type="text" name="reason" required maxlength="2000"
                    value=(f.reason.as_deref().unwrap_or("")) aria-invalid=[err("reason").map(|_| "true")];
                (field_error("reason"))
                button type="submit" { (ctx.t(T::ImposeButton)) }
            }
        }
    }
}

fn log(ctx: &Ctx, e: &Enforcement) -> Markup {
    let utc = chrono_tz::UTC;
    html! {
        section aria-labelledby="log" {
            h2 #log { (ctx.t(T::EnforcementLogTitle)) }
            @if e.log.is_empty() {
                p { (ctx.t(T::NoneYet)) }
            } @else {
                div.table-wrap {
                    table {
                        thead {
                            tr {
                                th scope="col" { (ctx.t(T::ColTime)) }
                                th scope="col" { (ctx.t(T::ActionLabel)) }
                                th scope="col" { (ctx.t(T::StepLabel)) }
                                th scope="col" { (ctx.t(T::SubjectLabel)) }
                                th scope="col" { (ctx.t(T::OperatorLabel)) }
                                th scope="col" { (ctx.t(T::HoldReason)) }
                            }
                        }
                        tbody {
                            @for l in e.log.iter().rev() {
                                tr {
                                    td.time { (time_in(l.at, utc)) }
                                    td { (words(ENFORCEMENT_ACTIONS, &l.action, ctx.lang)) }
                                    td { (words(STEPS, &l.step, ctx.lang)) }
                                    td { (l.trunk) " " (l.number) }
                                    td { (l.operator.as_deref().unwrap_or("–")) }
                                    td { (l.reason) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The words for a field the API refused.
fn field_words(field: &str) -> T {
    match field {
        "reason" => T::SayWhy,
        "duration" => T::DurationHelp,
        "number" => T::NotTheTrunksNumber,
        _ => T::BadChoice,
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `POST /console/enforcement`: the API's impose with the form's values.
pub(crate) async fn impose(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> Response {
    let form: ImposeForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let order = ImposeOrder {
        trunk: form.trunk.clone().unwrap_or_default(),
        number: non_empty(form.number.as_deref()),
        step: form.step.clone().unwrap_or_default(),
        duration: non_empty(form.duration.as_deref()),
        reason: form.reason.clone().unwrap_or_default(),
    };
    let order_trunk = order.trunk.clone();
    match api_impose(
        State(state.clone()),
        Extension(who.clone()),
        Ok(Json(order)),
    )
    .await
    {
        Ok(_) => see_other("/console/enforcement?done=imposed", &[]),
        Err(e @ (ApiError::BadRequest { .. } | ApiError::NotFound(_))) => {
            let status = e.status();
            let field = match e {
                ApiError::BadRequest { field, .. } => field,
                // The API's 404: the trunk is not there, or the number is not one of its own.
                _ if state.deps().trunks.definition(&order_trunk).await.is_ok() => {
                    "number".to_string()
                }
                _ => "trunk".to_string(),
            };
            let t = field_words(&field);
            let refused = Refused {
                form,
                field: Some((field, t)),
                lift: None,
            };
            render(
                &state,
                &ctx,
                &who,
                refused,
                Some((T::FixTheForm, true)),
                status,
            )
            .await
        }
        Err(e) => refused_order(&ctx, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct LiftForm {
    reason: Option<String>,
}

/// `POST /console/enforcement/{id}/lift`: the API's lift with the form's reason.
pub(crate) async fn lift(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form: LiftForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let order = LiftOrder {
        reason: form.reason.unwrap_or_default(),
    };
    match api_lift(
        State(state.clone()),
        Extension(who.clone()),
        Path(id.clone()),
        Ok(Json(order)),
    )
    .await
    {
        Ok(_) => see_other("/console/enforcement?done=lifted", &[]),
        Err(ApiError::BadRequest { field, .. }) => {
            let refused = Refused {
                lift: Some((id, field_words(&field))),
                ..Refused::default()
            };
            render(
                &state,
                &ctx,
                &who,
                refused,
                Some((T::FixTheForm, true)),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(ApiError::NotFound(_)) => see_other("/console/enforcement", &[]),
        Err(e) => refused_order(&ctx, &e),
    }
}

fn refused_order(ctx: &Ctx, e: &ApiError) -> Response {
    tracing::warn!(error = %e, "console: enforcement order refused");
    let status = e.status();
    let (title, text) = match e {
        ApiError::Forbidden(_) => (T::ForbiddenTitle, T::ForbiddenText),
        ApiError::Conflict(_) => (T::BadRequestTitle, T::OrderConflict),
        _ => (T::UnavailableTitle, T::UnavailableText),
    };
    error_page(ctx.lang, status, title, text)
}
