//! Persisted KPI buckets (`kpi_buckets`): one row per subject and UTC hour, holding the
//! monitor's counters as JSON. The store does not know what the counters mean: the monitor hands
//! it a `Rollup` (what each CDR adds to which buckets) and a type that merges. Buckets are
//! updated in the transaction that inserts the CDRs, and only for CDRs actually inserted, so a
//! replayed batch or a crash never counts a call twice or loses one.

use std::collections::BTreeMap;

use super::enforcement_queries::SubjectKey;
use super::multi_row::MultiRow;
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

/// The stored buckets among some keys: `i` is the key's position in the list bound.
const SELECT_BUCKETS: MultiRow = MultiRow {
    head: "SELECT v.column1 AS i, b.counters_json FROM (",
    columns: 5,
    tail: ") AS v JOIN kpi_buckets b ON b.subject_kind = v.column2 AND b.trunk = v.column3 \
           AND b.number = v.column4 AND b.hour_start = v.column5",
    op: "read kpi buckets",
};

const UPSERT_BUCKETS: MultiRow = MultiRow {
    head: "INSERT INTO kpi_buckets (subject_kind, trunk, number, hour_start, counters_json) ",
    columns: 5,
    tail: " ON CONFLICT (subject_kind, trunk, number, hour_start) \
           DO UPDATE SET counters_json = excluded.counters_json",
    op: "upsert kpi buckets",
};

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
    uses(multi_row);

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

    /// Merges `deltas` into their rows: one read of all their rows and one upsert (per chunk
    /// of keys). A stored row that does not decode is left alone and the delta dropped with an
    /// error logged: the CDRs stay the source of truth, and failing here would make the CDR
    /// writer retry its batch forever. Run it in a write transaction (`Dialect::begin_write`):
    /// the read and the write of a bucket must not interleave with another writer's.
    pub(in crate::store) async fn add_to_buckets<C: BucketCounters>(
        conn: &mut Conn,
        deltas: Vec<(BucketKey, C)>,
    ) -> Result<(), StoreError> {
        let mut merged: BTreeMap<BucketKey, C> = BTreeMap::new();
        for (key, c) in deltas {
            merged.entry(key).or_default().merge(&c);
        }
        // By key as stored (`Dialect`: text, a time to the millisecond), since one statement
        // cannot upsert a row twice; two keys that store alike add up in their row, as when each
        // was merged into the row the other had just written.
        let mut rows: BTreeMap<_, Bucket<C>> = BTreeMap::new();
        for (key, delta) in &merged {
            let stored = (
                Dialect::text(&key.subject.kind),
                Dialect::text(&key.subject.trunk),
                Dialect::text(&key.subject.number),
                Dialect::time(key.hour_start),
            );
            rows.entry(stored)
                .or_insert_with(|| Bucket {
                    key,
                    counters: C::default(),
                    json: None,
                })
                .counters
                .merge(delta);
        }
        let mut rows: Vec<_> = rows.into_iter().collect();
        let indexed: Vec<_> = rows.iter().enumerate().map(|(i, row)| (i as i64, row)).collect();
        let found = multi_row::run(
            &mut *conn,
            &SELECT_BUCKETS,
            &indexed,
            |query, (i, ((kind, trunk, number, hour), _))| {
                query.bind(*i).bind(&**kind).bind(&**trunk).bind(&**number).bind(hour)
            },
            |(_, (_, bucket))| &bucket.key.subject.trunk,
        )
        .await?;
        let mut stored = vec![None; rows.len()];
        for row in &found {
            let row = Columns::new(row, "read kpi bucket row");
            let i: i64 = row.try_get("i")?;
            let json: String = row.try_get("counters_json")?;
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| stored.get_mut(i)) {
                *slot = Some(json);
            }
        }
        for ((_, bucket), stored) in rows.iter_mut().zip(stored) {
            let delta = std::mem::take(&mut bucket.counters);
            let key = bucket.key;
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
            match serde_json::to_string(&counters) {
                Ok(json) => bucket.json = Some(json),
                Err(error) => {
                    tracing::error!(subject = ?key.subject, hour = %key.hour_start, %error,
                        "kpi counters do not encode; bucket not updated");
                }
            }
        }
        rows.retain(|(_, bucket)| bucket.json.is_some());
        multi_row::run(
            conn,
            &UPSERT_BUCKETS,
            &rows,
            |query, ((kind, trunk, number, hour), bucket)| {
                query
                    .bind(&**kind)
                    .bind(&**trunk)
                    .bind(&**number)
                    .bind(hour)
                    .bind(bucket.json.as_deref())
            },
            |(_, bucket)| &bucket.key.subject.trunk,
        )
        .await?;
        Ok(())
    }
}

/// A bucket row of [`add_to_buckets`](sqlite::add_to_buckets): the batch's delta, then the
/// merged counters as JSON (`None`: not written).
struct Bucket<'a, C> {
    key: &'a BucketKey,
    counters: C,
    json: Option<String>,
}

#[cfg(test)]
#[path = "kpi_queries_tests.rs"]
pub(super) mod tests;
