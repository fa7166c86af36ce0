//! TLS for the SIPp tests (Debian's SIPp has none): certificates made with the `openssl`
//! command, and the two rustls relays that put TLS between SIPp (speaking TCP) and the gateway.
#![allow(dead_code)]

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::harness::{INSIDE_IP, OUTSIDE_IP, PBX_IP};

/// The name on the carrier's certificate, and the trunk's `tls_server_name`.
pub const CARRIER_NAME: &str = "carrier.test";

pub fn openssl(dir: &Path, a: &[&str]) {
    let out = Command::new("openssl")
        .args(a)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {a:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA `name` (`name.pem`, `name.key`) in `dir`.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (pem, key, subj) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("/CN={name}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(pem)
}

/// A leaf certificate `name` for `san` (`IP:…`, `DNS:…`) signed by CA `ca`: (chain, key).
pub fn make_leaf(dir: &Path, ca: &str, name: &str, san: &str) -> (PathBuf, PathBuf) {
    let (pem, key, csr, ext) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    fs::write(
        dir.join(&ext),
        format!(
            "subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
    (dir.join(pem), dir.join(key))
}

/// The test's certificates.
pub struct Certs {
    pub ca: PathBuf,
    pub gateway: (PathBuf, PathBuf),
    pub carrier: (PathBuf, PathBuf),
    /// The right CA, another name.
    pub wrong_name: (PathBuf, PathBuf),
    /// The carrier's name, signed by a CA the trunk does not trust.
    pub rogue: (PathBuf, PathBuf),
}

pub fn make_certs(dir: &Path) -> Certs {
    let dir = dir.join("tls");
    fs::create_dir_all(&dir).unwrap();
    let ca = make_ca(&dir, "ca");
    make_ca(&dir, "rogue-ca");
    Certs {
        ca,
        gateway: make_leaf(
            &dir,
            "ca",
            "gateway",
            &format!("IP:{INSIDE_IP},IP:{OUTSIDE_IP}"),
        ),
        carrier: make_leaf(&dir, "ca", "carrier", &format!("DNS:{CARRIER_NAME}")),
        wrong_name: make_leaf(&dir, "ca", "elsewhere", "DNS:elsewhere.test"),
        rogue: make_leaf(&dir, "rogue-ca", "rogue", &format!("DNS:{CARRIER_NAME}")),
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client trusting only the test CA (the PBX's side).
pub fn connector(ca: &Path) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// A TLS server with `identity` (the carrier's side).
pub fn acceptor(identity: &(PathBuf, PathBuf)) -> TlsAcceptor {
    server(identity, None)
}

/// A TLS server with `identity` that wants a client certificate signed by `client_ca` (mutual
/// TLS), or none.
pub fn server((cert, key): &(PathBuf, PathBuf), client_ca: Option<&Path>) -> TlsAcceptor {
    let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).unwrap() {
                roots.add(cert.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.into(),
                provider(),
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key).unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// A TCP connection to `to` from an address on `from` (the trunk knows the PBX by its IP).
pub async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.into(), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// The PBX side's relay: SIPp's TCP connections to `listener` each become a TLS connection
/// from the PBX's address to the gateway's `inside_tls`, verified for the gateway's address.
pub async fn pbx_relay(listener: TcpListener, gateway: SocketAddr, tls: TlsConnector) {
    loop {
        let Ok((mut plain, _)) = listener.accept().await else {
            return;
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let tcp = connect_from(PBX_IP, gateway).await;
            let name = ServerName::IpAddress(gateway.ip().into());
            let mut secure = tls
                .connect(name, tcp)
                .await
                .expect("the gateway's certificate");
            let _ = tokio::io::copy_bidirectional(&mut plain, &mut secure).await;
        });
    }
}

/// The carrier side's relay: TLS connections from the gateway to `listener` (served with the
/// certificate of `tls`) each relayed to SIPp's UAS over TCP; with no `sipp`, the handshake is
/// all there is (a carrier the gateway must refuse).
pub async fn carrier_relay(listener: TcpListener, tls: TlsAcceptor, sipp: Option<SocketAddr>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let Ok(mut secure) = tls.accept(tcp).await else {
                return; // the gateway refused our certificate: what the test wants to see
            };
            if let Some(sipp) = sipp {
                let mut plain = TcpStream::connect(sipp).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut secure, &mut plain).await;
            }
        });
    }
}
