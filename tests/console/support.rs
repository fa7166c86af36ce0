//! What the console's tests share: a real gateway that carried a real call with audio (the PBX
//! plays 440 Hz — the agent, left channel —, the carrier 1 kHz — the customer, right channel —
//! for three seconds) and refused another, tokens for the three roles, and a plain HTTP client
//! that keeps cookies the way a browser does (for the tests that need no browser).

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use trunkguard::api::Role;

use crate::common::api::{api_token, wait_for_cdrs};
use crate::common::rtp::{establish_with_media, tone_packet};
use crate::common::*;

/// What the agent (PBX, left) and the customer (carrier, right) play.
pub const AGENT_HZ: f64 = 440.0;
pub const CUSTOMER_HZ: f64 = 1000.0;
/// Seconds of audio the answered call carries.
pub const TALK_SECS: u16 = 3;
/// A caller ID the trunk does not have: refused 403.
pub const STRANGER: &str = "+861099999999";

pub struct Scene {
    pub h: Harness,
    pub base: String,
    pub officer: String,
    pub carrier: String,
    pub admin: String,
    /// The answered, recorded call's id.
    pub answered: String,
    /// The refused call's id.
    pub refused: String,
    /// The recording's length as stored.
    pub recording_ms: i64,
}

/// A gateway after one answered call with audio and one refusal; tokens for each role.
pub async fn scene() -> Scene {
    scene_with(&[]).await
}

/// `scene` on a gateway started with `tweaks` (see `start_gateway`).
pub async fn scene_with(tweaks: &[&str]) -> Scene {
    let mut h = start_gateway(tweaks).await;
    let officer = api_token(&h, "officer", Role::Compliance, &[]).await;
    let carrier = api_token(&h, "acme", Role::Carrier, &[TRUNK]).await;
    let admin = api_token(&h, "root", Role::Admin, &[]).await;

    let mut m = establish_with_media(&mut h).await;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for seq in 0..TALK_SECS * 50 {
        tick.tick().await;
        m.pbx_rtp
            .send_to(&tone_packet(seq, 0x1111, AGENT_HZ), m.pbx_to)
            .await
            .expect("send");
        m.carrier_rtp
            .send_to(&tone_packet(seq, 0x2222, CUSTOMER_HZ), m.carrier_to)
            .await
            .expect("send");
    }
    h.hang_up_from_pbx(&mut m.call.pbx).await;

    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new(STRANGER, CALLEE))
        .await;
    h.pbx.expect_response(100).await;
    let refusal = h.pbx.expect_response(403).await;
    h.pbx.ack_non2xx(&invite, &refusal).await;

    wait_for_cdrs(&h, 2).await;
    let cdrs = h.gw.store().recent_cdrs(10).await.expect("cdrs");
    let answered = cdrs
        .iter()
        .find(|c| c.recording.is_some())
        .expect("the answered call");
    let refused = cdrs
        .iter()
        .find(|c| c.outcome.refusal_reason.is_some())
        .expect("the refused call");
    let recording_ms = answered.recording.as_ref().expect("recording").duration_ms;
    assert!(
        recording_ms >= i64::from(TALK_SECS) * 1000 - 200,
        "the recording holds the call's audio: {recording_ms} ms"
    );
    Scene {
        base: format!("http://{}", h.gw.http_addr().expect("the API is enabled")),
        answered: answered.attempt.id.clone(),
        refused: refused.attempt.id.clone(),
        recording_ms,
        h,
        officer,
        carrier,
        admin,
    }
}

/// An answer, its body as text.
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Location ({}): {}", self.status, self.text))
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("ascii").to_string())
            .collect()
    }

    /// The value of `<input name="csrf" value="…">` in the page.
    pub fn csrf(&self) -> String {
        let at = self
            .text
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.text));
        let rest = &self.text[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').expect("end of value")].to_string()
    }
}

/// A browser without a browser: follows no redirect, keeps cookies by name.
pub struct Client {
    base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    pub accept_language: &'static str,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
            accept_language: "en-US,en;q=0.9",
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let mut req = req.header("accept-language", self.accept_language);
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let resp = req.send().await.expect("request");
        let page = Page {
            status: resp.status(),
            headers: resp.headers().clone(),
            text: resp.text().await.expect("body"),
        };
        for c in page.set_cookies() {
            let pair = c.split(';').next().unwrap_or("");
            let (k, v) = pair.split_once('=').expect("name=value");
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    /// Signs in with `token` through the form; returns the answer to the form.
    pub async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text);
        let csrf = form.csrf();
        self.post(
            "/console/sign-in",
            &[("csrf", &csrf), ("token", token), ("next", "/console/")],
        )
        .await
    }
}
