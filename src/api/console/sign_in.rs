//! Signing in and out, the language switch, and the home page (the first page the role may
//! use). The sign-in form has no session yet: its CSRF token is a cookie of its own that the form
//! repeats (double submit), so a page elsewhere cannot sign a browser in with another token.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use super::guard::{Ctx, SignedInAs, CSRF_FIELD};
use super::i18n::{Lang, T};
use super::layout::{frame, html_response, notice};
use super::session::{
    cookie, random_hex, same_secret, set_cookie, LANG_COOKIE, MAX_AGE, SESSION_COOKIE,
    SIGN_IN_COOKIE,
};
use crate::api::auth::{principal_by_hash, token_sha256};
use crate::api::{ApiError, ApiState};

/// How long a sign-in form stays good.
const SIGN_IN_FORM_AGE: Duration = Duration::from_secs(3600);
/// How long the language choice is kept.
const LANG_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// A path of the console to go back to: only our own pages (no other site, no `//host`).
pub(crate) fn local_path(p: &str) -> Option<&str> {
    (p.starts_with("/console/")
        && !p.contains("//")
        && !p.contains('\\')
        && !p.chars().any(char::is_control))
    .then_some(p)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignInQuery {
    next: Option<String>,
    /// Shown after signing out.
    out: Option<String>,
}

pub(crate) async fn page(
    Extension(ctx): Extension<Ctx>,
    query: Result<Query<SignInQuery>, QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let next = q
        .next
        .as_deref()
        .and_then(local_path)
        .unwrap_or("/console/");
    if ctx.who.is_some() {
        return see_other(next, &[]);
    }
    let message = if q.out.is_some() {
        Some((T::SignedOut, false))
    } else if q.next.is_some() {
        Some((T::PleaseSignIn, false))
    } else {
        None
    };
    form(&ctx, StatusCode::OK, next, message)
}

/// The sign-in form with a fresh CSRF cookie.
fn form(ctx: &Ctx, status: StatusCode, next: &str, message: Option<(T, bool)>) -> Response {
    let csrf = random_hex();
    let body = html! {
        @if let Some((text, alert)) = message {
            (notice(ctx.t(text), alert))
        }
        p { (ctx.t(T::SignInIntro)) }
        form.sign-in method="post" action="/console/sign-in" {
            input type="hidden" name=(CSRF_FIELD) value=(csrf);
            input type="hidden" name="next" value=(next);
            label for="token" { (ctx.t(T::TokenLabel)) }
            input #token type="password" name="token" required autocomplete="off"
                autofocus aria-describedby="token-help" spellcheck="false";
            p #token-help .help { (ctx.t(T::TokenHelp)) }
            button type="submit" { (ctx.t(T::SignInButton)) }
        }
    };
    let mut r = html_response(status, frame(None, ctx, ctx.t(T::SignInTitle), body));
    add_cookie(
        &mut r,
        &set_cookie(SIGN_IN_COOKIE, &csrf, SIGN_IN_FORM_AGE, ctx.secure),
    );
    r
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    token: Option<String>,
    csrf: Option<String>,
    next: Option<String>,
}

pub(crate) async fn sign_in(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let form: SignInForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => SignInForm {
            token: None,
            csrf: None,
            next: None,
        },
    };
    let next = form
        .next
        .as_deref()
        .and_then(local_path)
        .unwrap_or("/console/")
        .to_string();
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    let sent = form.csrf.as_deref().unwrap_or("");
    if expected.is_empty() || !same_secret(sent, expected) {
        return form_again(&ctx, StatusCode::FORBIDDEN, &next, T::FormExpired);
    }
    let token = form.token.as_deref().unwrap_or("").trim();
    if token.is_empty() {
        return form_again(&ctx, StatusCode::UNAUTHORIZED, &next, T::SignInFailed);
    }
    let hash = token_sha256(token);
    let who = match principal_by_hash(state.store(), &hash).await {
        Ok(p) => p,
        Err(ApiError::Unauthorized(why)) => {
            tracing::info!(why, "console: sign-in refused");
            return form_again(&ctx, StatusCode::UNAUTHORIZED, &next, T::SignInFailed);
        }
        Err(e) => {
            tracing::error!(error = %e, "console: sign-in: the store did not answer");
            return super::layout::error_page(
                ctx.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                T::UnavailableTitle,
                T::UnavailableText,
            );
        }
    };
    if let Some(old) = &ctx.session_id {
        state.sessions.close(old);
    }
    let (id, _) = state
        .sessions
        .open(hash, who.name.clone(), who.role, Utc::now());
    tracing::info!(actor = %who.name, role = %who.role, "console: signed in");
    let mut r = see_other(
        &next,
        &[
            set_cookie(SESSION_COOKIE, &id, MAX_AGE, ctx.secure),
            set_cookie(SIGN_IN_COOKIE, "", Duration::ZERO, ctx.secure),
        ],
    );
    r.extensions_mut().insert(SignedInAs(who));
    r
}

fn form_again(ctx: &Ctx, status: StatusCode, next: &str, why: T) -> Response {
    form(ctx, status, next, Some((why, true)))
}

pub(crate) async fn sign_out(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
) -> Response {
    if let Some(id) = &ctx.session_id {
        state.sessions.close(id);
    }
    see_other(
        "/console/sign-in?out=1",
        &[set_cookie(SESSION_COOKIE, "", Duration::ZERO, ctx.secure)],
    )
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LangQuery {
    back: Option<String>,
}

/// `/console/lang/{en|zh}?back=PATH`: keeps the choice in a cookie and goes back.
pub(crate) async fn language(
    Extension(ctx): Extension<Ctx>,
    Path(code): Path<String>,
    query: Result<Query<LangQuery>, QueryRejection>,
) -> Response {
    let back = query
        .ok()
        .and_then(|Query(q)| q.back)
        .filter(|b| local_path(b).is_some())
        .unwrap_or_else(|| "/console/".to_string());
    let Some(lang) = Lang::of_code(&code) else {
        return see_other(&back, &[]);
    };
    see_other(
        &back,
        &[set_cookie(LANG_COOKIE, lang.code(), LANG_AGE, ctx.secure)],
    )
}

/// The first page the role may use.
pub(crate) async fn home(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
) -> Response {
    let Some(who) = &ctx.who else {
        return see_other("/console/sign-in", &[]);
    };
    if let Some(first) = super::layout::first_page(&state, who.role) {
        return see_other(first, &[]);
    }
    let body = html! { p { (ctx.t(T::HomeNothing)) } };
    html_response(
        StatusCode::OK,
        frame(Some(&state), &ctx, ctx.t(T::HomeTitle), body),
    )
}

/// 303 to `to`, setting these cookies.
pub(crate) fn see_other(to: &str, cookies: &[String]) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies {
        add_cookie(&mut r, c);
    }
    r
}

fn add_cookie(r: &mut Response, c: &str) {
    if let Ok(v) = HeaderValue::from_str(c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_gone_back_to() {
        assert_eq!(local_path("/console/calls?x=1"), Some("/console/calls?x=1"));
        for bad in [
            "https://evil.example/",
            "//evil.example/console/",
            "/console//evil",
            "/console/\\evil",
            "/api/v1/cdrs",
            "/console/\nSet-Cookie:x",
            "",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }
}
