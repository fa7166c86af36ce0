//! The journal of calls in progress (`call_journal`): one row per call that has no CDR yet,
//! holding its latest provisional CDR as JSON, so that a restart after a crash can write a CDR for
//! every attempt. Journal entries and final CDRs are written by [`Store::apply_cdr_writes`], in
//! submission order and in one transaction per batch:
//!
//! - a journal entry upserts its call's row, unless a CDR with that id is already stored (a late
//!   entry must not bring back a call that has ended);
//! - a final CDR is inserted (first write wins) and its journal row deleted, whether or not the
//!   CDR row was new ([`Store::insert_cdrs`] does the same).
//!
//! So a journal row and a CDR row never share an id, and after a clean shutdown the table is empty.
//!
//! JSON mapping: serde_json writes a NaN (or infinite) f64 as `null`; a leg's null jitter reads
//! back as NaN and a null MOS as `None`, as in the `cdr_media_legs` table.

use super::kpi_queries::{BucketCounters, Rollup};
use super::{Columns, Op, Store, StoreError};
use crate::model::Cdr;
use crate::model::LegQuality;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Upsert a journal row unless the call's CDR is stored. `$1` appears twice: both backends give
/// both the same parameter. The WHERE also settles the INSERT … SELECT … ON CONFLICT parsing ambiguity.
/// A claim (`closing_by`) is left as it is: whoever is closing the call goes on.
const UPSERT_JOURNAL: &str = "INSERT INTO call_journal \
     (id, cdr_json, recording_part, dialogs_json, updated_at, node) \
     SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM cdrs WHERE id = $1) \
     ON CONFLICT (id) DO UPDATE SET cdr_json = excluded.cdr_json, \
     recording_part = excluded.recording_part, dialogs_json = excluded.dialogs_json, \
     updated_at = excluded.updated_at, node = excluded.node";

const SELECT_JOURNAL: &str = "SELECT id, cdr_json, recording_part, dialogs_json, updated_at \
     FROM call_journal ORDER BY updated_at, id";

/// How much of an undecodable JSON document a [`StoreError::Corrupt`] quotes.
const EXCERPT_CHARS: usize = 120;

/// One write to the CDR tables. The CDR writer's queue carries these; a batch of them is applied
/// in order by [`Store::apply_cdr_writes`].
#[derive(Debug, Clone, PartialEq)]
pub enum CdrWrite {
    /// A call in progress: its provisional CDR, the recording file being written, its dialog
    /// state (JSON written and read by `b2bua::restart`; opaque here), and when the entry was
    /// made (stored as `updated_at`).
    Journal {
        cdr: Cdr,
        recording_part: Option<String>,
        dialogs: Option<String>,
        at: DateTime<Utc>,
    },
    /// A call that has ended: its final CDR.
    Cdr(Cdr),
}

/// Counters of a batch without KPI buckets.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct NoCounters;

impl BucketCounters for NoCounters {
    fn merge(&mut self, _: &Self) {}
}

/// What [`Store::apply_cdr_writes`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppliedWrites {
    /// CDR rows inserted; a CDR whose id was already stored is not counted.
    pub cdrs_inserted: u64,
    /// Journal rows inserted or updated.
    pub journal_upserts: u64,
    /// Journal entries ignored because their call's CDR was already stored (or, never in
    /// practice, because the CDR could not be encoded as JSON).
    pub journal_ignored: u64,
}

/// A call the journal says was in progress: no CDR was stored for it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournaledCall {
    /// The latest provisional CDR; its id is the row's id.
    pub cdr: Cdr,
    /// The recording file that was being written, as given to the journal.
    pub recording_part: Option<String>,
    /// The call's dialog state as given to the journal (see [`CdrWrite::Journal`]).
    pub dialogs: Option<String>,
    /// When the latest entry was made: the last moment the call was known to be alive.
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// Apply journal entries and final CDRs in the given order, in one transaction (see the module
    /// documentation). Replaying a batch after a failed commit gives the same result.
    pub async fn apply_cdr_writes(&self, writes: &[CdrWrite]) -> Result<AppliedWrites, StoreError> {
        self.apply_cdr_writes_with::<NoCounters>(writes, None).await
    }

    /// `apply_cdr_writes`, and in the same transaction adds what each newly inserted CDR
    /// contributes to the KPI buckets (`rollup`), so the buckets count every stored CDR once.
    pub async fn apply_cdr_writes_with<C: BucketCounters>(
        &self,
        writes: &[CdrWrite],
        rollup: Option<Rollup<'_, C>>,
    ) -> Result<AppliedWrites, StoreError> {
        if writes.is_empty() {
            return Ok(AppliedWrites::default());
        }
        dispatch!(self, apply_cdr_writes_with(writes, rollup))
    }

    /// The calls in progress according to the journal, oldest entry first: after a crash, the
    /// calls that have no CDR. The outer error is the query's; each row is decoded on its own, so
    /// a row that does not decode (hand-edited, written by something else, or whose JSON names
    /// another id) is an `Err(StoreError::Corrupt)` entry and the other rows are still returned.
    ///
    /// Rows stay until a final CDR with their id is stored (submit it through the CDR writer, or
    /// [`Store::insert_cdrs`]); a corrupt row stays until that too.
    pub async fn journaled_calls(
        &self,
    ) -> Result<Vec<Result<JournaledCall, StoreError>>, StoreError> {
        dispatch!(self, journaled_calls())
    }
}

/// The columns of a journal row besides the CDR.
struct JournalRow<'a> {
    recording_part: Option<&'a str>,
    dialogs: Option<&'a str>,
    at: DateTime<Utc>,
}

per_backend! {
    uses(cdr_queries, kpi_queries);

    pub(super) async fn apply_cdr_writes_with<C: BucketCounters>(
        pool: &DbPool,
        writes: &[CdrWrite],
        rollup: Option<Rollup<'_, C>>,
    ) -> Result<AppliedWrites, StoreError> {
        let mut applied = AppliedWrites::default();
        let mut deltas = Vec::new();
        // A write transaction: waits for the write lock up front (busy_timeout) rather than
        // failing to upgrade.
        let mut tx = Dialect::begin_write(pool).await.op("begin cdr writes")?;
        for write in writes {
            match write {
                CdrWrite::Cdr(cdr) => {
                    let new = cdr_queries::insert_cdr(&mut tx, cdr).await?;
                    applied.cdrs_inserted += new;
                    if let (1.., Some(rollup)) = (new, rollup) {
                        deltas.extend(rollup(cdr));
                    }
                }
                CdrWrite::Journal {
                    cdr,
                    recording_part,
                    dialogs,
                    at,
                } => {
                    let entry = JournalRow {
                        recording_part: recording_part.as_deref(),
                        dialogs: dialogs.as_deref(),
                        at: *at,
                    };
                    if upsert_journal(&mut tx, cdr, entry).await? {
                        applied.journal_upserts += 1;
                    } else {
                        applied.journal_ignored += 1;
                    }
                }
            }
        }
        if !deltas.is_empty() {
            kpi_queries::add_to_buckets(&mut tx, deltas).await?;
        }
        tx.commit().await.op("commit cdr writes")?;
        Ok(applied)
    }

    pub(super) async fn journaled_calls(
        pool: &DbPool,
    ) -> Result<Vec<Result<JournaledCall, StoreError>>, StoreError> {
        let rows = sqlx::query(SELECT_JOURNAL)
            .fetch_all(pool)
            .await
            .op("read call journal")?;
        Ok(rows.iter().map(journaled_from_row).collect())
    }

    /// Returns false when the entry was ignored because the call's CDR is stored.
    async fn upsert_journal(
        conn: &mut Conn,
        cdr: &Cdr,
        row: JournalRow<'_>,
    ) -> Result<bool, StoreError> {
        let json = match serde_json::to_string(cdr) {
            Ok(json) => json,
            Err(error) => {
                // Cannot happen with the Cdr type (no maps, no fallible Serialize). Failing the
                // batch would make the writer retry it forever; the final CDR does not depend on
                // this entry.
                tracing::error!(cdr_id = %cdr.attempt.id, %error, "cannot encode a journal entry; ignored");
                return Ok(false);
            }
        };
        let upserted = sqlx::query(UPSERT_JOURNAL)
            .bind(Dialect::text(&cdr.attempt.id))
            .bind(json)
            .bind(row.recording_part.map(Dialect::text))
            .bind(row.dialogs.map(Dialect::text))
            .bind(Dialect::time(row.at))
            .bind(Dialect::opt_text(&cdr.attempt.node))
            .execute(&mut *conn)
            .await
            .op_on("upsert journal entry", &cdr.attempt.id)?
            .rows_affected();
        if upserted == 0 {
            tracing::warn!(cdr_id = %cdr.attempt.id,
                "journal entry for a call whose CDR is already stored; ignored");
        }
        Ok(upserted > 0)
    }

    pub(in crate::store) fn journaled_from_row(row: &Row) -> Result<JournaledCall, StoreError> {
        let id: String = Columns::new(row, "read journal row").try_get("id")?;
        let row = Columns::of(row, "read journal row", &id);
        let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
            id: id.clone(),
            column,
            value,
        };
        let json: String = row.try_get("cdr_json")?;
        let cdr = decode_cdr(&json).map_err(|error| {
            let excerpt: String = json.chars().take(EXCERPT_CHARS).collect();
            let more = if json.chars().count() > EXCERPT_CHARS {
                "…"
            } else {
                ""
            };
            corrupt(
                "call_journal.cdr_json",
                format!("{excerpt}{more} ({error})"),
            )
        })?;
        if cdr.attempt.id != id {
            return Err(corrupt(
                "call_journal.cdr_json",
                format!("a CDR with id `{}`", cdr.attempt.id),
            ));
        }
        let updated_at = row.time("call_journal.updated_at", &id)?;
        Ok(JournaledCall {
            cdr,
            recording_part: row.try_get("recording_part")?,
            dialogs: row.try_get("dialogs_json")?,
            updated_at,
        })
    }
}

/// [`LegQuality`] as found in journal JSON, where a NaN or infinite f64 was written as null.
#[derive(Deserialize)]
struct JournalLeg {
    leg: String,
    packets_in: u64,
    bytes_in: u64,
    packets_out: u64,
    bytes_out: u64,
    lost: u64,
    jitter_ms: Option<f64>,
    max_jitter_ms: Option<f64>,
    longest_gap_ms: u64,
    stray: u64,
    mos: Option<f64>,
    one_way: bool,
}

impl From<JournalLeg> for LegQuality {
    fn from(leg: JournalLeg) -> LegQuality {
        LegQuality {
            leg: leg.leg,
            packets_in: leg.packets_in,
            bytes_in: leg.bytes_in,
            packets_out: leg.packets_out,
            bytes_out: leg.bytes_out,
            lost: leg.lost,
            jitter_ms: leg.jitter_ms.unwrap_or(f64::NAN),
            max_jitter_ms: leg.max_jitter_ms.unwrap_or(f64::NAN),
            longest_gap_ms: leg.longest_gap_ms,
            stray: leg.stray,
            mos: leg.mos,
            one_way: leg.one_way,
        }
    }
}

/// Read a provisional CDR back: the media legs through [`JournalLeg`], the rest as serde wrote it.
fn decode_cdr(json: &str) -> Result<Cdr, serde_json::Error> {
    decode_cdr_value(serde_json::from_str(json)?)
}

/// `decode_cdr` of a parsed document (the CDR spool's lines hold one).
pub(crate) fn decode_cdr_value(mut value: serde_json::Value) -> Result<Cdr, serde_json::Error> {
    let legs = value
        .as_object_mut()
        .and_then(|fields| fields.remove("media"));
    // Without "media" the field takes its serde default (no legs); it is filled in below.
    let mut cdr: Cdr = serde_json::from_value(value)?;
    if let Some(legs) = legs {
        let legs: Option<Vec<JournalLeg>> = serde_json::from_value(legs)?;
        cdr.media = legs
            .unwrap_or_default()
            .into_iter()
            .map(LegQuality::from)
            .collect();
    }
    Ok(cdr)
}

#[cfg(test)]
#[path = "journal_queries_tests.rs"]
mod tests;
