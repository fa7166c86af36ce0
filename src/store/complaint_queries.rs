//! Complaints (`complaints`) and the calls they are about (`complaint_cdrs`).
//!
//! A complaint is stored once (its natural key: complainant, caller ID, time, category, source),
//! so importing the same file twice adds nothing. When it is stored it is linked, in the same
//! transaction, to the CDRs of calls from that caller ID to that complainant that started within
//! the given window before the complaint (and a little after it, for clock skew between the
//! carrier's systems and ours).

use chrono::{DateTime, Duration, Utc};

use super::kpi_queries::{BucketCounters, BucketKey};
use super::{Columns, Op, Store, StoreError};

/// How far after the complaint's time a call still counts as the one complained about: the
/// complainant's clock (or the carrier's record of it) may run ahead of ours.
const CLOCK_SKEW_MINUTES: i64 = 60;

const INSERT_COMPLAINT: &str = "INSERT INTO complaints (complainant, caller_id, trunk, \
     received_at, category, source, text, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (complainant, caller_id, received_at, category, source) DO NOTHING \
     RETURNING id";

const LINK_CDRS: &str = "INSERT INTO complaint_cdrs (complaint_id, cdr_id) \
     SELECT $1, id FROM cdrs WHERE caller = $2 AND callee = $3 \
     AND invite_at >= $4 AND invite_at <= $5";

const SELECT_COMPLAINTS: &str = "SELECT id, complainant, caller_id, trunk, received_at, \
     category, source, text, imported_at FROM complaints";

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct NoDeltas;

impl BucketCounters for NoDeltas {
    fn merge(&mut self, _: &Self) {}
}

/// A complaint as filed (numbers already normalized; category and source as their codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComplaint {
    pub complainant: String,
    pub caller_id: String,
    /// The trunk that owns the caller ID, when known.
    pub trunk: Option<String>,
    pub received_at: DateTime<Utc>,
    pub category: String,
    pub source: String,
    pub text: String,
}

/// A stored complaint and the CDRs linked to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredComplaint {
    pub id: i64,
    pub complaint: NewComplaint,
    pub imported_at: DateTime<Utc>,
    pub cdr_ids: Vec<String>,
}

impl Store {
    /// Stores a complaint and links it to the calls it is about (from `link_window` before its
    /// time). Returns `None` when the same complaint is already stored.
    pub async fn insert_complaint(
        &self,
        c: &NewComplaint,
        link_window: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredComplaint>, StoreError> {
        self.insert_complaint_counted::<NoDeltas>(c, link_window, now, Vec::new())
            .await
    }

    /// `insert_complaint`, adding `deltas` to the KPI buckets in the same transaction when the
    /// complaint is new (so a complaint is counted once, however often it is imported).
    pub async fn insert_complaint_counted<C: BucketCounters>(
        &self,
        c: &NewComplaint,
        link_window: Duration,
        now: DateTime<Utc>,
        deltas: Vec<(BucketKey, C)>,
    ) -> Result<Option<StoredComplaint>, StoreError> {
        dispatch!(self, insert_complaint_counted(c, link_window, now, deltas))
    }

    /// Complaints received in `[from, to)`, optionally about one caller ID, oldest first.
    pub async fn complaints(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        caller_id: Option<&str>,
    ) -> Result<Vec<StoredComplaint>, StoreError> {
        dispatch!(self, complaints(from, to, caller_id))
    }

    /// Complaints with an id above `after`, oldest first, at most `limit`: how the running
    /// gateway picks up complaints that another process (the CLI) stored.
    pub async fn complaints_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredComplaint>, StoreError> {
        dispatch!(self, complaints_after(after, limit))
    }

    /// The highest complaint id stored (0 when none).
    pub async fn last_complaint_id(&self) -> Result<i64, StoreError> {
        dispatch!(self, last_complaint_id())
    }
}

per_backend! {
    uses(kpi_queries);

    pub(super) async fn insert_complaint_counted<C: BucketCounters>(
        pool: &DbPool,
        c: &NewComplaint,
        link_window: Duration,
        now: DateTime<Utc>,
        deltas: Vec<(BucketKey, C)>,
    ) -> Result<Option<StoredComplaint>, StoreError> {
        let mut tx = Dialect::begin_write(pool)
            .await
            .op("begin complaint insert")?;
        let id: Option<i64> = sqlx::query_scalar(INSERT_COMPLAINT)
            .bind(&c.complainant)
            .bind(&c.caller_id)
            .bind(&c.trunk)
            .bind(Dialect::time(c.received_at))
            .bind(&c.category)
            .bind(&c.source)
            .bind(&c.text)
            .bind(Dialect::time(now))
            .fetch_optional(&mut *tx)
            .await
            .op("insert complaint")?;
        let Some(id) = id else {
            return Ok(None);
        };
        sqlx::query(LINK_CDRS)
            .bind(id)
            .bind(&c.caller_id)
            .bind(&c.complainant)
            .bind(Dialect::time(c.received_at - link_window))
            .bind(Dialect::time(
                c.received_at + Duration::minutes(CLOCK_SKEW_MINUTES),
            ))
            .execute(&mut *tx)
            .await
            .op_on("link complaint to cdrs", format_args!("complaint {id}"))?;
        let cdr_ids = linked_cdrs(&mut tx, id).await?;
        if !deltas.is_empty() {
            kpi_queries::add_to_buckets(&mut tx, deltas).await?;
        }
        tx.commit()
            .await
            .op_on("commit complaint insert", format_args!("complaint {id}"))?;
        Ok(Some(StoredComplaint {
            id,
            complaint: c.clone(),
            imported_at: crate::model::ms_precision(now),
            cdr_ids,
        }))
    }

    pub(super) async fn complaints(
        pool: &DbPool,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        caller_id: Option<&str>,
    ) -> Result<Vec<StoredComplaint>, StoreError> {
        let sql = format!(
            "{SELECT_COMPLAINTS} WHERE received_at >= $1 AND received_at < $2 \
             AND ($3 IS NULL OR caller_id = $3) ORDER BY received_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(Dialect::time(from))
            .bind(Dialect::time(to))
            .bind(caller_id)
            .fetch_all(pool)
            .await
            .op("read complaints")?;
        with_links(pool, rows).await
    }

    pub(super) async fn complaints_after(
        pool: &DbPool,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredComplaint>, StoreError> {
        let sql = format!("{SELECT_COMPLAINTS} WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .op("read new complaints")?;
        with_links(pool, rows).await
    }

    pub(super) async fn last_complaint_id(pool: &DbPool) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM complaints")
            .fetch_one(pool)
            .await
            .op("read last complaint id")?;
        Ok(id.unwrap_or(0))
    }

    async fn with_links(pool: &DbPool, rows: Vec<Row>) -> Result<Vec<StoredComplaint>, StoreError> {
        let mut conn = pool
            .acquire()
            .await
            .op("connect to read complaint links")?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut c = complaint_from_row(row)?;
            c.cdr_ids = linked_cdrs(&mut conn, c.id).await?;
            out.push(c);
        }
        Ok(out)
    }

    async fn linked_cdrs(conn: &mut Conn, id: i64) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT cdr_id FROM complaint_cdrs WHERE complaint_id = $1 ORDER BY cdr_id",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .op_on("read complaint links", format_args!("complaint {id}"))
    }

    fn complaint_from_row(row: &Row) -> Result<StoredComplaint, StoreError> {
        let row = Columns::new(row, "read complaint row");
        let id: i64 = row.try_get("id")?;
        let what = format!("complaint {id}");
        Ok(StoredComplaint {
            id,
            complaint: NewComplaint {
                complainant: row.try_get("complainant")?,
                caller_id: row.try_get("caller_id")?,
                trunk: row.try_get("trunk")?,
                received_at: row.time("received_at", &what)?,
                category: row.try_get("category")?,
                source: row.try_get("source")?,
                text: row.try_get("text")?,
            },
            imported_at: row.time("imported_at", &what)?,
            cdr_ids: Vec::new(),
        })
    }
}

#[cfg(test)]
#[path = "complaint_queries_tests.rs"]
mod tests;
