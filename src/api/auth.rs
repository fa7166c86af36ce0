//! Bearer tokens and roles. A token is 32 random bytes shown once (hex, prefixed `tg_`); the
//! database keeps only its SHA-256. Each request's token is looked up by that hash, so a
//! revocation (also by the CLI, from another process) takes effect on the next request.

use std::fmt;
use std::str::FromStr;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::error::ApiError;
use crate::store::{ApiTokenRow, NewApiToken, Store, StoreError};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Trunks, numbers, live calls, enforcement.
    Admin,
    /// CDRs, full call records, recordings, the audit log.
    Compliance,
    /// KPIs, metrics and the CDRs of its trunks.
    Carrier,
    /// An agent's desktop: pauses and resumes the recording of a live call (PCI), nothing else.
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Compliance => "compliance",
            Role::Carrier => "carrier",
            Role::Agent => "agent",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "compliance" => Ok(Role::Compliance),
            "carrier" => Ok(Role::Carrier),
            "agent" => Ok(Role::Agent),
            other => Err(format!(
                "unknown role `{other}` (admin, compliance, carrier or agent)"
            )),
        }
    }
}

/// Who is calling: the token's name, role and, for a carrier, its trunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// The trunks a carrier token is limited to; empty: every trunk.
    pub trunks: Vec<String>,
}

impl Principal {
    /// May this caller see the given trunk's data?
    pub fn sees_trunk(&self, trunk: &str) -> bool {
        self.trunks.is_empty() || self.trunks.iter().any(|t| t == trunk)
    }

    /// The trunks this caller is limited to (`None`: no limit).
    pub fn trunk_limit(&self) -> Option<&[String]> {
        (!self.trunks.is_empty()).then_some(self.trunks.as_slice())
    }
}

/// Lowercase hex SHA-256 of a token, as stored.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token (`tg_` and 64 hex digits: 32 bytes from the OS's generator).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("tg_{}", hex::encode(bytes))
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("--name `{0}`: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("--name `{0}`: a token with this name exists (revoked tokens keep their name)")]
    NameTaken(String),
    #[error("--trunk is only for carrier tokens")]
    TrunksNotCarrier,
    #[error("--trunk `{0}`: no such trunk in the configuration")]
    UnknownTrunk(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a token and stores its hash; returns the token (shown once) and the stored row.
/// `known_trunks`: the configured trunk names a carrier token may be limited to.
pub async fn create_token(
    store: &Store,
    name: &str,
    role: Role,
    trunks: &[String],
    known_trunks: &[String],
    now: DateTime<Utc>,
) -> Result<(String, NewApiToken), TokenError> {
    let valid_name = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    // `unknown` is what the audit log calls a request without a valid token.
    if !valid_name || name == UNKNOWN_ACTOR {
        return Err(TokenError::BadName(name.to_string()));
    }
    if !trunks.is_empty() && role != Role::Carrier {
        return Err(TokenError::TrunksNotCarrier);
    }
    if let Some(t) = trunks.iter().find(|t| !known_trunks.contains(t)) {
        return Err(TokenError::UnknownTrunk(t.clone()));
    }
    let mut trunks = trunks.to_vec();
    trunks.sort();
    trunks.dedup();
    let token = generate_token();
    let row = NewApiToken {
        name: name.to_string(),
        role: role.as_str().to_string(),
        trunks,
        token_sha256: token_sha256(&token),
        created_at: now,
    };
    if !store.create_api_token(&row).await? {
        return Err(TokenError::NameTaken(name.to_string()));
    }
    Ok((token, row))
}

/// The actor of a request without a valid token, in the audit log.
pub const UNKNOWN_ACTOR: &str = "unknown";

/// The caller of a request, from its `Authorization: Bearer` header.
pub(crate) async fn authenticate(
    store: &Store,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized("missing bearer token"));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ))?;
    principal_by_hash(store, &token_sha256(token)).await
}

/// The caller whose token has this SHA-256 (the console keeps the hash of a session's token and
/// asks again on every request, so a revocation ends the session too).
pub(crate) async fn principal_by_hash(store: &Store, sha256: &str) -> Result<Principal, ApiError> {
    let row = store.api_token_by_hash(sha256).await?;
    principal_of(row)
}

fn principal_of(row: Option<ApiTokenRow>) -> Result<Principal, ApiError> {
    let Some(row) = row else {
        return Err(ApiError::Unauthorized("unknown token"));
    };
    if row.revoked_at.is_some() {
        return Err(ApiError::Unauthorized("revoked token"));
    }
    let role = row.token.role.parse().map_err(|_| {
        ApiError::Store(StoreError::Corrupt {
            id: format!("token {}", row.id),
            column: "role",
            value: row.token.role.clone(),
        })
    })?;
    Ok(Principal {
        name: row.token.name,
        role,
        trunks: row.token.trunks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64);
        assert_eq!(token_sha256("abc").len(), 64);
        assert_eq!(
            token_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn create_checks_name_role_and_trunks() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let known = vec!["demo".to_string()];
        let now = Utc::now();
        let (token, row) = create_token(&store, "acme", Role::Carrier, &known, &known, now)
            .await
            .unwrap();
        assert_eq!(row.token_sha256, token_sha256(&token));
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let p = authenticate(&store, &headers).await.unwrap();
        assert_eq!((p.name.as_str(), p.role), ("acme", Role::Carrier));
        assert!(p.sees_trunk("demo") && !p.sees_trunk("other"));

        for (name, role, trunks) in [
            ("acme", Role::Admin, vec![]),
            ("bad name", Role::Admin, vec![]),
            ("unknown", Role::Admin, vec![]),
            ("x", Role::Admin, known.clone()),
            ("y", Role::Carrier, vec!["nope".to_string()]),
        ] {
            assert!(
                create_token(&store, name, role, &trunks, &known, now)
                    .await
                    .is_err(),
                "{name}"
            );
        }
        store.revoke_api_token("acme", now).await.unwrap();
        let e = authenticate(&store, &headers).await.unwrap_err();
        assert!(matches!(e, ApiError::Unauthorized("revoked token")), "{e}");
        assert!(authenticate(&store, &HeaderMap::new()).await.is_err());
    }
}
