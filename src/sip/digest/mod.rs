//! HTTP Digest authentication as a SIP client (RFC 3261 §22.2–22.4, RFC 7616, RFC 8760):
//! reading a carrier's challenge (`WWW-Authenticate` in a 401, `Proxy-Authenticate` in a 407)
//! and writing the `Authorization` / `Proxy-Authorization` that answers it.
//!
//! Algorithms MD5, SHA-256 and SHA-512-256, each with its `-sess` variant; `qop=auth` (preferred)
//! and `qop=auth-int`; no qop (RFC 2069 style) for old servers; `userhash` (RFC 7616 §3.4.4);
//! `opaque` echoed. The hashes are the `md-5` and `sha2` crates; the computation is a few lines
//! and is checked against the RFCs' own examples (`tests.rs`). The header parser
//! (`challenge.rs`) takes hostile input: it is total and bounded.
//!
//! Which challenge to answer, when a response carries several: the first one (header order,
//! RFC 8760 §2.4: "the topmost header field value that it supports") whose realm is the one
//! configured, if one is.

mod challenge;
#[cfg(test)]
mod tests;

use md5::Md5;
use rsip::headers::UntypedHeader;
use sha2::{Sha256, Sha512_256};

/// Which pair of headers: a 401's (`WWW-Authenticate` → `Authorization`) or a 407's
/// (`Proxy-Authenticate` → `Proxy-Authorization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Www,
    Proxy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    /// The algorithm a challenge names (case-insensitive); None for one we do not support.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        let all = [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ];
        all.into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    fn sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// H(data) as lowercase hex (RFC 7616 §3.4).
    fn hash(self, parts: &[&[u8]]) -> String {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            hex::encode(d.finalize())
        }
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => run::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => run::<Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => run::<Sha512_256>(parts),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    Auth,
    AuthInt,
}

impl Qop {
    fn name(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// A Digest challenge we can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub kind: Kind,
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The quality of protection we will use (`auth` when offered); None: the challenge
    /// offered none (RFC 2069 compatibility).
    pub qop: Option<Qop>,
    /// `stale=true`: our previous credentials were right but the nonce had expired.
    pub stale: bool,
    pub userhash: bool,
}

/// Every Digest challenge of a 401 or 407 we can answer, in header order.
pub fn challenges(resp: &rsip::Response) -> Vec<Challenge> {
    let mut out = Vec::new();
    for h in resp.headers.iter() {
        let (kind, value) = match h {
            rsip::Header::WwwAuthenticate(v) => (Kind::Www, v.value()),
            rsip::Header::ProxyAuthenticate(v) => (Kind::Proxy, v.value()),
            rsip::Header::Other(name, v) if name.eq_ignore_ascii_case("WWW-Authenticate") => {
                (Kind::Www, v.as_str())
            }
            rsip::Header::Other(name, v) if name.eq_ignore_ascii_case("Proxy-Authenticate") => {
                (Kind::Proxy, v.as_str())
            }
            _ => continue,
        };
        out.extend(challenge::parse(kind, value));
    }
    out
}

/// The challenge to answer: the first one, of the realm `only_realm` when set.
pub fn pick(challenges: &[Challenge], only_realm: Option<&str>) -> Option<Challenge> {
    challenges
        .iter()
        .find(|c| only_realm.is_none_or(|r| r == c.realm))
        .cloned()
}

/// What the answer covers besides the challenge: who, the request, and our nonce.
pub struct Request<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    /// The digest-uri: the Request-URI as sent.
    pub uri: &'a str,
    /// The body (for `qop=auth-int`).
    pub body: &'a [u8],
    pub cnonce: &'a str,
    /// The nonce count: how many requests this nonce has answered, this one included.
    pub nc: u32,
}

/// The `response` value (RFC 7616 §3.4.1).
pub fn response(ch: &Challenge, r: &Request<'_>) -> String {
    let alg = ch.algorithm;
    let mut ha1 = alg.hash(&[
        r.username.as_bytes(),
        ch.realm.as_bytes(),
        r.password.as_bytes(),
    ]);
    if alg.sess() {
        ha1 = alg.hash(&[ha1.as_bytes(), ch.nonce.as_bytes(), r.cnonce.as_bytes()]);
    }
    let ha2 = match ch.qop {
        Some(Qop::AuthInt) => {
            let body = alg.hash(&[r.body]);
            alg.hash(&[r.method.as_bytes(), r.uri.as_bytes(), body.as_bytes()])
        }
        _ => alg.hash(&[r.method.as_bytes(), r.uri.as_bytes()]),
    };
    match ch.qop {
        Some(qop) => alg.hash(&[
            ha1.as_bytes(),
            ch.nonce.as_bytes(),
            format!("{:08x}", r.nc).as_bytes(),
            r.cnonce.as_bytes(),
            qop.name().as_bytes(),
            ha2.as_bytes(),
        ]),
        None => alg.hash(&[ha1.as_bytes(), ch.nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// `"value"` with `"` and `\` escaped (RFC 3261 §25.1 quoted-pair).
fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The credentials' header value answering `ch` (RFC 3261 §22.4 / RFC 7616 §3.4).
pub fn credentials(ch: &Challenge, r: &Request<'_>) -> String {
    let username = if ch.userhash {
        ch.algorithm
            .hash(&[r.username.as_bytes(), ch.realm.as_bytes()])
    } else {
        r.username.to_string()
    };
    let mut v = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{}\", algorithm={}",
        quote(&username),
        quote(&ch.realm),
        quote(&ch.nonce),
        quote(r.uri),
        response(ch, r),
        ch.algorithm.name(),
    );
    if let Some(qop) = ch.qop {
        v.push_str(&format!(
            ", qop={}, nc={:08x}, cnonce={}",
            qop.name(),
            r.nc,
            quote(r.cnonce)
        ));
    }
    if let Some(opaque) = &ch.opaque {
        v.push_str(&format!(", opaque={}", quote(opaque)));
    }
    if ch.userhash {
        v.push_str(", userhash=true");
    }
    v
}

/// The header carrying `value`: `Authorization` for a 401's challenge, `Proxy-Authorization`
/// for a 407's.
pub fn header(kind: Kind, value: String) -> rsip::Header {
    match kind {
        Kind::Www => rsip::Header::Authorization(rsip::headers::Authorization::new(value)),
        Kind::Proxy => {
            rsip::Header::ProxyAuthorization(rsip::headers::ProxyAuthorization::new(value))
        }
    }
}

/// Whether `h` carries credentials (either kind): removed before new ones are added.
pub fn is_credentials(h: &rsip::Header) -> bool {
    match h {
        rsip::Header::Authorization(_) | rsip::Header::ProxyAuthorization(_) => true,
        rsip::Header::Other(name, _) => {
            name.eq_ignore_ascii_case("Authorization")
                || name.eq_ignore_ascii_case("Proxy-Authorization")
        }
        _ => false,
    }
}

/// A fresh client nonce: 16 random alphanumerics.
pub fn new_cnonce() -> String {
    crate::sip::message::random_token(16)
}
