//! Files and secrets: the API over HTTPS (rustls) with the certificate named in `[http]`, plain
//! HTTP beyond loopback refused at start, a world-writable config refused, and neither a token
//! nor SQL text in the gateway's log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::api::*;
use common::binary::harness;
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trunkguard::api::Role;
use trunkguard::config::{Config, ConfigError};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/tls")
        .join(name)
}

/// A TLS client that trusts only the test certificate.
fn client() -> tokio_rustls::TlsConnector {
    let pem = std::fs::read(testdata("cert.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTP/1.1 request over TLS; the whole response as text.
async fn https_get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = client().connect(name, tcp).await.expect("tls handshake");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // A peer closing without close_notify is an error for rustls; what was read stays.
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_api_speaks_https_with_the_configured_certificate() {
    let cert = format!("http.tls_cert = \"{}\"", testdata("cert.pem").display());
    let key = format!("http.tls_key = \"{}\"", testdata("key.pem").display());
    let h = start_gateway(&[&cert, &key]).await;
    let addr = h.gw.http_addr().unwrap();
    let officer = api_token(&h, "officer", Role::Compliance, &[]).await;

    let health = https_get(addr, "/healthz", None).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let cdrs = https_get(addr, "/api/v1/cdrs", Some(&officer)).await;
    assert!(cdrs.starts_with("HTTP/1.1 200"), "{cdrs}");
    assert!(cdrs.contains("\"items\""), "{cdrs}");
    let denied = https_get(addr, "/api/v1/cdrs", Some("tg_wrong")).await;
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut buf),
    )
    .await;
    assert!(
        !String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"),
        "plain HTTP was served on the TLS port"
    );
    h.finish().await;
}

fn config_with_http(http: &str) -> Result<Config, ConfigError> {
    Config::from_toml(&format!(
        "[sip]\ninside = \"127.0.0.1:5060\"\noutside = \"127.0.0.1:5070\"\n[http]\n{http}\n"
    ))
}

#[test]
fn plain_http_beyond_loopback_needs_an_explicit_yes() {
    let refused = config_with_http("listen = \"0.0.0.0:8080\"").unwrap_err();
    assert!(refused.to_string().contains("http.listen"), "{refused}");
    assert!(config_with_http("listen = \"0.0.0.0:8080\"\nallow_plain_remote = true").is_ok());
    assert!(config_with_http("listen = \"127.0.0.1:8080\"").is_ok());
    let tls = format!(
        "listen = \"0.0.0.0:8080\"\ntls_cert = \"{}\"\ntls_key = \"{}\"",
        testdata("cert.pem").display(),
        testdata("key.pem").display()
    );
    assert!(config_with_http(&tls).is_ok());
    let half = config_with_http("tls_cert = \"/x.pem\"").unwrap_err();
    assert!(half.to_string().contains("http.tls_key"), "{half}");
}

#[test]
fn a_world_writable_config_is_refused_by_the_binary() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trunkguard.toml");
    std::fs::write(
        &path,
        "[sip]\ninside = \"127.0.0.1:5060\"\noutside = \"127.0.0.1:5070\"\n",
    )
    .unwrap();
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_trunkguard"))
            .arg("--config")
            .arg(&path)
            .arg("check-config")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let ok = check();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let refused = check();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("writable by every user"), "{err}");
}

/// The running binary at debug level: tokens (good and bad) and SQL never reach its log; the
/// database and the recordings folder are the service user's only.
#[test]
fn tokens_and_sql_stay_out_of_the_log_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let addrs = harness::Addrs::pick();
    let db = dir.path().join("cdrs.db");
    let config = format!(
        "{}\n[recording]\ndir = \"{}/recordings\"\n",
        harness::config_toml(&addrs, &db, harness::TrunkLimits::default()),
        dir.path().display()
    );
    let mut gw = harness::Gateway::start_logging(dir.path(), &config, "debug");
    let token_out = Command::new(env!("CARGO_BIN_EXE_trunkguard"))
        .arg("--config")
        .arg(gw.config_path())
        .args([
            "token",
            "create",
            "--role",
            "compliance",
            "--name",
            "officer",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(token_out.status.success());
    let token = String::from_utf8_lossy(&token_out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("tg_"))
        .expect("a token printed")
        .to_string();
    let log = gw.log();
    let http = log
        .lines()
        .find(|l| l.contains("http api listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .expect("the API's address in the log")
        .to_string();
    let bad = "tg_0123456789abcdef-not-a-real-token";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        for t in [token.as_str(), bad] {
            let _ = client
                .get(format!("http://{http}/api/v1/cdrs?number=%2B8613800000000"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap();
        }
    });
    gw.stop().unwrap();
    let log = gw.log();
    assert!(log.contains("api request"), "debug lines expected:\n{log}");
    assert!(!log.contains(&token), "the token is in the log");
    assert!(!log.contains(bad), "a wrong token is in the log");
    let hash = &token[3..];
    assert!(!log.contains(hash), "token text in the log");
    for sql in ["SELECT ", "INSERT INTO", "UPDATE audit", "api_tokens WHERE"] {
        assert!(!log.contains(sql), "SQL ({sql}) in the log");
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&db), 0o600, "database file");
    assert_eq!(
        mode(&dir.path().join("recordings")),
        0o700,
        "recordings folder"
    );
}
