//! The guard every route passes: find the route, authenticate the bearer token, check the role,
//! run the handler, then append one row to the audit log (refused requests too: 401 rows with
//! actor `unknown`, 403 rows with the token's name). The row is written before the response
//! leaves: a request whose row the database refuses gets 503 instead of its data.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::auth::{authenticate, UNKNOWN_ACTOR};
use super::error::ApiError;
use super::server::{lookup, path_param, Access};
use super::ApiState;
use crate::store::NewAudit;

/// Set by a handler on its response (`Response::extensions_mut`) to name the recording the
/// request concerned in the audit row's `recording` column.
#[derive(Debug, Clone)]
pub(crate) struct AuditedRecording(pub String);

/// Set by a handler whose answer concerns several calls (an evidence package): the audit log
/// gets one row per call (its id and its recording's name), instead of one for the request.
#[derive(Debug, Clone)]
pub(crate) struct AuditedCalls(pub Vec<(String, Option<String>)>);

/// The audit rows of a request: `row`, or one per call the response names (`AuditedCalls`).
pub(crate) fn rows_for(row: NewAudit, response: &Response) -> Vec<NewAudit> {
    match response.extensions().get::<AuditedCalls>() {
        Some(calls) if !calls.0.is_empty() => calls
            .0
            .iter()
            .map(|(id, recording)| NewAudit {
                call_id: Some(id.clone()),
                recording: recording.clone(),
                ..row.clone()
            })
            .collect(),
        _ => vec![row],
    }
}

/// Appends each row, in order; the first refusal stops (the request is then answered 503).
pub(crate) async fn append_rows(
    store: &crate::store::Store,
    rows: &[NewAudit],
) -> Result<(), crate::store::StoreError> {
    for row in rows {
        store.append_audit(row).await?;
    }
    Ok(())
}

/// A handler's answer (not a download's body) must be ready within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn guard(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let Some(template) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
    else {
        return ApiError::NotFound("no such resource".into()).into_response();
    };
    let Some(route) = lookup(&state.routes, &method, &template).cloned() else {
        let allowed: Vec<&str> = state
            .routes
            .iter()
            .filter(|r| r.path == template)
            .map(|r| r.method.as_str())
            .collect();
        if allowed.is_empty() {
            // A route registered without a table entry: refuse rather than serve it unguarded.
            tracing::error!(%method, path = %template, "api: route missing from the table");
            return ApiError::NotFound("no such resource".into()).into_response();
        }
        return ApiError::MethodNotAllowed(allowed.join(", ")).into_response();
    };
    let roles = match route.access {
        Access::Public => return next.run(req).await,
        Access::Roles(roles) => roles,
    };
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let call_id = path_param(&template, &path, "id");

    let (response, actor, role) = match authenticate(state.store(), req.headers()).await {
        Err(e) => (e.into_response(), UNKNOWN_ACTOR.to_string(), None),
        Ok(p) if !roles.contains(&p.role) => {
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            let e = ApiError::Forbidden(format!(
                "role {} may not {} {} (allowed: {})",
                p.role,
                method,
                template,
                allowed.join(", ")
            ));
            (e.into_response(), p.name, Some(p.role))
        }
        Ok(p) => {
            let (name, role) = (p.name.clone(), p.role);
            req.extensions_mut().insert(p);
            let response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(actor = %name, action = route.action, "api request timed out");
                    ApiError::Unavailable(format!(
                        "no answer within {} s; the outcome of a change is unknown: read it back",
                        REQUEST_TIMEOUT.as_secs()
                    ))
                    .into_response()
                }
            };
            (response, name, Some(role))
        }
    };
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
            tracing::debug!(actor = %row.actor, action = row.action, status, client = %row.client, "api request");
            response
        }
        Err(e) => {
            // Not served without its audit row; the row goes to the log instead.
            tracing::error!(
                error = %e, actor = %row.actor, role = ?row.role, method = %row.method,
                path = %row.path, query = %row.query, action = row.action,
                call_id = ?row.call_id, client = %row.client, status,
                "audit log refused a row: request answered 503"
            );
            ApiError::Unavailable("the audit log is unavailable".into()).into_response()
        }
    }
}
