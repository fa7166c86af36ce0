//! Anomalies (`anomalies`, `anomaly_calls`) and the append-only enforcement log
//! (`enforcement_log`); operators' orders are in `enforcement_request_queries`. Codes (subject kind, step, cause, origin) are stored as the monitor's
//! text codes; the schema's CHECKs refuse anything else, and triggers refuse any UPDATE or
//! DELETE of the log.

use chrono::{DateTime, Utc};

use super::chain::{enforcement_content, ChainLink, ChainedLog};
use super::{Columns, Op, Store, StoreError};

/// Who or what an anomaly or a step is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectKey {
    /// `trunk`, `caller_id` or `callee`.
    pub kind: String,
    pub trunk: String,
    /// Empty for a trunk.
    pub number: String,
}

/// An anomaly with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRow {
    pub id: String,
    pub detected_at: DateTime<Utc>,
    pub rule: String,
    pub subject: SubjectKey,
    pub window_secs: i64,
    pub observed: f64,
    pub threshold: f64,
    pub sample: i64,
    /// The step the rule maps to (what was imposed may be higher after escalation).
    pub step: String,
    pub detail: String,
    /// A few calls that show it.
    pub call_ids: Vec<String>,
}

/// A row to append to the enforcement log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnforcement {
    pub at: DateTime<Utc>,
    /// `impose` or `lift`.
    pub action: String,
    /// The monitor's id of the step imposed or lifted.
    pub imposition: i64,
    pub subject: SubjectKey,
    pub step: String,
    /// When an imposed step may lift at the earliest (none: until lifted by hand).
    pub until: Option<DateTime<Utc>>,
    /// `rule` or `operator` (impose); `resumed`, `escalated` or `operator` (lift).
    pub cause: String,
    pub rule: Option<String>,
    pub anomaly_id: Option<String>,
    pub operator: Option<String>,
    pub reason: String,
    /// The whole action, as the monitor wrote it.
    pub detail_json: String,
}

/// A row of the enforcement log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnforcementEntry {
    pub id: i64,
    pub entry: NewEnforcement,
}

const INSERT_ANOMALY: &str = "INSERT INTO anomalies (id, detected_at, rule, subject_kind, trunk, \
     number, window_secs, observed, threshold, sample, step, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

const INSERT_ANOMALY_CALL: &str =
    "INSERT INTO anomaly_calls (anomaly_id, call_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

const SELECT_ANOMALIES: &str = "SELECT id, detected_at, rule, subject_kind, trunk, number, \
     window_secs, observed, threshold, sample, step, detail FROM anomalies";

const INSERT_ENFORCEMENT: &str = "INSERT INTO enforcement_log (at, action, imposition, \
     subject_kind, trunk, number, step, until, cause, rule, anomaly_id, operator, reason, \
     detail_json, prev_sha256, row_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
     $12, $13, $14, $15, $16) RETURNING id";

macro_rules! enforcement_columns {
    () => {
        "id, at, action, imposition, subject_kind, trunk, number, step, until, cause, rule, \
         anomaly_id, operator, reason, detail_json"
    };
}

/// The columns `entry_from_row` reads.
pub(in crate::store) const ENFORCEMENT_COLUMNS: &str = enforcement_columns!();

const SELECT_ENFORCEMENT: &str =
    concat!("SELECT ", enforcement_columns!(), " FROM enforcement_log");

impl Store {
    /// Stores an anomaly and the log rows it caused, in one transaction; returns the rows' ids.
    pub async fn record_anomaly(
        &self,
        anomaly: &AnomalyRow,
        steps: &[NewEnforcement],
    ) -> Result<Vec<i64>, StoreError> {
        dispatch!(self, record_anomaly(anomaly, steps))
    }

    /// Appends rows to the enforcement log in one transaction; returns their ids.
    pub async fn append_enforcement(
        &self,
        entries: &[NewEnforcement],
    ) -> Result<Vec<i64>, StoreError> {
        dispatch!(self, append_enforcement(entries))
    }

    /// Anomalies detected in `[from, to)`, optionally about one trunk and/or number, oldest first.
    pub async fn anomalies(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        trunk: Option<&str>,
        number: Option<&str>,
    ) -> Result<Vec<AnomalyRow>, StoreError> {
        dispatch!(self, anomalies(from, to, trunk, number))
    }

    /// Anomalies that name a call as an example.
    pub async fn anomalies_of_call(&self, call_id: &str) -> Result<Vec<AnomalyRow>, StoreError> {
        dispatch!(self, anomalies_of_call(call_id))
    }

    /// Log rows written in `[from, to)`, in order.
    pub async fn enforcement_log(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EnforcementEntry>, StoreError> {
        dispatch!(self, enforcement_log(from, to))
    }

    /// Log rows with an id above `after`, in order, at most `limit`: how the running gateway
    /// picks up what the CLI appended.
    pub async fn enforcement_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<EnforcementEntry>, StoreError> {
        dispatch!(self, enforcement_after(after, limit))
    }

    /// One row of the log.
    pub async fn enforcement_entry(&self, id: i64) -> Result<Option<EnforcementEntry>, StoreError> {
        dispatch!(self, enforcement_entry(id))
    }

    /// Steps imposed and not lifted: what is in force (a step past its `until` may still be,
    /// while its rule has not stayed clear).
    pub async fn enforcement_in_force(&self) -> Result<Vec<EnforcementEntry>, StoreError> {
        dispatch!(self, enforcement_in_force())
    }

    /// Log rows that cite one of these anomalies (the steps they caused), in order.
    pub async fn enforcement_citing(
        &self,
        anomaly_ids: &[String],
    ) -> Result<Vec<EnforcementEntry>, StoreError> {
        if anomaly_ids.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self, enforcement_citing(anomaly_ids))
    }

    /// The largest anomaly id stored (ids are numbers; 0 when none).
    pub async fn last_anomaly_id(&self) -> Result<u64, StoreError> {
        dispatch!(self, last_anomaly_id())
    }

    /// A named position of the monitor in an append-only table (0 when never set).
    pub async fn cursor(&self, name: &str) -> Result<i64, StoreError> {
        dispatch!(self, cursor(name))
    }

    pub async fn set_cursor(&self, name: &str, value: i64) -> Result<(), StoreError> {
        dispatch!(self, set_cursor(name, value))
    }

    /// The highest log id (0 when empty).
    pub async fn last_enforcement_id(&self) -> Result<i64, StoreError> {
        dispatch!(self, last_enforcement_id())
    }
}

per_backend! {
    uses(chain);

    pub(super) async fn record_anomaly(
        pool: &DbPool,
        anomaly: &AnomalyRow,
        steps: &[NewEnforcement],
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = Dialect::begin_write(pool)
            .await
            .op_on("begin anomaly insert", &anomaly.id)?;
        sqlx::query(INSERT_ANOMALY)
            .bind(&anomaly.id)
            .bind(Dialect::time(anomaly.detected_at))
            .bind(&anomaly.rule)
            .bind(&anomaly.subject.kind)
            .bind(&anomaly.subject.trunk)
            .bind(&anomaly.subject.number)
            .bind(anomaly.window_secs)
            .bind(anomaly.observed)
            .bind(anomaly.threshold)
            .bind(anomaly.sample)
            .bind(&anomaly.step)
            .bind(&anomaly.detail)
            .execute(&mut *tx)
            .await
            .op_on("insert anomaly", &anomaly.id)?;
        for call in &anomaly.call_ids {
            sqlx::query(INSERT_ANOMALY_CALL)
                .bind(&anomaly.id)
                .bind(call)
                .execute(&mut *tx)
                .await
                .op_on("insert anomaly call", call)?;
        }
        let mut ids = Vec::with_capacity(steps.len());
        for s in steps {
            ids.push(insert_enforcement(&mut tx, s).await?);
        }
        tx.commit()
            .await
            .op_on("commit anomaly insert", &anomaly.id)?;
        Ok(ids)
    }

    pub(super) async fn append_enforcement(
        pool: &DbPool,
        entries: &[NewEnforcement],
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = Dialect::begin_write(pool)
            .await
            .op("begin enforcement append")?;
        let mut ids = Vec::with_capacity(entries.len());
        for e in entries {
            ids.push(insert_enforcement(&mut tx, e).await?);
        }
        tx.commit().await.op("commit enforcement append")?;
        Ok(ids)
    }

    pub(super) async fn anomalies(
        pool: &DbPool,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        trunk: Option<&str>,
        number: Option<&str>,
    ) -> Result<Vec<AnomalyRow>, StoreError> {
        let sql = format!(
            "{SELECT_ANOMALIES} WHERE detected_at >= $1 AND detected_at < $2 \
             AND ($3 IS NULL OR trunk = $3) AND ($4 IS NULL OR number = $4) \
             ORDER BY detected_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(Dialect::time(from))
            .bind(Dialect::time(to))
            .bind(trunk)
            .bind(number)
            .fetch_all(pool)
            .await
            .op("read anomalies")?;
        with_calls(pool, rows).await
    }

    pub(super) async fn anomalies_of_call(
        pool: &DbPool,
        call_id: &str,
    ) -> Result<Vec<AnomalyRow>, StoreError> {
        let sql = format!(
            "{SELECT_ANOMALIES} WHERE id IN (SELECT anomaly_id FROM anomaly_calls \
             WHERE call_id = $1) ORDER BY detected_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(call_id)
            .fetch_all(pool)
            .await
            .op_on("read anomalies of call", call_id)?;
        with_calls(pool, rows).await
    }

    pub(super) async fn enforcement_log(
        pool: &DbPool,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EnforcementEntry>, StoreError> {
        let sql = format!("{SELECT_ENFORCEMENT} WHERE at >= $1 AND at < $2 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(Dialect::time(from))
            .bind(Dialect::time(to))
            .fetch_all(pool)
            .await
            .op("read enforcement log")?;
        rows.iter().map(entry_from_row).collect()
    }

    pub(super) async fn enforcement_after(
        pool: &DbPool,
        after: i64,
        limit: u32,
    ) -> Result<Vec<EnforcementEntry>, StoreError> {
        let sql = format!("{SELECT_ENFORCEMENT} WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .op("read new enforcement rows")?;
        rows.iter().map(entry_from_row).collect()
    }

    pub(super) async fn enforcement_entry(
        pool: &DbPool,
        id: i64,
    ) -> Result<Option<EnforcementEntry>, StoreError> {
        let sql = format!("{SELECT_ENFORCEMENT} WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await
            .op_on("read enforcement row", format_args!("enforcement {id}"))?;
        row.as_ref().map(entry_from_row).transpose()
    }

    pub(super) async fn enforcement_in_force(
        pool: &DbPool,
    ) -> Result<Vec<EnforcementEntry>, StoreError> {
        let sql = format!(
            "{SELECT_ENFORCEMENT} AS e WHERE action = 'impose' AND NOT EXISTS \
             (SELECT 1 FROM enforcement_log l WHERE l.action = 'lift' \
             AND l.imposition = e.imposition) ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .fetch_all(pool)
            .await
            .op("read enforcement in force")?;
        rows.iter().map(entry_from_row).collect()
    }

    pub(super) async fn enforcement_citing(
        pool: &DbPool,
        anomaly_ids: &[String],
    ) -> Result<Vec<EnforcementEntry>, StoreError> {
        let marks: Vec<String> = (1..=anomaly_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "{SELECT_ENFORCEMENT} WHERE anomaly_id IN ({}) ORDER BY id",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in anomaly_ids {
            q = q.bind(id);
        }
        let rows = q
            .fetch_all(pool)
            .await
            .op("read enforcement citing anomalies")?;
        rows.iter().map(entry_from_row).collect()
    }

    pub(super) async fn last_anomaly_id(pool: &DbPool) -> Result<u64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(Dialect::LAST_ANOMALY_ID)
            .fetch_one(pool)
            .await
            .op("read last anomaly id")?;
        Ok(id.and_then(|i| u64::try_from(i).ok()).unwrap_or(0))
    }

    pub(super) async fn cursor(pool: &DbPool, name: &str) -> Result<i64, StoreError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT value FROM monitor_cursor WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await
            .op_on("read monitor cursor", name)?;
        Ok(v.unwrap_or(0))
    }

    pub(super) async fn set_cursor(pool: &DbPool, name: &str, value: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO monitor_cursor (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(pool)
        .await
        .op_on("set monitor cursor", name)?;
        Ok(())
    }

    pub(super) async fn last_enforcement_id(pool: &DbPool) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM enforcement_log")
            .fetch_one(pool)
            .await
            .op("read last enforcement id")?;
        Ok(id.unwrap_or(0))
    }

    async fn with_calls(pool: &DbPool, rows: Vec<Row>) -> Result<Vec<AnomalyRow>, StoreError> {
        let mut conn = pool
            .acquire()
            .await
            .op("connect to read anomaly calls")?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut a = anomaly_from_row(row)?;
            a.call_ids = sqlx::query_scalar(
                "SELECT call_id FROM anomaly_calls WHERE anomaly_id = $1 ORDER BY call_id",
            )
            .bind(&a.id)
            .fetch_all(&mut *conn)
            .await
            .op_on("read anomaly calls", &a.id)?;
            out.push(a);
        }
        Ok(out)
    }

    /// Inside a write transaction (`Dialect::begin_write`): the row links to the chain's head.
    async fn insert_enforcement(conn: &mut Conn, e: &NewEnforcement) -> Result<i64, StoreError> {
        let prev = chain::head(&mut *conn, ChainedLog::Enforcement).await?;
        let link = ChainLink::after(&prev, &enforcement_content(e));
        sqlx::query_scalar(INSERT_ENFORCEMENT)
            .bind(Dialect::time(e.at))
            .bind(&e.action)
            .bind(e.imposition)
            .bind(&e.subject.kind)
            .bind(&e.subject.trunk)
            .bind(&e.subject.number)
            .bind(&e.step)
            .bind(e.until.map(Dialect::time))
            .bind(&e.cause)
            .bind(&e.rule)
            .bind(&e.anomaly_id)
            .bind(&e.operator)
            .bind(&e.reason)
            .bind(&e.detail_json)
            .bind(&link.prev_sha256)
            .bind(&link.row_sha256)
            .fetch_one(&mut *conn)
            .await
            .op("insert enforcement row")
    }

    pub(in crate::store) fn subject_of(row: &Columns<Row>) -> Result<SubjectKey, StoreError> {
        Ok(SubjectKey {
            kind: row.try_get("subject_kind")?,
            trunk: row.try_get("trunk")?,
            number: row.try_get("number")?,
        })
    }

    fn anomaly_from_row(row: &Row) -> Result<AnomalyRow, StoreError> {
        let row = &Columns::new(row, "read anomaly row");
        let id: String = row.try_get("id")?;
        let what = format!("anomaly {id}");
        Ok(AnomalyRow {
            detected_at: row.time("detected_at", &what)?,
            rule: row.try_get("rule")?,
            subject: subject_of(row)?,
            window_secs: row.try_get("window_secs")?,
            observed: row.try_get("observed")?,
            threshold: row.try_get("threshold")?,
            sample: row.try_get("sample")?,
            step: row.try_get("step")?,
            detail: row.try_get("detail")?,
            call_ids: Vec::new(),
            id,
        })
    }

    pub(in crate::store) fn entry_from_row(row: &Row) -> Result<EnforcementEntry, StoreError> {
        let row = &Columns::new(row, "read enforcement row");
        let id: i64 = row.try_get("id")?;
        let what = format!("enforcement {id}");
        Ok(EnforcementEntry {
            id,
            entry: NewEnforcement {
                at: row.time("at", &what)?,
                action: row.try_get("action")?,
                imposition: row.try_get("imposition")?,
                subject: subject_of(row)?,
                step: row.try_get("step")?,
                until: row.opt_time("until", &what)?,
                cause: row.try_get("cause")?,
                rule: row.try_get("rule")?,
                anomaly_id: row.try_get("anomaly_id")?,
                operator: row.try_get("operator")?,
                reason: row.try_get("reason")?,
                detail_json: row.try_get("detail_json")?,
            },
        })
    }

}

#[cfg(test)]
#[path = "enforcement_queries_tests.rs"]
mod tests;
