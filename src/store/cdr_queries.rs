//! CDR rows: insert (idempotent on id), read back, list, count. A CDR's media, recording and
//! DTMF live in their own tables (`call_media_queries`) and are written and read with it; storing
//! a CDR ends its call's journal entry (`journal_queries`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::query::Query;

use super::call_media_queries::Selection;
use super::multi_row::MultiRow;
use super::{Columns, Op, Store, StoreError};
use crate::model::{Attempt, Cdr, Outcome};

/// New CDRs; `multi_row::written_ids` names the rows actually inserted (an id already stored is
/// skipped).
const INSERT_CDRS: MultiRow = MultiRow {
    head: "INSERT INTO cdrs (id, inside_call_id, outside_call_id, trunk, direction, source, \
           caller, callee, presented_from, pai, invite_at, ringing_at, answer_at, end_at, \
           talk_ms, final_status, final_reason, q850_cause, hangup_side, disposition, \
           end_reason, refusal_reason, trunk_active, caller_active, node, declined_media) ",
    columns: 26,
    tail: " ON CONFLICT (id) DO NOTHING",
    op: "insert cdrs",
};

const DELETE_JOURNAL: MultiRow = MultiRow {
    head: "DELETE FROM call_journal WHERE id IN (",
    columns: 1,
    tail: ")",
    op: "delete journal entries of cdrs",
};

macro_rules! select_cdrs {
    ($tail:expr) => {
        concat!(
            "SELECT id, inside_call_id, outside_call_id, trunk, direction, source, caller, ",
            "callee, presented_from, pai, invite_at, ringing_at, answer_at, end_at, talk_ms, ",
            "final_status, final_reason, q850_cause, hangup_side, disposition, end_reason, ",
            "refusal_reason, trunk_active, caller_active, node, declined_media FROM cdrs ",
            $tail
        )
    };
}

/// Every CDR column, for queries in other store modules (append the WHERE clause).
pub(super) const SELECT_CDRS: &str = select_cdrs!("");

/// Stored time format on SQLite: UTC, milliseconds, sortable as text.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// `t` as `TIME_FORMAT` writes it. By hand for the years of four digits: chrono's `format`
/// parses the pattern on every call, and the CDR writer formats several times a row (1.5 % of the
/// gateway's instructions at 8 calls/s; bench/README.md, session 13).
pub(crate) fn format_time(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let nanos = t.nanosecond();
    let year = t.year();
    // A leap second (nanoseconds past 10⁹) and years chrono writes with a sign: its own way.
    let Ok(year @ 0..=9999) = u32::try_from(year) else {
        return t.format(TIME_FORMAT).to_string();
    };
    if nanos >= 1_000_000_000 {
        return t.format(TIME_FORMAT).to_string();
    }
    let mut out = [0u8; 24];
    let fields = [
        (year, 4),
        (t.month(), 2),
        (t.day(), 2),
        (t.hour(), 2),
        (t.minute(), 2),
        (t.second(), 2),
        (nanos / 1_000_000, 3),
    ];
    let mut at = 0;
    for ((value, width), after) in fields.into_iter().zip(*b"--T::.Z") {
        for i in (0..width).rev() {
            out[at + i] = b'0' + (value / 10u32.pow((width - 1 - i) as u32) % 10) as u8;
        }
        out[at + width] = after;
        at += width + 1;
    }
    match std::str::from_utf8(&out) {
        Ok(text) => text.to_owned(),
        // Digits and ASCII punctuation only: not reached.
        Err(_) => t.format(TIME_FORMAT).to_string(),
    }
}

impl Store {
    /// Insert CDRs, with their media legs, recording and DTMF digits, in one transaction. A CDR
    /// whose id is already stored is skipped with all its children (first write wins), so
    /// resubmitting after a failed commit or a crash repair never duplicates or mixes rows.
    /// Each CDR's `call_journal` row, if any, is deleted in the same transaction, whether or not
    /// the CDR row was new. Returns the number of CDR rows actually inserted.
    pub async fn insert_cdrs(&self, cdrs: &[Cdr]) -> Result<u64, StoreError> {
        if cdrs.is_empty() {
            return Ok(0);
        }
        dispatch!(self, insert_cdrs(cdrs))
    }

    /// One CDR with its media, recording and DTMF.
    pub async fn get_cdr(&self, id: &str) -> Result<Option<Cdr>, StoreError> {
        dispatch!(self, get_cdr(id))
    }

    /// The newest CDRs first (by INVITE time, then id, so the order is stable), with their media,
    /// recording and DTMF: four queries whatever the page size.
    pub async fn recent_cdrs(&self, limit: i64) -> Result<Vec<Cdr>, StoreError> {
        if limit <= 0 {
            // SQLite reads a negative LIMIT as "no limit"; nobody asking for ≤0 rows means that.
            return Ok(Vec::new());
        }
        dispatch!(self, recent_cdrs(limit))
    }

    /// CDRs whose INVITE is at or after `since`, in (INVITE time, id) order, after the position
    /// `after` (keyset paging), at most `limit`, without their media, recording and DTMF: the
    /// monitor refills its windows from these after a restart.
    pub async fn cdrs_since(
        &self,
        since: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> Result<Vec<Cdr>, StoreError> {
        // Without a position, the page starts just before `since` (times are milliseconds), so
        // that one query serves both cases and keeps its index.
        let (after_at, after_id) = match after {
            Some((t, id)) => (t, id),
            None => (
                since
                    .checked_sub_signed(chrono::Duration::milliseconds(1))
                    .unwrap_or(since),
                String::new(),
            ),
        };
        dispatch!(self, cdrs_since(since, after_at, &after_id, limit.max(0)))
    }

    pub async fn count_cdrs(&self) -> Result<i64, StoreError> {
        dispatch!(self, count_cdrs())
    }
}

per_backend! {
    uses(call_media_queries, multi_row);

    pub(super) async fn insert_cdrs(pool: &DbPool, cdrs: &[Cdr]) -> Result<u64, StoreError> {
        let mut tx = Dialect::begin_write(pool).await.op("begin cdr insert")?;
        let cdrs: Vec<&Cdr> = cdrs.iter().collect();
        let new = insert_batch(&mut tx, &cdrs).await?;
        tx.commit().await.op("commit cdr insert")?;
        Ok(new.iter().filter(|new| **new).count() as u64)
    }

    pub(super) async fn get_cdr(pool: &DbPool, id: &str) -> Result<Option<Cdr>, StoreError> {
        // One read transaction: the CDR and its children come from the same snapshot.
        let mut tx = Dialect::begin_read(pool).await.op_on("begin cdr read", id)?;
        let row = sqlx::query(select_cdrs!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .op_on("read cdr", id)?;
        let Some(row) = row else {
            tx.rollback().await.op_on("end cdr read", id)?;
            return Ok(None);
        };
        let mut cdrs = [cdr_from_row(&row)?];
        call_media_queries::attach_call_media(
            &mut tx,
            &mut cdrs,
            Selection::One(id),
        )
        .await?;
        tx.commit().await.op_on("end cdr read", id)?;
        let [cdr] = cdrs;
        Ok(Some(cdr))
    }

    pub(super) async fn recent_cdrs(pool: &DbPool, limit: i64) -> Result<Vec<Cdr>, StoreError> {
        // One read transaction: the child queries select the page again by the same order and
        // limit, and must see the same rows (a CDR committed in between would shift the page).
        let mut tx = Dialect::begin_read(pool).await.op("begin recent cdrs read")?;
        let rows = sqlx::query(select_cdrs!(newest_cdrs_page!()))
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .op("read recent cdrs")?;
        let mut cdrs = rows
            .iter()
            .map(cdr_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        call_media_queries::attach_call_media(
            &mut tx,
            &mut cdrs,
            Selection::NewestPage(limit),
        )
        .await?;
        tx.commit().await.op("end recent cdrs read")?;
        Ok(cdrs)
    }

    pub(super) async fn cdrs_since(
        pool: &DbPool,
        since: DateTime<Utc>,
        after_at: DateTime<Utc>,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<Cdr>, StoreError> {
        let rows = sqlx::query(select_cdrs!(
            "WHERE invite_at >= $1 AND (invite_at, id) > ($2, $3) ORDER BY invite_at, id LIMIT $4"
        ))
        .bind(Dialect::time(since))
        .bind(Dialect::time(after_at))
        .bind(after_id)
        .bind(limit)
        .fetch_all(pool)
        .await
        .op("read cdrs since")?;
        rows.iter().map(cdr_from_row).collect()
    }

    pub(super) async fn count_cdrs(pool: &DbPool) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cdrs")
            .fetch_one(pool)
            .await
            .op("count cdrs")?;
        Ok(n)
    }

    /// Insert final CDRs with their children unless their id is stored (first write wins, within
    /// `cdrs` too), and delete their journal rows either way: a call with a CDR is no longer in
    /// progress. Returns, for each of `cdrs`, whether it was inserted. A few statements whatever
    /// the number of CDRs (`multi_row`); the rows go in in the order given, and so do their
    /// `cdr_feed` positions.
    pub(in crate::store) async fn insert_batch(
        conn: &mut Conn,
        cdrs: &[&Cdr],
    ) -> Result<Vec<bool>, StoreError> {
        // By id as stored (`Dialect::text`): two ids that store alike are one row.
        let mut seen = HashSet::new();
        let firsts: Vec<&Cdr> = cdrs
            .iter()
            .copied()
            .filter(|cdr| seen.insert(Dialect::text(&cdr.attempt.id)))
            .collect();
        let mut new = multi_row::written_ids(conn, &INSERT_CDRS, &firsts, bind_cdr, |cdr| {
            &cdr.attempt.id
        })
        .await?;
        let inserted: Vec<&Cdr> = firsts
            .iter()
            .copied()
            .filter(|cdr| new.contains(&*Dialect::text(&cdr.attempt.id)))
            .collect();
        call_media_queries::insert_call_media(&mut *conn, &inserted).await?;
        multi_row::run(
            conn,
            &DELETE_JOURNAL,
            &firsts,
            |query, cdr| query.bind(Dialect::text(&cdr.attempt.id)),
            |cdr| &cdr.attempt.id,
        )
        .await?;
        // The first of each new id is the one inserted.
        Ok(cdrs
            .iter()
            .map(|cdr| new.remove(&*Dialect::text(&cdr.attempt.id)))
            .collect())
    }

    fn bind_cdr<'q>(query: Query<'q, Db, Args<'q>>, cdr: &'q &Cdr) -> Query<'q, Db, Args<'q>> {
        query
            .bind(Dialect::text(&cdr.attempt.id))
            .bind(Dialect::opt_text(&cdr.attempt.inside_call_id))
            .bind(Dialect::opt_text(&cdr.attempt.outside_call_id))
            .bind(Dialect::opt_text(&cdr.attempt.trunk))
            .bind(cdr.attempt.direction.as_str())
            .bind(Dialect::text(&cdr.attempt.source))
            .bind(Dialect::opt_text(&cdr.attempt.caller))
            .bind(Dialect::opt_text(&cdr.attempt.callee))
            .bind(Dialect::opt_text(&cdr.attempt.presented_from))
            .bind(Dialect::opt_text(&cdr.attempt.pai))
            .bind(Dialect::time(cdr.attempt.invite_at))
            .bind(cdr.attempt.ringing_at.map(Dialect::time))
            .bind(cdr.attempt.answer_at.map(Dialect::time))
            .bind(Dialect::time(cdr.outcome.end_at))
            .bind(cdr.outcome.talk_ms)
            .bind(i64::from(cdr.outcome.final_status))
            .bind(Dialect::text(&cdr.outcome.final_reason))
            .bind(cdr.outcome.q850_cause.map(i64::from))
            .bind(cdr.outcome.hangup_side.map(|h| h.as_str()))
            .bind(cdr.outcome.disposition.as_str())
            .bind(cdr.outcome.end_reason.as_str())
            .bind(cdr.outcome.refusal_reason.map(|r| r.as_str()))
            .bind(cdr.attempt.trunk_active.map(i64::from))
            .bind(cdr.attempt.caller_active.map(i64::from))
            .bind(Dialect::opt_text(&cdr.attempt.node))
            .bind(declined_column(&cdr.outcome.declined_media).map(|d| Dialect::text(&d).into_owned()))
    }

    pub(in crate::store) fn cdr_from_row(row: &Row) -> Result<Cdr, StoreError> {
        let id: String = Columns::new(row, "read cdr row").try_get("id")?;
        let row = Columns::of(row, "read cdr row", &id);
        let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
            id: id.clone(),
            column,
            value,
        };
        let code = |column: &'static str| -> Result<String, StoreError> { row.try_get(column) };
        let count = |column: &'static str| -> Result<Option<u32>, StoreError> {
            let n: Option<i64> = row.try_get(column)?;
            n.map(|n| u32::try_from(n).map_err(|_| corrupt(column, n.to_string())))
                .transpose()
        };

        let direction = code("direction")?;
        let direction = direction
            .parse()
            .map_err(|_| corrupt("direction", direction))?;
        let disposition = code("disposition")?;
        let disposition = disposition
            .parse()
            .map_err(|_| corrupt("disposition", disposition))?;
        let hangup_side = match row.try_get::<Option<String>, _>("hangup_side")? {
            Some(s) => Some(s.parse().map_err(|_| corrupt("hangup_side", s))?),
            None => None,
        };
        let end_reason = code("end_reason")?;
        let end_reason = end_reason
            .parse()
            .map_err(|_| corrupt("end_reason", end_reason))?;
        let refusal_reason = match row.try_get::<Option<String>, _>("refusal_reason")? {
            Some(s) => Some(s.parse().map_err(|_| corrupt("refusal_reason", s))?),
            None => None,
        };
        let status: i64 = row.try_get("final_status")?;
        let final_status =
            u16::try_from(status).map_err(|_| corrupt("final_status", status.to_string()))?;
        let q850_cause = match row.try_get::<Option<i64>, _>("q850_cause")? {
            Some(c) => Some(u8::try_from(c).map_err(|_| corrupt("q850_cause", c.to_string()))?),
            None => None,
        };

        Ok(Cdr {
            attempt: Attempt {
                inside_call_id: row.try_get("inside_call_id")?,
                outside_call_id: row.try_get("outside_call_id")?,
                trunk: row.try_get("trunk")?,
                direction,
                source: row.try_get("source")?,
                caller: row.try_get("caller")?,
                callee: row.try_get("callee")?,
                presented_from: row.try_get("presented_from")?,
                pai: row.try_get("pai")?,
                invite_at: row.time("invite_at", &id)?,
                ringing_at: row.opt_time("ringing_at", &id)?,
                answer_at: row.opt_time("answer_at", &id)?,
                trunk_active: count("trunk_active")?,
                caller_active: count("caller_active")?,
                node: row.try_get("node")?,
                id: id.clone(),
            },
            outcome: Outcome {
                end_at: row.time("end_at", &id)?,
                talk_ms: row.try_get("talk_ms")?,
                final_status,
                final_reason: row.try_get("final_reason")?,
                q850_cause,
                hangup_side,
                disposition,
                end_reason,
                refusal_reason,
                declined_media: declined_list(row.try_get("declined_media")?),
            },
            // Filled in by the caller from the per-call tables.
            media: Vec::new(),
            recording: None,
            dtmf: Vec::new(),
            recording_pauses: Vec::new(),
        })
    }
}

/// `declined_media` as stored: a comma list, NULL when empty.
fn declined_column(names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| names.join(","))
}

fn declined_list(column: Option<String>) -> Vec<String> {
    column
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// Lenient on read (any RFC 3339 UTC offset or precision), so hand-repaired rows still load.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
#[path = "cdr_queries_tests.rs"]
mod tests;
