//! What a call's page does: play or download the recording (the API's download, Range and
//! all), verify it now (the API's verify, shown on the page), place or release a legal hold (the
//! API's hold handlers: the same checks, the same history). The API's handlers are called as
//! functions, so the console can never do more or less than the API.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use super::call_page::{api_refusal, render, Extras};
use super::calls::urlencoded;
use super::guard::Ctx;
use super::i18n::T;
use super::layout::error_page;
use super::sign_in::see_other;
use crate::api::audit::AuditedRecording;
use crate::api::{holds, recordings, ApiError, ApiState, Principal};

/// `/console/calls/{id}/recording`: the API's download (the `<audio>` element asks for ranges).
/// Its errors become pages; the audit row names the recording either way.
pub(crate) async fn recording(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let response = recordings::download(State(state), Path(id), query, headers).await;
    if response.status().is_client_error() || response.status().is_server_error() {
        return as_page(&ctx, response);
    }
    response
}

/// `/console/calls/{id}/evidence`: the API's evidence package of the call (a ZIP download).
pub(crate) async fn evidence(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    match crate::api::evidence::call_package(State(state), Extension(who), Path(id)).await {
        Ok(response) => response,
        Err(e) => as_page(&ctx, e.into_response()),
    }
}

/// An API error answer as a page, keeping what the audit row needs.
fn as_page(ctx: &Ctx, api: Response) -> Response {
    let status = api.status();
    let (title, text) = match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => (T::NotFoundTitle, T::NoRecordingFile),
        StatusCode::FORBIDDEN => (T::ForbiddenTitle, T::ForbiddenText),
        StatusCode::SERVICE_UNAVAILABLE => (T::UnavailableTitle, T::UnavailableText),
        _ => (T::BadRequestTitle, T::NoRecordingFile),
    };
    let mut page = error_page(ctx.lang, status, title, text);
    if let Some(rec) = api.extensions().get::<AuditedRecording>() {
        page.extensions_mut().insert(rec.clone());
    }
    page
}

/// `/console/calls/{id}/verify`: the call's page with the API's verification on it.
pub(crate) async fn verify(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let answer = recordings::verify(State(state.clone()), Path(id.clone())).await;
    if answer.status() != StatusCode::OK {
        return as_page(&ctx, answer);
    }
    let audited = answer.extensions().get::<AuditedRecording>().cloned();
    let bytes = match axum::body::to_bytes(answer.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, call_id = %id, "console: verify answer unreadable");
            return error_page(
                ctx.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                T::UnavailableTitle,
                T::UnavailableText,
            );
        }
    };
    let check: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, call_id = %id, "console: verify answer is not JSON");
            return error_page(
                ctx.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                T::UnavailableTitle,
                T::UnavailableText,
            );
        }
    };
    let extras = Extras {
        verify: Some(check),
        ..Extras::default()
    };
    let mut page = render(&state, &ctx, &who, &id, extras, StatusCode::OK).await;
    if let Some(rec) = audited {
        page.extensions_mut().insert(rec);
    }
    page
}

#[derive(Debug, Default, Deserialize)]
struct HoldForm {
    reason: Option<String>,
}

fn reason_of(body: &Bytes) -> Option<String> {
    serde_urlencoded::from_bytes::<HoldForm>(body)
        .ok()
        .and_then(|f| f.reason)
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
}

/// `POST /console/calls/{id}/hold`: the API's `PUT …/hold` with the form's reason.
pub(crate) async fn place_hold(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let order = serde_json::json!({ "reason": reason_of(&body).unwrap_or_default() });
    let placed = holds::place(
        State(state.clone()),
        Extension(who.clone()),
        Path(id.clone()),
        Ok(Bytes::from(order.to_string())),
    )
    .await;
    match placed {
        Ok(_) => see_other(
            &format!("/console/calls/{}?done=held", urlencoded(&id)),
            &[],
        ),
        Err(e) => after_refusal(&state, &ctx, &who, &id, e).await,
    }
}

/// `POST /console/calls/{id}/hold/release`: the API's `DELETE …/hold`.
pub(crate) async fn release_hold(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let order = match reason_of(&body) {
        Some(r) => serde_json::json!({ "reason": r }).to_string(),
        None => String::new(),
    };
    let released = holds::release(
        State(state.clone()),
        Extension(who.clone()),
        Path(id.clone()),
        Ok(Bytes::from(order)),
    )
    .await;
    match released {
        Ok(_) => see_other(
            &format!("/console/calls/{}?done=released", urlencoded(&id)),
            &[],
        ),
        Err(e) => after_refusal(&state, &ctx, &who, &id, e).await,
    }
}

/// A refused hold order: a bad reason is shown next to the field; a call that is gone, a 404.
async fn after_refusal(
    state: &ApiState,
    ctx: &Ctx,
    who: &Principal,
    id: &str,
    e: ApiError,
) -> Response {
    match e {
        ApiError::BadRequest { .. } => {
            let extras = Extras {
                hold_error: Some(T::SayWhy),
                message: Some((T::FixTheForm, true)),
                ..Extras::default()
            };
            render(state, ctx, who, id, extras, StatusCode::BAD_REQUEST).await
        }
        ApiError::NotFound(_) => {
            // Released already, or no such call: the page says how things stand.
            match state.store().get_cdr(id).await {
                Ok(Some(_)) => see_other(&format!("/console/calls/{}", urlencoded(id)), &[]),
                _ => api_refusal(ctx, &e),
            }
        }
        other => api_refusal(ctx, &other).into_response(),
    }
}
