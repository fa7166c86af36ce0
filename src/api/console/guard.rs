//! The console's guard, on every console route: find the route; for a page that needs a person,
//! find the session (none: 303 to the sign-in page), ask the store for the session's token again
//! (revoked: the session ends), check the role by the API's rule for the route the page stands
//! on (403), and on a POST check the form's CSRF token against the session's (403 without it);
//! then run the page with a time limit, write the audit row (like the API's guard: actor, role,
//! method, path, query, action, call, recording, client, status; a row the database refuses
//! turns the answer into a 503), and add the security headers every page carries.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::i18n::{Lang, T};
use super::layout::error_page;
use super::session::{cookie, same_secret, Session, SESSION_COOKIE};
use super::{route_table, ConsoleRoute, Rule};
use crate::api::audit::{append_rows, rows_for, AuditedRecording, REQUEST_TIMEOUT};
use crate::api::auth::{principal_by_hash, Principal, UNKNOWN_ACTOR};
use crate::api::server::{lookup, path_param, Access, OverTls};
use crate::api::{ApiError, ApiState};
use crate::store::NewAudit;

/// What a console page knows of its request, put in its extensions by the guard.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub lang: Lang,
    /// Cookies get `Secure` (TLS, or a TLS proxy that says so).
    pub secure: bool,
    /// The person signed in (pages that need one always have it).
    pub who: Option<Principal>,
    pub session: Option<Session>,
    /// The session cookie's value (sign-out closes it).
    pub session_id: Option<String>,
    /// The request's path and query, for the sign-in page to come back to.
    pub path: String,
}

impl Ctx {
    pub fn t(&self, key: T) -> &'static str {
        key.text(self.lang)
    }

    /// The session's CSRF token ('' without a session).
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map(|s| s.csrf.as_str()).unwrap_or("")
    }
}

/// Set by the sign-in page on its answer: who signed in (the audit row's actor).
#[derive(Debug, Clone)]
pub(crate) struct SignedInAs(pub Principal);

/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

pub(crate) async fn guard(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let table = route_table();
    let Some(route) = find(&table, req.method(), &template) else {
        let lang = Lang::of_request(req.headers());
        return with_headers(error_page(
            lang,
            StatusCode::METHOD_NOT_ALLOWED,
            T::NotFoundTitle,
            T::NotFoundText,
        ));
    };
    if route.rule == Rule::Asset {
        return next.run(req).await;
    }
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let call_id = path_param(route.path, &path, "id");
    let (response, actor, role) = admit_and_run(&state, &route, req, next).await;
    let status = response.status().as_u16();
    let row = NewAudit {
        at: Utc::now(),
        actor,
        role: role.map(|r| r.as_str().to_string()),
        method: method.to_string(),
        path,
        query,
        action: route.action.to_string(),
        call_id,
        recording: response
            .extensions()
            .get::<AuditedRecording>()
            .map(|r| r.0.clone()),
        client,
        status,
    };
    match append_rows(state.store(), &rows_for(row.clone(), &response)).await {
        Ok(()) => {
            tracing::debug!(actor = %row.actor, action = %row.action, status, "console request");
            with_headers(response)
        }
        Err(e) => {
            tracing::error!(
                error = %e, actor = %row.actor, role = ?row.role, method = %row.method,
                path = %row.path, action = %row.action, call_id = ?row.call_id,
                client = %row.client, status,
                "audit log refused a console row: answered 503"
            );
            with_headers(error_page(
                Lang::En,
                StatusCode::SERVICE_UNAVAILABLE,
                T::UnavailableTitle,
                T::UnavailableText,
            ))
        }
    }
}

fn find(table: &[ConsoleRoute], method: &Method, template: &str) -> Option<ConsoleRoute> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    table
        .iter()
        .find(|r| r.path == template && r.method == *method)
        .cloned()
}

/// The answer, the audit row's actor and role.
async fn admit_and_run(
    state: &ApiState,
    route: &ConsoleRoute,
    mut req: Request,
    next: Next,
) -> (Response, String, Option<crate::api::Role>) {
    let headers = req.headers();
    let lang = Lang::of_request(headers);
    let secure = req.extensions().get::<OverTls>().is_some_and(|t| t.0) || forwarded_https(headers);
    let session_id = cookie(headers, SESSION_COOKIE).map(str::to_string);
    let session = session_id
        .as_deref()
        .and_then(|id| state.sessions.touch(id, Utc::now()));
    let here = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.uri().path()),
        None => req.uri().path().to_string(),
    };
    let mut ctx = Ctx {
        lang,
        secure,
        who: None,
        session: None,
        session_id: None,
        path: here,
    };
    // Whoever holds a live session, by its token as the store has it now.
    let who = match (&session, &session_id) {
        (Some(s), Some(id)) => match principal_by_hash(state.store(), &s.token_sha256).await {
            Ok(p) => {
                ctx.session = Some(s.clone());
                ctx.session_id = Some(id.clone());
                Some(p)
            }
            Err(ApiError::Unauthorized(why)) => {
                tracing::info!(actor = %s.name, why, "console: session ended: its token is no longer valid");
                state.sessions.close(id);
                None
            }
            Err(e) => {
                let answer = unavailable(lang, &e);
                return (answer, s.name.clone(), Some(s.role));
            }
        },
        _ => None,
    };
    ctx.who = who.clone();
    let (actor, role) = match &who {
        Some(p) => (p.name.clone(), Some(p.role)),
        None => (UNKNOWN_ACTOR.to_string(), None),
    };
    if route.rule != Rule::Anyone {
        let Some(p) = &who else {
            return (to_sign_in(&ctx), actor, role);
        };
        if let Rule::As(m, api_path) = &route.rule {
            if !api_allows(state, m, api_path, p.role) {
                let page = error_page(
                    lang,
                    StatusCode::FORBIDDEN,
                    T::ForbiddenTitle,
                    T::ForbiddenText,
                );
                return (page, actor, role);
            }
        }
    }
    if req.method() == Method::POST && route.rule != Rule::Anyone {
        // A form of this session carries its CSRF token; anything else is refused.
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, super::super::server::MAX_BODY_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                let page = error_page(
                    lang,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    T::BadRequestTitle,
                    T::CsrfText,
                );
                return (page, actor, role);
            }
        };
        let expected = ctx.csrf().to_string();
        if !form_has_token(&bytes, &expected) {
            tracing::warn!(actor = %actor, action = route.action, "console: form without this session's CSRF token refused");
            let page = error_page(lang, StatusCode::FORBIDDEN, T::CsrfTitle, T::CsrfText);
            return (page, actor, role);
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    if let Some(p) = &who {
        req.extensions_mut().insert(p.clone());
    }
    req.extensions_mut().insert(ctx);
    let response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(actor = %actor, action = route.action, "console request timed out");
            error_page(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                T::UnavailableTitle,
                T::UnavailableText,
            )
        }
    };
    // The sign-in page names who signed in.
    match response.extensions().get::<SignedInAs>() {
        Some(SignedInAs(p)) => {
            let (name, role) = (p.name.clone(), Some(p.role));
            (response, name, role)
        }
        None => (response, actor, role),
    }
}

/// Whether the API lets `role` call `method path`.
pub(crate) fn api_allows(
    state: &ApiState,
    method: &Method,
    path: &str,
    role: crate::api::Role,
) -> bool {
    match lookup(&state.routes, method, path).map(|r| r.access) {
        Some(Access::Public) => true,
        Some(Access::Roles(roles)) => roles.contains(&role),
        None => false,
    }
}

/// Whether a urlencoded form carries `expected` as its CSRF token (an empty expectation never
/// matches).
pub(crate) fn form_has_token(body: &Bytes, expected: &str) -> bool {
    if expected.is_empty() {
        return false;
    }
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) else {
        return false;
    };
    let mut tokens = pairs.iter().filter(|(k, _)| k == CSRF_FIELD);
    match (tokens.next(), tokens.next()) {
        (Some((_, v)), None) => same_secret(v, expected),
        _ => false,
    }
}

fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// 303 to the sign-in page, which comes back here after (GET pages only).
fn to_sign_in(ctx: &Ctx) -> Response {
    let next = if ctx.path.starts_with("/console/") && !ctx.path.starts_with("/console/sign-") {
        format!("?next={}", urlencode(&ctx.path))
    } else {
        String::new()
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/console/sign-in{next}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

pub(crate) fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

fn unavailable(lang: Lang, e: &ApiError) -> Response {
    tracing::error!(error = %e, "console: the store did not answer");
    error_page(
        lang,
        StatusCode::SERVICE_UNAVAILABLE,
        T::UnavailableTitle,
        T::UnavailableText,
    )
}

/// What every console answer carries: no framing, no sniffing, scripts and styles from here
/// only, nothing cached (pages show personal data), no referrer beyond the site.
fn with_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
             base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Any other path under `/console/`: an HTML 404 (nothing shown, nothing audited).
pub(crate) async fn unknown_page(headers: HeaderMap) -> Response {
    with_headers(error_page(
        Lang::of_request(&headers),
        StatusCode::NOT_FOUND,
        T::NotFoundTitle,
        T::NotFoundText,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_passes_with_exactly_its_sessions_token() {
        let ok = Bytes::from_static(b"reason=case+1&csrf=abc");
        assert!(form_has_token(&ok, "abc"));
        assert!(!form_has_token(&ok, "abd"));
        assert!(!form_has_token(&ok, ""));
        assert!(!form_has_token(&Bytes::from_static(b"reason=x"), "abc"));
        assert!(!form_has_token(&Bytes::from_static(b"csrf="), ""));
        assert!(!form_has_token(
            &Bytes::from_static(b"csrf=abc&csrf=abc"),
            "abc"
        ));
        assert_eq!(
            urlencode("/console/calls?number=5678&x=1"),
            "%2Fconsole%2Fcalls%3Fnumber%3D5678%26x%3D1"
        );
    }
}
