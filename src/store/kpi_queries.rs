//! Persisted KPI buckets (`kpi_buckets`): one row per subject and UTC hour, holding the
//! monitor's counters as JSON. The store does not know what the counters mean: the monitor hands
//! it a `Rollup` (what each CDR adds to which buckets) and a type that merges. Buckets are
//! updated in the transaction that inserts the CDRs, and only for CDRs actually inserted, so a
//! replayed batch or a crash never counts a call twice or loses one.

use std::collections::BTreeMap;

use super::enforcement_queries::SubjectKey;
use super::{Columns, Op, Store, StoreError};
use crate::model::Cdr;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Counters that add up: what a bucket holds.
pub trait BucketCounters: Serialize + DeserializeOwned + Default + Clone + Send + Sync {
    fn merge(&mut self, other: &Self);
}

/// A subject's hour.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketKey {
    pub subject: SubjectKey,
    /// The start of the UTC hour.
    pub hour_start: DateTime<Utc>,
}

/// What one CDR adds to which buckets.
pub type Rollup<'a, C> = &'a (dyn Fn(&Cdr) -> Vec<(BucketKey, C)> + Send + Sync);

const SELECT_BUCKET: &str = "SELECT counters_json FROM kpi_buckets \
     WHERE subject_kind = $1 AND trunk = $2 AND number = $3 AND hour_start = $4";

const UPSERT_BUCKET: &str = "INSERT INTO kpi_buckets (subject_kind, trunk, number, hour_start, \
     counters_json) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (subject_kind, trunk, number, hour_start) \
     DO UPDATE SET counters_json = excluded.counters_json";

impl Store {
    /// Adds counters to buckets (complaints, and the CDR writer through `apply_cdr_writes`).
    pub async fn add_to_buckets<C: BucketCounters>(
        &self,
        deltas: Vec<(BucketKey, C)>,
    ) -> Result<(), StoreError> {
        dispatch!(self, add_to_buckets_in_tx(deltas))
    }

    /// Buckets whose hour starts in `[from, to)`, filtered by subject kind, trunk and number,
    /// ordered by subject then hour. A row whose JSON does not decode is an error naming it.
    pub async fn kpi_buckets<C: BucketCounters>(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        kind: Option<&str>,
        trunk: Option<&str>,
        number: Option<&str>,
    ) -> Result<Vec<(BucketKey, C)>, StoreError> {
        dispatch!(self, kpi_buckets(from, to, kind, trunk, number))
    }
}

per_backend! {
    pub(super) async fn add_to_buckets_in_tx<C: BucketCounters>(
        pool: &DbPool,
        deltas: Vec<(BucketKey, C)>,
    ) -> Result<(), StoreError> {
        let mut tx = Dialect::begin_write(pool).await.op("begin kpi update")?;
        add_to_buckets(&mut tx, deltas).await?;
        tx.commit().await.op("commit kpi update")?;
        Ok(())
    }

    pub(super) async fn kpi_buckets<C: BucketCounters>(
        pool: &DbPool,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        kind: Option<&str>,
        trunk: Option<&str>,
        number: Option<&str>,
    ) -> Result<Vec<(BucketKey, C)>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_kind, trunk, number, hour_start, counters_json FROM kpi_buckets \
             WHERE hour_start >= $1 AND hour_start < $2 AND ($3 IS NULL OR subject_kind = $3) \
             AND ($4 IS NULL OR trunk = $4) AND ($5 IS NULL OR number = $5) \
             ORDER BY subject_kind, trunk, number, hour_start",
        )
        .bind(Dialect::time(from))
        .bind(Dialect::time(to))
        .bind(kind)
        .bind(trunk)
        .bind(number)
        .fetch_all(pool)
        .await
        .op("read kpi buckets")?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let row = Columns::new(row, "read kpi bucket row");
            let subject = SubjectKey {
                kind: row.try_get("subject_kind")?,
                trunk: row.try_get("trunk")?,
                number: row.try_get("number")?,
            };
            let what = format!("kpi {}/{}/{}", subject.kind, subject.trunk, subject.number);
            let hour_start = row.time("hour_start", &what)?;
            let json: String = row.try_get("counters_json")?;
            let counters = serde_json::from_str(&json).map_err(|_| StoreError::Corrupt {
                id: what.clone(),
                column: "counters_json",
                value: json.chars().take(120).collect(),
            })?;
            out.push((
                BucketKey {
                    subject,
                    hour_start,
                },
                counters,
            ));
        }
        Ok(out)
    }

    /// Merges `deltas` into their rows. A stored row that does not decode is left alone and the
    /// delta dropped with an error logged: the CDRs stay the source of truth, and failing here
    /// would make the CDR writer retry its batch forever. Run it in a write transaction
    /// (`Dialect::begin_write`): the read and the write of a bucket must not interleave with
    /// another writer's.
    pub(in crate::store) async fn add_to_buckets<C: BucketCounters>(
        conn: &mut Conn,
        deltas: Vec<(BucketKey, C)>,
    ) -> Result<(), StoreError> {
        let mut merged: BTreeMap<BucketKey, C> = BTreeMap::new();
        for (key, c) in deltas {
            merged.entry(key).or_default().merge(&c);
        }
        for (key, delta) in merged {
            let stored: Option<String> = sqlx::query_scalar(SELECT_BUCKET)
                .bind(Dialect::text(&key.subject.kind))
                .bind(Dialect::text(&key.subject.trunk))
                .bind(Dialect::text(&key.subject.number))
                .bind(Dialect::time(key.hour_start))
                .fetch_optional(&mut *conn)
                .await
                .op_on("read kpi bucket", &key.subject.trunk)?;
            let mut counters = match stored.as_deref().map(serde_json::from_str::<C>) {
                None => C::default(),
                Some(Ok(c)) => c,
                Some(Err(error)) => {
                    tracing::error!(subject = ?key.subject, hour = %key.hour_start, %error,
                        "kpi bucket does not decode; left as it is, this delta is not counted");
                    continue;
                }
            };
            counters.merge(&delta);
            let json = match serde_json::to_string(&counters) {
                Ok(json) => json,
                Err(error) => {
                    tracing::error!(subject = ?key.subject, hour = %key.hour_start, %error,
                        "kpi counters do not encode; bucket not updated");
                    continue;
                }
            };
            sqlx::query(UPSERT_BUCKET)
                .bind(Dialect::text(&key.subject.kind))
                .bind(Dialect::text(&key.subject.trunk))
                .bind(Dialect::text(&key.subject.number))
                .bind(Dialect::time(key.hour_start))
                .bind(json)
                .execute(&mut *conn)
                .await
                .op_on("upsert kpi bucket", &key.subject.trunk)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "kpi_queries_tests.rs"]
mod tests;
