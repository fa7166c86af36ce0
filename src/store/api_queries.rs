//! The HTTP API's tables: `api_tokens` (bearer tokens, only their SHA-256 kept) and the
//! append-only `audit_log` (one row per API request). Roles and actions are stored as the API's
//! text codes; the schema's CHECK refuses an unknown role and triggers refuse any UPDATE or
//! DELETE of the audit log.

use chrono::{DateTime, Utc};

use super::chain::{audit_content, ChainLink, ChainedLog};
use super::{Columns, Op, Store, StoreError};

/// A token to store (the token itself is never stored: only `token_sha256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub name: String,
    /// `admin`, `compliance` or `carrier`.
    pub role: String,
    /// The trunks a carrier token is limited to (empty: every trunk).
    pub trunks: Vec<String>,
    /// Lowercase hex SHA-256 of the token.
    pub token_sha256: String,
    pub created_at: DateTime<Utc>,
}

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRow {
    pub id: i64,
    pub token: NewApiToken,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A row to append to the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    pub at: DateTime<Utc>,
    /// The token's name, or `unknown` when no valid token was presented.
    pub actor: String,
    pub role: Option<String>,
    pub method: String,
    pub path: String,
    /// The raw query string ('' when none).
    pub query: String,
    /// The operation (the API's name for it, e.g. `cdrs.search`).
    pub action: String,
    pub call_id: Option<String>,
    pub recording: Option<String>,
    /// The peer's address.
    pub client: String,
    pub status: u16,
}

/// A row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub entry: NewAudit,
}

/// Which audit rows to read: every given filter applies; rows come in id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub call_id: Option<String>,
    /// The operation (`cdrs.search`, `calls.recording`…).
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Rows with a larger id only (paging).
    pub after_id: Option<i64>,
    pub limit: u32,
}

const SELECT_TOKENS: &str =
    "SELECT id, name, role, trunks, token_sha256, created_at, revoked_at FROM api_tokens";

const INSERT_AUDIT: &str = "INSERT INTO audit_log (at, actor, role, method, path, query, action, \
     call_id, recording, client, status, prev_sha256, row_sha256) VALUES ($1, $2, $3, $4, $5, $6, \
     $7, $8, $9, $10, $11, $12, $13) RETURNING id";

macro_rules! audit_columns {
    () => {
        "id, at, actor, role, method, path, query, action, call_id, recording, client, status"
    };
}

/// The columns `audit_from_row` reads.
pub(in crate::store) const AUDIT_COLUMNS: &str = audit_columns!();

const SELECT_AUDIT: &str = concat!("SELECT ", audit_columns!(), " FROM audit_log");

impl Store {
    /// Stores a new token; false (nothing stored) when the name is taken, revoked tokens
    /// included.
    pub async fn create_api_token(&self, t: &NewApiToken) -> Result<bool, StoreError> {
        let trunks = serde_json::to_string(&t.trunks).map_err(|e| StoreError::Corrupt {
            id: format!("token {}", t.name),
            column: "trunks",
            value: e.to_string(),
        })?;
        dispatch!(self, create_api_token(t, &trunks))
    }

    /// The token with this hash, revoked or not.
    pub async fn api_token_by_hash(
        &self,
        token_sha256: &str,
    ) -> Result<Option<ApiTokenRow>, StoreError> {
        dispatch!(self, api_token_by_hash(token_sha256))
    }

    /// Every token, revoked ones included, by name.
    pub async fn api_tokens(&self) -> Result<Vec<ApiTokenRow>, StoreError> {
        dispatch!(self, api_tokens())
    }

    /// Revokes a token by name; false when there is no such token or it is revoked already.
    pub async fn revoke_api_token(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, revoke_api_token(name, at))
    }

    /// Appends one row to the audit log; returns its id.
    pub async fn append_audit(&self, a: &NewAudit) -> Result<i64, StoreError> {
        dispatch!(self, append_audit(a))
    }

    /// Audit rows matching the filter, in id order, at most `limit`.
    pub async fn audit_entries(&self, f: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let mut sql = format!("{SELECT_AUDIT} WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if f.actor.is_some() {
            sql += &format!(" AND actor = ${}", next());
        }
        if f.call_id.is_some() {
            sql += &format!(" AND call_id = ${}", next());
        }
        if f.action.is_some() {
            sql += &format!(" AND action = ${}", next());
        }
        if f.from.is_some() {
            sql += &format!(" AND at >= ${}", next());
        }
        if f.to.is_some() {
            sql += &format!(" AND at < ${}", next());
        }
        if f.after_id.is_some() {
            sql += &format!(" AND id > ${}", next());
        }
        sql += &format!(" ORDER BY id LIMIT ${}", next());
        dispatch!(self, audit_entries(&sql, f))
    }

    /// Does the database answer? (readiness)
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, ping())
    }

    pub async fn count_audit(&self) -> Result<i64, StoreError> {
        dispatch!(self, count_audit())
    }
}

per_backend! {
    uses(chain);

    pub(super) async fn create_api_token(
        pool: &DbPool,
        t: &NewApiToken,
        trunks: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO api_tokens (name, role, trunks, token_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&t.name)
        .bind(&t.role)
        .bind(trunks)
        .bind(&t.token_sha256)
        .bind(Dialect::time(t.created_at))
        .execute(pool)
        .await
        .op_on("insert api token", &t.name)?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn api_token_by_hash(
        pool: &DbPool,
        token_sha256: &str,
    ) -> Result<Option<ApiTokenRow>, StoreError> {
        let sql = format!("{SELECT_TOKENS} WHERE token_sha256 = $1");
        let row = sqlx::query(&sql)
            .bind(token_sha256)
            .fetch_optional(pool)
            .await
            .op("read api token by hash")?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub(super) async fn api_tokens(pool: &DbPool) -> Result<Vec<ApiTokenRow>, StoreError> {
        let sql = format!("{SELECT_TOKENS} ORDER BY name");
        let rows = sqlx::query(&sql)
            .fetch_all(pool)
            .await
            .op("list api tokens")?;
        rows.iter().map(token_from_row).collect()
    }

    pub(super) async fn revoke_api_token(
        pool: &DbPool,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
        )
        .bind(name)
        .bind(Dialect::time(at))
        .execute(pool)
        .await
        .op_on("revoke api token", name)?;
        Ok(done.rows_affected() == 1)
    }

    /// In a write transaction: the row links to the chain's head (`chain.rs`).
    pub(super) async fn append_audit(pool: &DbPool, a: &NewAudit) -> Result<i64, StoreError> {
        let mut tx = Dialect::begin_write(pool).await.op("begin audit append")?;
        let prev = chain::head(&mut tx, ChainedLog::Audit).await?;
        let link = ChainLink::after(&prev, &audit_content(a));
        let id = sqlx::query_scalar(INSERT_AUDIT)
            .bind(Dialect::time(a.at))
            .bind(&a.actor)
            .bind(&a.role)
            .bind(&a.method)
            .bind(&a.path)
            .bind(&a.query)
            .bind(&a.action)
            .bind(&a.call_id)
            .bind(&a.recording)
            .bind(&a.client)
            .bind(i64::from(a.status))
            .bind(&link.prev_sha256)
            .bind(&link.row_sha256)
            .fetch_one(&mut *tx)
            .await
            .op("append audit row")?;
        tx.commit().await.op("commit audit append")?;
        Ok(id)
    }

    pub(super) async fn audit_entries(
        pool: &DbPool,
        sql: &str,
        f: &AuditFilter,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut q = sqlx::query(sql);
        if let Some(a) = &f.actor {
            q = q.bind(a);
        }
        if let Some(c) = &f.call_id {
            q = q.bind(c);
        }
        if let Some(a) = &f.action {
            q = q.bind(a);
        }
        if let Some(t) = f.from {
            q = q.bind(Dialect::time(t));
        }
        if let Some(t) = f.to {
            q = q.bind(Dialect::time(t));
        }
        if let Some(id) = f.after_id {
            q = q.bind(id);
        }
        let rows = q
            .bind(i64::from(f.limit))
            .fetch_all(pool)
            .await
            .op("read audit rows")?;
        rows.iter().map(audit_from_row).collect()
    }

    pub(super) async fn ping(pool: &DbPool) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(pool).await.op("ping")?;
        Ok(())
    }

    pub(super) async fn count_audit(pool: &DbPool) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(pool)
            .await
            .op("count audit rows")?;
        Ok(n)
    }

    fn token_from_row(row: &Row) -> Result<ApiTokenRow, StoreError> {
        let row = Columns::new(row, "read api token row");
        let id: i64 = row.try_get("id")?;
        let what = format!("token {id}");
        let trunks: String = row.try_get("trunks")?;
        let trunks: Vec<String> =
            serde_json::from_str(&trunks).map_err(|_| StoreError::Corrupt {
                id: what.clone(),
                column: "trunks",
                value: trunks.clone(),
            })?;
        Ok(ApiTokenRow {
            id,
            token: NewApiToken {
                name: row.try_get("name")?,
                role: row.try_get("role")?,
                trunks,
                token_sha256: row.try_get("token_sha256")?,
                created_at: row.time("created_at", &what)?,
            },
            revoked_at: row.opt_time("revoked_at", &what)?,
        })
    }

    pub(in crate::store) fn audit_from_row(row: &Row) -> Result<AuditRow, StoreError> {
        let row = Columns::new(row, "read audit row");
        let id: i64 = row.try_get("id")?;
        let what = format!("audit {id}");
        let status: i64 = row.try_get("status")?;
        let status = u16::try_from(status).map_err(|_| StoreError::Corrupt {
            id: what.clone(),
            column: "status",
            value: status.to_string(),
        })?;
        Ok(AuditRow {
            id,
            entry: NewAudit {
                at: row.time("at", &what)?,
                actor: row.try_get("actor")?,
                role: row.try_get("role")?,
                method: row.try_get("method")?,
                path: row.try_get("path")?,
                query: row.try_get("query")?,
                action: row.try_get("action")?,
                call_id: row.try_get("call_id")?,
                recording: row.try_get("recording")?,
                client: row.try_get("client")?,
                status,
            },
        })
    }
}

#[cfg(test)]
#[path = "api_queries_tests.rs"]
mod tests;
