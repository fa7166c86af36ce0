//! A client of the gateway's HTTP API for the integration tests: counts the audited requests it
//! makes, creates tokens, reads error bodies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use trunkguard::api::{create_token, Role};

use super::{Harness, TRUNK};

pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    /// Requests sent that the gateway audits (everything but /healthz).
    pub audited: AtomicUsize,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// A refusal: the status and the JSON error body with its code.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{}", self.text);
        assert!(body["error"]["message"].is_string(), "{}", self.text);
    }
}

impl Api {
    pub fn new(h: &Harness) -> Api {
        let addr = h.gw.http_addr().expect("the API is enabled");
        Api {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            audited: AtomicUsize::new(0),
        }
    }

    /// A request with an optional JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        if !path.starts_with("/healthz") {
            self.audited.fetch_add(1, Ordering::SeqCst);
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        Reply {
            status,
            headers,
            text,
        }
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>) -> Reply {
        self.send(method, path, token, None).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token)).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    pub fn audited(&self) -> i64 {
        self.audited.load(Ordering::SeqCst) as i64
    }
}

/// A new API token (known trunks: the harness's and `other`).
pub async fn api_token(h: &Harness, name: &str, role: Role, trunks: &[&str]) -> String {
    let trunks: Vec<String> = trunks.iter().map(|t| t.to_string()).collect();
    let known = vec![TRUNK.to_string(), "other".to_string()];
    let (token, _) = create_token(
        h.gw.store(),
        name,
        role,
        &trunks,
        &known,
        chrono::Utc::now(),
    )
    .await
    .expect("token");
    token
}

/// Wait (bounded) until the store holds `n` CDRs.
pub async fn wait_for_cdrs(h: &Harness, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let have = h.gw.store().count_cdrs().await.expect("count");
        if have >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{have} CDRs stored, waiting for {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
