//! HTTPS for the API: the certificate chain and key from `[http] tls_cert` / `tls_key` (PEM),
//! served with rustls (TLS 1.2 and 1.3, ring). Read once at start, by the same code as SIP's
//! TLS listeners (`sip::transport::tls`).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

/// What reading the files or building the configuration failed on; each message names the file.
pub use crate::sip::transport::TlsFileError as TlsError;

/// The acceptor for `cert` (chain, leaf first) and `key` (PKCS#8, PKCS#1 or SEC1).
pub async fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let (chain, key) = crate::sip::transport::tls::read_identity(cert, key).await?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
