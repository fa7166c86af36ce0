//! CDR search (the API's `GET /api/v1/cdrs`, `trunkguard cdr search`): filters on number,
//! trunks, time range, disposition, refusal or end reason and anomaly, keyset paging on
//! `(invite_at, id)` ascending. Only bound parameters; the WHERE clause leads with what the
//! `cdrs` indexes start with (`trunk`, `caller`/`callee`, `disposition`, each followed by
//! `invite_at`), and the page key is a row-value comparison the `(invite_at, id)` index serves.
//! The reason has no index of its own (it would slow every CDR insert): it narrows what the
//! time range and the other filters select. An anomaly's calls come from `anomaly_calls` by its
//! primary key.

use chrono::{DateTime, Utc};

use super::cdr_queries::SELECT_CDRS;
use super::{Op, Store, StoreError};
use crate::model::Cdr;

/// Where a page starts: after the CDR with this INVITE time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdrSearchKey {
    pub invite_at: DateTime<Utc>,
    pub id: String,
}

/// A CDR search. Every given filter applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdrQuery {
    /// Caller or callee (normalized, as stored).
    pub number: Option<String>,
    /// Only these trunks (`None`: any trunk, also none; `Some(empty)`: nothing matches).
    pub trunks: Option<Vec<String>>,
    /// INVITE time at or after.
    pub from: Option<DateTime<Utc>>,
    /// INVITE time before.
    pub to: Option<DateTime<Utc>>,
    /// A disposition code (`answered`, `refused`…).
    pub disposition: Option<String>,
    /// A reason code as stored: the refusal reason (`caller_id_not_authorized`…) or the end
    /// reason (`normal_clearing`, `busy`…).
    pub reason: Option<String>,
    /// An anomaly's id: the calls it names.
    pub anomaly: Option<String>,
    pub after: Option<CdrSearchKey>,
    pub limit: u32,
}

impl CdrQuery {
    /// Whether `s` can be a reason code (`snake_case`, as the gateway writes them): anything
    /// else is a caller's typo, worth telling rather than answering with nothing.
    pub fn is_reason_code(s: &str) -> bool {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }

    /// Whether `s` can be an anomaly id (the monitor's ids are decimal numbers).
    pub fn is_anomaly_id(s: &str) -> bool {
        (1..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    }
}

enum Bind {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

impl Store {
    /// CDRs matching `q`, ordered by (INVITE time, id), at most `q.limit`, without their media,
    /// recording and DTMF (`get_cdr` reads one call in full).
    pub async fn search_cdrs(&self, q: &CdrQuery) -> Result<Vec<Cdr>, StoreError> {
        if q.limit == 0 || q.trunks.as_ref().is_some_and(|t| t.is_empty()) {
            return Ok(Vec::new());
        }
        let (sql, binds) = search_sql(q);
        dispatch!(self, search_cdrs(&sql, binds))
    }
}

/// The statement of a search and its parameters, in order.
fn search_sql(q: &CdrQuery) -> (String, Vec<Bind>) {
    let mut binds: Vec<Bind> = Vec::new();
    let mut clauses: Vec<String> = Vec::new();
    let mut bind = |value: Bind| {
        binds.push(value);
        format!("${}", binds.len())
    };
    if let Some(trunks) = &q.trunks {
        let list: Vec<String> = trunks.iter().map(|t| bind(Bind::Text(t.clone()))).collect();
        clauses.push(format!("trunk IN ({})", list.join(", ")));
    }
    if let Some(n) = &q.number {
        let p = bind(Bind::Text(n.clone()));
        clauses.push(format!("(caller = {p} OR callee = {p})"));
    }
    if let Some(d) = &q.disposition {
        clauses.push(format!("disposition = {}", bind(Bind::Text(d.clone()))));
    }
    if let Some(r) = &q.reason {
        let p = bind(Bind::Text(r.clone()));
        clauses.push(format!("(refusal_reason = {p} OR end_reason = {p})"));
    }
    if let Some(a) = &q.anomaly {
        let p = bind(Bind::Text(a.clone()));
        clauses.push(format!(
            "id IN (SELECT call_id FROM anomaly_calls WHERE anomaly_id = {p})"
        ));
    }
    if let Some(t) = q.from {
        clauses.push(format!("invite_at >= {}", bind(Bind::Time(t))));
    }
    if let Some(t) = q.to {
        clauses.push(format!("invite_at < {}", bind(Bind::Time(t))));
    }
    if let Some(k) = &q.after {
        let at = bind(Bind::Time(k.invite_at));
        let id = bind(Bind::Text(k.id.clone()));
        clauses.push(format!("(invite_at, id) > ({at}, {id})"));
    }
    let limit = bind(Bind::Int(i64::from(q.limit)));
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!("{SELECT_CDRS}{filter} ORDER BY invite_at, id LIMIT {limit}");
    (sql, binds)
}

per_backend! {
    uses(cdr_queries);

    pub(super) async fn search_cdrs(
        pool: &DbPool,
        sql: &str,
        binds: Vec<Bind>,
    ) -> Result<Vec<Cdr>, StoreError> {
        let mut query = sqlx::query(sql);
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(n) => query.bind(n),
                Bind::Time(t) => query.bind(Dialect::time(t)),
            };
        }
        let rows = query.fetch_all(pool).await.op("search cdrs")?;
        rows.iter().map(cdr_queries::cdr_from_row).collect()
    }
}

#[cfg(test)]
#[path = "cdr_search_queries_tests.rs"]
mod tests;
