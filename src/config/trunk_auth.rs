//! A trunk's credentials toward its carrier and its registration (`[[trunks]] auth_*`,
//! `register*`): the password type that never prints, the credentials the B2BUA answers
//! challenges with, the password file read at load, and the keys' validation.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;

use super::{ConfigError, TrunkConfig};

/// A password: readable only through [`Secret::expose`]; `Debug` and `Display` print a mask,
/// so that no log line, error or debug dump of a config carries it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a trunk answers a carrier's Digest challenge with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    /// Answer only this realm's challenges (`auth_realm`); None: any realm.
    pub realm: Option<String>,
}

/// Default `register_expires`: an hour, as most registrars grant.
pub(super) fn default_register_expires() -> u32 {
    3600
}

/// What `register_uri` must look like (the API's schema says the same): `sip:` or `sips:`, a
/// user of unreserved characters, `@`, a host name or IPv4 address. No parameters, no port: an
/// address of record names a user at a domain.
pub const REGISTER_URI_PATTERN: &str = "^sips?:[A-Za-z0-9_.!~*'()%+-]+@[A-Za-z0-9.-]+$";

fn register_uri_ok(uri: &str) -> bool {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"));
    let Some((user, host)) = rest.and_then(|r| r.split_once('@')) else {
        return false;
    };
    let user_ok = |c: char| c.is_ascii_alphanumeric() || "_.!~*'()%+-".contains(c);
    let host_ok = |c: char| c.is_ascii_alphanumeric() || ".-".contains(c);
    !user.is_empty() && !host.is_empty() && user.chars().all(user_ok) && host.chars().all(host_ok)
}

/// Longest `register_expires`: a day. Shortest: one second (tests use a few).
const MAX_REGISTER_EXPIRES: u32 = 86_400;
/// A password file is a line of text, not a document.
const MAX_PASSWORD_FILE: u64 = 4096;

/// Where a trunk registers, resolved from its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Where the REGISTER goes: `registrar`, else the first carrier address.
    pub registrar: SocketAddr,
    /// The address of record (To and From): `register_uri`, else `sip:USER@REGISTRAR-IP` with
    /// the auth username (or the trunk's first number).
    pub aor: String,
    /// The Request-URI: the AOR's domain (RFC 3261 §10.2: no user part).
    pub request_uri: String,
    pub expires: u32,
}

impl TrunkConfig {
    /// The credentials to answer challenges with; None without `auth_username` (the trunk does
    /// not authenticate: a challenge then ends the call `carrier_auth_failed`).
    pub fn credentials(&self) -> Option<Arc<Credentials>> {
        let username = self.auth_username.clone()?;
        let password = self
            .auth_password
            .clone()
            .or_else(|| self.password_from_file.clone())?;
        Some(Arc::new(Credentials {
            username,
            password,
            realm: self.auth_realm.clone(),
        }))
    }

    /// The registration this trunk keeps; None unless `register = true`.
    pub fn registration(&self) -> Option<Registration> {
        if !self.register {
            return None;
        }
        let registrar = self.registrar.or_else(|| self.carrier.first().copied())?;
        let aor = match &self.register_uri {
            Some(uri) => uri.clone(),
            None => {
                let user = self
                    .auth_username
                    .clone()
                    .or_else(|| self.numbers.first().cloned())
                    .unwrap_or_default();
                format!("sip:{user}@{}", registrar.ip())
            }
        };
        let domain = aor
            .split_once('@')
            .map(|(_, host)| host)
            .unwrap_or_else(|| aor.trim_start_matches("sip:"));
        let domain = domain.split(';').next().unwrap_or(domain);
        Some(Registration {
            registrar,
            request_uri: format!("sip:{domain}"),
            aor,
            expires: self.register_expires,
        })
    }

    /// Reads `auth_password_file` (blocking: at load, or in `spawn_blocking`). The file holds
    /// the password on its first line; a trailing newline is not part of it.
    pub(super) fn load_password_file(&mut self, key: &str) -> Result<(), ConfigError> {
        let Some(path) = &self.auth_password_file else {
            self.password_from_file = None;
            return Ok(());
        };
        let key = format!("{key}.auth_password_file");
        let why = |e: std::io::Error| {
            ConfigError::invalid(&key, format!("cannot read {}: {e}", path.display()))
        };
        let len = std::fs::metadata(path).map_err(why)?.len();
        if len > MAX_PASSWORD_FILE {
            return Err(ConfigError::invalid(
                &key,
                format!("{} is over {MAX_PASSWORD_FILE} bytes", path.display()),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(why)?;
        let password = text.lines().next().unwrap_or_default().to_string();
        if password.is_empty() {
            return Err(ConfigError::invalid(
                &key,
                format!("{} holds no password", path.display()),
            ));
        }
        self.password_from_file = Some(Secret(password));
        Ok(())
    }

    /// The auth and registration keys of trunk `key` (`trunks[i]`).
    pub(super) fn validate_auth(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        // Whatever is echoed into a header must not end it.
        let header_safe =
            |v: &str| !v.is_empty() && v.chars().count() <= 256 && !v.chars().any(char::is_control);
        if let Some(user) = &self.auth_username {
            if !header_safe(user) {
                return Err(ConfigError::invalid(
                    k("auth_username"),
                    "must be 1..=256 characters without CR, LF or other control",
                ));
            }
        }
        if let Some(realm) = &self.auth_realm {
            if !header_safe(realm) {
                return Err(ConfigError::invalid(
                    k("auth_realm"),
                    "must be 1..=256 characters without CR, LF or other control",
                ));
            }
        }
        if self.auth_password.is_some() && self.auth_password_file.is_some() {
            return Err(ConfigError::invalid(
                k("auth_password_file"),
                "auth_password and auth_password_file exclude each other",
            ));
        }
        if self.auth_password.as_ref().is_some_and(|p| p.0.is_empty()) {
            return Err(ConfigError::invalid(
                k("auth_password"),
                "must not be empty",
            ));
        }
        let has_password = self.auth_password.is_some() || self.auth_password_file.is_some();
        if self.auth_username.is_some() != has_password {
            return Err(ConfigError::invalid(
                k("auth_username"),
                "auth_username goes with auth_password or auth_password_file",
            ));
        }
        if self.auth_realm.is_some() && self.auth_username.is_none() {
            return Err(ConfigError::invalid(
                k("auth_realm"),
                "needs auth_username and a password",
            ));
        }
        if !(1..=MAX_REGISTER_EXPIRES).contains(&self.register_expires) {
            return Err(ConfigError::invalid(
                k("register_expires"),
                format!("must be 1..={MAX_REGISTER_EXPIRES} seconds"),
            ));
        }
        if let Some(uri) = &self.register_uri {
            let ok = register_uri_ok(uri) && uri.len() <= 256;
            if !ok {
                return Err(ConfigError::invalid(
                    k("register_uri"),
                    "must be a sip: URI with a user part (the address of record)",
                ));
            }
        }
        if self.register && self.register_uri.is_none() && self.auth_username.is_none() {
            return Err(ConfigError::invalid(
                k("register"),
                "needs register_uri or auth_username (the user to register)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = r#"
[sip]
inside = "127.0.0.1:5060"
outside = "127.0.0.1:5070"

[[trunks]]
name = "demo"
pbx = ["127.0.0.1/32"]
carrier = "192.0.2.7:5080"
inbound_to = "127.0.0.1:5090"
numbers = ["+861012345678"]
"#;

    fn with(extra: &str) -> Result<Config, String> {
        Config::from_toml(&format!("{BASE}{extra}")).map_err(|e| e.to_string())
    }

    #[test]
    fn credentials_never_print() {
        let c = with("auth_username = \"gw\"\nauth_password = \"s3cr3t-pw\"\n").unwrap();
        let creds = c.trunks[0].credentials().unwrap();
        assert_eq!(creds.password.expose(), "s3cr3t-pw");
        for dump in [
            format!("{c:?}"),
            format!("{creds:?}"),
            creds.password.to_string(),
        ] {
            assert!(!dump.contains("s3cr3t-pw"), "{dump}");
        }
        assert!(with("").unwrap().trunks[0].credentials().is_none());
    }

    #[test]
    fn password_file_is_read_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let c = with(&format!(
            "auth_username = \"gw\"\nauth_password_file = \"{}\"\nauth_realm = \"carrier\"\n",
            file.display()
        ))
        .unwrap();
        let creds = c.trunks[0].credentials().unwrap();
        assert_eq!(creds.password.expose(), "from-file");
        assert_eq!(creds.realm.as_deref(), Some("carrier"));
        let e =
            with("auth_username = \"gw\"\nauth_password_file = \"/nonexistent/pw\"\n").unwrap_err();
        assert!(e.contains("trunks[0].auth_password_file"), "{e}");
    }

    #[test]
    fn auth_keys_are_checked() {
        for (extra, key) in [
            ("auth_username = \"gw\"\n", "auth_username"),
            ("auth_password = \"x\"\n", "auth_username"),
            (
                "auth_username = \"a\\r\\nX: y\"\nauth_password = \"x\"\n",
                "auth_username",
            ),
            (
                "auth_username = \"gw\"\nauth_password = \"x\"\nauth_password_file = \"/p\"\n",
                "auth_password_file",
            ),
            ("auth_realm = \"r\"\n", "auth_realm"),
            ("register = true\n", "register"),
            ("register_expires = 0\n", "register_expires"),
            ("register_uri = \"carrier.example\"\n", "register_uri"),
        ] {
            let e = with(extra).unwrap_err();
            assert!(e.contains(&format!("trunks[0].{key}")), "{extra:?}: {e}");
        }
    }

    #[test]
    fn registration_defaults() {
        let c = with("auth_username = \"gw\"\nauth_password = \"x\"\nregister = true\n").unwrap();
        let r = c.trunks[0].registration().unwrap();
        assert_eq!(r.registrar.to_string(), "192.0.2.7:5080");
        assert_eq!(r.aor, "sip:gw@192.0.2.7");
        assert_eq!(r.request_uri, "sip:192.0.2.7");
        assert_eq!(r.expires, 3600);
        let c = with(
            "register = true\nregister_uri = \"sip:+861012345678@carrier.example\"\n\
             registrar = \"192.0.2.9:5060\"\nregister_expires = 60\n",
        )
        .unwrap();
        let r = c.trunks[0].registration().unwrap();
        assert_eq!(r.registrar.to_string(), "192.0.2.9:5060");
        assert_eq!(r.request_uri, "sip:carrier.example");
        assert_eq!(r.expires, 60);
        assert!(with("").unwrap().trunks[0].registration().is_none());
    }
}
