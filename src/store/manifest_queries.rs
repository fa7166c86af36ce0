//! Signed daily manifests (`evidence_manifests`, issue 17) and what a seal reads of a day: its
//! CDRs, their recordings' rows, the retention log and the legal-hold changes of the day, the
//! chained logs' heads. No rules here: `evidence::manifest` decides what is sealed and how.

use chrono::{DateTime, Utc};

use super::chain::{ChainedLog, GENESIS};
use super::{Columns, Op, RetentionEntry, Store, StoreError};
use crate::model::{Cdr, RecordingPause};

/// A manifest to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewManifest {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// A seal of a day that had ended; false for a seal of today so far.
    pub is_final: bool,
    pub sealed_at: DateTime<Utc>,
    pub manifest_sha256: String,
    pub prev_sha256: String,
    pub merkle_root: String,
    pub key_fingerprint: String,
    pub signature: String,
    /// The canonical JSON that is signed.
    pub body: String,
    /// The copy under `[evidence] dir`, relative to it.
    pub file: Option<String>,
}

/// A stored manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    pub id: i64,
    pub manifest: NewManifest,
}

/// A recording row of a day's call, as a seal reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRecording {
    pub call_id: String,
    pub invite_at: DateTime<Utc>,
    pub status: String,
    pub path: Option<String>,
    pub pcap_path: Option<String>,
    pub sha256: Option<String>,
    pub pcap_sha256: Option<String>,
    pub purged_at: Option<DateTime<Utc>>,
    /// The PCI pauses of the recording, in order: what the silence in the file stands for.
    pub pauses: Vec<RecordingPause>,
}

/// A legal hold placed or released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldEvent {
    pub hold_id: i64,
    pub call_id: String,
    /// `placed` or `released`.
    pub event: &'static str,
    pub at: DateTime<Utc>,
    pub by: String,
    pub reason: Option<String>,
}

const SELECT_MANIFESTS: &str = "SELECT id, day, is_final, sealed_at, manifest_sha256, \
     prev_sha256, merkle_root, key_fingerprint, signature, body, file FROM evidence_manifests";

impl Store {
    /// Stores a manifest. A final seal of a day that has one already is not stored: `None`
    /// (two nodes racing, or a day sealed twice).
    pub async fn insert_manifest(&self, m: &NewManifest) -> Result<Option<i64>, StoreError> {
        dispatch!(self, insert_manifest(m))
    }

    /// Every seal of `day` (partial ones and the final one), oldest first.
    pub async fn manifests_of_day(&self, day: &str) -> Result<Vec<StoredManifest>, StoreError> {
        dispatch!(self, manifests_of_day(day))
    }

    /// The final seal of the latest day before `day` (any day when `None`): the link a new
    /// manifest follows.
    pub async fn final_manifest_before(
        &self,
        day: Option<&str>,
    ) -> Result<Option<StoredManifest>, StoreError> {
        dispatch!(self, final_manifest_before(day))
    }

    /// The final seals of the days `from..=to`, in day order.
    pub async fn final_manifests_between(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<StoredManifest>, StoreError> {
        dispatch!(self, final_manifests_between(from, to))
    }

    /// CDRs whose INVITE is in `[from, to)`, in (INVITE time, id) order after `after`, at most
    /// `limit`, without their media, recording and DTMF.
    pub async fn cdrs_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<Cdr>, StoreError> {
        dispatch!(self, cdrs_between(from, to, after, limit))
    }

    /// The recording rows of the calls whose INVITE is in `[from, to)`, in (INVITE time, id)
    /// order after `after`, at most `limit`.
    pub async fn recordings_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<DayRecording>, StoreError> {
        dispatch!(self, recordings_between(from, to, after, limit))
    }

    /// The retention log's rows written in `[from, to)`, in id order.
    pub async fn retention_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<RetentionEntry>, StoreError> {
        dispatch!(self, retention_between(from, to))
    }

    /// Holds placed or released in `[from, to)`, in (time, hold id, placed before released)
    /// order.
    pub async fn hold_events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HoldEvent>, StoreError> {
        let mut events = dispatch!(self, hold_events_between(from, to))?;
        events.retain(|e| e.at >= from && e.at < to);
        events.sort_by(|a, b| {
            (a.at, a.hold_id, a.event != "placed").cmp(&(b.at, b.hold_id, b.event != "placed"))
        });
        Ok(events)
    }

    /// A chained log's newest link: its row id (`None` for an empty chain) and link (`GENESIS`).
    pub async fn chain_head(&self, log: ChainedLog) -> Result<(Option<i64>, String), StoreError> {
        dispatch!(self, chain_head(log))
    }

    /// Whether row `id` of `log` still carries the link `row_sha256`.
    pub async fn chain_has_link(
        &self,
        log: ChainedLog,
        id: i64,
        row_sha256: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self, chain_has_link(log, id, row_sha256))
    }
}

per_backend! {
    uses(cdr_queries, call_media_queries);

    pub(super) async fn insert_manifest(
        pool: &DbPool,
        m: &NewManifest,
    ) -> Result<Option<i64>, StoreError> {
        // A write transaction: no other seal slips in between the look-up and the insert.
        let mut tx = Dialect::begin_write(pool).await.op_on("begin manifest insert", &m.day)?;
        if m.is_final {
            let sealed = sqlx::query(
                "SELECT 1 FROM evidence_manifests WHERE day = $1 AND is_final = $2",
            )
            .bind(&m.day)
            .bind(true)
            .fetch_optional(&mut *tx)
            .await
            .op_on("read final manifest", &m.day)?;
            if sealed.is_some() {
                tx.rollback().await.op_on("end manifest insert", &m.day)?;
                return Ok(None);
            }
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO evidence_manifests (day, is_final, sealed_at, manifest_sha256, \
             prev_sha256, merkle_root, key_fingerprint, signature, body, file) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(&m.day)
        .bind(m.is_final)
        .bind(Dialect::time(m.sealed_at))
        .bind(&m.manifest_sha256)
        .bind(&m.prev_sha256)
        .bind(&m.merkle_root)
        .bind(&m.key_fingerprint)
        .bind(&m.signature)
        .bind(&m.body)
        .bind(&m.file)
        .fetch_one(&mut *tx)
        .await
        .op_on("insert manifest", &m.day)?;
        tx.commit().await.op_on("commit manifest", &m.day)?;
        Ok(Some(id))
    }

    pub(super) async fn manifests_of_day(
        pool: &DbPool,
        day: &str,
    ) -> Result<Vec<StoredManifest>, StoreError> {
        let sql = format!("{SELECT_MANIFESTS} WHERE day = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(day)
            .fetch_all(pool)
            .await
            .op_on("read manifests of day", day)?;
        rows.iter().map(manifest_from_row).collect()
    }

    pub(super) async fn final_manifest_before(
        pool: &DbPool,
        day: Option<&str>,
    ) -> Result<Option<StoredManifest>, StoreError> {
        let sql = format!(
            "{SELECT_MANIFESTS} WHERE is_final = $1 AND ($2 IS NULL OR day < $2) \
             ORDER BY day DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(true)
            .bind(day)
            .fetch_optional(pool)
            .await
            .op_on("read previous manifest", day.unwrap_or("any day"))?;
        row.as_ref().map(manifest_from_row).transpose()
    }

    pub(super) async fn final_manifests_between(
        pool: &DbPool,
        from: &str,
        to: &str,
    ) -> Result<Vec<StoredManifest>, StoreError> {
        let sql = format!(
            "{SELECT_MANIFESTS} WHERE is_final = $1 AND day >= $2 AND day <= $3 ORDER BY day"
        );
        let rows = sqlx::query(&sql)
            .bind(true)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await
            .op_on("read manifests between", format!("{from}..{to}"))?;
        rows.iter().map(manifest_from_row).collect()
    }

    pub(super) async fn cdrs_between(
        pool: &DbPool,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<Cdr>, StoreError> {
        let sql = format!(
            "{} WHERE invite_at >= $1 AND invite_at < $2 \
             AND ($3 IS NULL OR (invite_at, id) > ($3, $4)) ORDER BY invite_at, id LIMIT $5",
            crate::store::cdr_queries::SELECT_CDRS
        );
        let rows = sqlx::query(&sql)
            .bind(Dialect::time(from))
            .bind(Dialect::time(to))
            .bind(after.map(|a| Dialect::time(a.0)))
            .bind(after.map(|a| a.1.as_str()).unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .op("read cdrs of a day")?;
        rows.iter().map(cdr_queries::cdr_from_row).collect()
    }

    pub(super) async fn recordings_between(
        pool: &DbPool,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, String)>,
        limit: u32,
    ) -> Result<Vec<DayRecording>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.id, c.invite_at, r.status, r.path, r.pcap_path, r.sha256, r.pcap_sha256, \
             r.purged_at FROM recordings r JOIN cdrs c ON c.id = r.cdr_id \
             WHERE c.invite_at >= $1 AND c.invite_at < $2 \
             AND ($3 IS NULL OR (c.invite_at, c.id) > ($3, $4)) \
             ORDER BY c.invite_at, c.id LIMIT $5",
        )
        .bind(Dialect::time(from))
        .bind(Dialect::time(to))
        .bind(after.map(|a| Dialect::time(a.0)))
        .bind(after.map(|a| a.1.as_str()).unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .op("read recordings of a day")?;
        let mut recordings = rows
            .iter()
            .map(|row| {
                let id: String = Columns::new(row, "read recording of a day").try_get("id")?;
                let row = Columns::of(row, "read recording of a day", &id);
                Ok(DayRecording {
                    invite_at: row.time("invite_at", &id)?,
                    status: row.try_get("status")?,
                    path: row.try_get("path")?,
                    pcap_path: row.try_get("pcap_path")?,
                    sha256: row.try_get("sha256")?,
                    pcap_sha256: row.try_get("pcap_sha256")?,
                    purged_at: row.opt_time("purged_at", &id)?,
                    pauses: Vec::new(),
                    call_id: id,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        attach_pauses(pool, &mut recordings).await?;
        Ok(recordings)
    }

    /// The pauses of a page of recordings (one query: those of the calls in the page's span of
    /// INVITE times, kept for the page's calls).
    async fn attach_pauses(
        pool: &DbPool,
        recordings: &mut [DayRecording],
    ) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (recordings.first(), recordings.last()) else {
            return Ok(());
        };
        let rows = sqlx::query(
            "SELECT p.cdr_id, p.start_ms, p.end_ms, p.paused_by, p.resumed_by, p.ended \
             FROM recording_pauses p JOIN cdrs c ON c.id = p.cdr_id \
             WHERE c.invite_at >= $1 AND c.invite_at <= $2 ORDER BY p.cdr_id, p.seq",
        )
        .bind(Dialect::time(first.invite_at))
        .bind(Dialect::time(last.invite_at))
        .fetch_all(pool)
        .await
        .op("read recording pauses of a day")?;
        let index: std::collections::HashMap<String, usize> = recordings
            .iter()
            .enumerate()
            .map(|(i, r)| (r.call_id.clone(), i))
            .collect();
        for row in &rows {
            let id: String = Columns::new(row, "read recording pause of a day").try_get("cdr_id")?;
            if let Some(&i) = index.get(&id) {
                let pause = call_media_queries::pause_from_row(row, &id)?;
                recordings[i].pauses.push(pause);
            }
        }
        Ok(())
    }

    pub(super) async fn retention_between(
        pool: &DbPool,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<RetentionEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, kind, call_id, file, note FROM retention_log \
             WHERE at >= $1 AND at < $2 ORDER BY id",
        )
        .bind(Dialect::time(from))
        .bind(Dialect::time(to))
        .fetch_all(pool)
        .await
        .op("read retention log of a day")?;
        rows.iter()
            .map(|row| {
                let row = Columns::new(row, "read retention log row");
                let id: i64 = row.try_get("id")?;
                Ok(RetentionEntry {
                    at: row.time("retention_log.at", &format!("retention {id}"))?,
                    id,
                    kind: row.try_get("kind")?,
                    call_id: row.try_get("call_id")?,
                    file: row.try_get("file")?,
                    note: row.try_get("note")?,
                })
            })
            .collect()
    }

    pub(super) async fn hold_events_between(
        pool: &DbPool,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HoldEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, call_id, placed_at, placed_by, reason, released_at, released_by, \
             release_reason FROM legal_holds \
             WHERE (placed_at >= $1 AND placed_at < $2) \
             OR (released_at >= $1 AND released_at < $2) ORDER BY id",
        )
        .bind(Dialect::time(from))
        .bind(Dialect::time(to))
        .fetch_all(pool)
        .await
        .op("read hold changes of a day")?;
        let mut events = Vec::new();
        for row in &rows {
            let row = Columns::new(row, "read hold row");
            let hold_id: i64 = row.try_get("id")?;
            let what = format!("legal hold {hold_id}");
            let call_id: String = row.try_get("call_id")?;
            events.push(HoldEvent {
                hold_id,
                call_id: call_id.clone(),
                event: "placed",
                at: row.time("legal_holds.placed_at", &what)?,
                by: row.try_get("placed_by")?,
                reason: Some(row.try_get("reason")?),
            });
            if let Some(at) = row.opt_time("legal_holds.released_at", &what)? {
                events.push(HoldEvent {
                    hold_id,
                    call_id,
                    event: "released",
                    at,
                    by: row.try_get::<Option<String>, _>("released_by")?.unwrap_or_default(),
                    reason: row.try_get("release_reason")?,
                });
            }
        }
        Ok(events)
    }

    pub(super) async fn chain_head(
        pool: &DbPool,
        log: ChainedLog,
    ) -> Result<(Option<i64>, String), StoreError> {
        let sql = format!(
            "SELECT id, row_sha256 FROM {} WHERE row_sha256 IS NOT NULL ORDER BY id DESC LIMIT 1",
            log.table()
        );
        let row = sqlx::query(&sql)
            .fetch_optional(pool)
            .await
            .op_on("read chain head", log.table())?;
        match row {
            None => Ok((None, GENESIS.to_string())),
            Some(row) => {
                let row = Columns::new(&row, "read chain head");
                Ok((Some(row.try_get("id")?), row.try_get("row_sha256")?))
            }
        }
    }

    pub(super) async fn chain_has_link(
        pool: &DbPool,
        log: ChainedLog,
        id: i64,
        row_sha256: &str,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT 1 FROM {} WHERE id = $1 AND row_sha256 = $2",
            log.table()
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(row_sha256)
            .fetch_optional(pool)
            .await
            .op_on("read chain link", log.table())?;
        Ok(row.is_some())
    }

    fn manifest_from_row(row: &Row) -> Result<StoredManifest, StoreError> {
        let row = Columns::new(row, "read manifest row");
        let id: i64 = row.try_get("id")?;
        let what = format!("manifest {id}");
        Ok(StoredManifest {
            id,
            manifest: NewManifest {
                day: row.try_get("day")?,
                is_final: row.try_get("is_final")?,
                sealed_at: row.time("evidence_manifests.sealed_at", &what)?,
                manifest_sha256: row.try_get("manifest_sha256")?,
                prev_sha256: row.try_get("prev_sha256")?,
                merkle_root: row.try_get("merkle_root")?,
                key_fingerprint: row.try_get("key_fingerprint")?,
                signature: row.try_get("signature")?,
                body: row.try_get("body")?,
                file: row.try_get("file")?,
            },
        })
    }
}

#[cfg(test)]
#[path = "manifest_queries_tests.rs"]
mod tests;
