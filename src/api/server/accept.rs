//! The API's socket and the server task: our own accept loop on hyper, at most
//! `MAX_CONNECTIONS` connections at once, a request head within `HEADER_READ_TIMEOUT` (and a TLS
//! handshake too), and on shutdown each connection's request in progress answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::router;
use crate::api::ApiState;
use crate::shutdown::Shutdown;

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
