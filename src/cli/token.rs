//! `trunkguard token create | list | revoke`: the API's bearer tokens. A new token is printed
//! once; only its SHA-256 is stored.

use std::io::Write;

use chrono::Utc;

use super::CliError;
use crate::api::{create_token, Role};
use crate::store::Store;

/// Creates a token and prints it (once) with what it may do.
pub async fn create(
    store: &Store,
    name: &str,
    role: Role,
    trunks: &[String],
    known_trunks: &[String],
    out: &mut impl Write,
) -> Result<(), CliError> {
    let (token, row) = create_token(store, name, role, trunks, known_trunks, Utc::now())
        .await
        .map_err(|e| match e {
            crate::api::TokenError::Store(s) => CliError::Store(s),
            other => CliError::Usage(other.to_string()),
        })?;
    let scope = if row.trunks.is_empty() {
        String::new()
    } else {
        format!(" (trunks: {})", row.trunks.join(", "))
    };
    let w = |e| CliError::io("writing the token", e);
    writeln!(out, "{token}").map_err(w)?;
    writeln!(
        out,
        "# token `{}`, role {}{scope}: shown once, store it now (only its hash is kept)",
        row.name, role
    )
    .map_err(w)?;
    tracing::info!(name = %row.name, role = %role, trunks = ?row.trunks, "api token created");
    Ok(())
}

/// Every token, one line each: name, role, trunks, created, revoked.
pub async fn list(store: &Store, out: &mut impl Write) -> Result<(), CliError> {
    let w = |e| CliError::io("writing the list", e);
    writeln!(
        out,
        "{:<24} {:<10} {:<24} {:<24} revoked",
        "name", "role", "trunks", "created"
    )
    .map_err(w)?;
    for t in store.api_tokens().await? {
        let trunks = if t.token.trunks.is_empty() {
            "*".to_string()
        } else {
            t.token.trunks.join(",")
        };
        let revoked = t
            .revoked_at
            .map(|r| r.to_rfc3339())
            .unwrap_or_else(|| "-".to_string());
        writeln!(
            out,
            "{:<24} {:<10} {:<24} {:<24} {revoked}",
            t.token.name,
            t.token.role,
            trunks,
            t.token.created_at.to_rfc3339()
        )
        .map_err(w)?;
    }
    Ok(())
}

/// Revokes a token by name: the next request with it gets 401.
pub async fn revoke(store: &Store, name: &str, out: &mut impl Write) -> Result<(), CliError> {
    if !store.revoke_api_token(name, Utc::now()).await? {
        return Err(CliError::Usage(format!(
            "no token `{name}` in force (unknown or already revoked)"
        )));
    }
    tracing::info!(name, "api token revoked");
    writeln!(out, "token `{name}` revoked").map_err(|e| CliError::io("writing", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_list_revoke() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let known = vec!["demo".to_string()];
        let mut out = Vec::new();
        create(&store, "acme", Role::Carrier, &known, &known, &mut out)
            .await
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let token = text.lines().next().unwrap();
        assert!(token.starts_with("tg_"), "{text}");
        assert!(text.contains("role carrier (trunks: demo)"), "{text}");

        let mut out = Vec::new();
        list(&store, &mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("acme") && !text.contains(token), "{text}");

        revoke(&store, "acme", &mut Vec::new()).await.unwrap();
        assert!(revoke(&store, "acme", &mut Vec::new()).await.is_err());
        let row = store
            .api_token_by_hash(&crate::api::auth::token_sha256(token))
            .await
            .unwrap()
            .unwrap();
        assert!(row.revoked_at.is_some());
    }
}
