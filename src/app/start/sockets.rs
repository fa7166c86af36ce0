//! The sockets, bound early so that a port in use fails the start before anything else is
//! taken, but not yet read: the HTTP API's, and both SIP interfaces (UDP, TCP, TLS).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::HttpListener;
use crate::app::AppError;
use crate::config::{Config, HttpConfig};
use crate::shutdown::Shutdown;
use crate::sip::frontend::Limits;
use crate::sip::stats::SipStats;
use crate::sip::transaction::{Timers, TransactionLayer};
use crate::sip::transport::{Interface, Interfaces, Side};

/// The HTTP API's socket (`[http]`, when enabled): bound before the SIP interfaces, so that a
/// port in use or a bad certificate fails the start before the SIP ports are taken. It is
/// served once the parts exist (`Gateway::serve_api`).
pub(super) async fn bind_http(http: &HttpConfig) -> Result<Option<HttpListener>, AppError> {
    if !http.enabled {
        return Ok(None);
    }
    let addr = http.listen;
    let bound = match (&http.tls_cert, &http.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = crate::api::tls::acceptor(cert, key).await?;
            HttpListener::bind_tls(addr, tls).await
        }
        _ => HttpListener::bind(addr).await,
    };
    bound
        .map(Some)
        .map_err(|source| AppError::Http { addr, source })
}

/// The SIP side, bound but not yet read.
pub(super) struct Sip {
    pub(super) ifaces: Arc<Interfaces>,
    /// The TCP listeners of the inside and outside interfaces, for `Gateway::listen`.
    pub(super) listeners: (TcpListener, TcpListener),
    pub(super) layer: TransactionLayer,
    pub(super) stats: Arc<SipStats>,
}

/// Binds both interfaces (UDP and TCP) and starts the transaction layer's sweeper. Nothing is
/// read from the sockets until `Gateway::listen`: the B2BUA needs the bound addresses and the
/// layer, and the recovery must be over first.
pub(super) async fn bind_sip(config: &Config, shutdown: &Shutdown) -> Result<Sip, AppError> {
    let limits = Limits {
        max_message_bytes: config.sip.max_message_bytes,
        ..Limits::default()
    };
    let stats = Arc::new(SipStats::default());
    let (inside, inside_listener) =
        Interface::bind(Side::Inside, config.sip.inside, limits, stats.clone()).await?;
    let (outside, outside_listener) =
        Interface::bind(Side::Outside, config.sip.outside, limits, stats.clone()).await?;
    bind_sip_tls(&config.sip, &inside, &outside).await?;
    let ifaces = Arc::new(Interfaces { inside, outside });
    let layer = TransactionLayer::new(
        Timers::with_t1(Duration::from_millis(config.sip.t1_ms)),
        ifaces.clone(),
        config.sip.server_header.clone(),
    );
    layer.spawn_sweeper(shutdown.clone());
    Ok(Sip {
        ifaces,
        listeners: (inside_listener, outside_listener),
        layer,
        stats,
    })
}

/// `[sip] inside_tls` / `outside_tls`: the TLS listeners, with the certificate read once here.
async fn bind_sip_tls(
    sip: &crate::config::SipConfig,
    inside: &Interface,
    outside: &Interface,
) -> Result<(), AppError> {
    let (Some(cert), Some(key)) = (&sip.tls_certificate, &sip.tls_key) else {
        return Ok(());
    };
    let acceptor = crate::sip::transport::tls::acceptor(cert, key)
        .await
        .map_err(AppError::SipTls)?;
    for (iface, addr) in [(inside, sip.inside_tls), (outside, sip.outside_tls)] {
        if let Some(addr) = addr {
            let bound = iface.bind_tls(addr, acceptor.clone()).await?;
            tracing::info!(side = %iface.side(), addr = %bound, "sip tls listening");
        }
    }
    Ok(())
}
