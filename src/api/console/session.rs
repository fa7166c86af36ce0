//! Signed-in sessions: a person signs in with their API token once and gets a random session id
//! in an HttpOnly, SameSite=Strict cookie (Secure over TLS). The session lives here, in this
//! node's memory: the id's SHA-256 (never the id itself), the token's SHA-256 (asked again on
//! every request, so a revoked token ends its sessions at once), who and which role, the CSRF
//! token its forms carry, and two expiries — `MAX_AGE` from the sign-in, `IDLE` since the last
//! request. A cluster behind one name needs them in the database instead (see
//! docs/architecture.md, "The web console"); on one node a restart signs everybody out.

use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::bounded::LruMap;

/// A session ends this long after its sign-in, whatever happens.
pub const MAX_AGE: Duration = Duration::from_secs(8 * 3600);
/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// Sessions kept at once; the least recently used is dropped beyond (only a valid token makes
/// one, so this bounds a token holder signing in in a loop).
pub const MAX_SESSIONS: usize = 10_000;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tg_session";
/// The sign-in form's own CSRF cookie (double submit: the form carries the same value).
pub const SIGN_IN_COOKIE: &str = "tg_sign_in";
/// The chosen language.
pub const LANG_COOKIE: &str = "tg_lang";

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The SHA-256 of the token signed in with (as `api_tokens` stores it).
    pub token_sha256: String,
    /// The token's name (the audit log's actor).
    pub name: String,
    /// The token's role when signed in (checked again with the token on each request).
    pub role: super::super::Role,
    /// The CSRF token every state-changing form of this session carries.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl Session {
    fn expired(&self, now: DateTime<Utc>) -> bool {
        let age = now.signed_duration_since(self.created_at);
        let idle = now.signed_duration_since(self.last_seen);
        age > chrono::Duration::from_std(MAX_AGE).unwrap_or(chrono::Duration::MAX)
            || idle > chrono::Duration::from_std(IDLE).unwrap_or(chrono::Duration::MAX)
    }
}

/// This node's sessions, by the SHA-256 of their id.
pub struct Sessions {
    map: Mutex<LruMap<String, Session>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new()
    }
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions {
            map: Mutex::new(LruMap::new(MAX_SESSIONS)),
        }
    }

    /// A new session for this token; returns its id (for the cookie) and the session.
    pub fn open(
        &self,
        token_sha256: String,
        name: String,
        role: super::super::Role,
        now: DateTime<Utc>,
    ) -> (String, Session) {
        let id = random_hex();
        let session = Session {
            token_sha256,
            name,
            role,
            csrf: random_hex(),
            created_at: now,
            last_seen: now,
        };
        let mut map = self.map.lock();
        map.remove_idle(|s| s.expired(now));
        *map.get_or_insert_with(&sha256_hex(&id), || session.clone()) = session.clone();
        (id, session)
    }

    /// The live session with this id, its last use moved to `now`; an expired one is dropped.
    pub fn touch(&self, id: &str, now: DateTime<Utc>) -> Option<Session> {
        let key = sha256_hex(id);
        let mut map = self.map.lock();
        let session = map.get_mut(&key)?;
        if session.expired(now) {
            map.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Sign out: the session is gone.
    pub fn close(&self, id: &str) -> bool {
        self.map.lock().remove(&sha256_hex(id)).is_some()
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 32 bytes from the OS generator, hex.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A cookie's value in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, the whole site, `Secure` over TLS;
/// `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Role;
    use axum::http::HeaderMap;

    #[test]
    fn a_session_lives_until_idle_or_old_and_its_id_is_not_kept() {
        let sessions = Sessions::new();
        let t0 = Utc::now();
        let (id, s) = sessions.open("h".into(), "alice".into(), Role::Compliance, t0);
        assert_eq!(id.len(), 64);
        assert_ne!(s.csrf, id);
        assert!(
            !sessions.map.lock().iter().any(|(k, _)| *k == id),
            "only the id's digest is kept"
        );
        let idle = chrono::Duration::from_std(IDLE).unwrap();
        let at = t0 + idle - chrono::Duration::seconds(1);
        assert_eq!(sessions.touch(&id, at).unwrap().name, "alice");
        // Kept alive by use, until the absolute limit.
        let mut t = at;
        let max = chrono::Duration::from_std(MAX_AGE).unwrap();
        while t + idle / 2 < t0 + max {
            t += idle / 2;
            assert!(sessions.touch(&id, t).is_some(), "alive at {t}");
        }
        assert!(sessions
            .touch(&id, t0 + max + chrono::Duration::seconds(1))
            .is_none());
        assert!(sessions.is_empty(), "an expired session is dropped");

        let (id, _) = sessions.open("h".into(), "bob".into(), Role::Carrier, t0);
        assert!(sessions.touch(&id, t0 + idle + idle).is_none(), "idle");
        let (id, _) = sessions.open("h".into(), "bob".into(), Role::Carrier, t0);
        assert!(sessions.close(&id));
        assert!(sessions.touch(&id, t0).is_none(), "signed out");
        assert!(sessions.touch("nope", t0).is_none());
    }

    #[test]
    fn cookies_are_read_and_written_strictly() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; tg_session=abc ; b=".parse().unwrap());
        h.append("cookie", "tg_lang=zh".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, LANG_COOKIE), Some("zh"));
        assert_eq!(cookie(&h, "b"), None);
        assert_eq!(cookie(&h, "c"), None);
        let c = set_cookie(SESSION_COOKIE, "v", MAX_AGE, false);
        assert_eq!(
            c,
            "tg_session=v; Path=/; Max-Age=28800; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie(SESSION_COOKIE, "v", MAX_AGE, true).ends_with("; Secure"));
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
