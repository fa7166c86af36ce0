//! The retention purge's reads and writes: expired recordings and CDRs (never those of a call on
//! hold), recordings marked purged, CDRs deleted with their dependent rows, and the append-only
//! `retention_log`. Reads page by `(invite_at, id)` after a cursor, so a run always moves forward
//! even past rows it had to skip; each write is one short transaction per batch.

use chrono::{DateTime, Utc};

use super::{Columns, Op, Store, StoreError};

/// Where a page of expired rows continues: after this call (its INVITE time and id). The
/// default starts before every call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionCursor {
    pub invite_at: Option<DateTime<Utc>>,
    pub id: String,
}

/// A recording whose retention ran out and whose files are still there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredRecording {
    pub call_id: String,
    /// As stored: relative to the recordings folder (absolute in rows stored before).
    pub path: Option<String>,
    pub pcap_path: Option<String>,
    /// The cluster node that recorded it (`None` on a single node).
    pub node: Option<String>,
    /// The cursor this row sets.
    pub cursor: RetentionCursor,
}

/// A CDR whose retention ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredCdr {
    pub call_id: String,
    pub cursor: RetentionCursor,
}

/// One row of `retention_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `recording` or `cdr`.
    pub kind: String,
    pub call_id: String,
    pub file: Option<String>,
    pub note: Option<String>,
}

/// A recording's files deleted (or found missing): what to log for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgedRecording {
    pub call_id: String,
    /// Each file with a note (`already missing`), logged one row each; empty when the recording
    /// had no file (a failed recording): then one row without a file.
    pub files: Vec<(String, Option<String>)>,
}

const NOT_HELD: &str = "NOT EXISTS (SELECT 1 FROM legal_holds h \
     WHERE h.call_id = c.id AND h.released_at IS NULL)";

const INSERT_LOG: &str = "INSERT INTO retention_log (at, kind, call_id, file, note) \
     VALUES ($1, $2, $3, $4, $5)";

/// The page key: after the cursor's call, or anywhere when the cursor is at the start.
const AFTER_CURSOR: &str = "($2 IS NULL OR (c.invite_at, c.id) > ($2, $3))";

impl Store {
    /// Recordings not yet purged of calls that started before `cutoff` and are not on hold,
    /// oldest first, after `after`, at most `limit`.
    pub async fn expired_recordings(
        &self,
        cutoff: DateTime<Utc>,
        after: &RetentionCursor,
        limit: u32,
    ) -> Result<Vec<ExpiredRecording>, StoreError> {
        dispatch!(self, expired_recordings(cutoff, after, limit))
    }

    /// Marks recordings purged (their files are gone) and logs each, in one transaction. A
    /// recording purged already is left alone and not logged again. Returns how many were marked.
    pub async fn mark_recordings_purged(
        &self,
        purged: &[PurgedRecording],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        if purged.is_empty() {
            return Ok(0);
        }
        dispatch!(self, mark_recordings_purged(purged, at))
    }

    /// CDRs of calls that started before `cutoff`, not on hold, whose recording (if any) has no
    /// file left (purged, or none was written), oldest first, after `after`, at most `limit`.
    pub async fn expired_cdrs(
        &self,
        cutoff: DateTime<Utc>,
        after: &RetentionCursor,
        limit: u32,
    ) -> Result<Vec<ExpiredCdr>, StoreError> {
        dispatch!(self, expired_cdrs(cutoff, after, limit))
    }

    /// Deletes CDRs with their media legs, recording row and DTMF (cascade) and their complaint
    /// links, logging each, in one transaction. A call put on hold since it was read is skipped.
    /// Returns the ids deleted.
    pub async fn delete_expired_cdrs(
        &self,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self, delete_expired_cdrs(ids, at))
    }

    /// When the call's recording was purged; None when it was not (or there is none).
    pub async fn recording_purged_at(
        &self,
        call_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        dispatch!(self, recording_purged_at(call_id))
    }

    /// The retention log of a call (every call when None), in id order, at most `limit`.
    pub async fn retention_entries(
        &self,
        call_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RetentionEntry>, StoreError> {
        dispatch!(self, retention_entries(call_id, limit))
    }
}

per_backend! {
    pub(super) async fn expired_recordings(
        pool: &DbPool,
        cutoff: DateTime<Utc>,
        after: &RetentionCursor,
        limit: u32,
    ) -> Result<Vec<ExpiredRecording>, StoreError> {
        let sql = format!(
            "SELECT c.id, c.invite_at, r.path, r.pcap_path, c.node FROM recordings r \
             JOIN cdrs c ON c.id = r.cdr_id \
             WHERE r.purged_at IS NULL AND c.invite_at < $1 AND {AFTER_CURSOR} \
             AND {NOT_HELD} ORDER BY c.invite_at, c.id LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(Dialect::time(cutoff))
            .bind(after.invite_at.map(Dialect::time))
            .bind(&after.id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .op("read expired recordings")?;
        rows.iter()
            .map(|row| {
                let row = &Columns::new(row, "read expired recording row");
                Ok(ExpiredRecording {
                    cursor: cursor_of(row)?,
                    call_id: row.try_get("id")?,
                    path: row.try_get("path")?,
                    pcap_path: row.try_get("pcap_path")?,
                    node: row.try_get("node")?,
                })
            })
            .collect()
    }

    pub(super) async fn mark_recordings_purged(
        pool: &DbPool,
        purged: &[PurgedRecording],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = Dialect::begin_write(pool)
            .await
            .op("begin recordings purge")?;
        let mut marked = 0;
        for p in purged {
            let done = sqlx::query(
                "UPDATE recordings SET purged_at = $2 WHERE cdr_id = $1 AND purged_at IS NULL",
            )
            .bind(&p.call_id)
            .bind(Dialect::time(at))
            .execute(&mut *tx)
            .await
            .op_on("mark recording purged", &p.call_id)?;
            if done.rows_affected() == 0 {
                continue;
            }
            marked += 1;
            if p.files.is_empty() {
                log_row(&mut tx, at, "recording", &p.call_id, None, Some("no file")).await?;
            }
            for (file, note) in &p.files {
                log_row(
                    &mut tx,
                    at,
                    "recording",
                    &p.call_id,
                    Some(file),
                    note.as_deref(),
                )
                .await?;
            }
        }
        tx.commit().await.op("commit recordings purge")?;
        Ok(marked)
    }

    pub(super) async fn expired_cdrs(
        pool: &DbPool,
        cutoff: DateTime<Utc>,
        after: &RetentionCursor,
        limit: u32,
    ) -> Result<Vec<ExpiredCdr>, StoreError> {
        let sql = format!(
            "SELECT c.id, c.invite_at FROM cdrs c \
             WHERE c.invite_at < $1 AND {AFTER_CURSOR} AND {NOT_HELD} \
             AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.cdr_id = c.id \
                 AND r.purged_at IS NULL AND (r.path IS NOT NULL OR r.pcap_path IS NOT NULL)) \
             ORDER BY c.invite_at, c.id LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(Dialect::time(cutoff))
            .bind(after.invite_at.map(Dialect::time))
            .bind(&after.id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .op("read expired cdrs")?;
        rows.iter()
            .map(|row| {
                let row = &Columns::new(row, "read expired cdr row");
                Ok(ExpiredCdr {
                    cursor: cursor_of(row)?,
                    call_id: row.try_get("id")?,
                })
            })
            .collect()
    }

    pub(super) async fn delete_expired_cdrs(
        pool: &DbPool,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = Dialect::begin_write(pool).await.op("begin cdrs deletion")?;
        let mut deleted = Vec::new();
        for id in ids {
            let held = sqlx::query(
                "SELECT 1 FROM legal_holds WHERE call_id = $1 AND released_at IS NULL",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .op_on("check hold before deletion", id)?;
            if held.is_some() {
                continue;
            }
            sqlx::query("DELETE FROM complaint_cdrs WHERE cdr_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .op_on("delete complaint links of cdr", id)?;
            let done = sqlx::query("DELETE FROM cdrs WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .op_on("delete cdr", id)?;
            if done.rows_affected() == 1 {
                log_row(&mut tx, at, "cdr", id, None, None).await?;
                deleted.push(id.clone());
            }
        }
        tx.commit().await.op("commit cdrs deletion")?;
        Ok(deleted)
    }

    pub(super) async fn recording_purged_at(
        pool: &DbPool,
        call_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query("SELECT purged_at FROM recordings WHERE cdr_id = $1")
            .bind(call_id)
            .fetch_optional(pool)
            .await
            .op_on("read recording purge time", call_id)?;
        match row {
            Some(row) => Columns::of(&row, "read recording purge time", call_id)
                .opt_time("recordings.purged_at", call_id),
            None => Ok(None),
        }
    }

    pub(super) async fn retention_entries(
        pool: &DbPool,
        call_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RetentionEntry>, StoreError> {
        const SELECT: &str = "SELECT id, at, kind, call_id, file, note FROM retention_log";
        let rows = match call_id {
            Some(call_id) => {
                let sql = format!("{SELECT} WHERE call_id = $1 ORDER BY id LIMIT $2");
                sqlx::query(&sql)
                    .bind(call_id)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
                    .op_on("read retention log of call", call_id)?
            }
            None => {
                let sql = format!("{SELECT} ORDER BY id LIMIT $1");
                sqlx::query(&sql)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
                    .op("read retention log")?
            }
        };
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

    fn cursor_of(row: &Columns<Row>) -> Result<RetentionCursor, StoreError> {
        let id: String = row.try_get("id")?;
        Ok(RetentionCursor {
            invite_at: Some(row.time("invite_at", &id)?),
            id,
        })
    }

    async fn log_row(
        conn: &mut Conn,
        at: DateTime<Utc>,
        kind: &str,
        call_id: &str,
        file: Option<&str>,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(INSERT_LOG)
            .bind(Dialect::time(at))
            .bind(kind)
            .bind(call_id)
            .bind(file)
            .bind(note)
            .execute(conn)
            .await
            .op_on("append retention log", call_id)?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "retention_queries_tests.rs"]
mod tests;
