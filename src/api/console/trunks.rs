//! Trunks (`/console/trunks`, admin): each trunk with its limits, its numbers (the caller IDs
//! allowed out, the numbers reachable in) and its blocked numbers, with forms to add and remove
//! one number at a time. Each form is the API's own order (`POST …/numbers`, `DELETE
//! …/numbers/{number}`, the same for `…/blocked`): the change reaches admission before the next
//! call, and a refusal (not a number, on the list already, not on it) is shown next to the field.
//! Each trunk's limits are edited in a folded form under it (`trunk_limits.rs`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::calls::urlencoded;
use super::fields::Field;
use super::format::time_in;
use super::guard::Ctx;
use super::i18n::T;
use super::layout::{csrf_field, error_page, frame, html_response, notice};
use super::sign_in::see_other;
use super::trunk_limits::{self, LimitsRefused};
use crate::api::trunks as api;
use crate::api::{ApiError, ApiState, Principal};
use crate::config::TrunkConfig;

/// Which of a trunk's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Numbers,
    Blocked,
}

impl List {
    fn segment(self) -> &'static str {
        match self {
            List::Numbers => "numbers",
            List::Blocked => "blocked",
        }
    }
}

/// A refused form: which trunk and list, what was typed, why.
#[derive(Debug)]
struct Refused {
    trunk: String,
    list: List,
    number: String,
    why: T,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

pub(crate) async fn page(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    q: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let message = match q.ok().and_then(|Query(q)| q.done).as_deref() {
        Some("added") => Some((T::NumberAdded, false)),
        Some("removed") => Some((T::NumberRemoved, false)),
        Some("limits") => Some((T::LimitsSaved, false)),
        _ => None,
    };
    render(&state, &ctx, Refusal::None, message, StatusCode::OK).await
}

/// What a refused form brings back to the page.
enum Refusal {
    None,
    Number(Refused),
    Limits(LimitsRefused),
}

/// The page again after a trunk's limits were refused: the values as typed, a message per field.
pub(crate) async fn render_refused_limits(
    state: &ApiState,
    ctx: &Ctx,
    refused: LimitsRefused,
) -> Response {
    render(
        state,
        ctx,
        Refusal::Limits(refused),
        Some((T::FixTheForm, true)),
        StatusCode::BAD_REQUEST,
    )
    .await
}

async fn render(
    state: &ApiState,
    ctx: &Ctx,
    refusal: Refusal,
    message: Option<(T, bool)>,
    status: StatusCode,
) -> Response {
    let trunks = match api::list(State(state.clone())).await {
        Ok(Json(list)) => list.items,
        Err(e) => return failed(ctx, &e),
    };
    let configs = state.deps().trunks.trunks().await;
    let (refused, limits) = match &refusal {
        Refusal::None => (None, None),
        Refusal::Number(r) => (Some(r), None),
        Refusal::Limits(l) => (None, Some(l)),
    };
    let mut sections = Vec::new();
    for t in &trunks {
        let numbers = match api::numbers(State(state.clone()), Path(t.name.clone())).await {
            Ok(Json(l)) => l.items,
            Err(e) => return failed(ctx, &e),
        };
        let blocked = match api::blocked(State(state.clone()), Path(t.name.clone())).await {
            Ok(Json(l)) => l.items,
            Err(e) => return failed(ctx, &e),
        };
        let config = configs.iter().find(|c| c.name == t.name);
        sections.push(trunk(ctx, t, config, &numbers, &blocked, refused, limits));
    }
    let body = html! {
        @if let Some((text, alert)) = message {
            (notice(ctx.t(text), alert))
        }
        @if trunks.is_empty() {
            p { (ctx.t(T::NoneYet)) }
        }
        @for s in sections { (s) }
        (trunk_limits::time_zones())
    };
    html_response(status, frame(Some(state), ctx, ctx.t(T::TrunksTitle), body))
}

/// A trunk that is not there (deleted meanwhile) or the store down, as a page.
pub(crate) fn failed(ctx: &Ctx, e: &ApiError) -> Response {
    if let ApiError::NotFound(_) = e {
        return error_page(
            ctx.lang,
            StatusCode::NOT_FOUND,
            T::NotFoundTitle,
            T::NotFoundText,
        );
    }
    tracing::error!(error = %e, "console: trunks page failed");
    error_page(
        ctx.lang,
        StatusCode::SERVICE_UNAVAILABLE,
        T::UnavailableTitle,
        T::UnavailableText,
    )
}

/// A definition's value as text (`–` when absent).
fn key(def: &Value, k: &str) -> String {
    match def.get(k) {
        None | Some(Value::Null) => "–".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn trunk(
    ctx: &Ctx,
    t: &api::TrunkView,
    config: Option<&TrunkConfig>,
    numbers: &[String],
    blocked: &[String],
    refused: Option<&Refused>,
    limits: Option<&LimitsRefused>,
) -> Markup {
    let d = &t.definition;
    let shown = [
        (T::MaxConcurrent, "max_concurrent"),
        (T::MaxPerCallerId, "max_concurrent_per_caller_id"),
        (T::MaxCps, "max_cps"),
        (T::CallingHours, "calling_hours"),
        (T::TimeZoneLabel, "timezone"),
    ];
    let id = format!("trunk-{}", t.name);
    html! {
        section.trunk aria-labelledby=(id) data-trunk=(t.name) {
            h2 id=(id) { (t.name) }
            p.help { (T::UpdatedBy.fill(ctx.lang, &[("time", &time_in(t.updated_at, chrono_tz::UTC)), ("who", &t.updated_by)])) }
            dl.details {
                @for (label, k) in shown {
                    dt { (ctx.t(label)) }
                    dd { (key(d, k)) }
                }
            }
            (trunk_limits::form(ctx, &t.name, d, config, limits))
            div.lists {
                (list(ctx, &t.name, List::Numbers, numbers, refused))
                (list(ctx, &t.name, List::Blocked, blocked, refused))
            }
        }
    }
}

fn list(
    ctx: &Ctx,
    trunk: &str,
    which: List,
    items: &[String],
    refused: Option<&Refused>,
) -> Markup {
    let (title, empty) = match which {
        List::Numbers => (T::TrunkNumbers, T::NoNumbers),
        List::Blocked => (T::BlockedNumbers, T::NoBlocked),
    };
    let base = format!("/console/trunks/{}/{}", urlencoded(trunk), which.segment());
    let field = format!("{}-{}-add", trunk, which.segment());
    let error = refused.filter(|r| r.trunk == trunk && r.list == which);
    let add = Field::new(&field, ctx.t(T::AddNumber)).error(error.map(|e| ctx.t(e.why)));
    html! {
        div.list data-list=(which.segment()) {
            h3 { (ctx.t(title)) }
            @if items.is_empty() {
                p { (ctx.t(empty)) }
            } @else {
                ul.numbers {
                    @for n in items {
                        li {
                            span.number { (n) }
                            form.inline method="post" action={ (base) "/remove" } {
                                (csrf_field(ctx))
                                input type="hidden" name="number" value=(n);
                                button.secondary.small type="submit"
                                    aria-label=(T::RemoveNumber.fill(ctx.lang, &[("number", n)])) {
                                    (ctx.t(T::Remove))
                                }
                            }
                        }
                    }
                }
            }
            form.row method="post" action=(base) {
                (csrf_field(ctx))
                (add.label())
                input id=(field) type="text" name="number" inputmode="tel" required
                    value=(error.map(|e| e.number.as_str()).unwrap_or(""))
                    aria-describedby=[add.described_by()] aria-invalid=[add.invalid()];
                button type="submit" { (ctx.t(T::Add)) }
                (add.notes())
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct NumberForm {
    number: Option<String>,
}

fn number_of(body: &Bytes) -> String {
    serde_urlencoded::from_bytes::<NumberForm>(body)
        .ok()
        .and_then(|f| f.number)
        .map(|n| n.trim().to_string())
        .unwrap_or_default()
}

/// What a refusal of the API says next to the field.
fn why(e: &ApiError) -> Option<T> {
    match e {
        ApiError::BadRequest { .. } => Some(T::BadNumber),
        ApiError::Conflict(_) => Some(T::AlreadyListed),
        ApiError::NotFound(_) => Some(T::NotListed),
        _ => None,
    }
}

async fn after(
    state: &ApiState,
    ctx: &Ctx,
    trunk: String,
    which: List,
    number: String,
    result: Result<(), ApiError>,
    done: &str,
) -> Response {
    match result {
        Ok(()) => see_other(&format!("/console/trunks?done={done}"), &[]),
        Err(e) => match why(&e) {
            Some(why) => {
                let refused = Refused {
                    trunk,
                    list: which,
                    number,
                    why,
                };
                render(
                    state,
                    ctx,
                    Refusal::Number(refused),
                    Some((T::FixTheForm, true)),
                    e.status(),
                )
                .await
            }
            None => failed(ctx, &e),
        },
    }
}

async fn add(
    state: ApiState,
    ctx: Ctx,
    who: Principal,
    name: String,
    which: List,
    body: Bytes,
) -> Response {
    let number = number_of(&body);
    let order = Bytes::from(serde_json::json!({ "number": number }).to_string());
    let (s, w, p) = (State(state.clone()), Extension(who), Path(name.clone()));
    let result = match which {
        List::Numbers => api::add_number(s, w, p, Ok(order)).await.map(|_| ()),
        List::Blocked => api::add_blocked(s, w, p, Ok(order)).await.map(|_| ()),
    };
    after(&state, &ctx, name, which, number, result, "added").await
}

async fn remove(
    state: ApiState,
    ctx: Ctx,
    who: Principal,
    name: String,
    which: List,
    body: Bytes,
) -> Response {
    let number = number_of(&body);
    let (s, w, p) = (
        State(state.clone()),
        Extension(who),
        Path((name.clone(), number.clone())),
    );
    let result = match which {
        List::Numbers => api::remove_number(s, w, p).await.map(|_| ()),
        List::Blocked => api::remove_blocked(s, w, p).await.map(|_| ()),
    };
    after(&state, &ctx, name, which, number, result, "removed").await
}

pub(crate) async fn add_number(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    add(state, ctx, who, name, List::Numbers, body).await
}

pub(crate) async fn add_blocked(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    add(state, ctx, who, name, List::Blocked, body).await
}

pub(crate) async fn remove_number(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    remove(state, ctx, who, name, List::Numbers, body).await
}

pub(crate) async fn remove_blocked(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    remove(state, ctx, who, name, List::Blocked, body).await
}
