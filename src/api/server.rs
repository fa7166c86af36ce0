//! The router, its route table (method, path, who may call it, the audit action) and the server
//! task. The table is the one source of the routes: the router is built from it, the guard
//! authorizes and audits by it, and a test checks the OpenAPI document against it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::auth::Role;
use super::{
    audit, audit_log, calls, cdr_export, cdrs, complaints, enforcement, error, evidence, health,
    holds, manifests, metrics, openapi, recording_pause, recordings, reports, sip_trace, trunks,
    ApiState,
};
use crate::shutdown::Shutdown;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token (`/healthz`); not audited.
    Public,
    /// A token with one of these roles; every request audited.
    Roles(&'static [Role]),
}

/// One route of the API.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    /// As axum and OpenAPI write it (`/api/v1/calls/{id}`).
    pub path: &'static str,
    pub access: Access,
    /// The audit log's name for the operation.
    pub action: &'static str,
}

const ADMIN: &[Role] = &[Role::Admin];
const COMPLIANCE: &[Role] = &[Role::Compliance];
const COMPLIANCE_CARRIER: &[Role] = &[Role::Compliance, Role::Carrier];
const CARRIER_ADMIN: &[Role] = &[Role::Carrier, Role::Admin];
const ANY_ROLE: &[Role] = &[Role::Admin, Role::Compliance, Role::Carrier];
/// PCI pause/resume: the agent's desktop, or an admin.
const AGENT_ADMIN: &[Role] = &[Role::Agent, Role::Admin];

fn spec(method: Method, path: &'static str, access: Access, action: &'static str) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
        action,
    }
}

/// Every route with its handler.
fn routes() -> Vec<(RouteSpec, MethodRouter<ApiState>)> {
    use Access::{Public, Roles};
    vec![
        (
            spec(Method::GET, "/healthz", Public, "health"),
            get(health::healthz),
        ),
        (
            spec(Method::GET, "/metrics", Roles(CARRIER_ADMIN), "metrics"),
            get(metrics::metrics),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/openapi.json",
                Roles(ANY_ROLE),
                "openapi",
            ),
            get(openapi::document),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/live",
                Roles(ADMIN),
                "calls.live",
            ),
            get(calls::live_calls),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/calls/live/{id}/hangup",
                Roles(ADMIN),
                "calls.hangup",
            ),
            post(calls::hangup),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/{id}",
                Roles(COMPLIANCE),
                "calls.get",
            ),
            get(calls::call_record),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/cdrs",
                Roles(COMPLIANCE_CARRIER),
                "cdrs.search",
            ),
            get(cdrs::search),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/reports/kpis",
                Roles(COMPLIANCE_CARRIER),
                "reports.kpis",
            ),
            get(reports::kpis),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/anomalies",
                Roles(ANY_ROLE),
                "anomalies.list",
            ),
            get(enforcement::anomalies),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/enforcement",
                Roles(ANY_ROLE),
                "enforcement.list",
            ),
            get(enforcement::enforcement),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/enforcement",
                Roles(ADMIN),
                "enforcement.impose",
            ),
            post(enforcement::impose),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/enforcement/{id}/lift",
                Roles(ADMIN),
                "enforcement.lift",
            ),
            post(enforcement::lift),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/complaints",
                Roles(COMPLIANCE_CARRIER),
                "complaints.list",
            ),
            get(complaints::list),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/complaints",
                Roles(COMPLIANCE_CARRIER),
                "complaints.file",
            ),
            post(complaints::file),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/audit",
                Roles(COMPLIANCE),
                "audit.list",
            ),
            get(audit_log::list),
        ),
        (
            spec(Method::GET, "/api/v1/trunks", Roles(ADMIN), "trunks.list"),
            get(trunks::list),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/trunks",
                Roles(ADMIN),
                "trunks.create",
            ),
            post(trunks::create),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/trunks/{name}",
                Roles(ADMIN),
                "trunks.get",
            ),
            get(trunks::get_one),
        ),
        (
            spec(
                Method::PUT,
                "/api/v1/trunks/{name}",
                Roles(ADMIN),
                "trunks.replace",
            ),
            put(trunks::replace),
        ),
        (
            spec(
                Method::DELETE,
                "/api/v1/trunks/{name}",
                Roles(ADMIN),
                "trunks.delete",
            ),
            delete(trunks::delete),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/trunks/{name}/numbers",
                Roles(ADMIN),
                "trunks.numbers.list",
            ),
            get(trunks::numbers),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/trunks/{name}/numbers",
                Roles(ADMIN),
                "trunks.numbers.add",
            ),
            post(trunks::add_number),
        ),
        (
            spec(
                Method::DELETE,
                "/api/v1/trunks/{name}/numbers/{number}",
                Roles(ADMIN),
                "trunks.numbers.remove",
            ),
            delete(trunks::remove_number),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/trunks/{name}/blocked",
                Roles(ADMIN),
                "trunks.blocked.list",
            ),
            get(trunks::blocked),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/trunks/{name}/blocked",
                Roles(ADMIN),
                "trunks.blocked.add",
            ),
            post(trunks::add_blocked),
        ),
        (
            spec(
                Method::DELETE,
                "/api/v1/trunks/{name}/blocked/{number}",
                Roles(ADMIN),
                "trunks.blocked.remove",
            ),
            delete(trunks::remove_blocked),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/cdrs/export",
                Roles(COMPLIANCE_CARRIER),
                "cdrs.export",
            ),
            get(cdr_export::export),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/{id}/recording",
                Roles(COMPLIANCE),
                "recordings.download",
            ),
            get(recordings::download),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/calls/{id}/recording/pause",
                Roles(AGENT_ADMIN),
                "recordings.pause",
            ),
            post(recording_pause::pause),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/calls/{id}/recording/resume",
                Roles(AGENT_ADMIN),
                "recordings.resume",
            ),
            post(recording_pause::resume),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/{id}/recording/verify",
                Roles(COMPLIANCE),
                "recordings.verify",
            ),
            get(recordings::verify),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/{id}/evidence",
                Roles(COMPLIANCE),
                "evidence.call",
            ),
            get(evidence::call_package),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/evidence",
                Roles(COMPLIANCE),
                "evidence.search",
            ),
            get(evidence::search_package),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/manifests/{day}",
                Roles(COMPLIANCE_CARRIER),
                "manifests.get",
            ),
            get(manifests::manifest),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/manifests/{day}/verify",
                Roles(COMPLIANCE),
                "manifests.verify",
            ),
            get(manifests::verify),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/{id}/sip",
                Roles(COMPLIANCE_CARRIER),
                "calls.sip_trace",
            ),
            get(sip_trace::sip_trace),
        ),
        (
            spec(
                Method::PUT,
                "/api/v1/calls/{id}/hold",
                Roles(COMPLIANCE),
                "holds.place",
            ),
            put(holds::place),
        ),
        (
            spec(
                Method::DELETE,
                "/api/v1/calls/{id}/hold",
                Roles(COMPLIANCE),
                "holds.release",
            ),
            delete(holds::release),
        ),
    ]
}

/// The route table (method, path, access, action), in registration order.
pub fn route_table() -> Vec<RouteSpec> {
    routes().into_iter().map(|(s, _)| s).collect()
}

/// The largest request body read (JSON bodies are small; larger ones get 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole API: routes, the guard (authentication, roles, audit) on each, JSON 404 elsewhere.
pub fn router(state: ApiState) -> Router {
    let mut router = Router::new();
    for (spec, handler) in routes() {
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

/// Whether the request came over TLS (the console marks its cookies `Secure`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverTls(pub bool);

/// The API's socket, bound before the SIP interfaces open (a busy port stops the start), and
/// its TLS configuration when `[http]` names a certificate.
pub struct HttpListener {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl HttpListener {
    /// Plain HTTP.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<HttpListener> {
        Ok(HttpListener {
            listener: TcpListener::bind(addr).await?,
            tls: None,
        })
    }

    /// HTTPS with this acceptor.
    pub async fn bind_tls(addr: SocketAddr, tls: TlsAcceptor) -> std::io::Result<HttpListener> {
        Ok(HttpListener {
            listener: TcpListener::bind(addr).await?,
            tls: Some(tls),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// The running server: stops (gracefully: requests in progress are answered) when the
/// gateway's shutdown is triggered.
pub struct HttpServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

/// How long a stop waits for requests in progress.
const STOP_LIMIT: Duration = Duration::from_secs(5);
/// Connections open at once; more are closed at accept (a client holding many idle sockets
/// cannot starve the others of file descriptors).
pub const MAX_CONNECTIONS: usize = 256;
/// A request's head must arrive within this (slow-loris clients are dropped).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl HttpServer {
    pub fn start(listener: HttpListener, state: ApiState, shutdown: Shutdown) -> HttpServer {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let app = router(state);
        let task = tokio::spawn(serve(listener.listener, listener.tls, app, shutdown, addr));
        tracing::info!(%addr, "http api listening");
        HttpServer { addr, task }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Wait (bounded) for the server to finish after the shutdown was triggered.
    pub async fn join(self) {
        let abort = self.task.abort_handle();
        if tokio::time::timeout(STOP_LIMIT, self.task).await.is_err() {
            tracing::warn!(addr = %self.addr, "http api: requests still open at the stop limit; closed");
            abort.abort();
        }
    }
}

/// The accept loop: HTTP/1.1 connections, each its own task, at most `MAX_CONNECTIONS` at once;
/// on shutdown stops accepting and lets each connection finish its request in progress.
async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    mut shutdown: Shutdown,
    addr: SocketAddr,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.recv() => break,
            accepted = listener.accept() => accepted,
        };
        // Reap finished connections so the set stays as small as the open ones.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(%addr, error = %e, "http api: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%addr, %peer, limit = MAX_CONNECTIONS, "http api: connection limit reached; closed");
            drop(stream);
            continue;
        };
        let app = app.clone();
        let stop = stop_rx.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => serve_connection(stream, peer, false, app, stop).await,
                Some(tls) => {
                    // The handshake is bounded like a request head.
                    match tokio::time::timeout(HEADER_READ_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(stream, peer, true, app, stop).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "http api: tls handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "http api: tls handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    tracing::info!(%addr, "http api stopped");
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    tls: bool,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let service = app.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(OverTls(tls));
        req.map(axum::body::Body::new)
    });
    let service = hyper_util::service::TowerToHyperService::new(service);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => {
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "http api: connection ended with an error");
            }
            return;
        }
        _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "http api: connection ended with an error");
    }
}

/// The route matching a request (HEAD is served by GET routes).
pub(crate) fn lookup<'a>(
    table: &'a [RouteSpec],
    method: &Method,
    path: &str,
) -> Option<&'a RouteSpec> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    table.iter().find(|r| r.path == path && r.method == *method)
}

/// The value of `{name}` in `path` under the route `template` (segments aligned).
pub(crate) fn path_param(template: &str, path: &str, name: &str) -> Option<String> {
    let want = format!("{{{name}}}");
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| *t == want)
        .map(|(_, v)| v.to_string())
}

pub(crate) type RouteTable = Arc<Vec<RouteSpec>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_unique_and_params_align() {
        let table = route_table();
        for (i, a) in table.iter().enumerate() {
            for b in &table[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
        assert_eq!(
            path_param("/api/v1/calls/{id}", "/api/v1/calls/abc", "id").as_deref(),
            Some("abc")
        );
        assert_eq!(path_param("/api/v1/cdrs", "/api/v1/cdrs", "id"), None);
        assert!(lookup(&table, &Method::HEAD, "/api/v1/cdrs").is_some());
        assert!(lookup(&table, &Method::DELETE, "/api/v1/cdrs").is_none());
    }
}
