//! The router, built from the route table, and the server task. The table is the one source of
//! the routes: the router is built from it, the guard authorizes and audits by it, and a test
//! checks the OpenAPI document against it.
//!
//! `server/routes.rs` holds the table (method, path, who may call it, the audit action) and its
//! lookups; `server/accept.rs` the listener and our accept loop on hyper (connection cap,
//! header-read timeout, graceful stop).

use axum::Router;

use super::{audit, error, ApiState};

mod accept;
mod routes;

pub(crate) use accept::OverTls;
pub use accept::{HttpListener, HttpServer, HEADER_READ_TIMEOUT, MAX_CONNECTIONS};
pub(crate) use routes::{lookup, path_param, RouteTable};
pub use routes::{route_table, Access, RouteSpec};

/// The largest request body read (JSON bodies are small; larger ones get 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole API: routes, the guard (authentication, roles, audit) on each, JSON 404 elsewhere.
pub fn router(state: ApiState) -> Router {
    let mut router = Router::new();
    for (spec, handler) in routes::routes() {
        router = router.route(spec.path, handler);
    }
    router
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::guard,
        ))
        // The web console: its own routes and guard (sessions, CSRF), the same audit log.
        .merge(super::console::router(state.clone()))
        .fallback(error::not_found)
        .with_state(state)
}
