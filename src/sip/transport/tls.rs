//! SIP over TLS (RFC 3261 §26.2, RFC 5630), with rustls: a listener per interface
//! (`[sip] inside_tls`, `outside_tls`) and connections opened to a carrier whose trunk says
//! `carrier_transport = "tls"`, its certificate verified against the trunk's CA file for its
//! name. After the handshake a TLS connection is a TCP connection to the rest of the gateway
//! (`stream`). A hostile peer's handshake can only fail: it is bounded by `HANDSHAKE_TIMEOUT`,
//! counted against the connection limit while it runs, and never reaches the handler.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::stream::{self, Liveness};
use super::{Handler, Interface, Peer, Proto};
use crate::shutdown::Shutdown;

/// Longest a TLS handshake may take, either way.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reading or using certificate, key and CA files. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate in it")]
    NoCertificate { path: PathBuf },
    #[error("{path}: not a PEM private key ({message})")]
    Key { path: PathBuf, message: String },
    #[error("{path}: a certificate in it is not a usable CA ({message})")]
    Ca { path: PathBuf, message: String },
    #[error("`{0}` is not a DNS name or IP address to verify a certificate for")]
    ServerName(String),
    #[error("certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// How to reach one TLS peer: what its certificate is verified against and for which name,
/// and the certificate we show for mutual TLS (chain and key files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClientSpec {
    pub ca_file: PathBuf,
    pub server_name: String,
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

async fn read(path: &Path) -> Result<Vec<u8>, TlsFileError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| TlsFileError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// A PEM certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
pub async fn read_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsFileError> {
    let cert_pem = read(cert).await?;
    let key_pem = read(key).await?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsFileError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsFileError::Key {
        path: key.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok((chain, key))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The acceptor of a SIP TLS listener (TLS 1.2 and 1.3; no client certificate asked: a PBX is
/// known by its address, as over UDP and TCP).
pub async fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsFileError> {
    let (chain, key) = read_identity(cert, key).await?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The connector and the name to verify for `spec`. Read at each connection, so that a
/// rotated CA or client certificate is taken without a restart.
pub async fn connector(
    spec: &TlsClientSpec,
) -> Result<(TlsConnector, ServerName<'static>), TlsFileError> {
    let name = ServerName::try_from(spec.server_name.clone())
        .map_err(|_| TlsFileError::ServerName(spec.server_name.clone()))?;
    let ca_pem = read(&spec.ca_file).await?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem).filter_map(Result::ok) {
        roots.add(cert).map_err(|e| TlsFileError::Ca {
            path: spec.ca_file.clone(),
            message: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsFileError::NoCertificate {
            path: spec.ca_file.clone(),
        });
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match &spec.client_identity {
        Some((cert, key)) => {
            let (chain, key) = read_identity(cert, key).await?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok((TlsConnector::from(Arc::new(config)), name))
}

pub(super) async fn accept_loop(
    iface: Arc<Interface>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handler: Arc<dyn Handler>,
    mut shutdown: Shutdown,
) {
    while let Some((tcp, from)) =
        stream::accept_admitted(&iface, &listener, handler.as_ref(), &mut shutdown, "tls").await
    {
        iface.handshaking.fetch_add(1, Ordering::Relaxed);
        let (iface, acceptor) = (iface.clone(), acceptor.clone());
        tokio::spawn(async move {
            let done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            iface.handshaking.fetch_sub(1, Ordering::Relaxed);
            let tls = match done {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::info!(side = %iface.side, peer = %from, error = %e, "tls handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(side = %iface.side, peer = %from, "tls handshake timed out");
                    return;
                }
            };
            let peer = Peer {
                addr: from,
                proto: Proto::Tls,
            };
            stream::register_and_serve(iface, peer, tls);
        });
    }
}

/// Open a TLS connection to `addr` (a carrier), verified as the handler says, and serve it;
/// what was queued on `rx` meanwhile goes first. A failure is logged with its cause (which
/// certificate check failed) and reported to the handler, whose requests to the peer fail now
/// rather than time out.
pub(super) async fn connect_and_serve(
    iface: Arc<Interface>,
    addr: SocketAddr,
    tx: mpsc::Sender<Bytes>,
    rx: mpsc::Receiver<Bytes>,
) {
    let peer = Peer {
        addr,
        proto: Proto::Tls,
    };
    iface.handshaking.fetch_add(1, Ordering::Relaxed);
    let result = connect(&iface, peer).await;
    iface.handshaking.fetch_sub(1, Ordering::Relaxed);
    match result {
        Ok(tls) => stream::serve(iface, peer, tls, tx, rx, Liveness::Ping),
        Err(why) => {
            tracing::warn!(side = %iface.side, %peer, error = %why, "tls connection failed");
            stream::forget(&iface, peer, &tx);
            if let Some(handler) = iface.handler.get() {
                handler.on_connect_failed(iface.side, peer, &why);
            }
        }
    }
}

async fn connect(
    iface: &Interface,
    peer: Peer,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let spec = iface
        .handler
        .get()
        .and_then(|h| h.tls_client(iface.side, peer.addr))
        .ok_or_else(|| "no TLS settings for this address (no trunk's carrier)".to_string())?;
    let (connector, name) = connector(&spec).await.map_err(|e| e.to_string())?;
    let tcp = super::tcp::connect(iface, peer)
        .await
        .ok_or_else(|| "tcp connect failed".to_string())?;
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => Ok(tls),
        // rustls says which check failed: "invalid peer certificate: UnknownIssuer",
        // "… NotValidForName", a handshake alert from the peer…
        Ok(Err(e)) => Err(format!(
            "tls handshake with {} failed: {e}",
            spec.server_name
        )),
        Err(_) => Err(format!(
            "tls handshake with {} timed out after {} s",
            spec.server_name,
            HANDSHAKE_TIMEOUT.as_secs()
        )),
    }
}
