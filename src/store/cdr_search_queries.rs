//! CDR search (the API's `GET /api/v1/cdrs`, `trunkguard cdr search`, the console's calls
//! search): filters on number (whole, or a part of it: prefix, suffix, anywhere), trunks,
//! direction, time range, disposition, refusal or end reason, final SIP status, talk time,
//! anomaly, recording present and legal hold; keyset paging on `(invite_at, id)`, oldest or
//! newest first. Only bound parameters; the WHERE clause leads with what the
//! `cdrs` indexes start with (`trunk`, `caller`/`callee`, `disposition`, each followed by
//! `invite_at`), and the page key is a row-value comparison the `(invite_at, id)` index serves.
//! The reason has no index of its own (it would slow every CDR insert): it narrows what the
//! time range and the other filters select. An anomaly's calls come from `anomaly_calls` by its
//! primary key. A part of a number is a `LIKE` over the digits (only digits are accepted, so
//! no wildcard comes from the caller): it has no index, and narrows what the time range and
//! the other filters select, like the reason.

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
    /// A part of the caller or callee number (digits, as numbers are stored).
    pub number_part: Option<NumberPart>,
    /// `outbound` or `inbound`.
    pub direction: Option<String>,
    /// The final SIP status (200 for answered calls).
    pub final_status: Option<u16>,
    /// Talk time at least / at most, in milliseconds.
    pub min_talk_ms: Option<i64>,
    pub max_talk_ms: Option<i64>,
    /// `Some(true)`: only calls whose recording file is kept (a WAV, not purged);
    /// `Some(false)`: only calls without one.
    pub has_recording: Option<bool>,
    /// `Some(true)`: only calls on legal hold now; `Some(false)`: only calls not on hold.
    pub on_hold: Option<bool>,
    /// Newest first (`(invite_at, id)` descending; `after` then pages towards older rows).
    pub newest_first: bool,
    pub after: Option<CdrSearchKey>,
    pub limit: u32,
}

/// Where a part of a number must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberMatch {
    Prefix,
    Suffix,
    Anywhere,
}

/// A part of a number: 1 to 20 digits and where they must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPart {
    digits: String,
    at: NumberMatch,
}

impl NumberPart {
    /// `None` unless `digits` is 1 to 20 ASCII digits (so the pattern holds no wildcard).
    pub fn new(digits: &str, at: NumberMatch) -> Option<NumberPart> {
        ((1..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())).then(
            || NumberPart {
                digits: digits.to_string(),
                at,
            },
        )
    }

    pub fn digits(&self) -> &str {
        &self.digits
    }

    pub fn at(&self) -> NumberMatch {
        self.at
    }

    /// The `LIKE` pattern.
    fn pattern(&self) -> String {
        match self.at {
            NumberMatch::Prefix => format!("{}%", self.digits),
            NumberMatch::Suffix => format!("%{}", self.digits),
            NumberMatch::Anywhere => format!("%{}%", self.digits),
        }
    }
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
    /// CDRs matching `q`, ordered by (INVITE time, id) (descending with `newest_first`), at most `q.limit`, without their media,
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
    if let Some(part) = &q.number_part {
        let p = bind(Bind::Text(part.pattern()));
        clauses.push(format!("(caller LIKE {p} OR callee LIKE {p})"));
    }
    if let Some(d) = &q.direction {
        clauses.push(format!("direction = {}", bind(Bind::Text(d.clone()))));
    }
    if let Some(s) = q.final_status {
        clauses.push(format!("final_status = {}", bind(Bind::Int(i64::from(s)))));
    }
    if let Some(ms) = q.min_talk_ms {
        clauses.push(format!("talk_ms >= {}", bind(Bind::Int(ms))));
    }
    if let Some(ms) = q.max_talk_ms {
        clauses.push(format!("talk_ms <= {}", bind(Bind::Int(ms))));
    }
    if let Some(kept) = q.has_recording {
        let not = if kept { "" } else { "NOT " };
        clauses.push(format!(
            "{not}EXISTS (SELECT 1 FROM recordings r WHERE r.cdr_id = cdrs.id \
             AND r.path IS NOT NULL AND r.purged_at IS NULL)"
        ));
    }
    if let Some(held) = q.on_hold {
        let not = if held { "" } else { "NOT " };
        clauses.push(format!(
            "{not}EXISTS (SELECT 1 FROM legal_holds h WHERE h.call_id = cdrs.id \
             AND h.released_at IS NULL)"
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
        let cmp = if q.newest_first { "<" } else { ">" };
        clauses.push(format!("(invite_at, id) {cmp} ({at}, {id})"));
    }
    let limit = bind(Bind::Int(i64::from(q.limit)));
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let order = if q.newest_first {
        "invite_at DESC, id DESC"
    } else {
        "invite_at, id"
    };
    let sql = format!("{SELECT_CDRS}{filter} ORDER BY {order} LIMIT {limit}");
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
