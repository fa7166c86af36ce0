//! The audit and enforcement logs as hash chains (issue 17). Triggers already refuse UPDATE and
//! DELETE to the gateway's own connections; the chain makes an edit by whoever can drop those
//! triggers (the database's administrator) visible: each row carries the link of its
//! predecessor (`prev_sha256`) and its own, `row_sha256 = SHA-256(prev_sha256 "\n" content)`,
//! where `content` is the row's canonical JSON (below). A row edited no longer matches its link;
//! a row deleted leaves its successor pointing at a link no row has; a row inserted outside the
//! gateway has no link or a wrong one. Rewriting the whole chain after an edit is what the daily
//! manifest's signed chain head catches.
//!
//! Links are computed inside the write transaction that appends the row (SQLite's
//! `BEGIN IMMEDIATE`, PostgreSQL's advisory write lock), so writers on several nodes take turns
//! at the head; a unique index on `prev_sha256` refuses a fork outright.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::cdr_queries::format_time;
use super::{Columns, NewAudit, NewEnforcement, Op, Store, StoreError};
use crate::model::ms_precision;

/// The predecessor link of a chain's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Which chained log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainedLog {
    Audit,
    Enforcement,
}

impl ChainedLog {
    pub const ALL: [ChainedLog; 2] = [ChainedLog::Audit, ChainedLog::Enforcement];

    /// The table (also the log's name in reports).
    pub fn table(self) -> &'static str {
        match self {
            ChainedLog::Audit => "audit_log",
            ChainedLog::Enforcement => "enforcement_log",
        }
    }
}

/// A row's place in its chain, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub prev_sha256: String,
    pub row_sha256: String,
}

impl ChainLink {
    /// The link of a row with this content after `prev_sha256`.
    pub fn after(prev_sha256: &str, content: &str) -> ChainLink {
        let mut h = Sha256::new();
        h.update(prev_sha256.as_bytes());
        h.update(b"\n");
        h.update(content.as_bytes());
        ChainLink {
            prev_sha256: prev_sha256.to_string(),
            row_sha256: hex::encode(h.finalize()),
        }
    }
}

/// A row of a chained log as verification reads it: its canonical content, recomputed from the
/// stored columns, and the link stored beside them (`None`: written before the chain began, or
/// inserted by something other than the gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedRow {
    pub id: i64,
    pub content: String,
    pub link: Option<ChainLink>,
}

/// Times in content as the store keeps them (UTC, milliseconds), so that what is hashed at
/// insert is what reads back on either backend (and after `migrate-sqlite`).
fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    format_time(ms_precision(t))
}

/// An audit row's canonical content: every column but the id and the links, in a fixed order.
pub fn audit_content(a: &NewAudit) -> String {
    json!([
        "audit/1",
        time(a.at),
        a.actor,
        a.role,
        a.method,
        a.path,
        a.query,
        a.action,
        a.call_id,
        a.recording,
        a.client,
        a.status,
    ])
    .to_string()
}

/// An enforcement row's canonical content: every column but the id and the links.
pub fn enforcement_content(e: &NewEnforcement) -> String {
    json!([
        "enforcement/1",
        time(e.at),
        e.action,
        e.imposition,
        e.subject.kind,
        e.subject.trunk,
        e.subject.number,
        e.step,
        e.until.map(time),
        e.cause,
        e.rule,
        e.anomaly_id,
        e.operator,
        e.reason,
        e.detail_json,
    ])
    .to_string()
}

/// Rows read per page when a log is walked.
pub const PAGE: u32 = 1_000;

impl Store {
    /// A page of a chained log: rows with an id above `after_id`, in id order, at most `limit`.
    pub async fn chained_rows(
        &self,
        log: ChainedLog,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<ChainedRow>, StoreError> {
        dispatch!(self, chained_rows(log, after_id, limit))
    }
}

per_backend! {
    uses(api_queries, enforcement_queries);

    /// The link the next row of `log` follows: the newest row's, or `GENESIS` for the first.
    /// Called inside the write transaction that appends, so no writer slips in between.
    pub(in crate::store) async fn head(conn: &mut Conn, log: ChainedLog) -> Result<String, StoreError> {
        let sql = format!(
            "SELECT row_sha256 FROM {} WHERE row_sha256 IS NOT NULL ORDER BY id DESC LIMIT 1",
            log.table()
        );
        let head: Option<String> = sqlx::query_scalar(&sql)
            .fetch_optional(&mut *conn)
            .await
            .op_on("read chain head", log.table())?;
        Ok(head.unwrap_or_else(|| GENESIS.to_string()))
    }

    pub(super) async fn chained_rows(
        pool: &DbPool,
        log: ChainedLog,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<ChainedRow>, StoreError> {
        let columns = match log {
            ChainedLog::Audit => crate::store::api_queries::AUDIT_COLUMNS,
            ChainedLog::Enforcement => crate::store::enforcement_queries::ENFORCEMENT_COLUMNS,
        };
        let sql = format!(
            "SELECT {columns}, prev_sha256, row_sha256 FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
            log.table()
        );
        let rows = sqlx::query(&sql)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .op_on("read chained rows", log.table())?;
        rows.iter()
            .map(|row| {
                let (id, content) = match log {
                    ChainedLog::Audit => {
                        let r = api_queries::audit_from_row(row)?;
                        (r.id, audit_content(&r.entry))
                    }
                    ChainedLog::Enforcement => {
                        let r = enforcement_queries::entry_from_row(row)?;
                        (r.id, enforcement_content(&r.entry))
                    }
                };
                let c = Columns::new(row, "read chain link");
                let prev: Option<String> = c.try_get("prev_sha256")?;
                let this: Option<String> = c.try_get("row_sha256")?;
                let link = match (prev, this) {
                    (Some(prev_sha256), Some(row_sha256)) => Some(ChainLink {
                        prev_sha256,
                        row_sha256,
                    }),
                    _ => None,
                };
                Ok(ChainedRow { id, content, link })
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
pub(crate) mod tests;
