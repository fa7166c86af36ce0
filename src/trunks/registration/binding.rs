//! One trunk's registration (RFC 3261 §10.2): REGISTER at start, the Digest challenge
//! answered, the registrar's grant followed, a refresh at half of it, capped exponential
//! backoff after a failure, and `Expires: 0` when it stops. One Call-ID and a rising CSeq for
//! all of its REGISTERs (§10.2: "SHOULD use the same Call-ID").

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method};
use tokio::sync::{mpsc, watch};

use crate::config::{Credentials, Registration};
use crate::policy::Registrations;
use crate::sip::digest;
use crate::sip::message;
use crate::sip::transaction::{ClientEvent, ClientEventKind, TransactionLayer};
use crate::sip::transport::{Peer, Side};

/// First wait after a failure; doubled after each until `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Challenges answered per REGISTER: one, more only for a stale nonce.
const MAX_CHALLENGES: u8 = 3;
/// Longest wait for the registrar's answer to the un-REGISTER at a stop.
pub(super) const UNREGISTER_WAIT: Duration = Duration::from_secs(3);
/// A registrar granting more than a day is taken at a day.
const MAX_GRANT: u32 = 86_400;

/// What the registration of one trunk needs.
pub(super) struct Binding {
    pub trunk: String,
    pub reg: Registration,
    pub creds: Option<Arc<Credentials>>,
    pub peer: Peer,
    /// Our outside interface address (Via, Contact).
    pub local: SocketAddr,
    pub layer: TransactionLayer,
    pub state: Arc<Registrations>,
}

/// Why one REGISTER exchange failed.
struct Failed {
    status: Option<u16>,
    why: String,
}

/// The running binding's identifiers.
struct Session {
    call_id: String,
    from_tag: String,
    cseq: u32,
    events_tx: mpsc::Sender<Box<ClientEvent>>,
    events: mpsc::Receiver<Box<ClientEvent>>,
}

impl Binding {
    /// Register and refresh until `stop` turns true (or its sender goes), then unregister.
    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        let (events_tx, events) = mpsc::channel(16);
        let mut s = Session {
            call_id: message::random_token(24),
            from_tag: message::random_token(12),
            cseq: 0,
            events_tx,
            events,
        };
        self.state.track(&self.trunk);
        let mut backoff = BACKOFF_MIN;
        let mut registered = false;
        loop {
            let outcome = tokio::select! {
                o = self.register(&mut s, self.reg.expires) => o,
                _ = stopped(&mut stop) => break,
            };
            let wait = match outcome {
                Ok(granted) => {
                    registered = true;
                    backoff = BACKOFF_MIN;
                    // Half the grant: one refresh may fail and be retried before it expires.
                    Duration::from_millis(u64::from(granted) * 500).max(Duration::from_millis(500))
                }
                Err(f) => {
                    tracing::warn!(trunk = %self.trunk, status = ?f.status, why = %f.why, retry_secs = backoff.as_secs(), "registration failed");
                    self.state.failed(&self.trunk, f.status, f.why, Utc::now());
                    let wait = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped(&mut stop) => break,
            }
        }
        if registered {
            match tokio::time::timeout(UNREGISTER_WAIT, self.register(&mut s, 0)).await {
                Ok(Ok(_)) => tracing::info!(trunk = %self.trunk, "unregistered"),
                Ok(Err(f)) => {
                    tracing::warn!(trunk = %self.trunk, status = ?f.status, why = %f.why, "unregister failed")
                }
                Err(_) => tracing::warn!(trunk = %self.trunk, "no answer to the unregister"),
            }
        }
        self.state.unregistered(&self.trunk);
    }

    /// One REGISTER asking for `expires` seconds (0: remove the binding), its challenges
    /// answered: the seconds granted.
    async fn register(&self, s: &mut Session, expires: u32) -> Result<u32, Failed> {
        let mut expires = expires;
        let mut credentials: Option<Header> = None;
        let mut challenges = 0u8;
        let mut too_brief = false;
        loop {
            s.cseq = s.cseq.wrapping_add(1);
            let req = self.request(s, expires, credentials.take());
            let Some(key) =
                self.layer
                    .send_request(Side::Outside, self.peer, req.clone(), s.events_tx.clone())
            else {
                return Err(failed(None, "the REGISTER could not be sent"));
            };
            let resp = loop {
                match s.events.recv().await {
                    Some(ev) if ev.key == key => match ev.kind {
                        ClientEventKind::Response(r) if r.status_code.code() >= 200 => break r,
                        ClientEventKind::Response(_) => continue,
                        ClientEventKind::Timeout => {
                            return Err(failed(None, "no answer from the registrar"))
                        }
                        ClientEventKind::TransportFailed(why) => {
                            let why = format!("no connection to the registrar: {why}");
                            return Err(failed(None, &why));
                        }
                    },
                    // An answer to an earlier REGISTER (retransmitted 2xx, a late final).
                    Some(_) => continue,
                    None => return Err(failed(None, "the transaction layer is gone")),
                }
            };
            let code = resp.status_code.code();
            match code {
                200..=299 => {
                    let granted = granted(&resp, &self.local, expires);
                    if expires > 0 {
                        let now = Utc::now();
                        let until = now + chrono::Duration::seconds(i64::from(granted));
                        self.state.succeeded(&self.trunk, code, now, until);
                        tracing::info!(trunk = %self.trunk, expires = granted, "registered");
                    }
                    return Ok(granted);
                }
                401 | 407 => {
                    let Some(creds) = &self.creds else {
                        return Err(failed(
                            Some(code),
                            "challenged, and the trunk has no credentials",
                        ));
                    };
                    let all = digest::challenges(&resp);
                    let Some(ch) = digest::pick(&all, creds.realm.as_deref()) else {
                        return Err(failed(Some(code), "no challenge the trunk can answer"));
                    };
                    if challenges > 0 && !(ch.stale && challenges < MAX_CHALLENGES) {
                        return Err(failed(Some(code), "credentials refused"));
                    }
                    challenges += 1;
                    let uri = req.uri.to_string();
                    let cnonce = digest::new_cnonce();
                    let value = digest::credentials(
                        &ch,
                        &digest::Request {
                            username: &creds.username,
                            password: creds.password.expose(),
                            method: "REGISTER",
                            uri: &uri,
                            body: &[],
                            cnonce: &cnonce,
                            nc: 1,
                        },
                    );
                    credentials = Some(digest::header(ch.kind, value));
                }
                // §10.2.8: the registrar wants a longer registration; ask once more.
                423 if !too_brief && expires > 0 => {
                    too_brief = true;
                    let min = resp.headers.iter().find_map(|h| match h {
                        Header::MinExpires(m) => m.value().trim().parse::<u32>().ok(),
                        _ => None,
                    });
                    match min {
                        Some(m) if m > expires && m <= MAX_GRANT => expires = m,
                        _ => return Err(failed(Some(code), "423 without a usable Min-Expires")),
                    }
                }
                _ => {
                    let (_, reason) = message::status_parts(&resp.status_code);
                    return Err(failed(Some(code), &format!("{code} {reason}")));
                }
            }
        }
    }

    fn request(&self, s: &Session, expires: u32, credentials: Option<Header>) -> rsip::Request {
        let branch = message::new_branch();
        let contact_user = self
            .reg
            .aor
            .split_once(':')
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(user, _)| user)
            .unwrap_or("trunkguard");
        let mut h = Headers::default();
        h.push(Header::Via(rsip::headers::Via::new(format!(
            "SIP/2.0/{} {};branch={};rport",
            self.peer.proto.via_name(),
            self.local,
            branch
        ))));
        h.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        h.push(Header::From(rsip::headers::From::new(format!(
            "<{}>;tag={}",
            self.reg.aor, s.from_tag
        ))));
        h.push(Header::To(rsip::headers::To::new(format!(
            "<{}>",
            self.reg.aor
        ))));
        h.push(Header::CallId(rsip::headers::CallId::new(
            s.call_id.clone(),
        )));
        h.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{} REGISTER",
            s.cseq
        ))));
        let transport = match self.peer.proto {
            crate::sip::transport::Proto::Udp => "",
            crate::sip::transport::Proto::Tcp => ";transport=tcp",
            crate::sip::transport::Proto::Tls => ";transport=tls",
        };
        h.push(Header::Contact(rsip::headers::Contact::new(format!(
            "<sip:{contact_user}@{}{transport}>",
            self.local
        ))));
        h.push(Header::Expires(rsip::headers::Expires::new(
            expires.to_string(),
        )));
        if let Some(c) = credentials {
            h.push(c);
        }
        let uri =
            rsip::Uri::try_from(self.reg.request_uri.as_str()).unwrap_or_else(|_| rsip::Uri {
                scheme: Some(rsip::Scheme::Sip),
                host_with_port: rsip::HostWithPort::from(self.peer.addr),
                ..Default::default()
            });
        rsip::Request {
            method: Method::Register,
            uri,
            version: rsip::Version::V2,
            headers: h,
            body: Vec::new(),
        }
    }
}

fn failed(status: Option<u16>, why: &str) -> Failed {
    Failed {
        status,
        why: why.to_string(),
    }
}

/// Resolves once `stop` says stop (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

/// The seconds the registrar granted our binding: the `expires` parameter of our Contact in
/// its 2xx, else its `Expires` header, else what we asked (§10.2.4); at most a day.
fn granted(resp: &rsip::Response, local: &SocketAddr, asked: u32) -> u32 {
    let ours = local.to_string();
    let from_contact = resp
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Contact(c) => Some(c.value()),
            _ => None,
        })
        .flat_map(message::split_list)
        .filter(|c| c.contains(&ours))
        .find_map(|c| expires_param(&c));
    let from_header = || {
        resp.headers.iter().find_map(|h| match h {
            Header::Expires(e) => e.value().trim().parse::<u32>().ok(),
            _ => None,
        })
    };
    from_contact
        .or_else(from_header)
        .unwrap_or(asked)
        .min(MAX_GRANT)
}

/// `;expires=N` of a Contact value, outside its `<…>`.
fn expires_param(contact: &str) -> Option<u32> {
    let params = match contact.rfind('>') {
        Some(i) => contact.get(i + 1..)?,
        None => contact,
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("expires")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(extra: &str) -> rsip::Response {
        let raw = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKx\r\n\
             From: <sip:gw@r>;tag=1\r\nTo: <sip:gw@r>;tag=2\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        );
        match rsip::SipMessage::try_from(raw.as_str()).unwrap() {
            rsip::SipMessage::Response(r) => r,
            _ => panic!("not a response"),
        }
    }

    #[test]
    fn grant_follows_our_contact_then_expires_then_the_ask() {
        let local: SocketAddr = "192.0.2.1:5070".parse().unwrap();
        let r = response(
            "Contact: <sip:other@198.51.100.9:5060>;expires=999, <sip:gw@192.0.2.1:5070>;expires=120\r\nExpires: 60\r\n",
        );
        assert_eq!(granted(&r, &local, 3600), 120);
        assert_eq!(granted(&response("Expires: 60\r\n"), &local, 3600), 60);
        assert_eq!(granted(&response(""), &local, 3600), 3600);
        assert_eq!(
            granted(&response("Expires: 999999\r\n"), &local, 3600),
            MAX_GRANT
        );
        assert_eq!(
            expires_param("<sip:a@b;expires=5>"),
            None,
            "a URI parameter is not it"
        );
    }
}
